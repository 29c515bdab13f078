"""A simulated OpenAI API: chat completions, legacy completions, responses, embeddings, models.

Responses are built from the ``openai`` SDK's own pydantic types and serialised with
``exclude_unset``, so the fake sends what the real API sends (including explicit ``null``s
such as ``finish_reason`` on stream chunks and ``usage`` on chunks when usage was asked for).
The SDK is imported lazily, on the first request.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .http_server import FakeHTTPServer, JSONReply, RecordedRequest, Reply, StreamReply
from .synthetic import (
    PrefixCache,
    answer_text,
    count_tokens,
    embedding_vector,
    encode_floats_base64,
    instance_from_schema,
    reasoning_tokens_for,
    split_deltas,
    truncate_to_tokens,
)

__all__ = ["DEFAULT_MODELS", "FakeOpenAI"]

DEFAULT_MODELS: tuple[str, ...] = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-5",
    "gpt-5-mini",
    "o3",
    "o4-mini",
    "gpt-3.5-turbo-instruct",
    "text-embedding-3-small",
    "text-embedding-3-large",
)

_ALNUM = string.ascii_letters + string.digits
_HEX = "0123456789abcdef"
_IMAGE_TOKENS = 85  # what a low-detail image costs on OpenAI
_MESSAGE_OVERHEAD = 4  # role and separators per message, as tiktoken cookbooks count it
_JSON = (",", ":")  # OpenAI emits compact JSON for arguments and structured output
_PRIMING = 3  # every reply is primed with 3 tokens

# status → (error type, code, default message), as the real API words them.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: ("invalid_request_error", None, "The requested resource does not exist."),
    408: ("timeout", None, "Request timed out."),
    409: ("invalid_request_error", None, "The request conflicted with another request."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests per min (RPM): Limit 60, Used 60, Requested 1. Please try again in 1s.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
    504: ("server_error", None, "Gateway timeout."),
}
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


@dataclass(frozen=True)
class _ToolCall:
    call_id: str
    name: str
    arguments: str


@dataclass
class _Answer:
    """One generated answer, before it is dressed in an endpoint's wire format."""

    text: str | None
    tool_calls: list[_ToolCall] = field(default_factory=list)
    truncated: bool = False
    prompt_tokens: int = 0
    cached_tokens: int = 0
    visible_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def output_tokens(self) -> int:  # OpenAI counts reasoning inside completion/output tokens
        return self.visible_tokens + self.reasoning_tokens

    @property
    def finish_reason(self) -> str:
        if self.tool_calls:
            return "tool_calls"
        return "length" if self.truncated else "stop"


def _sse(payload: str) -> bytes:
    return b"data: " + payload.encode() + b"\n\n"


def _dump(model: Any) -> str:
    return str(model.model_dump_json(exclude_unset=True, by_alias=True))


def _content_text(content: Any) -> str:
    """The text of a message's ``content``: a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                text = part.get("text") or part.get("refusal")
                if isinstance(text, str):
                    texts.append(text)
        return " ".join(texts)
    return ""


def _content_images(content: Any) -> int:
    if not isinstance(content, list):
        return 0
    return sum(
        1
        for p in content
        if isinstance(p, dict) and p.get("type") in ("image_url", "input_image", "image", "input_file")
    )


def _message_tokens(message: Any) -> int:
    if not isinstance(message, dict):
        return _MESSAGE_OVERHEAD + count_tokens(str(message))
    tokens = _MESSAGE_OVERHEAD + count_tokens(_content_text(message.get("content")))
    tokens += _IMAGE_TOKENS * _content_images(message.get("content"))
    for call in message.get("tool_calls") or ():
        fn = (call.get("function") or {}) if isinstance(call, dict) else {}
        tokens += count_tokens(f"{fn.get('name', '')} {fn.get('arguments', '')}")
    for key in ("arguments", "output", "name"):  # responses input items
        value = message.get(key)
        if isinstance(value, str):
            tokens += count_tokens(value)
        elif isinstance(value, list):
            tokens += count_tokens(_content_text(value))
    return tokens


def _forces_tool(choice: Any) -> bool:
    """``"required"`` or a named function: the model must call a tool, even right after a tool
    result (instructor's re-ask after a validation error relies on it)."""
    return choice == "required" or (isinstance(choice, dict) and choice.get("type") == "function")


def _select_tools(tools: Sequence[tuple[str, Any]], choice: Any, parallel: bool) -> list[tuple[str, Any]]:
    """Which tools the simulated model calls: named → that one; else the first (two if parallel)."""
    if not tools or choice == "none":
        return []
    if isinstance(choice, dict):
        name = choice.get("name") or (choice.get("function") or {}).get("name")
        if name:
            return [t for t in tools if t[0] == name][:1] or list(tools[:1])
    return list(tools[:2]) if parallel and len(tools) >= 2 else list(tools[:1])


class FakeOpenAI(FakeHTTPServer):
    """A real HTTP server on 127.0.0.1 that speaks the OpenAI REST API.

    >>> with FakeOpenAI() as fake:                                  # doctest: +SKIP
    ...     client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test")
    ...     client.chat.completions.create(model="gpt-4o-mini", messages=[...])

    ``answer_words`` sets the length of text answers, ``words_per_chunk`` how many words each
    stream delta carries, ``embedding_dimensions`` the default vector size. ``api_key`` None
    accepts any bearer token; a string accepts only that one. ``record=False`` stops
    recording requests (long benchmarks). ``context_window``: prompt tokens (as counted for
    ``usage``) above it → 400 ``context_length_exceeded`` on chat completions and responses.
    """

    path_prefixes = ("/v1",)

    def __init__(
        self,
        *,
        latency: float = 0.0,
        ttft: float = 0.0,
        chunk_delay: float = 0.0,
        answer_words: int = 12,
        seed: int = 0,
        error_rate: float = 0.0,
        words_per_chunk: int = 2,
        embedding_dimensions: int = 8,
        api_key: str | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        record: bool = True,
        context_window: int = 128_000,
    ) -> None:
        self.answer_words = answer_words
        self.context_window = context_window
        self.words_per_chunk = words_per_chunk
        self.embedding_dimensions = embedding_dimensions
        self.api_key = api_key
        self.models = list(models)
        self._prompt_cache = PrefixCache()
        self._cache_lock = threading.Lock()
        self._ids = random.Random(seed)
        self._ids_lock = threading.Lock()
        super().__init__(
            latency=latency,
            ttft=ttft,
            chunk_delay=chunk_delay,
            error_rate=error_rate,
            seed=seed,
            record=record,
        )
        self.add_route("POST", "/chat/completions", self._chat)
        self.add_route("POST", "/completions", self._completions)
        self.add_route("POST", "/responses", self._responses)
        self.add_route("POST", "/embeddings", self._embeddings)
        self.add_route("GET", "/models", self._list_models, faults=False)
        self.add_route("GET", "/models/{model}", self._get_model, faults=False)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: pass as ``base_url`` to ``openai.OpenAI``."""
        return self.url + "/v1"

    def clear(self) -> None:
        """Forget recorded requests, scripted faults and the simulated prompt cache."""
        super().clear()
        with self._cache_lock:
            self._prompt_cache.clear()

    # --- wire hooks ----------------------------------------------------------------------

    def error_body(
        self, status: int, message: str | None, *, param: str | None = None, code: str | None = None
    ) -> dict[str, Any]:
        kind, default_code, default_message = _ERRORS.get(
            status,
            ("server_error", None, "The server had an error.")
            if status >= 500
            else ("invalid_request_error", None, "Invalid request."),
        )
        return {
            "error": {
                "message": message or default_message,
                "type": kind,
                "param": param,
                "code": code or default_code,
            }
        }

    def stream_error_event(self, message: str, index: int) -> bytes:
        # What OpenAI-compatible servers send mid-stream; the SDK raises openai.APIError on it.
        return _sse(json.dumps(self.error_body(500, message)))

    def authenticate(self, request: RecordedRequest) -> Reply | None:
        auth = request.headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        key = key.strip()
        if not auth and request.headers.get("api-key"):  # Azure OpenAI's key header
            scheme, key = "bearer", request.headers["api-key"].strip()
        if scheme.lower() != "bearer" or not key:
            return self.error(401, _NO_KEY, code="invalid_api_key")
        if self.api_key is not None and key != self.api_key:
            # Never echo a key: a log of this message must not leak it.
            return self.error(401, f"Incorrect API key provided: ...{key[-4:]}.", code="invalid_api_key")
        return None

    def default_headers(self, request: RecordedRequest) -> dict[str, str]:
        return {"openai-version": "2020-10-01"}

    # --- shared pieces -------------------------------------------------------------------

    def _id(self, prefix: str, n: int, alphabet: str = _ALNUM) -> str:
        with self._ids_lock:
            return prefix + "".join(self._ids.choices(alphabet, k=n))

    def _cached_tokens(self, parts: Sequence[Any], part_tokens: Sequence[int]) -> int:
        """Tokens of the longest leading run of ``parts`` (never the last) seen in an earlier prompt."""
        with self._cache_lock:
            hits = self._prompt_cache.lookup_and_store(parts)
        return sum(part_tokens[:hits])

    def _generate(
        self,
        *,
        model: str,
        parts: Sequence[Any],
        part_tokens: Sequence[int],
        topic: str,
        after_tool: bool,
        tools: Sequence[tuple[str, Any]],
        fmt: tuple[str, Any],
        max_tokens: int | None,
        stop: Sequence[str] = (),
    ) -> _Answer:
        """The answer to a prompt: tool calls, or text (plain, JSON object or schema instance)."""
        answer = _Answer(text=None)
        answer.prompt_tokens = sum(part_tokens) + _PRIMING
        answer.cached_tokens = self._cached_tokens(parts, part_tokens)
        if tools:
            for name, params in tools:
                schema = params if isinstance(params, dict) else {"type": "object", "properties": {}}
                args = json.dumps(instance_from_schema(schema), separators=_JSON)
                answer.tool_calls.append(_ToolCall(self._id("call_", 24), name, args))
                answer.visible_tokens += count_tokens(f"{name} {args}") + 3
        else:
            lead = "Simulated answer using the tool result about" if after_tool else "Simulated answer about"
            text = answer_text(topic, self.answer_words, lead=lead)
            kind, schema = fmt
            if kind == "json_schema":
                text = json.dumps(instance_from_schema(schema if isinstance(schema, dict) else {}), separators=_JSON)
            elif kind == "json_object":
                text = json.dumps({"answer": text}, separators=_JSON)
            for s in stop:
                if s and s in text:
                    text = text[: text.index(s)]
            if max_tokens is not None:
                text, answer.truncated = truncate_to_tokens(text, max(max_tokens, 0))
            answer.text = text
            answer.visible_tokens = count_tokens(text)
        answer.reasoning_tokens = reasoning_tokens_for(model, answer.visible_tokens)
        return answer

    def _missing(self, param: str) -> JSONReply:
        return self.error(
            400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )

    def _check_common(self, body: Any, required: str) -> JSONReply | None:
        if not isinstance(body, dict):
            return self.error(400, _BAD_JSON)
        if not body.get("model"):
            return self.error(400, "you must provide a model parameter", param="model")
        if body.get(required) is None:
            return self._missing(required)
        if body.get("stream_options") is not None and body.get("stream") is not True:
            return self.error(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="invalid_value",
            )
        return None

    @staticmethod
    def _max_tokens(body: dict[str, Any], *keys: str) -> int | None:
        for key in keys:
            value = body.get(key)
            if isinstance(value, int):
                return value
        return None

    @staticmethod
    def _stop(body: dict[str, Any]) -> list[str]:
        stop = body.get("stop")
        if isinstance(stop, str):
            return [stop]
        return [s for s in stop if isinstance(s, str)] if isinstance(stop, list) else []

    @staticmethod
    def _fingerprint(model: str) -> str:
        # Stable across processes (str hash() is salted per process).
        return "fp_" + hashlib.blake2b(model.encode(), digest_size=5).hexdigest()

    # --- POST /chat/completions ----------------------------------------------------------

    def _chat(self, request: RecordedRequest) -> Reply:
        body = request.json
        bad = self._check_common(body, "messages")
        if bad is not None:
            return bad
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            return self.error(
                400,
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                param="messages",
                code="empty_array",
            )
        model = str(body["model"])
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        last_role = last.get("role")
        topic = _content_text(last.get("content"))
        if last_role != "user":
            user_msgs = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
            if last_role not in ("tool", "function") and user_msgs:
                topic = _content_text(user_msgs[-1].get("content"))

        raw_tools = [
            t["function"]
            for t in body.get("tools") or ()
            if isinstance(t, dict) and t.get("type", "function") == "function" and isinstance(t.get("function"), dict)
        ]
        tools = [(str(f.get("name", "")), f.get("parameters")) for f in raw_tools]
        selected: list[tuple[str, Any]] = []
        if last_role == "user" or _forces_tool(body.get("tool_choice")):
            selected = _select_tools(tools, body.get("tool_choice"), body.get("parallel_tool_calls") is not False)

        fmt: tuple[str, Any] = ("text", None)
        response_format = body.get("response_format")
        if isinstance(response_format, dict):
            kind = response_format.get("type", "text")
            schema = (response_format.get("json_schema") or {}).get("schema") if kind == "json_schema" else None
            fmt = (str(kind), schema)

        # Tool definitions sit before the messages in the prompt, so they are part of the cached prefix.
        parts: list[Any] = []
        part_tokens: list[int] = []
        if body.get("tools"):
            parts.append({"tools": body["tools"]})
            part_tokens.append(count_tokens(json.dumps(body["tools"])))
        parts.extend(messages)
        part_tokens.extend(_message_tokens(m) for m in messages)
        prompt_tokens = sum(part_tokens) + _PRIMING
        if prompt_tokens > self.context_window:  # checked before _generate: no prompt-cache entry
            return self.error(
                400,
                f"This model's maximum context length is {self.context_window} tokens. However, your messages "
                f"resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
                param="messages",
                code="context_length_exceeded",
            )
        answer = self._generate(
            model=model,
            parts=parts,
            part_tokens=part_tokens,
            topic=topic,
            after_tool=last_role in ("tool", "function"),
            tools=selected,
            fmt=fmt,
            max_tokens=self._max_tokens(body, "max_completion_tokens", "max_tokens"),
            stop=self._stop(body),
        )
        n = body.get("n") if isinstance(body.get("n"), int) and body["n"] > 1 else 1
        usage = self._chat_usage(answer, n)
        head = {
            "id": self._id("chatcmpl-", 29),
            "created": int(time.time()),
            "model": model,
            "service_tier": "default",
            "system_fingerprint": self._fingerprint(model),
        }
        if body.get("stream") is True:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamReply(self._chat_chunks(head, answer, n, usage if include_usage else None))

        from openai.types.chat import ChatCompletion

        message: dict[str, Any] = {
            "role": "assistant",
            "content": answer.text,
            "refusal": None,
            "annotations": [],
        }
        if answer.tool_calls:
            message["tool_calls"] = [
                {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in answer.tool_calls
            ]
        choices = [
            {"index": i, "message": message, "logprobs": None, "finish_reason": answer.finish_reason} for i in range(n)
        ]
        completion = ChatCompletion.model_validate(
            {**head, "object": "chat.completion", "choices": choices, "usage": usage}
        )
        return JSONReply(200, _dump(completion).encode())

    @staticmethod
    def _chat_usage(answer: _Answer, n: int = 1) -> dict[str, Any]:
        completion_tokens = answer.output_tokens * n
        return {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": answer.prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": answer.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": answer.reasoning_tokens * n,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _chat_chunks(
        self, head: dict[str, Any], answer: _Answer, n: int, usage: dict[str, Any] | None
    ) -> Iterator[bytes]:
        from openai.types.chat import ChatCompletionChunk

        base = {**head, "object": "chat.completion.chunk"}
        if usage is not None:
            base["usage"] = None  # OpenAI sends an explicit null on every chunk but the last

        def chunk(index: int, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return _sse(_dump(ChatCompletionChunk.model_validate({**base, "choices": [choice]})))

        # A generator, as a provider streams: each event is built when it is sent, so the usage event
        # asked for by stream_options costs nothing before the first token.
        for i in range(n):
            yield chunk(i, {"role": "assistant", "content": "", "refusal": None})
            for piece in split_deltas(answer.text or "", self.words_per_chunk):
                yield chunk(i, {"content": piece})
            for k, call in enumerate(answer.tool_calls):
                first = {
                    "index": k,
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
                yield chunk(i, {"tool_calls": [first]})
                for piece in split_deltas(call.arguments, self.words_per_chunk):
                    yield chunk(i, {"tool_calls": [{"index": k, "function": {"arguments": piece}}]})
            yield chunk(i, {}, answer.finish_reason)
        if usage is not None:
            yield _sse(_dump(ChatCompletionChunk.model_validate({**base, "usage": usage, "choices": []})))
        yield b"data: [DONE]\n\n"

    # --- POST /completions (legacy) ------------------------------------------------------

    def _completions(self, request: RecordedRequest) -> Reply:
        body = request.json
        bad = self._check_common(body, "prompt")
        if bad is not None:
            return bad
        from openai.types import Completion, CompletionChoice

        model = str(body["model"])
        prompt = body["prompt"]
        # str | list[str] | list[int] | list[list[int]]: one choice per prompt.
        if isinstance(prompt, str) or (isinstance(prompt, list) and prompt and isinstance(prompt[0], int)):
            prompts: list[Any] = [prompt]
        elif isinstance(prompt, list) and prompt:
            prompts = prompt
        else:
            return self.error(400, "Invalid 'prompt': empty.", param="prompt", code="invalid_value")
        max_tokens = self._max_tokens(body, "max_tokens")
        answers: list[tuple[str, _Answer]] = []
        for p in prompts:
            text = p if isinstance(p, str) else " ".join(str(t) for t in p)
            tokens = count_tokens(text) if isinstance(p, str) else len(p)
            answer = self._generate(
                model=model,
                parts=[p],
                part_tokens=[tokens],
                topic=text,
                after_tool=False,
                tools=(),
                fmt=("text", None),
                max_tokens=max_tokens,
                stop=self._stop(body),
            )
            answer.prompt_tokens = tokens
            answers.append((text, answer))
        usage = {
            "prompt_tokens": sum(a.prompt_tokens for _, a in answers),
            "completion_tokens": sum(a.output_tokens for _, a in answers),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        head = {
            "id": self._id("cmpl-", 29),
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": self._fingerprint(model),
        }
        echo = body.get("echo") is True

        if body.get("stream") is not True:
            choices = [
                {
                    "text": (text if echo else "") + (a.text or ""),
                    "index": i,
                    "logprobs": None,
                    "finish_reason": a.finish_reason,
                }
                for i, (text, a) in enumerate(answers)
            ]
            completion = Completion.model_validate({**head, "choices": choices, "usage": usage})
            return JSONReply(200, _dump(completion).encode())

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = dict(head)
        if include_usage:
            base["usage"] = None

        def chunk(index: int, text: str, finish_reason: str | None) -> bytes:
            # model_construct: the type says finish_reason is never null, but on stream chunks it is.
            choice = CompletionChoice.model_construct(
                text=text, index=index, logprobs=None, finish_reason=finish_reason
            )
            return _sse(_dump(Completion.model_validate({**base, "choices": [choice]})))

        events: list[bytes] = []
        for i, (text, a) in enumerate(answers):
            pieces = split_deltas(a.text or "", self.words_per_chunk)
            if echo:
                pieces.insert(0, text)
            events.extend(chunk(i, piece, None) for piece in pieces)
            events.append(chunk(i, "", a.finish_reason))
        if include_usage:
            events.append(_sse(_dump(Completion.model_validate({**base, "usage": usage, "choices": []}))))
        events.append(b"data: [DONE]\n\n")
        return StreamReply(events)

    # --- POST /responses -----------------------------------------------------------------

    def _responses(self, request: RecordedRequest) -> Reply:
        body = request.json
        bad = self._check_common(body, "input")
        if bad is not None:
            return bad
        model = str(body["model"])
        raw_input = body["input"]
        items: list[Any] = [{"role": "user", "content": raw_input}] if isinstance(raw_input, str) else list(raw_input)
        if not items:
            return self.error(400, "Invalid 'input': empty array.", param="input", code="empty_array")

        text_cfg: dict[str, Any] = body["text"] if isinstance(body.get("text"), dict) else {}
        fmt_cfg: dict[str, Any] = text_cfg["format"] if isinstance(text_cfg.get("format"), dict) else {"type": "text"}
        kind = str(fmt_cfg.get("type", "text"))
        if kind == "json_schema":
            for key in ("name", "schema"):
                if key not in fmt_cfg:
                    return self._missing(f"text.format.{key}")

        last = items[-1] if isinstance(items[-1], dict) else {"role": "user", "content": str(items[-1])}
        last_type = last.get("type", "message")
        from_user = last_type == "message" and last.get("role") == "user"
        after_tool = last_type in ("function_call_output", "custom_tool_call_output")
        if after_tool:
            topic = _content_text(last.get("output"))
        else:
            users = [i for i in items if isinstance(i, dict) and i.get("role") == "user"]
            topic = _content_text(users[-1].get("content")) if users else ""

        fn_tools = [t for t in body.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"]
        tools = [(str(t.get("name", "")), t.get("parameters")) for t in fn_tools]
        selected: list[tuple[str, Any]] = []
        if from_user or _forces_tool(body.get("tool_choice")):
            selected = _select_tools(tools, body.get("tool_choice"), body.get("parallel_tool_calls") is not False)

        parts: list[Any] = []
        part_tokens: list[int] = []
        if body.get("instructions"):
            parts.append({"instructions": body["instructions"]})
            part_tokens.append(_MESSAGE_OVERHEAD + count_tokens(str(body["instructions"])))
        if fn_tools:
            parts.append({"tools": fn_tools})
            part_tokens.append(count_tokens(json.dumps(fn_tools)))
        parts.extend(items)
        part_tokens.extend(_message_tokens(i) for i in items)
        if sum(part_tokens) + _PRIMING > self.context_window:
            # The Responses API's wording (a stream gets it as a 400 here, not as an event).
            return self.error(
                400,
                "Your input exceeds the context window of this model. Please adjust your input and try again.",
                param="input",
                code="context_length_exceeded",
            )

        answer = self._generate(
            model=model,
            parts=parts,
            part_tokens=part_tokens,
            topic=topic,
            after_tool=after_tool,
            tools=selected,
            fmt=(kind, fmt_cfg.get("schema")),
            max_tokens=self._max_tokens(body, "max_output_tokens"),
        )
        tool_choice = body.get("tool_choice", "auto")
        if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
            tool_choice = {"type": "function", "name": tool_choice.get("name")}
        elif tool_choice not in ("none", "auto", "required"):
            tool_choice = "auto"
        snapshot: dict[str, Any] = {
            "id": self._id("resp_", 48, _HEX),
            "object": "response",
            "created_at": int(time.time()),
            "status": "in_progress",
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": model,
            "output": [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True) is not False,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "temperature": body.get("temperature", 1.0),
            "text": {"format": fmt_cfg, "verbosity": text_cfg.get("verbosity", "medium")},
            "tool_choice": tool_choice,
            "tools": [
                {
                    "type": "function",
                    "name": t.get("name"),
                    "description": t.get("description"),
                    "parameters": t.get("parameters"),
                    "strict": t.get("strict", True),
                }
                for t in fn_tools
            ],
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": None,
            "user": None,
            "metadata": body.get("metadata") or {},
        }
        output = self._response_output(answer)
        final = {
            **snapshot,
            "status": "incomplete" if answer.truncated else "completed",
            "incomplete_details": {"reason": "max_output_tokens"} if answer.truncated else None,
            "output": output,
            "usage": {
                "input_tokens": answer.prompt_tokens,
                "input_tokens_details": {"cached_tokens": answer.cached_tokens, "cache_write_tokens": 0},
                "output_tokens": answer.output_tokens,
                "output_tokens_details": {"reasoning_tokens": answer.reasoning_tokens},
                "total_tokens": answer.prompt_tokens + answer.output_tokens,
            },
        }
        from openai.types.responses import Response

        if body.get("stream") is not True:
            return JSONReply(200, _dump(Response.model_validate(final)).encode())
        return StreamReply(self._response_events(snapshot, final, answer), error_event=self._response_error_event)

    def _response_output(self, answer: _Answer) -> list[dict[str, Any]]:
        if answer.tool_calls:
            return [
                {
                    "id": self._id("fc_", 48, _HEX),
                    "type": "function_call",
                    "status": "completed",
                    "call_id": c.call_id,
                    "name": c.name,
                    "arguments": c.arguments,
                }
                for c in answer.tool_calls
            ]
        return [
            {
                "id": self._id("msg_", 48, _HEX),
                "type": "message",
                "status": "incomplete" if answer.truncated else "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": answer.text or "", "annotations": [], "logprobs": []}],
            }
        ]

    def _response_events(self, snapshot: dict[str, Any], final: dict[str, Any], answer: _Answer) -> list[bytes]:
        from openai.types.responses import (
            ResponseCompletedEvent,
            ResponseContentPartAddedEvent,
            ResponseContentPartDoneEvent,
            ResponseCreatedEvent,
            ResponseFunctionCallArgumentsDeltaEvent,
            ResponseFunctionCallArgumentsDoneEvent,
            ResponseIncompleteEvent,
            ResponseInProgressEvent,
            ResponseOutputItemAddedEvent,
            ResponseOutputItemDoneEvent,
            ResponseTextDeltaEvent,
            ResponseTextDoneEvent,
        )

        events: list[bytes] = []

        def emit(cls: Any, **fields: Any) -> None:
            event = cls(**fields, sequence_number=len(events))
            events.append(f"event: {event.type}\ndata: {_dump(event)}\n\n".encode())

        emit(ResponseCreatedEvent, type="response.created", response=snapshot)
        emit(ResponseInProgressEvent, type="response.in_progress", response=snapshot)
        for index, item in enumerate(final["output"]):
            item_id = item["id"]
            if item["type"] == "function_call":
                emit(
                    ResponseOutputItemAddedEvent,
                    type="response.output_item.added",
                    output_index=index,
                    item={**item, "status": "in_progress", "arguments": ""},
                )
                for piece in split_deltas(item["arguments"], self.words_per_chunk):
                    emit(
                        ResponseFunctionCallArgumentsDeltaEvent,
                        type="response.function_call_arguments.delta",
                        item_id=item_id,
                        output_index=index,
                        delta=piece,
                    )
                # The API sends the function name here; only some SDK releases model it (2.x requires it).
                named = {"name": item["name"]} if "name" in ResponseFunctionCallArgumentsDoneEvent.model_fields else {}
                emit(
                    ResponseFunctionCallArgumentsDoneEvent,
                    type="response.function_call_arguments.done",
                    item_id=item_id,
                    output_index=index,
                    arguments=item["arguments"],
                    **named,
                )
            else:
                text = item["content"][0]["text"]
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                emit(
                    ResponseOutputItemAddedEvent,
                    type="response.output_item.added",
                    output_index=index,
                    item={**item, "status": "in_progress", "content": []},
                )
                where = {"item_id": item_id, "output_index": index, "content_index": 0}
                emit(ResponseContentPartAddedEvent, type="response.content_part.added", **where, part=part)
                for piece in split_deltas(text, self.words_per_chunk):
                    emit(
                        ResponseTextDeltaEvent,
                        type="response.output_text.delta",
                        **where,
                        delta=piece,
                        logprobs=[],
                    )
                emit(ResponseTextDoneEvent, type="response.output_text.done", **where, text=text, logprobs=[])
                emit(
                    ResponseContentPartDoneEvent,
                    type="response.content_part.done",
                    **where,
                    part={**part, "text": text},
                )
            emit(ResponseOutputItemDoneEvent, type="response.output_item.done", output_index=index, item=item)
        if answer.truncated:
            emit(ResponseIncompleteEvent, type="response.incomplete", response=final)
        else:
            emit(ResponseCompletedEvent, type="response.completed", response=final)
        return events

    def _response_error_event(self, message: str, index: int) -> bytes:
        # The Responses API's `error` event has flat fields; the nested "error" object is what
        # makes the SDK raise openai.APIError, as it does for chat streams.
        error = self.error_body(500, message)["error"]
        payload = {
            "type": "error",
            "sequence_number": index,
            "code": "server_error",
            "message": message,
            "param": None,
            "error": error,
        }
        return f"event: error\ndata: {json.dumps(payload)}\n\n".encode()

    # --- POST /embeddings ----------------------------------------------------------------

    def _embeddings(self, request: RecordedRequest) -> Reply:
        body = request.json
        bad = self._check_common(body, "input")
        if bad is not None:
            return bad
        from openai.types import CreateEmbeddingResponse

        raw = body["input"]
        # str | list[str] | list[int] | list[list[int]]
        if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
            inputs: list[Any] = [raw]
        elif isinstance(raw, list):
            inputs = raw
        else:
            inputs = []
        if not inputs or any(x == "" or x == [] for x in inputs):
            return self.error(
                400,
                "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                param="input",
                code="invalid_value",
            )
        dimensions = body.get("dimensions")
        dims = dimensions if isinstance(dimensions, int) and dimensions > 0 else self.embedding_dimensions
        vectors = []
        tokens = 0
        for x in inputs:
            key = x if isinstance(x, str) else " ".join(str(t) for t in x)
            tokens += count_tokens(x) if isinstance(x, str) else len(x)
            vectors.append(embedding_vector(key, dims))
        result = CreateEmbeddingResponse.model_validate(
            {
                "object": "list",
                "model": str(body["model"]),
                "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )
        if body.get("encoding_format") != "base64":
            return JSONReply(200, _dump(result).encode())
        payload = result.model_dump(mode="json", exclude_unset=True, by_alias=True)
        for item, vector in zip(payload["data"], vectors, strict=True):
            item["embedding"] = encode_floats_base64(vector)
        return JSONReply(200, payload)

    # --- GET /models ---------------------------------------------------------------------

    def _model_obj(self, name: str) -> dict[str, Any]:
        from openai.types import Model

        owner = "openai" if name.startswith(("gpt-", "o", "text-")) else "system"
        return Model(id=name, object="model", created=1_700_000_000, owned_by=owner).model_dump(
            mode="json", exclude_unset=True
        )

    def _list_models(self, request: RecordedRequest) -> Reply:
        return JSONReply(200, {"object": "list", "data": [self._model_obj(m) for m in self.models]})

    def _get_model(self, request: RecordedRequest) -> Reply:
        name = request.path_params.get("model", "")
        if name not in self.models:
            return self.error(404, f"The model '{name}' does not exist", param="model", code="model_not_found")
        return JSONReply(200, self._model_obj(name))
