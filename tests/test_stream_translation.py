"""Stream translators copy text literals without decoding them: escapes must survive intact."""

from __future__ import annotations

import json
import math

import pytest

from unillm.adapters.anthropic import MessagesStreamTranslator
from unillm.adapters.base import Translation
from unillm.adapters.gemini import GenerateContentStreamTranslator
from unillm.fastjson import dumps, loads

pytestmark = pytest.mark.sdk_independent  # scripts/test runs it in one openai environment only

TRICKY = ['He said "hi"', "back\\slash", "line\nbreak", "ünïcödé ✓", "\u2028", '{"json": [1]}', ""]


def _texts(sse: bytes) -> list[str]:
    out = []
    for block in sse.split(b"\n\n"):
        if block.startswith(b"data: {"):
            payload = json.loads(block[6:])
            for choice in payload.get("choices") or ():
                if "content" in choice["delta"]:
                    out.append(choice["delta"]["content"])
    return out


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_anthropic_text_deltas_round_trip(ensure_ascii: bool) -> None:
    translator = MessagesStreamTranslator(Translation("/chat/completions", "m", True, False))
    start = {"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {"input_tokens": 3}}}
    out = translator.feed(b"event: message_start\ndata: " + json.dumps(start).encode() + b"\n\n")
    for text in TRICKY:
        event = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
        out += translator.feed(
            b"event: content_block_delta\ndata: " + json.dumps(event, ensure_ascii=ensure_ascii).encode() + b"\n\n"
        )
    assert _texts(out) == ["", *TRICKY]


def test_anthropic_events_split_anywhere_across_reads_translate_the_same() -> None:
    # Whole text-delta events take a shortcut past the SSE decoder; events cut across reads do not.
    def event(text: str) -> bytes:
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
        return b"event: content_block_delta\ndata: " + json.dumps(delta).encode() + b"\n\n"

    start = {"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {"input_tokens": 3}}}
    head = b"event: message_start\ndata: " + json.dumps(start).encode() + b"\n\n"
    wire = [head, event("one "), event('"two"\n'), event("three")]
    body = b"".join(wire[1:])
    for cut in range(1, len(body)):
        translator = MessagesStreamTranslator(Translation("/chat/completions", "m", True, False))
        out = translator.feed(head) + translator.feed(body[:cut]) + translator.feed(body[cut:])
        out += translator.feed(event("four"))  # whole again, after a cut
        assert _texts(out) == ["", "one ", '"two"\n', "three", "four"], cut


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_gemini_text_chunks_round_trip(ensure_ascii: bool) -> None:
    translator = GenerateContentStreamTranslator(Translation("/chat/completions", "m", True, False))
    out = b""
    for text in TRICKY:
        chunk = {
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}}],
            "usageMetadata": {"promptTokenCount": 2},
        }
        out += translator.feed(b"data: " + json.dumps(chunk, ensure_ascii=ensure_ascii).encode() + b"\r\n\r\n")
    assert "".join(_texts(out)) == "".join(TRICKY)


def _tool_names(sse: bytes) -> list[str]:
    names = []
    for block in sse.split(b"\n\n"):
        if block.startswith(b"data: {"):
            for choice in json.loads(block[6:]).get("choices") or ():
                names += [call["function"]["name"] for call in choice["delta"].get("tool_calls") or ()]
    return names


def test_gemini_copies_the_text_of_a_lone_plain_text_part_only() -> None:
    # Chunks made of one candidate with one text-only part are copied without decoding; every other
    # shape must be decoded, or a thought would be shown, a signature lost or a tool call missed.
    def chunk(*candidates: dict) -> bytes:
        return b"data: " + json.dumps({"candidates": list(candidates)}).encode() + b"\r\n\r\n"

    def parts(*items: dict) -> dict:
        return {"content": {"role": "model", "parts": list(items)}}

    call = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
    translator = GenerateContentStreamTranslator(Translation("/chat/completions", "m", True, False))
    out = translator.feed(chunk(parts({"text": "one "})))  # the first chunk: role + text, decoded
    out += translator.feed(chunk(parts({"text": "two "})))  # copied
    out += translator.feed(chunk(parts({"text": "hidden", "thought": True})))
    out += translator.feed(chunk(parts({"thought": True, "text": "hidden too"})))
    out += translator.feed(chunk(parts({"text": "three ", "thoughtSignature": "c2ln"})))
    out += translator.feed(chunk(parts({"text": "four "}, {"text": "five "})))
    out += translator.feed(chunk(parts(call), parts({"text": "second candidate"})))
    out += translator.feed(chunk({**parts({"text": "six"}), "finishReason": "STOP"}))
    assert _texts(out) == ["", "one ", "two ", "three ", "four five ", "six"]
    assert _tool_names(out) == ["get_weather"]
    assert b'"finish_reason":"tool_calls"' in out  # the last chunk's finish, after a call


def test_bodies_keep_what_orjson_alone_would_change() -> None:
    # Translated bodies are read and written with orjson for speed; what it refuses or would change
    # (an integer beyond 64 bits read as a float, NaN, a non-str key) goes through json.
    big = 2**70
    assert json.loads(dumps({"seed": big, 1: "a"})) == {"seed": big, "1": "a"}
    got = loads(b'{"maximum": 1180591620717411303424, "t": "\\u00e9"}')
    assert got == {"maximum": big, "t": "é"} and isinstance(got["maximum"], int)
    assert math.isnan(loads(b'{"x": NaN}')["x"])
    assert dumps({"t": "é", "n": [1, 2.5, None, True]}) == '{"t":"é","n":[1,2.5,null,true]}'.encode()
    with pytest.raises(ValueError):
        loads(b'{"cut": ')
