"""Opt-in content capture: what the app asked and what it got, redacted and capped, for the log.

Off by default. With `capture_content` on, the shim keeps a reference to the request body the SDK
built (the OpenAI-shaped request the app sent, also for calls unillm translates for another
provider), the SSE taps keep every event of a stream, and everything else happens here, on the
recorder's thread: picking the content out of the request and the answer, rebuilding a streamed
answer from its deltas (so it equals the non-streamed one), redacting every string, and cutting
the result to `MAX_BYTES` of JSON per column.

What is captured (OpenAI wire shapes, as the app saw them):
- request: `{"messages": [...]}` (chat), `{"instructions": ..., "input": ...}` (Responses),
  `{"prompt": ...}` (legacy completions), `{"input": ...}` (embeddings; text only, token arrays
  are not content).
- response: `{"messages": [{role, content, tool_calls?, refusal?}, one per choice]}` (chat),
  `{"output": [message / function_call / reasoning summary items]}` (Responses),
  `{"text": [one per choice]}` (legacy completions); NULL for embeddings (vectors are not
  content) and for error answers (the error is in `error_message`).
Never captured: headers (so no key or Authorization header), tool definitions, other parameters.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

from unillm.tracer.answer import load_object
from unillm.tracer.call import AttemptRecord, CallRecord
from unillm.tracer.redact import Redactor, active_redactor

MAX_BYTES = 64 * 1024  # per column, of compact UTF-8 JSON
# Strings longer than this are cut (at a space when there is one) before they are redacted:
# whatever is beyond it would be cut from the stored JSON anyway.
_PRECUT = 2 * MAX_BYTES
# Successive (longest string, longest list) tried until the JSON fits in MAX_BYTES.
_SHRINK_STEPS: tuple[tuple[int, int | None], ...] = (
    (MAX_BYTES, None),
    (8192, None),
    (2048, 256),
    (512, 64),
    (128, 16),
    (32, 4),
)
# Marker a capturing SSE tap appends once it has kept as many bytes of events as it may.
CAPTURE_CUT = b'{"unillm_capture_cut":true}'


def redactor_for(settings: Any) -> Redactor:
    """The session's redaction rules: `[redact]` plus the exact values of every key unillm was
    given (config, and the providers' key environment variables as they are now)."""
    from unillm.adapters.registry import BUILTIN_PROVIDERS

    rules = settings.redact
    secrets: list[str | None] = [os.environ.get(spec.key_env) for spec in BUILTIN_PROVIDERS if spec.key_env]
    for entry in settings.providers.values():
        secrets.append(entry.api_key)
        if entry.key_env:
            secrets.append(os.environ.get(entry.key_env))
    return Redactor(rules.patterns, emails=rules.emails, replacement=rules.replacement, secrets=secrets)


def capture(call: CallRecord, last: AttemptRecord | None) -> tuple[Any, Any]:
    """(request_content, response_content) of a finished call whose request body was kept."""
    redactor = active_redactor()
    body = call.request_body if isinstance(call.request_body, Mapping) else {}
    request = _fit(_request_content(call.endpoint, body), redactor)
    response = None
    if last is not None and last.http_status is not None and last.http_status < 400:
        response = _fit(_response_content(last), redactor)
    return request, response


# -- request ------------------------------------------------------------------------------------


def _text_only(value: Any) -> Any:
    """A prompt or embeddings input without token arrays (lists of ints are not text)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = [item for item in value if isinstance(item, str)]
        return texts or None
    return None


def _request_content(endpoint: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
    if endpoint == "/chat/completions":
        fields = {"messages": body.get("messages")}
    elif endpoint == "/responses":
        fields = {"instructions": body.get("instructions"), "input": body.get("input")}
    elif endpoint == "/completions":
        fields = {"prompt": _text_only(body.get("prompt"))}
    elif endpoint == "/embeddings":
        fields = {"input": _text_only(body.get("input"))}
    else:  # pragma: no cover - only recorded endpoints get here
        return None
    content = {key: value for key, value in fields.items() if value is not None}
    return content or None


# -- response -----------------------------------------------------------------------------------


def _response_content(attempt: AttemptRecord) -> dict[str, Any] | None:
    endpoint = attempt.call.endpoint
    if endpoint == "/embeddings":
        return None
    if not attempt.is_sse:
        payload = load_object(attempt.body)
        if not isinstance(payload, dict) or payload.get("error"):
            return None
        if endpoint == "/responses":
            return _responses_output(payload)
        return _choices(payload.get("choices") or (), endpoint)
    payloads = []
    cut = False
    for data in attempt.events:
        if data == CAPTURE_CUT:
            cut = True
            continue
        payload = load_object(data)
        if isinstance(payload, dict):
            payloads.append(payload)
    content = _responses_stream(payloads) if endpoint == "/responses" else _chat_stream(payloads, endpoint)
    if content is not None and cut:
        content["truncated"] = "the stream was longer than unillm keeps; its end is missing"
    return content


def _message(role: Any, content: Any, tool_calls: list[dict[str, Any]], refusal: Any) -> dict[str, Any]:
    """An answer message in one shape, whether it came whole or as stream deltas."""
    message: dict[str, Any] = {"role": role or "assistant", "content": content if content or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if refusal:
        message["refusal"] = refusal
    return message


def _tool_call(call_id: Any, kind: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "type": kind or "function", "function": {"name": name, "arguments": arguments}}


def _choices(choices: Any, endpoint: str) -> dict[str, Any] | None:
    """A whole chat / legacy completions answer."""
    ordered = sorted((c for c in choices if isinstance(c, dict)), key=lambda c: c.get("index") or 0)
    if endpoint == "/completions":
        return {"text": [choice.get("text") for choice in ordered]} if ordered else None
    messages = []
    for choice in ordered:
        message = choice.get("message") or {}
        calls = [
            _tool_call(
                c.get("id"),
                c.get("type"),
                (c.get("function") or {}).get("name"),
                (c.get("function") or {}).get("arguments"),
            )
            for c in message.get("tool_calls") or ()
            if isinstance(c, dict)
        ]
        messages.append(_message(message.get("role"), message.get("content"), calls, message.get("refusal")))
    return {"messages": messages} if messages else None


class _Slot:
    """One choice of a streamed chat answer, as its deltas arrive."""

    __slots__ = ("content", "refusal", "role", "tools")

    def __init__(self) -> None:
        self.role: Any = None
        self.content: list[str] = []
        self.refusal: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}


def _chat_stream(payloads: list[dict[str, Any]], endpoint: str) -> dict[str, Any] | None:
    slots: dict[int, _Slot] = {}
    for payload in payloads:
        for choice in payload.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            slot = slots.setdefault(choice.get("index") or 0, _Slot())
            if endpoint == "/completions":
                if isinstance(choice.get("text"), str):
                    slot.content.append(choice["text"])
                continue
            delta = choice.get("delta") or {}
            slot.role = slot.role or delta.get("role")
            if isinstance(delta.get("content"), str):
                slot.content.append(delta["content"])
            if isinstance(delta.get("refusal"), str):
                slot.refusal.append(delta["refusal"])
            for call in delta.get("tool_calls") or ():
                tool = slot.tools.setdefault(
                    call.get("index") or 0, {"id": None, "type": None, "name": [], "arguments": []}
                )
                tool["id"] = tool["id"] or call.get("id")
                tool["type"] = tool["type"] or call.get("type")
                function = call.get("function") or {}
                if isinstance(function.get("name"), str):
                    tool["name"].append(function["name"])
                if isinstance(function.get("arguments"), str):
                    tool["arguments"].append(function["arguments"])
    if not slots:
        return None
    ordered = [slots[index] for index in sorted(slots)]
    if endpoint == "/completions":
        return {"text": ["".join(slot.content) for slot in ordered]}
    messages = []
    for slot in ordered:
        calls = [
            _tool_call(t["id"], t["type"], "".join(t["name"]) or None, "".join(t["arguments"]))
            for _, t in sorted(slot.tools.items())
        ]
        content = "".join(slot.content) if slot.content else None
        messages.append(_message(slot.role, content, calls, "".join(slot.refusal) or None))
    return {"messages": messages}


def _output_item(item: dict[str, Any]) -> dict[str, Any]:
    """A Responses API output item, reduced to its content."""
    kind = item.get("type")
    if kind == "message":
        parts = []
        for part in item.get("content") or ():
            part_type = part.get("type") if isinstance(part, dict) else None
            if part_type == "output_text":
                parts.append({"type": part_type, "text": part.get("text")})
            elif part_type == "refusal":
                parts.append({"type": part_type, "refusal": part.get("refusal")})
            else:
                parts.append({"type": part_type})
        return {"type": kind, "role": item.get("role") or "assistant", "content": parts}
    if kind == "function_call":
        return {
            "type": kind,
            "call_id": item.get("call_id"),
            "name": item.get("name"),
            "arguments": item.get("arguments"),
        }
    if kind == "custom_tool_call":
        return {"type": kind, "call_id": item.get("call_id"), "name": item.get("name"), "input": item.get("input")}
    if kind == "reasoning":
        summary = [s.get("text") for s in item.get("summary") or () if isinstance(s, dict)]
        return {"type": kind, "summary": summary}
    return {"type": kind}  # built-in tool calls (web search, images, ...): what happened, not their data


def _responses_output(response: dict[str, Any]) -> dict[str, Any]:
    return {"output": [_output_item(item) for item in response.get("output") or () if isinstance(item, dict)]}


_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def _responses_stream(payloads: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The final response of a Responses stream; rebuilt from its events when it ended early."""
    items: dict[int, dict[str, Any]] = {}
    for event in payloads:
        kind = event.get("type")
        if kind in _TERMINAL and isinstance(event.get("response"), dict):
            return _responses_output(event["response"])
        index = event.get("output_index")
        if not isinstance(index, int):
            continue
        if kind in ("response.output_item.added", "response.output_item.done") and isinstance(event.get("item"), dict):
            items[index] = copy.deepcopy(event["item"])  # a copy the deltas can extend
            continue
        item = items.setdefault(index, {})
        if kind == "response.function_call_arguments.delta":
            item["arguments"] = (item.get("arguments") or "") + str(event.get("delta") or "")
            continue
        parts = item.setdefault("content", [])
        at = event.get("content_index") or 0
        while len(parts) <= at:
            parts.append({})
        if kind == "response.content_part.added" and isinstance(event.get("part"), dict):
            parts[at] = dict(event["part"])
        elif kind == "response.output_text.delta":
            parts[at].setdefault("type", "output_text")
            parts[at]["text"] = (parts[at].get("text") or "") + str(event.get("delta") or "")
        elif kind == "response.refusal.delta":
            parts[at].setdefault("type", "refusal")
            parts[at]["refusal"] = (parts[at].get("refusal") or "") + str(event.get("delta") or "")
    if not items:
        return None
    return _responses_output({"output": [items[index] for index in sorted(items)]})


# -- redaction and the size cap -------------------------------------------------------------------


class _Text(NamedTuple):
    text: str  # redacted
    dropped: int  # characters of a very long original cut before redacting it


def _redacted(value: Any, redactor: Redactor) -> Any:
    """`value` with every string redacted once, as `_Text` leaves; dict keys are names, kept."""
    if isinstance(value, str):
        text = value
        if len(text) > _PRECUT:  # cut at a space so that no key is split into an unrecognisable part
            space = text.rfind(" ", MAX_BYTES, _PRECUT)
            text = text[: space if space > 0 else _PRECUT]
        return _Text(redactor(text) or "", len(value) - len(text))
    if isinstance(value, Mapping):
        return {str(key): _redacted(item, redactor) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(item, redactor) for item in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _redacted(str(value), redactor)


def _render(value: Any, text_limit: int, list_limit: int | None) -> Any:
    if isinstance(value, _Text):
        text, dropped = value
        if len(text) > text_limit:
            dropped += len(text) - text_limit
            text = text[:text_limit]
        return f"{text}…[truncated {dropped} chars]" if dropped else text
    if isinstance(value, dict):
        return {key: _render(item, text_limit, list_limit) for key, item in value.items()}
    if isinstance(value, list):
        if list_limit is not None and len(value) > list_limit:
            # Keep the first item (a system prompt) and the latest ones (the turns that led here).
            tail = value[len(value) - (list_limit - 1) :] if list_limit > 1 else []
            marker = f"[truncated {len(value) - 1 - len(tail)} items]"
            value = [value[0], marker, *tail]
        return [_render(item, text_limit, list_limit) for item in value]
    return value


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8", "replace"))


def _fit(content: dict[str, Any] | None, redactor: Redactor) -> Any:
    """Redacted `content` as JSON-able data of at most MAX_BYTES (long strings and lists cut, marked)."""
    if content is None:
        return None
    tree = _redacted(content, redactor)
    size = 0
    for text_limit, list_limit in _SHRINK_STEPS:
        rendered = _render(tree, text_limit, list_limit)
        size = _size(rendered)
        if size <= MAX_BYTES:
            return rendered
    return {"truncated": f"the content did not fit in {MAX_BYTES} bytes even cut down ({size} bytes)"}
