"""Read what an OpenAI-wire answer said: model, usage, finish reason, tool calls, error.

Runs on the recorder's thread, from the bytes the taps kept. Token semantics follow the
OpenTelemetry GenAI conventions: input includes cached tokens, output includes reasoning tokens;
the provider's raw usage object is kept beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from unillm.fastjson import loads
from unillm.tracer.call import AttemptRecord


@dataclass
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    raw: dict[str, Any] | None = None


@dataclass
class Answer:
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    tool_calls: int = 0
    error_type: str | None = None
    error_message: str | None = None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_from_openai(raw: dict[str, Any] | None) -> Usage:
    """Chat / completions / embeddings (`prompt_tokens`) and Responses (`input_tokens`) usage."""
    if not isinstance(raw, dict):
        return Usage()
    if "input_tokens" in raw:  # Responses API
        input_details = raw.get("input_tokens_details") or {}
        output_details = raw.get("output_tokens_details") or {}
        return Usage(
            input_tokens=_int(raw.get("input_tokens")),
            output_tokens=_int(raw.get("output_tokens")),
            cached_tokens=_int(input_details.get("cached_tokens")),
            reasoning_tokens=_int(output_details.get("reasoning_tokens")),
            raw=raw,
        )
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    output = _int(raw.get("completion_tokens"))
    return Usage(
        input_tokens=_int(raw.get("prompt_tokens")),
        output_tokens=output,
        cached_tokens=_int(prompt_details.get("cached_tokens")),
        reasoning_tokens=_int(completion_details.get("reasoning_tokens")),
        raw=raw,
    )


def _error_of(payload: dict[str, Any]) -> tuple[str, str] | None:
    error = payload.get("error")
    if isinstance(error, dict):
        # OpenAI's `code` is the specific kind (rate_limit_exceeded, context_length_exceeded);
        # `type` is a broad class ("requests", "invalid_request_error").
        kind = error.get("code") or error.get("type") or "error"
        return str(kind), str(error.get("message") or "")
    if isinstance(error, str) and error:
        return "error", error
    return None


def load_object(data: bytes | None) -> dict[str, Any] | None:
    """A JSON object from an answer's bytes; None for no body, broken JSON or any other value."""
    if not data:
        return None
    try:
        value = loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def read_json_answer(endpoint: str, body: bytes | None) -> Answer:
    answer = Answer()
    payload = load_object(body)
    if payload is None:
        return answer
    error = _error_of(payload)
    if error:
        answer.error_type, answer.error_message = error
        return answer
    if endpoint == "/responses":
        return _read_response_object(payload, answer)
    answer.model = payload.get("model")
    answer.usage = usage_from_openai(payload.get("usage"))
    for choice in payload.get("choices") or ():
        if answer.finish_reason is None:
            answer.finish_reason = choice.get("finish_reason")
        message = choice.get("message") or {}
        answer.tool_calls += len(message.get("tool_calls") or ())
    return answer


def _read_response_object(response: dict[str, Any], answer: Answer) -> Answer:
    answer.model = response.get("model")
    answer.usage = usage_from_openai(response.get("usage"))
    output = response.get("output") or ()
    answer.tool_calls = sum(1 for item in output if isinstance(item, dict) and item.get("type") == "function_call")
    status = response.get("status")
    if status == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        answer.finish_reason = "length" if reason == "max_output_tokens" else (reason or "incomplete")
    elif status == "failed":
        error = response.get("error") or {}
        answer.finish_reason = "error"
        answer.error_type = str(error.get("code") or "failed")
        answer.error_message = str(error.get("message") or "")
    elif status == "completed":
        answer.finish_reason = "tool_calls" if answer.tool_calls else "stop"
    return answer


def read_stream_answer(endpoint: str, events: list[bytes]) -> Answer:
    answer = Answer()
    tool_call_slots: set[tuple[int, int]] = set()
    for data in events:
        payload = load_object(data)
        if payload is None:
            continue
        error = _error_of(payload)
        if error and endpoint != "/responses":
            answer.error_type, answer.error_message = error
            continue
        if endpoint == "/responses":
            _read_responses_event(payload, answer)
            continue
        answer.model = answer.model or payload.get("model")
        if payload.get("usage"):
            answer.usage = usage_from_openai(payload["usage"])
        for choice in payload.get("choices") or ():
            if choice.get("finish_reason"):
                answer.finish_reason = choice["finish_reason"]
            for call in (choice.get("delta") or {}).get("tool_calls") or ():
                if call.get("id"):
                    tool_call_slots.add((choice.get("index", 0), call.get("index", 0)))
    if endpoint != "/responses":
        answer.tool_calls = len(tool_call_slots)
    return answer


def _read_responses_event(event: dict[str, Any], answer: Answer) -> None:
    kind = event.get("type", "")
    if kind == "error":
        answer.error_type = str(event.get("code") or "error")
        answer.error_message = str(event.get("message") or "")
    elif isinstance(event.get("response"), dict):
        _read_response_object(event["response"], answer)


def read_attempt(attempt: AttemptRecord) -> Answer:
    endpoint = attempt.call.endpoint
    if attempt.is_sse:
        return read_stream_answer(endpoint, attempt.events)
    return read_json_answer(endpoint, attempt.body)
