"""Byte taps: watch an answer's body as the SDK reads it, without changing what the SDK sees.

A tap is fed each chunk of the body and returns the bytes to pass on. JSON answers pass through
untouched and are kept for parsing later, off the calling thread. SSE answers are re-framed on
event boundaries so that one event can be dropped (the usage chunk unillm asked for when the app
did not); per chunk the tap only runs a few byte searches: it stamps the first content event
(time to first token), notes the terminal event, and keeps the handful of events that carry the
model, usage, finish reason, tool calls or an error.

Why not an SSE library (httpx-sse, the SDK's own decoder)? They decode every event into strings
and dicts; we need byte-exact pass-through with lazy parsing to stay within a few µs per chunk.
"""

from __future__ import annotations

import re
from time import perf_counter

from unillm.tracer.call import AttemptRecord

_EVENT_BOUNDARY = re.compile(rb"\r?\n\r?\n")
# Chat / legacy completions chunks.
_CONTENT_DELTA = re.compile(
    rb'"(?:content|refusal|reasoning_content|reasoning|text)":\s*"[^"]|"tool_calls":\s*\[\s*\{'
)
_KEEP_CHAT = re.compile(rb'"usage":\s*\{|"finish_reason":\s*"|(?<!\\)"error":|"tool_calls":\s*\[\s*\{[^]]*"id":')
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
        data = self.buffer + chunk if self.buffer else chunk
        last = None
        for last in _EVENT_BOUNDARY.finditer(data):
            pass
        if last is None:
            self.buffer = data
            return b""
        complete, self.buffer = data[: last.end()], data[last.end() :]
        return self._events(complete)

    def finish(self) -> bytes:
        rest, self.buffer = self.buffer, b""
        return self._events(rest) if rest.strip() else rest

    def _events(self, complete: bytes) -> bytes:
        kept: list[bytes] | None = None
        pieces = _EVENT_BOUNDARY.split(complete)
        for index, event in enumerate(pieces):
            if event and not self._inspect(event):
                if kept is None:
                    kept = pieces[:index]
                continue
            if kept is not None:
                kept.append(event)
        if kept is None:
            return complete
        return b"\n\n".join(e for e in kept if e) + b"\n\n" if any(kept) else b""

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
        elif _KEEP_CHAT.search(data):
            attempt.events.append(data)
            if self.strip_usage and _USAGE_ONLY_CHUNK.search(data):
                return False
        return True


class ResponsesSseTap(ChatSseTap):
    """`/responses` streams: `event: <type>` + `data: {...}`, ending in response.completed."""

    __slots__ = ()

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
        return True


def _data_of(event: bytes) -> bytes | None:
    """The payload of an SSE event's data line(s); None for comment-only events."""
    if event.startswith(b"data:"):
        data = event[5:]
    else:
        at = event.find(b"\ndata:")
        if at < 0:
            return None
        data = event[at + 6 :]
    if b"\ndata:" in data:  # multi-line data: join per the SSE spec
        data = b"\n".join(line[5:].lstrip(b" ") if line.startswith(b"data:") else line for line in data.split(b"\n"))
    return data.strip()


def tap_for(attempt: AttemptRecord, status_code: int, content_type: str) -> JsonTap | ChatSseTap:
    if status_code < 400 and "text/event-stream" in content_type:
        attempt.is_sse = True
        if attempt.call.endpoint == "/responses":
            return ResponsesSseTap(attempt)
        return ChatSseTap(attempt)
    return JsonTap(attempt)
