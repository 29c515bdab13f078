"""Routes with ordered targets: retries with backoff, failover, and one answer (or one error) for the app."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from conftest import TEST_KEY, rows

import unillm
from unillm import diagnostics
from unillm.config import ConfigError

MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]


@pytest.fixture
def fakes(log_path, monkeypatch) -> Iterator[tuple[Any, Any]]:
    from unillm.testing import FakeAnthropic, FakeGemini

    monkeypatch.chdir(log_path.parent.parent)
    with FakeAnthropic() as anthropic, FakeGemini() as gemini:
        unillm.patch(
            log=str(log_path),
            flush_interval=0.05,
            providers={
                "anthropic": {"base_url": anthropic.base_url, "api_key": "k"},
                "gemini": {"base_url": gemini.base_url, "api_key": "k"},
            },
            routes={
                "support": {
                    "targets": ["anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash"],
                    "retries": 1,
                    "backoff": 0.01,
                }
            },
        )
        try:
            yield anthropic, gemini
        finally:
            unillm.unpatch()
            diagnostics.reset()


@pytest.fixture
def app() -> openai.OpenAI:
    # max_retries=5 on purpose: for a routed call unillm owns the retries, the SDK must not add its own.
    return openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=5)


def test_overloaded_first_target_fails_over_to_the_second(fakes, app) -> None:
    anthropic, gemini = fakes
    anthropic.fail_next(count=2, status=529)
    answer = app.chat.completions.create(model="support", messages=MESSAGES)

    assert isinstance(answer, openai.types.chat.ChatCompletion) and answer.choices[0].message.content
    assert (len(anthropic.requests), len(gemini.requests)) == (2, 1)  # 1 try + 1 retry, then failover
    [call] = rows("select status, provider, attempts, request_model from calls")
    assert call == {"status": "ok", "provider": "gemini", "attempts": 3, "request_model": "support"}
    chain = rows("select attempt, provider, http_status, status from attempts order by attempt")
    assert [(a["provider"], a["http_status"], a["status"]) for a in chain] == [
        ("anthropic", 529, "error"),
        ("anthropic", 529, "error"),
        ("gemini", 200, "ok"),
    ]


def test_a_retry_on_the_same_target_can_succeed(fakes, app) -> None:
    anthropic, gemini = fakes
    anthropic.fail_next(count=1, status=429)
    app.chat.completions.create(model="support", messages=MESSAGES)
    assert (len(anthropic.requests), len(gemini.requests)) == (2, 0)


def test_retry_after_is_honoured(fakes, app) -> None:
    anthropic, _ = fakes
    anthropic.fail_next(count=1, status=429, retry_after=0.4)
    started = time.perf_counter()
    app.chat.completions.create(model="support", messages=MESSAGES)
    assert time.perf_counter() - started >= 0.4


def test_bad_request_is_not_retried_nor_failed_over(fakes, app) -> None:
    anthropic, gemini = fakes
    anthropic.fail_next(count=1, status=400, message="messages: bad shape")
    with pytest.raises(openai.BadRequestError, match="anthropic: messages: bad shape"):
        app.chat.completions.create(model="support", messages=MESSAGES)
    assert (len(anthropic.requests), len(gemini.requests)) == (1, 0)


def test_when_every_target_fails_the_app_gets_one_error_naming_every_attempt(fakes, app) -> None:
    anthropic, gemini = fakes
    anthropic.fail_next(count=2, status=529)
    gemini.fail_next(count=2, status=503)
    with pytest.raises(openai.InternalServerError) as raised:
        app.chat.completions.create(model="support", messages=MESSAGES)
    message = str(raised.value)
    assert "unillm tried 4 times" in message
    assert "anthropic/claude-sonnet-4-5 529" in message and "gemini/gemini-2.5-flash 503" in message
    assert len(anthropic.requests) + len(gemini.requests) == 4  # no extra SDK retries on top
    [call] = rows("select status, attempts from calls")
    assert call == {"status": "error", "attempts": 4}


def test_connection_failure_fails_over(fakes, app) -> None:
    anthropic, gemini = fakes
    anthropic.drop_next(count=2)
    answer = app.chat.completions.create(model="support", messages=MESSAGES)
    assert answer.choices[0].message.content and len(gemini.requests) == 1
    chain = rows("select provider, error_type from attempts order by attempt")
    assert [a["provider"] for a in chain] == ["anthropic", "anthropic", "gemini"]
    assert chain[0]["error_type"] == "connection"


def test_a_stream_that_fails_before_its_first_chunk_fails_over_invisibly(fakes, app) -> None:
    anthropic, gemini = fakes
    anthropic.fail_next(count=2, status=529)
    chunks = list(app.chat.completions.create(model="support", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    [call] = rows("select status, provider, attempts from calls")
    assert call == {"status": "ok", "provider": "gemini", "attempts": 3}


def test_a_target_without_a_key_is_skipped(log_path, monkeypatch) -> None:
    from unillm.testing import FakeGemini

    monkeypatch.chdir(log_path.parent.parent)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with FakeGemini() as gemini:
        unillm.patch(
            log=str(log_path),
            providers={"gemini": {"base_url": gemini.base_url, "api_key": "k"}},
            routes={"support": {"targets": ["anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash"]}},
        )
        try:
            client = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1")
            assert client.chat.completions.create(model="support", messages=MESSAGES).choices[0].message.content
            chain = rows("select provider, http_status from attempts order by attempt")
        finally:
            unillm.unpatch()
    assert chain[0] == {"provider": "anthropic", "http_status": 401}  # refused by unillm, never sent
    assert chain[-1] == {"provider": "gemini", "http_status": 200}


async def test_async_failover(fakes) -> None:
    anthropic, gemini = fakes
    anthropic.fail_next(count=2, status=500)
    client = openai.AsyncOpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=5)
    answer = await client.chat.completions.create(model="support", messages=MESSAGES)
    assert answer.choices[0].message.content
    assert (len(anthropic.requests), len(gemini.requests)) == (2, 1)


def test_route_table_errors_name_the_key(log_path) -> None:
    with pytest.raises(ConfigError, match=r"routes\.support\.strategy"):
        unillm.patch(log=str(log_path), routes={"support": {"targets": ["anthropic/x"], "strategy": "cheapest"}})
    with pytest.raises(ConfigError, match=r"routes\.support: 'nowhere/x'"):
        unillm.patch(log=str(log_path), routes={"support": {"targets": ["nowhere/x"]}})


def test_circuit_breaker_skips_a_failing_target_then_probes_it_again(log_path, monkeypatch) -> None:
    from unillm.routing.breaker import BREAKERS
    from unillm.testing import FakeAnthropic, FakeGemini

    BREAKERS.reset()
    monkeypatch.chdir(log_path.parent.parent)
    route = {
        "targets": ["anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash"],
        "retries": 1,
        "backoff": 0.0,
        "breaker_failures": 2,
        "breaker_cooldown": 0.3,
    }
    with FakeAnthropic() as anthropic, FakeGemini() as gemini:
        unillm.patch(
            log=str(log_path),
            providers={
                "anthropic": {"base_url": anthropic.base_url, "api_key": "k"},
                "gemini": {"base_url": gemini.base_url, "api_key": "k"},
            },
            routes={"breaker-route": route},
        )
        try:
            client = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1")
            anthropic.fail_next(count=2, status=503)
            client.chat.completions.create(model="breaker-route", messages=MESSAGES)  # opens the breaker
            assert BREAKERS.is_open("anthropic/claude-sonnet-4-5")
            client.chat.completions.create(model="breaker-route", messages=MESSAGES)  # skips anthropic
            assert (len(anthropic.requests), len(gemini.requests)) == (2, 2)
            time.sleep(0.35)
            client.chat.completions.create(model="breaker-route", messages=MESSAGES)  # probe succeeds
            assert (len(anthropic.requests), len(gemini.requests)) == (3, 2)
            assert not BREAKERS.is_open("anthropic/claude-sonnet-4-5")
        finally:
            unillm.unpatch()
            BREAKERS.reset()


def test_doctor_shows_routes_keys_and_whether_providers_answer(tmp_path, monkeypatch) -> None:
    import subprocess
    import sys

    from unillm.testing import FakeAnthropic, FakeGemini

    secret = "sk-ant-doctor-SECRET-123456"
    with FakeAnthropic() as anthropic, FakeGemini() as gemini:
        (tmp_path / "unillm.toml").write_text(
            f'log = "{tmp_path / "calls.duckdb"}"\n'
            "[routes.support]\n"
            'targets = ["anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash", "mistral/mistral-large-latest"]\n'
            "[providers.anthropic]\n"
            f'base_url = "{anthropic.base_url}"\n'
            'api_key = "${DOCTOR_TEST_KEY}"\n'
            "[providers.gemini]\n"
            f'base_url = "{gemini.base_url}"\n'
            'api_key = "gemini-key"\n'
        )
        env = {**os.environ, "DOCTOR_TEST_KEY": secret}
        env.pop("MISTRAL_API_KEY", None)
        out = subprocess.run(
            [sys.executable, "-m", "unillm", "doctor"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
        )
    assert out.returncode == 0, out.stderr
    lines = {line.split("│")[1].strip(): line for line in out.stdout.splitlines() if line.count("│") > 3}
    assert "set in config" in lines["anthropic"] and "ok" in lines["anthropic"]
    assert "ok" in lines["gemini"]
    assert "missing: set MISTRAL_API_KEY" in lines["mistral"]
    assert "anthropic/claude-sonnet-4-5 → gemini/gemini-2.5-flash" in out.stdout
    assert secret not in out.stdout and "gemini-key" not in out.stdout
