"""Round trips: OpenAI SDK → unillm → a simulated Anthropic / Gemini / OpenAI-wire provider → back.

Each test asserts what the app sees (the SDK's own objects and exceptions) and, where it matters,
what the provider received and what the call log recorded. Tests marked `conformance` feed the
provider × feature table in docs/providers.md.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from conftest import TEST_KEY, rows
from native_providers import MODELS, Provider, start_fake
from pydantic import BaseModel

import unillm
from unillm import diagnostics

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}},
}
PIXEL = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


class Weather(BaseModel):
    city: str
    celsius: float


def ask(text: str = "What is the capital of France?") -> list[dict[str, Any]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


@pytest.mark.conformance("text")
def test_text_answer_usage_and_log(provider: Provider, app: openai.OpenAI) -> None:
    answer = app.chat.completions.create(model=provider.model, messages=ask())
    assert isinstance(answer, openai.types.chat.ChatCompletion)
    assert answer.choices[0].message.content
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0

    [row] = rows("select * from calls")
    assert row["provider"] == provider.name
    assert row["request_model"] == provider.model
    assert row["status"] == "ok"
    assert row["input_tokens"] == answer.usage.prompt_tokens
    assert row["output_tokens"] == answer.usage.completion_tokens
    assert row["cost_usd"] > 0 and row["price_known"] is True
    assert json.loads(row["usage_raw"])  # the provider's own usage object is kept


@pytest.mark.conformance("system + multi-turn")
def test_system_and_multi_turn_reach_the_provider(provider: Provider, app: openai.OpenAI) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "And now?"},
    ]
    app.chat.completions.create(model=provider.model, messages=messages)
    sent = provider.last_request()
    if provider.name == "anthropic":
        assert [b["text"] for b in sent["system"]] == ["You are terse.", "Answer in French."]
        assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    else:
        assert [p["text"] for p in sent["systemInstruction"]["parts"]] == ["You are terse.", "Answer in French."]
        assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]


@pytest.mark.conformance("streaming")
def test_stream_matches_the_whole_answer(provider: Provider, app: openai.OpenAI) -> None:
    whole = app.chat.completions.create(model=provider.model, messages=ask())
    chunks = list(app.chat.completions.create(model=provider.model, messages=ask(), stream=True))
    assert all(chunk.choices for chunk in chunks)  # no usage chunk the app did not ask for
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"

    with_usage = list(
        app.chat.completions.create(
            model=provider.model, messages=ask(), stream=True, stream_options={"include_usage": True}
        )
    )
    assert with_usage[-1].choices == [] and with_usage[-1].usage.completion_tokens > 0
    recorded = rows("select stream, status, ttft_ms, output_tokens from calls order by started_at")
    assert [r["status"] for r in recorded] == ["ok", "ok", "ok"]
    assert recorded[1]["ttft_ms"] is not None and recorded[1]["output_tokens"] > 0


@pytest.mark.conformance("tools (parallel) + tool results")
@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_round_trip(provider: Provider, app: openai.OpenAI, stream: bool) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather and time in Paris?"}]
    result = app.chat.completions.create(
        model=provider.model, messages=messages, tools=[WEATHER_TOOL, TIME_TOOL], stream=stream
    )
    if stream:
        calls: dict[int, dict[str, Any]] = {}
        finish = None
        for chunk in result:
            choice = chunk.choices[0]
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or ():
                slot = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
                slot["id"] = delta.id or slot["id"]
                if delta.function:
                    slot["name"] = delta.function.name or slot["name"]
                    slot["arguments"] += delta.function.arguments or ""
        tool_calls = [calls[i] for i in sorted(calls)]
    else:
        message = result.choices[0].message
        finish = result.choices[0].finish_reason
        tool_calls = [
            {"id": c.id, "name": c.function.name, "arguments": c.function.arguments} for c in message.tool_calls
        ]
    assert finish == "tool_calls"
    assert [c["name"] for c in tool_calls] == ["get_weather", "get_time"]
    assert json.loads(tool_calls[0]["arguments"])["city"]
    assert all(c["id"] for c in tool_calls)

    messages.append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in tool_calls
            ],
        }
    )
    for call in tool_calls:
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": '{"temp": 21}'})
    final = app.chat.completions.create(model=provider.model, messages=messages, tools=[WEATHER_TOOL, TIME_TOOL])
    assert final.choices[0].finish_reason == "stop" and final.choices[0].message.content
    [row] = rows("select tool_calls from calls order by started_at limit 1")
    assert row["tool_calls"] == 2


@pytest.mark.conformance("tool_choice")
@pytest.mark.parametrize(
    ("choice", "anthropic", "gemini"),
    [
        ("auto", {"type": "auto"}, None),
        ("none", {"type": "none"}, {"mode": "NONE"}),
        ("required", {"type": "any"}, {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            {"type": "tool", "name": "get_time"},
            {"mode": "ANY", "allowedFunctionNames": ["get_time"]},
        ),
    ],
)
def test_tool_choice_is_mapped(
    provider: Provider, app: openai.OpenAI, choice: Any, anthropic: Any, gemini: Any
) -> None:
    answer = app.chat.completions.create(
        model=provider.model, messages=ask(), tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=choice
    )
    sent = provider.last_request()
    if provider.name == "anthropic":
        assert sent["tool_choice"] == anthropic
    else:
        assert sent.get("toolConfig", {}).get("functionCallingConfig") == gemini
    if choice == "none":
        assert answer.choices[0].finish_reason == "stop" and not answer.choices[0].message.tool_calls
    if isinstance(choice, dict):
        assert [c.function.name for c in answer.choices[0].message.tool_calls] == ["get_time"]


@pytest.mark.conformance("structured output (.parse)")
def test_parse_with_native_structured_output(provider: Provider, app: openai.OpenAI) -> None:
    completion = app.chat.completions.parse(
        model=provider.model, messages=ask("Weather in Oslo?"), response_format=Weather
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Weather)
    sent = provider.last_request()
    if provider.name == "anthropic":
        assert sent["output_config"]["format"]["type"] == "json_schema"
    else:
        assert sent["generationConfig"]["responseMimeType"] == "application/json"
        assert sent["generationConfig"]["responseJsonSchema"]["properties"]["city"]


@pytest.mark.conformance(".stream() helper")
def test_stream_helper(provider: Provider, app: openai.OpenAI) -> None:
    with app.chat.completions.stream(model=provider.model, messages=ask(), response_format=Weather) as stream:
        final = stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, Weather)


@pytest.mark.conformance("images")
def test_image_parts(provider: Provider, app: openai.OpenAI) -> None:
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": PIXEL}}]
    app.chat.completions.create(model=provider.model, messages=[{"role": "user", "content": content}])
    sent = provider.last_request()
    if provider.name == "anthropic":
        image = sent["messages"][0]["content"][1]
        assert image == {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PIXEL.split(",")[1]},
        }
    else:
        image = sent["contents"][0]["parts"][1]
        assert image == {"inlineData": {"mimeType": "image/png", "data": PIXEL.split(",")[1]}}


@pytest.mark.conformance("sampling parameters")
def test_sampling_parameters_are_mapped(provider: Provider, app: openai.OpenAI) -> None:
    if provider.name == "anthropic":
        # Claude 4.5+ takes temperature or top_p, not both: Anthropic's own error says so.
        app.chat.completions.create(
            model=provider.model, messages=ask(), temperature=0.3, max_completion_tokens=50, stop=["\n\n"]
        )
        sent = provider.last_request()
        assert (sent["temperature"], sent["max_tokens"], sent["stop_sequences"]) == (0.3, 50, ["\n\n"])
        app.chat.completions.create(model=provider.model, messages=ask(), top_p=0.9)
        assert provider.last_request()["top_p"] == 0.9
        with pytest.raises(openai.BadRequestError, match="anthropic: `temperature` and `top_p`"):
            app.chat.completions.create(model=provider.model, messages=ask(), temperature=0.3, top_p=0.9)
        return
    app.chat.completions.create(
        model=provider.model, messages=ask(), temperature=0.3, top_p=0.9, max_completion_tokens=50, stop=["\n\n"]
    )
    config = provider.last_request()["generationConfig"]
    assert (config["temperature"], config["topP"], config["maxOutputTokens"], config["stopSequences"]) == (
        0.3,
        0.9,
        50,
        ["\n\n"],
    )


@pytest.mark.conformance("max_tokens → length")
def test_truncation_is_length(provider: Provider, app: openai.OpenAI) -> None:
    answer = app.chat.completions.create(model=provider.model, messages=ask(), max_tokens=2)
    assert answer.choices[0].finish_reason == "length"


@pytest.mark.conformance("unsupported parameter → clear error")
def test_parameter_the_provider_cannot_honour_is_a_clear_error(provider: Provider, app: openai.OpenAI) -> None:
    before = len(provider.fake.requests)
    with pytest.raises(openai.BadRequestError) as raised:
        app.chat.completions.create(model=provider.model, messages=ask(), logprobs=True)
    assert provider.name in str(raised.value) and "logprobs" in str(raised.value)
    assert len(provider.fake.requests) == before  # nothing was sent


@pytest.mark.conformance("errors → SDK exception classes")
@pytest.mark.parametrize(
    ("status", "error_class"),
    [(429, openai.RateLimitError), (500, openai.InternalServerError), (400, openai.BadRequestError)],
)
def test_provider_errors_become_sdk_errors(
    provider: Provider, app: openai.OpenAI, status: int, error_class: type
) -> None:
    provider.fake.fail_next(count=1, status=status, message="simulated trouble")
    with pytest.raises(error_class) as raised:
        app.chat.completions.create(model=provider.model, messages=ask())
    assert f"{provider.name}: simulated trouble" in str(raised.value)
    [row] = rows("select status, http_status, provider from calls")
    assert row == {"status": "error", "http_status": status, "provider": provider.name}


@pytest.mark.conformance("context window exceeded")
def test_context_window_exceeded_is_its_own_kind(provider: Provider, app: openai.OpenAI) -> None:
    provider.fake.context_window = 10
    with pytest.raises(openai.BadRequestError) as raised:
        app.chat.completions.create(model=provider.model, messages=ask("word " * 200))
    assert raised.value.code == "context_length_exceeded"


@pytest.mark.conformance("error inside a 200 stream")
def test_error_event_mid_stream_raises_and_is_interrupted(provider: Provider, app: openai.OpenAI) -> None:
    provider.fake.fail_stream_next(after_chunks=2, message="Overloaded")
    stream = app.chat.completions.create(model=provider.model, messages=ask(), stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in stream:
            received += [c.delta.content for c in chunk.choices if c.delta.content]
    assert provider.name in str(raised.value)
    [row] = rows("select status from calls")
    # Part of the answer arrived: interrupted; none of it (Anthropic's third event is still no text): error.
    assert row["status"] == ("interrupted" if received else "error")


def test_missing_key_names_the_environment_variable(log_path, monkeypatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.chdir(log_path.parent.parent)
    unillm.patch(log=str(log_path))
    try:
        client = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
        with pytest.raises(openai.AuthenticationError, match="ANTHROPIC_API_KEY"):
            client.chat.completions.create(model="anthropic/claude-sonnet-4-5", messages=ask())
    finally:
        unillm.unpatch()


@pytest.mark.conformance("async")
async def test_async_round_trip(provider: Provider, async_app: openai.AsyncOpenAI) -> None:
    answer = await async_app.chat.completions.create(model=provider.model, messages=ask())
    stream = await async_app.chat.completions.create(model=provider.model, messages=ask(), stream=True)
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
    assert text == answer.choices[0].message.content
    recorded = rows("select status, provider from calls")
    assert recorded == [{"status": "ok", "provider": provider.name}] * 2


# -- provider-specific ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("forced", "finish"),
    [
        ("refusal", "content_filter"),
        ("pause_turn", "pause_turn"),
        ("model_context_window_exceeded", "length"),
    ],
)
def test_anthropic_stop_reasons_are_never_a_silent_stop(log_path, monkeypatch, forced: str, finish: str) -> None:
    from unillm.testing import FakeAnthropic

    monkeypatch.chdir(log_path.parent.parent)
    with FakeAnthropic() as fake:
        fake.force_stop_reason = forced
        unillm.patch(log=str(log_path), providers={"anthropic": {"base_url": fake.base_url, "api_key": "k"}})
        try:
            client = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
            answer = client.chat.completions.create(model="anthropic/claude-sonnet-4-5", messages=ask())
            chunks = list(
                client.chat.completions.create(model="anthropic/claude-sonnet-4-5", messages=ask(), stream=True)
            )
        finally:
            unillm.unpatch()
    assert answer.choices[0].finish_reason == finish
    assert chunks[-1].choices[0].finish_reason == finish


def test_anthropic_cache_tokens_are_normalised(log_path, monkeypatch) -> None:
    from unillm.testing import FakeAnthropic

    monkeypatch.chdir(log_path.parent.parent)
    long_system = "You are a support agent for ACME. " * 400  # above Anthropic's 1024-token cache minimum
    with FakeAnthropic() as fake:
        unillm.patch(log=str(log_path), providers={"anthropic": {"base_url": fake.base_url, "api_key": "k"}})
        try:
            client = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
            answers = []
            # Anthropic caches what a part marks with cache_control (an Anthropic extension to the part).
            system = {
                "role": "system",
                "content": [{"type": "text", "text": long_system, "cache_control": {"type": "ephemeral"}}],
            }
            for _ in range(2):
                answers.append(
                    client.chat.completions.create(
                        model="anthropic/claude-sonnet-4-5", messages=[system, {"role": "user", "content": "hi"}]
                    )
                )
            recorded = rows(
                "select input_tokens, cached_tokens, cache_write_tokens, usage_raw from calls order by started_at"
            )
        finally:
            unillm.unpatch()
    assert recorded[0]["cache_write_tokens"] > 0 and recorded[1]["cached_tokens"] > 0
    for answer, row in zip(answers, recorded, strict=True):
        raw = json.loads(row["usage_raw"])
        total = (
            raw["input_tokens"]
            + (raw.get("cache_read_input_tokens") or 0)
            + (raw.get("cache_creation_input_tokens") or 0)
        )
        assert answer.usage.prompt_tokens == total == row["input_tokens"]
        assert row["cached_tokens"] == (raw.get("cache_read_input_tokens") or 0)


@pytest.mark.parametrize(
    ("forced", "finish"), [("SAFETY", "content_filter"), ("MALFORMED_FUNCTION_CALL", "malformed_function_call")]
)
def test_gemini_finish_reasons_are_never_a_silent_stop(log_path, monkeypatch, forced: str, finish: str) -> None:
    from unillm.testing import FakeGemini

    monkeypatch.chdir(log_path.parent.parent)
    with FakeGemini() as fake:
        fake.force_finish_reason = forced
        unillm.patch(log=str(log_path), providers={"gemini": {"base_url": fake.base_url, "api_key": "k"}})
        try:
            client = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
            answer = client.chat.completions.create(
                model="gemini/gemini-2.5-flash", messages=ask(), tools=[WEATHER_TOOL]
            )
            chunks = list(client.chat.completions.create(model="gemini/gemini-2.5-flash", messages=ask(), stream=True))
        finally:
            unillm.unpatch()
    assert answer.choices[0].finish_reason == finish
    assert chunks[-1].choices[0].finish_reason == finish


@pytest.mark.conformance("embeddings")
def test_native_embeddings(provider: Provider, app: openai.OpenAI) -> None:
    if provider.name == "anthropic":
        with pytest.raises(openai.BadRequestError, match="anthropic has no /embeddings endpoint"):
            app.embeddings.create(model=provider.model, input="alpha")
        pytest.skip("Anthropic has no embeddings API (a clear error, checked above)")
    model = "gemini/gemini-embedding-001"
    result = app.embeddings.create(model=model, input=["alpha", "beta"])
    floats = app.embeddings.create(model=model, input="alpha", encoding_format="float")
    [row] = rows("select operation, provider, status from calls order by started_at limit 1")
    assert len(result.data) == 2 and all(len(item.embedding) > 0 for item in result.data)
    assert result.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6)
    assert row == {"operation": "embeddings", "provider": "gemini", "status": "ok"}


# -- OpenAI-wire providers: their base URL, key and quirks ----------------------------------------
COMPAT = [
    "openai",
    "azure",
    "mistral",
    "deepseek",
    "groq",
    "together",
    "fireworks",
    "xai",
    "openrouter",
    "qwen",
    "perplexity",
    "ollama",
    "vllm",
]


@pytest.fixture(params=COMPAT)
def compat(request: pytest.FixtureRequest, log_path, monkeypatch) -> Iterator[Provider]:
    from unillm.testing import FakeOpenAI

    name = request.param
    monkeypatch.chdir(log_path.parent.parent)
    fake = FakeOpenAI()
    entry: dict[str, Any] = {"base_url": fake.base_url, "api_key": f"key-{name}"}
    if name == "vllm":  # not built in: a user's own OpenAI-compatible server, declared in config
        entry["wire"] = "openai"
    try:
        unillm.patch(log=str(log_path), flush_interval=0.05, providers={name: entry})
        yield Provider(name, fake, f"{name}/some-model-1")
    finally:
        unillm.unpatch()
        diagnostics.reset()
        fake.close()


@pytest.mark.conformance("text")
def test_openai_wire_provider_text(compat: Provider) -> None:
    client = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
    answer = client.chat.completions.create(model=compat.model, messages=ask())
    assert answer.choices[0].message.content
    request = compat.fake.requests[-1]
    assert request.json["model"] == "some-model-1"
    if compat.name == "azure":
        assert request.headers.get("api-key") == "key-azure"
    else:
        assert request.headers.get("authorization") == f"Bearer key-{compat.name}"
    assert TEST_KEY not in json.dumps(request.headers)  # the app's OpenAI key never goes elsewhere
    [row] = rows("select provider, status, input_tokens from calls")
    assert row["provider"] == compat.name and row["status"] == "ok" and row["input_tokens"] > 0


@pytest.mark.conformance("streaming")
def test_openai_wire_provider_stream(compat: Provider) -> None:
    client = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
    chunks = list(client.chat.completions.create(model=compat.model, messages=ask(), stream=True))
    assert all(chunk.choices for chunk in chunks) and chunks[-1].choices[0].finish_reason == "stop"
    [row] = rows("select status, output_tokens from calls")
    assert row["status"] == "ok" and row["output_tokens"] > 0


@pytest.mark.conformance("tools (parallel) + tool results")
def test_openai_wire_provider_tool_ids_stay_valid(compat: Provider) -> None:
    client = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
    history = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abcdefghijklmnopqrstuvwx",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abcdefghijklmnopqrstuvwx", "content": "21C"},
    ]
    answer = client.chat.completions.create(model=compat.model, messages=history, tools=[WEATHER_TOOL])
    assert answer.choices[0].message.content
    sent = compat.fake.requests[-1].json["messages"]
    sent_call_id, sent_result_id = sent[1]["tool_calls"][0]["id"], sent[2]["tool_call_id"]
    assert sent_call_id == sent_result_id
    if compat.name == "mistral":
        assert len(sent_call_id) == 9 and sent_call_id.isalnum()
    else:
        assert sent_call_id == "call_abcdefghijklmnopqrstuvwx"


def test_azure_without_base_url_is_a_clear_error(log_path, monkeypatch) -> None:
    monkeypatch.chdir(log_path.parent.parent)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "k")
    unillm.patch(log=str(log_path))
    try:
        client = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
        with pytest.raises(openai.BadRequestError, match=r"providers\.azure"):
            client.chat.completions.create(model="azure/gpt-4o", messages=ask())
    finally:
        unillm.unpatch()


@pytest.mark.conformance("embeddings")
def test_openai_wire_provider_embeddings(compat: Provider) -> None:
    client = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
    result = client.embeddings.create(model=compat.model, input=["alpha", "beta"])
    assert len(result.data) == 2 and result.data[0].embedding
    assert compat.fake.requests[-1].path.endswith("/embeddings")
    [row] = rows("select operation, provider, input_tokens from calls")
    assert row["operation"] == "embeddings" and row["provider"] == compat.name and row["input_tokens"] > 0


def test_a_route_in_config_moves_an_app_model_to_another_provider(log_path, monkeypatch) -> None:
    from unillm.testing import FakeGemini

    monkeypatch.chdir(log_path.parent.parent)
    with FakeGemini() as fake:
        unillm.patch(
            log=str(log_path),
            providers={"gemini": {"base_url": fake.base_url, "api_key": "k"}},
            routes={"gpt-4o": "gemini/gemini-2.5-flash"},
        )
        try:
            client = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
            answer = client.chat.completions.create(model="gpt-4o", messages=ask())  # unchanged app code
            [row] = rows("select request_model, provider, response_model from calls")
        finally:
            unillm.unpatch()
    assert answer.choices[0].message.content
    assert fake.requests[-1].path.endswith("gemini-2.5-flash:generateContent")
    assert row["request_model"] == "gpt-4o" and row["provider"] == "gemini"


def test_a_route_to_an_unknown_provider_is_a_config_error(log_path) -> None:
    from unillm.config import ConfigError

    with pytest.raises(ConfigError, match=r"routes\.gpt-4o.*provider/model"):
        unillm.patch(log=str(log_path), routes={"gpt-4o": "nowhere/model-x"})


def test_demo_route_switches_to_anthropic_in_config_without_app_changes(tmp_path) -> None:
    import subprocess
    import sys

    (tmp_path / "unillm.toml").write_text('[routes]\n"gpt-4o" = "anthropic/claude-sonnet-4-5"\n')
    log = tmp_path / "demo.duckdb"
    out = subprocess.run(
        [sys.executable, "-m", "unillm", "demo", "--calls", "20", "--quiet", "--log", str(log)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "gpt-4o → anthropic/claude-sonnet-4-5" in out.stdout
    by_feature = unillm.sql(
        "select tags['feature'] as feature, string_agg(distinct provider) as providers, "
        "count(*) filter (where status = 'ok') as ok from calls group by 1",
        log=str(log),
    ).to_dicts()
    answer = next(row for row in by_feature if row["feature"] == "answer")
    assert answer["providers"] == "anthropic" and answer["ok"] >= 1


@pytest.mark.conformance("errors → SDK exception classes")
def test_openai_wire_provider_errors_name_the_provider(compat: Provider) -> None:
    client = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
    compat.fake.fail_next(count=1, status=429, message="slow down")
    with pytest.raises(openai.RateLimitError, match=f"{compat.name}: slow down"):
        client.chat.completions.create(model=compat.model, messages=ask())


@pytest.mark.conformance("error inside a 200 stream")
def test_openai_wire_provider_error_mid_stream(compat: Provider) -> None:
    client = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
    compat.fake.fail_stream_next(after_chunks=2, message="upstream provider failed")
    with pytest.raises(openai.APIError, match="upstream provider failed"):
        list(client.chat.completions.create(model=compat.model, messages=ask(), stream=True))
    [row] = rows("select status from calls")
    assert row["status"] == "interrupted"


def test_pass_through_to_a_configured_provider_address_is_named_after_it(log_path, monkeypatch) -> None:
    from unillm.testing import FakeOpenAI

    monkeypatch.chdir(log_path.parent.parent)
    with FakeOpenAI() as fake:
        unillm.patch(log=str(log_path), providers={"local": {"wire": "openai", "base_url": fake.base_url}})
        try:
            client = openai.OpenAI(api_key=TEST_KEY, base_url=fake.base_url, max_retries=0)  # the app's own URL
            client.chat.completions.create(model="llama-3.1-8b", messages=ask())
            [row] = rows("select provider from calls")
        finally:
            unillm.unpatch()
    assert row["provider"] == "local"


def test_a_one_target_route_is_named_in_the_log(log_path, monkeypatch) -> None:
    # `"gpt-4o-mini" = "anthropic/..."` in [routes]: the app's model is an alias; the log says so.
    monkeypatch.chdir(log_path.parent.parent)
    fake = start_fake("anthropic")
    try:
        unillm.patch(
            log=str(log_path),
            flush_interval=0.05,
            providers={"anthropic": {"base_url": fake.base_url, "api_key": "test-key-anthropic"}},
            routes={"support-bot": f"anthropic/{MODELS['anthropic']}"},
        )
        client = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
        client.chat.completions.create(model="support-bot", messages=ask())
        client.chat.completions.create(model=f"anthropic/{MODELS['anthropic']}", messages=ask())
        routes = [
            (r["request_model"], r["route"], r["provider"]) for r in rows("select * from calls order by started_at")
        ]
        assert routes == [
            ("support-bot", "support-bot", "anthropic"),
            (f"anthropic/{MODELS['anthropic']}", None, "anthropic"),  # asked for directly: no route
        ]
    finally:
        unillm.unpatch()
        diagnostics.reset()
        fake.close()
