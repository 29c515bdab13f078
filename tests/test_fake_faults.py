"""Chaos faults of the simulated providers, seen through real clients (``httpx`` and the SDKs).

Runs against openai 1.x (httpx) and 3.x (httpx2) alike. The two differ in one way that matters
here: a transport error in the middle of a stream escapes openai 1.x as the raw ``httpx`` error,
while openai 3.x wraps it in ``openai.APIConnectionError`` / ``openai.APITimeoutError``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from unillm.testing import FakeAnthropic, FakeOpenAI, Fault

MODEL = "gpt-4o-mini"
USER: Any = [{"role": "user", "content": "Tell me about the weather in Paris"}]
AUTH = {"authorization": "Bearer sk-test"}
CHAT = {"model": MODEL, "messages": USER}
# A reset, as each SDK generation reports it in the middle of a stream (see the module docstring).
RESET_ERRORS = (openai.APIConnectionError, httpx.ReadError)
TIMEOUT_ERRORS = (openai.APITimeoutError, httpx.ReadTimeout)


# `fake` (a FakeOpenAI) and `client` (the SDK on it, no retries) come from conftest.py.


@pytest.fixture
def http(fake: FakeOpenAI) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, headers=AUTH, timeout=10) as c:
        yield c


def stream_lines(http: httpx.Client, into: list[str] | None = None) -> list[str]:
    """The non-empty SSE lines of a streamed chat completion, kept in ``into`` if the stream breaks."""
    lines = [] if into is None else into
    with http.stream("POST", "/chat/completions", json={**CHAT, "stream": True}) as resp:
        assert resp.status_code == 200
        lines.extend(line for line in resp.iter_lines() if line)
    return lines


# --- reset mid-body -----------------------------------------------------------------------


def test_reset_next_json_body_is_cut(fake: FakeOpenAI, http: httpx.Client) -> None:
    fake.reset_next(after_bytes=40)
    received = bytearray()
    with http.stream("POST", "/chat/completions", json=CHAT) as resp:
        # The head promises the whole body...
        assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
        assert int(resp.headers["content-length"]) > 40
        # ...which stops after 40 bytes with a TCP reset (not a clean close).
        with pytest.raises(httpx.ReadError):
            for chunk in resp.iter_raw():
                received += chunk
    assert bytes(received).startswith(b'{"id":"chatcmpl-') and len(received) == 40
    assert http.post("/chat/completions", json=CHAT).json()["choices"]  # only the next one


def test_reset_next_sdk(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.reset_next()
    with pytest.raises(openai.APIConnectionError) as exc:
        client.chat.completions.create(model=MODEL, messages=USER)
    assert not isinstance(exc.value, openai.APITimeoutError)

    full = list(client.chat.completions.create(model=MODEL, messages=USER, stream=True))
    fake.reset_next()
    received: list[Any] = []
    with pytest.raises(RESET_ERRORS):
        received.extend(client.chat.completions.create(model=MODEL, messages=USER, stream=True))
    assert 0 < len(received) < len(full)  # about half the chunks, never the finish_reason one
    assert all(c.choices[0].finish_reason is None for c in received)
    assert client.chat.completions.create(model=MODEL, messages=USER).choices


def test_reset_next_stream_never_sends_done(fake: FakeOpenAI, http: httpx.Client) -> None:
    fake.reset_next(after_bytes=10**6)  # more than the stream: still cut before the last event
    lines: list[str] = []
    with pytest.raises(httpx.ReadError):
        stream_lines(http, lines)
    assert lines and "data: [DONE]" not in lines
    assert all(json.loads(line.removeprefix("data: ")) for line in lines)  # whole events only

    fake.reset_next(after_bytes=30)  # a cut inside the first event
    lines.clear()
    with pytest.raises(httpx.ReadError):
        stream_lines(http, lines)
    assert lines == []  # the SSE line never ended


# --- slow first token ----------------------------------------------------------------------


def test_slow_first_token_next_stream(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.slow_first_token_next(0.3)
    assert client.chat.completions.create(model=MODEL, messages=USER).choices  # passed over
    assert fake.faults.pending == 1
    t0 = time.perf_counter()
    stream = client.chat.completions.create(model=MODEL, messages=USER, stream=True)
    head_at = time.perf_counter() - t0  # create() returns once the head arrived
    stamps = [time.perf_counter() - t0 for _ in stream]
    assert head_at < 0.25 <= 0.3 <= stamps[0]
    assert stamps[-1] - stamps[0] < 0.2  # the rest flows normally
    assert fake.faults.pending == 0


def test_slow_first_token_header_delays_json_body(http: httpx.Client) -> None:
    t0 = time.perf_counter()
    with http.stream("POST", "/chat/completions", json=CHAT, headers={"x-fake-fault": "slow_first_token=0.3"}) as r:
        head_at = time.perf_counter() - t0
        body = r.read()
    assert head_at < 0.25 and time.perf_counter() - t0 >= 0.3
    assert json.loads(body)["choices"]


# --- stream stall ----------------------------------------------------------------------------


def test_stall_stream_next(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    fake.stall_stream_next(after_chunks=2, seconds=0.3)
    assert client.chat.completions.create(model=MODEL, messages=USER).choices  # passed over
    t0 = time.perf_counter()
    stamps = [time.perf_counter() - t0 for _ in client.chat.completions.create(model=MODEL, messages=USER, stream=True)]
    assert len(stamps) > 3
    assert stamps[1] < 0.2 and stamps[2] - stamps[1] >= 0.25  # 2 chunks, the stall, the rest

    # A read timeout shorter than the stall is what a client sees of it.
    fake.stall_stream_next(after_chunks=2, seconds=0.3)
    received: list[Any] = []
    with pytest.raises(TIMEOUT_ERRORS):
        received.extend(
            client.with_options(timeout=0.1).chat.completions.create(model=MODEL, messages=USER, stream=True)
        )
    assert len(received) == 2


def test_close_wakes_stalled_stream() -> None:
    fake = FakeOpenAI()
    fake.stall_stream_next(after_chunks=1, seconds=30)
    client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0, timeout=30)
    received: list[Any] = []
    errors: list[Exception] = []

    def consume() -> None:
        try:
            received.extend(client.chat.completions.create(model=MODEL, messages=USER, stream=True))
        except Exception as e:  # noqa: BLE001 - recorded for the assertion below
            errors.append(e)

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    fake.close()  # must wake the 30 s stall, not wait for it
    t.join(10)
    assert not t.is_alive() and time.perf_counter() - t0 < 5
    assert len(received) == 1  # the stream ended early: an error, or an end without finish_reason
    assert errors or received[-1].choices[0].finish_reason is None


# --- malformed bodies ------------------------------------------------------------------------


def test_malformed_next_json(fake: FakeOpenAI, client: openai.OpenAI, http: httpx.Client) -> None:
    fake.malformed_next()
    resp = http.post("/chat/completions", json=CHAT)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    assert resp.content.startswith(b'{"id":"chatcmpl-')
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.content)
    # A complete HTTP message: the keep-alive connection goes on serving.
    assert http.post("/chat/completions", json=CHAT).json()["choices"]

    # The SDK lets the decoder's error through: not an openai.APIError.
    fake.malformed_next()
    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model=MODEL, messages=USER)


def test_malformed_next_stream(fake: FakeOpenAI, client: openai.OpenAI, http: httpx.Client) -> None:
    fake.malformed_next()
    lines = stream_lines(http)
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[0].removeprefix("data: "))
    assert all(json.loads(line.removeprefix("data: ")) for line in lines[1:-1])
    assert lines[-1] == "data: [DONE]"  # the rest of the stream is intact

    fake.malformed_next()
    received: list[Any] = []
    with pytest.raises(json.JSONDecodeError):
        received.extend(client.chat.completions.create(model=MODEL, messages=USER, stream=True))
    assert received == []


# --- wrong content type ----------------------------------------------------------------------


def test_wrong_content_type_next(fake: FakeOpenAI, client: openai.OpenAI, http: httpx.Client) -> None:
    fake.wrong_content_type_next()
    resp = http.post("/chat/completions", json=CHAT)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert resp.text.startswith("<!DOCTYPE html>")

    # Not an error for the SDK: create() returns the page as a str instead of a ChatCompletion...
    fake.wrong_content_type_next()
    page: Any = client.chat.completions.create(model=MODEL, messages=USER)
    assert isinstance(page, str) and "<html>" in page
    # ...and a stream of it yields nothing and ends quietly (no data: lines to decode).
    fake.wrong_content_type_next()
    assert list(client.chat.completions.create(model=MODEL, messages=USER, stream=True)) == []
    assert fake.faults.pending == 0


def test_faults_on_another_wire() -> None:
    """The faults live in the shared server: the Anthropic fake and SDK see the same."""
    with FakeAnthropic() as fake:
        client = anthropic.Anthropic(base_url=fake.base_url, api_key="sk-ant-test", max_retries=0, timeout=10)
        kwargs: Any = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
        fake.malformed_next()
        with pytest.raises(json.JSONDecodeError):
            list(client.messages.create(stream=True, **kwargs))  # an `event:` framed SSE cut short
        fake.wrong_content_type_next()
        page: Any = client.messages.create(**kwargs)
        assert isinstance(page, str) and "<html>" in page
        fake.reset_next()
        with pytest.raises(anthropic.APIConnectionError):
            client.messages.create(**kwargs)
        assert client.messages.create(**kwargs).content
        client.close()


# --- context window --------------------------------------------------------------------------


def test_context_window_exceeded() -> None:
    with FakeOpenAI() as roomy:
        c = openai.OpenAI(base_url=roomy.base_url, api_key="sk-test", max_retries=0)
        usage = c.chat.completions.create(model=MODEL, messages=USER).usage
        assert usage is not None
        prompt_tokens = usage.prompt_tokens
        c.close()
    with FakeOpenAI(context_window=prompt_tokens - 1) as fake:
        c = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
        for stream in (False, True):
            with pytest.raises(openai.BadRequestError) as exc:
                c.chat.completions.create(model=MODEL, messages=USER, stream=stream)
            assert exc.value.response.json() == {
                "error": {
                    "message": f"This model's maximum context length is {prompt_tokens - 1} tokens. However, your "
                    f"messages resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }
            }
            assert exc.value.code == "context_length_exceeded"
        with pytest.raises(openai.BadRequestError) as exc:
            c.responses.create(model=MODEL, input=USER)
        assert exc.value.code == "context_length_exceeded" and exc.value.param == "input"
        fake.context_window = prompt_tokens  # a plain attribute: takes effect at once
        assert c.chat.completions.create(model=MODEL, messages=USER).choices
        c.close()


# --- the header form and the queue -------------------------------------------------------------


def test_header_forms(fake: FakeOpenAI, client: openai.OpenAI, http: httpx.Client) -> None:
    def fault(spec: str) -> dict[str, str]:
        return {"x-fake-fault": spec}

    with pytest.raises(httpx.ReadError):
        http.post("/chat/completions", json=CHAT, headers=fault("reset=25"))
    resp = http.post("/chat/completions", json=CHAT, headers=fault("malformed"))
    with pytest.raises(json.JSONDecodeError):
        resp.json()
    resp = http.post("/chat/completions", json=CHAT, headers=fault("wrong_content_type"))
    assert resp.headers["content-type"].startswith("text/html")

    t0 = time.perf_counter()
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=USER, stream=True, extra_headers=fault("slow_first_token=0.2")
        )
    )
    assert chunks and time.perf_counter() - t0 >= 0.2
    t0 = time.perf_counter()
    stamps = [
        time.perf_counter() - t0
        for _ in client.chat.completions.create(
            model=MODEL, messages=USER, stream=True, extra_headers=fault("stall_stream=0.2; stall_after=1")
        )
    ]
    assert stamps[1] - stamps[0] >= 0.15  # the stall, less the delivery of the first chunk

    assert Fault.parse("reset") == Fault(reset=True)
    assert Fault.parse("reset=100; slow_first_token=0.5") == Fault(
        reset=True, reset_after_bytes=100, first_token_delay=0.5
    )
    assert Fault.parse("stall_stream=2") == Fault(stream_stall=2.0, stream_stall_after=2)
    assert Fault.parse("malformed;wrong_content_type") == Fault(malformed=True, wrong_content_type=True)
    assert fake.faults.pending == 0


def test_stream_only_faults() -> None:
    assert Fault(first_token_delay=1).stream_only and Fault(stream_stall=1).stream_only
    assert Fault(stream_error_after=0).stream_only
    for fault in (Fault(reset=True), Fault(malformed=True), Fault(wrong_content_type=True)):
        assert not fault.stream_only  # any request takes them
    assert not Fault(stream_stall=1, status=503).stream_only
