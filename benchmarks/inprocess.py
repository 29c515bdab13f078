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


ANTHROPIC_BODY = json.dumps(
    {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "The parcel left the depot this morning."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "output_tokens": 9,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    },
    separators=(",", ":"),
).encode()

GEMINI_BODY = json.dumps(
    {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "The parcel left the depot this morning."}]},
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 9, "totalTokenCount": 21},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "bench",
    },
    separators=(",", ":"),
).encode()


def anthropic_events(n_chunks: int) -> list[bytes]:
    def event(kind: str, payload: dict[str, Any]) -> bytes:
        return (
            f"event: {kind}\ndata: ".encode()
            + json.dumps({"type": kind, **payload}, separators=(",", ":")).encode()
            + b"\n\n"
        )

    message = json.loads(ANTHROPIC_BODY)
    message.update(content=[], stop_reason=None)
    events = [event("message_start", {"message": message})]
    events.append(event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}))
    events += [
        event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": f"word{i} "}})
        for i in range(n_chunks)
    ]
    events.append(event("content_block_stop", {"index": 0}))
    events.append(
        event(
            "message_delta",
            {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": n_chunks}},
        )
    )
    events.append(event("message_stop", {}))
    return events


def gemini_events(n_chunks: int) -> list[bytes]:
    events = []
    for i in range(n_chunks):
        chunk: dict[str, Any] = {
            "candidates": [{"content": {"role": "model", "parts": [{"text": f"word{i} "}]}}],
            "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": i + 1, "totalTokenCount": 13 + i},
            "modelVersion": "gemini-2.5-flash",
            "responseId": "bench",
        }
        if i == n_chunks - 1:
            chunk["candidates"][0]["finishReason"] = "STOP"
        events.append(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\r\n\r\n")
    return events


def transports(library: str, stream_chunks: int = 20, hosts: dict[str, int] | None = None) -> tuple[Any, Any]:
    """(sync transport, async transport) for `library` ("httpx" or "httpx2").

    Answers in the wire format the request's URL asks for: OpenAI, Anthropic (/v1/messages) or
    Gemini (:generateContent / :streamGenerateContent), so translation can be measured too.
    `hosts`, when given, counts the requests received per host (to check where routed calls went).
    """
    import importlib

    httpx = importlib.import_module(library)
    sse = chunk_body(stream_chunks)
    sse_pieces = [p + b"\n\n" for p in sse.split(b"\n\n") if p]
    anthropic_pieces = anthropic_events(stream_chunks)
    gemini_pieces = gemini_events(stream_chunks)

    class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __init__(self, pieces: list[bytes]) -> None:
            self.pieces = pieces

        def __iter__(self):  # type: ignore[override]
            yield from self.pieces

        async def __aiter__(self):  # type: ignore[override]
            for piece in self.pieces:
                yield piece

    def answer(request: Any) -> Any:
        if hosts is not None:
            host = request.url.host
            hosts[host] = hosts.get(host, 0) + 1
        path = request.url.path
        streamed = b'"stream":true' in request.content or b'"stream": true' in request.content
        if path.endswith("/v1/messages"):
            body, pieces = ANTHROPIC_BODY, anthropic_pieces
        elif ":generateContent" in path or ":streamGenerateContent" in path:
            body, pieces = GEMINI_BODY, gemini_pieces
            streamed = ":streamGenerateContent" in path
        else:
            body, pieces = CHAT_BODY, sse_pieces
        if streamed:
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Body(pieces))
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=Body([body]))

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
