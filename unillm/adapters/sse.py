"""Incremental SSE decoding of a provider's stream, chunk by chunk, per the WHATWG rules that
matter here: events end at a blank line (LF or CRLF), `event:` names them, `data:` lines join
with newlines, `:` lines are comments (keep-alives). A few lines instead of a dependency because
adapters need raw bytes in and (event, data) out, fed from sync and async streams alike.
"""

from __future__ import annotations

import re

_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")


class SSEDecoder:
    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        """(event name, data) of every event completed by `chunk`; "message" when unnamed."""
        if not self._buffer and chunk.startswith(b"data: "):  # the common case: one whole event
            if chunk.endswith(b"\r\n\r\n"):  # CRLF-framed (Gemini)
                data = chunk[6:-4]
            elif chunk.endswith(b"\n\n"):
                data = chunk[6:-2]
            else:
                data = None
            if data is not None and b"\n" not in data and b"\r" not in data:
                return [("message", data)]
        elif not self._buffer and chunk.endswith(b"\n\n") and chunk.count(b"\n\n") == 1 and b"\r" not in chunk:
            event = _parse_simple(chunk[:-2])  # `event:` + `data:` (Anthropic)
            return [event] if event is not None else []
        buffer = self._buffer + chunk
        events = []
        start = 0
        for match in _BOUNDARY.finditer(buffer):
            event = _parse(buffer[start : match.start()])
            if event is not None:
                events.append(event)
            start = match.end()
        self._buffer = buffer[start:]
        return events

    @property
    def idle(self) -> bool:
        """No partial event is waiting: the next chunk starts a new event."""
        return not self._buffer

    def close(self) -> list[tuple[str, bytes]]:
        rest, self._buffer = self._buffer, b""
        event = _parse(rest) if rest.strip() else None
        return [event] if event else []


def _parse_simple(block: bytes) -> tuple[str, bytes] | None:
    if block.startswith(b"data: ") and b"\n" not in block:
        return "message", block[6:]
    if block.startswith(b"event: ") and block.count(b"\n") == 1:
        head, _, data = block.partition(b"\n")
        if data.startswith(b"data: "):
            return head[7:].decode("utf-8", "replace"), data[6:]
    return _parse(block)


def _parse(block: bytes) -> tuple[str, bytes] | None:
    name = "message"
    data: list[bytes] = []
    for line in block.splitlines():
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"event":
            name = value.decode("utf-8", "replace")
        elif field == b"data":
            data.append(value)
    if not data:
        return None
    return name, b"\n".join(data)
