"""The simulated Anthropic provider, exercised through the official ``anthropic`` SDK (no unillm patching)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, Literal

import anthropic
import httpx
import pydantic
import pytest
from anthropic.types import Message

from unillm.testing import FakeAnthropic
from unillm.testing.synthetic import answer_text, count_tokens

pytestmark = pytest.mark.sdk_independent  # scripts/test runs it in one openai environment only

MODEL = "claude-sonnet-4-6"
PROMPT = "Tell me about the weather in Paris"
USER: Any = [{"role": "user", "content": PROMPT}]
MSG_ID = re.compile(r"^msg_01[A-Za-z0-9]{22}$")
TOOL_ID = re.compile(r"^toolu_01[A-Za-z0-9]{22}$")
THINKING: Any = {"type": "enabled", "budget_tokens": 1024}
STREAM_ORDER_TEXT = ["message_start", "content_block_start", "ping"]


class GetWeather(pydantic.BaseModel):
    city: str
    unit: Literal["c", "f"]


class GetTime(pydantic.BaseModel):
    timezone: str


WEATHER_TOOL: Any = {"name": "get_weather", "description": "Weather", "input_schema": GetWeather.model_json_schema()}
TIME_TOOL: Any = {"name": "get_time", "description": "Time", "input_schema": GetTime.model_json_schema()}


# --- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def client(fake: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    c = anthropic.Anthropic(base_url=fake.base_url, api_key="sk-ant-test", max_retries=0, timeout=10)
    yield c
    c.close()


def make_async_client(fake: FakeAnthropic) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="sk-ant-test", max_retries=0, timeout=10)


def create(client: anthropic.Anthropic, **kwargs: Any) -> Message:
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("max_tokens", 1024)
    kwargs.setdefault("messages", USER)
    return client.messages.create(**kwargs)


def post(client: anthropic.Anthropic, body: dict[str, Any]) -> Message:
    """A raw body through the SDK's request path (bypasses the typed signature, keeps its errors)."""
    return client.post("/v1/messages", body=body, cast_to=Message)


def stream_types(client: anthropic.Anthropic, **kwargs: Any) -> list[Any]:
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("max_tokens", 1024)
    kwargs.setdefault("messages", USER)
    return list(client.messages.create(stream=True, **kwargs))


def big_text(tokens: int) -> str:
    """A text of exactly ``tokens`` simulated tokens (each 'wordNNNN' word is 2 tokens)."""
    return " ".join(f"word{i:04d}" for i in range(tokens // 2))


def assert_no_unknown_fields(obj: Any, path: str = "") -> None:
    """Every field the fake sends is one the installed SDK models (the fake says what the API says)."""
    if isinstance(obj, pydantic.BaseModel):
        assert not obj.model_extra, f"unknown fields at {path or type(obj).__name__}: {set(obj.model_extra)}"
        for name in type(obj).model_fields:
            assert_no_unknown_fields(getattr(obj, name), f"{path}.{name}")
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            assert_no_unknown_fields(item, f"{path}[{i}]")


def plain(content: Any) -> list[dict[str, Any]]:
    """Content blocks as dicts, so create()'s blocks compare with the stream helper's Parsed* blocks."""
    return [{k: v for k, v in block.model_dump().items() if k != "parsed_output"} for block in content]


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs of an SSE body; every event must name itself in both places."""
    out = []
    for frame in raw.decode().split("\n\n"):
        if not frame.strip():
            continue
        lines = dict(line.split(": ", 1) for line in frame.split("\n"))
        assert set(lines) == {"event", "data"}, frame
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def raw_post(fake: FakeAnthropic, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    hdrs = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", **(headers or {})}
    return httpx.post(f"{fake.base_url}/v1/messages", json=body, headers=hdrs, timeout=10)


# --- answers ------------------------------------------------------------------------------


def test_create_answers_with_sdk_types_and_usage(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    message = create(client)
    assert MSG_ID.match(message.id)
    assert (message.type, message.role, message.model) == ("message", "assistant", MODEL)
    assert [b.type for b in message.content] == ["text"]
    text = message.content[0].text  # type: ignore[union-attr]
    assert text == answer_text(PROMPT, 12)  # the same text FakeOpenAI gives for this prompt
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    usage = message.usage
    assert usage.output_tokens == count_tokens(text)
    assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (0, 0)
    assert usage.service_tier == "standard"
    counted = client.messages.count_tokens(model=MODEL, messages=USER)
    assert usage.input_tokens == counted.input_tokens > count_tokens(PROMPT)
    assert_no_unknown_fields(message)

    recorded = fake.requests[0]
    assert (recorded.method, recorded.path) == ("POST", "/v1/messages")
    assert recorded.json["model"] == MODEL and recorded.headers["anthropic-version"]


def test_same_conversation_same_answer(client: anthropic.Anthropic) -> None:
    first, second = create(client), create(client)
    assert first.content == second.content and first.id != second.id
    other = create(client, messages=[{"role": "user", "content": "Something else entirely"}])
    assert other.content != first.content


async def test_async_create_and_stream_helper(fake: FakeAnthropic) -> None:
    client = make_async_client(fake)
    try:
        message = await client.messages.create(model=MODEL, max_tokens=1024, messages=USER)
        async with client.messages.stream(model=MODEL, max_tokens=1024, messages=USER) as stream:
            pieces = [piece async for piece in stream.text_stream]
            final = await stream.get_final_message()
        with pytest.raises(anthropic.RateLimitError):
            fake.fail_next(status=429)
            await client.messages.create(model=MODEL, max_tokens=1024, messages=USER)
    finally:
        await client.close()
    assert "".join(pieces) == message.content[0].text  # type: ignore[union-attr]
    assert plain(final.content) == plain(message.content) and final.usage.output_tokens == message.usage.output_tokens
    assert len(pieces) > 2


def test_stream_helper_accumulates_the_same_message(client: anthropic.Anthropic) -> None:
    message = create(client)
    with client.messages.stream(model=MODEL, max_tokens=1024, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text == message.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == message.usage.input_tokens
    assert final.usage.output_tokens == message.usage.output_tokens
    assert_no_unknown_fields(final)


def test_raw_stream_events_through_the_sdk(client: anthropic.Anthropic) -> None:
    events = stream_types(client)
    types = [e.type for e in events]
    n = types.count("content_block_delta")
    assert types == ["message_start", "content_block_start", *["content_block_delta"] * n] + [
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, delta = events[0], events[-2]
    assert start.message.usage.output_tokens == 1 and start.message.stop_reason is None
    # message_delta carries the cumulative output and repeats the input/cache counts.
    assert delta.usage.output_tokens == count_tokens(answer_text(PROMPT, 12))
    assert delta.usage.input_tokens == start.message.usage.input_tokens
    assert delta.usage.cache_read_input_tokens == 0
    assert (delta.delta.stop_reason, delta.delta.stop_sequence) == ("end_turn", None)
    for event in events:
        assert_no_unknown_fields(event)


def test_sse_wire_order_and_names(fake: FakeAnthropic) -> None:
    tools = [WEATHER_TOOL]
    body = {"model": MODEL, "max_tokens": 2048, "messages": USER, "stream": True, "thinking": THINKING, "tools": tools}
    response = raw_post(fake, body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["request-id"].startswith("req_")
    assert b"[DONE]" not in response.content
    events = sse_events(response.content)
    names = [name for name, _ in events]
    assert all(name == data["type"] for name, data in events)
    assert names[:3] == STREAM_ORDER_TEXT and names.count("ping") == 1
    assert names[-2:] == ["message_delta", "message_stop"]
    # Blocks: thinking (thinking_delta..., signature_delta), text, tool_use (input_json_delta...).
    starts = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert [b["type"] for b in starts] == ["thinking", "text", "tool_use"]
    assert starts[0] == {"type": "thinking", "thinking": "", "signature": ""}
    assert starts[2]["input"] == {} and TOOL_ID.match(starts[2]["id"])
    per_block: dict[int, list[str]] = {}
    for name, data in events:
        if name == "content_block_delta":
            per_block.setdefault(data["index"], []).append(data["delta"]["type"])
    assert per_block[0][-1] == "signature_delta" and set(per_block[0][:-1]) == {"thinking_delta"}
    assert set(per_block[1]) == {"text_delta"}
    assert set(per_block[2]) == {"input_json_delta"}
    partial = [d["delta"]["partial_json"] for n, d in events if n == "content_block_delta" and d["index"] == 2]
    assert partial[0] == "" and GetWeather.model_validate_json("".join(partial))
    # Each block: start, deltas, stop — in index order.
    opened = [(n, d["index"]) for n, d in events if n in ("content_block_start", "content_block_stop")]
    assert opened == [(kind, i) for i in range(3) for kind in ("content_block_start", "content_block_stop")]
    message_start = events[0][1]["message"]
    assert message_start["stop_reason"] is None and message_start["stop_sequence"] is None  # explicit nulls
    assert events[-2][1]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}


def test_stream_honours_ttft_and_chunk_delay(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.ttft = 0.05
    fake.chunk_delay = 0.005
    started = time.perf_counter()
    stream = client.messages.create(model=MODEL, max_tokens=1024, messages=USER, stream=True)
    first = next(iter(stream))
    first_at = time.perf_counter() - started
    rest = list(stream)
    total = time.perf_counter() - started
    assert first.type == "message_start" and first_at >= 0.05
    # One delay between wire events: the yielded ones plus the ping the SDK skips.
    assert total >= 0.05 + 0.005 * len(rest) * 0.9


# --- tools --------------------------------------------------------------------------------


def test_tool_use_round_trip(client: anthropic.Anthropic) -> None:
    first = create(client, tools=[WEATHER_TOOL, TIME_TOOL])
    assert first.stop_reason == "tool_use"
    assert [b.type for b in first.content] == ["text", "tool_use", "tool_use"]  # auto: a sentence, then calls
    calls = [b for b in first.content if b.type == "tool_use"]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert all(TOOL_ID.match(c.id) for c in calls) and calls[0].id != calls[1].id
    GetWeather.model_validate(calls[0].input)
    GetTime.model_validate(calls[1].input)

    history: Any = [
        *USER,
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": c.id, "content": "18C and sunny"} for c in calls],
        },
    ]
    second = create(client, tools=[WEATHER_TOOL, TIME_TOOL], messages=history)
    assert second.stop_reason == "end_turn" and [b.type for b in second.content] == ["text"]
    assert second.content[0].text == answer_text(PROMPT, 12, lead="Simulated answer using the tool result about")  # type: ignore[union-attr]
    assert second.usage.input_tokens > first.usage.input_tokens


@pytest.mark.parametrize(
    ("tool_choice", "kinds", "names"),
    [
        ({"type": "auto"}, ["text", "tool_use", "tool_use"], ["get_weather", "get_time"]),
        ({"type": "auto", "disable_parallel_tool_use": True}, ["text", "tool_use"], ["get_weather"]),
        ({"type": "any"}, ["tool_use", "tool_use"], ["get_weather", "get_time"]),
        ({"type": "any", "disable_parallel_tool_use": True}, ["tool_use"], ["get_weather"]),
        ({"type": "tool", "name": "get_time"}, ["tool_use"], ["get_time"]),
        ({"type": "none"}, ["text"], []),
    ],
)
def test_tool_choice(client: anthropic.Anthropic, tool_choice: Any, kinds: list[str], names: list[str]) -> None:
    message = create(client, tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=tool_choice)
    assert [b.type for b in message.content] == kinds
    assert [b.name for b in message.content if b.type == "tool_use"] == names
    assert message.stop_reason == ("tool_use" if names else "end_turn")


def test_tool_use_stream_matches_create(client: anthropic.Anthropic) -> None:
    message = create(client, tools=[WEATHER_TOOL])
    with client.messages.stream(model=MODEL, max_tokens=1024, messages=USER, tools=[WEATHER_TOOL]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == [b.type for b in message.content] == ["text", "tool_use"]
    assert final.content[1].input == message.content[1].input  # type: ignore[union-attr]
    assert final.usage.output_tokens == message.usage.output_tokens


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (
            [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "r"}]}],
            "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_x. "
            "Each `tool_result` block must have a corresponding `tool_use` block in the previous message.",
        ),
        (
            [
                *USER,
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_a", "name": "get_time", "input": {}}],
                },
                {"role": "user", "content": "and now?"},
            ],
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_a. "
            "Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
        ),
    ],
)
def test_tool_pairing_is_enforced(client: anthropic.Anthropic, messages: Any, expected: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        create(client, messages=messages, tools=[TIME_TOOL])
    assert info.value.body["error"]["message"] == expected  # type: ignore[index]


def test_structured_output_parse(client: anthropic.Anthropic) -> None:
    parsed = client.messages.parse(model=MODEL, max_tokens=1024, messages=USER, output_format=GetWeather)
    assert isinstance(parsed.parsed_output, GetWeather)
    body = client.messages.create(
        model=MODEL,
        max_tokens=1024,
        messages=USER,
        output_config={"format": {"type": "json_schema", "schema": GetTime.model_json_schema()}},
    )
    GetTime.model_validate_json(body.content[0].text)  # type: ignore[union-attr]


# --- thinking -----------------------------------------------------------------------------


def test_thinking_block_first_and_billed_as_output(client: anthropic.Anthropic) -> None:
    message = create(client, max_tokens=2048, thinking=THINKING)
    assert [b.type for b in message.content] == ["thinking", "text"]
    thinking, text = message.content
    assert thinking.thinking and thinking.signature  # type: ignore[union-attr]
    thinking_tokens = count_tokens(thinking.thinking)  # type: ignore[union-attr]
    assert message.usage.output_tokens == thinking_tokens + count_tokens(text.text)  # type: ignore[union-attr]
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens == thinking_tokens

    with client.messages.stream(model=MODEL, max_tokens=2048, messages=USER, thinking=THINKING) as stream:
        kinds = {getattr(event, "type", None) for event in stream}
        final = stream.get_final_message()
    assert {"thinking", "signature", "text"} <= kinds  # the helper's thinking/signature/text events
    assert plain(final.content) == plain(message.content)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"thinking": {"type": "enabled", "budget_tokens": 512}},
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        ),
        ({"max_tokens": 1024, "thinking": THINKING}, "`max_tokens` must be greater than `thinking.budget_tokens`."),
        (
            {"thinking": THINKING, "tools": [WEATHER_TOOL], "tool_choice": {"type": "any"}},
            "Thinking may not be enabled when tool_choice forces tool use.",
        ),
    ],
)
def test_thinking_parameters_are_checked(client: anthropic.Anthropic, kwargs: Any, expected: str) -> None:
    kwargs.setdefault("max_tokens", 2048)
    with pytest.raises(anthropic.BadRequestError) as info:
        create(client, **kwargs)
    assert expected in str(info.value)


def test_thinking_tool_loop(client: anthropic.Anthropic) -> None:
    first = create(client, max_tokens=2048, thinking=THINKING, tools=[WEATHER_TOOL])
    assert [b.type for b in first.content] == ["thinking", "text", "tool_use"]
    result: Any = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first.content[2].id}]}  # type: ignore[union-attr]
    history: Any = [*USER, {"role": "assistant", "content": first.content}, result]
    second = create(client, max_tokens=2048, thinking=THINKING, tools=[WEATHER_TOOL], messages=history)
    assert [b.type for b in second.content] == ["text"]  # one thinking block per turn without interleaving
    interleaved = create(
        client,
        max_tokens=2048,
        thinking=THINKING,
        tools=[WEATHER_TOOL],
        messages=history,
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
    )
    assert [b.type for b in interleaved.content] == ["thinking", "text"]

    # A gateway that drops the thinking block from the assistant turn gets the real API's error.
    stripped: Any = [*USER, {"role": "assistant", "content": first.content[1:]}, result]
    with pytest.raises(anthropic.BadRequestError) as info:
        create(client, max_tokens=2048, thinking=THINKING, tools=[WEATHER_TOOL], messages=stripped)
    message = info.value.body["error"]["message"]  # type: ignore[index]
    assert message.startswith(
        "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `text`."
    )
    # ...and one that sends thinking back with thinking disabled gets the opposite error.
    with pytest.raises(anthropic.BadRequestError, match="When thinking is disabled"):
        create(client, tools=[WEATHER_TOOL], messages=history)


# --- prompt caching -----------------------------------------------------------------------


def test_prompt_cache_write_then_read(client: anthropic.Anthropic) -> None:
    system = big_text(1500)
    blocks: Any = [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
    total = client.messages.count_tokens(model=MODEL, system=blocks, messages=USER).input_tokens
    cached = count_tokens(system)

    first = create(client, system=blocks)
    assert first.usage.cache_creation_input_tokens == cached
    assert first.usage.cache_creation is not None and first.usage.cache_creation.ephemeral_5m_input_tokens == cached
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.input_tokens == total - cached  # input_tokens excludes cache writes...

    second = create(client, system=blocks, messages=[{"role": "user", "content": "A different question"}])
    assert second.usage.cache_read_input_tokens == cached
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens < 20  # ...and cache reads

    with client.messages.stream(model=MODEL, max_tokens=1024, messages=USER, system=blocks) as stream:
        events = list(stream)
        final = stream.get_final_message()
    start = next(e for e in events if e.type == "message_start")
    assert start.message.usage.cache_read_input_tokens == cached
    assert final.usage.cache_read_input_tokens == cached and final.usage.input_tokens == total - cached


def test_prompt_cache_minimum_ttl_and_clear(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    short: Any = [{"type": "text", "text": "Short system prompt", "cache_control": {"type": "ephemeral"}}]
    create(client, system=short)
    assert create(client, system=short).usage.cache_read_input_tokens == 0  # below the minimum: not cached

    long_1h: Any = [{"type": "text", "text": big_text(1200), "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    usage = create(client, system=long_1h).usage
    assert usage.cache_creation is not None
    assert (usage.cache_creation.ephemeral_1h_input_tokens, usage.cache_creation.ephemeral_5m_input_tokens) == (1200, 0)

    fake.clear()
    assert create(client, system=long_1h).usage.cache_creation_input_tokens == 1200
    fake.min_cache_tokens = 0
    create(client, system=short)
    assert create(client, system=short).usage.cache_read_input_tokens == count_tokens("Short system prompt")


def test_incremental_conversation_cache(client: anthropic.Anthropic) -> None:
    # Top-level cache_control marks the last block: each turn reads the previous turn's prefix.
    turn1: Any = [{"role": "user", "content": big_text(1100)}]
    kwargs: Any = {"extra_body": {"cache_control": {"type": "ephemeral"}}}
    first = create(client, messages=turn1, **kwargs)
    written = first.usage.cache_creation_input_tokens
    assert written == client.messages.count_tokens(model=MODEL, messages=turn1).input_tokens > 1100
    assert first.usage.input_tokens == 0

    turn2: Any = [*turn1, {"role": "assistant", "content": "Noted."}, {"role": "user", "content": "Summarise it"}]
    second = create(client, messages=turn2, **kwargs)
    total = client.messages.count_tokens(model=MODEL, messages=turn2).input_tokens
    assert second.usage.cache_read_input_tokens == written
    assert second.usage.cache_creation_input_tokens == total - written
    assert second.usage.input_tokens == 0


def test_tool_definitions_are_part_of_the_cached_prefix(client: anthropic.Anthropic) -> None:
    tool: Any = {**WEATHER_TOOL, "description": big_text(1200), "cache_control": {"type": "ephemeral"}}
    first = create(client, tools=[tool])
    second = create(client, tools=[tool])
    assert first.usage.cache_creation_input_tokens == second.usage.cache_read_input_tokens
    assert (second.usage.cache_read_input_tokens or 0) > 1200


def test_at_most_four_breakpoints(client: anthropic.Anthropic) -> None:
    blocks: Any = [{"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}} for i in range(5)]
    with pytest.raises(
        anthropic.BadRequestError, match="A maximum of 4 blocks with cache_control may be provided. Found 5."
    ):
        create(client, system=blocks)


# --- stop reasons -------------------------------------------------------------------------


def test_max_tokens_truncates(client: anthropic.Anthropic) -> None:
    full = answer_text(PROMPT, 12)
    message = create(client, max_tokens=5)
    text = message.content[0].text  # type: ignore[union-attr]
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens <= 5
    assert text and full.startswith(text) and text != full
    with client.messages.stream(model=MODEL, max_tokens=5, messages=USER) as stream:
        assert plain(stream.get_final_message().content) == plain(message.content)


def test_stop_sequences(client: anthropic.Anthropic) -> None:
    full = answer_text(PROMPT, 12)
    message = create(client, stop_sequences=["never-said", "weather"])
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "weather")
    assert message.content[0].text == full[: full.index("weather")]  # type: ignore[union-attr]
    events = stream_types(client, stop_sequences=["weather"])
    assert (events[-2].delta.stop_reason, events[-2].delta.stop_sequence) == ("stop_sequence", "weather")


@pytest.mark.parametrize("reason", ["refusal", "pause_turn", "model_context_window_exceeded"])
def test_forced_stop_reasons(fake: FakeAnthropic, client: anthropic.Anthropic, reason: Any) -> None:
    fake.force_stop_reason = reason
    message = create(client, tools=[WEATHER_TOOL])  # forced stops never carry tool calls
    assert message.stop_reason == reason and [b.type for b in message.content] == ["text"]
    assert (message.stop_details is not None) == (reason == "refusal")
    if message.stop_details is not None:
        assert message.stop_details.type == "refusal"
    with client.messages.stream(model=MODEL, max_tokens=1024, messages=USER) as stream:
        assert stream.get_final_message().stop_reason == reason  # still forced
    fake.force_stop_reason = None
    assert create(client).stop_reason == "end_turn"
    with pytest.raises(ValueError):
        fake.force_stop_reason = "end_turn"


def test_every_stop_reason_is_reachable(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    seen = {
        create(client).stop_reason,
        create(client, max_tokens=3).stop_reason,
        create(client, stop_sequences=["weather"]).stop_reason,
        create(client, tools=[WEATHER_TOOL]).stop_reason,
    }
    for reason in ("refusal", "pause_turn", "model_context_window_exceeded"):
        fake.force_stop_reason = reason
        seen.add(create(client).stop_reason)
    assert seen == {"end_turn", "max_tokens", "stop_sequence", "tool_use", *("refusal", "pause_turn")} | {
        "model_context_window_exceeded"
    }


def test_context_window(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.context_window = 100
    long: Any = [{"role": "user", "content": big_text(120)}]
    with pytest.raises(anthropic.BadRequestError) as info:
        create(client, messages=long)
    assert info.value.body["error"] == {  # type: ignore[index]
        "type": "invalid_request_error",
        "message": "prompt is too long: 123 tokens > 100 maximum",
    }
    near: Any = [{"role": "user", "content": big_text(90)}]  # 93 tokens: 7 left for the answer
    message = create(client, messages=near)
    assert message.stop_reason == "model_context_window_exceeded" and message.usage.output_tokens <= 7


# --- errors -------------------------------------------------------------------------------


def test_rate_limit_error_shape(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.fail_next(status=429, retry_after=3)
    with pytest.raises(anthropic.RateLimitError) as info:
        create(client)
    error = info.value
    assert error.response.headers["retry-after"] == "3"
    body: Any = error.body
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert body["request_id"] == error.response.headers["request-id"] == error.request_id
    assert create(client).stop_reason == "end_turn"  # the fault was used up


@pytest.mark.parametrize(
    ("status", "exc", "kind"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (413, anthropic.ContentTooLargeError, "request_too_large"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_error_statuses(
    fake: FakeAnthropic, client: anthropic.Anthropic, status: int, exc: type[Exception], kind: str
) -> None:
    fake.fail_next(status=status)
    with pytest.raises(exc) as info:
        create(client)
    assert info.value.body["error"]["type"] == kind  # type: ignore[attr-defined]
    if status == 529:
        assert isinstance(info.value, anthropic.InternalServerError)  # the SDK retries it like a 5xx


def test_fault_header_and_message(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.OverloadedError, match="Overloaded"):
        create(client, extra_headers={"x-fake-fault": "status=529"})
    with pytest.raises(anthropic.InternalServerError, match="boom"):
        create(client, extra_headers={"x-fake-fault": "status=500;message=boom"})


BASE: Any = {"model": MODEL, "max_tokens": 100}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"model": MODEL, "messages": USER}, "max_tokens: Field required"),
        (
            {**BASE, "messages": [{"role": "system", "content": "Be brief"}, *USER]},
            'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
            'not "system" as an input message role.',
        ),
        (
            {**BASE, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "messages.0.content.0: Input tag 'image_url' found using 'type' does not match any of the expected tags: 'text', 'image'",
        ),
        (
            {**BASE, "messages": USER, "stream_options": {"include_usage": True}},
            "stream_options: Extra inputs are not permitted",
        ),
        (
            {**BASE, "messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages.0.content.0.text.text: Field required",
        ),
        (
            {**BASE, "messages": USER, "tools": [{"type": "function", "function": {"name": "f"}}]},
            "tools.0: Input tag 'function' found using 'type' does not match any of the expected tags: 'custom'",
        ),
        ({**BASE, "messages": USER, "tools": [{"name": "f"}]}, "tools.0.custom.input_schema: Field required"),
        ({**BASE, "messages": USER, "tool_choice": {"type": "required"}}, "tool_choice: Input tag 'required'"),
        ({**BASE, "messages": []}, "messages: at least one message is required"),
        (
            {**BASE, "messages": [{"role": "user", "content": ""}]},
            "messages.0: all messages must have non-empty content except for the optional final assistant message",
        ),
        (
            {**BASE, "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
            "messages: text content blocks must be non-empty",
        ),
        (
            {**BASE, "messages": [*USER, {"role": "assistant", "content": "The answer is "}]},
            "messages: final assistant content cannot end with trailing whitespace",
        ),
        # anthropic>=2 speaks API version 2026-10-21, which dropped the sampling parameters.
        ({**BASE, "messages": USER, "temperature": 1.0}, "temperature: Extra inputs are not permitted"),
    ],
)
def test_request_validation(client: anthropic.Anthropic, body: Any, expected: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        post(client, body)
    error: Any = info.value.body
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"].startswith(expected)


OLD_VERSION: Any = {"anthropic-version": "2023-06-01"}


@pytest.mark.parametrize(
    ("model", "sampling", "thinking", "expected"),
    [
        ("claude-opus-4-1", {"temperature": 0.5, "top_p": 0.9}, None, None),
        (MODEL, {"temperature": 0.5}, None, None),
        (MODEL, {"temperature": 0.5, "top_p": 0.9}, None, "`temperature` and `top_p` cannot both be specified"),
        (MODEL, {"temperature": 0.5}, THINKING, "`temperature` may only be set to 1 when thinking is enabled"),
        (MODEL, {"temperature": 1, "top_k": 5}, THINKING, None),
        (MODEL, {"temperature": 1.5}, None, "temperature: Input should be less than or equal to 1"),
    ],
)
def test_sampling_parameters_on_api_version_2023_06_01(
    client: anthropic.Anthropic, model: str, sampling: Any, thinking: Any, expected: str | None
) -> None:
    kwargs: Any = {"model": model, "max_tokens": 2048, "extra_headers": OLD_VERSION, "extra_body": sampling}
    if thinking:
        kwargs["thinking"] = thinking
    if expected is None:
        assert create(client, **kwargs).stop_reason == "end_turn"
    else:
        with pytest.raises(anthropic.BadRequestError, match=re.escape(expected)):
            create(client, **kwargs)


def test_model_dependent_rules(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    # Opus 4.8 accepts mid-conversation system messages, placed after a user turn.
    system_turn: Any = [*USER, {"role": "system", "content": "Answer in French"}]
    assert create(client, model="claude-opus-4-8", messages=system_turn).stop_reason == "end_turn"
    with pytest.raises(anthropic.BadRequestError, match="cannot be the first message"):
        create(client, model="claude-opus-4-8", messages=[{"role": "system", "content": "x"}, *USER])
    fake.reject_unknown_models = True
    with pytest.raises(anthropic.NotFoundError, match="model: claude-nope"):
        create(client, model="claude-nope")


def test_prefill_continues_the_assistant_turn(client: anthropic.Anthropic) -> None:
    message = create(client, messages=[*USER, {"role": "assistant", "content": "The answer is"}])
    assert message.stop_reason == "end_turn" and message.content[0].text  # type: ignore[union-attr]


def test_authentication_and_version_headers(fake: FakeAnthropic) -> None:
    fake.api_key = "sk-ant-right"

    def sdk(key: str, **options: Any) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=fake.base_url, api_key=key, max_retries=0, **options)

    with sdk("sk-ant-wrong") as wrong, pytest.raises(anthropic.AuthenticationError, match="invalid x-api-key"):
        wrong.messages.create(model=MODEL, max_tokens=10, messages=USER)
    omit_auth: Any = {"Authorization": anthropic.omit}  # the SDK's way to drop a default header
    with sdk("unused", default_headers=omit_auth) as no_key:
        with pytest.raises(anthropic.AuthenticationError, match="x-api-key header is required"):
            no_key.messages.create(model=MODEL, max_tokens=10, messages=USER)
    omit_version: Any = {"anthropic-version": anthropic.omit}
    with sdk("sk-ant-right", default_headers=omit_version) as no_version:
        with pytest.raises(anthropic.BadRequestError, match="anthropic-version: header is required"):
            no_version.messages.create(model=MODEL, max_tokens=10, messages=USER)
    # The classic x-api-key header works as well as the bearer token anthropic>=2 sends.
    assert raw_post(fake, {**BASE, "messages": USER}, {"x-api-key": "sk-ant-right"}).status_code == 200
    unauthorized = raw_post(fake, {**BASE, "messages": USER}, {"x-api-key": ""})
    assert unauthorized.status_code == 401
    assert unauthorized.json()["error"] == {"type": "authentication_error", "message": "x-api-key header is required"}


def test_mid_stream_overload(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.fail_stream_next(after_chunks=4)  # wire events: message_start, block start, ping, delta, ...
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error") as info:
        for event in client.messages.create(model=MODEL, max_tokens=1024, messages=USER, stream=True):
            seen.append(event.type)
    assert seen == ["message_start", "content_block_start", "content_block_delta"]  # the SDK skips ping
    assert info.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}

    fake.fail_stream_next(after_chunks=4)
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        with client.messages.stream(model=MODEL, max_tokens=1024, messages=USER) as stream:
            stream.get_final_message()

    fake.fail_stream_next(after_chunks=1)
    response = raw_post(fake, {**BASE, "messages": USER, "stream": True})
    assert response.status_code == 200
    events = sse_events(response.content)
    assert [name for name, _ in events] == ["message_start", "error"]  # the stream ends after the error
    assert events[-1][1] == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


# --- count_tokens, models, packaging ------------------------------------------------------


def test_count_tokens_and_models(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model=MODEL, messages=USER, system="Be brief", tools=[WEATHER_TOOL])
    message = create(client, system="Be brief", tools=[WEATHER_TOOL])
    assert counted.input_tokens == message.usage.input_tokens
    with pytest.raises(anthropic.BadRequestError, match="messages: at least one message is required"):
        client.messages.count_tokens(model=MODEL, messages=[])

    models = list(client.models.list())
    assert [m.id for m in models] == fake.models
    info = client.models.retrieve(MODEL)
    assert (info.id, info.display_name, info.type) == (MODEL, "Claude Sonnet 4.6", "model")
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-nope")


def test_import_stays_light() -> None:
    code = "import sys, unillm.testing; assert 'anthropic' not in sys.modules and 'pydantic' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
