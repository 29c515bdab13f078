"""The httpx / httpx2 Request and Response objects of a routed call, built without the libraries'
general-purpose preparation.

`Request(content=...)` costs ~11 µs: `Headers.setdefault` per default header, each a scan of the
list. `Response(content=...)` costs ~12 µs: the same, then it reads bytes it was handed through a
decoder and a chunker. A routed call makes one of each. Built from a stream with the default
headers written out, they cost ~3 and ~2 µs, and end in the same state (headers in the same order,
the body read): tests/test_http_messages.py compares them with the libraries' own constructors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def request(http: Any, method: str, url: Any, headers: Mapping[str, str], body: bytes, extensions: Any) -> Any:
    """`http.Request(method, url, headers=headers, content=body, extensions=extensions)`; `url` is
    the library's URL object."""
    if not body:  # no Content-Length of its own (rare: the library's way)
        return http.Request(method, url, headers=headers, content=body, extensions=extensions)
    prepared = http.Request(
        method,
        url,
        headers=[(b"Host", url.netloc), *headers.items(), ("Content-Length", str(len(body)))],
        stream=http.ByteStream(body),
        extensions=extensions,
    )
    prepared.read()  # public and cheap for a request: a join of one chunk
    return prepared


def response(http: Any, status: int, headers: Mapping[str, str], content: bytes) -> Any:
    """`http.Response(status, headers=headers, content=content)`."""
    if not content:  # no Content-Length (rare: the library's way)
        return http.Response(status, headers=headers, content=content)
    answer = http.Response(
        status, headers=[*headers.items(), ("Content-Length", str(len(content)))], stream=http.ByteStream(content)
    )
    # What `Response.read()` leaves behind, set directly: the body is already whole.
    answer._content = content
    answer.is_stream_consumed = True
    answer.is_closed = True
    return answer
