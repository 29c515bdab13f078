"""A simulated Gemini Developer API (``generativelanguage.googleapis.com``).

Speaks ``models/{model}:generateContent``, ``:streamGenerateContent`` (``alt=sse`` events, or a
streamed JSON array without it), ``:countTokens``, ``:embedContent``, ``:batchEmbedContents``
and ``GET models``. Request pieces are validated with the ``google-genai`` SDK's own pydantic
types (which forbid unknown fields), and answers are built from those types and serialised to
the camelCase REST JSON, so the SDK parses them exactly as it parses the real API's. The SDK
is imported lazily, on the first request.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import random
import re
import string
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .http_server import FakeHTTPServer, JSONReply, RecordedRequest, Reply, StreamReply, require_sdk
from .synthetic import (
    PrefixCache,
    answer_text,
    count_tokens,
    embedding_vector,
    instance_from_schema,
    split_deltas,
    truncate_to_tokens,
)

__all__ = ["DEFAULT_GEMINI_MODELS", "FakeGemini"]

DEFAULT_GEMINI_MODELS: tuple[str, ...] = (
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
    "gemini-2.0-flash-lite",
    "gemini-embedding-001",
    "text-embedding-004",
)

_MEDIA_TOKENS = 258  # what one image (or a short media part) costs on Gemini
_THOUGHTS_BASE = 16  # hidden thinking: 16 + 2 per visible token, as the OpenAI fake's reasoning
_ID_ALPHABET = string.ascii_letters + string.digits + "-_"
_SSE_END = b"\r\n\r\n"  # the real API frames SSE events with CRLF line ends

# HTTP status → (google.rpc status, default message), as the API words them.
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: (
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
        "or other valid authentication credential.",
    ),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The operation was aborted."),
    429: (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    ),
    499: ("CANCELLED", "The operation was cancelled."),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    501: ("NOT_IMPLEMENTED", "Method not found."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "The request timed out. Please try again."),
}
_NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_BAD_KEY = "API key not valid. Please pass a valid API key."
_BAD_ROLE = "Please use a valid role: user, model."

# REST GenerateContentRequest fields (camelCase; the API also takes snake_case spellings).
_REQUEST_FIELDS = frozenset(
    {
        "model",
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "safetySettings",
        "generationConfig",
        "cachedContent",
        "serviceTier",
        "store",
        "labels",
        "continuationToken",
    }
)
# Fields of a Part that fill its `data` oneof: a part must set one of them.
_PART_DATA = (
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
)
# Proto map fields: errors name their entries `field[i].value`.
_MAP_FIELDS = frozenset({"properties", "defs", "labels"})
_MODES = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")
_BLOCKED_RATINGS: list[dict[str, Any]] = [
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
]


class _BadRequest(Exception):
    """A request the API rejects with 400 INVALID_ARGUMENT: (field, description) violations."""

    def __init__(self, violations: Sequence[tuple[str | None, str]], *, plain: bool = False) -> None:
        super().__init__("\n".join(d for _, d in violations))
        self.violations = list(violations)
        self.plain = plain  # some rejections carry no google.rpc.BadRequest detail


# --- small pure helpers ---------------------------------------------------------------------


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _get(obj: Any, camel: str) -> Any:
    """A REST field by its camelCase or snake_case name (the API takes both)."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(camel)
    return obj.get(_snake(camel)) if value is None else value


@functools.cache
def _adapter(kind: str) -> Any:
    """A pydantic TypeAdapter for an SDK type, built once (the SDK defers building its models)."""
    import pydantic
    from google.genai import types

    shapes: dict[str, Any] = {
        "contents": list[types.Content],
        "content": types.Content,
        "tools": list[types.Tool],
        "tool_config": types.ToolConfig,
        "generation_config": types.GenerationConfig,
        "image_config": types.ImageConfig,
        "safety_settings": list[types.SafetySetting],
    }
    return pydantic.TypeAdapter(shapes[kind])


def _field_path(prefix: str, loc: Sequence[Any], raw: Any) -> str:
    """Google's spelling of a field path: ``contents[0].parts[1].inline_data.mime_type``."""
    out = prefix
    node = raw
    in_map = False
    for item in loc:
        if isinstance(item, int):
            out += f"[{item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
            continue
        key = str(item)
        if in_map:  # a proto map entry: `properties[2].value`
            keys = list(node) if isinstance(node, dict) else []
            out += f"[{keys.index(key) if key in keys else key}].value"
            in_map = False
        else:
            out += ("." if out else "") + _snake(key)
            in_map = _snake(key) in _MAP_FIELDS
        node = node.get(key) if isinstance(node, dict) else None
    return out


_PROTO_TYPES = {
    "int": "TYPE_INT32",
    "float": "TYPE_FLOAT",
    "bool": "TYPE_BOOL",
    "string": "TYPE_STRING",
    "str": "TYPE_STRING",
    "bytes": "TYPE_BYTES",
}


def _violations(prefix: str, raw: Any, exc: Any) -> list[tuple[str | None, str]]:
    """Turn a pydantic ValidationError into the API's field violations."""
    out: list[tuple[str | None, str]] = []
    for err in exc.errors():
        loc = [x for x in err["loc"] if isinstance(x, int) or "[" not in str(x)]  # drop union tags
        if err["type"] == "extra_forbidden":
            where = _field_path(prefix, loc[:-1], raw)
            at = f" at '{where}'" if where else ""
            out.append(
                (where or None, f'Invalid JSON payload received. Unknown name "{loc[-1]}"{at}: Cannot find field.')
            )
            continue
        where = _field_path(prefix, loc, raw)
        kind = err["type"].split("_", 1)[0]
        value = err.get("input")
        if kind == "bytes":
            out.append(
                (where, f"Invalid value at '{where}' (TYPE_BYTES), Base64 decoding failed for {json.dumps(value)}")
            )
            continue
        proto = _PROTO_TYPES.get(kind, "TYPE_MESSAGE")
        try:
            shown = json.dumps(value)
        except (TypeError, ValueError):
            shown = repr(value)
        out.append((where, f"Invalid value at '{where}' ({proto}), {shown}"))
    return out


def _to_json_schema(schema: Any) -> Any:
    """A Gemini ``Schema`` (OpenAPI subset: upper-case types, ``nullable``, ``propertyOrdering``)
    as a JSON schema for :func:`instance_from_schema`."""
    if isinstance(schema, list):
        return [_to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            t = value.lower()
            if t != "type_unspecified":
                out["type"] = [t, "null"] if schema.get("nullable") else t
        elif key == "properties" and isinstance(value, dict):
            order = schema.get("propertyOrdering") or list(value)
            names = [n for n in order if n in value] + [n for n in value if n not in order]
            out["properties"] = {n: _to_json_schema(value[n]) for n in names}
        elif key in ("items", "anyOf", "additionalProperties"):
            out[key] = _to_json_schema(value)
        elif key == "defs" and isinstance(value, dict):
            out["$defs"] = {k: _to_json_schema(v) for k, v in value.items()}
        elif key == "ref" and isinstance(value, str):
            out["$ref"] = value.replace("#/defs/", "#/$defs/")
        elif key not in ("nullable", "propertyOrdering"):
            out[key] = value
    return out


def _part_tokens(part: dict[str, Any]) -> tuple[int, int]:
    """(text tokens, media tokens) of one REST part."""
    if isinstance(part.get("text"), str):
        return count_tokens(part["text"]), 0
    if part.get("inlineData") or part.get("fileData"):
        return 0, _MEDIA_TOKENS
    for key in ("functionCall", "functionResponse", "executableCode", "codeExecutionResult"):
        if part.get(key) is not None:
            return count_tokens(json.dumps(part[key], sort_keys=True)), 0
    return 0, 0


def _content_tokens(content: dict[str, Any] | None) -> tuple[int, int]:
    text = media = 0
    for part in (content or {}).get("parts") or ():
        t, m = _part_tokens(part)
        text += t
        media += m
    return text, media


def _content_text(content: dict[str, Any] | None) -> str:
    return " ".join(p["text"] for p in (content or {}).get("parts") or () if isinstance(p.get("text"), str))


def _response_topic(response: Any) -> str:
    """The readable core of a functionResponse: a lone string value, else its JSON."""
    if isinstance(response, dict) and len(response) == 1:
        (value,) = response.values()
        if isinstance(value, str):
            return value
    return json.dumps(response, sort_keys=True)


def _display_name(model: str) -> str:
    return " ".join(w.upper() if w in ("ai", "gpt") else w.capitalize() for w in model.split("-"))


def _thinks_by_default(model: str) -> bool:
    name = model.lower()
    if "flash-lite" in name and "2.5" in name:
        return False  # 2.5 Flash-Lite thinks only when given a budget
    return "2.5" in name or "thinking" in name or name.startswith("gemini-3")


# --- one generated turn ---------------------------------------------------------------------


@dataclass
class _Call:
    name: str
    args: dict[str, Any]


@dataclass
class _Turn:
    """What the simulated model answers, before it is dressed as REST JSON."""

    model: str
    prompt_text_tokens: int = 0
    prompt_media_tokens: int = 0
    cached_tokens: int = 0
    thoughts_tokens: int = 0
    text: str | None = None  # None: no content at all (blocked, malformed call)
    thought_summary: str | None = None
    calls: list[_Call] = field(default_factory=list)
    thought_signature: bytes | None = None
    finish_reason: str = "STOP"
    finish_message: str | None = None
    safety_ratings: list[dict[str, Any]] | None = None
    candidates: int = 1
    stream_prefix: str = ""  # text streamed before a block cuts the stream off

    @property
    def prompt_tokens(self) -> int:
        return self.prompt_text_tokens + self.prompt_media_tokens

    def candidate_tokens(self, text: str | None = None) -> int:
        """Visible output tokens of one candidate (for ``text``, a streamed prefix, if given)."""
        if self.calls:
            return sum(count_tokens(f"{c.name} {json.dumps(c.args)}") + 3 for c in self.calls)
        shown = self.text if text is None else text
        return count_tokens(shown or "")


# --- the server -----------------------------------------------------------------------------


class FakeGemini(FakeHTTPServer):
    """A real HTTP server on 127.0.0.1 that speaks the Gemini Developer API (``v1beta`` and ``v1``).

    >>> with FakeGemini() as fake:                                          # doctest: +SKIP
    ...     client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=fake.base_url))
    ...     client.models.generate_content(model="gemini-2.5-flash", contents="Hello")

    Knobs (plain attributes, may change while serving): ``answer_words`` (length of text
    answers), ``words_per_chunk`` (text per stream event), ``embedding_dimensions`` (vector size
    when ``outputDimensionality`` is not given), ``context_window`` (prompt tokens above it → 400),
    ``force_finish_reason`` (``"SAFETY"``, ``"RECITATION"``, ``"MAX_TOKENS"``,
    ``"MALFORMED_FUNCTION_CALL"``, any other ``FinishReason`` name, or None) for every following
    request, plus the base's ``latency``, ``ttft``, ``chunk_delay``, ``error_rate`` and faults.
    ``api_key`` None accepts any key; a string accepts only that one.
    """

    path_prefixes = ("/v1beta", "/v1")

    def __init__(
        self,
        *,
        latency: float = 0.0,
        ttft: float = 0.0,
        chunk_delay: float = 0.0,
        answer_words: int = 12,
        seed: int = 0,
        error_rate: float = 0.0,
        words_per_chunk: int = 4,
        embedding_dimensions: int = 8,
        api_key: str | None = None,
        models: Sequence[str] = DEFAULT_GEMINI_MODELS,
        context_window: int = 1_048_576,
        force_finish_reason: str | None = None,
        record: bool = True,
    ) -> None:
        require_sdk("google.genai", "FakeGemini")
        self.answer_words = answer_words
        self.words_per_chunk = words_per_chunk
        self.embedding_dimensions = embedding_dimensions
        self.api_key = api_key
        self.models = list(models)
        self.context_window = context_window
        self._force: str | None = None
        self.force_finish_reason = force_finish_reason
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
        # The model id and the method share a path segment: "models/gemini-2.5-flash:generateContent".
        self.add_route("POST", "/models/{model}:generateContent", self._generate_content)
        self.add_route("POST", "/models/{model}:streamGenerateContent", self._stream_generate_content)
        self.add_route("POST", "/models/{model}:countTokens", self._count_tokens)
        self.add_route("POST", "/models/{model}:embedContent", self._embed_content)
        self.add_route("POST", "/models/{model}:batchEmbedContents", self._batch_embed_contents)
        self.add_route("GET", "/models", self._list_models, faults=False)
        self.add_route("GET", "/models/{model}", self._get_model, faults=False)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/``: pass as ``types.HttpOptions(base_url=...)`` to ``genai.Client``."""
        return self.url + "/"

    @property
    def force_finish_reason(self) -> str | None:
        return self._force

    @force_finish_reason.setter
    def force_finish_reason(self, value: str | None) -> None:
        if value is not None:
            from google.genai import types

            value = value.upper()
            if value not in types.FinishReason.__members__:
                raise ValueError(f"unknown finish reason {value!r}")
        self._force = value

    def clear(self) -> None:
        """Forget recorded requests, scripted faults and the simulated implicit cache."""
        super().clear()
        with self._cache_lock:
            self._prompt_cache.clear()

    # --- wire hooks ----------------------------------------------------------------------

    def error_body(
        self,
        status: int,
        message: str | None,
        *,
        param: str | None = None,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        rpc_status, default_message = _ERRORS.get(
            status, ("INTERNAL", _ERRORS[500][1]) if status >= 500 else ("INVALID_ARGUMENT", _ERRORS[400][1])
        )
        text = message or default_message
        details = list(details or ())
        if code:  # a machine-readable reason travels as google.rpc.ErrorInfo
            details.insert(
                0,
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": code,
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
            )
        if param and not any(d.get("@type", "").endswith("BadRequest") for d in details):
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"field": param, "description": text}],
                }
            )
        error: dict[str, Any] = {"code": status, "message": text, "status": rpc_status}
        if details:
            error["details"] = details
        return {"error": error}

    def error(
        self,
        status: int,
        message: str | None = None,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> JSONReply:
        # Google sends no Retry-After header: the delay is a google.rpc.RetryInfo detail.
        details = list(details or ())
        if retry_after is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after:g}s"})
            if message is None and status == 429:
                message = f"{_ERRORS[429][1]} Please retry in {retry_after:g}s."
        return JSONReply(status, self.error_body(status, message, param=param, code=code, details=details))

    def stream_error_event(self, message: str, index: int) -> bytes:
        # An error inside a 200 stream is an `{"error": ...}` object as its own data event;
        # google-genai raises APIError (ServerError for 500) when it reads one.
        return b"data: " + json.dumps(self.error_body(500, message)).encode() + _SSE_END

    def authenticate(self, request: RecordedRequest) -> Reply | None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return self.error(403, _NO_KEY)
        if self.api_key is not None and key != self.api_key:
            # Never echo a key: a log of this message must not leak it.
            return self.error(
                400,
                _BAD_KEY,
                code="API_KEY_INVALID",
                details=[
                    {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": _BAD_KEY}
                ],
            )
        return None

    def wants_stream(self, request: RecordedRequest) -> bool:
        return request.path.endswith(":streamGenerateContent")

    # --- shared pieces -------------------------------------------------------------------

    def _response_id(self) -> str:
        with self._ids_lock:
            return "".join(self._ids.choices(_ID_ALPHABET, k=23))

    @staticmethod
    def _api_version(request: RecordedRequest) -> str:
        return "v1" if request.path.startswith("/v1/") else "v1beta"

    def _bad_request(self, exc: _BadRequest) -> JSONReply:
        if exc.plain:
            return self.error(400, str(exc))
        violations = [{"field": f, "description": d} if f else {"description": d} for f, d in exc.violations]
        return self.error(
            400,
            str(exc),
            details=[{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}],
        )

    def _unsupported(self, request: RecordedRequest, method: str) -> JSONReply | None:
        """404 when a listed model does not offer ``method`` (e.g. generateContent on an embedder)."""
        model = request.path_params.get("model", "")
        if model in self.models and method not in self._methods(model):
            return self.error(
                404,
                f"models/{model} is not found for API version {self._api_version(request)}, or is not supported "
                f"for {method}. Call ListModels to see the list of available models and their supported methods.",
            )
        return None

    @staticmethod
    def _methods(model: str) -> list[str]:
        if "embedding" in model:
            return ["embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent"]
        return ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]

    def _validate(self, prefix: str, raw: Any, kind: str) -> Any:
        """``raw`` validated as the SDK type ``kind`` (JSON mode: bytes are base64, as on the wire)."""
        import pydantic

        try:
            return _adapter(kind).validate_json(json.dumps(raw))
        except pydantic.ValidationError as exc:
            raise _BadRequest(_violations(prefix, raw, exc)) from None

    def _check_contents(
        self,
        items: Sequence[tuple[str, dict[str, Any]]],
        *,
        request: str = "GenerateContentRequest",
        roles: bool = True,
    ) -> None:
        """Rules the SDK types cannot express: valid roles, non-empty parts, one data field per part.

        ``items`` pairs each content with its field path (``contents[2]``, ``system_instruction``).
        """
        violations: list[tuple[str | None, str]] = []
        for where, content in items:
            role = content.get("role")
            # "function" is the historical v1beta role of function results; the API still takes it.
            if roles and role not in (None, "", "user", "model", "function"):
                raise _BadRequest([(None, _BAD_ROLE)], plain=True)
            parts = content.get("parts") or []
            if not parts:
                path = f"{where}.parts"
                violations.append((path, f"* {request}.{path}: contents.parts must not be empty.\n"))
            for k, part in enumerate(parts):
                if not any(_get(part, name) is not None for name in _PART_DATA):
                    path = f"{where}.parts[{k}].data"
                    violations.append(
                        (path, f"* {request}.{path}: required oneof field 'data' must have one initialized field\n")
                    )
        if violations:
            raise _BadRequest(violations)

    # --- request parsing -----------------------------------------------------------------

    def _parse_generate(self, body: Any) -> dict[str, Any]:
        """Validate a GenerateContentRequest; returns its pieces as canonical camelCase JSON."""
        if not isinstance(body, dict):
            raise _BadRequest([(None, "Invalid JSON payload received. Unexpected token.")])
        unknown = [k for k in body if _camel(k) not in _REQUEST_FIELDS]
        if unknown:
            raise _BadRequest(
                [(None, f'Invalid JSON payload received. Unknown name "{k}": Cannot find field.') for k in unknown]
            )
        contents_raw = _get(body, "contents")
        if not contents_raw:
            raise _BadRequest([("contents", "* GenerateContentRequest.contents: contents is not specified\n")])
        mode = _get(_get(_get(body, "toolConfig"), "functionCallingConfig"), "mode")
        if mode is not None and str(mode).upper() not in _MODES:
            where = "tool_config.function_calling_config.mode"
            raise _BadRequest(
                [
                    (
                        where,
                        f"Invalid value at '{where}' "
                        f"(type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "
                        f"{json.dumps(mode)}",
                    )
                ]
            )

        violations: list[tuple[str | None, str]] = []
        parsed: dict[str, Any] = {}

        def piece(name: str, kind: str) -> None:
            raw = _get(body, name)
            if raw is None:
                return
            try:
                value = self._validate(_snake(name), raw, kind)
            except _BadRequest as exc:
                violations.extend(exc.violations)
                return
            parsed[name] = _dump(value)

        piece("contents", "contents")
        piece("systemInstruction", "content")
        piece("tools", "tools")
        piece("toolConfig", "tool_config")
        piece("safetySettings", "safety_settings")
        gen_raw = _get(body, "generationConfig")
        if isinstance(gen_raw, dict):
            # imageConfig is a generationConfig field the SDK sends that types.GenerationConfig lacks.
            gen_raw = dict(gen_raw)
            image = gen_raw.pop("imageConfig", gen_raw.pop("image_config", None))
            if image is not None:
                try:
                    self._validate("generation_config.image_config", image, "image_config")
                except _BadRequest as exc:
                    violations.extend(exc.violations)
        if gen_raw is not None:
            try:
                parsed["generationConfig"] = _dump(self._validate("generation_config", gen_raw, "generation_config"))
            except _BadRequest as exc:
                violations.extend(exc.violations)
        if violations:
            raise _BadRequest(violations)
        self._check_contents([(f"contents[{i}]", c) for i, c in enumerate(parsed["contents"])])
        if "systemInstruction" in parsed:
            self._check_contents([("system_instruction", parsed["systemInstruction"])], roles=False)
        return parsed

    # --- generation ----------------------------------------------------------------------

    def _plan(self, model: str, req: dict[str, Any]) -> _Turn:
        """Decide the answer to a validated request (deterministic)."""
        contents: list[dict[str, Any]] = req["contents"]
        config: dict[str, Any] = req.get("generationConfig") or {}
        turn = _Turn(model=model)

        # Prompt size and the implicit cache: system instruction and tools lead the prompt.
        parts: list[Any] = []
        part_tokens: list[int] = []
        system = req.get("systemInstruction")
        if system:
            t, m = _content_tokens(system)
            parts.append({"systemInstruction": system})
            part_tokens.append(t + m)
            turn.prompt_text_tokens += t
            turn.prompt_media_tokens += m
        tools = req.get("tools") or []
        if tools:
            t = count_tokens(json.dumps(tools, sort_keys=True))
            parts.append({"tools": tools})
            part_tokens.append(t)
            turn.prompt_text_tokens += t
        for content in contents:
            t, m = _content_tokens(content)
            parts.append(content)
            part_tokens.append(t + m)
            turn.prompt_text_tokens += t
            turn.prompt_media_tokens += m
        if turn.prompt_tokens > self.context_window:
            raise _BadRequest(
                [
                    (
                        None,
                        f"The input token count ({turn.prompt_tokens}) exceeds the maximum number of tokens "
                        f"allowed ({self.context_window}).",
                    )
                ],
                plain=True,
            )
        # Thinking: on by default for 2.5+/thinking models; a budget turns it on or (0) off.
        thinking = config.get("thinkingConfig") or {}
        budget = thinking.get("thinkingBudget")
        if budget == 0 and "2.5-pro" in model:
            raise _BadRequest([(None, "Budget 0 is invalid. This model only works in thinking mode.")], plain=True)
        thinks = (budget is not None and budget > 0) or (budget in (None, -1) and _thinks_by_default(model))
        # Only an accepted request warms the cache.
        with self._cache_lock:
            hits = self._prompt_cache.lookup_and_store(parts)
        turn.cached_tokens = sum(part_tokens[:hits])

        last = contents[-1]
        last_parts = last.get("parts") or []
        after_tool = any("functionResponse" in p for p in last_parts)
        if after_tool:
            topic = " ".join(
                _response_topic(p["functionResponse"].get("response")) for p in last_parts if "functionResponse" in p
            )
        elif last.get("role") in (None, "", "user") and _content_text(last):
            topic = _content_text(last)
        else:
            users = [c for c in contents if c.get("role") in (None, "", "user") and _content_text(c)]
            topic = _content_text(users[-1]) if users else ""

        # Function calling.
        declarations = [d for tool in tools for d in tool.get("functionDeclarations") or ()]
        calling = (req.get("toolConfig") or {}).get("functionCallingConfig") or {}
        mode = str(calling.get("mode") or "AUTO").upper()
        # A tool result is answered in text, unless mode ANY forces another call.
        if declarations and mode != "NONE" and (not after_tool or mode == "ANY") and last.get("role") != "model":
            chosen = declarations[:2] if len(declarations) >= 2 else declarations[:1]
            if mode == "ANY":
                allowed = calling.get("allowedFunctionNames") or []
                chosen = [d for d in declarations if d.get("name") in allowed][:1] or declarations[:1]
            for decl in chosen:
                schema = decl.get("parametersJsonSchema")
                if schema is None and decl.get("parameters") is not None:
                    schema = _to_json_schema(decl["parameters"])
                args = instance_from_schema(schema) if schema else {}
                turn.calls.append(_Call(str(decl.get("name", "")), args if isinstance(args, dict) else {}))
        if not turn.calls:
            lead = "Simulated answer using the tool result about" if after_tool else "Simulated answer about"
            text = answer_text(topic, self.answer_words, lead=lead)
            mime = str(config.get("responseMimeType") or "text/plain")
            schema = config.get("responseJsonSchema")
            if schema is None and config.get("responseSchema") is not None:
                schema = _to_json_schema(config["responseSchema"])
            if mime == "application/json":
                text = json.dumps(instance_from_schema(schema) if schema else {"answer": text})
            elif mime == "text/x.enum" and isinstance(schema, dict) and schema.get("enum"):
                text = str(schema["enum"][0])
            for stop in config.get("stopSequences") or ():
                if stop and stop in text:
                    text = text[: text.index(stop)]  # Gemini drops the stop sequence and says STOP
            turn.text = text

        visible = turn.candidate_tokens()
        if thinks:
            turn.thoughts_tokens = _THOUGHTS_BASE + 2 * visible
            if budget is not None and budget > 0:
                turn.thoughts_tokens = min(turn.thoughts_tokens, budget)
            if thinking.get("includeThoughts"):
                turn.thought_summary = answer_text(topic, 10, lead="**Thinking it through** Considering")
            if turn.calls:  # thinking models sign their function calls; clients send it back
                digest = hashlib.blake2b(f"{model}:{topic}:{turn.calls[0].name}".encode(), digest_size=24)
                turn.thought_signature = digest.digest()
        max_out = config.get("maxOutputTokens")
        if isinstance(max_out, int) and turn.text is not None:
            # Thinking spends maxOutputTokens first: a small limit can leave no visible text.
            turn.thoughts_tokens = min(turn.thoughts_tokens, max_out)
            turn.text, cut = truncate_to_tokens(turn.text, max(max_out - turn.thoughts_tokens, 0))
            if cut:
                turn.finish_reason = "MAX_TOKENS"
        count = config.get("candidateCount")
        turn.candidates = count if isinstance(count, int) and count > 1 else 1
        self._apply_forced(turn, declarations)
        return turn

    def _apply_forced(self, turn: _Turn, declarations: list[dict[str, Any]]) -> None:
        forced = self._force
        if forced is None:
            return
        turn.finish_reason = forced
        full = turn.text or ""
        if forced == "MAX_TOKENS":
            turn.calls = []
            turn.text, _ = truncate_to_tokens(full, max(count_tokens(full) // 2, 1))
            return
        # Every other forced reason ends the candidate without content.
        turn.calls = []
        turn.text = None
        turn.thought_summary = None
        turn.thought_signature = None
        if forced in ("SAFETY", "RECITATION"):
            # Streamed, the first half arrives before the block ends the stream.
            turn.stream_prefix, _ = truncate_to_tokens(full, count_tokens(full) // 2)
        if forced == "SAFETY":
            turn.safety_ratings = _BLOCKED_RATINGS
        elif forced == "MALFORMED_FUNCTION_CALL":
            name = str(declarations[0].get("name")) if declarations else "default_api"
            turn.finish_message = f"Malformed function call: print(default_api.{name}(query='unterminated))"

    # --- dressing a turn as REST JSON ----------------------------------------------------

    def _usage(self, turn: _Turn, candidate_tokens: int) -> dict[str, Any]:
        usage: dict[str, Any] = {"promptTokenCount": turn.prompt_tokens}
        if candidate_tokens:  # the API leaves the field out when nothing visible was produced
            usage["candidatesTokenCount"] = candidate_tokens
        # Thoughts are billed output but not part of candidatesTokenCount; the total has both.
        usage["totalTokenCount"] = turn.prompt_tokens + candidate_tokens + turn.thoughts_tokens
        details = []
        if turn.prompt_text_tokens or not turn.prompt_media_tokens:
            details.append({"modality": "TEXT", "tokenCount": turn.prompt_text_tokens})
        if turn.prompt_media_tokens:
            details.append({"modality": "IMAGE", "tokenCount": turn.prompt_media_tokens})
        usage["promptTokensDetails"] = details
        if turn.cached_tokens:
            usage["cachedContentTokenCount"] = turn.cached_tokens
            usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": turn.cached_tokens}]
        if turn.thoughts_tokens:
            usage["thoughtsTokenCount"] = turn.thoughts_tokens
        return usage

    def _parts(
        self, turn: _Turn, text: str | None, *, summary: bool = True, calls: bool = True
    ) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        if summary and turn.thought_summary:
            parts.append({"text": turn.thought_summary, "thought": True})
        if calls:
            for k, call in enumerate(turn.calls):
                part: dict[str, Any] = {"functionCall": {"name": call.name, "args": call.args}}
                if k == 0 and turn.thought_signature:
                    part["thoughtSignature"] = base64.b64encode(turn.thought_signature).decode()
                parts.append(part)
        if text:
            parts.append({"text": text})
        return parts

    def _candidate(self, turn: _Turn, index: int, parts: list[dict[str, Any]] | None, finish: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {}
        if parts is not None:
            candidate["content"] = {"parts": parts, "role": "model"} if parts else {"role": "model"}
        if finish:
            candidate["finishReason"] = turn.finish_reason
            if turn.finish_message:
                candidate["finishMessage"] = turn.finish_message
            if turn.safety_ratings:
                candidate["safetyRatings"] = turn.safety_ratings
        candidate["index"] = index
        return candidate

    @staticmethod
    def _serialise(payload: dict[str, Any], *, indent: int | None) -> bytes:
        """Round-trip through ``types.GenerateContentResponse``: a typo here fails loudly."""
        from google.genai import types

        model = types.GenerateContentResponse.model_validate(payload)
        return model.model_dump_json(by_alias=True, exclude_none=True, indent=indent).encode()

    def _full_response(self, turn: _Turn, response_id: str) -> dict[str, Any]:
        has_content = turn.text is not None or turn.calls
        parts = self._parts(turn, turn.text) if has_content else None
        candidates = [self._candidate(turn, i, parts, True) for i in range(turn.candidates)]
        visible = turn.candidate_tokens() * turn.candidates if has_content else 0
        return {
            "candidates": candidates,
            "usageMetadata": self._usage(turn, visible),
            "modelVersion": turn.model,
            "responseId": response_id,
        }

    def _chunks(self, turn: _Turn, response_id: str) -> list[dict[str, Any]]:
        """The stream: full response objects, each with a piece and cumulative usage."""
        chunks: list[dict[str, Any]] = []

        def emit(index: int, parts: list[dict[str, Any]] | None, finish: bool, visible: int) -> None:
            chunks.append(
                {
                    "candidates": [self._candidate(turn, index, parts, finish)],
                    "usageMetadata": self._usage(turn, visible),
                    "modelVersion": turn.model,
                    "responseId": response_id,
                }
            )

        done = 0  # visible tokens of the candidates already streamed
        for i in range(turn.candidates):
            if turn.thought_summary:
                emit(i, self._parts(turn, None, calls=False), False, done)
            if turn.calls:  # function calls arrive whole, in the last event
                done += turn.candidate_tokens()
                emit(i, self._parts(turn, None, summary=False), True, done)
                continue
            # A blocked candidate still streams what it said before the block.
            text = turn.text if turn.text is not None else turn.stream_prefix
            pieces = split_deltas(text, self.words_per_chunk)
            shown = ""
            for k, piece in enumerate(pieces):
                shown += piece
                finish = k == len(pieces) - 1 and turn.text is not None
                emit(i, [{"text": piece}], finish, done + count_tokens(shown))
            done += count_tokens(text)
            if turn.text is None or not pieces:
                emit(i, None if turn.text is None else [], True, done)
        return chunks

    # --- POST models/{model}:generateContent ---------------------------------------------

    def _prepare(self, request: RecordedRequest, method: str) -> tuple[_Turn | None, JSONReply | None]:
        missing = self._unsupported(request, method)
        if missing is not None:
            return None, missing
        try:
            req = self._parse_generate(request.json)
            return self._plan(request.path_params["model"], req), None
        except _BadRequest as exc:
            return None, self._bad_request(exc)

    def _generate_content(self, request: RecordedRequest) -> Reply:
        turn, bad = self._prepare(request, "generateContent")
        if turn is None:
            assert bad is not None
            return bad
        payload = self._full_response(turn, self._response_id())
        return JSONReply(200, self._serialise(payload, indent=2))

    def _stream_generate_content(self, request: RecordedRequest) -> Reply:
        turn, bad = self._prepare(request, "generateContent")
        if turn is None:
            assert bad is not None
            return bad
        chunks = [self._serialise(c, indent=None) for c in self._chunks(turn, self._response_id())]
        if request.query.get("alt") == "sse":
            return StreamReply([b"data: " + c + _SSE_END for c in chunks])
        # Without alt=sse the API streams one JSON array, an element at a time.
        last = len(chunks) - 1
        events = [(b"[" if i == 0 else b",\r\n") + c + (b"]" if i == last else b"") for i, c in enumerate(chunks)]

        def array_error(message: str, index: int) -> bytes:
            return (b"[" if index == 0 else b",\r\n") + json.dumps(self.error_body(500, message)).encode() + b"]"

        return StreamReply(events, error_event=array_error, content_type="application/json; charset=UTF-8")

    # --- POST models/{model}:countTokens -------------------------------------------------

    def _count_tokens(self, request: RecordedRequest) -> Reply:
        missing = self._unsupported(request, "countTokens")
        if missing is not None:
            return missing
        body = request.json if isinstance(request.json, dict) else {}
        try:
            inner = _get(body, "generateContentRequest")
            if inner is not None:
                req = self._parse_generate(inner)
            else:
                raw = _get(body, "contents") or []
                req = {"contents": _dump(self._validate("contents", raw, "contents"))}
                items = [(f"contents[{i}]", c) for i, c in enumerate(req["contents"])]
                self._check_contents(items, request="CountTokensRequest")
        except _BadRequest as exc:
            return self._bad_request(exc)
        text = media = 0
        for content in [req.get("systemInstruction"), *req.get("contents", [])]:
            t, m = _content_tokens(content)
            text += t
            media += m
        if req.get("tools"):
            text += count_tokens(json.dumps(req["tools"], sort_keys=True))
        details = [{"modality": "TEXT", "tokenCount": text}]
        if media:
            details.append({"modality": "IMAGE", "tokenCount": media})
        return JSONReply(200, {"totalTokens": text + media, "promptTokensDetails": details})

    # --- POST models/{model}:embedContent / :batchEmbedContents --------------------------

    def _embed_one(self, where: str, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise _BadRequest([(None, "Invalid JSON payload received. Unexpected token.")])
        content_raw = _get(raw, "content")
        request = "BatchEmbedContentsRequest" if where else "EmbedContentRequest"
        if content_raw is None:
            raise _BadRequest([(f"{where}content", f"* {request}.{where}content: content is not specified\n")])
        content = _dump(self._validate(f"{where}content", content_raw, "content"))
        self._check_contents([(f"{where}content", content)], request=request, roles=False)
        dims = _get(raw, "outputDimensionality")
        size = dims if isinstance(dims, int) and dims > 0 else self.embedding_dimensions
        text = _content_text(content)
        task = _get(raw, "taskType")
        # The task type changes the vector, as it does on the real API.
        return {"values": embedding_vector(f"{task}|{text}" if task else text, size)}

    def _embed_content(self, request: RecordedRequest) -> Reply:
        missing = self._unsupported(request, "embedContent")
        if missing is not None:
            return missing
        try:
            return JSONReply(200, {"embedding": self._embed_one("", request.json)})
        except _BadRequest as exc:
            return self._bad_request(exc)

    def _batch_embed_contents(self, request: RecordedRequest) -> Reply:
        missing = self._unsupported(request, "embedContent")
        if missing is not None:
            return missing
        requests = _get(request.json, "requests")
        if not isinstance(requests, list) or not requests:
            return self._bad_request(
                _BadRequest([("requests", "* BatchEmbedContentsRequest.requests: requests is not specified\n")])
            )
        try:
            embeddings = [self._embed_one(f"requests[{i}].", r) for i, r in enumerate(requests)]
        except _BadRequest as exc:
            return self._bad_request(exc)
        return JSONReply(200, {"embeddings": embeddings})

    # --- GET models ----------------------------------------------------------------------

    def _model_obj(self, name: str) -> dict[str, Any]:
        embedder = "embedding" in name
        obj: dict[str, Any] = {
            "name": f"models/{name}",
            "version": "001",
            "displayName": _display_name(name),
            "description": f"Simulated {_display_name(name)}",
            "inputTokenLimit": 2048 if embedder else self.context_window,
            "outputTokenLimit": 1 if embedder else 65_536,
            "supportedGenerationMethods": self._methods(name),
        }
        if not embedder:
            obj.update({"temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2})
            if _thinks_by_default(name) or ("flash-lite" in name and "2.5" in name):
                obj["thinking"] = True
        return obj

    def _list_models(self, request: RecordedRequest) -> Reply:
        return JSONReply(200, {"models": [self._model_obj(m) for m in self.models]})

    def _get_model(self, request: RecordedRequest) -> Reply:
        name = request.path_params.get("model", "")
        if name not in self.models:
            return self.error(
                404,
                f"models/{name} is not found for API version {self._api_version(request)}, or is not supported "
                "for get. Call ListModels to see the list of available models and their supported methods.",
            )
        return JSONReply(200, self._model_obj(name))


def _dump(value: Any) -> Any:
    """A validated SDK object (or list of them) back to canonical camelCase JSON."""
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value.model_dump(mode="json", by_alias=True, exclude_none=True)
