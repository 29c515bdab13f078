"""Provider failures reach the app exactly as without unillm, and the log says what happened."""

from __future__ import annotations

import openai
import pytest
from conftest import TEST_KEY, rows

MESSAGES = [{"role": "user", "content": "hello"}]


def test_rate_limit_error_is_the_sdks_own_and_is_recorded(patched, client, fake) -> None:
    fake.fail_next(count=1, status=429, message="Rate limit reached for gpt-4o-mini")
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raised.value.status_code == 429

    [call] = rows("select * from calls")
    assert call["status"] == "error"
    assert call["error_type"] == "RateLimitError"
    assert call["http_status"] == 429
    assert "Rate limit reached" in call["error_message"]
    assert call["cost_usd"] is None and call["input_tokens"] is None
    [attempt] = rows("select * from attempts")
    assert attempt["status"] == "error" and attempt["http_status"] == 429
    assert attempt["error_type"] == "rate_limit_exceeded"


def test_sdk_retries_become_attempts_of_one_call(patched, fake) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=3)
    fake.fail_next(count=2, status=503)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert answer.choices[0].message.content

    [call] = rows("select status, attempts, input_tokens from calls")
    assert call["status"] == "ok" and call["attempts"] == 3 and call["input_tokens"] > 0
    attempts = rows("select attempt, status, http_status, error_type from attempts order by attempt")
    assert attempts == [
        {"attempt": 1, "status": "error", "http_status": 503, "error_type": "server_error"},
        {"attempt": 2, "status": "error", "http_status": 503, "error_type": "server_error"},
        {"attempt": 3, "status": "ok", "http_status": 200, "error_type": None},
    ]


def test_connection_drop_is_an_sdk_connection_error(patched, client, fake) -> None:
    fake.drop_next(count=1)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    [call] = rows("select status, error_type, http_status from calls")
    assert call == {"status": "error", "error_type": "APIConnectionError", "http_status": None}
    [attempt] = rows("select status, error_type from attempts")
    assert attempt == {"status": "error", "error_type": "connection"}


def test_timeout_is_recorded_as_timeout(patched, fake) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0, timeout=0.3)
    fake.stall_next(seconds=2)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    [attempt] = rows("select status, error_type from attempts")
    assert attempt == {"status": "error", "error_type": "timeout"}


def test_error_event_inside_a_stream_is_raised_and_recorded_as_interrupted(patched, client, fake) -> None:
    fake.fail_stream_next(after_chunks=2, message="The server had an error while processing your request")
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    [call] = rows("select status, error_message from calls")
    assert call["status"] == "interrupted"
    assert "server had an error" in call["error_message"]


def test_a_stream_the_app_stops_reading_is_interrupted(patched, client) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    for _ in stream:
        break
    stream.close()
    [call] = rows("select status, error_type from calls")
    assert call == {"status": "interrupted", "error_type": "incomplete"}


def test_unknown_model_price_is_null_with_flag_never_zero(patched, client) -> None:
    client.chat.completions.create(model="acme-mystery-model-9", messages=MESSAGES)
    [call] = rows("select cost_usd, price_known, input_tokens from calls")
    assert call["cost_usd"] is None
    assert call["price_known"] is False
    assert call["input_tokens"] > 0


def test_price_override_from_config(fake, log_path) -> None:
    import unillm

    unillm.patch(log=str(log_path), prices={"acme-mystery-model-9": {"input": 1.0, "output": 2.0}})
    try:
        client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY)
        answer = client.chat.completions.create(model="acme-mystery-model-9", messages=MESSAGES)
        [call] = rows("select cost_usd, price_source from calls")
    finally:
        unillm.unpatch()
    expected = (answer.usage.prompt_tokens * 1.0 + answer.usage.completion_tokens * 2.0) / 1e6
    assert call["cost_usd"] == pytest.approx(expected)
    assert call["price_source"] == "config"


def test_unwritable_log_location_never_breaks_the_app(tmp_path, fake, caplog) -> None:
    import unillm

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log folder should be")
    unillm.patch(log=str(blocker / "calls.duckdb"), flush_interval=0.05)
    try:
        client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY)
        for _ in range(3):
            assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices
        unillm.flush()
        stats = unillm.stats()
    finally:
        unillm.unpatch()
        from unillm import diagnostics

        diagnostics.reset()
    assert stats["counts"]["log_unwritable"] >= 1
    assert "not-a-folder" in stats["last_messages"]["log_unwritable"]
    warnings = [r for r in caplog.records if "cannot write the call log" in r.getMessage()]
    assert len(warnings) == 1  # reported once, not per call


def test_corrupt_database_file_never_breaks_the_app(log_path, fake) -> None:
    import unillm

    log_path.parent.mkdir(parents=True)
    log_path.write_bytes(b"this is not a duckdb file" * 100)
    unillm.patch(log=str(log_path), flush_interval=0.05)
    try:
        client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY)
        assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices
        unillm.flush()
        stats = unillm.stats()
    finally:
        unillm.unpatch()
        from unillm import diagnostics

        diagnostics.reset()
    assert stats["counts"].get("log_unreadable", 0) >= 1
    assert str(log_path) in stats["last_messages"]["log_unreadable"]
    assert stats["recorder"]["recorded"] == 1  # the row waits in the spool, not lost


def test_api_key_never_reaches_the_log(patched, client, fake, log_path) -> None:
    fake.fail_next(count=1, status=401, message=f"Incorrect API key provided: {TEST_KEY}")
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    rows("select 1")  # flush and fold
    import unillm

    unillm.unpatch()  # closes the recorder: everything is on disk now
    log = str(log_path)
    dumped = (
        unillm.sql("select * from calls", log=log).to_dicts() + unillm.sql("select * from attempts", log=log).to_dicts()
    )
    assert TEST_KEY not in repr(dumped)
    assert "[REDACTED]" in repr(dumped)
    for path in log_path.parent.rglob("*"):
        if path.is_file():
            assert TEST_KEY.encode() not in path.read_bytes(), path
