"""An in-process OpenAI-wire fake: an httpx / httpx2 transport that answers without a socket.

This is the SDK's floor: everything the SDK does except the network. Bodies are handed over as a
real byte stream (not pre-read), as a network transport would.
"""

from __future__ import annotations

import json
from typing import Any

CHAT_BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "The parcel left the depot this morning.", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 9,
            "total_tokens": 21,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    },
    separators=(",", ":"),
).encode()


def chunk_body(n_chunks: int) -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        payload = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"

    parts = [chunk({"role": "assistant", "content": ""})]
    parts += [chunk({"content": f"word{i} "}) for i in range(n_chunks)]
    parts.append(chunk({}, "stop"))
    usage = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": n_chunks, "total_tokens": 12 + n_chunks},
    }
    parts.append(b"data: " + json.dumps(usage, separators=(",", ":")).encode() + b"\n\n")
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


def transports(library: str, stream_chunks: int = 20) -> tuple[Any, Any]:
    """(sync transport, async transport) for `library` ("httpx" or "httpx2")."""
    import importlib

    httpx = importlib.import_module(library)
    sse = chunk_body(stream_chunks)
    sse_pieces = [p + b"\n\n" for p in sse.split(b"\n\n") if p]

    class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __init__(self, pieces: list[bytes]) -> None:
            self.pieces = pieces

        def __iter__(self):  # type: ignore[override]
            yield from self.pieces

        async def __aiter__(self):  # type: ignore[override]
            for piece in self.pieces:
                yield piece

    def answer(request: Any) -> Any:
        if b'"stream":true' in request.content:
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Body(sse_pieces))
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=Body([CHAT_BODY]))

    class Sync(httpx.BaseTransport):
        def handle_request(self, request: Any) -> Any:
            request.read()
            return answer(request)

    class Async(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: Any) -> Any:
            await request.aread()
            return answer(request)

    return Sync(), Async()


def sdk_http_library() -> str:
    import openai

    return "httpx2" if int(openai.__version__.split(".")[0]) >= 3 else "httpx"
