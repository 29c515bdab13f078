"""OpenAI chat completions ⇄ Anthropic Messages API (anthropic-version 2023-06-01).

Rules where the two differ (also listed in docs/providers.md):
- system and developer messages become the top-level `system` (in order).
- `tool` messages become `tool_result` blocks in a user turn; consecutive turns of one role merge.
- `cache_control` on a text or image part is passed on (Anthropic prompt caching).
- `max_tokens` is required by Anthropic: `max_completion_tokens`, else `max_tokens`, else 4096.
- `stop` → `stop_sequences`; `user` → `metadata.user_id`; `tool_choice` required → any, named → tool;
  `parallel_tool_calls: false` → `disable_parallel_tool_use`.
- `response_format` json_schema / json_object → native structured output (`output_config.format`).
- `reasoning_effort` → `output_config.effort` ("minimal" → "low").
- Dropped, documented: `seed` (no equivalent; OpenAI treats it as best effort), `logit_bias`,
  `service_tier`, `store`, `metadata`, `prediction`, `modalities`, `stream_options` (usage is
  always reported by Anthropic and passed on when asked).
- Rejected with a clear error: `n` > 1, `temperature` > 1, non-zero `presence_penalty` /
  `frequency_penalty`, `logprobs`, `audio`.
- stop_reason → finish_reason: end_turn / stop_sequence → stop, max_tokens and
  model_context_window_exceeded → length, tool_use → tool_calls, refusal → content_filter,
  pause_turn → "pause_turn" (no OpenAI equivalent; passed on rather than hidden as stop).
- Usage: prompt_tokens = input + cache reads + cache writes; cached_tokens = cache reads.
- The Responses API (`/responses`) goes through chat: see `adapters.responses_bridge`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from unillm.adapters.base import (
    SSE_DONE,
    TEXT_LITERAL,
    ChunkWriter,
    ProviderRequest,
    Target,
    Translation,
    UnsupportedFeature,
    append_turn,
    check_parameters,
    malformed_event,
    openai_error,
    openai_usage,
    sse,
)
from unillm.adapters.sse import SSEDecoder
from unillm.fastjson import dumps, loads
from unillm.tracer.answer import Usage

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "pause_turn",
}

_DROPPED = {"seed", "logit_bias", "service_tier", "store", "metadata", "prediction", "modalities", "stream_options"}
_REJECTED = {"logprobs": "has no logprobs", "top_logprobs": "has no logprobs", "audio": "has no audio output"}
_KNOWN = {
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "stream",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "user",
    "n",
    "presence_penalty",
    "frequency_penalty",
    "reasoning_effort",
    *_DROPPED,
    *_REJECTED,
}


class AnthropicAdapter:
    wire = "anthropic"

    # -- request -------------------------------------------------------------------------------
    def build_request(self, target: Target, translation: Translation, body: dict[str, Any]) -> ProviderRequest:
        if translation.endpoint != "/chat/completions":
            raise UnsupportedFeature(
                f"anthropic has no {translation.endpoint} endpoint; unillm translates chat.completions to it"
            )
        payload = to_messages_request(body, target.model)
        headers = {
            "content-type": "application/json",
            "anthropic-version": ANTHROPIC_VERSION,
            "x-api-key": target.api_key or "",
        }
        url = target.provider.base_url.rstrip("/") + "/v1/messages"
        return ProviderRequest("POST", url, headers, dumps(payload))

    # -- answer --------------------------------------------------------------------------------
    def translate_response(self, translation: Translation, status: int, body: bytes) -> tuple[int, bytes]:
        try:
            payload = loads(body) if body else {}
        except ValueError:
            payload = {}
        if status >= 400 or payload.get("type") == "error":
            return translate_error(status, payload)
        completion, usage = to_chat_completion(payload)
        translation.usage = usage
        return status, dumps(completion)

    def stream_translator(self, translation: Translation) -> MessagesStreamTranslator:
        return MessagesStreamTranslator(translation)


def to_messages_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    check_parameters(body, "anthropic", _KNOWN, _REJECTED)
    if (body.get("n") or 1) > 1:
        raise UnsupportedFeature("anthropic returns one choice per request: n > 1 is not supported")
    for penalty in ("presence_penalty", "frequency_penalty"):
        if body.get(penalty):
            raise UnsupportedFeature(f"anthropic has no {penalty}")
    temperature = body.get("temperature")
    if temperature is not None and temperature > 1:
        raise UnsupportedFeature(f"anthropic accepts temperature 0..1; {temperature} would mean something else there")

    system, messages = _convert_messages(body.get("messages") or [])
    request: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS,
    }
    if system:
        request["system"] = system
    if temperature is not None:
        request["temperature"] = temperature
    if body.get("top_p") is not None:
        request["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        request["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("user"):
        request["metadata"] = {"user_id": str(body["user"])}
    if body.get("stream"):
        request["stream"] = True
    tools = body.get("tools")
    if tools:
        request["tools"] = [_convert_tool(tool) for tool in tools]
    tool_choice = _convert_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if tool_choice and tools:
        request["tool_choice"] = tool_choice
    output_config = _output_config(body)
    if output_config:
        request["output_config"] = output_config
    return request


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or () if part.get("type") == "text")


def _convert_content(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content or ():
        kind = part.get("type")
        if kind == "text":
            block: dict[str, Any] = {"type": "text", "text": part.get("text", "")}
        elif kind == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            block = {"type": "image", "source": _image_source(url)}
        else:
            raise UnsupportedFeature(f"anthropic: unillm does not translate {kind!r} message parts")
        if part.get("cache_control"):  # Anthropic prompt caching, marked on the part (as LiteLLM does)
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _image_source(url: str) -> dict[str, str]:
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";", 1)[0] or "image/png"
        return {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "url", "url": url}


def _convert_messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        append_turn(turns, role, blocks, "content")

    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(block for block in _convert_content(message.get("content")) if block["type"] == "text")
        elif role == "user":
            add("user", _convert_content(message.get("content")))
        elif role == "assistant":
            blocks = _convert_content(message.get("content"))
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    arguments = {"_raw_arguments": function.get("arguments")}
                blocks.append({"type": "tool_use", "id": call["id"], "name": function.get("name"), "input": arguments})
            add("assistant", blocks)
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id"),
                "content": _text_of(message.get("content")),
            }
            add("user", [result])
        else:
            raise UnsupportedFeature(f"anthropic: unillm does not translate messages with role {role!r}")
    return system, turns


def _convert_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise UnsupportedFeature(f"anthropic: unillm translates function tools only, not {tool.get('type')!r}")
    function = tool["function"]
    converted = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        converted["description"] = function["description"]
    return converted


def _convert_tool_choice(choice: Any, parallel: bool | None) -> dict[str, Any] | None:
    converted: dict[str, Any] | None
    if choice is None:
        converted = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        converted = {"type": "auto"}
    elif choice == "none":
        return {"type": "none"}
    elif choice == "required":
        converted = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        converted = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise UnsupportedFeature(f"anthropic: unsupported tool_choice {choice!r}")
    if converted is not None and parallel is False:
        converted["disable_parallel_tool_use"] = True
    return converted


def _output_config(body: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    response_format = body.get("response_format") or {}
    kind = response_format.get("type")
    if kind == "json_schema":
        config["format"] = {"type": "json_schema", "schema": response_format["json_schema"].get("schema") or {}}
    elif kind == "json_object":
        config["format"] = {"type": "json_schema", "schema": {"type": "object", "additionalProperties": True}}
    effort = body.get("reasoning_effort")
    if effort:
        config["effort"] = "low" if effort == "minimal" else effort
    return config


# -- answers ---------------------------------------------------------------------------------
def usage_of(raw: dict[str, Any]) -> Usage:
    input_tokens = raw.get("input_tokens") or 0
    cache_read = raw.get("cache_read_input_tokens") or 0
    cache_write = raw.get("cache_creation_input_tokens") or 0
    return Usage(
        input_tokens=input_tokens + cache_read + cache_write,
        output_tokens=raw.get("output_tokens"),
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
        raw=raw,
    )


def to_chat_completion(message: dict[str, Any]) -> tuple[dict[str, Any], Usage]:
    text = "".join(block.get("text", "") for block in message.get("content") or () if block.get("type") == "text")
    tool_calls = [
        {
            "id": block["id"],
            "type": "function",
            "function": {"name": block["name"], "arguments": json.dumps(block.get("input") or {})},
        }
        for block in message.get("content") or ()
        if block.get("type") == "tool_use"
    ]
    usage = usage_of(message.get("usage") or {})
    finish = FINISH_REASONS.get(message.get("stop_reason") or "", message.get("stop_reason") or "stop")
    reply: dict[str, Any] = {"role": "assistant", "content": text or None}
    if finish == "content_filter" and not text:
        reply["refusal"] = "the model declined to answer (anthropic stop_reason: refusal)"
    if tool_calls:
        reply["tool_calls"] = tool_calls
    completion = {
        "id": message.get("id", "msg"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model"),
        "choices": [{"index": 0, "message": reply, "finish_reason": finish, "logprobs": None}],
        "usage": openai_usage(usage),
    }
    return completion, usage


_ERROR_CODES = {"rate_limit_error": "rate_limit_exceeded", "overloaded_error": "overloaded"}


def translate_error(status: int, payload: dict[str, Any]) -> tuple[int, bytes]:
    error = payload.get("error") or {}
    kind = error.get("type") or "api_error"
    message = error.get("message") or "no message"
    code = _ERROR_CODES.get(kind)
    if "prompt is too long" in message or "context window" in message.lower():
        code = "context_length_exceeded"
    return status if status >= 400 else 500, openai_error(status, f"anthropic: {message}", kind=kind, code=code)


class MessagesStreamTranslator:
    """Anthropic stream events → OpenAI chat.completion.chunk events, one event at a time."""

    def __init__(self, translation: Translation) -> None:
        self.translation = translation
        self.decoder = SSEDecoder()
        self.out = ChunkWriter(int(time.time()))
        self.raw_usage: dict[str, Any] = {}
        self.tool_index: dict[int, int] = {}  # content block index → OpenAI tool_calls index
        self.ended = False
        self.copied_text = False  # the last feed returned one copied text delta (see StreamTranslator)

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return self.out.delta(delta, finish)

    def feed(self, chunk: bytes) -> bytes:
        # Most events are one text delta arriving whole in a chunk: its text literal is copied as is,
        # past the SSE decoder and the JSON decoder (~2.6 -> ~1.3 µs per chunk). Three newlines: the
        # `event:` line, the `data:` line (JSON escapes its own newlines) and the blank line.
        if (
            chunk.startswith(b"event: content_block_delta\n")
            and chunk.endswith(b"\n\n")
            and chunk.count(b"\n") == 3
            and b"\r" not in chunk
            and not self.ended
            and self.decoder.idle
        ):
            copied = self._copied_text(chunk)
            if copied is not None:
                self.copied_text = True
                return copied
        self.copied_text = False
        return self._translate(self.decoder.feed(chunk))

    def _copied_text(self, data: bytes) -> bytes | None:
        """A text delta's chunk, its text literal copied without decoding the event; None for any other event."""
        if b'"text_delta"' not in data:
            return None
        literal = TEXT_LITERAL.search(data)
        return None if literal is None else self.out.raw_text(literal.group(1))

    def close(self) -> bytes:
        return self._translate(self.decoder.close())

    def _translate(self, events: list[tuple[str, bytes]]) -> bytes:
        out: list[bytes] = []
        for name, data in events:
            if self.ended:
                break
            copied = self._copied_text(data)  # most events: skip decoding them
            if copied is not None:
                out.append(copied)
                continue
            try:
                event = json.loads(data)
            except ValueError:  # a cut or garbled event: the answer cannot be trusted past it
                out.append(malformed_event("anthropic", data))
                self.ended = True
                break
            kind = event.get("type", name)
            if kind == "error" or name == "error":
                error = event.get("error") or {}
                message = f"anthropic: {error.get('message') or 'stream error'}"
                out.append(sse({"error": {"message": message, "type": error.get("type") or "api_error", "code": None}}))
                self.ended = True
                break
            translated = self.on_event(kind, event)
            if translated:
                out.append(translated)
            if kind == "message_stop":
                if self.translation.include_usage:
                    out.append(self.usage_chunk())
                out.append(SSE_DONE)
                self.ended = True
        return b"".join(out)

    def on_event(self, kind: str, event: dict[str, Any]) -> bytes | None:
        if kind == "message_start":
            message = event.get("message") or {}
            self.out.set(id=message.get("id"), model=message.get("model"))
            self.raw_usage.update(message.get("usage") or {})
            self.translation.usage = usage_of(self.raw_usage)
            return self.chunk({"role": "assistant", "content": ""})
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self.tool_index.setdefault(event.get("index", 0), len(self.tool_index))
                call = {"index": index, "id": block["id"], "type": "function"}
                call["function"] = {"name": block["name"], "arguments": ""}
                return self.chunk({"tool_calls": [call]})
            return None
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                return self.out.text(delta.get("text", ""))
            if delta.get("type") == "input_json_delta":
                index = self.tool_index.get(event.get("index", 0), 0)
                return self.chunk(
                    {"tool_calls": [{"index": index, "function": {"arguments": delta.get("partial_json", "")}}]}
                )
            return None  # thinking / signature deltas: not part of the OpenAI chat wire
        if kind == "message_delta":
            self.raw_usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            self.translation.usage = usage_of(self.raw_usage)
            reason = (event.get("delta") or {}).get("stop_reason") or "end_turn"
            return self.chunk({}, FINISH_REASONS.get(reason, reason))
        return None  # ping, content_block_stop, message_stop

    def usage_chunk(self) -> bytes:
        return self.out.usage(openai_usage(self.translation.usage or Usage()))
