"""What unillm knows about one logical call and its HTTP attempts while the call is under way.

The hot path only stamps times and keeps bytes; turning them into tokens, cost and rows happens
later on the recorder's thread (`tracer.rows`). A call is finished exactly once: when the SDK
raised, or when the SDK returned and the last attempt's body has ended (streams end when the app
has read them, or closed them, or dropped them).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

# Endpoint paths the SDK calls (POST) that unillm records, with their OpenTelemetry operation.
RECORDED_ENDPOINTS: dict[str, str] = {
    "/chat/completions": "chat",
    "/responses": "chat",
    "/completions": "text_completion",
    "/embeddings": "embeddings",
}


def new_call_id() -> str:
    """Time-ordered unique id: nanosecond clock + 48 random bits (cheaper than uuid4, sortable).

    `random` is re-seeded from os.urandom in forked children by CPython, so ids stay unique
    across worker processes; the clock prefix separates everything else.
    """
    return f"{time.time_ns():016x}{random.getrandbits(48):012x}"


class ErrorNote(NamedTuple):
    """What the log needs of an exception: its class name, message and HTTP status. Not the
    exception itself: its traceback holds the call's frames, which hold the record, a cycle that
    only a full garbage collection (100+ ms in a big app) frees."""

    kind: str
    message: str
    status_code: int | None = None

    @classmethod
    def of(cls, exc: BaseException) -> ErrorNote:
        status = getattr(exc, "status_code", None)
        return cls(type(exc).__name__, str(exc), status if isinstance(status, int) else None)

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class AttemptRecord:
    """One HTTP request the SDK sent for a call (the SDK's own retries make more)."""

    __slots__ = (
        "call",
        "number",
        "wall_start",
        "t_start",
        "t_end",
        "t_first_token",
        "server_address",
        "model",
        "http_status",
        "is_sse",
        "body",
        "events",
        "saw_end",
        "transport_error",
        "interrupted",
        "ended",
        "provider",
        "translation",
        "reason",
        "wait_ms",
        "breaker_state",
    )

    def __init__(self, call: CallRecord, number: int, server_address: str) -> None:
        self.call = call
        self.number = number
        self.wall_start = time.time()
        self.t_start = time.perf_counter()
        self.t_end: float | None = None
        self.t_first_token: float | None = None
        self.server_address = server_address
        self.model = call.request_model
        self.http_status: int | None = None
        self.is_sse = False
        self.body: bytes | None = None  # non-streamed answer (or error body), parsed later
        self.events: list[bytes] = []  # the few SSE payloads that carry model, usage, finish, errors
        self.saw_end = False  # the stream's terminal event ([DONE], response.completed, ...)
        self.transport_error: ErrorNote | None = None
        self.interrupted = False  # body closed or abandoned before its end
        self.ended = False
        self.provider: str | None = None  # set when unillm routed the attempt (else: from the host)
        self.translation: Any = None  # adapters.base.Translation of a translated attempt
        # Set by the router (NULL in the log otherwise): see schema.ATTEMPT_COLUMNS.
        self.reason: str | None = None
        self.wait_ms: float | None = None
        self.breaker_state: str | None = None

    def end(self, *, interrupted: bool = False) -> None:
        """The body has ended (or failed); idempotent."""
        if self.ended:
            return
        self.ended = True
        self.t_end = time.perf_counter()
        self.interrupted = interrupted
        self.call.attempt_ended(self)

    def fail(self, exc: BaseException) -> None:
        """No answer came: connection error, timeout, cancellation."""
        self.transport_error = ErrorNote.of(exc)
        self.end()


class CallRecord:
    """One SDK method call (chat.completions.create, responses.create, embeddings.create, ...)."""

    __slots__ = (
        "call_id",
        "wall_start",
        "t_start",
        "t_end",
        "endpoint",
        "operation",
        "stream",
        "request_model",
        "tags",
        "strip_usage_chunk",
        "attempts",
        "returned",
        "exception",
        "finished",
        "target",
        "plan",
        "route",
        "strategy",
        "route_reason",
        "blocked",
        "otel_context",
        "request_body",
        "_on_finish",
    )

    def __init__(
        self,
        endpoint: str,
        request_model: str | None,
        stream: bool,
        tags: Mapping[str, str],
        on_finish: Callable[[CallRecord], Any],
    ) -> None:
        self.call_id = new_call_id()
        self.wall_start = time.time()
        self.t_start = time.perf_counter()
        self.t_end: float | None = None
        self.endpoint = endpoint
        self.operation = RECORDED_ENDPOINTS[endpoint]
        self.stream = stream
        self.request_model = request_model
        self.tags = tags
        self.strip_usage_chunk = False  # unillm asked for usage the app did not ask for
        self.attempts: list[AttemptRecord] = []
        self.returned = False
        self.exception: ErrorNote | None = None  # what the SDK raised to the app
        self.finished = False
        self.target: Any = None  # adapters.base.Target when unillm sends this call to a provider
        self.plan: Any = None  # routing.policy.Plan when unillm retries and fails over itself
        # Set by the router (NULL in the log otherwise): see schema.CALL_COLUMNS.
        self.route: str | None = None
        self.strategy: str | None = None
        self.route_reason: str | None = None
        self.blocked: str | None = None  # a spent budget's message: the call is answered, not sent
        self.otel_context: Any = None  # the app's OpenTelemetry context at the call: its span's parent
        # The request's JSON body, kept only when content capture is on (read on the recorder's thread).
        self.request_body: Mapping[str, Any] | None = None
        self._on_finish = on_finish

    def new_attempt(self, server_address: str) -> AttemptRecord:
        attempt = AttemptRecord(self, len(self.attempts) + 1, server_address)
        self.attempts.append(attempt)
        return attempt

    def sdk_returned(self) -> None:
        """The SDK method returned; the call ends now or when the app finishes reading the body."""
        self.returned = True
        if not self.attempts or self.attempts[-1].ended:
            self._finish()

    def sdk_raised(self, exc: BaseException) -> None:
        self.exception = ErrorNote.of(exc)
        self._finish()

    def attempt_ended(self, attempt: AttemptRecord) -> None:
        if self.returned and attempt is self.attempts[-1]:
            self._finish()

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.t_end = time.perf_counter()
        self._on_finish(self)
