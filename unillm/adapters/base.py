"""The contract between unillm and a wire family: translate, never send.

An adapter turns the OpenAI-wire request the SDK built into the provider's HTTP request, and the
provider's answer (JSON, or SSE chunk by chunk) back into OpenAI wire that the SDK parses itself.
Adapters do no I/O: `adapters.dispatch` sends the request through the SDK client's own transport
(its pool, proxy and timeouts) and feeds the bytes back. That keeps translation pure and testable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from unillm.adapters.registry import ProviderSpec
from unillm.tracer.answer import Usage


class UnsupportedFeature(ValueError):
    """The request asks for something this provider cannot honour; the message names both."""


@dataclass
class Target:
    """Where one attempt goes: a provider and the model name that provider knows."""

    provider: ProviderSpec
    model: str
    api_key: str | None


@dataclass
class ProviderRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Translation:
    """State shared by the request and response halves of one attempt."""

    endpoint: str
    request_model: str
    stream: bool
    include_usage: bool  # the app (or unillm) asked for a usage chunk at the end of the stream
    usage: Usage | None = None  # normalised usage the adapter read (set while translating back)
    extra: dict[str, Any] = field(default_factory=dict)


class Adapter(Protocol):
    wire: str

    def build_request(self, target: Target, translation: Translation, body: dict[str, Any]) -> ProviderRequest: ...

    def translate_response(self, translation: Translation, status: int, body: bytes) -> tuple[int, bytes]:
        """A whole (non-streamed or error) answer → (status, OpenAI-wire JSON body)."""
        ...

    def stream_translator(self, translation: Translation) -> StreamTranslator:
        """Translates the provider's SSE into OpenAI SSE (`data: {...}` ... `data: [DONE]`)."""
        ...


class StreamTranslator(Protocol):
    """Fed the provider's stream chunk by chunk (sync or async alike); returns OpenAI SSE bytes."""

    def feed(self, chunk: bytes) -> bytes: ...

    def close(self) -> bytes:
        """The provider's stream ended; whatever is left to say (a missing [DONE] stays missing)."""
        ...


def openai_error(status: int, message: str, *, kind: str, code: str | None = None, param: str | None = None) -> bytes:
    """An OpenAI-shaped error body: the SDK raises its own exception class for `status` with it."""
    return json.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}}).encode()


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"
