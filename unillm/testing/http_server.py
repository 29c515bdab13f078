"""A small threaded HTTP/1.1 server for simulated providers, with fault injection.

Nothing here knows about a provider's wire format. A wire fake subclasses
:class:`FakeHTTPServer`, registers routes whose handlers return a :class:`JSONReply` or a
:class:`StreamReply`, and overrides the hooks that shape error bodies, mid-stream errors and
authentication. The server binds 127.0.0.1 on a free port, answers from daemon threads, keeps
connections alive, and streams with ``Transfer-Encoding: chunked`` (one flush per event).

Faults come from three places, first match wins: an ``x-fake-fault`` request header (handy
for concurrent tests), a FIFO of scripted faults (``fail_next``, ``drop_next``, ``reset_next``,
``malformed_next``, ...), and a seeded random ``error_rate``. They apply to routes registered
with ``faults=True`` only.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "FAULT_HEADER",
    "FakeHTTPServer",
    "Fault",
    "FaultInjector",
    "JSONReply",
    "RecordedRequest",
    "Reply",
    "StreamReply",
]

FAULT_HEADER = "x-fake-fault"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    received_at: float
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    request_id: str = ""
    path_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JSONReply:
    status: int
    body: Any  # JSON-serialisable value, or bytes sent as is
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass(frozen=True)
class StreamReply:
    """An event stream: each item of ``events`` is one complete, framed SSE event."""

    events: Iterable[bytes]
    # Builds the wire's mid-stream error event from (message, index of the event it replaces);
    # None → the server's ``stream_error_event``.
    error_event: Callable[[str, int], bytes] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    status: int = 200
    content_type: str = "text/event-stream; charset=utf-8"


Reply = JSONReply | StreamReply
Handler = Callable[[RecordedRequest], Reply]

# What a proxy or captive portal answers in place of the API (with a 200, to fool status checks).
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Access Denied</title></head>\n"
    b"<body><h1>Access Denied</h1><p>The requested URL was rejected by the proxy.</p></body></html>\n"
)


@dataclass(frozen=True)
class Fault:
    """What to do to one request. Fields combine: e.g. stall 1 s, then answer 503."""

    status: int | None = None  # answer with this HTTP error
    retry_after: float | None = None  # seconds, sent as Retry-After / retry-after-ms
    message: str | None = None  # error message; None → the wire's default for the status
    drop: bool = False  # close the connection without answering
    stall: float = 0.0  # wait this long before answering
    stream_error_after: int | None = None  # streamed replies: N events, then an error event
    reset: bool = False  # send the head and part of the body, then reset the connection (RST)
    reset_after_bytes: int | None = None  # body bytes sent before the reset; None → about half
    first_token_delay: float = 0.0  # wait this long between the head and the first body byte
    stream_stall: float = 0.0  # streamed replies: stall this long after ``stream_stall_after`` events
    stream_stall_after: int = 2
    malformed: bool = False  # 200 with a body (or one SSE event) that is not valid JSON
    wrong_content_type: bool = False  # 200 with an HTML page instead of the API's answer

    @property
    def stream_only(self) -> bool:
        """Only a streamed reply shows it; a scripted one waits in the queue for a streamed request."""
        streamed = self.stream_error_after is not None or self.first_token_delay > 0 or self.stream_stall > 0
        anywhere = (
            self.status is not None
            or self.drop
            or self.stall > 0
            or self.reset
            or self.malformed
            or self.wrong_content_type
        )
        return streamed and not anywhere

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """Parse ``x-fake-fault``: ``;``-separated ``drop``, ``status=503``, ``retry_after=2``,
        ``stall=1.5``, ``stream_error=3``, ``message=...``, ``reset`` or ``reset=BYTES``,
        ``slow_first_token=0.2``, ``stall_stream=0.5`` (after ``stall_after=2`` events),
        ``malformed``, ``wrong_content_type``."""
        fault = cls()
        for part in spec.split(";"):
            key, _, value = part.strip().partition("=")
            key, value = key.strip().lower(), value.strip()
            if not key:
                continue
            if key == "drop":
                fault = replace(fault, drop=True)
            elif key == "status":
                fault = replace(fault, status=int(value))
            elif key in ("retry_after", "retry-after"):
                fault = replace(fault, retry_after=float(value))
            elif key == "stall":
                fault = replace(fault, stall=float(value))
            elif key == "stream_error":
                fault = replace(fault, stream_error_after=int(value) if value else 0)
            elif key == "message":
                fault = replace(fault, message=value)
            elif key == "reset":
                fault = replace(fault, reset=True, reset_after_bytes=int(value) if value else None)
            elif key == "slow_first_token":
                fault = replace(fault, first_token_delay=float(value))
            elif key == "stall_stream":
                fault = replace(fault, stream_stall=float(value))
            elif key == "stall_after":
                fault = replace(fault, stream_stall_after=int(value))
            elif key == "malformed":
                fault = replace(fault, malformed=True)
            elif key == "wrong_content_type":
                fault = replace(fault, wrong_content_type=True)
            else:
                raise ValueError(f"unknown {FAULT_HEADER} directive {key!r}")
        return fault


class FaultInjector:
    """Thread-safe source of faults: header, then scripted FIFO, then seeded random rate."""

    def __init__(self, seed: int = 0, error_rate: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._queue: list[list[Any]] = []  # [fault, remaining count]
        self._rng = random.Random(seed)
        self.error_rate = error_rate
        # (status, weight) for random faults: mostly rate limits, some server errors.
        self.random_statuses: tuple[tuple[int, float], ...] = ((429, 0.5), (500, 0.25), (503, 0.25))

    def push(self, fault: Fault, count: int = 1) -> None:
        if count > 0:
            with self._lock:
                self._queue.append([fault, count])

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(entry[1] for entry in self._queue)

    def take(self, headers: Mapping[str, str], *, streaming: bool) -> Fault | None:
        """The fault for one request, consuming a scripted one if it applies.

        Stream-only faults wait in the queue for the next streamed request; non-streamed
        requests pass them over.
        """
        spec = headers.get(FAULT_HEADER)
        if spec:
            return Fault.parse(spec)
        with self._lock:
            for i, entry in enumerate(self._queue):
                fault: Fault = entry[0]
                if fault.stream_only and not streaming:
                    continue
                entry[1] -= 1
                if entry[1] <= 0:
                    del self._queue[i]
                return fault
            if self.error_rate > 0 and self._rng.random() < self.error_rate:
                statuses = [s for s, _ in self.random_statuses]
                weights = [w for _, w in self.random_statuses]
                return Fault(status=self._rng.choices(statuses, weights)[0])
        return None


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    faults: bool


def _compile_path(path: str) -> re.Pattern[str]:
    """``/models/{model}:generateContent`` → a regex with named groups (a group stops at ``/``)."""
    out = []
    for literal, name in re.findall(r"([^{]*)(?:\{(\w+)\})?", path):
        out.append(re.escape(literal))
        if name:
            out.append(f"(?P<{name}>[^/]+?)")
    return re.compile("".join(out) + r"/?\Z")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # benchmarks open many connections at once
    fake: FakeHTTPServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients reset idle keep-alive connections all the time (and close() shuts them):
        # that is not worth a traceback. Anything else is a bug and is printed.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # small SSE writes must not wait for delayed ACKs
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def _dispatch(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a benchmark would drown in access logs


class FakeHTTPServer:
    """Base of the simulated providers. Starts serving in a background thread at construction.

    Knobs (plain attributes, may change while serving):
      ``latency``      seconds before any answer (headers of a stream, or a whole JSON reply)
      ``ttft``         extra seconds between a stream's headers and its first event
      ``chunk_delay``  seconds between stream events
      ``error_rate``   probability of a random 429/500/503 (seeded by ``seed``)
    """

    # Optional leading path segments routes also answer under, e.g. ("/v1",).
    path_prefixes: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        latency: float = 0.0,
        ttft: float = 0.0,
        chunk_delay: float = 0.0,
        error_rate: float = 0.0,
        seed: int = 0,
        record: bool = True,
    ) -> None:
        self.latency = latency
        self.ttft = ttft
        self.chunk_delay = chunk_delay
        self.seed = seed
        self.record = record
        self.faults = FaultInjector(seed=seed, error_rate=error_rate)
        self._routes: list[_Route] = []
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._closing = threading.Event()
        self._closed = False
        self._httpd = _HTTPServer(("127.0.0.1", 0), _RequestHandler)
        self._httpd.fake = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()

    # --- addresses -----------------------------------------------------------------------

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        return f"http://127.0.0.1:{self.port}"

    # --- recorded requests ---------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget recorded requests and scripted faults."""
        with self._lock:
            self._requests.clear()
        self.faults.clear()

    # --- fault injection -----------------------------------------------------------------

    @property
    def error_rate(self) -> float:
        return self.faults.error_rate

    @error_rate.setter
    def error_rate(self, value: float) -> None:
        self.faults.error_rate = value

    def fail_next(
        self, count: int = 1, status: int = 429, retry_after: float | None = None, message: str | None = None
    ) -> None:
        """Answer the next ``count`` model requests with HTTP ``status`` and the wire's error body."""
        self.faults.push(Fault(status=status, retry_after=retry_after, message=message), count)

    def fail_stream_next(self, after_chunks: int = 2, message: str | None = None, count: int = 1) -> None:
        """The next ``count`` streamed requests send ``after_chunks`` events, then an error event."""
        self.faults.push(Fault(stream_error_after=after_chunks, message=message), count)

    def drop_next(self, count: int = 1) -> None:
        """Close the connection of the next ``count`` model requests without answering."""
        self.faults.push(Fault(drop=True), count)

    def stall_next(self, seconds: float = 5.0, count: int = 1) -> None:
        """Wait ``seconds`` before answering the next ``count`` model requests (timeout tests)."""
        self.faults.push(Fault(stall=seconds), count)

    def reset_next(self, count: int = 1, after_bytes: int | None = None) -> None:
        """The next ``count`` model requests get a 200 head (JSON: with the full Content-Length) and
        ``after_bytes`` bytes of the body (None: about half; streams never reach their last event),
        then a connection reset."""
        self.faults.push(Fault(reset=True, reset_after_bytes=after_bytes), count)

    def slow_first_token_next(self, seconds: float, count: int = 1) -> None:
        """The next ``count`` streamed requests get their head at once, then wait ``seconds`` before
        the first event (the rest flows normally). With the header, a JSON body waits the same way."""
        self.faults.push(Fault(first_token_delay=seconds), count)

    def stall_stream_next(self, after_chunks: int = 2, seconds: float = 5.0, count: int = 1) -> None:
        """The next ``count`` streamed requests send ``after_chunks`` events, stall ``seconds``, then go on."""
        self.faults.push(Fault(stream_stall=seconds, stream_stall_after=after_chunks), count)

    def malformed_next(self, count: int = 1) -> None:
        """The next ``count`` model requests get a 200 whose JSON body is cut short (streams: the
        first event's ``data:`` is cut short, the rest follows)."""
        self.faults.push(Fault(malformed=True), count)

    def wrong_content_type_next(self, count: int = 1) -> None:
        """The next ``count`` model requests get a 200 ``text/html`` page, as from a proxy, streamed or not."""
        self.faults.push(Fault(wrong_content_type=True), count)

    # --- routing and hooks for wire fakes ------------------------------------------------

    def add_route(self, method: str, path: str, handler: Handler, *, faults: bool = True) -> None:
        """Register ``handler`` for ``method path``; ``{name}`` segments land in ``path_params``."""
        self._routes.append(_Route(method.upper(), _compile_path(path), handler, faults))

    def error_body(self, status: int, message: str | None, *, param: str | None = None, code: str | None = None) -> Any:
        """The wire's JSON error body. Wire fakes override this."""
        return {"error": {"status": status, "message": message or HTTPStatus(status).phrase}}

    def stream_error_event(self, message: str, index: int) -> bytes:
        """The wire's mid-stream error event replacing event number ``index``. Wire fakes override this."""
        return b"event: error\ndata: " + json.dumps(self.error_body(500, message)).encode() + b"\n\n"

    def authenticate(self, request: RecordedRequest) -> Reply | None:
        """Return an error reply to reject the request; None accepts it."""
        return None

    def wants_stream(self, request: RecordedRequest) -> bool:
        """Whether the request asks for a streamed answer (decides stream-only faults)."""
        return isinstance(request.json, dict) and request.json.get("stream") is True

    def error(
        self,
        status: int,
        message: str | None = None,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> JSONReply:
        """An error reply in the wire's shape, with Retry-After headers when asked."""
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
            headers["retry-after-ms"] = str(int(retry_after * 1000))
        return JSONReply(status, self.error_body(status, message, param=param, code=code), headers)

    def default_headers(self, request: RecordedRequest) -> Mapping[str, str]:
        """Extra headers on every reply (after ``x-request-id``)."""
        return {}

    # --- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop serving, wake any delayed or stalled answer, close open connections, join."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._httpd.shutdown()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    # --- request handling (runs on the connection's thread) ------------------------------

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless closing; True when the server is closing and the answer should stop."""
        if seconds > 0:
            return self._closing.wait(seconds)
        return self._closing.is_set()

    def _match(self, method: str, path: str) -> tuple[_Route | None, dict[str, str], bool]:
        """(route, path params, path known for another method)."""
        candidates = [path]
        for prefix in self.path_prefixes:
            if path.startswith(prefix + "/"):
                candidates.append(path[len(prefix) :])
        known = False
        for route in self._routes:
            for candidate in candidates:
                m = route.pattern.match(candidate)
                if m:
                    if route.method == method:
                        return route, m.groupdict(), True
                    known = True
        return None, {}, known

    def _read_body(self, h: _RequestHandler) -> bytes:
        length = h.headers.get("Content-Length")
        if length:
            return h.rfile.read(int(length))
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(h.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(h.rfile.read(size))
                h.rfile.readline()
        return b""

    def _serve(self, h: _RequestHandler) -> None:
        received_at = time.time()
        raw_path, _, raw_query = h.path.partition("?")
        body = self._read_body(h)
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        request_id = "req_" + os.urandom(16).hex()
        route, params, known = self._match(h.command, raw_path)
        request = RecordedRequest(
            method=h.command,
            path=raw_path,
            headers={k.lower(): v for k, v in h.headers.items()},
            json=parsed,
            received_at=received_at,
            query=dict(parse_qsl(raw_query)),
            body=body,
            request_id=request_id,
            path_params=params,
        )
        if self.record:
            with self._lock:
                self._requests.append(request)
        fault: Fault | None = None
        try:
            reply, fault = self._reply(request, route, known)
        except Exception as exc:  # noqa: BLE001 - a handler bug: answer 500 so the client fails visibly
            traceback.print_exc(file=sys.stderr)
            reply = self.error(500, f"fake server handler crashed: {exc!r}")
        if reply is None:  # dropped, or closing
            h.close_connection = True
            return
        try:
            if isinstance(reply, StreamReply):
                self._write_stream(h, request, reply, fault)
            else:
                self._write_json(h, request, reply, fault)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            h.close_connection = True  # the client went away; nothing to tell it

    def _reply(self, request: RecordedRequest, route: _Route | None, known: bool) -> tuple[Reply | None, Fault | None]:
        """The reply (None: drop the connection) and the fault still to apply to a stream."""
        if route is None:
            status = 405 if known else 404
            return self.error(status, f"Invalid URL ({request.method} {request.path})"), None
        rejected = self.authenticate(request)
        if rejected is not None:
            return rejected, None
        fault: Fault | None = None
        if route.faults:
            try:
                fault = self.faults.take(request.headers, streaming=self.wants_stream(request))
            except ValueError as exc:
                return self.error(400, str(exc)), None
            if fault is not None:
                if fault.stall and self._sleep(fault.stall):
                    return None, None
                if fault.drop:
                    return None, None
                if fault.status is not None:
                    if self._sleep(self.latency):
                        return None, None
                    return self.error(fault.status, fault.message, retry_after=fault.retry_after), None
        if self._sleep(self.latency):
            return None, None
        if fault is not None and fault.wrong_content_type:
            # A proxy answered: the API never saw the request.
            return JSONReply(200, HTML_PAGE, content_type="text/html; charset=utf-8"), fault
        reply = route.handler(request)
        if fault is not None and fault.malformed:
            reply = _malformed(reply)
        return reply, fault

    def _head(self, status: int, request: RecordedRequest, headers: Iterable[tuple[str, str]]) -> list[str]:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Status"
        lines = [f"HTTP/1.1 {status} {phrase}", f"x-request-id: {request.request_id}"]
        lines.extend(f"{k}: {v}" for k, v in self.default_headers(request).items())
        lines.extend(f"{k}: {v}" for k, v in headers)
        return lines

    def _write_json(
        self, h: _RequestHandler, request: RecordedRequest, reply: JSONReply, fault: Fault | None = None
    ) -> None:
        payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        lines = self._head(reply.status, request, reply.headers.items())
        lines.append(f"content-type: {reply.content_type}")
        lines.append(f"content-length: {len(payload)}")
        if h.close_connection:
            lines.append("connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if fault is not None and fault.first_token_delay > 0:
            h.wfile.write(head)
            if self._sleep(fault.first_token_delay):
                h.close_connection = True
                return
            head = b""
        if fault is not None and fault.reset:
            cut = len(payload) // 2 if fault.reset_after_bytes is None else fault.reset_after_bytes
            h.wfile.write(head + payload[: max(0, min(cut, len(payload) - 1))])
            _reset(h)
            return
        # One write: headers and body leave in the same segment.
        h.wfile.write(head + payload)

    def _write_stream(
        self, h: _RequestHandler, request: RecordedRequest, reply: StreamReply, fault: Fault | None
    ) -> None:
        # Without a fault the events are sent as the reply yields them (a handler may build each one
        # as it goes, as a provider does); a fault places itself by counting them first.
        events: Iterable[bytes] = reply.events if fault is None else list(reply.events)
        lines = self._head(reply.status, request, reply.headers.items())
        lines.append(f"content-type: {reply.content_type}")
        lines.append("cache-control: no-cache")
        lines.append("transfer-encoding: chunked")
        write = h.wfile.write  # unbuffered socket writer: every write is sent at once
        write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if self._sleep(self.ttft + (fault.first_token_delay if fault is not None else 0.0)):
            h.close_connection = True
            return
        error_at = stall_at = -1
        reset_at: int | None = None  # bytes of the event stream sent before a reset
        if fault is not None and isinstance(events, list) and events:
            last = len(events) - 1
            if fault.stream_error_after is not None:
                error_at = min(max(fault.stream_error_after, 0), last)
            if fault.stream_stall > 0:
                stall_at = min(max(fault.stream_stall_after, 0), last)
            if fault.reset:
                # The cut never reaches the last (terminal) event: the client must notice the loss.
                whole = sum(len(e) for e in events[: (last + 1) // 2])
                before_last = sum(len(e) for e in events[:last])
                reset_at = min(whole if fault.reset_after_bytes is None else fault.reset_after_bytes, before_last)
        sent = 0
        for i, event in enumerate(events):
            if i and self._sleep(self.chunk_delay):
                h.close_connection = True
                return
            if i == stall_at and self._sleep(fault.stream_stall if fault is not None else 0.0):
                h.close_connection = True
                return
            if i == error_at:
                assert fault is not None
                make = reply.error_event or self.stream_error_event
                event = make(fault.message or "The server had an error while streaming the response.", i)
            if reset_at is not None and sent + len(event) > reset_at:
                part = event[: reset_at - sent]
                if part:
                    write(b"%x\r\n%s\r\n" % (len(part), part))
                _reset(h)
                return
            write(b"%x\r\n%s\r\n" % (len(event), event))
            sent += len(event)
            if i == error_at:
                break
        write(b"0\r\n\r\n")


def _reset(h: _RequestHandler) -> None:
    """Close the connection with a TCP RST, not a FIN: what a crashed proxy or a killed peer does."""
    h.close_connection = True
    conn = h.connection
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.rfile.close()  # the socket closes for real only when its last file object is gone
    conn.close()


def _malformed(reply: Reply) -> Reply:
    """The same answer with a 200 and its JSON cut short (streams: the first event's payload)."""
    if isinstance(reply, JSONReply):
        payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        return replace(reply, status=200, body=payload[: max(1, len(payload) // 2)])
    events = list(reply.events)
    if events:
        events[0] = _cut_event(events[0])
    return replace(reply, status=200, events=events)


def _cut_event(event: bytes) -> bytes:
    """Cut the payload of an SSE event's ``data:`` line in half, keeping the framing (else cut the bytes)."""
    lines = event.split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(b"data:"):
            payload = line[5:].strip()
            lines[i] = b"data: " + payload[: max(1, len(payload) // 2)]
            return b"\n".join(lines)
    return event[: max(1, len(event) // 2)]


def require_sdk(module: str, fake: str) -> None:
    """A fake built from a provider SDK's types says which package it needs, before it serves
    anything (otherwise every request would fail with a ModuleNotFoundError inside the server)."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a missing parent package (google for google.genai)
        found = False
    if not found:
        package = {"google.genai": "google-genai"}.get(module, module)
        raise ImportError(
            f"{fake} is built from the {package} SDK's own types: pip install {package} (or 'unillm[demo]')"
        )
