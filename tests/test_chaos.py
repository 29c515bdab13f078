"""The chaos suite of routing: a route whose first target is a simulated provider under a fault and
whose second target is a healthy one. Each scenario checks what the app sees (an answer, or the
SDK's own error type), what the call log holds (the call and its chain of attempts) and how long
it took (bounded by the route's time budget, and by the waits it had to honour).

The failing first target speaks one of the three wires (Anthropic, Gemini, OpenAI as `groq`);
the fallback is an OpenAI-wire fake as `deepseek`."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import TEST_KEY, rows

import unillm
from unillm import diagnostics
from unillm.testing import FakeAnthropic, FakeGemini, FakeOpenAI

WIRES = {
    "anthropic": ("anthropic/claude-sonnet-4-5", FakeAnthropic),
    "gemini": ("gemini/gemini-2.5-flash", FakeGemini),
    "groq": ("groq/llama-3.1-8b-instant", FakeOpenAI),
}
FALLBACK = "deepseek/deepseek-chat"
BUDGET = 5.0  # every route's time_budget (s) unless a test sets its own: no scenario may take longer
QUICK = 2.0  # what a scenario without waits or timeouts may take at most (s), far below BUDGET
HELLO = "Hello, where is my parcel?"
ANSWER = "Simulated answer about Hello, where is my parcel?"  # how every fake's answer to HELLO begins
# A stream event index that comes after at least one content chunk on every wire (Anthropic's
# first text delta follows message_start, content_block_start and a ping: it is event 3).
AFTER_FIRST_CONTENT = 4
# What the SDK raises while iterating a stream whose connection broke or stalled: openai 3.x
# wraps the HTTP library's error (APIConnectionError / APITimeoutError), 1.x may let it escape.
BROKEN_STREAM: tuple[type[BaseException], ...] = (openai.APIConnectionError, httpx.TransportError)
try:
    import httpx2  # the HTTP library of openai>=3

    BROKEN_STREAM += (httpx2.TransportError,)
except ImportError:
    pass


@dataclass
class Chaos:
    wire: str  # provider name of the failing first target
    target: str  # its provider/model
    primary: Any  # its fake
    fallback: Any  # the healthy FakeOpenAI behind deepseek
    log_path: Path

    def route(
        self,
        *,
        targets: list[Any] | None = None,
        primary_url: str | None = None,
        name: str = "support",
        **settings: Any,
    ) -> openai.OpenAI:
        """Patch unillm with route `name` (default: primary → fallback); return an app client."""
        route = {
            "targets": targets if targets is not None else [self.target, FALLBACK],
            "retries": 1,
            "backoff": 0.0,
            "time_budget": BUDGET,
            **settings,
        }
        unillm.patch(
            log=str(self.log_path),
            flush_interval=0.05,
            providers={
                self.wire: {"base_url": primary_url or self.primary.base_url, "api_key": "k"},
                "deepseek": {"base_url": self.fallback.base_url, "api_key": "k"},
            },
            routes={name: route},
        )
        # max_retries=5 on purpose: unillm owns a route's retries, the SDK must not add its own.
        return openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=5)

    def async_app(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=5)

    def dead_url(self) -> str:
        """The primary's base URL on a local port nobody listens on (connections are refused)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        return self.primary.base_url.replace(self.primary.url, f"http://127.0.0.1:{port}")

    def sent(self) -> tuple[int, int]:
        """(requests the primary received, requests the fallback received)."""
        return len(self.primary.requests), len(self.fallback.requests)


@pytest.fixture(scope="module", autouse=True)
def _warm_fakes() -> None:
    """One plain request (streamed and not) to each kind of fake: their first answer imports the
    providers' SDK types (up to a second), which would eat the 0.3 s per-target timeouts below."""
    hello = [{"role": "user", "content": "hi"}]
    with FakeAnthropic() as anthropic, FakeGemini() as gemini, FakeOpenAI() as openai_fake, httpx.Client() as http:
        for stream in (False, True):
            http.post(
                f"{anthropic.url}/v1/messages",
                headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
                json={"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": hello, "stream": stream},
            ).raise_for_status()
            method = "streamGenerateContent?alt=sse" if stream else "generateContent"
            http.post(
                f"{gemini.url}/v1beta/models/gemini-2.5-flash:{method}",
                headers={"x-goog-api-key": "k"},
                json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
            ).raise_for_status()
            http.post(
                f"{openai_fake.base_url}/chat/completions",
                headers={"authorization": "Bearer k"},
                json={"model": "llama-3.1-8b-instant", "messages": hello, "stream": stream},
            ).raise_for_status()


@pytest.fixture(params=list(WIRES))
def chaos(request: pytest.FixtureRequest, log_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Chaos]:
    wire = request.param
    target, fake_class = WIRES[wire]
    monkeypatch.chdir(log_path.parent.parent)  # no stray unillm.toml from the repo
    with fake_class() as primary, FakeOpenAI() as fallback:
        try:
            yield Chaos(wire, target, primary, fallback, log_path)
        finally:
            unillm.unpatch()
            diagnostics.reset()


# -- helpers -------------------------------------------------------------------------------------


def ask(app: openai.OpenAI, text: str = HELLO, model: str = "support", **kwargs: Any) -> Any:
    return app.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], **kwargs)


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def answer_of(app: openai.OpenAI, stream: bool, text: str = HELLO) -> str:
    """The answer's text, read to its end (streams: with finish_reason stop)."""
    if not stream:
        answer = ask(app, text)
        assert answer.choices[0].finish_reason == "stop"
        return answer.choices[0].message.content
    chunks = list(ask(app, text, stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    return text_of(chunks)


def is_a_beginning(text: str) -> bool:
    """`text` is a non-empty beginning of an answer to HELLO (what the app had before an error)."""
    return bool(text) and text[: len(ANSWER)] == ANSWER[: len(text)]


def read_until_error(app: openai.OpenAI, error: Any) -> str:
    """Iterate a streamed answer that breaks: the text the app had before `error` was raised."""
    received: list[Any] = []
    with pytest.raises(error):
        for chunk in ask(app, stream=True):
            received.append(chunk)
    return text_of(received)


def the_call() -> dict[str, Any]:
    [call] = rows("select status, provider, attempts, http_status, error_type, route_reason from calls")
    return call


def chain() -> list[dict[str, Any]]:
    return rows("select provider, status, http_status, error_type, reason, wait_ms from attempts order by attempt")


def links(attempts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(provider, http_status, reason) of each attempt."""
    return [(a["provider"], a["http_status"], a["reason"]) for a in attempts]


class Clock:
    elapsed: float

    def __enter__(self) -> Clock:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.perf_counter() - self.started


def assert_served(call: dict[str, Any], provider: str, attempts: int, status: str = "ok") -> None:
    assert (call["status"], call["provider"], call["attempts"]) == (status, provider, attempts), call


def assert_failed_over(chaos: Chaos, attempts: list[dict[str, Any]], tries: int = 2) -> None:
    """`tries` failed attempts on the first target (first, retry, ...), then the fallback's answer."""
    assert [a["provider"] for a in attempts] == [chaos.wire] * tries + ["deepseek"]
    assert [a["reason"] for a in attempts] == ["first"] + ["retry"] * (tries - 1) + ["failover"]
    assert all(a["status"] != "ok" and a["error_type"] for a in attempts[:-1]), attempts
    assert (attempts[-1]["status"], attempts[-1]["http_status"], attempts[-1]["error_type"]) == ("ok", 200, None)
    assert [a["wait_ms"] for a in attempts] == [0.0] * (tries + 1)  # backoff 0, no Retry-After


# -- 1. rate limited, with Retry-After ---------------------------------------------------------------


def test_429_with_retry_after_is_retried_on_the_same_target_after_the_wait(chaos: Chaos) -> None:
    # Gemini sends no Retry-After header: its wait is a google.rpc.RetryInfo detail in the body.
    app = chaos.route()
    chaos.primary.fail_next(count=1, status=429, retry_after=0.2)
    with Clock() as clock:
        answer = ask(app)
    assert answer.choices[0].message.content.startswith(ANSWER)
    assert 0.2 <= clock.elapsed < BUDGET
    assert chaos.sent() == (2, 0)
    assert_served(the_call(), chaos.wire, 2)
    first, retry = chain()
    assert links([first, retry]) == [(chaos.wire, 429, "first"), (chaos.wire, 200, "retry")]
    assert first["status"] == "error" and first["error_type"]
    assert retry["wait_ms"] == pytest.approx(200, abs=1) and retry["status"] == "ok"


def test_retry_after_is_capped_and_the_next_target_takes_over_at_once(chaos: Chaos) -> None:
    app = chaos.route(retry_after_cap=0.1)
    chaos.primary.fail_next(count=2, status=429, retry_after=30)
    with Clock() as clock:
        answer = ask(app)
    assert answer.choices[0].message.content.startswith(ANSWER)
    assert 0.1 <= clock.elapsed < QUICK  # not 30 s, and no wait before the other provider
    assert_served(the_call(), "deepseek", 3)
    attempts = chain()
    assert links(attempts) == [(chaos.wire, 429, "first"), (chaos.wire, 429, "retry"), ("deepseek", 200, "failover")]
    assert [a["wait_ms"] for a in attempts] == pytest.approx([0, 100, 0], abs=1)


# -- 2. server errors: retry, then failover --------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 529])
def test_server_errors_are_retried_then_failed_over(chaos: Chaos, status: int) -> None:
    app = chaos.route()
    chaos.primary.fail_next(count=2, status=status)
    with Clock() as clock:
        answer = ask(app)
    assert answer.choices[0].message.content.startswith(ANSWER)
    assert clock.elapsed < QUICK
    assert chaos.sent() == (2, 1)
    assert_served(the_call(), "deepseek", 3)
    attempts = chain()
    assert_failed_over(chaos, attempts)
    assert [a["http_status"] for a in attempts[:2]] == [status, status]


# -- 3. connection refused -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_connection_refused_fails_over(chaos: Chaos, stream: bool) -> None:
    app = chaos.route(primary_url=chaos.dead_url())
    with Clock() as clock:
        text = answer_of(app, stream)
    assert text.startswith(ANSWER)
    assert clock.elapsed < QUICK
    assert chaos.sent() == (0, 1)
    assert_served(the_call(), "deepseek", 3)
    attempts = chain()
    assert_failed_over(chaos, attempts)
    assert [(a["http_status"], a["error_type"]) for a in attempts[:2]] == [(None, "connection")] * 2


# -- 4. connection reset mid-body ------------------------------------------------------------------


def test_a_reset_mid_body_fails_over(chaos: Chaos) -> None:
    app = chaos.route()
    chaos.primary.reset_next(count=2)  # a 200 head and half the JSON body, then RST
    with Clock() as clock:
        answer = ask(app)
    assert answer.choices[0].message.content.startswith(ANSWER)
    assert clock.elapsed < QUICK
    assert chaos.sent() == (2, 1)
    assert_served(the_call(), "deepseek", 3)
    attempts = chain()
    assert_failed_over(chaos, attempts)
    assert [(a["http_status"], a["error_type"]) for a in attempts[:2]] == [(None, "connection")] * 2


def test_a_stream_reset_before_its_first_chunk_fails_over_invisibly(chaos: Chaos) -> None:
    app = chaos.route()
    chaos.primary.reset_next(count=2, after_bytes=10)
    with Clock() as clock:
        text = answer_of(app, stream=True)
    assert text.startswith(ANSWER)
    assert clock.elapsed < QUICK
    assert chaos.sent() == (2, 1)
    assert_served(the_call(), "deepseek", 3)
    assert_failed_over(chaos, chain())


def test_a_stream_reset_after_its_first_chunk_reaches_the_app(chaos: Chaos) -> None:
    app = chaos.route()
    chaos.primary.reset_next(count=1)  # about half the stream's bytes: past its first content chunk
    with Clock() as clock:
        text = read_until_error(app, BROKEN_STREAM)
    assert is_a_beginning(text)  # the first chunks, then the error
    assert clock.elapsed < QUICK
    assert chaos.sent() == (1, 0)  # too late to fail over: the app has part of the answer
    assert_served(the_call(), chaos.wire, 1, status="interrupted")
    [attempt] = chain()
    assert (attempt["status"], attempt["http_status"], attempt["reason"]) == ("interrupted", 200, "first")


# -- 5. slow first token -------------------------------------------------------------------------


def test_a_slow_first_token_times_out_and_fails_over(chaos: Chaos) -> None:
    app = chaos.route(targets=[{"target": chaos.target, "timeout": 0.3}, FALLBACK])
    chaos.primary.slow_first_token_next(seconds=3.0, count=2)
    with Clock() as clock:
        text = answer_of(app, stream=True)
    assert text.startswith(ANSWER)
    assert 0.6 <= clock.elapsed < 1.5  # two tries of 0.3 s each, nowhere near the 3 s stall
    assert chaos.sent() == (2, 1)
    assert_served(the_call(), "deepseek", 3)
    assert_failed_over(chaos, chain())


def test_a_slow_first_token_is_logged_as_a_timeout(chaos: Chaos) -> None:
    app = chaos.route(targets=[{"target": chaos.target, "timeout": 0.3}, FALLBACK], retries=0)
    chaos.primary.slow_first_token_next(seconds=3.0)
    answer_of(app, stream=True)
    first, _ = chain()
    assert (first["status"], first["http_status"], first["error_type"]) == ("error", 200, "timeout")


# -- 6. stall mid-stream -------------------------------------------------------------------------


def test_a_stall_mid_stream_reaches_the_app_after_the_first_chunks(chaos: Chaos) -> None:
    app = chaos.route(targets=[{"target": chaos.target, "timeout": 0.3}, FALLBACK])
    chaos.primary.stall_stream_next(after_chunks=AFTER_FIRST_CONTENT, seconds=3.0)
    with Clock() as clock:
        text = read_until_error(app, BROKEN_STREAM)
    assert is_a_beginning(text)
    assert 0.3 <= clock.elapsed < 1.5
    assert chaos.sent() == (1, 0)
    assert_served(the_call(), chaos.wire, 1, status="interrupted")
    [attempt] = chain()
    assert (attempt["status"], attempt["http_status"]) == ("interrupted", 200)


# -- 7. an error event inside a 200 stream -----------------------------------------------------------


def test_an_error_event_before_the_first_token_fails_over_invisibly(chaos: Chaos) -> None:
    app = chaos.route()
    chaos.primary.fail_stream_next(after_chunks=0, count=2)
    with Clock() as clock:
        text = answer_of(app, stream=True)
    assert text.startswith(ANSWER)
    assert clock.elapsed < QUICK
    assert chaos.sent() == (2, 1)
    assert_served(the_call(), "deepseek", 3)
    attempts = chain()
    assert_failed_over(chaos, attempts)
    assert [a["http_status"] for a in attempts[:2]] == [200, 200]  # the error came inside the stream


def test_an_error_event_after_the_first_token_reaches_the_app(chaos: Chaos) -> None:
    app = chaos.route()
    chaos.primary.fail_stream_next(after_chunks=AFTER_FIRST_CONTENT, message="overloaded mid-stream")
    received: list[Any] = []
    with Clock() as clock, pytest.raises(openai.APIError) as raised:
        for chunk in ask(app, stream=True):
            received.append(chunk)
    assert is_a_beginning(text_of(received))
    assert "overloaded mid-stream" in str(raised.value)
    assert clock.elapsed < QUICK
    assert chaos.sent() == (1, 0)
    call = the_call()
    assert_served(call, chaos.wire, 1, status="interrupted")
    [attempt] = chain()
    assert (attempt["status"], attempt["http_status"]) == ("interrupted", 200) and attempt["error_type"]
    assert call["error_type"] == attempt["error_type"]


# -- 8. malformed JSON ---------------------------------------------------------------------------


def _malformed_answer_fails_over(chaos: Chaos, stream: bool) -> list[dict[str, Any]]:
    app = chaos.route()
    chaos.primary.malformed_next(count=2)
    with Clock() as clock:
        text = answer_of(app, stream)
    assert text.startswith(ANSWER)
    assert clock.elapsed < QUICK
    assert chaos.sent() == (2, 1)
    assert_served(the_call(), "deepseek", 3)
    attempts = chain()
    assert_failed_over(chaos, attempts)
    return attempts


def test_a_malformed_json_answer_fails_over(chaos: Chaos) -> None:
    attempts = _malformed_answer_fails_over(chaos, stream=False)
    assert [(a["status"], a["http_status"], a["error_type"]) for a in attempts[:2]] == [
        ("error", 502, "bad_response")
    ] * 2


@pytest.mark.parametrize("chaos", list(WIRES), indirect=True)
def test_a_malformed_stream_event_fails_over(chaos: Chaos) -> None:
    attempts = _malformed_answer_fails_over(chaos, stream=True)
    assert [(a["status"], a["http_status"], a["error_type"]) for a in attempts[:2]] == [
        ("error", 200, "bad_response")
    ] * 2


# -- 9. wrong content type (a proxy's HTML page) ------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_html_page_in_place_of_the_answer_fails_over(chaos: Chaos, stream: bool) -> None:
    app = chaos.route()
    chaos.primary.wrong_content_type_next(count=2)
    with Clock() as clock:
        text = answer_of(app, stream)
    assert text.startswith(ANSWER)
    assert clock.elapsed < QUICK
    assert chaos.sent() == (2, 1)
    assert_served(the_call(), "deepseek", 3)
    attempts = chain()
    assert_failed_over(chaos, attempts)
    assert [(a["http_status"], a["error_type"]) for a in attempts[:2]] == [(502, "bad_response")] * 2


@pytest.mark.parametrize(
    ("stream", "expected"),
    [(False, "not JSON"), (True, "not text/event-stream")],
    ids=["json", "stream"],
)
def test_an_html_page_from_the_only_target_is_a_502_saying_so(chaos: Chaos, stream: bool, expected: str) -> None:
    app = chaos.route(targets=[chaos.target], name="solo")
    chaos.primary.wrong_content_type_next(count=2)
    with Clock() as clock, pytest.raises(openai.InternalServerError) as raised:
        ask(app, model="solo", stream=stream)
    assert raised.value.status_code == 502
    message = str(raised.value)
    assert f"unillm: {chaos.target} answered" in message
    assert f"with content-type text/html; charset=utf-8, {expected}" in message
    assert f"(unillm tried 2 times: {chaos.target} 502, {chaos.target} 502)" in message
    assert clock.elapsed < QUICK
    assert chaos.sent() == (2, 0)  # the SDK did not retry on top
    call = the_call()
    assert_served(call, chaos.wire, 2, status="error")
    assert (call["http_status"], call["error_type"]) == (502, "InternalServerError")
    assert links(chain()) == [(chaos.wire, 502, "first"), (chaos.wire, 502, "retry")]


# -- 10. context window --------------------------------------------------------------------------


def test_a_context_window_error_fails_over_to_the_next_target(chaos: Chaos) -> None:
    chaos.primary.context_window = 300  # the provider knows; the route's config does not
    app = chaos.route()
    with Clock() as clock:
        answer = ask(app, "word " * 1500)
    assert answer.choices[0].message.content.startswith("Simulated answer about word")
    assert clock.elapsed < QUICK
    assert chaos.sent() == (1, 1)  # never retried on the same target: it would not fit better
    assert_served(the_call(), "deepseek", 2)
    attempts = chain()
    assert links(attempts) == [(chaos.wire, 400, "first"), ("deepseek", 200, "failover")]
    assert attempts[0]["status"] == "error" and attempts[0]["error_type"]


# -- 11. every target fails ------------------------------------------------------------------------


def test_when_every_target_fails_one_error_names_every_attempt(chaos: Chaos) -> None:
    app = chaos.route()
    chaos.primary.fail_next(count=2, status=503)
    chaos.fallback.fail_next(count=2, status=500)
    with Clock() as clock, pytest.raises(openai.InternalServerError) as raised:
        ask(app)
    assert clock.elapsed < QUICK
    message = str(raised.value)
    assert f"(unillm tried 4 times: {chaos.target} 503, {chaos.target} 503, {FALLBACK} 500, {FALLBACK} 500)" in message
    assert chaos.sent() == (2, 2)
    call = the_call()
    assert_served(call, "deepseek", 4, status="error")
    assert (call["http_status"], call["error_type"]) == (500, "InternalServerError")
    assert links(chain()) == [
        (chaos.wire, 503, "first"),
        (chaos.wire, 503, "retry"),
        ("deepseek", 500, "failover"),
        ("deepseek", 500, "retry"),
    ]


def test_the_time_budget_bounds_a_call_whose_targets_keep_asking_to_wait(chaos: Chaos) -> None:
    app = chaos.route(retries=5, time_budget=0.6)
    chaos.primary.fail_next(count=100, status=503, retry_after=0.25)
    chaos.fallback.fail_next(count=100, status=503, retry_after=0.25)
    with Clock() as clock, pytest.raises(openai.InternalServerError) as raised:
        ask(app)
    # Nothing starts once 0.6 s have passed since the first attempt; the SDK's own work comes on top.
    [span] = rows("select date_diff('millisecond', min(started_at), max(started_at)) as ms from attempts")
    assert span["ms"] < 600
    assert clock.elapsed < 0.6 + 0.5  # without the budget: 2 targets x 5 retries x 0.25 s
    message = str(raised.value)
    assert "; time budget of 0.6 s spent)" in message
    tries = sum(chaos.sent())
    assert f"unillm tried {tries} times" in message
    call = the_call()
    assert (call["status"], call["attempts"]) == ("error", tries)
    assert "time budget of 0.6 s spent" in call["route_reason"]
    assert len(chain()) == tries


def test_the_time_budget_bounds_a_stalled_target(chaos: Chaos) -> None:
    app = chaos.route(time_budget=0.5)  # no per-target timeout: the budget caps the attempt's own
    chaos.primary.stall_next(seconds=3.0)
    with Clock() as clock, pytest.raises(openai.APITimeoutError):
        ask(app)
    assert 0.5 <= clock.elapsed < 0.5 + 0.5
    assert chaos.sent() == (1, 0)  # nothing left of the budget for a retry or the fallback
    call = the_call()
    assert (call["status"], call["attempts"], call["error_type"]) == ("error", 1, "APITimeoutError")
    [attempt] = chain()
    assert (attempt["provider"], attempt["http_status"], attempt["error_type"]) == (chaos.wire, None, "timeout")


def test_connection_errors_on_every_target_end_in_one_502_naming_every_attempt(chaos: Chaos) -> None:
    app = chaos.route(primary_url=chaos.dead_url())
    chaos.fallback.drop_next(count=2)
    with Clock() as clock, pytest.raises(openai.InternalServerError) as raised:
        ask(app)
    assert raised.value.status_code == 502
    message = str(raised.value)
    assert "unillm: no target answered, the last failed with RemoteProtocolError" in message
    assert (
        f"(unillm tried 4 times: {chaos.target} ConnectError, {chaos.target} ConnectError, "
        f"{FALLBACK} RemoteProtocolError, {FALLBACK} RemoteProtocolError)"
    ) in message
    assert clock.elapsed < QUICK
    assert chaos.sent() == (0, 2)
    call = the_call()
    assert (call["status"], call["attempts"], call["error_type"]) == ("error", 4, "InternalServerError")
    assert [(a["provider"], a["reason"], a["http_status"], a["error_type"]) for a in chain()] == [
        (chaos.wire, "first", None, "connection"),
        (chaos.wire, "retry", None, "connection"),
        ("deepseek", "failover", None, "connection"),
        ("deepseek", "retry", None, "connection"),
    ]


def test_timeouts_on_every_target_end_in_one_504_naming_every_attempt(chaos: Chaos) -> None:
    targets = [{"target": chaos.target, "timeout": 0.3}, {"target": FALLBACK, "timeout": 0.3}]
    app = chaos.route(targets=targets, retries=0)
    chaos.primary.stall_next(seconds=3.0)
    chaos.fallback.stall_next(seconds=3.0)
    with Clock() as clock, pytest.raises(openai.InternalServerError) as raised:
        ask(app)
    assert raised.value.status_code == 504
    assert f"(unillm tried 2 times: {chaos.target} ReadTimeout, {FALLBACK} ReadTimeout)" in str(raised.value)
    assert 0.6 <= clock.elapsed < 1.5  # two targets' timeouts, not their 3 s stalls
    assert chaos.sent() == (1, 1)
    call = the_call()
    assert (call["status"], call["attempts"], call["error_type"]) == ("error", 2, "InternalServerError")
    assert [(a["provider"], a["reason"], a["error_type"]) for a in chain()] == [
        (chaos.wire, "first", "timeout"),
        ("deepseek", "failover", "timeout"),
    ]


def test_streams_failing_on_every_target_end_in_one_error_naming_every_attempt(chaos: Chaos) -> None:
    app = chaos.route()
    chaos.primary.fail_stream_next(after_chunks=0, count=2)
    chaos.fallback.fail_stream_next(after_chunks=0, count=2, message="deepseek is down")
    received: list[Any] = []
    with Clock() as clock, pytest.raises(openai.APIError) as raised:
        for chunk in ask(app, stream=True):
            received.append(chunk)
    assert text_of(received) == ""
    message = str(raised.value)
    assert "deepseek is down" in message
    assert f"(unillm tried 4 times: {chaos.target} 200, {chaos.target} 200, {FALLBACK} 200, {FALLBACK} 200)" in message
    assert clock.elapsed < QUICK
    assert chaos.sent() == (2, 2)
    call = the_call()
    # Nothing of an answer reached the app: 'interrupted' today (an error event ended each stream).
    assert (call["provider"], call["attempts"]) == ("deepseek", 4) and call["status"] in ("error", "interrupted")
    attempts = chain()
    assert links(attempts) == [
        (chaos.wire, 200, "first"),
        (chaos.wire, 200, "retry"),
        ("deepseek", 200, "failover"),
        ("deepseek", 200, "retry"),
    ]
    assert all(a["status"] != "ok" and a["error_type"] for a in attempts), attempts


# -- async: the same failovers through openai.AsyncOpenAI ------------------------------------------------

FAULTS: dict[str, tuple[bool, Callable[[Any], None]]] = {  # name: (streamed, inject on the fake)
    "503": (False, lambda fake: fake.fail_next(count=2, status=503)),
    "529-stream": (True, lambda fake: fake.fail_next(count=2, status=529)),
    "drop": (False, lambda fake: fake.drop_next(count=2)),
    "reset": (False, lambda fake: fake.reset_next(count=2)),
    "reset-stream": (True, lambda fake: fake.reset_next(count=2, after_bytes=10)),
    "slow-first-token": (True, lambda fake: fake.slow_first_token_next(seconds=3.0, count=2)),
    "error-event": (True, lambda fake: fake.fail_stream_next(after_chunks=0, count=2)),
    "malformed": (False, lambda fake: fake.malformed_next(count=2)),
    "html": (False, lambda fake: fake.wrong_content_type_next(count=2)),
    "html-stream": (True, lambda fake: fake.wrong_content_type_next(count=2)),
}


# Each fault on one wire, in turn: the async path differs from the sync one in dispatch, not per wire.
ASYNC_CASES = [(wire, fault) for fault, wire in zip(FAULTS, itertools.cycle(WIRES))]


@pytest.mark.parametrize(("chaos", "fault"), ASYNC_CASES, indirect=["chaos"])
async def test_async_calls_fail_over_alike(chaos: Chaos, fault: str) -> None:
    streamed, inject = FAULTS[fault]
    chaos.route(targets=[{"target": chaos.target, "timeout": 0.3}, FALLBACK])
    inject(chaos.primary)
    app = chaos.async_app()
    messages = [{"role": "user", "content": HELLO}]
    with Clock() as clock:
        if streamed:
            stream = await app.chat.completions.create(model="support", messages=messages, stream=True)
            text = text_of([chunk async for chunk in stream])
        else:
            answer = await app.chat.completions.create(model="support", messages=messages)
            text = answer.choices[0].message.content
    await app.close()
    assert text.startswith(ANSWER)
    assert clock.elapsed < QUICK
    assert chaos.sent()[1] == 1
    assert_served(the_call(), "deepseek", 3)
    assert_failed_over(chaos, chain())


async def test_async_calls_end_in_the_same_one_error_when_every_target_fails(chaos: Chaos) -> None:
    chaos.route(primary_url=chaos.dead_url())
    chaos.fallback.drop_next(count=2)
    app = chaos.async_app()
    with Clock() as clock, pytest.raises(openai.InternalServerError) as raised:
        await app.chat.completions.create(model="support", messages=[{"role": "user", "content": HELLO}])
    await app.close()
    assert raised.value.status_code == 502
    assert f"(unillm tried 4 times: {chaos.target} ConnectError, {chaos.target} ConnectError, " in str(raised.value)
    assert clock.elapsed < QUICK
    assert chaos.sent() == (0, 2)
    assert_served(the_call(), "deepseek", 4, status="error")
    assert len(chain()) == 4


# -- 12, 13. concurrency under a flapping first target -----------------------------------------------


def _outcome(call: Callable[[int], str], i: int) -> str | BaseException:
    try:
        return call(i)
    except Exception as exc:  # noqa: BLE001 - sorted by _every_call_accounted_for
        return exc


# Under load every call waits for the CPU too: 200 calls at once take seconds with openai 1.x on a
# 2-core machine, so the load tests give their route a budget that measures unillm, not the machine.
LOAD_BUDGET = 30.0


def _every_call_accounted_for(chaos: Chaos, outcomes: dict[int, str | BaseException]) -> None:
    """Each call: its own answer or one openai.APIError; one calls row each; one attempts row per
    request the fakes received."""
    strays = [o for o in outcomes.values() if not isinstance(o, (str, openai.APIError))]
    assert not strays, strays[:3]
    wrong = {
        i: o for i, o in outcomes.items() if isinstance(o, str) and not o.startswith(f"Simulated answer about {i}:")
    }
    assert not wrong, list(wrong.items())[:3]
    answers = sum(isinstance(o, str) for o in outcomes.values())
    by_status = {r["status"]: r["n"] for r in rows("select status, count(*) as n from calls group by status")}
    assert sum(by_status.values()) == len(outcomes), by_status
    assert by_status.get("ok", 0) == answers, by_status
    [calls] = rows("select count(distinct call_id) as n, sum(attempts) as attempts from calls")
    [logged] = rows("select count(*) as n, count(distinct call_id) as calls from attempts")
    assert calls["n"] == logged["calls"] == len(outcomes)
    assert logged["n"] == calls["attempts"] == sum(chaos.sent())  # every attempt recorded, once
    assert chaos.sent()[0] > 0 and chaos.sent()[1] > 0
    [slowest] = rows("select max(duration_ms) as ms from calls")
    assert slowest["ms"] < LOAD_BUDGET * 1000  # each call within its route's time budget


# The wires whose answers unillm translates (the threads below take all three): 200 calls at once
# cost up to 4 s per wire with openai 1.x on a small machine.
@pytest.mark.parametrize("chaos", ["anthropic", "gemini"], indirect=True)
async def test_200_concurrent_async_calls_through_a_flapping_target(chaos: Chaos) -> None:
    chaos.route(time_budget=LOAD_BUDGET)
    chaos.primary.error_rate = 0.5  # a 429, 500 or 503 for half the requests (seeded)
    chaos.fallback.error_rate = 0.1  # and now and then on the fallback too: some calls fail
    app = chaos.async_app()

    async def one(i: int) -> str:
        messages = [{"role": "user", "content": f"{i}: where is my parcel?"}]
        if i % 4 == 0:
            stream = await app.chat.completions.create(model="support", messages=messages, stream=True)
            return text_of([chunk async for chunk in stream])
        answer = await app.chat.completions.create(model="support", messages=messages)
        return answer.choices[0].message.content

    async def guarded(i: int) -> str | BaseException:
        try:
            return await one(i)
        except Exception as exc:  # noqa: BLE001 - sorted by _every_call_accounted_for
            return exc

    with Clock() as clock:
        outcomes = await asyncio.gather(*(guarded(i) for i in range(200)))
    await app.close()
    assert clock.elapsed < LOAD_BUDGET  # all at once: about as long as the slowest call
    _every_call_accounted_for(chaos, dict(enumerate(outcomes)))


def test_8_threads_of_25_calls_while_the_first_target_flaps(chaos: Chaos) -> None:
    app = chaos.route(time_budget=LOAD_BUDGET)
    chaos.fallback.error_rate = 0.1
    stop = threading.Event()

    def flap() -> None:  # failing, healthy, failing, ... every 5 ms
        while not stop.is_set():
            chaos.primary.error_rate = 1.0 if chaos.primary.error_rate == 0.0 else 0.0
            stop.wait(0.005)

    outcomes: dict[int, str | BaseException] = {}
    lock = threading.Lock()

    def one(i: int) -> str:
        text = f"{i}: where is my parcel?"
        if i % 5 == 0:
            return text_of(list(ask(app, text, stream=True)))
        return ask(app, text).choices[0].message.content

    def worker(n: int) -> None:
        for i in range(n * 25, n * 25 + 25):
            result = _outcome(one, i)
            with lock:
                outcomes[i] = result

    flapper = threading.Thread(target=flap, daemon=True)
    workers = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    flapper.start()
    with Clock() as clock:
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(timeout=LOAD_BUDGET * 2)
    stop.set()
    flapper.join()
    assert not any(thread.is_alive() for thread in workers)
    assert clock.elapsed < LOAD_BUDGET
    assert len(outcomes) == 200
    _every_call_accounted_for(chaos, outcomes)
