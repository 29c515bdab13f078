"""Every way an app calls the SDK is recorded once, and the app gets exactly what it would without unillm."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from conftest import TEST_KEY, rows
from pydantic import BaseModel

MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]


class Weather(BaseModel):
    city: str
    celsius: float


def _comparable(obj: Any) -> Any:
    """A model dump without the fields a provider makes fresh for every answer."""
    data = obj.model_dump() if hasattr(obj, "model_dump") else obj
    if isinstance(data, dict):
        return {k: _comparable(v) for k, v in data.items() if k not in ("id", "created", "created_at", "call_id")}
    if isinstance(data, list):
        return [_comparable(v) for v in data]
    return data


def test_chat_create_is_recorded_with_tokens_and_cost(patched, client) -> None:
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert answer.choices[0].message.content
    [row] = rows("select * from calls")
    assert row["operation"] == "chat"
    assert row["endpoint"] == "/chat/completions"
    assert row["stream"] is False
    assert row["status"] == "ok"
    assert row["request_model"] == "gpt-4o-mini"
    assert row["response_model"] == answer.model
    assert row["input_tokens"] == answer.usage.prompt_tokens
    assert row["output_tokens"] == answer.usage.completion_tokens
    assert row["finish_reason"] == "stop"
    assert row["http_status"] == 200
    assert row["attempts"] == 1
    assert row["cost_usd"] > 0 and row["price_known"] is True
    assert row["price_source"].startswith("genai-prices")
    assert row["sdk_version"] == openai.__version__


def test_answers_are_identical_with_and_without_unillm(fake, log_path) -> None:
    import unillm

    client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0)

    def run_all() -> list[Any]:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        return [
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES),
            [chunk for chunk in stream],
            client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Weather),
            client.responses.create(model="gpt-4.1-mini", input="hello"),
            client.embeddings.create(model="text-embedding-3-small", input=["a", "b"]),
            client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi"),
        ]

    without = run_all()
    unillm.patch(log=str(log_path))
    try:
        with_unillm = run_all()
    finally:
        unillm.unpatch()
    assert [type(x) for x in with_unillm] == [type(x) for x in without]
    assert [type(c) for c in with_unillm[1]] == [type(c) for c in without[1]]
    assert _comparable(with_unillm[0]) == _comparable(without[0])
    assert [_comparable(c) for c in with_unillm[1]] == [_comparable(c) for c in without[1]]
    assert with_unillm[2].choices[0].message.parsed == without[2].choices[0].message.parsed
    assert with_unillm[3].output_text == without[3].output_text
    assert with_unillm[4].data[0].embedding == without[4].data[0].embedding
    assert with_unillm[5].choices[0].text == without[5].choices[0].text


def test_stream_records_usage_the_app_did_not_ask_for_without_showing_it(patched, client, fake) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))

    # The app sees no extra `choices: []` chunk: chunk.choices[0] works on every chunk.
    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)
    [row] = rows("select * from calls")
    assert row["stream"] is True and row["status"] == "ok"
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0
    assert row["ttft_ms"] is not None and 0 < row["ttft_ms"] <= row["duration_ms"]
    assert fake.requests[-1].json["stream_options"] == {"include_usage": True}


def test_stream_keeps_the_usage_chunk_when_the_app_asked(patched, client) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    [row] = rows("select output_tokens from calls")
    assert row["output_tokens"] == chunks[-1].usage.completion_tokens


def test_parse_and_stream_helpers(patched, client) -> None:
    parsed = client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Weather)
    assert isinstance(parsed.choices[0].message.parsed, Weather)
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        text = "".join(event.delta for event in stream if event.type == "content.delta")
    assert text
    with client.responses.stream(model="gpt-4.1-mini", input="Summarise this") as rstream:
        final = rstream.get_final_response()
    assert final.output_text
    recorded = rows("select endpoint, stream, status, input_tokens from calls order by started_at")
    assert [(r["endpoint"], r["stream"], r["status"]) for r in recorded] == [
        ("/chat/completions", False, "ok"),
        ("/chat/completions", True, "ok"),
        ("/responses", True, "ok"),
    ]
    assert all(r["input_tokens"] for r in recorded)


def test_responses_embeddings_and_legacy_completions(patched, client) -> None:
    response = client.responses.create(model="gpt-4.1-mini", input="hi", instructions="be brief")
    streamed = list(client.responses.create(model="gpt-4.1-mini", input="hi", stream=True))
    embedding = client.embeddings.create(model="text-embedding-3-small", input="hello")
    completion = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")
    assert response.output_text and streamed and embedding.data and completion.choices

    recorded = rows(
        "select operation, endpoint, stream, status, input_tokens, output_tokens from calls order by started_at"
    )
    assert [(r["operation"], r["endpoint"], r["stream"], r["status"]) for r in recorded] == [
        ("chat", "/responses", False, "ok"),
        ("chat", "/responses", True, "ok"),
        ("embeddings", "/embeddings", False, "ok"),
        ("text_completion", "/completions", False, "ok"),
    ]
    assert recorded[0]["input_tokens"] == response.usage.input_tokens
    assert recorded[2]["input_tokens"] == embedding.usage.prompt_tokens
    assert recorded[3]["output_tokens"] == completion.usage.completion_tokens


def test_raw_and_streaming_response_wrappers(patched, client) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.http_request.url.path.endswith("/chat/completions")
    assert raw.parse().choices[0].message.content
    with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES) as resp:
        assert resp.parse().choices[0].message.content
    recorded = rows("select status, input_tokens from calls")
    assert [r["status"] for r in recorded] == ["ok", "ok"]
    assert all(r["input_tokens"] for r in recorded)


def test_clients_made_before_patch_with_own_http_client_and_module_level(fake, log_path, monkeypatch) -> None:
    import httpx

    import unillm

    before = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY)
    legacy_httpx = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, http_client=httpx.Client())
    monkeypatch.setattr(openai, "api_key", TEST_KEY)
    monkeypatch.setattr(openai, "base_url", fake.base_url + "/")
    unillm.patch(log=str(log_path))
    try:
        before.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        legacy_httpx.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        openai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        after = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY)
        after.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        recorded = rows("select status from calls")
    finally:
        unillm.unpatch()
    assert [r["status"] for r in recorded] == ["ok"] * 4


async def test_async_client_all_paths(patched, aclient) -> None:
    await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    texts = [chunk.choices[0].delta.content async for chunk in stream]
    await aclient.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Weather)
    await aclient.responses.create(model="gpt-4.1-mini", input="hi")
    await aclient.embeddings.create(model="text-embedding-3-small", input="hi")
    assert any(texts)
    recorded = rows("select endpoint, stream, status, input_tokens from calls order by started_at")
    assert [(r["endpoint"], r["stream"], r["status"]) for r in recorded] == [
        ("/chat/completions", False, "ok"),
        ("/chat/completions", True, "ok"),
        ("/chat/completions", False, "ok"),
        ("/responses", False, "ok"),
        ("/embeddings", False, "ok"),
    ]
    assert all(r["input_tokens"] for r in recorded)


async def test_concurrent_async_calls_are_each_recorded_once(patched, aclient) -> None:
    await asyncio.gather(*(aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES) for _ in range(40)))
    [row] = rows("select count(*) as n, count(distinct call_id) as ids from calls")
    assert row == {"n": 40, "ids": 40}


def test_non_model_endpoints_are_not_recorded(patched, client) -> None:
    client.models.list()
    assert rows("select count(*) as n from calls") == [{"n": 0}]


def test_unpatch_restores_the_sdk_and_stops_recording(fake, log_path) -> None:
    import httpx

    import unillm

    original_request = openai._base_client.SyncAPIClient.request
    original_transport = httpx.Client._transport_for_url
    unillm.patch(log=str(log_path))
    unillm.patch(log=str(log_path))  # idempotent: one wrapper, one row per call
    client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    unillm.unpatch()
    unillm.unpatch()
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert openai._base_client.SyncAPIClient.request is original_request
    assert httpx.Client._transport_for_url is original_transport
    assert unillm.sql("select count(*) from calls", log=str(log_path)).scalar() == 1


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_are_counted(patched, client, stream) -> None:
    tools = [
        {"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
        for n in ("get_weather", "get_time")
    ]
    result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=tools, stream=stream)
    if stream:
        list(result)
    [row] = rows("select finish_reason, tool_calls from calls")
    assert row == {"finish_reason": "tool_calls", "tool_calls": 2}


def test_bound_methods_made_before_patch_are_recorded(fake, log_path) -> None:
    import unillm

    client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY)
    raw_create = client.chat.completions.with_raw_response.create  # bound before patch()
    unillm.patch(log=str(log_path))
    try:
        assert raw_create(model="gpt-4o-mini", messages=MESSAGES).parse().choices
        recorded = rows("select status, input_tokens from calls")
    finally:
        unillm.unpatch()
    assert len(recorded) == 1 and recorded[0]["status"] == "ok" and recorded[0]["input_tokens"] > 0


def test_legacy_completion_stream_gets_usage_without_the_extra_chunk(patched, client) -> None:
    chunks = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", stream=True))
    assert all(chunk.choices for chunk in chunks)
    [row] = rows("select operation, status, output_tokens from calls")
    assert row["operation"] == "text_completion" and row["status"] == "ok" and row["output_tokens"] > 0
