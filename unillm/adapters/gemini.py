"""OpenAI chat completions and embeddings ⇄ Gemini API (generateContent, streamGenerateContent,
batchEmbedContents).

Rules where the two differ (also listed in docs/providers.md):
- system and developer messages become `systemInstruction`; assistant → role `model`;
  `tool` messages → `functionResponse` parts (the function name is found from the call's id).
- Images: `data:` URLs become `inlineData`; plain http(s) image URLs are rejected (the Gemini API
  takes uploaded files, not arbitrary URLs).
- tools → `functionDeclarations` with `parametersJsonSchema`; tool_choice auto/none/required →
  AUTO/NONE/ANY, a named tool → ANY with `allowedFunctionNames`.
- `response_format` json_schema → `responseMimeType: application/json` + `responseJsonSchema`;
  json_object → `responseMimeType: application/json`.
- `reasoning_effort` → `thinkingConfig.thinkingBudget` (minimal 0, low 1024, medium 8192, high 24576).
- Dropped, documented: `parallel_tool_calls` (no switch), `user`, `stream_options`, `store`,
  `metadata`, `service_tier`. Rejected: `logprobs`, `logit_bias`, `audio`.
- finishReason → finish_reason: STOP → stop, or tool_calls when the answer holds function calls
  (Gemini says STOP for those); MAX_TOKENS → length; SAFETY, RECITATION, BLOCKLIST,
  PROHIBITED_CONTENT, SPII, IMAGE_SAFETY → content_filter; anything else (MALFORMED_FUNCTION_CALL,
  OTHER, ...) is passed on in lower case, never hidden as stop.
- Usage: prompt_tokens = promptTokenCount (cached included); completion_tokens = candidates +
  thoughts (thoughts are billed output); cached_tokens = cachedContentTokenCount.
- The Responses API (`/responses`) goes through chat: see `adapters.responses_bridge`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import time
from typing import Any

from unillm.adapters.base import (
    SSE_DONE,
    TEXT_LITERAL_PATTERN,
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

_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
_THINKING_BUDGET = {"minimal": 0, "low": 1024, "medium": 8192, "high": 24576}
_DROPPED = {"parallel_tool_calls", "user", "stream_options", "store", "metadata", "service_tier"}
_REJECTED = {
    "logprobs": "unillm does not translate logprobs",
    "top_logprobs": "unillm does not translate logprobs",
    "logit_bias": "has no logit_bias",
    "audio": "unillm does not translate audio output",
}
_CHAT_KEYS = {
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
    "response_format",
    "n",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "reasoning_effort",
    *_DROPPED,
    *_REJECTED,
}


def finish_reason(gemini_reason: str | None, has_calls: bool) -> str | None:
    if not gemini_reason or gemini_reason == "FINISH_REASON_UNSPECIFIED":
        return None
    if gemini_reason == "STOP":
        return "tool_calls" if has_calls else "stop"
    if gemini_reason == "MAX_TOKENS":
        return "length"
    if gemini_reason in _FILTERED:
        return "content_filter"
    return gemini_reason.lower()


def call_id(name: str, args: Any, index: int) -> str:
    digest = hashlib.sha256(f"{name}:{json.dumps(args, sort_keys=True)}:{index}".encode()).hexdigest()
    return f"call_{digest[:24]}"


class GeminiAdapter:
    wire = "gemini"

    def build_request(self, target: Target, translation: Translation, body: dict[str, Any]) -> ProviderRequest:
        base = target.provider.base_url.rstrip("/") + f"/v1beta/models/{target.model}"
        headers = {"content-type": "application/json", "x-goog-api-key": target.api_key or ""}
        if translation.endpoint == "/embeddings":
            payload = to_batch_embed_request(body, target.model)
            translation.extra["encoding_format"] = body.get("encoding_format") or "float"
            return ProviderRequest("POST", base + ":batchEmbedContents", headers, dumps(payload))
        if translation.endpoint != "/chat/completions":
            raise UnsupportedFeature(
                f"gemini: unillm translates chat.completions and embeddings, not {translation.endpoint}"
            )
        payload = to_generate_content_request(body)
        url = base + (":streamGenerateContent?alt=sse" if translation.stream else ":generateContent")
        return ProviderRequest("POST", url, headers, dumps(payload))

    def translate_response(self, translation: Translation, status: int, body: bytes) -> tuple[int, bytes]:
        try:
            payload = loads(body) if body else {}
        except ValueError:
            payload = {}
        if status >= 400 or "error" in payload:
            delay = _retry_delay(payload)
            if delay is not None:
                translation.extra["retry_after"] = delay  # dispatch passes it on as Retry-After
            return translate_error(status, payload)
        if translation.endpoint == "/embeddings":
            return status, dumps(to_embeddings(payload, translation))
        completion, usage = to_chat_completion(payload)
        translation.usage = usage
        return status, dumps(completion)

    def stream_translator(self, translation: Translation) -> GenerateContentStreamTranslator:
        return GenerateContentStreamTranslator(translation)


# -- requests --------------------------------------------------------------------------------
def to_generate_content_request(body: dict[str, Any]) -> dict[str, Any]:
    check_parameters(body, "gemini", _CHAT_KEYS, _REJECTED)
    system, contents = _convert_messages(body.get("messages") or [])
    request: dict[str, Any] = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": system}
    config: dict[str, Any] = {}
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("n", "candidateCount"),
    ):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        config["maxOutputTokens"] = max_tokens
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = response_format["json_schema"].get("schema") or {}
    elif response_format.get("type") == "json_object":
        config["responseMimeType"] = "application/json"
    effort = body.get("reasoning_effort")
    if effort in _THINKING_BUDGET:
        config["thinkingConfig"] = {"thinkingBudget": _THINKING_BUDGET[effort]}
    if config:
        request["generationConfig"] = config
    tools = body.get("tools")
    if tools:
        request["tools"] = [{"functionDeclarations": [_declaration(tool) for tool in tools]}]
        tool_config = _tool_config(body.get("tool_choice"))
        if tool_config:
            request["toolConfig"] = {"functionCallingConfig": tool_config}
    return request


def _declaration(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise UnsupportedFeature(f"gemini: unillm translates function tools only, not {tool.get('type')!r}")
    function = tool["function"]
    declaration: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        declaration["description"] = function["description"]
    if function.get("parameters"):
        declaration["parametersJsonSchema"] = function["parameters"]
    return declaration


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice is None or choice == "auto":
        return None
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "required":
        return {"mode": "ANY"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
    raise UnsupportedFeature(f"gemini: unsupported tool_choice {choice!r}")


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content or ():
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": part.get("text", "")})
        elif kind == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            if not url.startswith("data:"):
                raise UnsupportedFeature("gemini takes images inline: pass a data: URL (base64), not a link")
            header, _, data = url.partition(",")
            parts.append({"inlineData": {"mimeType": header[5:].split(";", 1)[0] or "image/png", "data": data}})
        else:
            raise UnsupportedFeature(f"gemini: unillm does not translate {kind!r} message parts")
    return parts


def _convert_messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        append_turn(contents, role, parts, "parts")

    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.extend(_parts(content))
        elif role == "user":
            add("user", _parts(content))
        elif role == "assistant":
            parts = _parts(content)
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                call_names[call["id"]] = function.get("name", "")
                try:
                    args = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    args = {}
                parts.append({"functionCall": {"name": function.get("name"), "args": args}})
            add("model", parts)
        elif role == "tool":
            text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content or ())
            try:
                result = json.loads(text)
            except ValueError:
                result = None
            response = result if isinstance(result, dict) else {"result": text}
            name = call_names.get(message.get("tool_call_id", ""), "")
            add("user", [{"functionResponse": {"name": name, "response": response}}])
        else:
            raise UnsupportedFeature(f"gemini: unillm does not translate messages with role {role!r}")
    return system, contents


def to_batch_embed_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    inputs = body.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not inputs or not all(isinstance(item, str) for item in inputs):
        raise UnsupportedFeature("gemini embeddings take text input (strings), not token arrays")
    request: dict[str, Any] = {"model": f"models/{model}"}
    if body.get("dimensions"):
        request["outputDimensionality"] = body["dimensions"]
    return {"requests": [{**request, "content": {"parts": [{"text": text}]}} for text in inputs]}


# -- answers ---------------------------------------------------------------------------------
def usage_of(metadata: dict[str, Any] | None) -> Usage:
    if not metadata:
        return Usage()
    candidates = metadata.get("candidatesTokenCount") or 0
    thoughts = metadata.get("thoughtsTokenCount") or 0
    return Usage(
        input_tokens=metadata.get("promptTokenCount"),
        output_tokens=candidates + thoughts,
        cached_tokens=metadata.get("cachedContentTokenCount") or 0,
        reasoning_tokens=thoughts,
        raw=metadata,
    )


def _answer_parts(candidate: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    text = ""
    calls = []
    for part in (candidate.get("content") or {}).get("parts") or ():
        if part.get("thought"):
            continue  # thought summaries are not part of the OpenAI answer
        if "text" in part:
            text += part["text"]
        elif "functionCall" in part:
            calls.append(part["functionCall"])
    return text, calls


def _tool_calls(calls: list[dict[str, Any]], start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": call.get("id") or call_id(call.get("name", ""), call.get("args"), start + i),
            "type": "function",
            "function": {"name": call.get("name"), "arguments": json.dumps(call.get("args") or {})},
        }
        for i, call in enumerate(calls)
    ]


def to_chat_completion(response: dict[str, Any]) -> tuple[dict[str, Any], Usage]:
    usage = usage_of(response.get("usageMetadata"))
    choices = []
    for index, candidate in enumerate(response.get("candidates") or ()):
        text, calls = _answer_parts(candidate)
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = _tool_calls(calls)
        reason = finish_reason(candidate.get("finishReason"), bool(calls)) or "stop"
        if reason == "content_filter" and not text:
            message["refusal"] = f"gemini stopped the answer: {candidate.get('finishReason')}"
        choices.append({"index": index, "message": message, "finish_reason": reason, "logprobs": None})
    if not choices:  # the prompt itself was blocked
        block = (response.get("promptFeedback") or {}).get("blockReason", "BLOCKED")
        message = {"role": "assistant", "content": None, "refusal": f"gemini blocked the prompt: {block}"}
        choices.append({"index": 0, "message": message, "finish_reason": "content_filter", "logprobs": None})
    completion = {
        "id": response.get("responseId") or "gemini",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": response.get("modelVersion"),
        "choices": choices,
        "usage": openai_usage(usage),
    }
    return completion, usage


def to_embeddings(response: dict[str, Any], translation: Translation) -> dict[str, Any]:
    as_base64 = translation.extra.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(response.get("embeddings") or ()):
        values = item.get("values") or []
        vector: Any = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode() if as_base64 else values
        data.append({"object": "embedding", "index": index, "embedding": vector})
    metadata = response.get("usageMetadata") or {}
    prompt = metadata.get("promptTokenCount")
    translation.usage = Usage(
        input_tokens=prompt, output_tokens=0 if prompt is not None else None, raw=metadata or None
    )
    usage = {"prompt_tokens": prompt or 0, "total_tokens": prompt or 0}
    return {"object": "list", "data": data, "model": translation.request_model, "usage": usage}


_STATUS_CODES = {"RESOURCE_EXHAUSTED": "rate_limit_exceeded", "UNAVAILABLE": "service_unavailable"}


def translate_error(status: int, payload: dict[str, Any]) -> tuple[int, bytes]:
    error = payload.get("error") or {}
    message = error.get("message") or "no message"
    kind = (error.get("status") or "error").lower()
    code = _STATUS_CODES.get(error.get("status", ""))
    if "exceeds the maximum number of tokens" in message:
        code = "context_length_exceeded"
    status = status if status >= 400 else int(error.get("code") or 500)
    return status, openai_error(status, f"gemini: {message}", kind=kind, code=code)


def _retry_delay(payload: dict[str, Any]) -> float | None:
    """Google sends no Retry-After header: the wait is a google.rpc.RetryInfo detail ("0.2s")."""
    for detail in (payload.get("error") or {}).get("details") or ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return float(delay[:-1])
            except ValueError:
                return None
    return None


# A candidate's `parts` holding one part with nothing but text (no thought, call or signature):
# the one shape of chunk whose text literal is copied without decoding the chunk.
_ONE_TEXT_PART = re.compile(rb'"parts":\s*\[\s*\{\s*' + TEXT_LITERAL_PATTERN + rb"\s*\}\s*\]")


def _usage_of_chunk(raw: Any) -> Usage:
    """Usage of a stream chunk kept as bytes (fast path) or already decoded."""
    if isinstance(raw, bytes):
        try:
            raw = json.loads(raw).get("usageMetadata")
        except ValueError:
            return Usage()
    return usage_of(raw)


class GenerateContentStreamTranslator:
    """Gemini stream chunks (each a full GenerateContentResponse) → OpenAI chunks."""

    def __init__(self, translation: Translation) -> None:
        self.translation = translation
        translation.read_usage = _usage_of_chunk
        self.decoder = SSEDecoder()
        self.out = ChunkWriter(int(time.time()))
        self.started = False
        self.calls_seen = 0
        self.finished = False
        self.failed = False
        self.copied_text = False  # the last feed returned one copied text delta (see StreamTranslator)

    def feed(self, chunk: bytes) -> bytes:
        events = self.decoder.feed(chunk)
        if len(events) == 1:  # one event per chunk, the usual case: no join
            return self._on_event(events[0][1])
        out = b"".join(self._on_event(data) for _, data in events)
        self.copied_text = False
        return out

    def close(self) -> bytes:
        out = b"".join(self._on_event(data) for _, data in self.decoder.close())
        if self.failed or not self.finished:
            return out  # no [DONE]: the SDK and the recorder see a stream that did not end well
        if self.translation.include_usage:
            out += self.out.usage(openai_usage(self.translation.final_usage() or Usage()))
        return out + SSE_DONE

    def _on_event(self, data: bytes) -> bytes:
        if self.failed:
            return b""
        if self.started and b'"finishReason"' not in data and data.count(b'"parts"') == 1:
            # A plain text chunk of one candidate: copy its text literal; keep the bytes for the
            # usage at the end. (An error or a blocked prompt has no parts.)
            part = _ONE_TEXT_PART.search(data)
            if part is not None:
                self.translation.raw_usage = data
                self.copied_text = True
                return self.out.raw_text(part.group(1))
        self.copied_text = False
        try:
            response = json.loads(data)
        except ValueError:  # a cut or garbled event: the answer cannot be trusted past it
            self.failed = True
            return malformed_event("gemini", data)
        if "error" in response:
            error = response["error"] or {}
            self.failed = True
            message = f"gemini: {error.get('message') or 'stream error'}"
            return sse({"error": {"message": message, "type": (error.get("status") or "error").lower(), "code": None}})
        out: list[bytes] = []
        if not self.started:
            self.started = True
            self.out.set(id=response.get("responseId") or "gemini", model=response.get("modelVersion"))
            out.append(self.out.delta({"role": "assistant", "content": ""}))
        metadata = response.get("usageMetadata")
        if metadata:
            self.translation.raw_usage = metadata  # cumulative: the last one is the answer's usage
        candidates = response.get("candidates")
        if candidates:
            candidate = candidates[0]
            parts = (candidate.get("content") or {}).get("parts") or []
            if len(parts) == 1 and "text" in parts[0] and not parts[0].get("thought"):  # the usual chunk
                out.append(self.out.text(parts[0]["text"]))
            elif parts:
                text, calls = _answer_parts(candidate)
                if text:
                    out.append(self.out.text(text))
                if calls:
                    tool_calls = _tool_calls(calls, self.calls_seen)
                    deltas = [{"index": self.calls_seen + i, **call} for i, call in enumerate(tool_calls)]
                    self.calls_seen += len(calls)
                    out.append(self.out.delta({"tool_calls": deltas}))
            reason = finish_reason(candidate.get("finishReason"), self.calls_seen > 0)
            if reason:
                self.finished = True
                out.append(self.out.delta({}, reason))
        elif (response.get("promptFeedback") or {}).get("blockReason"):
            self.finished = True
            out.append(self.out.delta({"refusal": "gemini blocked the prompt"}, "content_filter"))
        return b"".join(out)
