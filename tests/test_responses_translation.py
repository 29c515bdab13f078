"""The Responses API on providers without one: OpenAI SDK `responses.*` → unillm → a simulated
Anthropic / Gemini (chat translated both ways) → `Response` objects and stream events.

Each test asserts what the app sees through the SDK, and where it matters what the provider
received and what the call log recorded. Raw answers are checked against the SDK's own types
(`Response`, the `ResponseStreamEvent` union), so the shapes are the SDK's, not ours.
"""

from __future__ import annotations

import json
import typing
from typing import Any

import openai
import pytest
from conftest import TEST_KEY, rows
from native_providers import Provider
from openai.types.responses import Response, ResponseFunctionToolCall, ResponseStreamEvent
from pydantic import BaseModel

import unillm
from unillm import diagnostics

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city"],
    },
}
TIME_TOOL = {
    "type": "function",
    "name": "get_time",
    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
}


class Weather(BaseModel):
    city: str
    celsius: float


def _event_classes() -> dict[str, type]:
    """Stream event type → the SDK's class for it, from the SDK's own ResponseStreamEvent union."""
    union = typing.get_args(ResponseStreamEvent)[0]  # Annotated[Union[...], discriminator]
    return {typing.get_args(cls.model_fields["type"].annotation)[0]: cls for cls in typing.get_args(union)}


def _validated_events(raw: bytes) -> list[Any]:
    """Parse raw SSE as the SDK's event classes (each `event:` line must name its data's type)."""
    classes = _event_classes()
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        data = json.loads(lines["data"])
        assert lines["event"] == data["type"]
        events.append(classes[data["type"]].model_validate(data))
    return events


def _system_texts(provider: Provider) -> list[str]:
    sent = provider.last_request()
    if provider.name == "anthropic":
        return [block["text"] for block in sent.get("system") or ()]
    return [part["text"] for part in (sent.get("systemInstruction") or {}).get("parts") or ()]


def _roles(provider: Provider) -> list[str]:
    sent = provider.last_request()
    if provider.name == "anthropic":
        return [message["role"] for message in sent["messages"]]
    return [content["role"] for content in sent["contents"]]


@pytest.mark.conformance("responses: text + instructions")
def test_text_with_instructions(provider: Provider, app: openai.OpenAI) -> None:
    raw = app.responses.with_raw_response.create(
        model=provider.model, instructions="Be brief.", input="What is the capital of France?"
    )
    response = raw.parse()
    assert isinstance(response, Response)
    Response.model_validate(json.loads(raw.http_response.content))  # the wire body is a valid Response
    assert response.status == "completed" and response.object == "response"
    assert [item.type for item in response.output] == ["message"]
    assert response.usage is not None
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.instructions == "Be brief."
    assert _system_texts(provider) == ["Be brief."]
    assert _roles(provider) == ["user"]
    # The same conversation through chat.completions gets the same (deterministic) answer.
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    chat = app.chat.completions.create(model=provider.model, messages=messages)
    assert response.output_text == chat.choices[0].message.content
    assert chat.usage is not None and response.usage.input_tokens == chat.usage.prompt_tokens

    [row] = rows("select * from calls where endpoint = '/responses'")
    assert row["endpoint"] == "/responses" and row["operation"] == "chat"
    assert row["provider"] == provider.name and row["request_model"] == provider.model
    assert row["status"] == "ok" and row["finish_reason"] == "stop"
    assert row["input_tokens"] == response.usage.input_tokens
    assert row["output_tokens"] == response.usage.output_tokens
    assert row["cost_usd"] > 0 and row["price_known"] is True
    assert json.loads(row["usage_raw"])  # the provider's own usage object is kept


@pytest.mark.conformance("responses: multi-turn + tool results")
def test_multi_turn_messages_reach_the_provider(provider: Provider, app: openai.OpenAI) -> None:
    history: list[Any] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "developer", "content": [{"type": "input_text", "text": "Answer in French."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "And now?"}]},
    ]
    response = app.responses.create(model=provider.model, input=history)
    assert response.output_text.startswith("Simulated answer about And now?")
    assert _system_texts(provider) == ["You are terse.", "Answer in French."]
    assert _roles(provider) == (
        ["user", "assistant", "user"] if provider.name == "anthropic" else ["user", "model", "user"]
    )


@pytest.mark.conformance("responses: multi-turn + tool results")
def test_function_call_round_trip(provider: Provider, app: openai.OpenAI) -> None:
    conversation: list[Any] = [{"role": "user", "content": "Weather and time in Paris?"}]
    first = app.responses.create(model=provider.model, input=conversation, tools=[WEATHER_TOOL, TIME_TOOL])
    calls = [item for item in first.output if isinstance(item, ResponseFunctionToolCall)]
    assert [call.name for call in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].arguments)["city"]
    assert all(call.call_id for call in calls) and len({call.call_id for call in calls}) == 2

    # What the Responses docs tell apps to do: append the output items, then one output per call.
    conversation += first.output
    conversation += [{"type": "function_call_output", "call_id": c.call_id, "output": '{"temp": 21}'} for c in calls]
    final = app.responses.create(model=provider.model, input=conversation, tools=[WEATHER_TOOL, TIME_TOOL])
    assert final.status == "completed"
    assert final.output_text.startswith("Simulated answer using the tool result")
    assert not [item for item in final.output if item.type == "function_call"]

    sent = provider.last_request()
    ids = [call.call_id for call in calls]
    if provider.name == "anthropic":
        assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
        assistant, results = sent["messages"][1]["content"], sent["messages"][2]["content"]
        assert [b["id"] for b in assistant if b["type"] == "tool_use"] == ids
        assert [b["tool_use_id"] for b in results] == ids
        assert [b["content"] for b in results] == ['{"temp": 21}'] * 2
    else:
        assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]
        called = [p["functionCall"]["name"] for p in sent["contents"][1]["parts"] if "functionCall" in p]
        answered = [p["functionResponse"] for p in sent["contents"][2]["parts"]]
        assert called == ["get_weather", "get_time"]
        assert [a["name"] for a in answered] == ["get_weather", "get_time"]
        assert answered[0]["response"] == {"temp": 21}
    first_row, last_row = rows("select tool_calls, finish_reason from calls order by started_at")
    assert first_row == {"tool_calls": 2, "finish_reason": "tool_calls"}
    assert last_row == {"tool_calls": 0, "finish_reason": "stop"}


@pytest.mark.conformance("responses: tools")
def test_named_tool_choice_calls_that_tool(provider: Provider, app: openai.OpenAI) -> None:
    response = app.responses.create(
        model=provider.model,
        input="What time is it?",
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "name": "get_time"},
    )
    assert [item.name for item in response.output if isinstance(item, ResponseFunctionToolCall)] == ["get_time"]
    sent = provider.last_request()
    if provider.name == "anthropic":
        assert sent["tool_choice"] == {"type": "tool", "name": "get_time"}
        assert [tool["name"] for tool in sent["tools"]] == ["get_weather", "get_time"]
    else:
        assert sent["toolConfig"]["functionCallingConfig"] == {"mode": "ANY", "allowedFunctionNames": ["get_time"]}


@pytest.mark.conformance("responses: tools")
def test_allowed_tools_offers_only_those(provider: Provider, app: openai.OpenAI) -> None:
    choice = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_time"}]}
    response = app.responses.create(
        model=provider.model, input="Now?", tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=choice
    )
    assert [item.name for item in response.output if isinstance(item, ResponseFunctionToolCall)] == ["get_time"]
    sent = provider.last_request()
    if provider.name == "anthropic":
        assert [tool["name"] for tool in sent["tools"]] == ["get_time"]
    else:
        assert [d["name"] for d in sent["tools"][0]["functionDeclarations"]] == ["get_time"]


@pytest.mark.conformance("responses: structured output")
def test_parse_gives_output_parsed(provider: Provider, app: openai.OpenAI) -> None:
    parsed = app.responses.parse(model=provider.model, input="Weather in Oslo?", text_format=Weather)
    assert isinstance(parsed.output_parsed, Weather)
    assert Weather.model_validate_json(parsed.output_text) == parsed.output_parsed
    sent = provider.last_request()
    if provider.name == "anthropic":
        assert sent["output_config"]["format"]["schema"]["properties"]["city"]["type"] == "string"
    else:
        assert sent["generationConfig"]["responseMimeType"] == "application/json"
        assert sent["generationConfig"]["responseJsonSchema"]["properties"]["city"]["type"] == "string"


@pytest.mark.conformance("responses: max_output_tokens → incomplete")
def test_truncated_answer_is_incomplete(provider: Provider, app: openai.OpenAI) -> None:
    response = app.responses.create(model=provider.model, input="Tell me everything.", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    [row] = rows("select finish_reason, status from calls")
    assert row == {"finish_reason": "length", "status": "ok"}


@pytest.mark.conformance("responses: streaming")
def test_stream_text_matches_the_final_response(provider: Provider, app: openai.OpenAI) -> None:
    with app.responses.stream(model=provider.model, instructions="Be brief.", input="Tell me about Paris.") as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert len(deltas) > 1  # streamed, not one lump
    assert "".join(deltas) == final.output_text
    assert final.output_text.startswith("Simulated answer about Tell me about Paris")
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert final.usage is not None and final.usage.output_tokens > 0

    [row] = rows("select * from calls")
    assert row["endpoint"] == "/responses" and row["stream"] is True and row["status"] == "ok"
    assert row["ttft_ms"] is not None and row["finish_reason"] == "stop"
    assert row["input_tokens"] == final.usage.input_tokens
    assert row["output_tokens"] == final.usage.output_tokens
    assert row["cost_usd"] > 0


@pytest.mark.conformance("responses: streaming")
def test_stream_function_call_arguments(provider: Provider, app: openai.OpenAI) -> None:
    with app.responses.stream(model=provider.model, input="Weather in Paris?", tools=[WEATHER_TOOL]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    [call] = [item for item in final.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.call_id and json.loads(call.arguments)["city"]
    deltas = [event.delta for event in events if event.type == "response.function_call_arguments.delta"]
    assert "".join(deltas) == call.arguments
    [done] = [event for event in events if event.type == "response.function_call_arguments.done"]
    assert done.arguments == call.arguments and done.item_id == call.id
    [row] = rows("select tool_calls, finish_reason, status from calls")
    assert row == {"tool_calls": 1, "finish_reason": "tool_calls", "status": "ok"}


@pytest.mark.conformance("responses: structured output")
def test_stream_with_text_format(provider: Provider, app: openai.OpenAI) -> None:
    with app.responses.stream(model=provider.model, input="Weather in Oslo?", text_format=Weather) as stream:
        final = stream.get_final_response()
    assert isinstance(final.output_parsed, Weather)


@pytest.mark.conformance("responses: streaming")
@pytest.mark.parametrize("tools", [False, True])
def test_stream_events_are_the_sdk_types(provider: Provider, app: openai.OpenAI, tools: bool) -> None:
    extra: dict[str, Any] = {"tools": [WEATHER_TOOL, TIME_TOOL]} if tools else {}
    with app.responses.with_streaming_response.create(
        model=provider.model, input="Weather in Paris?", stream=True, **extra
    ) as raw:
        events = _validated_events(raw.read())
    assert [event.sequence_number for event in events] == list(range(len(events)))
    final = events[-1].response
    assert events[-1].type == "response.completed" and final.status == "completed"
    # Every output item is announced, then done, in order; the last event holds them all.
    added = [event.output_index for event in events if event.type == "response.output_item.added"]
    done = [event for event in events if event.type == "response.output_item.done"]
    assert added == [event.output_index for event in done] == list(range(len(final.output)))
    assert [event.item.id for event in done] == [item.id for item in final.output]
    # One item at a time, as OpenAI streams them: each is done before the next is added.
    lifecycle = [
        (event.type.rsplit(".", 1)[1], event.output_index)
        for event in events
        if event.type.startswith("response.output_item.")
    ]
    assert lifecycle == [(step, index) for index in range(len(final.output)) for step in ("added", "done")]
    calls = [item for item in final.output if item.type == "function_call"]
    assert len(calls) == (2 if tools else 0)
    if tools:
        named = [event for event in events if event.type == "response.function_call_arguments.done"]
        assert [getattr(event, "name", None) or event.model_extra.get("name") for event in named] == [
            "get_weather",
            "get_time",
        ]


@pytest.mark.conformance("responses: async")
async def test_async_create_and_stream(provider: Provider, async_app: openai.AsyncOpenAI) -> None:
    response = await async_app.responses.create(model=provider.model, input="What is the capital of France?")
    assert response.status == "completed" and response.output_text
    async with async_app.responses.stream(model=provider.model, input="What is the capital of France?") as stream:
        deltas = [event.delta async for event in stream if event.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(deltas) == final.output_text == response.output_text
    tooled = await async_app.responses.create(model=provider.model, input="Weather?", tools=[WEATHER_TOOL])
    assert [item.name for item in tooled.output if isinstance(item, ResponseFunctionToolCall)] == ["get_weather"]
    recorded = rows("select status, provider, endpoint, stream from calls order by started_at")
    assert recorded == [
        {"status": "ok", "provider": provider.name, "endpoint": "/responses", "stream": stream}
        for stream in (False, True, False)
    ]


@pytest.mark.conformance("responses: unsupported feature → clear error")
@pytest.mark.parametrize(
    ("params", "feature"),
    [
        ({"previous_response_id": "resp_123"}, "previous_response_id"),
        ({"conversation": "conv_123"}, "conversation"),
        ({"background": True}, "background"),
        ({"tools": [{"type": "web_search_preview"}]}, "'web_search_preview'"),
        ({"tools": [WEATHER_TOOL, {"type": "code_interpreter", "container": {"type": "auto"}}]}, "'code_interpreter'"),
        ({"input": [{"type": "item_reference", "id": "msg_123"}]}, "item_reference"),
    ],
)
def test_what_only_openai_can_do_is_a_clear_error(
    provider: Provider, app: openai.OpenAI, params: dict[str, Any], feature: str
) -> None:
    request: dict[str, Any] = {"model": provider.model, "input": "Hi", **params}
    before = len(provider.fake.requests)
    with pytest.raises(openai.BadRequestError) as raised:
        app.responses.create(**request)
    message = str(raised.value)
    assert feature in message and f"not supported by {provider.name}" in message
    assert TEST_KEY not in message and f"test-key-{provider.name}" not in message
    assert len(provider.fake.requests) == before  # nothing was sent
    [row] = rows("select status, http_status, endpoint from calls")
    assert row == {"status": "error", "http_status": 400, "endpoint": "/responses"}


@pytest.mark.conformance("responses: errors → SDK exception classes")
def test_provider_error_becomes_the_sdk_error(provider: Provider, app: openai.OpenAI) -> None:
    provider.fake.fail_next(count=1, status=429, message="simulated trouble", retry_after=2)
    with pytest.raises(openai.RateLimitError, match=f"{provider.name}: simulated trouble") as raised:
        app.responses.create(model=provider.model, input="Hi")
    # Gemini says when to retry in its error body, Anthropic in a header: the app gets Retry-After.
    assert float(raised.value.response.headers["retry-after"]) == 2
    [row] = rows("select status, http_status, provider, endpoint from calls")
    assert row == {"status": "error", "http_status": 429, "provider": provider.name, "endpoint": "/responses"}


@pytest.mark.conformance("responses: errors → SDK exception classes")
def test_error_inside_the_stream_raises(provider: Provider, app: openai.OpenAI) -> None:
    provider.fake.fail_stream_next(after_chunks=3, message="Overloaded")
    with app.responses.with_streaming_response.create(
        model=provider.model, input="Tell me about Paris.", stream=True
    ) as raw:
        events = _validated_events(raw.read())
    assert events[-1].type == "error" and events[-1].message == f"{provider.name}: Overloaded"

    provider.fake.fail_stream_next(after_chunks=3, message="Overloaded")
    received: list[str] = []
    with pytest.raises(openai.APIError, match=f"{provider.name}: Overloaded"):
        with app.responses.stream(model=provider.model, input="Tell me about Paris.") as stream:
            for event in stream:
                if event.type == "response.output_text.delta":
                    received.append(event.delta)
    last = rows("select status, error_message from calls order by started_at")[-1]
    # Part of the answer arrived: interrupted; none of it: error (as for chat streams).
    assert last == {"status": "interrupted" if received else "error", "error_message": f"{provider.name}: Overloaded"}


# -- routes: the app's own model name, unchanged code ---------------------------------------------
def test_a_route_sends_responses_calls_on_and_fails_over_past_what_a_target_cannot_do(log_path, monkeypatch) -> None:
    from unillm.testing import FakeAnthropic, FakeOpenAI

    monkeypatch.chdir(log_path.parent.parent)
    with FakeAnthropic() as anthropic, FakeOpenAI() as openai_fake:
        unillm.patch(
            log=str(log_path),
            providers={
                "anthropic": {"base_url": anthropic.base_url, "api_key": "k"},
                "openai": {"base_url": openai_fake.base_url, "api_key": "k"},
            },
            routes={"gpt-4o": {"targets": ["anthropic/claude-sonnet-4-5", "openai/gpt-4o"]}},
        )
        try:
            client = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
            answer = client.responses.create(model="gpt-4o", input="What is the capital of France?")
            with client.responses.stream(model="gpt-4o", input="What is the capital of France?") as stream:
                deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
                final = stream.get_final_response()
            # Server-side state: Anthropic cannot, so the route's next target (OpenAI) answers.
            chained = client.responses.create(model="gpt-4o", input="And Spain?", previous_response_id=answer.id)
            recorded = rows("select provider, stream, status, attempts, ttft_ms from calls order by started_at")
        finally:
            unillm.unpatch()
            diagnostics.reset()
    assert answer.output_text and "".join(deltas) == final.output_text == answer.output_text
    assert chained.output_text and chained.previous_response_id == answer.id
    assert len(anthropic.requests) == 2 and len(openai_fake.requests) == 1
    assert [(r["provider"], r["stream"], r["status"], r["attempts"]) for r in recorded] == [
        ("anthropic", False, "ok", 1),
        ("anthropic", True, "ok", 1),
        ("openai", False, "ok", 2),
    ]
    assert recorded[1]["ttft_ms"] is not None
