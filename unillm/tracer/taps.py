"""Byte taps: watch an answer's body as the SDK reads it, without changing what the SDK sees.

A tap is fed each chunk of the body and returns the bytes to pass on. JSON answers pass through
untouched and are kept for parsing later, off the calling thread. SSE answers are re-framed on
event boundaries so that one event can be dropped (the usage chunk unillm asked for when the app
did not); per chunk the tap only runs a few byte searches: it stamps the first content event
(time to first token), notes the terminal event, and keeps the handful of events that carry the
model, usage, finish reason, tool calls or an error. With content capture on (opt-in, chosen per
call), the capturing taps keep every event instead, up to 8 MiB, for the recorder to rebuild the
answer from its deltas.

Why not an SSE library (httpx-sse, the SDK's own decoder)? They decode every event into strings
and dicts; we need byte-exact pass-through with lazy parsing to stay within a few µs per chunk.
"""

from __future__ import annotations

import json
import re
from time import perf_counter

from unillm.tracer.call import AttemptRecord
from unillm.tracer.content import CAPTURE_CUT

_EVENT_BOUNDARY = re.compile(rb"\r?\n\r?\n")
# Chat / legacy completions chunks.
_CONTENT_DELTA = re.compile(rb'"(?:content|refusal|reasoning_content|reasoning|text)":\s*"[^"]|"tool_calls":\s*\[\s*\{')
_USAGE_ONLY_CHUNK = re.compile(rb'"choices":\s*\[\s*\]')
# Responses API events that close the stream and carry the final response (with usage).
_RESPONSES_TERMINAL = (b"response.completed", b"response.incomplete", b"response.failed")

_MAX_BODY = 8 * 1024 * 1024  # keep at most this much of a JSON answer (usage sits at its end)


class JsonTap:
    """Non-streamed answers and error bodies: pass through, keep the bytes."""

    __slots__ = ("attempt", "chunks", "size")

    def __init__(self, attempt: AttemptRecord) -> None:
        self.attempt = attempt
        self.chunks: list[bytes] = []
        self.size = 0

    def feed(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        self.chunks.append(chunk)
        if self.size > _MAX_BODY:  # keep the tail: that is where usage is
            self.chunks = [b"".join(self.chunks)[-_MAX_BODY // 2 :]]
            self.size = len(self.chunks[0])
        return chunk

    def finish(self) -> bytes:
        self.attempt.body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.attempt.saw_end = True
        return b""


class ChatSseTap:
    """`/chat/completions` and `/completions` streams: `data: {chunk}` events ending in `[DONE]`."""

    __slots__ = ("attempt", "buffer", "strip_usage", "seen_first")

    def __init__(self, attempt: AttemptRecord) -> None:
        self.attempt = attempt
        self.buffer = b""
        self.strip_usage = attempt.call.strip_usage_chunk
        self.seen_first = False

    def feed(self, chunk: bytes) -> bytes:
        if self.buffer:
            chunk, self.buffer = self.buffer + chunk, b""
        if b"\r" in chunk:  # CRLF framing: rare, take the general path
            return self._feed_general(chunk)
        if not chunk.endswith(b"\n\n"):
            cut = chunk.rfind(b"\n\n")
            if cut < 0:
                self.buffer = chunk
                return b""
            chunk, self.buffer = chunk[: cut + 2], chunk[cut + 2 :]
        if chunk.count(b"\n\n") == 1:  # one event per chunk: the common case
            return chunk if self._inspect(chunk[:-2]) else b""
        return self._events(chunk.split(b"\n\n"), b"\n\n")

    def feed_copied_text(self, event: bytes) -> bytes:
        """One whole content-delta event that unillm wrote itself (a translator's copied text delta):
        it holds nothing to keep, so past the first event only the first token is stamped (the
        general path's searches cost ~1.5 µs per chunk)."""
        if self.buffer or not self.seen_first:
            return self.feed(event)
        if self.attempt.t_first_token is None:
            self.attempt.t_first_token = perf_counter()
        return event

    def _feed_general(self, data: bytes) -> bytes:
        boundaries = [match.end() for match in _EVENT_BOUNDARY.finditer(data)]
        if not boundaries:
            self.buffer = data
            return b""
        complete, self.buffer = data[: boundaries[-1]], data[boundaries[-1] :]
        return self._events(_EVENT_BOUNDARY.split(complete), b"\r\n\r\n")

    def finish(self) -> bytes:
        rest, self.buffer = self.buffer, b""
        if not rest.strip():
            return rest
        return self._events(_EVENT_BOUNDARY.split(rest), b"\n\n")

    def _events(self, events: list[bytes], separator: bytes) -> bytes:
        """Inspect each event; re-join the ones the SDK should see."""
        kept = [event for event in events if event and self._inspect(event)]
        return separator.join(kept) + separator if kept else b""

    def _inspect(self, event: bytes) -> bool:
        """Note what the event says; return False to drop it from what the SDK sees."""
        data = _data_of(event)
        if data is None:
            return True  # comment / keep-alive
        attempt = self.attempt
        if data == b"[DONE]":
            attempt.saw_end = True
            return True
        if attempt.t_first_token is None and _CONTENT_DELTA.search(data):
            attempt.t_first_token = perf_counter()
        if not self.seen_first:
            self.seen_first = True
            attempt.events.append(data)
            _end_on_error_event(attempt, data)
            return True
        # Plain substring tests: a regex per chunk costs µs. A content chunk says
        # `"finish_reason":null`; the chunks worth keeping (finish, usage, error) do not, except
        # the first delta of each tool call, which carries its id.
        if (b'reason":null' not in data and b'reason": null' not in data) or (
            b"tool_calls" in data and b'"id"' in data
        ):
            attempt.events.append(data)
            if self.strip_usage and b"usage" in data and _USAGE_ONLY_CHUNK.search(data):
                return False
            _end_on_error_event(attempt, data)
        return True


class ResponsesSseTap(ChatSseTap):
    """`/responses` streams: `event: <type>` + `data: {...}`, ending in response.completed."""

    __slots__ = ()

    def feed_copied_text(self, event: bytes) -> bytes:
        return self.feed(event)  # not a chat chunk: inspect it as any other event

    def _inspect(self, event: bytes) -> bool:
        data = _data_of(event)
        if data is None:
            return True
        attempt = self.attempt
        head = event[:64]
        if attempt.t_first_token is None and b".delta" in head:
            attempt.t_first_token = perf_counter()
        if not self.seen_first:
            self.seen_first = True
            attempt.events.append(data)
        elif any(kind in head for kind in _RESPONSES_TERMINAL):
            attempt.saw_end = True
            attempt.events.append(data)
        elif head.startswith(b"event: error") or b'"type":"error"' in head or b'"type": "error"' in head:
            attempt.events.append(data)
            attempt.end(interrupted=True)  # the SDK raises on this event and reads no further
        return True


def _end_on_error_event(attempt: AttemptRecord, data: bytes) -> None:
    """An `{"error": ...}` event inside a 200 stream: the SDK raises on it and reads no further,
    and may never close the response, so the attempt ends here (recorded as interrupted)."""
    if b'"error"' not in data:
        return
    try:
        payload = json.loads(data)
    except ValueError:
        return
    if isinstance(payload, dict) and payload.get("error"):
        attempt.end(interrupted=True)


def _data_of(event: bytes) -> bytes | None:
    """The payload of an SSE event's data line(s); None for comment-only events."""
    if event.startswith(b"data: "):
        data = event[6:]
    elif event.startswith(b"data:"):
        data = event[5:]
    else:
        at = event.find(b"\ndata:")
        if at < 0:
            return None
        data = event[at + 6 :]
    if b"\n" in data:  # multi-line data: join per the SSE spec
        lines = data.split(b"\n")
        data = b"\n".join(line[5:].lstrip(b" ") if line.startswith(b"data:") else line for line in lines)
    if data[:1] == b"[" or data[-1:] in (b" ", b"\t"):
        data = data.strip()
    return data


def _keep_every_event(attempt: AttemptRecord, event: bytes, before: int, kept: int) -> int:
    """Content capture: keep the event the tap's own rules did not (up to `_MAX_BODY` bytes of
    events), so the recorder can rebuild the answer from its deltas. Returns the bytes kept."""
    if kept > _MAX_BODY:
        return kept
    kept += len(event)
    events = attempt.events
    if len(events) == before:
        data = _data_of(event)
        if data is not None and data != b"[DONE]":
            events.append(data)
    if kept > _MAX_BODY:
        events.append(CAPTURE_CUT)
    return kept


class _KeepsEveryEvent:
    """With content capture on (chosen per call: no cost when off), a stream tap also keeps every
    event, up to _MAX_BODY bytes, so the answer can be rebuilt from its deltas. (No __slots__:
    `kept` lives in the instance dict, only on capturing taps.)"""

    attempt: AttemptRecord
    kept: int

    def __init__(self, attempt: AttemptRecord) -> None:
        super().__init__(attempt)  # type: ignore[call-arg]
        self.kept = 0

    def feed_copied_text(self, event: bytes) -> bytes:
        return self.feed(event)  # type: ignore[attr-defined]  # every event is kept

    def _inspect(self, event: bytes) -> bool:
        before = len(self.attempt.events)
        keep: bool = super()._inspect(event)  # type: ignore[misc]
        self.kept = _keep_every_event(self.attempt, event, before, self.kept)
        return keep


class CapturingChatSseTap(_KeepsEveryEvent, ChatSseTap):
    pass


class CapturingResponsesSseTap(_KeepsEveryEvent, ResponsesSseTap):
    pass


def tap_for(attempt: AttemptRecord, status_code: int, content_type: str) -> JsonTap | ChatSseTap:
    if status_code < 400 and "text/event-stream" in content_type:
        attempt.is_sse = True
        call = attempt.call
        if call.request_body is not None:  # content capture is on
            return CapturingResponsesSseTap(attempt) if call.endpoint == "/responses" else CapturingChatSseTap(attempt)
        if call.endpoint == "/responses":
            return ResponsesSseTap(attempt)
        return ChatSseTap(attempt)
    return JsonTap(attempt)
