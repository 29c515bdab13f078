"""A simulated Anthropic Messages API: messages (JSON and SSE), count_tokens, models.

Every response body and stream event is built from the ``anthropic`` SDK's own pydantic
types and serialised with ``exclude_unset``, so the fake sends what the real API sends,
including its explicit ``null``s (``stop_reason`` in ``message_start``, ``stop_sequence``).
Request bodies are validated against the SDK's request ``TypedDict``s, turned into a strict,
eager validator (see :func:`_request_validator`), so malformed requests get the real API's
pydantic-style messages such as ``messages.0.content.0.tool_use.text: Extra inputs are not
permitted``. The SDK is imported lazily, on the first request.

Simulated behaviour (all deterministic):

- answers: the same text :class:`~unillm.testing.FakeOpenAI` gives for the same conversation;
- ``tools`` + ``tool_choice`` → ``tool_use`` blocks whose input is generated from ``input_schema``
  (``auto`` says a short sentence first; ``any``/``tool`` do not, as the docs describe, and
  they call a tool even right after a tool result);
- ``thinking`` (``enabled``/``adaptive``) → a signed thinking block first, billed as output;
- ``output_config.format`` (structured outputs) → the text is JSON generated from the schema;
- prompt caching with ``cache_control`` breakpoints (TTL, 20-block lookback, minimum size);
- ``max_tokens``, ``stop_sequences`` and the context window end generation like the real API.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json
import random
import re
import string
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .http_server import FakeHTTPServer, JSONReply, RecordedRequest, Reply, StreamReply, require_sdk
from .synthetic import answer_text, count_tokens, instance_from_schema, split_deltas, truncate_to_tokens

if TYPE_CHECKING:
    import pydantic_core

__all__ = ["DEFAULT_MODELS", "FORCEABLE_STOP_REASONS", "FakeAnthropic"]

DEFAULT_MODELS: tuple[str, ...] = (
    "claude-opus-4-8",
    "claude-opus-4-7",
    "claude-sonnet-4-6",
    "claude-sonnet-4-5",
    "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5",
    "claude-haiku-4-5-20251001",
)

# Stop reasons the simulated model never reaches by itself; ``force_stop_reason`` provides them.
FORCEABLE_STOP_REASONS = frozenset({"refusal", "pause_turn", "model_context_window_exceeded"})

_ALNUM = string.ascii_letters + string.digits
_JSON = (",", ":")
_MESSAGE_OVERHEAD = 3  # role and turn markers per message
_IMAGE_TOKENS = 1_600  # a ~1092x1092 image (width * height / 750), the size the vision docs use
_MIN_THINKING_BUDGET = 1024
_CACHE_LOOKBACK = 20  # a breakpoint finds earlier cache entries at most this many blocks back
_MAX_BREAKPOINTS = 4
_CACHE_TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
# What the base server passes when a stream fault has no message; Anthropic says "Overloaded".
_BASE_STREAM_ERROR = "The server had an error while streaming the response."

# status → (error type, default message); the types are the ones the errors docs list.
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "There was an issue with the format or content of your request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "There is an issue with your billing or payment information."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found"),
    405: ("invalid_request_error", "Method not allowed"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed your organization's rate limit. Please try again later.",
    ),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}

# Messages the real API sends, word for word (collected from API responses quoted in bug reports).
_SYSTEM_ROLE = (
    'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
    'not "system" as an input message role.'
)
_BUDGET_VS_MAX_TOKENS = (
    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"
)
_FORCED_TOOL_WITH_THINKING = "Thinking may not be enabled when tool_choice forces tool use."
_TEMPERATURE_AND_TOP_P = "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
_THINKING_FIRST = (
    "Expected `thinking` or `redacted_thinking`, but found `{found}`. When `thinking` is enabled, a final "
    "`assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and "
    "`tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this "
    "requirement, disable `thinking`. Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)
_THINKING_WHEN_DISABLED = (
    "When thinking is disabled, an `assistant` message in the final position cannot contain `thinking`. "
    "To use thinking blocks, enable `thinking` in your request."
)
_THINKING_BLOCKS = ("thinking", "redacted_thinking")
_TEMPERATURE_WITH_THINKING = "`temperature` may only be set to 1 when thinking is enabled or in adaptive mode"
# API version 2026-10-21 (what anthropic>=2 sends) dropped the sampling parameters: its request
# types have no temperature/top_p/top_k, so they fail as extra inputs. Older versions accept them.
_SAMPLING_REMOVED_IN = "2026-10-21"
_SAMPLING = ("temperature", "top_p", "top_k")


# --- request validation against the SDK's TypedDicts ----------------------------------------


class _TagOrDefault:
    """Discriminator for a union where one member may omit its tag (custom tools omit ``type``)."""

    def __init__(self, key: str, default: str) -> None:
        self.key = key
        self.default = default
        self.__name__ = repr(key)  # pydantic names a callable discriminator by __name__ in messages

    def __call__(self, value: Any) -> str | None:
        if not isinstance(value, dict):
            return None
        tag = value.get(self.key)
        return self.default if tag is None else str(tag)


def _strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a TypedDict core schema the way the real API validates.

    - ``Iterable[...]`` fields validate lazily in pydantic; the API checks every item → ``list``.
    - Unions of typed dicts with a literal ``type``/``role`` become tagged unions, so an unknown
      block type gets one "Input tag ... does not match" error and locations carry the tag
      (``content.0.image.source``), as the API's do. Response models the SDK also accepts
      (``TextBlock`` next to ``TextBlockParam``) are dropped when a param shares their tag.
    - Unknown keys are rejected ("Extra inputs are not permitted").
    """
    defs: dict[str, Any] = {d["ref"]: d for d in schema.get("definitions", [])}

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while node.get("type") == "definition-ref":
            node = defs[node["schema_ref"]]
        return node

    def tags_of(node: dict[str, Any], key: str) -> tuple[list[str], bool] | None:
        node = resolve(node)
        if node.get("type") == "typed-dict":
            fld = node["fields"].get(key)
            if fld is None:
                return None
            inner, required = fld["schema"], bool(fld.get("required", True))
        elif node.get("type") == "model" and node["schema"].get("type") == "model-fields":
            fld = node["schema"]["fields"].get(key)
            if fld is None:
                return None
            inner, required = fld["schema"], True
        else:
            return None
        while inner.get("type") in ("default", "nullable"):
            inner, required = inner["schema"], False
        expected = inner.get("expected") if inner.get("type") == "literal" else None
        if not expected or not all(isinstance(t, str) for t in expected):
            return None
        return list(expected), required

    def flatten(choices: list[Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for choice in choices:
            node = choice[0] if isinstance(choice, tuple) else choice
            target = resolve(node)
            if target.get("type") == "union":
                out.extend(flatten(target["choices"]))
            elif target.get("type") == "tagged-union":
                out.extend(flatten(list(target["choices"].values())))
            else:
                out.append(node)
        return out

    def convert_union(node: dict[str, Any]) -> dict[str, Any]:
        choices = flatten(node["choices"])
        for key in ("type", "role"):
            tagged: dict[str, Any] = {}
            default: str | None = None
            usable = True
            for choice in choices:
                found = tags_of(choice, key)
                if found is None:
                    usable = False
                    break
                tags, required = found
                if all(t in tagged for t in tags):
                    continue  # a response model twin of a param already listed
                for t in tags:
                    tagged.setdefault(t, choice)
                if not required:
                    if default is not None:
                        usable = False
                        break
                    default = tags[0]
            if usable and len(tagged) > 1:
                discriminator: Any = key if default is None else _TagOrDefault(key, default)
                return {"type": "tagged-union", "choices": tagged, "discriminator": discriminator}
        # An untagged union (str | list): label members "~" so locations stay field paths.
        return {**node, "choices": [(c[0] if isinstance(c, tuple) else c, "~") for c in node["choices"]]}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, tuple):
            return tuple(walk(v) for v in node)
        if not isinstance(node, dict):
            return node
        kind = node.get("type")
        if kind == "generator":
            node["type"] = "list"
        elif kind == "typed-dict":
            node["extra_behavior"] = "forbid"
        for key, value in list(node.items()):
            if isinstance(value, (dict, list, tuple)):
                node[key] = walk(value)
        return convert_union(node) if kind == "union" else node

    result: dict[str, Any] = walk(schema)
    return result


@functools.cache
def _request_validator(kind: str) -> pydantic_core.SchemaValidator:
    """The validator for ``create`` / ``create_stream`` / ``count_tokens`` bodies (built once)."""
    import pydantic
    import pydantic_core
    from anthropic.types.message_count_tokens_params import MessageCountTokensParams
    from anthropic.types.message_create_params import (
        MessageCreateParamsNonStreaming,
        MessageCreateParamsStreaming,
    )

    types: dict[str, Any] = {
        "create": MessageCreateParamsNonStreaming,
        "create_stream": MessageCreateParamsStreaming,
        "count_tokens": MessageCountTokensParams,
    }
    schema = copy.deepcopy(pydantic.TypeAdapter(types[kind]).core_schema)
    return pydantic_core.SchemaValidator(_strict_schema(schema))  # type: ignore[arg-type]


def _validation_message(exc: pydantic_core.ValidationError) -> str:
    """One ``path: message`` line, like the API's: the most specific (deepest) error wins."""

    def path(loc: tuple[Any, ...]) -> list[Any]:
        out: list[Any] = []
        for i, part in enumerate(loc):
            if part == "~":
                continue
            # The API validates a message's fields directly: no "user"/"assistant" tag in paths.
            if i >= 2 and loc[i - 2] == "messages" and isinstance(loc[i - 1], int) and isinstance(part, str):
                continue
            out.append(part)
        return out

    errors = exc.errors(include_url=False)
    best = max(errors, key=lambda e: len(path(e["loc"])))  # max() keeps the first of equals
    where = ".".join(str(p) for p in path(best["loc"]))
    # A callable discriminator is shown as "'type'()"; the API names the field.
    message = re.sub(r"using '(\w+)'\(\)", r"using '\1'", str(best["msg"]))
    return f"{where}: {message}" if where else message


def _sampling_problem(sampling: Mapping[str, Any]) -> str | None:
    """Type and range checks for the sampling parameters older API versions accept."""
    for key, value in sampling.items():
        if value is None:
            continue
        if key == "top_k":
            if not isinstance(value, int) or isinstance(value, bool):
                return "top_k: Input should be a valid integer"
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"{key}: Input should be a valid number"
        if value < 0:
            return f"{key}: Input should be greater than or equal to 0"
        if value > 1:
            return f"{key}: Input should be less than or equal to 1"
    return None


def _model_version(model: str) -> tuple[int, int] | None:
    """``claude-sonnet-4-5-20250929`` → (4, 5); ``claude-3-5-sonnet-...`` → (3, 5); else None."""
    m = re.match(r"claude-(?:[a-z]+-)?(\d+)(?:-(\d{1,2}))?(?:-|$)", model)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2) or 0)


# --- prompt accounting and the simulated prompt cache --------------------------------------


@dataclass(frozen=True)
class _Unit:
    """One block of the prompt in cache order (tools, system, messages) and what it costs."""

    payload: Any
    tokens: int
    ttl: str | None = None  # set when the block carries cache_control: a breakpoint


def _without_cache_control(block: Any) -> Any:
    # Moving a breakpoint must not change the prefix it ends: the marker is not content.
    if isinstance(block, dict) and "cache_control" in block:
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def _ttl(block: Any) -> str | None:
    control = block.get("cache_control") if isinstance(block, dict) else None
    if isinstance(control, dict) and control.get("type") == "ephemeral":
        return str(control.get("ttl") or "5m")
    return None


def _text_of(content: Any) -> str:
    """The text blocks of a message's content, joined like the OpenAI fake joins text parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return " ".join(b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text" and b.get("text"))


def _block_tokens(block: Any) -> int:
    if isinstance(block, str):
        return count_tokens(block)
    kind = block.get("type")
    if kind == "text":
        return count_tokens(block.get("text", ""))
    if kind in ("image", "document"):
        source = block.get("source") or {}
        if source.get("type") == "text":
            return count_tokens(str(source.get("data", "")))
        return _IMAGE_TOKENS
    if kind == "thinking":
        return count_tokens(block.get("thinking", ""))
    if kind == "tool_use":
        return count_tokens(f"{block.get('name', '')} {json.dumps(block.get('input', {}))}") + 3
    if kind == "tool_result":
        content = block.get("content")
        inner = [content] if isinstance(content, str) else content if isinstance(content, list) else []
        return 3 + sum(_block_tokens(b) for b in inner)
    return count_tokens(json.dumps(_without_cache_control(block)))


def _prompt_units(body: Mapping[str, Any]) -> list[_Unit]:
    """The prompt as cacheable blocks, in the order the cache hashes them: tools, system, messages."""
    units: list[_Unit] = []
    for tool in body.get("tools") or ():
        units.append(_Unit(_without_cache_control(tool), count_tokens(json.dumps(tool)), _ttl(tool)))
    system = body.get("system")
    if isinstance(system, str) and system:
        units.append(_Unit(system, count_tokens(system)))
    elif isinstance(system, list):
        for block in system:
            units.append(_Unit(_without_cache_control(block), _block_tokens(block), _ttl(block)))
    for message in body.get("messages") or ():
        content = message.get("content")
        blocks = [content] if isinstance(content, str) else list(content or ())
        for j, block in enumerate(blocks):
            overhead = _MESSAGE_OVERHEAD if j == 0 else 0
            payload = {"role": message.get("role"), "block": _without_cache_control(block)}
            units.append(_Unit(payload, _block_tokens(block) + overhead, _ttl(block)))
        if not blocks:
            units.append(_Unit({"role": message.get("role")}, _MESSAGE_OVERHEAD))
    top = _ttl(body)  # top-level cache_control marks the last cacheable block
    if top and units and units[-1].ttl is None:
        last = units[-1]
        units[-1] = _Unit(last.payload, last.tokens, top)
    return units


@dataclass(frozen=True)
class _CacheUse:
    read: int = 0
    created_5m: int = 0
    created_1h: int = 0

    @property
    def created(self) -> int:
        return self.created_5m + self.created_1h


class _BreakpointCache:
    """Anthropic-style prompt cache: entries are written at breakpoints and expire after their TTL.

    A request reads the longest earlier-written prefix found at most 20 blocks before one of
    its breakpoints, and writes every breakpoint after that (when the prefix reaches the
    model's minimum cacheable length). Not thread-safe: callers hold a lock.
    """

    def __init__(self) -> None:
        self._expires: dict[bytes, tuple[float, float]] = {}  # digest → (expiry, ttl seconds)

    def clear(self) -> None:
        self._expires.clear()

    def use(self, model: str, units: Sequence[_Unit], min_tokens: int, now: float) -> _CacheUse:
        breakpoints = [k for k, u in enumerate(units) if u.ttl]
        if not breakpoints:
            return _CacheUse()
        digests: list[bytes] = []
        totals: list[int] = []
        digest = hashlib.blake2b(model.encode(), digest_size=16).digest()
        total = 0
        for unit in units:
            blob = json.dumps(unit.payload, sort_keys=True, separators=_JSON, default=str).encode()
            digest = hashlib.blake2b(digest + blob, digest_size=16).digest()
            total += unit.tokens
            digests.append(digest)
            totals.append(total)

        def live(k: int) -> bool:
            entry = self._expires.get(digests[k])
            return entry is not None and entry[0] > now

        hit = -1
        for b in reversed(breakpoints):
            for k in range(b, max(b - _CACHE_LOOKBACK, -1), -1):
                if k <= hit:
                    break
                if live(k):
                    hit = k
                    break
        if hit >= 0:  # a read refreshes the entry's lifetime
            _, ttl_seconds = self._expires[digests[hit]]
            self._expires[digests[hit]] = (now + ttl_seconds, ttl_seconds)
        read = totals[hit] if hit >= 0 else 0
        created = {"5m": 0, "1h": 0}
        start = read
        for b in breakpoints:
            if b <= hit or totals[b] < min_tokens:
                continue
            ttl = str(units[b].ttl)
            seconds = _CACHE_TTL_SECONDS.get(ttl, _CACHE_TTL_SECONDS["5m"])
            self._expires[digests[b]] = (now + seconds, seconds)
            created["1h" if ttl == "1h" else "5m"] += totals[b] - start
            start = totals[b]
        return _CacheUse(read=read, created_5m=created["5m"], created_1h=created["1h"])


# --- the generated answer --------------------------------------------------------------------


@dataclass
class _Block:
    """One generated content block, before it is dressed as JSON or stream events."""

    type: str  # "text" | "thinking" | "tool_use"
    text: str = ""
    signature: str = ""
    tool_id: str = ""
    name: str = ""
    input: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        if self.type == "tool_use":
            return count_tokens(f"{self.name} {json.dumps(self.input)}") + 3
        return count_tokens(self.text)


@dataclass
class _Answer:
    blocks: list[_Block]
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None
    refusal: bool = False
    input_tokens: int = 0
    cache: _CacheUse = field(default_factory=_CacheUse)
    thinking: bool = False

    @property
    def output_tokens(self) -> int:
        return sum(b.tokens for b in self.blocks)

    @property
    def thinking_tokens(self) -> int:
        return sum(b.tokens for b in self.blocks if b.type == "thinking")


def _sse(event: str, payload: str) -> bytes:
    return f"event: {event}\ndata: {payload}\n\n".encode()


def _dump(model: Any) -> str:
    return json.dumps(model.model_dump(mode="json", exclude_unset=True, by_alias=True), separators=_JSON)


class FakeAnthropic(FakeHTTPServer):
    """A real HTTP server on 127.0.0.1 that speaks the Anthropic Messages API.

    >>> with FakeAnthropic() as fake:                                   # doctest: +SKIP
    ...     client = anthropic.Anthropic(base_url=fake.base_url, api_key="sk-ant-test")
    ...     client.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=[...])

    Knobs (plain attributes, may change while serving; see also :class:`FakeHTTPServer`):

    ``answer_words``          length of text answers (same text as ``FakeOpenAI`` gives)
    ``words_per_chunk``       words per ``text_delta`` / ``thinking_delta``
    ``thinking_words``        length of the simulated thinking
    ``context_window``        prompt tokens above this → 400 ``prompt is too long``; a long answer
                              stops with ``model_context_window_exceeded``
    ``min_cache_tokens``      shortest prefix the cache stores (the API's minimum is 1024 to
                              4096 tokens depending on the model)
    ``force_stop_reason``     ``"refusal"``, ``"pause_turn"``, ``"model_context_window_exceeded"``
                              or None: the stop reason of every following answer
    ``api_key``               None accepts any key; a string accepts only that one (sent as
                              ``x-api-key`` or, as anthropic>=2 does, ``Authorization: Bearer``)
    ``system_message_models`` model-name prefixes that accept ``role: "system"`` messages
                              (mid-conversation system messages; Opus 4.8 per the docs)
    ``reject_unknown_models`` answer 404 ``not_found_error`` for a model not in ``models``
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        ttft: float = 0.0,
        chunk_delay: float = 0.0,
        answer_words: int = 12,
        thinking_words: int = 24,
        words_per_chunk: int = 2,
        seed: int = 0,
        error_rate: float = 0.0,
        context_window: int = 200_000,
        min_cache_tokens: int = 1024,
        api_key: str | None = None,
        models: Sequence[str] = DEFAULT_MODELS,
        system_message_models: Sequence[str] = ("claude-opus-4-8",),
        reject_unknown_models: bool = False,
        record: bool = True,
    ) -> None:
        require_sdk("anthropic", "FakeAnthropic")
        self.answer_words = answer_words
        self.thinking_words = thinking_words
        self.words_per_chunk = words_per_chunk
        self.context_window = context_window
        self.min_cache_tokens = min_cache_tokens
        self.api_key = api_key
        self.models = list(models)
        self.system_message_models = tuple(system_message_models)
        self.reject_unknown_models = reject_unknown_models
        self._force_stop_reason: str | None = None
        self._cache = _BreakpointCache()
        self._cache_lock = threading.Lock()
        self._ids = random.Random(seed)
        self._ids_lock = threading.Lock()
        self._thread_request = threading.local()  # the request being answered, for error bodies
        super().__init__(
            latency=latency,
            ttft=ttft,
            chunk_delay=chunk_delay,
            error_rate=error_rate,
            seed=seed,
            record=record,
        )
        # The random faults a real Anthropic endpoint gives: rate limits, overloads, server errors.
        self.faults.random_statuses = ((429, 0.5), (529, 0.3), (500, 0.2))
        self.add_route("POST", "/v1/messages", self._messages)
        self.add_route("POST", "/v1/messages/count_tokens", self._count_tokens)
        self.add_route("GET", "/v1/models", self._list_models, faults=False)
        self.add_route("GET", "/v1/models/{model}", self._get_model, faults=False)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: pass as ``base_url`` to ``anthropic.Anthropic`` (it adds ``/v1/...``)."""
        return self.url

    @property
    def force_stop_reason(self) -> str | None:
        return self._force_stop_reason

    @force_stop_reason.setter
    def force_stop_reason(self, value: str | None) -> None:
        if value is not None and value not in FORCEABLE_STOP_REASONS:
            raise ValueError(f"force_stop_reason must be one of {sorted(FORCEABLE_STOP_REASONS)} or None")
        self._force_stop_reason = value

    def clear(self) -> None:
        """Forget recorded requests, scripted faults and the simulated prompt cache."""
        super().clear()
        with self._cache_lock:
            self._cache.clear()

    # --- wire hooks ----------------------------------------------------------------------

    def _reply(self, request: RecordedRequest, route: Any, known: bool) -> Any:
        # Error bodies carry the request id; error_body() has no request, so remember it here
        # (every reply of a request is built on that request's connection thread).
        self._thread_request.request_id = request.request_id
        return super()._reply(request, route, known)

    def error_body(
        self, status: int, message: str | None, *, param: str | None = None, code: str | None = None
    ) -> dict[str, Any]:
        kind, default = _ERRORS.get(status, ("api_error", "Internal server error") if status >= 500 else _ERRORS[400])
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message or default}}
        request_id = getattr(self._thread_request, "request_id", None)
        if request_id:
            body["request_id"] = request_id
        return body

    def error(
        self,
        status: int,
        message: str | None = None,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> JSONReply:
        # Anthropic sends retry-after (seconds) only, and x-should-retry on every error.
        headers = {"x-should-retry": "true" if status in (408, 409, 429) or status >= 500 else "false"}
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        return JSONReply(status, self.error_body(status, message), headers)

    def stream_error_event(self, message: str, index: int) -> bytes:
        # Inside an HTTP 200 stream, as the streaming docs show (no request_id there).
        text = "Overloaded" if message == _BASE_STREAM_ERROR else message
        payload = {"type": "error", "error": {"type": "overloaded_error", "message": text}}
        return _sse("error", json.dumps(payload, separators=_JSON))

    def authenticate(self, request: RecordedRequest) -> Reply | None:
        # x-api-key, or (what anthropic>=2.x sends) the same key as a bearer token.
        key = request.headers.get("x-api-key", "").strip()
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if not key and scheme.lower() == "bearer":
            key = token.strip()
        if not key:
            return self.error(401, "x-api-key header is required")
        if self.api_key is not None and key != self.api_key:
            return self.error(401, "invalid x-api-key")  # never echo a key
        if not request.headers.get("anthropic-version"):
            return self.error(400, "anthropic-version: header is required")
        return None

    def default_headers(self, request: RecordedRequest) -> dict[str, str]:
        return {"request-id": request.request_id}

    # --- shared pieces -------------------------------------------------------------------

    def _id(self, prefix: str, n: int = 22) -> str:
        with self._ids_lock:
            return prefix + "".join(self._ids.choices(_ALNUM, k=n))

    def _check(self, request: RecordedRequest, kind: str) -> JSONReply | None:
        """Schema and conversation checks shared by create and count_tokens."""
        import pydantic_core

        body = request.json
        if body is None and request.body:
            return self.error(400, "The request body is not valid JSON.")
        sampling: dict[str, Any] = {}
        if request.headers.get("anthropic-version", "") < _SAMPLING_REMOVED_IN and isinstance(body, dict):
            sampling = {k: body[k] for k in _SAMPLING if k in body}
            body = {k: v for k, v in body.items() if k not in sampling}
        try:
            _request_validator(kind).validate_python(body)
        except pydantic_core.ValidationError as exc:
            return self.error(400, _validation_message(exc))
        model = str(body["model"])
        if self.reject_unknown_models and model not in self.models:
            return self.error(404, f"model: {model}")
        problem = _sampling_problem(sampling) or self._conversation_problem(body["messages"], model)
        if problem is None:
            problem = self._thinking_history_problem(body)
        if problem is None and kind != "count_tokens":
            problem = self._parameter_problem(body, model, sampling)
        if problem is None:
            problem = self._breakpoint_problem(body)
        return None if problem is None else self.error(400, problem)

    def _conversation_problem(self, messages: list[dict[str, Any]], model: str) -> str | None:
        """The message-list rules the API enforces beyond the schema (first failure wins)."""
        if not messages:
            return "messages: at least one message is required"
        roles = [m["role"] for m in messages]
        if "system" in roles:
            if not model.startswith(self.system_message_models):
                return _SYSTEM_ROLE
            problem = self._system_placement_problem(messages)
            if problem:
                return problem
        last = len(messages) - 1
        for i, message in enumerate(messages):
            if not message["content"] and not (i == last and message["role"] == "assistant"):
                return f"messages.{i}: all messages must have non-empty content except for the optional final assistant message"
        for message in messages:
            for block in message["content"] if isinstance(message["content"], list) else ():
                if block.get("type") == "text":
                    if not block["text"]:
                        return "messages: text content blocks must be non-empty"
                    if not block["text"].strip():
                        return "messages: text content blocks must contain non-whitespace text"
        final = messages[-1]
        if final["role"] == "assistant":
            content = final["content"]
            tail = content if isinstance(content, str) else (content[-1].get("text", "") if content else "")
            if isinstance(tail, str) and tail != tail.rstrip():
                return "messages: final assistant content cannot end with trailing whitespace"
        return self._tool_pairing_problem(messages)

    @staticmethod
    def _thinking_history_problem(body: dict[str, Any]) -> str | None:
        """Where thinking blocks must (and must not) sit in the assistant messages sent back."""
        messages: list[dict[str, Any]] = body["messages"]
        enabled = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
        for i, message in enumerate(messages):
            content = message["content"]
            if message["role"] != "assistant" or not isinstance(content, list) or not content:
                continue
            kinds = [b.get("type") for b in content]
            if any(k in _THINKING_BLOCKS for k in kinds) and kinds[0] not in _THINKING_BLOCKS:
                return (
                    f"messages.{i}.content.0: If an assistant message contains any thinking blocks, "
                    f"the first block must be thinking or redacted_thinking. Found {kinds[0]}."
                )
            if kinds[-1] in _THINKING_BLOCKS:
                return f"messages.{i}: The final block in an assistant message cannot be `thinking`."
        # Only the final assistant message matters (earlier turns' thinking is dropped): a prefill,
        # or the assistant message of the ongoing tool loop.
        last = messages[-1]
        in_tool_loop = (
            last["role"] == "user"
            and isinstance(last["content"], list)
            and any(b.get("type") == "tool_result" for b in last["content"])
            and len(messages) >= 2
            and messages[-2]["role"] == "assistant"
        )
        i = len(messages) - 1 if last["role"] == "assistant" else len(messages) - 2 if in_tool_loop else -1
        if i < 0:
            return None
        content = messages[i]["content"]
        first = content[0].get("type") if isinstance(content, list) and content else "text"
        if enabled and in_tool_loop and first not in _THINKING_BLOCKS:
            return f"messages.{i}.content.0.type: " + _THINKING_FIRST.format(found=first)
        if not enabled and first in _THINKING_BLOCKS:
            return f"messages.{i}.content.0: " + _THINKING_WHEN_DISABLED
        return None

    @staticmethod
    def _system_placement_problem(messages: list[dict[str, Any]]) -> str | None:
        # Placement rules from the mid-conversation system messages docs (wording is ours).
        for i, message in enumerate(messages):
            if message["role"] != "system":
                continue
            if i == 0:
                return (
                    f"messages.{i}: a system message cannot be the first message; use the top-level `system` parameter"
                )
            previous = messages[i - 1]
            if previous["role"] == "system" or (i + 1 < len(messages) and messages[i + 1]["role"] == "system"):
                return f"messages.{i}: system messages cannot be adjacent to another system message"
            ends_in_server_tool = (
                previous["role"] == "assistant"
                and isinstance(previous["content"], list)
                and bool(previous["content"])
                and previous["content"][-1].get("type") == "server_tool_use"
            )
            if previous["role"] != "user" and not ends_in_server_tool:
                return f"messages.{i}: a system message must immediately follow a user message"
            if i + 1 < len(messages) and messages[i + 1]["role"] != "assistant":
                return f"messages.{i}: a system message must be the last message or be followed by an assistant message"
        return None

    @staticmethod
    def _tool_pairing_problem(messages: list[dict[str, Any]]) -> str | None:
        """tool_use ↔ tool_result pairing across turns (consecutive same-role messages form one turn)."""
        turns: list[tuple[str, int, list[tuple[int, int, dict[str, Any]]]]] = []
        for i, message in enumerate(messages):
            role = message["role"]
            if role == "system":
                continue
            content = message["content"]
            blocks = [(i, j, b) for j, b in enumerate(content)] if isinstance(content, list) else []
            if turns and turns[-1][0] == role:
                turns[-1][2].extend(blocks)
            else:
                turns.append((role, i, blocks))
        for t, (role, first, blocks) in enumerate(turns):
            if role == "user":
                previous = turns[t - 1] if t > 0 and turns[t - 1][0] == "assistant" else None
                used = {b["id"] for _, _, b in previous[2] if b.get("type") == "tool_use"} if previous else set()
                for i, j, block in blocks:
                    if block.get("type") == "tool_result" and block["tool_use_id"] not in used:
                        return (
                            f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                            f"{block['tool_use_id']}. Each `tool_result` block must have a corresponding "
                            "`tool_use` block in the previous message."
                        )
            elif t + 1 < len(turns):
                following = turns[t + 1]
                answered = {b["tool_use_id"] for _, _, b in following[2] if b.get("type") == "tool_result"}
                missing = [b["id"] for _, _, b in blocks if b.get("type") == "tool_use" and b["id"] not in answered]
                if missing:
                    return (
                        f"messages.{first}: `tool_use` ids were found without `tool_result` blocks immediately "
                        f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                        "`tool_result` block in the next message."
                    )
        return None

    @staticmethod
    def _parameter_problem(body: dict[str, Any], model: str, sampling: Mapping[str, Any]) -> str | None:
        thinking = body.get("thinking") or {}
        if thinking.get("type") == "enabled":
            if thinking["budget_tokens"] < _MIN_THINKING_BUDGET:
                return (
                    f"thinking.enabled.budget_tokens: Input should be greater than or equal to {_MIN_THINKING_BUDGET}"
                )
            if body["max_tokens"] <= thinking["budget_tokens"]:
                return _BUDGET_VS_MAX_TOKENS
        thinks = thinking.get("type") in ("enabled", "adaptive")
        if thinks and (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
            return _FORCED_TOOL_WITH_THINKING
        temperature, top_p = sampling.get("temperature"), sampling.get("top_p")
        if thinks and temperature is not None and temperature != 1:
            return _TEMPERATURE_WITH_THINKING
        version = _model_version(model)
        if temperature is not None and top_p is not None and version is not None and version >= (4, 5):
            return _TEMPERATURE_AND_TOP_P
        return None

    @staticmethod
    def _breakpoint_problem(body: dict[str, Any]) -> str | None:
        found = sum(1 for unit in _prompt_units(body) if unit.ttl)
        if found > _MAX_BREAKPOINTS:
            return f"A maximum of {_MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {found}."
        return None

    # --- POST /v1/messages ---------------------------------------------------------------

    def _messages(self, request: RecordedRequest) -> Reply:
        streaming = isinstance(request.json, dict) and request.json.get("stream") is True
        bad = self._check(request, "create_stream" if streaming else "create")
        if bad is not None:
            return bad
        body: dict[str, Any] = request.json
        model = str(body["model"])
        units = _prompt_units(body)
        prompt_tokens = sum(u.tokens for u in units)
        if prompt_tokens > self.context_window:
            return self.error(400, f"prompt is too long: {prompt_tokens} tokens > {self.context_window} maximum")
        with self._cache_lock:
            cache = self._cache.use(model, units, self.min_cache_tokens, time.monotonic())
        interleaved = "interleaved-thinking" in request.headers.get("anthropic-beta", "")
        answer = self._generate(body, prompt_tokens, interleaved=interleaved)
        answer.cache = cache
        answer.input_tokens = prompt_tokens - cache.read - cache.created
        head = {"id": self._id("msg_01"), "model": model}
        if streaming:
            return StreamReply(self._events(head, answer))
        return JSONReply(200, self._message_json(head, answer).encode())

    def _generate(self, body: dict[str, Any], prompt_tokens: int, *, interleaved: bool = False) -> _Answer:
        messages: list[dict[str, Any]] = body["messages"]
        users = [m for m in messages if m["role"] == "user"]
        last_user = users[-1] if users else None
        after_tool = last_user is not None and any(
            isinstance(b, dict) and b.get("type") == "tool_result"
            for b in (last_user["content"] if isinstance(last_user["content"], list) else ())
        )
        # The topic is the latest user text, as FakeOpenAI picks it: same prompt, same answer.
        texts = [_text_of(m["content"]) for m in users]
        topic = next((t for t in reversed(texts) if t), "")
        lead = "Simulated answer using the tool result about" if after_tool else "Simulated answer about"

        answer = _Answer(blocks=[])
        mode = (body.get("thinking") or {}).get("type")
        answer.thinking = mode in ("enabled", "adaptive")
        # Without interleaved thinking (adaptive mode or the beta header turn it on) the model
        # thinks once per assistant turn: the answer to a tool result continues without thinking.
        if answer.thinking and (not after_tool or interleaved or mode == "adaptive"):
            text = answer_text(topic, self.thinking_words, lead="Let me think about")
            signature = base64.b64encode(hashlib.blake2b(text.encode(), digest_size=64).digest()).decode()
            answer.blocks.append(_Block("thinking", text=text, signature=signature))

        tools = self._pick_tools(body, after_tool)
        if tools:
            if (body.get("tool_choice") or {}).get("type", "auto") == "auto":
                names = " and ".join(f"the {t['name']}" for t in tools)
                answer.blocks.append(_Block("text", text=f"I'll use {names} tool{'s' if len(tools) > 1 else ''}."))
            for tool in tools:
                schema = tool.get("input_schema")
                value = instance_from_schema(schema if isinstance(schema, dict) else {"type": "object"})
                answer.blocks.append(
                    _Block("tool_use", tool_id=self._id("toolu_01"), name=tool["name"], input=dict(value or {}))
                )
            answer.stop_reason = "tool_use"
        else:
            text = answer_text(topic, self.answer_words, lead=lead)
            output_format = (body.get("output_config") or {}).get("format")
            if output_format:  # structured outputs: the text is an instance of the schema
                text = json.dumps(instance_from_schema(output_format["schema"]), separators=_JSON)
            # The earliest stop sequence ends the text; the sequence itself is not returned.
            hits = [(text.index(s), s) for s in body.get("stop_sequences") or () if s and s in text]
            if hits:
                at, sequence = min(hits)
                text, answer.stop_reason, answer.stop_sequence = text[:at], "stop_sequence", sequence
            answer.blocks.append(_Block("text", text=text))

        self._apply_limits(answer, body["max_tokens"], self.context_window - prompt_tokens)
        self._apply_forced_stop(answer)
        return answer

    @staticmethod
    def _pick_tools(body: dict[str, Any], after_tool: bool) -> list[dict[str, Any]]:
        """The client tools the simulated model calls: none with "none", nor after a tool result
        unless ``tool_choice`` forces one (``any`` / ``tool``)."""
        tools = [t for t in body.get("tools") or () if "input_schema" in t and t.get("type") in (None, "custom")]
        choice = body.get("tool_choice") or {"type": "auto"}
        forced = choice.get("type") in ("any", "tool")
        if not tools or (after_tool and not forced) or choice.get("type") == "none":
            return []
        if choice.get("type") == "tool":
            return [t for t in tools if t["name"] == choice.get("name")][:1] or tools[:1]
        parallel = not choice.get("disable_parallel_tool_use", False)
        return tools[:2] if parallel and len(tools) >= 2 else tools[:1]

    @staticmethod
    def _apply_limits(answer: _Answer, max_tokens: int, room: int) -> None:
        """Cut the answer at max_tokens or at the end of the context window, whichever comes first."""
        limit = min(max_tokens, max(room, 0))
        if answer.output_tokens <= limit:
            return
        reason = "model_context_window_exceeded" if room < max_tokens else "max_tokens"
        kept: list[_Block] = []
        left = limit
        for block in answer.blocks:
            if block.tokens <= left:
                kept.append(block)
                left -= block.tokens
                continue
            if block.type != "tool_use":  # a tool call that does not fit is not emitted at all
                cut, _ = truncate_to_tokens(block.text, left)
                if cut:
                    kept.append(_Block(block.type, text=cut, signature=block.signature))
            break
        answer.blocks = kept
        answer.stop_reason, answer.stop_sequence = reason, None

    def _apply_forced_stop(self, answer: _Answer) -> None:
        forced = self._force_stop_reason
        if forced is None:
            return
        # The model stopped part-way: keep thinking, half of the text, no tool calls.
        kept: list[_Block] = []
        for block in answer.blocks:
            if block.type == "thinking":
                kept.append(block)
            elif block.type == "text":
                words = block.text.split()
                half = " ".join(words[: max(len(words) // 2, 1)])
                if half:
                    kept.append(_Block("text", text=half))
        answer.blocks = kept
        answer.stop_reason, answer.stop_sequence = forced, None
        answer.refusal = forced == "refusal"

    # --- dressing the answer -------------------------------------------------------------

    @staticmethod
    def _usage(answer: _Answer, output_tokens: int, *, final: bool = True) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "input_tokens": answer.input_tokens,
            "cache_creation_input_tokens": answer.cache.created,
            "cache_read_input_tokens": answer.cache.read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": answer.cache.created_5m,
                "ephemeral_1h_input_tokens": answer.cache.created_1h,
            },
            "output_tokens": output_tokens,
            "service_tier": "standard",
            "inference_geo": "not_available",
        }
        if answer.thinking and final:
            usage["output_tokens_details"] = {"thinking_tokens": answer.thinking_tokens}
        return usage

    @staticmethod
    def _content_block(block: _Block, *, empty: bool = False) -> Any:
        """The SDK block for ``block`` (``empty``: as content_block_start announces it)."""
        from anthropic.types import TextBlock, ThinkingBlock, ToolUseBlock

        if block.type == "thinking":
            return ThinkingBlock(
                type="thinking", thinking="" if empty else block.text, signature="" if empty else block.signature
            )
        if block.type == "tool_use":
            return ToolUseBlock(type="tool_use", id=block.tool_id, name=block.name, input={} if empty else block.input)
        return TextBlock(type="text", text="" if empty else block.text)

    @staticmethod
    def _stop_details(answer: _Answer) -> Any:
        from anthropic.types import RefusalStopDetails

        return RefusalStopDetails(type="refusal", category=None, explanation=None) if answer.refusal else None

    def _message_json(self, head: dict[str, Any], answer: _Answer) -> str:
        from anthropic.types import Message, Usage

        message = Message(
            **head,
            type="message",
            role="assistant",
            content=[self._content_block(b) for b in answer.blocks],
            stop_reason=answer.stop_reason,  # type: ignore[arg-type]
            stop_sequence=answer.stop_sequence,
            stop_details=self._stop_details(answer),
            usage=Usage.model_validate(self._usage(answer, answer.output_tokens)),
        )
        return _dump(message)

    def _events(self, head: dict[str, Any], answer: _Answer) -> list[bytes]:
        from anthropic.types import (
            InputJSONDelta,
            Message,
            MessageDeltaUsage,
            RawContentBlockDeltaEvent,
            RawContentBlockStartEvent,
            RawContentBlockStopEvent,
            RawMessageDeltaEvent,
            RawMessageStartEvent,
            RawMessageStopEvent,
            SignatureDelta,
            TextDelta,
            ThinkingDelta,
            Usage,
        )
        from anthropic.types.raw_message_delta_event import Delta

        start = Message(
            **head,
            type="message",
            role="assistant",
            content=[],
            stop_reason=None,
            stop_sequence=None,
            stop_details=None,
            usage=Usage.model_validate(self._usage(answer, 1, final=False)),
        )
        events = [_sse("message_start", _dump(RawMessageStartEvent(type="message_start", message=start)))]
        ping = _sse("ping", json.dumps({"type": "ping"}, separators=_JSON))

        def delta(index: int, value: Any) -> bytes:
            return _sse(
                "content_block_delta",
                _dump(RawContentBlockDeltaEvent(type="content_block_delta", index=index, delta=value)),
            )

        for index, block in enumerate(answer.blocks):
            announced = self._content_block(block, empty=True)
            events.append(
                _sse(
                    "content_block_start",
                    _dump(RawContentBlockStartEvent(type="content_block_start", index=index, content_block=announced)),
                )
            )
            if index == 0:
                events.append(ping)
            if block.type == "thinking":
                for piece in split_deltas(block.text, self.words_per_chunk):
                    events.append(delta(index, ThinkingDelta(type="thinking_delta", thinking=piece)))
                events.append(delta(index, SignatureDelta(type="signature_delta", signature=block.signature)))
            elif block.type == "tool_use":
                # The API opens every tool input with an empty partial_json, then streams the JSON.
                events.append(delta(index, InputJSONDelta(type="input_json_delta", partial_json="")))
                for piece in split_deltas(json.dumps(block.input), self.words_per_chunk):
                    events.append(delta(index, InputJSONDelta(type="input_json_delta", partial_json=piece)))
            else:
                for piece in split_deltas(block.text, self.words_per_chunk):
                    events.append(delta(index, TextDelta(type="text_delta", text=piece)))
            events.append(
                _sse("content_block_stop", _dump(RawContentBlockStopEvent(type="content_block_stop", index=index)))
            )
        if not answer.blocks:
            events.append(ping)

        final: dict[str, Any] = {
            "input_tokens": answer.input_tokens,
            "cache_creation_input_tokens": answer.cache.created,
            "cache_read_input_tokens": answer.cache.read,
            "output_tokens": answer.output_tokens,
        }
        if answer.thinking:
            final["output_tokens_details"] = {"thinking_tokens": answer.thinking_tokens}
        stop: dict[str, Any] = {"stop_reason": answer.stop_reason, "stop_sequence": answer.stop_sequence}
        if answer.refusal:
            stop["stop_details"] = self._stop_details(answer)
        message_delta = RawMessageDeltaEvent(
            type="message_delta", delta=Delta(**stop), usage=MessageDeltaUsage.model_validate(final)
        )
        events.append(_sse("message_delta", _dump(message_delta)))
        events.append(_sse("message_stop", _dump(RawMessageStopEvent(type="message_stop"))))
        return events

    # --- POST /v1/messages/count_tokens --------------------------------------------------

    def _count_tokens(self, request: RecordedRequest) -> Reply:
        bad = self._check(request, "count_tokens")
        if bad is not None:
            return bad
        from anthropic.types import MessageTokensCount

        total = sum(u.tokens for u in _prompt_units(request.json))
        return JSONReply(200, _dump(MessageTokensCount(input_tokens=total)).encode())

    # --- GET /v1/models ------------------------------------------------------------------

    def _model_info(self, name: str) -> dict[str, Any]:
        from anthropic.types import ModelInfo

        words = name.removeprefix("claude-").split("-")
        # "claude-sonnet-4-5-20250929" → "Claude Sonnet 4.5"
        version = ".".join(w for w in words[1:] if w.isdigit() and len(w) <= 2)
        display = " ".join(["Claude", words[0].capitalize(), version]).strip()
        info = ModelInfo.model_validate(
            {
                "id": name,
                "type": "model",
                "display_name": display,
                "created_at": "2025-01-01T00:00:00Z",
                "lifecycle": "active",
                "max_input_tokens": self.context_window,
            }
        )
        result: dict[str, Any] = info.model_dump(mode="json", exclude_unset=True)
        return result

    def _list_models(self, request: RecordedRequest) -> Reply:
        data = [self._model_info(m) for m in self.models]
        return JSONReply(
            200,
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            },
        )

    def _get_model(self, request: RecordedRequest) -> Reply:
        name = request.path_params.get("model", "")
        if name not in self.models:
            return self.error(404, f"model: {name}")
        return JSONReply(200, self._model_info(name))
