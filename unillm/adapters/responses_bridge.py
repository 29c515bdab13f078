"""OpenAI Responses API (`/responses`) over a wire family that only has chat: Anthropic, Gemini.

The bridge turns the Responses request into a chat.completions request, lets the family's chat
adapter translate that to the provider and back, and turns the chat answer (JSON, or SSE chunk by
chunk) into a Responses `Response` / stream events, so the SDK parses them as if OpenAI had
answered. Like every adapter it does no I/O.

Rules (in addition to the chat adapter's own):
- `input` (a string, or message / function_call / function_call_output items) → chat messages;
  `instructions` → a leading system message; `reasoning` items from an earlier OpenAI answer are
  dropped (opaque to other providers).
- function tools (flat in Responses) → chat function tools; `tool_choice` auto / none / required /
  a named function map as in chat; `allowed_tools` offers only the listed functions.
- `text.format` json_schema / json_object → `response_format`; `max_output_tokens` →
  `max_completion_tokens`; `reasoning.effort` → `reasoning_effort` ("none" → "minimal");
  `safety_identifier` → `user` when `user` is not set.
- Dropped, documented: `store` (nothing is kept on a server: `responses.retrieve` cannot find
  these answers), `metadata`, `service_tier`, `prompt_cache_key`, `prompt_cache_retention`,
  `truncation` (a too-long input is the provider's error), `include`, `max_tool_calls` (built-in
  tools only), `stream_options`, `text.verbosity`, `reasoning.summary`.
- Refused with an error naming the feature and the provider (nothing is sent): server-side state
  (`previous_response_id`, `conversation`, `item_reference` items, `background`, stored `prompt`s,
  `context_management`), built-in tools (web_search, file_search, code_interpreter, computer use,
  image_generation, mcp, shell, ...) and custom tools, logprobs, file inputs, and any parameter
  the bridge does not know.
- finish_reason → status: stop / tool_calls → completed; length → incomplete (max_output_tokens);
  content_filter → incomplete (content_filter); anything else (pause_turn,
  malformed_function_call, ...) → failed, its error naming the provider's reason.
- Usage: input_tokens / output_tokens as the chat adapter normalised them (cached and cache-write
  tokens included in input, reasoning in output), with the details the Responses usage has.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from unillm.adapters.base import Adapter, ProviderRequest, StreamTranslator, Target, Translation, UnsupportedFeature
from unillm.tracer.answer import Usage

_MAPPED = {
    "model",
    "input",
    "instructions",
    "max_output_tokens",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "text",
    "reasoning",
    "user",
    "safety_identifier",
    "stream",
}
_DROPPED = {
    "store",
    "metadata",
    "service_tier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "truncation",
    "include",
    "max_tool_calls",
    "stream_options",
}
# Parameters only OpenAI's servers can honour: (what it is, what to do instead).
_SERVER_SIDE = {
    "previous_response_id": ("server-side conversation state", "send the whole conversation as input"),
    "conversation": ("server-side conversation state", "send the whole conversation as input"),
    "background": ("responses run and stored on OpenAI's servers", "call without background"),
    "prompt": ("a prompt template stored on OpenAI's servers", "send instructions and input instead"),
    "context_management": ("server-side compaction of the conversation", "send the conversation you want kept"),
    "top_logprobs": ("token log probabilities", "call without top_logprobs"),
}
_TERMINAL_EVENTS = {"completed": "response.completed", "incomplete": "response.incomplete", "failed": "response.failed"}


@dataclass
class _Bridged:
    """What one attempt's two halves share: the chat translation and the request fields the
    Response repeats (`Response.tools`, `.instructions`, ...)."""

    chat: Translation
    echo: dict[str, Any]
    provider: str


class ResponsesBridge:
    """An `Adapter` for `/responses` made from a wire family's chat adapter."""

    def __init__(self, chat: Adapter) -> None:
        self.chat = chat
        self.wire = chat.wire

    def build_request(self, target: Target, translation: Translation, body: dict[str, Any]) -> ProviderRequest:
        provider = target.provider.name
        request = to_chat_request(body, provider)
        chat = Translation("/chat/completions", translation.request_model, translation.stream, True)
        translation.extra["responses"] = _Bridged(chat, _echo(body), provider)
        # The recorder reads usage from this translation: the chat half's figures, read at the end.
        translation.raw_usage, translation.read_usage = chat, Translation.final_usage
        return self.chat.build_request(target, chat, request)

    def translate_response(self, translation: Translation, status: int, body: bytes) -> tuple[int, bytes]:
        bridged: _Bridged = translation.extra["responses"]
        status, content = self.chat.translate_response(bridged.chat, status, body)
        if "retry_after" in bridged.chat.extra:  # dispatch passes it on as Retry-After
            translation.extra["retry_after"] = bridged.chat.extra["retry_after"]
        if status >= 400:
            return status, content  # an OpenAI-wire error body: the same for both endpoints
        completion = json.loads(content)
        response = to_response(completion, bridged.chat.final_usage() or Usage(), bridged)
        return status, json.dumps(response).encode()

    def stream_translator(self, translation: Translation) -> ResponsesStreamTranslator:
        bridged: _Bridged = translation.extra["responses"]
        return ResponsesStreamTranslator(self.chat.stream_translator(bridged.chat), bridged)


# -- request ---------------------------------------------------------------------------------------
def to_chat_request(body: dict[str, Any], provider: str) -> dict[str, Any]:
    """A Responses request as the chat.completions request that asks the same."""
    _refuse_unsupported(body, provider)
    request: dict[str, Any] = {"model": body.get("model"), "messages": _messages(body, provider)}
    for key in ("temperature", "top_p", "parallel_tool_calls", "stream"):
        if body.get(key) is not None:
            request[key] = body[key]
    if body.get("max_output_tokens") is not None:
        request["max_completion_tokens"] = body["max_output_tokens"]
    user = body.get("user") or body.get("safety_identifier")
    if user:
        request["user"] = user
    effort = (body.get("reasoning") or {}).get("effort")
    if effort:
        request["reasoning_effort"] = "minimal" if effort == "none" else effort
    response_format = _response_format((body.get("text") or {}).get("format"), provider)
    if response_format:
        request["response_format"] = response_format
    tools = [_chat_tool(tool, provider) for tool in body.get("tools") or ()]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = {t.get("name") for t in choice.get("tools") or () if t.get("type") == "function"}
        tools = [tool for tool in tools if tool["function"]["name"] in allowed]
        choice = choice.get("mode") or "auto"
    if tools:
        request["tools"] = tools
        if choice is not None:
            request["tool_choice"] = _chat_tool_choice(choice, provider)
    return request


def _refuse_unsupported(body: dict[str, Any], provider: str) -> None:
    for key in body:
        if key not in _MAPPED and key not in _DROPPED and key not in _SERVER_SIDE:
            raise UnsupportedFeature(f"{provider}: unillm does not translate the Responses parameter {key!r}")
    for key, (what, instead) in _SERVER_SIDE.items():
        if body.get(key):
            raise UnsupportedFeature(f"{key} ({what}) is not supported by {provider}: {instead}")
    for include in body.get("include") or ():
        if "logprobs" in include:
            raise UnsupportedFeature(f"include {include!r} (token log probabilities) is not supported by {provider}")


def _chat_tool(tool: dict[str, Any], provider: str) -> dict[str, Any]:
    kind = tool.get("type")
    if kind == "custom":
        raise UnsupportedFeature(f"custom tools (free-form input) are not supported by {provider}: use function tools")
    if kind != "function":
        raise UnsupportedFeature(
            f"the built-in tool {kind!r} runs on OpenAI's servers and is not supported by {provider}: "
            "unillm translates function tools only"
        )
    function: dict[str, Any] = {"name": tool.get("name")}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def _chat_tool_choice(choice: Any, provider: str) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    kind = choice.get("type") if isinstance(choice, dict) else choice
    raise UnsupportedFeature(
        f"tool_choice {kind!r} is not supported by {provider}: unillm translates function tools only"
    )


def _response_format(fmt: Any, provider: str) -> dict[str, Any] | None:
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = {key: fmt[key] for key in ("name", "schema", "strict", "description") if fmt.get(key) is not None}
        return {"type": "json_schema", "json_schema": schema}
    raise UnsupportedFeature(f"text.format {kind!r} is not supported by {provider}")


def _messages(body: dict[str, Any], provider: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    items = body.get("input")
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    for item in items or ():
        kind = item.get("type") or "message"
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise UnsupportedFeature(f"{provider}: unillm does not translate input messages with role {role!r}")
            content = _content(item.get("content"), provider)
            if role == "assistant" and not isinstance(content, str):
                content = "".join(part["text"] for part in content)
            messages.append({"role": role, "content": content})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":  # one assistant turn: text, then its calls
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(
                {"role": "tool", "tool_call_id": item.get("call_id"), "content": _output_text(item, provider)}
            )
        elif kind == "reasoning":
            continue  # an OpenAI model's own (encrypted) reasoning: no other provider can read it
        elif kind == "item_reference":
            raise UnsupportedFeature(
                f"item_reference (an item stored on OpenAI's servers) is not supported by {provider}: "
                "send the item itself as input"
            )
        else:
            raise UnsupportedFeature(f"input items of type {kind!r} are not supported by {provider}")
    return messages


def _content(content: Any, provider: str) -> Any:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for part in content or ():
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            parts.append({"type": "text", "text": part.get("text", "")})
        elif kind == "refusal":
            parts.append({"type": "text", "text": part.get("refusal", "")})
        elif kind == "input_image" and part.get("image_url"):
            image = {"url": part["image_url"]}
            if part.get("detail") and part["detail"] != "auto":
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_image":
            raise UnsupportedFeature(
                f"images by file_id (files stored on OpenAI's servers) are not supported by {provider}: "
                "pass image_url (a data: URL)"
            )
        else:
            raise UnsupportedFeature(f"{kind} input parts are not supported by {provider}")
    return parts


def _output_text(item: dict[str, Any], provider: str) -> str:
    output = item.get("output")
    if isinstance(output, str):
        return output
    texts = []
    for part in output or ():
        if part.get("type") != "input_text":
            raise UnsupportedFeature(
                f"{part.get('type')} parts in a function_call_output are not supported by {provider}"
            )
        texts.append(part.get("text", ""))
    return "".join(texts)


def _echo(body: dict[str, Any]) -> dict[str, Any]:
    """The request fields a Response repeats."""
    fmt = (body.get("text") or {}).get("format") or {"type": "text"}
    return {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "previous_response_id": None,
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "text": {"format": fmt},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": [tool for tool in body.get("tools") or () if tool.get("type") == "function"],
        "user": body.get("user"),
        "store": False,  # nothing is kept on a server
        "background": False,
    }


# -- answers ---------------------------------------------------------------------------------------
def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def responses_usage(usage: Usage) -> dict[str, Any]:
    """Normalised usage as the Responses API says it (input includes cached, output reasoning)."""
    input_tokens, output_tokens = usage.input_tokens or 0, usage.output_tokens or 0
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens or 0,
            "cache_write_tokens": usage.cache_write_tokens or 0,
        },
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _status(finish: str | None, provider: str) -> dict[str, Any]:
    """The Response's status fields for a chat finish_reason."""
    if finish in (None, "stop", "tool_calls"):
        return {"status": "completed", "incomplete_details": None, "error": None}
    if finish == "length":
        return {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}, "error": None}
    if finish == "content_filter":
        return {"status": "incomplete", "incomplete_details": {"reason": "content_filter"}, "error": None}
    message = f"{provider} stopped the answer with finish reason {finish!r}"
    return {"status": "failed", "incomplete_details": None, "error": {"code": "server_error", "message": message}}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(item_id: str, parts: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": parts}


def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def _response(bridged: _Bridged, response_id: str, created: float, model: Any, state: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "model": model or bridged.chat.request_model,
        "output": [],
        "usage": None,
        **bridged.echo,
        **state,
    }


def to_response(completion: dict[str, Any], usage: Usage, bridged: _Bridged) -> dict[str, Any]:
    """A chat.completion (one choice) as a Responses `Response`."""
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    finish = choice.get("finish_reason")
    state = _status(finish, bridged.provider)
    output: list[dict[str, Any]] = []
    parts = []
    if message.get("content"):
        parts.append(_text_part(message["content"]))
    if message.get("refusal"):
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    calls = message.get("tool_calls") or []
    if parts or not calls:
        item_status = "incomplete" if state["status"] == "incomplete" else "completed"
        output.append(_message_item(_new_id("msg_"), parts or [_text_part("")], item_status))
    for call in calls:
        function = call.get("function") or {}
        output.append(
            _call_item(
                _new_id("fc_"), call["id"], function.get("name") or "", function.get("arguments") or "", "completed"
            )
        )
    response_id = _new_id("resp_")
    response = _response(bridged, response_id, completion.get("created") or time.time(), completion.get("model"), state)
    response["output"] = output
    response["usage"] = responses_usage(usage)
    return response


@dataclass
class _Item:
    """An output item while it streams."""

    index: int
    item: dict[str, Any]
    part: dict[str, Any] | None = None  # the message's content part being written
    done: bool = False
    parts: list[dict[str, Any]] = field(default_factory=list)


class ResponsesStreamTranslator:
    """The chat adapter's chat.completion.chunk events → Responses stream events.

    response.created and response.in_progress on the first chunk; each text run, refusal and
    tool call becomes an output item (added → deltas → done); `data: [DONE]` ends the stream
    with response.completed (incomplete / failed) carrying the whole Response and its usage.
    """

    def __init__(self, chat: StreamTranslator, bridged: _Bridged) -> None:
        self.inner = chat
        self.bridged = bridged
        self.sequence = 0
        self.response_id = _new_id("resp_")
        self.created = time.time()
        self.model: Any = None
        self.started = False
        self.ended = False
        self.items: list[_Item] = []
        self.message: _Item | None = None  # the open message item, if any
        self.calls: dict[int, _Item] = {}  # chat tool_calls index → its function_call item
        self.finish: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        return self._convert(self.inner.feed(chunk))

    def close(self) -> bytes:
        return self._convert(self.inner.close())

    # -- chat events in ------------------------------------------------------------------------
    def _convert(self, chat_sse: bytes) -> bytes:
        if not chat_sse or self.ended:
            return b""
        out: list[bytes] = []
        for event in chat_sse.split(b"\n\n"):
            if not event.startswith(b"data:"):
                continue
            data = event[5:].strip()
            if data == b"[DONE]":
                out.extend(self._end())
                break
            chunk = json.loads(data)  # the chat adapter's own output: always JSON
            if chunk.get("error"):
                out.append(self._error(chunk["error"]))
                break
            out.extend(self._on_chunk(chunk))
        return b"".join(out)

    def _on_chunk(self, chunk: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        if not self.started:
            self.started = True
            self.model = chunk.get("model")
            snapshot = self._snapshot({"status": "in_progress", "incomplete_details": None, "error": None})
            out.append(self._emit("response.created", response=snapshot))
            out.append(self._emit("response.in_progress", response=snapshot))
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out.extend(self._text("output_text", delta["content"]))
            if delta.get("refusal"):
                out.extend(self._text("refusal", delta["refusal"]))
            for call in delta.get("tool_calls") or ():
                out.extend(self._tool_call(call))
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return out

    def _text(self, kind: str, text: str) -> list[bytes]:
        out: list[bytes] = []
        if self.message is None:
            out.extend(self._close_open())
            item = _Item(len(self.items), _message_item(_new_id("msg_"), [], "in_progress"))
            self.items.append(item)
            self.message = item
            out.append(self._emit("response.output_item.added", output_index=item.index, item=item.item))
        message = self.message
        if message.part is None or message.part["type"] != kind:
            out.extend(self._close_part(message))
            message.part = _text_part("") if kind == "output_text" else {"type": "refusal", "refusal": ""}
            out.append(self._emit("response.content_part.added", **self._where(message), part=message.part))
        part = message.part
        if kind == "output_text":
            part["text"] += text
            out.append(self._emit("response.output_text.delta", **self._where(message), delta=text, logprobs=[]))
        else:
            part["refusal"] += text
            out.append(self._emit("response.refusal.delta", **self._where(message), delta=text))
        return out

    def _tool_call(self, call: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        index = call.get("index", 0)
        function = call.get("function") or {}
        item = self.calls.get(index)
        if item is None or call.get("id"):  # a new call: the previous items are complete
            out.extend(self._close_open())
            fields = _call_item(_new_id("fc_"), call.get("id") or "", function.get("name") or "", "", "in_progress")
            item = _Item(len(self.items), fields)
            self.items.append(item)
            self.calls[index] = item
            out.append(self._emit("response.output_item.added", output_index=item.index, item=dict(item.item)))
        arguments = function.get("arguments")
        if arguments:
            item.item["arguments"] += arguments
            out.append(
                self._emit(
                    "response.function_call_arguments.delta",
                    item_id=item.item["id"],
                    output_index=item.index,
                    delta=arguments,
                )
            )
        return out

    # -- closing items -------------------------------------------------------------------------
    def _where(self, message: _Item) -> dict[str, Any]:
        return {"item_id": message.item["id"], "output_index": message.index, "content_index": len(message.parts)}

    def _close_part(self, message: _Item) -> list[bytes]:
        part = message.part
        if part is None:
            return []
        where = self._where(message)
        if part["type"] == "output_text":
            done = self._emit("response.output_text.done", **where, text=part["text"], logprobs=[])
        else:
            done = self._emit("response.refusal.done", **where, refusal=part["refusal"])
        message.parts.append(part)
        message.part = None
        return [done, self._emit("response.content_part.done", **where, part=part)]

    def _close_open(self) -> list[bytes]:
        out: list[bytes] = []
        status = "incomplete" if self.finish in ("length", "content_filter") else "completed"
        for item in self.items:
            if item.done:
                continue
            item.done = True
            if item.item["type"] == "message":
                out.extend(self._close_part(item))
                item.item = {**item.item, "status": status, "content": item.parts}
                self.message = None
            else:
                item.item = {**item.item, "status": "completed"}
                out.append(
                    self._emit(
                        "response.function_call_arguments.done",
                        item_id=item.item["id"],
                        output_index=item.index,
                        name=item.item["name"],
                        arguments=item.item["arguments"],
                    )
                )
            out.append(self._emit("response.output_item.done", output_index=item.index, item=item.item))
        return out

    def _end(self) -> list[bytes]:
        self.ended = True
        out = [] if self.started else self._on_chunk({})
        out.extend(self._close_open())
        state = _status(self.finish, self.bridged.provider)
        response = self._snapshot(state)
        response["output"] = [item.item for item in self.items]
        response["usage"] = responses_usage(self.bridged.chat.final_usage() or Usage())
        out.append(self._emit(_TERMINAL_EVENTS[state["status"]], response=response))
        return out

    def _error(self, error: dict[str, Any]) -> bytes:
        """A provider error inside the stream: the Responses `error` event. Its nested `error`
        object is what makes the SDK raise openai.APIError, as for chat streams."""
        self.ended = True
        code = error.get("code") or error.get("type")
        return self._emit("error", code=code, message=error.get("message") or "stream error", param=None, error=error)

    # -- writing events ------------------------------------------------------------------------
    def _snapshot(self, state: dict[str, Any]) -> dict[str, Any]:
        return _response(self.bridged, self.response_id, self.created, self.model, state)

    def _emit(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
