"""The simulated OpenAI provider, exercised through the plain ``openai`` SDK (no unillm patching).

Runs against openai 1.x (httpx) and 3.x (httpx2) alike.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import http.client
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import openai
import pydantic
import pytest

from unillm.testing import FakeHTTPServer, FakeOpenAI, Fault, JSONReply, RecordedRequest, StreamReply
from unillm.testing.synthetic import (
    PrefixCache,
    answer_text,
    count_tokens,
    instance_from_schema,
    is_reasoning_model,
    split_deltas,
    truncate_to_tokens,
)

MODEL = "gpt-4o-mini"
USER: Any = [{"role": "user", "content": "Tell me about the weather in Paris"}]
CALL_ID = re.compile(r"^call_[A-Za-z0-9]{24}$")
# Fields the current API sends that older SDK versions do not model yet.
KNOWN_NEWER_FIELDS = {"cache_write_tokens"}


# --- models used for structured output and tools ----------------------------------------


class Color(str, enum.Enum):
    red = "red"
    blue = "blue"


class Address(pydantic.BaseModel):
    street: str
    zip_code: str = pydantic.Field(min_length=5, max_length=5)


class Person(pydantic.BaseModel):
    name: str
    age: int = pydantic.Field(ge=18, lt=130)
    score: float = pydantic.Field(gt=0.0, le=1.0)
    tags: list[str]
    color: Color
    kind: Literal["a", "b"]
    address: Address
    previous: Address | None
    friends: list[Person]


class GetWeather(pydantic.BaseModel):
    city: str
    unit: Literal["c", "f"]


class GetTime(pydantic.BaseModel):
    timezone: str


WEATHER_TOOL: Any = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": GetWeather.model_json_schema()},
}
TIME_TOOL: Any = {
    "type": "function",
    "function": {"name": "get_time", "parameters": GetTime.model_json_schema()},
}


# --- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    c = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0, timeout=10)
    yield c
    c.close()


def make_async_client(fake: FakeOpenAI, **kwargs: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0, timeout=10, **kwargs)


def assert_no_unknown_fields(obj: Any, path: str = "") -> None:
    """Every field the fake sends is one the installed SDK models (the fake says what the API says)."""
    if isinstance(obj, pydantic.BaseModel):
        extra = set(obj.model_extra or {}) - KNOWN_NEWER_FIELDS
        assert not extra, f"unknown fields at {path or type(obj).__name__}: {extra}"
        for name in type(obj).model_fields:
            assert_no_unknown_fields(getattr(obj, name), f"{path}.{name}")
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            assert_no_unknown_fields(item, f"{path}[{i}]")


def raw(
    fake: FakeHTTPServer,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request with the stdlib client, to check wire bytes without any SDK in between."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    payload = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    hdrs = {"Authorization": "Bearer sk-test", "Content-Type": "application/json", **(headers or {})}
    conn.request(method, path, body=payload, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    result = resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    if own:
        conn.close()
    return result


def sse_payloads(data: bytes) -> list[str]:
    return [line[len(b"data: ") :].decode() for line in data.split(b"\n") if line.startswith(b"data: ")]


# --- import hygiene -------------------------------------------------------------------------


def test_import_is_light() -> None:
    heavy = ("openai", "duckdb", "streamlit", "httpx", "httpx2", "pydantic")
    code = (
        "import sys, unillm; before = set(sys.modules); import unillm.testing; "
        f"print(sorted(m for m in {heavy!r} if m in set(sys.modules) - before))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- chat completions -----------------------------------------------------------------------


def test_chat_completion(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    raw_resp = client.chat.completions.with_raw_response.create(model=MODEL, messages=USER)
    assert raw_resp.headers["x-request-id"].startswith("req_")
    completion = raw_resp.parse()
    assert_no_unknown_fields(completion)
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == MODEL
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content is not None
    assert choice.message.content.startswith("Simulated answer about Tell me about the weather")
    assert len(choice.message.content.split()) == 12
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens == count_tokens(choice.message.content)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None and usage.completion_tokens_details.reasoning_tokens == 0

    (req,) = fake.requests
    assert isinstance(req, RecordedRequest)
    assert (req.method, req.path) == ("POST", "/v1/chat/completions")
    assert req.json["messages"] == USER
    assert req.headers["authorization"] == "Bearer sk-test"
    assert req.request_id == raw_resp.headers["x-request-id"]
    assert req.received_at <= time.time()


def test_answers_are_deterministic_and_sized(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    a = client.chat.completions.create(model=MODEL, messages=USER).choices[0].message.content
    b = client.chat.completions.create(model=MODEL, messages=USER).choices[0].message.content
    assert a == b
    fake.answer_words = 40
    c = client.chat.completions.create(model=MODEL, messages=USER).choices[0].message.content
    assert c is not None and len(c.split()) == 40


def test_path_without_v1_prefix(fake: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=fake.url, api_key="sk-test", max_retries=0)
    assert client.chat.completions.create(model=MODEL, messages=USER).choices[0].message.content
    assert fake.requests[-1].path == "/chat/completions"


def test_chat_stream(client: openai.OpenAI) -> None:
    expected = client.chat.completions.create(model=MODEL, messages=USER).choices[0].message.content
    chunks = list(client.chat.completions.create(model=MODEL, messages=USER, stream=True))
    for chunk in chunks:
        assert_no_unknown_fields(chunk)
        assert chunk.usage is None
    first = chunks[0].choices[0]
    assert first.delta.role == "assistant" and first.delta.content == ""
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert content == expected
    assert len(chunks) > 3  # several content deltas
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_chat_stream_include_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=USER, stream=True, stream_options={"include_usage": True})
    )
    *content_chunks, last = chunks
    assert last.choices == []
    assert last.usage is not None and last.usage.total_tokens > 0
    assert content_chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in content_chunks)


def test_chat_stream_wire_format(fake: FakeOpenAI) -> None:
    body = {"model": MODEL, "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    status, headers, data = raw(fake, "POST", "/v1/chat/completions", body)
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["transfer-encoding"] == "chunked"
    assert "x-request-id" in headers
    assert data.endswith(b"data: [DONE]\n\n")
    payloads = sse_payloads(data)
    assert payloads[-1] == "[DONE]"
    events = [json.loads(p) for p in payloads[:-1]]
    # OpenAI sends an explicit null usage on every chunk but the usage chunk, and null finish_reason.
    assert all("usage" in e and e["usage"] is None for e in events[:-1])
    assert events[-1]["choices"] == [] and events[-1]["usage"]["total_tokens"] > 0
    assert events[0]["choices"][0]["finish_reason"] is None
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}

    _, _, data = raw(fake, "POST", "/v1/chat/completions", {"model": MODEL, "messages": USER, "stream": True})
    assert all("usage" not in json.loads(p) for p in sse_payloads(data)[:-1])


def test_keep_alive_reuses_connection(fake: FakeOpenAI) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    conn.connect()
    sock = conn.sock
    for stream in (False, True, False, True):
        body = {"model": MODEL, "messages": USER, "stream": stream}
        status, _, _ = raw(fake, "POST", "/v1/chat/completions", body, conn=conn)
        assert status == 200
    assert conn.sock is sock  # never reconnected
    conn.close()


def test_prompt_caching(client: openai.OpenAI) -> None:
    system: Any = {"role": "system", "content": "You are a meticulous assistant. " * 20}
    first = client.chat.completions.create(model=MODEL, messages=[system, *USER])
    assert first.usage is not None and first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    follow_up: Any = [system, {"role": "user", "content": "And in Rome?"}]
    second = client.chat.completions.create(model=MODEL, messages=follow_up)
    assert second.usage is not None and second.usage.prompt_tokens_details is not None
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached is not None and 0 < cached < second.usage.prompt_tokens
    # A longer conversation caches everything it shares with an earlier prompt.
    answer: Any = {"role": "assistant", "content": "Sunny."}
    third = client.chat.completions.create(model=MODEL, messages=[system, *USER, answer, *USER])
    assert third.usage is not None and third.usage.prompt_tokens_details is not None
    assert (third.usage.prompt_tokens_details.cached_tokens or 0) > cached


@pytest.mark.parametrize("model", ["o1", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini"])
def test_reasoning_models_report_reasoning_tokens(client: openai.OpenAI, model: str) -> None:
    completion = client.chat.completions.create(model=model, messages=USER)
    usage = completion.usage
    assert usage is not None and usage.completion_tokens_details is not None
    reasoning = usage.completion_tokens_details.reasoning_tokens or 0
    assert reasoning > 0
    visible = count_tokens(completion.choices[0].message.content or "")
    assert usage.completion_tokens == visible + reasoning


def test_max_tokens_truncates(client: openai.OpenAI) -> None:
    full = client.chat.completions.create(model=MODEL, messages=USER).choices[0].message.content or ""
    limits: list[Any] = [{"max_tokens": 5}, {"max_completion_tokens": 5}]
    for kwargs in limits:
        completion = client.chat.completions.create(model=MODEL, messages=USER, **kwargs)
        choice = completion.choices[0]
        assert choice.finish_reason == "length"
        assert choice.message.content and full.startswith(choice.message.content)
        assert completion.usage is not None and completion.usage.completion_tokens <= 5
    chunks = list(client.chat.completions.create(model=MODEL, messages=USER, max_tokens=5, stream=True))
    assert chunks[-1].choices[0].finish_reason == "length"


def test_stop_sequence(client: openai.OpenAI) -> None:
    content = client.chat.completions.create(model=MODEL, messages=USER, stop=["weather"]).choices[0].message.content
    assert content is not None and "weather" not in content and content.startswith("Simulated answer")


def test_n_choices(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=USER, n=3)
    assert [c.index for c in completion.choices] == [0, 1, 2]


# --- tools ----------------------------------------------------------------------------------


def test_tool_call_auto(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=USER, tools=[WEATHER_TOOL])
    assert_no_unknown_fields(completion)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert CALL_ID.match(call.id)
    assert call.type == "function"
    assert call.function.name == "get_weather"
    GetWeather.model_validate_json(call.function.arguments)


def test_parallel_and_named_tool_choice(client: openai.OpenAI) -> None:
    tools: Any = [WEATHER_TOOL, TIME_TOOL]
    calls: Any = client.chat.completions.create(model=MODEL, messages=USER, tools=tools).choices[0].message.tool_calls
    assert [c.function.name for c in calls or []] == ["get_weather", "get_time"]
    assert len({c.id for c in calls or []}) == 2

    single = client.chat.completions.create(model=MODEL, messages=USER, tools=tools, parallel_tool_calls=False)
    assert len(single.choices[0].message.tool_calls or []) == 1

    named = client.chat.completions.create(
        model=MODEL,
        messages=USER,
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    call: Any
    (call,) = named.choices[0].message.tool_calls or []
    assert call.function.name == "get_time"
    GetTime.model_validate_json(call.function.arguments)

    required = client.chat.completions.create(
        model=MODEL,
        messages=USER,
        tools=[WEATHER_TOOL],
        tool_choice="required",
    )
    assert required.choices[0].finish_reason == "tool_calls"

    none = client.chat.completions.create(model=MODEL, messages=USER, tools=tools, tool_choice="none")
    assert none.choices[0].finish_reason == "stop" and none.choices[0].message.content


def test_tool_result_gets_text_answer(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model=MODEL, messages=USER, tools=[WEATHER_TOOL])
    message = first.choices[0].message
    (call,) = message.tool_calls or []
    messages: Any = [
        *USER,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "22 degrees and sunny"},
    ]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop"
    assert "22 degrees" in (second.choices[0].message.content or "")


def test_tool_call_stream(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=USER, tools=[WEATHER_TOOL, TIME_TOOL], stream=True)
    )
    first = chunks[0].choices[0].delta
    assert first.role == "assistant" and first.content == ""
    openers: list[Any] = [
        c.choices[0].delta.tool_calls[0]
        for c in chunks
        if c.choices[0].delta.tool_calls and c.choices[0].delta.tool_calls[0].id
    ]
    assert [(o.index, o.function.name, o.function.arguments) for o in openers] == [
        (0, "get_weather", ""),
        (1, "get_time", ""),
    ]
    args: dict[int, str] = {0: "", 1: ""}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or []:
            args[delta.index] += (delta.function and delta.function.arguments) or ""
    GetWeather.model_validate_json(args[0])
    GetTime.model_validate_json(args[1])
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_chat_stream_helper_with_tools(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model=MODEL, messages=USER, tools=[openai.pydantic_function_tool(GetWeather)]
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    (call,) = final.choices[0].message.tool_calls or []
    assert isinstance(call.function.parsed_arguments, GetWeather)


# --- structured output ----------------------------------------------------------------------


def test_parse_structured_output(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(model=MODEL, messages=USER, response_format=Person)
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Person)
    assert 18 <= parsed.age < 130 and len(parsed.address.zip_code) == 5


def test_parse_strict_function_tool(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model=MODEL, messages=USER, tools=[openai.pydantic_function_tool(GetWeather)]
    )
    (call,) = completion.choices[0].message.tool_calls or []
    assert isinstance(call.function.parsed_arguments, GetWeather)


def test_stream_helper_structured_output(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(model=MODEL, messages=USER, response_format=Person) as stream:
        final = stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, Person)


def test_json_object_response_format(client: openai.OpenAI) -> None:
    content = (
        client.chat.completions.create(model=MODEL, messages=USER, response_format={"type": "json_object"})
        .choices[0]
        .message.content
    )
    assert isinstance(json.loads(content or ""), dict)


# --- legacy completions ---------------------------------------------------------------------


def test_legacy_completion(client: openai.OpenAI) -> None:
    completion = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Write a haiku")
    assert_no_unknown_fields(completion)
    assert completion.object == "text_completion"
    assert completion.choices[0].text.startswith("Simulated answer about Write a haiku")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0

    many = client.completions.create(model="gpt-3.5-turbo-instruct", prompt=["one", "two"], max_tokens=3)
    assert [c.index for c in many.choices] == [0, 1]
    assert all(c.finish_reason == "length" for c in many.choices)


def test_legacy_completion_stream(client: openai.OpenAI) -> None:
    expected = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Write a haiku").choices[0].text
    chunks = list(
        client.completions.create(
            model="gpt-3.5-turbo-instruct",
            prompt="Write a haiku",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    *text_chunks, usage_chunk = chunks
    assert "".join(c.choices[0].text for c in text_chunks) == expected
    assert text_chunks[-1].choices[0].finish_reason == "stop"
    assert text_chunks[0].choices[0].finish_reason is None
    assert usage_chunk.choices == [] and usage_chunk.usage is not None


# --- responses ------------------------------------------------------------------------------


def test_responses_create(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="Tell me about Paris", instructions="Be brief.")
    assert_no_unknown_fields(response)
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text.startswith("Simulated answer about Tell me about Paris")
    assert response.output[0].type == "message"
    usage = response.usage
    assert usage is not None
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0
    assert response.instructions == "Be brief."

    again = client.responses.create(
        model="o4-mini",
        input=[
            {"role": "user", "content": "Tell me about Paris"},
            {"role": "assistant", "content": "It is in France."},
            {"role": "user", "content": [{"type": "input_text", "text": "And Rome?"}]},
        ],
        instructions="Be brief.",
    )
    assert again.usage is not None
    assert again.usage.input_tokens_details.cached_tokens > 0  # instructions + first turn seen before
    assert again.usage.output_tokens_details.reasoning_tokens > 0
    assert again.output_text.startswith("Simulated answer about And Rome?")


def test_responses_function_calls(client: openai.OpenAI) -> None:
    tools: Any = [
        {"type": "function", "name": "get_weather", "parameters": GetWeather.model_json_schema()},
        {"type": "function", "name": "get_time", "parameters": GetTime.model_json_schema()},
    ]
    response = client.responses.create(model=MODEL, input="weather?", tools=tools)
    assert_no_unknown_fields(response)
    calls = [o for o in response.output if o.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert all(CALL_ID.match(c.call_id) for c in calls)
    GetWeather.model_validate_json(calls[0].arguments)

    one = client.responses.create(
        model=MODEL, input="weather?", tools=tools, tool_choice={"type": "function", "name": "get_time"}
    )
    assert [o.name for o in one.output if o.type == "function_call"] == ["get_time"]

    follow = client.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": "weather?"},
            {
                "type": "function_call",
                "call_id": calls[0].call_id,
                "name": "get_weather",
                "arguments": calls[0].arguments,
            },
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "22 degrees"},
        ],
        tools=tools,
    )
    assert follow.output[0].type == "message" and "22 degrees" in follow.output_text


def test_responses_parse(client: openai.OpenAI) -> None:
    response = client.responses.parse(model=MODEL, input="make a person", text_format=Person)
    assert isinstance(response.output_parsed, Person)

    parsed_tool = client.responses.parse(
        model=MODEL,
        input="weather?",
        tools=[openai.pydantic_function_tool(GetWeather)],
    )
    assert any(o.type == "function_call" for o in parsed_tool.output)


def test_responses_stream_events(client: openai.OpenAI) -> None:
    events: list[Any] = list(client.responses.create(model=MODEL, input="Tell me about Paris", stream=True))
    for event in events:
        assert_no_unknown_fields(event)
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert types.count("response.output_text.delta") > 2
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert deltas == final.output_text
    assert final.usage is not None and final.usage.output_tokens > 0
    assert events[0].response.status == "in_progress"


def test_responses_stream_function_call_events(client: openai.OpenAI) -> None:
    tools: Any = [{"type": "function", "name": "get_weather", "parameters": GetWeather.model_json_schema()}]
    events = list(client.responses.create(model=MODEL, input="weather?", tools=tools, stream=True))
    types = [e.type for e in events]
    assert "response.function_call_arguments.delta" in types
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert deltas == done.arguments
    GetWeather.model_validate_json(deltas)
    added = next(e for e in events if e.type == "response.output_item.added")
    assert added.item.type == "function_call" and added.item.arguments == ""


def test_responses_stream_helper(client: openai.OpenAI) -> None:
    with client.responses.stream(model=MODEL, input="make a person", text_format=Person) as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert isinstance(final.output_parsed, Person)
    assert json.loads(text) == final.output_parsed.model_dump(mode="json")


def test_responses_max_output_tokens(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input="Tell me about Paris", max_output_tokens=4)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    events = list(client.responses.create(model=MODEL, input="Tell me about Paris", max_output_tokens=4, stream=True))
    assert events[-1].type == "response.incomplete"


# --- embeddings and models ------------------------------------------------------------------


def test_embeddings(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    default = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
    assert fake.requests[-1].json.get("encoding_format") == "base64"  # what the SDK asks for by default
    floats = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"], encoding_format="float")
    assert_no_unknown_fields(floats)
    assert [d.embedding for d in default.data] == [d.embedding for d in floats.data]
    assert len(floats.data) == 2 and len(floats.data[0].embedding) == 8
    assert floats.data[0].embedding != floats.data[1].embedding
    assert abs(sum(v * v for v in floats.data[0].embedding) - 1.0) < 1e-5
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == count_tokens("alpha") + count_tokens("beta")

    sized = client.embeddings.create(model="text-embedding-3-large", input="alpha", dimensions=64)
    assert len(sized.data[0].embedding) == 64
    tokens = client.embeddings.create(
        model="text-embedding-3-small", input=[[1, 2, 3], [4, 5]], encoding_format="float"
    )
    assert len(tokens.data) == 2 and tokens.usage.prompt_tokens == 5


def test_embeddings_base64_wire(fake: FakeOpenAI) -> None:
    body = {"model": "text-embedding-3-small", "input": "alpha", "encoding_format": "base64"}
    _, _, data = raw(fake, "POST", "/v1/embeddings", body)
    encoded = json.loads(data)["data"][0]["embedding"]
    import struct

    decoded = struct.unpack("<8f", base64.b64decode(encoded))
    _, _, data = raw(fake, "POST", "/v1/embeddings", {**body, "encoding_format": "float"})
    assert list(decoded) == json.loads(data)["data"][0]["embedding"]


def test_models(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids and "text-embedding-3-small" in ids
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


# --- request validation ---------------------------------------------------------------------


def test_validation_errors(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    status, headers, data = raw(fake, "POST", "/v1/chat/completions", b"{not json")
    assert status == 400 and "x-request-id" in headers
    error = json.loads(data)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"

    status, _, data = raw(fake, "POST", "/v1/chat/completions", {"messages": USER})
    assert status == 400 and json.loads(data)["error"]["param"] == "model"

    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model=MODEL, messages=[])
    assert exc.value.param == "messages"
    for path, param in (
        ("/v1/chat/completions", "messages"),
        ("/v1/responses", "input"),
        ("/v1/embeddings", "input"),
        ("/v1/completions", "prompt"),
    ):
        status, _, data = raw(fake, "POST", path, {"model": MODEL})
        assert status == 400, path
        assert json.loads(data)["error"]["param"] == param

    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model=MODEL, messages=USER, stream_options={"include_usage": True})
    assert exc.value.param == "stream_options"

    status, _, _ = raw(fake, "POST", "/v1/nope", {"model": MODEL})
    assert status == 404


def test_authentication(fake: FakeOpenAI) -> None:
    status, headers, data = raw(
        fake, "POST", "/v1/chat/completions", {"model": MODEL, "messages": USER}, {"Authorization": ""}
    )
    assert status == 401 and "x-request-id" in headers
    assert json.loads(data)["error"]["code"] == "invalid_api_key"

    with FakeOpenAI(api_key="sk-right") as strict:
        bad = openai.OpenAI(base_url=strict.base_url, api_key="sk-wrong-secret", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as exc:
            bad.chat.completions.create(model=MODEL, messages=USER)
        assert "sk-wrong-secret" not in str(exc.value)
        good = openai.OpenAI(base_url=strict.base_url, api_key="sk-right", max_retries=0)
        assert good.chat.completions.create(model=MODEL, messages=USER).choices


# --- fault injection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exc_type", "error_type"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (401, openai.AuthenticationError, "invalid_request_error"),
        (403, openai.PermissionDeniedError, None),
        (404, openai.NotFoundError, "invalid_request_error"),
        (409, openai.ConflictError, None),
        (422, openai.UnprocessableEntityError, None),
        (429, openai.RateLimitError, "requests"),
        (500, openai.InternalServerError, "server_error"),
        (503, openai.InternalServerError, "server_error"),
    ],
)
def test_fail_next_maps_to_sdk_errors(
    fake: FakeOpenAI, client: openai.OpenAI, status: int, exc_type: type[Exception], error_type: str | None
) -> None:
    fake.fail_next(status=status)
    with pytest.raises(exc_type) as exc:
        client.chat.completions.create(model=MODEL, messages=USER)
    err = exc.value
    assert isinstance(err, openai.APIStatusError) and err.status_code == status
    assert err.response.headers["x-request-id"].startswith("req_")
    if error_type:
        assert err.type == error_type
    assert client.chat.completions.create(model=MODEL, messages=USER).choices  # only the next one failed


def test_rate_limit_body_and_retry_after(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.fail_next(status=429, retry_after=2, message="slow down")
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model=MODEL, messages=USER)
    assert exc.value.response.headers["retry-after"] == "2"
    assert exc.value.response.headers["retry-after-ms"] == "2000"
    assert exc.value.code == "rate_limit_exceeded"
    assert isinstance(exc.value.body, dict) and exc.value.body["message"] == "slow down"

    fake.fail_next(status=429)
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model=MODEL, messages=USER)
    assert "retry-after" not in exc.value.response.headers


def test_fail_next_count_and_sdk_retries(fake: FakeOpenAI) -> None:
    fake.fail_next(count=2, status=500, retry_after=0.01)  # the SDK honours retry-after-ms: no backoff wait
    retrying = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=2)
    fake.fail_next(count=0)  # no-op
    assert retrying.chat.completions.create(model=MODEL, messages=USER).choices
    assert len(fake.requests) == 3
    retrying.close()


def test_faults_skip_models_endpoint(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.fail_next(status=500)
    assert client.models.list().data
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="text-embedding-3-small", input="x")


def test_drop_next(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.drop_next()
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model=MODEL, messages=USER)
    assert client.chat.completions.create(model=MODEL, messages=USER).choices


def test_stall_next_times_out(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.stall_next(seconds=5)
    t0 = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.3).chat.completions.create(model=MODEL, messages=USER)
    assert time.monotonic() - t0 >= 0.3
    assert client.chat.completions.create(model=MODEL, messages=USER).choices


def test_fail_stream_next_chat(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.fail_stream_next(after_chunks=2, message="upstream overloaded")
    # A non-streamed request passes the stream fault over.
    assert client.chat.completions.create(model=MODEL, messages=USER).choices
    received: list[Any] = []
    with pytest.raises(openai.APIError) as exc:
        received.extend(client.chat.completions.create(model=MODEL, messages=USER, stream=True))
    assert len(received) == 2
    assert "upstream overloaded" in str(exc.value)
    assert len(list(client.chat.completions.create(model=MODEL, messages=USER, stream=True))) > 3


def test_fail_stream_next_wire(fake: FakeOpenAI) -> None:
    fake.fail_stream_next(after_chunks=1, message="boom")
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    _, _, data = raw(
        fake, "POST", "/v1/chat/completions", {"model": MODEL, "messages": USER, "stream": True}, conn=conn
    )
    payloads = sse_payloads(data)
    assert len(payloads) == 2 and json.loads(payloads[1])["error"]["message"] == "boom"
    assert "[DONE]" not in data.decode()
    # the chunked body was terminated properly: the connection is still usable
    status, _, _ = raw(fake, "POST", "/v1/chat/completions", {"model": MODEL, "messages": USER}, conn=conn)
    assert status == 200
    conn.close()


def test_fail_stream_next_responses(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.fail_stream_next(after_chunks=3)
    received = []
    with pytest.raises(openai.APIError):
        for event in client.responses.create(model=MODEL, input="hi", stream=True):
            received.append(event.type)
    assert received == ["response.created", "response.in_progress", "response.output_item.added"]


def test_header_faults(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as exc:
        client.chat.completions.create(model=MODEL, messages=USER, extra_headers={"x-fake-fault": "status=503"})
    assert exc.value.status_code == 503
    with pytest.raises(openai.RateLimitError) as exc2:
        client.chat.completions.create(
            model=MODEL, messages=USER, extra_headers={"x-fake-fault": "status=429; retry_after=1.5"}
        )
    assert exc2.value.response.headers["retry-after"] == "1.5"
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model=MODEL, messages=USER, extra_headers={"x-fake-fault": "drop"})
    t0 = time.monotonic()
    assert client.chat.completions.create(
        model=MODEL, messages=USER, extra_headers={"x-fake-fault": "stall=0.3"}
    ).choices
    assert time.monotonic() - t0 >= 0.3
    with pytest.raises(openai.APIError):
        list(
            client.chat.completions.create(
                model=MODEL, messages=USER, stream=True, extra_headers={"x-fake-fault": "stream_error=1"}
            )
        )
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=USER, extra_headers={"x-fake-fault": "explode"})
    assert Fault.parse("stall=1; status=500") == Fault(status=500, stall=1.0)


def test_error_rate_is_seeded(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    def outcomes(seed: int) -> list[int]:
        with FakeOpenAI(seed=seed, error_rate=0.5) as f:
            c = openai.OpenAI(base_url=f.base_url, api_key="sk-test", max_retries=0)
            result = []
            for _ in range(20):
                try:
                    c.chat.completions.create(model=MODEL, messages=USER)
                    result.append(200)
                except openai.APIStatusError as e:
                    result.append(e.status_code)
            return result

    first = outcomes(7)
    assert first == outcomes(7)
    assert set(first) - {200} <= {429, 500, 503} and set(first) & {429, 500, 503} and 200 in first
    fake.error_rate = 1.0
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model=MODEL, messages=USER)
    fake.error_rate = 0.0
    assert client.chat.completions.create(model=MODEL, messages=USER).choices


# --- latency knobs --------------------------------------------------------------------------


def test_latency(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.latency = 0.25
    t0 = time.monotonic()
    client.chat.completions.create(model=MODEL, messages=USER)
    assert time.monotonic() - t0 >= 0.25


def test_ttft_and_chunk_delay(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.ttft = 0.2
    fake.chunk_delay = 0.02
    t0 = time.monotonic()
    stream = client.chat.completions.create(model=MODEL, messages=USER, stream=True)
    first_at = None
    count = 0
    for _ in stream:
        if first_at is None:
            first_at = time.monotonic()
        count += 1
    total = time.monotonic() - t0
    assert first_at is not None and first_at - t0 >= 0.2
    assert total >= 0.2 + (count - 1) * 0.02


def test_close_wakes_stalled_request() -> None:
    fake = FakeOpenAI()
    fake.stall_next(seconds=30)
    client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0, timeout=30)
    errors: list[Exception] = []

    def call() -> None:
        try:
            client.chat.completions.create(model=MODEL, messages=USER)
        except Exception as e:  # noqa: BLE001 - recorded for the assertion below
            errors.append(e)

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.2)
    fake.close()  # must wake the 30 s stall, not wait for it
    fake.close()  # idempotent
    t.join(10)
    assert not t.is_alive()
    assert errors and isinstance(errors[0], openai.APIConnectionError)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", fake.port), timeout=1).close()


# --- concurrency and async ------------------------------------------------------------------


def test_concurrent_requests_are_recorded(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    def call(i: int) -> str | None:
        return (
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"q{i}"}])
            .choices[0]
            .message.content
        )

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(call, range(64)))
    assert all(a and a.startswith("Simulated answer about q") for a in answers)
    assert len(fake.requests) == 64
    assert {r.json["messages"][0]["content"] for r in fake.requests} == {f"q{i}" for i in range(64)}
    fake.clear()
    assert fake.requests == []


def test_async_client(fake: FakeOpenAI) -> None:
    async def main() -> None:
        client = make_async_client(fake)
        completion = await client.chat.completions.create(model=MODEL, messages=USER)
        assert completion.choices[0].message.content

        stream = await client.chat.completions.create(
            model=MODEL, messages=USER, stream=True, stream_options={"include_usage": True}
        )
        chunks = [c async for c in stream]
        assert chunks[-1].usage is not None
        assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == completion.choices[0].message.content

        parsed = await client.chat.completions.parse(model=MODEL, messages=USER, response_format=Person)
        assert isinstance(parsed.choices[0].message.parsed, Person)

        response = await client.responses.create(model=MODEL, input="hello")
        assert response.output_text
        async with client.responses.stream(model=MODEL, input="hello", text_format=Person) as rstream:
            async for _ in rstream:
                pass
            final = await rstream.get_final_response()
        assert isinstance(final.output_parsed, Person)

        events = [e async for e in await client.responses.create(model=MODEL, input="hello", stream=True)]
        assert events[-1].type == "response.completed"

        emb = await client.embeddings.create(model="text-embedding-3-small", input="hello")
        assert len(emb.data[0].embedding) == 8
        legacy = await client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi")
        assert legacy.choices[0].text

        fake.fail_next(status=429, retry_after=1)
        with pytest.raises(openai.RateLimitError) as exc:
            await client.chat.completions.create(model=MODEL, messages=USER)
        assert exc.value.response.headers["retry-after"] == "1"
        await client.close()

    asyncio.run(main())


def test_async_concurrent_header_faults(fake: FakeOpenAI) -> None:
    async def main() -> list[Any]:
        client = make_async_client(fake)

        async def one(i: int) -> Any:
            headers = {"x-fake-fault": "status=503"} if i % 3 == 0 else {}
            try:
                r = await client.chat.completions.create(model=MODEL, messages=USER, extra_headers=headers)
                return r.choices[0].finish_reason
            except openai.APIStatusError as e:
                return e.status_code

        try:
            return await asyncio.gather(*(one(i) for i in range(30)))
        finally:
            await client.close()

    results = asyncio.run(main())
    assert results == [503 if i % 3 == 0 else "stop" for i in range(30)]


# --- the generic server base (reused by the other wire fakes) ------------------------------


class _EchoWire(FakeHTTPServer):
    """A minimal wire on the shared base: path params, default error bodies, stream faults."""

    path_prefixes = ("/v9",)

    def __init__(self) -> None:
        super().__init__()
        self.add_route("POST", "/models/{model}:generate", self._generate)

    def _generate(self, request: RecordedRequest) -> JSONReply | StreamReply:
        model = request.path_params["model"]
        if request.query.get("alt") == "sse":
            return StreamReply([f"data: {i}\n\n".encode() for i in range(4)])
        return JSONReply(200, {"model": model, "echo": request.json})


def test_generic_base_routes_streams_and_faults() -> None:
    with _EchoWire() as wire:
        status, headers, data = raw(wire, "POST", "/v9/models/m-1:generate", {"a": 1})
        assert status == 200 and json.loads(data) == {"model": "m-1", "echo": {"a": 1}}
        assert headers["x-request-id"].startswith("req_")
        status, _, data = raw(wire, "POST", "/models/m-1:generate?alt=sse", {})
        assert sse_payloads(data) == ["0", "1", "2", "3"]

        fault = {"x-fake-fault": "stream_error=2; message=oops"}
        _, _, data = raw(wire, "POST", "/models/m:generate?alt=sse", {}, fault)
        assert data.startswith(b"data: 0\n\ndata: 1\n\nevent: error\n") and b"oops" in data

        wire.fail_next(status=503, retry_after=3)
        status, headers, data = raw(wire, "POST", "/models/m:generate", {})
        assert status == 503 and headers["retry-after"] == "3" and b"oops" not in data
        status, _, _ = raw(wire, "GET", "/models/m:generate")
        assert status == 405
        assert [r.path for r in wire.requests][:2] == ["/v9/models/m-1:generate", "/models/m-1:generate"]


def test_a_stream_leaves_event_by_event_as_the_handler_yields_it() -> None:
    """A provider sends its first token before it has made its last: a handler's generator is sent
    as it yields, so work after the first event (a usage event, say) never delays it."""
    first_read = threading.Event()

    def events() -> Iterator[bytes]:
        yield b"data: first\n\n"
        assert first_read.wait(10), "the first event was held back until the whole stream was built"
        yield b"data: last\n\n"

    with FakeHTTPServer() as wire:
        wire.add_route("POST", "/stream", lambda request: StreamReply(events()))
        conn = http.client.HTTPConnection("127.0.0.1", wire.port, timeout=10)
        conn.request("POST", "/stream", body=b"{}", headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.readline() == b"data: first\n"
        first_read.set()
        assert sse_payloads(b"data: first\n" + response.read()) == ["first", "last"]
        conn.close()


def test_chunked_request_body(fake: FakeOpenAI) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    payload = json.dumps({"model": MODEL, "messages": USER}).encode()
    conn.request(
        "POST",
        "/v1/chat/completions",
        body=iter([payload[:10], payload[10:]]),
        headers={"Authorization": "Bearer sk-test", "Content-Type": "application/json"},
        encode_chunked=True,
    )
    response = conn.getresponse()
    assert response.status == 200 and json.loads(response.read())["choices"]
    conn.close()
    assert fake.requests[-1].json["messages"] == USER


# --- synthetic content ----------------------------------------------------------------------


def test_schema_instances_validate() -> None:
    from openai.lib._pydantic import to_strict_json_schema

    for model in (Person, GetWeather, Address):
        assert model.model_validate(instance_from_schema(model.model_json_schema()))
        assert model.model_validate(instance_from_schema(to_strict_json_schema(model)))

    class Bounds(pydantic.BaseModel):
        a: int = pydantic.Field(gt=5, le=10)
        b: float = pydantic.Field(ge=-3, lt=-2)
        c: int = pydantic.Field(multiple_of=7, ge=20)
        d: list[int] = pydantic.Field(min_length=3, max_length=4)
        e: tuple[str, int]
        f: dict[str, int]
        g: int | None = None
        h: str = pydantic.Field(min_length=30)

    assert Bounds.model_validate(instance_from_schema(Bounds.model_json_schema()))
    assert instance_from_schema({"type": ["string", "null"], "format": "date-time"}) == "2024-01-01T00:00:00Z"
    assert instance_from_schema({"const": 3}) == 3
    assert instance_from_schema({}) == "sample value"


def test_text_helpers() -> None:
    assert count_tokens("") == 0
    assert count_tokens("a bb ccccc") == 1 + 1 + 2
    text = answer_text("why is the sky blue today friend", 20)
    assert len(text.split()) == 20 and text.startswith("Simulated answer about why is the sky blue")
    assert answer_text("x", 20) == answer_text("x", 20) != answer_text("y", 20)
    cut, truncated = truncate_to_tokens(text, 6)
    assert truncated and text.startswith(cut) and count_tokens(cut) <= 6
    assert truncate_to_tokens("short", 10) == ("short", False)
    compact = json.dumps({"key": "value" * 10, "n": [1, 2, 3]}, separators=(",", ":"))
    for s in (text, compact, "  leading space"):
        assert "".join(split_deltas(s, 2)) == s
    assert len(split_deltas(compact, 1)) > 3
    assert is_reasoning_model("o3-mini") and is_reasoning_model("gpt-5-nano") and is_reasoning_model("openai/o1")
    assert not is_reasoning_model("gpt-4o") and not is_reasoning_model("omni-moderation-latest")


def test_prefix_cache() -> None:
    cache = PrefixCache()
    assert cache.lookup_and_store(["a", "b"]) == 0
    assert cache.lookup_and_store(["a", "c"]) == 1
    assert cache.lookup_and_store(["a", "b", "c", "d"]) == 2
    assert cache.lookup_and_store(["a"]) == 0  # the last part never counts
