"""Deterministic content for the simulated providers.

Everything here is a pure function of its inputs, so two runs of a test, a demo or a
benchmark see the same answers, token counts and vectors. No provider specifics live here:
each wire fake turns these strings and numbers into its own JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "PrefixCache",
    "answer_text",
    "count_tokens",
    "embedding_vector",
    "encode_floats_base64",
    "instance_from_schema",
    "is_reasoning_model",
    "reasoning_tokens_for",
    "split_deltas",
    "truncate_to_tokens",
]

_WORD = re.compile(r"\S+")
_PIECE = re.compile(r"\S+\s*")
# A fixed vocabulary keeps answers readable while staying a pure function of the prompt.
_FILLER = (
    *("the", "system", "handled", "this", "request", "and", "returned", "a", "concise", "result"),
    *("with", "several", "useful", "details", "covering", "context", "options", "tradeoffs"),
    *("examples", "caveats", "and", "next", "steps", "for", "you"),
)
_MAX_PIECE_CHARS = 16  # long unbroken runs (compact JSON) still stream in several deltas


def count_tokens(text: str) -> int:
    """About one token per four characters of each whitespace-separated word, at least one per word.

    Additive over words, so a text truncated at a word boundary has a predictable count.
    """
    return sum((len(w) + 3) // 4 for w in _WORD.findall(text))


def truncate_to_tokens(text: str, max_tokens: int) -> tuple[str, bool]:
    """Cut ``text`` after the last whole word that fits in ``max_tokens``; True when cut."""
    used = 0
    end = 0
    for match in _WORD.finditer(text):
        cost = (len(match.group()) + 3) // 4
        if used + cost > max_tokens:
            return text[:end], True
        used += cost
        end = match.end()
    return text, False


def answer_text(prompt: str, words: int = 12, *, lead: str = "Simulated answer about") -> str:
    """``"<lead> <first words of prompt> ..."`` padded with filler words to ``words`` words."""
    topic = _WORD.findall(prompt)[:5] or ["nothing"]
    out = [*lead.split(), *topic]
    if len(out) >= words:
        return " ".join(out[: max(words, 1)]) + "."
    # The filler order depends on the prompt so different prompts give different answers.
    start = int.from_bytes(hashlib.blake2b(prompt.encode(), digest_size=4).digest(), "little")
    i = start
    while len(out) < words:
        out.append(_FILLER[i % len(_FILLER)])
        i += 1
    return " ".join(out) + "."


def split_deltas(text: str, words_per_delta: int = 2) -> list[str]:
    """Split ``text`` into stream deltas whose concatenation is exactly ``text``."""
    if not text:
        return []
    pieces: list[str] = []
    lead = len(text) - len(text.lstrip())
    if lead:
        pieces.append(text[:lead])
    for piece in _PIECE.findall(text):
        while len(piece) > _MAX_PIECE_CHARS:
            pieces.append(piece[:_MAX_PIECE_CHARS])
            piece = piece[_MAX_PIECE_CHARS:]
        pieces.append(piece)
    n = max(words_per_delta, 1)
    return ["".join(pieces[i : i + n]) for i in range(0, len(pieces), n)]


def is_reasoning_model(model: str) -> bool:
    """o1/o3/o4-mini... and gpt-5* models spend hidden reasoning tokens."""
    name = model.rsplit("/", 1)[-1].lower()
    return (len(name) > 1 and name[0] == "o" and name[1].isdigit()) or name.startswith("gpt-5")


def reasoning_tokens_for(model: str, visible_tokens: int) -> int:
    """Deterministic hidden reasoning cost: 0 for non-reasoning models."""
    if not is_reasoning_model(model):
        return 0
    return 16 + 2 * visible_tokens


class PrefixCache:
    """Remembers every prefix of every prompt seen, like a provider's prompt cache.

    A prompt is a sequence of parts (messages, input items). ``lookup_and_store`` returns how
    many leading parts of this prompt (never the last one) were already seen as a prefix of an
    earlier prompt, then records this prompt's prefixes. Not thread-safe: callers hold a lock.
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        self._seen: set[bytes] = set()
        self._max_entries = max_entries

    def lookup_and_store(self, parts: Sequence[Any]) -> int:
        digest = b""
        hits = 0
        keys: list[bytes] = []
        for i, part in enumerate(parts):
            blob = json.dumps(part, sort_keys=True, separators=(",", ":"), default=str).encode()
            digest = hashlib.blake2b(digest + blob, digest_size=16).digest()
            keys.append(digest)
            if i < len(parts) - 1 and digest in self._seen:
                hits = i + 1
        if len(self._seen) + len(keys) > self._max_entries:
            self._seen.clear()  # bounded memory for long benchmarks; a cold cache is realistic
        self._seen.update(keys)
        return hits

    def clear(self) -> None:
        self._seen.clear()


def embedding_vector(text: str, dimensions: int = 8) -> list[float]:
    """A unit-length vector that depends only on ``text`` and ``dimensions``."""
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    rng = random.Random(seed)
    vec = [rng.gauss(0.0, 1.0) for _ in range(max(dimensions, 1))]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    # Round-trip through float32 so float and base64 encodings decode to the same numbers.
    return list(struct.unpack(f"<{len(vec)}f", struct.pack(f"<{len(vec)}f", *(v / norm for v in vec))))


def encode_floats_base64(values: Sequence[float]) -> str:
    """Little-endian float32, base64: what OpenAI sends for ``encoding_format="base64"``."""
    import base64

    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


# --- JSON schema → instance ----------------------------------------------------------------

_MAX_DEPTH = 6  # recursive models (trees) stop growing here
_FORMATS: dict[str, str] = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "hostname": "example.com",
    "duration": "P1D",
}


def instance_from_schema(schema: Mapping[str, Any] | bool | None, *, name: str = "value") -> Any:
    """A small JSON value that validates against ``schema``.

    Covers what pydantic (and ``openai.pydantic_function_tool`` / strict mode) emits: objects
    with properties/required, scalars with bounds, arrays, tuples (prefixItems), enum/const,
    anyOf/oneOf/allOf, nullable type lists, and ``$ref`` into ``$defs``/``definitions``.
    ``pattern`` is not honoured.
    """
    root = schema if isinstance(schema, Mapping) else {}
    return _generate(schema, root, name, 0)


def _resolve(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for key in ref[1:].split("/"):
        if not key:
            continue
        key = key.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        else:
            return {}
    return node if isinstance(node, Mapping) else {}


def _generate(schema: Mapping[str, Any] | bool | None, root: Mapping[str, Any], name: str, depth: int) -> Any:
    if schema is None or schema is True:
        return f"sample {name}"
    if schema is False:
        return None
    if "$ref" in schema:
        target = _resolve(str(schema["$ref"]), root)
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return _generate(merged, root, name, depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return _generate(_pick_option(options, depth), root, name, depth)
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and all_of:
        parts = [_generate(s, root, name, depth) for s in all_of]
        if all(isinstance(p, dict) for p in parts):
            merged_obj: dict[str, Any] = {}
            for p in parts:
                merged_obj.update(p)
            return merged_obj
        return parts[0]

    typ = schema.get("type")
    if isinstance(typ, list):
        non_null = [t for t in typ if t != "null"]
        typ = non_null[0] if non_null else "null"
    if typ is None:
        if "properties" in schema or "additionalProperties" in schema:
            typ = "object"
        elif "items" in schema or "prefixItems" in schema:
            typ = "array"
        else:
            return f"sample {name}"

    if typ == "object":
        return _object(schema, root, depth)
    if typ == "array":
        return _array(schema, root, name, depth)
    if typ == "string":
        return _string(schema, name)
    if typ == "integer":
        return int(_number(schema, integer=True))
    if typ == "number":
        return _number(schema, integer=False)
    if typ == "boolean":
        return True
    if typ == "null":
        return None
    return f"sample {name}"


def _pick_option(options: list[Any], depth: int) -> Any:
    """The first non-null option; deep in a recursive schema prefer null or a scalar to stop."""
    if depth >= _MAX_DEPTH:
        for opt in options:
            if isinstance(opt, Mapping) and opt.get("type") == "null":
                return opt
        for opt in options:
            if isinstance(opt, Mapping) and "$ref" not in opt and opt.get("type") not in ("object", "array"):
                return opt
    for opt in options:
        if not (isinstance(opt, Mapping) and opt.get("type") == "null"):
            return opt
    return options[0]


def _object(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> dict[str, Any]:
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return {}
    required = schema.get("required")
    # No "required" list (json_object-style schemas) → fill every property so the answer has content.
    names: Iterable[str] = required if isinstance(required, list) else list(props)
    out: dict[str, Any] = {}
    for key in names:
        sub = props.get(key, {})
        out[key] = _generate(sub, root, key, depth + 1)
    return out


def _array(schema: Mapping[str, Any], root: Mapping[str, Any], name: str, depth: int) -> list[Any]:
    prefix = schema.get("prefixItems")
    if isinstance(prefix, list):
        return [_generate(s, root, f"{name}_{i}", depth + 1) for i, s in enumerate(prefix)]
    min_items = int(schema.get("minItems", 0) or 0)
    max_items = schema.get("maxItems")
    count = max(min_items, 0 if depth >= _MAX_DEPTH else 1)
    if isinstance(max_items, int):
        count = min(count, max_items)
    items = schema.get("items", {})
    if items is False:
        return []
    return [_generate(items, root, name, depth + 1) for _ in range(count)]


def _string(schema: Mapping[str, Any], name: str) -> str:
    fmt = schema.get("format")
    value = _FORMATS.get(fmt, f"sample {name}") if isinstance(fmt, str) else f"sample {name}"
    min_len = int(schema.get("minLength", 0) or 0)
    max_len = schema.get("maxLength")
    if len(value) < min_len:
        value = value + "x" * (min_len - len(value))
    if isinstance(max_len, int) and len(value) > max_len:
        value = value[:max_len]
    return value


def _number(schema: Mapping[str, Any], *, integer: bool) -> float:
    lo = schema.get("minimum")
    hi = schema.get("maximum")
    xlo = schema.get("exclusiveMinimum")
    xhi = schema.get("exclusiveMaximum")
    step = 1 if integer else 0.5
    value: float = 1 if integer else 1.5
    if isinstance(lo, (int, float)):
        value = max(value, lo)
    if isinstance(xlo, (int, float)) and value <= xlo:
        value = (math.floor(xlo) + 1) if integer else xlo + step
    if isinstance(hi, (int, float)) and value > hi:
        value = hi
    if isinstance(xhi, (int, float)) and value >= xhi:
        value = (math.ceil(xhi) - 1) if integer else xhi - step
        if isinstance(lo, (int, float)) and value < lo:
            value = lo
        if isinstance(xlo, (int, float)) and value <= xlo:
            value = (xlo + xhi) / 2
    multiple = schema.get("multipleOf")
    if isinstance(multiple, (int, float)) and multiple > 0:
        value = math.ceil(value / multiple) * multiple
        if isinstance(hi, (int, float)) and value > hi:
            value = math.floor(hi / multiple) * multiple
    if integer:
        value = math.ceil(value) if isinstance(lo, (int, float)) or isinstance(xlo, (int, float)) else int(value)
    return value
