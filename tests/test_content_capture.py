"""Content capture: off by default; when on, the prompts and answers the app saw, redacted and capped;
and no API key anywhere in the log under any setting."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import TEST_KEY, rows
from secret_scan import assert_no_secrets, call_log_texts, dashboard_texts, file_texts, spool_files

import unillm
from unillm import diagnostics, runtime
from unillm.config import ConfigError, load_settings

SYSTEM = {"role": "system", "content": "You are a terse support bot."}
MESSAGES = [SYSTEM, {"role": "user", "content": "Where is my parcel?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PROMPT_KEY = "sk-proj-PromptKeyMnBvCxZlKjHgFdSa9876"  # a key the user pasted into a prompt


def _patch(log_path: Path, **settings: Any) -> None:
    unillm.patch(log=str(log_path), flush_interval=0.05, fold_interval=0.2, **settings)


@pytest.fixture
def capturing(log_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(log_path.parent.parent)
    _patch(log_path, capture_content=True)
    try:
        yield log_path
    finally:
        unillm.unpatch()
        diagnostics.reset()


def contents(log: Path | None = None) -> list[dict[str, Any]]:
    """request_content and response_content of the recorded calls, parsed, oldest first."""
    query = "select request_content, response_content from calls order by started_at"
    recorded = rows(query) if log is None else unillm.sql(query, log=str(log)).to_dicts()
    return [
        {key: None if value is None else json.loads(value) for key, value in row.items()}  # type: ignore[arg-type]
        for row in recorded
    ]


def assistant(content: str | None, **extra: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content, **extra}


# -- off by default ---------------------------------------------------------------------------------


def test_off_by_default_only_metadata_is_stored(patched, client) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    client.responses.create(model="gpt-4.1-mini", input="hi", instructions="be brief")

    recorded = rows("select status, input_tokens, request_content, response_content from calls")
    assert len(recorded) == 3
    assert all(r["status"] == "ok" and r["input_tokens"] for r in recorded)
    assert all(r["request_content"] is None and r["response_content"] is None for r in recorded)


def test_turned_on_by_the_config_file_or_the_environment(tmp_path, monkeypatch, fake) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings().capture_content is False
    (tmp_path / "unillm.toml").write_text("capture_content = true\n")
    assert load_settings().capture_content is True
    monkeypatch.setenv("UNILLM_CAPTURE_CONTENT", "0")  # the environment wins over the file
    assert load_settings().capture_content is False
    monkeypatch.setenv("UNILLM_CAPTURE_CONTENT", "yes")
    assert load_settings().capture_content is True
    assert load_settings(capture_content=False).capture_content is False  # and patch() over the environment
    monkeypatch.setenv("UNILLM_CAPTURE_CONTENT", "maybe")
    with pytest.raises(ConfigError, match="UNILLM_CAPTURE_CONTENT.*'maybe'"):
        load_settings()

    (tmp_path / "unillm.toml").unlink()
    monkeypatch.setenv("UNILLM_CAPTURE_CONTENT", "1")
    log = tmp_path / "calls.duckdb"
    _patch(log)
    try:
        client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        [row] = contents()
        assert row["request_content"] == {"messages": MESSAGES}
    finally:
        unillm.unpatch()


# -- what is captured -------------------------------------------------------------------------------


def test_chat_content_is_what_the_app_sent_and_got_streamed_or_not(capturing, client) -> None:
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=2)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=2, stream=True))
    streamed = ["", ""]
    for chunk in chunks:
        for choice in chunk.choices:
            streamed[choice.index] += choice.delta.content or ""

    whole, stream = contents()
    assert whole["request_content"] == stream["request_content"] == {"messages": MESSAGES}
    assert whole["response_content"] == {"messages": [assistant(c.message.content) for c in answer.choices]}
    assert stream["response_content"] == {"messages": [assistant(text) for text in streamed]}
    assert stream["response_content"] == whole["response_content"]  # the fake answers a prompt alike


async def test_async_stream_and_the_stream_helper(capturing, aclient) -> None:
    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    async with aclient.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as helper:
        final = await helper.get_final_completion()

    first, second = contents()
    assert first["response_content"] == {"messages": [assistant(text)]}
    assert second["response_content"] == {"messages": [assistant(final.choices[0].message.content)]}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_tool_call_and_its_result(capturing, client, stream) -> None:
    if stream:
        with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES, tools=[WEATHER_TOOL]) as s:
            message = s.get_final_completion().choices[0].message
    else:
        message = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=[WEATHER_TOOL])
        message = message.choices[0].message
    [call] = message.tool_calls
    follow_up = [
        *MESSAGES,
        {"role": "assistant", "tool_calls": [call.model_dump(exclude_none=True)]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"},
    ]
    final = client.chat.completions.create(model="gpt-4o-mini", messages=follow_up, tools=[WEATHER_TOOL])

    first, second = contents()
    assert first["response_content"] == {
        "messages": [
            assistant(
                None,
                tool_calls=[
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": call.function.arguments},
                    }
                ],
            )
        ]
    }
    assert json.loads(call.function.arguments)["city"]
    assert second["request_content"] == {"messages": json.loads(json.dumps(follow_up))}
    assert second["response_content"] == {"messages": [assistant(final.choices[0].message.content)]}


def test_responses_api_streamed_or_not_and_a_function_call(capturing, client) -> None:
    conversation = [{"role": "user", "content": "Summarise my order"}]
    response = client.responses.create(model="gpt-4.1-mini", input=conversation, instructions="Be brief.")
    with client.responses.stream(model="gpt-4.1-mini", input=conversation, instructions="Be brief.") as stream:
        final = stream.get_final_response()
    tool = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}
    called = client.responses.create(model="gpt-4.1-mini", input="Look it up", tools=[tool])

    whole, streamed, function = contents()
    expected = {"instructions": "Be brief.", "input": conversation}
    assert whole["request_content"] == streamed["request_content"] == expected
    text = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": response.output_text}]}
    assert whole["response_content"] == {"output": [text]}
    assert final.output_text == response.output_text
    assert streamed["response_content"] == whole["response_content"]
    [item] = called.output
    assert function["request_content"] == {"input": "Look it up"}
    assert function["response_content"] == {
        "output": [{"type": "function_call", "call_id": item.call_id, "name": "lookup", "arguments": item.arguments}]
    }


def test_embeddings_store_the_text_only_and_legacy_completions(capturing, client) -> None:
    client.embeddings.create(model="text-embedding-3-small", input=["first text", "second text"])
    client.embeddings.create(model="text-embedding-3-small", input=[[101, 2023, 102]])  # token arrays: no text
    completion = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")
    streamed = list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", stream=True))

    texts, tokens, legacy, legacy_stream = contents()
    assert texts == {"request_content": {"input": ["first text", "second text"]}, "response_content": None}
    assert tokens == {"request_content": None, "response_content": None}  # vectors and token ids are not content
    assert legacy == {
        "request_content": {"prompt": "Say hi"},
        "response_content": {"text": [completion.choices[0].text]},
    }
    assert legacy_stream["response_content"] == {"text": ["".join(c.choices[0].text for c in streamed if c.choices)]}


def test_an_interrupted_stream_keeps_what_the_app_saw(capturing, client, fake) -> None:
    fake.fail_stream_next(after_chunks=3)
    seen = ""
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
            seen += chunk.choices[0].delta.content or "" if chunk.choices else ""
    [row] = rows("select status from calls")
    assert row["status"] == "interrupted"
    assert seen
    assert contents()[0]["response_content"] == {"messages": [assistant(seen)]}


def test_an_error_answer_has_no_response_content(capturing, client, fake) -> None:
    fake.fail_next(status=400, message="Invalid value for 'messages'.")
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert contents() == [{"request_content": {"messages": MESSAGES}, "response_content": None}]


def test_a_call_routed_to_anthropic_is_captured_as_the_app_saw_it(log_path, monkeypatch) -> None:
    from unillm.testing import FakeAnthropic

    monkeypatch.chdir(log_path.parent.parent)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api03-ROUTEDKEY0123456789")
    with FakeAnthropic(api_key="sk-ant-api03-ROUTEDKEY0123456789") as anthropic:
        _patch(log_path, capture_content=True, providers={"anthropic": {"base_url": anthropic.base_url}})
        try:
            app = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
            model = "anthropic/claude-sonnet-4-5"
            answer = app.chat.completions.create(model=model, messages=MESSAGES)
            chunks = list(app.chat.completions.create(model=model, messages=MESSAGES, stream=True))
            tool = app.chat.completions.create(model=model, messages=MESSAGES, tools=[WEATHER_TOOL])
            sent = anthropic.requests[-1].json
        finally:
            unillm.unpatch()
            diagnostics.reset()

    assert sent["system"] and all(m["role"] != "system" for m in sent["messages"])  # Anthropic's own shape went out
    whole, streamed, called = contents(log_path)
    assert whole["request_content"] == streamed["request_content"] == {"messages": MESSAGES}  # the app's shape
    assert whole["response_content"] == {"messages": [assistant(answer.choices[0].message.content)]}
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed["response_content"] == {"messages": [assistant(text)]}
    [call] = tool.choices[0].message.tool_calls
    assert called["response_content"]["messages"][0]["tool_calls"] == [
        {"id": call.id, "type": "function", "function": {"name": "get_weather", "arguments": call.function.arguments}}
    ]
    assert unillm.sql("select provider from calls", log=str(log_path)).rows[0] == ("anthropic",)


# -- redaction ----------------------------------------------------------------------------------------


def test_keys_and_emails_in_a_prompt_are_redacted(capturing, client) -> None:
    prompt = f"my key is {PROMPT_KEY} and my mail is jane.doe+bills@example.co.uk, see the risk-assessment-framework"
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])

    [row] = contents()
    stored = row["request_content"]["messages"][0]["content"]
    assert stored == "my key is [REDACTED] and my mail is [REDACTED], see the risk-assessment-framework"
    answer = row["response_content"]["messages"][0]["content"]  # the fake echoes the prompt's first words
    assert "my key is [REDACTED]" in answer and PROMPT_KEY not in answer


def test_user_patterns_a_custom_replacement_and_emails_off(log_path, monkeypatch, fake) -> None:
    monkeypatch.chdir(log_path.parent.parent)
    redact = {"patterns": [r"ORDER-\d{6}", r"(?i)project\s+\w+"], "emails": False, "replacement": "<hidden>"}
    _patch(log_path, capture_content=True, redact=redact)
    try:
        client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0)
        prompt = f"ORDER-123456 for Project Falcon, mail bob@example.com, key {PROMPT_KEY}"
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
        fake.fail_next(status=400, message="Unknown order ORDER-654321 (ask ops@example.com)")
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        [stored, failed] = contents()
        errors = rows(
            "select c.error_message as call, a.error_message as attempt from calls c join attempts a using (call_id)"
        )
    finally:
        unillm.unpatch()
        diagnostics.reset()

    # Keys go whatever the rules say; e-mails stay when `emails = false`.
    assert stored["request_content"]["messages"][0]["content"] == (
        "<hidden> for <hidden>, mail bob@example.com, key <hidden>"
    )
    assert failed["request_content"] == {"messages": MESSAGES}
    # Error messages follow the same rules.
    [error] = [e for e in errors if e["call"] and "Unknown order" in e["call"]]
    assert "ORDER-654321" not in error["call"] and "<hidden>" in error["call"] and "ops@example.com" in error["call"]
    assert "ORDER-654321" not in error["attempt"]


def test_a_bad_pattern_is_a_clear_error(tmp_path, monkeypatch) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"redact": {"patterns": [r"ORDER-\d+", "([A-Z"]}})
    message = str(raised.value)
    assert "redact.patterns" in message and "'([A-Z'" in message and "not a valid regular expression" in message

    monkeypatch.chdir(tmp_path)
    (tmp_path / "unillm.toml").write_text('capture_content = true\n[redact]\npatterns = ["x*"]\n')
    with pytest.raises(ConfigError, match=r"unillm\.toml: key 'redact\.patterns': 'x\*' matches the empty string"):
        load_settings()
    with pytest.raises(ConfigError, match="redact.emails"):
        unillm.patch(config={"redact": {"emails": "sometimes"}})
    assert unillm.stats()["patched"] is False


# -- the size cap -----------------------------------------------------------------------------------


def test_content_is_capped_at_64_kib_with_a_marker(capturing, client) -> None:
    from unillm.tracer.content import MAX_BYTES

    huge = "word " * 60_000 + f"tail {PROMPT_KEY}"  # 300 kB, a key at the very end
    client.embeddings.create(model="text-embedding-3-small", input=huge)
    turns = [{"role": "user", "content": f"turn {i}"} for i in range(3000)]
    client.chat.completions.create(model="gpt-4o-mini", messages=[SYSTEM, *turns])

    sizes = rows("select octet_length(cast(request_content as blob)) as n from calls order by started_at")
    assert all(0 < r["n"] <= MAX_BYTES for r in sizes)
    long_text, long_chat = contents()
    stored = long_text["request_content"]["input"]
    assert stored.startswith("word word") and stored.endswith("chars]") and "…[truncated " in stored
    assert PROMPT_KEY not in json.dumps(long_text)
    messages = long_chat["request_content"]["messages"]
    assert messages[0] == SYSTEM and messages[-1] == turns[-1]  # the system prompt and the latest turns
    assert any(isinstance(m, str) and m.startswith("[truncated ") and m.endswith(" items]") for m in messages)
    assert long_chat["response_content"]["messages"][0]["content"]


def test_a_stream_longer_than_unillm_keeps_is_cut_but_still_fully_metered(capturing, monkeypatch) -> None:
    from unillm.testing import FakeOpenAI
    from unillm.tracer import taps

    monkeypatch.setattr(taps, "_MAX_BODY", 4000)  # what a capturing tap keeps of a stream's events (8 MiB)
    with FakeOpenAI(answer_words=300) as long_answers:
        client = openai.OpenAI(base_url=long_answers.base_url, api_key=TEST_KEY, max_retries=0)
        chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    [row] = rows("select status, finish_reason, output_tokens, response_content from calls")
    assert row["status"] == "ok" and row["finish_reason"] == "stop" and row["output_tokens"]
    stored = json.loads(row["response_content"])  # type: ignore[arg-type]
    kept = stored["messages"][0]["content"]
    assert 0 < len(kept) < len(text) and text.startswith(kept)
    assert "longer than unillm keeps" in stored["truncated"]


# -- the secret scan --------------------------------------------------------------------------------

PROVIDER_KEYS = {
    "ANTHROPIC_API_KEY": "sk-ant-api03-ScanAnthropicQwErTyUiOp",
    "GEMINI_API_KEY": "AIzaSyScanGeminiZxCvBnMaSdFgHjKlPoIuYt",
    "MISTRAL_API_KEY": "MistralScanKeyLkJhGfDsAqWeRtYuIoPm",  # no recognisable shape: only its value is known
}


@pytest.mark.parametrize("capture", [True, False], ids=["capture on", "capture off"])
def test_no_key_reaches_the_log_under_any_setting(log_path, monkeypatch, caplog, capture) -> None:
    """Calls of every kind, keys in prompts and in error answers; then every table, the spool
    segments, the database file, the log output and the spans exported over OTLP are scanned."""
    from unillm.testing import FakeAnthropic, FakeGemini, FakeOpenAI, OTLPReceiver

    monkeypatch.chdir(log_path.parent.parent)
    for name, key in PROVIDER_KEYS.items():
        monkeypatch.setenv(name, key)
    secrets = [TEST_KEY, PROMPT_KEY, *PROVIDER_KEYS.values()]
    texts: dict[str, str | bytes] = {}
    with (
        FakeOpenAI(api_key=TEST_KEY) as openai_fake,
        FakeOpenAI() as mistral_fake,
        FakeAnthropic(api_key=PROVIDER_KEYS["ANTHROPIC_API_KEY"]) as anthropic_fake,
        FakeGemini(api_key=PROVIDER_KEYS["GEMINI_API_KEY"]) as gemini_fake,
        OTLPReceiver() as collector,
    ):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        providers = {
            "anthropic": {"base_url": anthropic_fake.base_url},
            "gemini": {"base_url": gemini_fake.base_url},
            "mistral": {"base_url": mistral_fake.base_url},
        }
        routes = {"support": {"targets": ["anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash"], "retries": 0}}
        unillm.patch(
            log=str(log_path),
            flush_interval=60,  # segments are written below, on purpose, to scan them before the fold
            fold_interval=3600,
            capture_content=capture,
            providers=providers,
            routes=routes,
        )
        try:
            client = openai.OpenAI(base_url=openai_fake.base_url, api_key=TEST_KEY, max_retries=0)
            wrong = openai.OpenAI(base_url=openai_fake.base_url, api_key=TEST_KEY + "-wrong", max_retries=0)
            leaky = [{"role": "user", "content": f"keys: {' '.join(secrets)} and Authorization: Bearer {TEST_KEY}"}]
            client.chat.completions.create(model="gpt-4o-mini", messages=leaky)
            list(client.chat.completions.create(model="gpt-4o-mini", messages=leaky, stream=True))
            client.responses.create(model="gpt-4.1-mini", input=leaky[0]["content"])
            client.embeddings.create(model="text-embedding-3-small", input=leaky[0]["content"])
            with pytest.raises(openai.AuthenticationError):
                wrong.chat.completions.create(model="gpt-4o-mini", messages=leaky)
            openai_fake.fail_next(status=500, message=f"upstream said: {TEST_KEY}")
            with pytest.raises(openai.InternalServerError):
                client.chat.completions.create(model="gpt-4o-mini", messages=leaky)
            openai_fake.fail_stream_next(after_chunks=2, message=f"stream broke near {PROMPT_KEY}")
            with pytest.raises(openai.APIError):
                list(client.chat.completions.create(model="gpt-4o-mini", messages=leaky, stream=True))
            # Routed: failover from an overloaded Anthropic to Gemini, a stream, an OpenAI-wire provider.
            anthropic_fake.fail_next(status=529)
            client.chat.completions.create(model="support", messages=leaky)
            list(client.chat.completions.create(model="support", messages=leaky, stream=True))
            client.chat.completions.create(model="gemini/gemini-2.5-flash", messages=leaky)
            client.chat.completions.create(model="mistral/mistral-small-latest", messages=leaky)
            gemini_fake.fail_next(status=400)
            with pytest.raises(openai.BadRequestError):
                client.chat.completions.create(model="gemini/gemini-2.5-flash", messages=leaky)

            session = runtime.current()
            assert session is not None
            session.recorder.flush()  # write the spool segments, no fold yet
            segments = spool_files(log_path)
            assert segments
            texts.update(file_texts(segments))
            unillm.flush()  # fold them into the database
        finally:
            unillm.unpatch()  # also sends the spans and metrics
            diagnostics.reset()
        spans = collector.wait_for_spans(12)
        texts["spans (decoded)"] = repr(spans)
        texts.update({f"OTLP request {i}": r.body for i, r in enumerate(collector.requests)})
        assert ("unillm.request_content" in texts["spans (decoded)"]) is capture

    texts.update(call_log_texts(log_path))
    shown = dashboard_texts(log_path)  # every page and every call's detail, where streamlit is installed
    texts.update(shown)
    if shown:  # the scan sees what the dashboard shows: a failed call's detail has its error message
        failed = unillm.sql("select call_id from calls where error_message like '%upstream said%'", log=str(log_path))
        assert "upstream said" in shown[f"dashboard {{'page': 'calls', 'call': '{failed.scalar()}'}}"]
    texts["log output"] = caplog.text
    # The scan sees what was stored: prompts, answers, error messages, failovers.
    calls = texts["table calls"]
    assert isinstance(calls, str) and ("keys: [REDACTED]" in calls and "Simulated answer" in calls) is capture
    assert "upstream said" in calls and "overloaded" in texts["table failovers"].lower()  # type: ignore[union-attr]
    assert unillm.sql("select count(*) from calls", log=str(log_path)).scalar() == 12
    assert_no_secrets(texts, secrets)


def test_the_scan_finds_a_key_and_pieces_of_one() -> None:
    with pytest.raises(AssertionError, match="table calls: sk-tes"):
        assert_no_secrets({"table calls": f"error: {TEST_KEY}"}, [TEST_KEY])
    with pytest.raises(AssertionError, match="file x.jsonl"):
        assert_no_secrets({"file x.jsonl": TEST_KEY[5:20].encode()}, [TEST_KEY])
    assert_no_secrets({"table calls": "error: ...cdef"}, [TEST_KEY])
