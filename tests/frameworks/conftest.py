"""Frameworks on top of the openai SDK, routed through unillm to the simulated providers.

Each test module drives one framework through its public API, as its documentation shows, with
an app that points the framework at the OpenAI-wire fake (an ``openai.OpenAI`` client, or
``base_url``/``api_key``) and calls ``gpt-4o-mini``. The ``wire`` parameter decides who answers:

- ``openai``: nothing is routed, the call goes to the OpenAI-wire fake it was sent to;
- ``anthropic`` / ``gemini``: unillm's config routes ``gpt-4o-mini`` to the simulated Anthropic /
  Gemini provider, so the framework never knows (its code and its client do not change).

The frameworks are not unillm dependencies: each module skips when its framework is missing
(scripts/test installs them in ``.venvs/frameworks*`` only).

With ``UNILLM_WRITE_COMPATIBILITY=docs/compatibility.md`` the session writes the framework ×
openai-major table from the tests that ran (merged with the rows other openai majors wrote).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import unillm
from unillm import diagnostics

WIRES = ["openai", "anthropic", "gemini"]
APP_MODEL = "gpt-4o-mini"  # the model the app (the framework) asks for
TARGETS = {"anthropic": "anthropic/claude-sonnet-4-5", "gemini": "gemini/gemini-2.5-flash"}
TEST_KEY = "sk-test-SECRET-0123456789abcdef"
# No framework phones home from a test (tracing, telemetry), and frameworks that read the key or
# the address from the environment find the test key and no real endpoint. Set per test, so the
# main suite (which collects this folder and skips it) never sees them.
QUIET_ENV = {
    "OPENAI_AGENTS_DISABLE_TRACING": "1",
    "OPENAI_AGENTS_DONT_LOG_MODEL_DATA": "1",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_TRACING": "false",
    "LOGFIRE_SEND_TO_LOGFIRE": "false",
    "DO_NOT_TRACK": "1",
    "OPENAI_API_KEY": TEST_KEY,
}
UNSET_ENV = ("OPENAI_BASE_URL", "LANGCHAIN_API_KEY", "LANGSMITH_API_KEY", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")


@dataclass
class Stack:
    """One wire family behind the app: the OpenAI-wire fake the app talks to, and who answers."""

    wire: str
    openai_fake: Any  # FakeOpenAI: the app's base_url
    answering: Any  # the fake that receives the generation requests
    model: str = APP_MODEL
    api_key: str = TEST_KEY
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return str(self.openai_fake.base_url)

    @property
    def provider(self) -> str:
        return self.wire  # what calls.provider says for this wire family

    def client(self, **kwargs: Any) -> Any:
        import openai

        return openai.OpenAI(base_url=self.base_url, api_key=self.api_key, **kwargs)

    def async_client(self, **kwargs: Any) -> Any:
        import openai

        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, **kwargs)

    def generation_requests(self) -> list[Any]:
        """The requests the answering provider received (model listings and the like left out)."""
        return [r for r in self.answering.requests if r.method == "POST"]

    def calls(self) -> list[dict[str, Any]]:
        """The call log's rows for this test, oldest first."""
        unillm.flush()
        return unillm.sql(
            "select operation, request_model, provider, response_model, route, status, stream, "
            "input_tokens, output_tokens, cost_usd, price_known, tags, attempts "
            "from calls order by started_at, call_id"
        ).to_dicts()

    def assert_logged(self, count: int, *, operation: str = "chat", stream: bool | None = None) -> list[dict]:
        """``count`` calls in the log, one per framework request: answered by this wire family,
        ok, tokens and cost set, the test's tags kept."""
        calls = self.calls()
        assert len(calls) == count, [(c["operation"], c["status"]) for c in calls]
        assert len(self.generation_requests()) == count
        if self.wire != "openai":  # routed: nothing reached the address the framework was given
            assert self.openai_fake.requests == []
        for call in calls:
            assert call["status"] == "ok"
            assert call["operation"] == operation
            assert call["request_model"] == self.model
            assert call["provider"] == self.provider
            assert call["response_model"] == (self.model if self.wire == "openai" else TARGETS[self.wire].split("/")[1])
            assert call["input_tokens"] > 0 and call["output_tokens"] > 0
            assert call["price_known"] is True and call["cost_usd"] > 0
            assert {k: call["tags"].get(k) for k in self.tags} == self.tags
            if stream is not None:
                assert call["stream"] is stream
        return calls


def _start(wire: str) -> Any:
    from unillm import testing

    return testing.FakeAnthropic() if wire == "anthropic" else testing.FakeGemini()


@pytest.fixture(params=WIRES)
def stack(request: pytest.FixtureRequest, log_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """unillm patched (private log); the app's OpenAI-wire fake; for anthropic/gemini a route
    that sends the app's model to that simulated provider."""
    from unillm.testing import FakeOpenAI

    wire = request.param
    monkeypatch.chdir(log_path.parent.parent)  # no stray unillm.toml
    openai_fake = FakeOpenAI()
    other = None if wire == "openai" else _start(wire)
    try:
        # The app's OpenAI is the OpenAI-wire fake: configured as "openai", so calls passing through
        # to it are named as calls to OpenAI would be.
        settings: dict[str, Any] = {"providers": {"openai": {"base_url": openai_fake.base_url, "api_key": TEST_KEY}}}
        if other is not None:
            settings["providers"][wire] = {"base_url": other.base_url, "api_key": f"test-key-{wire}"}
            settings["routes"] = {APP_MODEL: TARGETS[wire]}
        unillm.patch(log=str(log_path), flush_interval=0.05, fold_interval=0.2, **settings)
        stack = Stack(wire, openai_fake, other if other is not None else openai_fake)
        stack.tags = {"framework": request.module.__name__.rsplit("test_", 1)[-1], "wire": wire}
        with unillm.tags(**stack.tags):
            yield stack
    finally:
        unillm.unpatch()
        diagnostics.reset()
        openai_fake.close()
        if other is not None:
            other.close()


# -- nothing leaves the machine -------------------------------------------------------------------
def _local(host: Any) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Any lookup or connection beyond 127.0.0.1 (api.openai.com, a tracing endpoint, a tokenizer
    download) fails the test that made it, even when the framework swallows the error."""
    for name, value in QUIET_ENV.items():
        monkeypatch.setenv(name, value)
    for name in UNSET_ENV:
        monkeypatch.delenv(name, raising=False)
    attempts: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _local(host):
            attempts.append(f"lookup {host}")
            raise socket.gaierror(socket.EAI_NONAME, f"tests/frameworks: no network ({host})")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and not _local(address[0]):
            attempts.append(f"connect {address[0]}")
            raise OSError(f"tests/frameworks: no network ({address[0]})")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield attempts
    assert not attempts, f"a framework tried to reach the network: {attempts}"


# -- the compatibility table (docs/compatibility.md), generated from the tests that ran ------------
_results: dict[tuple[str, str, str], list[str]] = {}  # (framework, wire, feature) → outcomes


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "framework(dist): the framework (its distribution name) a module tests")
    config.addinivalue_line("markers", "feature(name): a framework feature that feeds docs/compatibility.md")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    framework = item.get_closest_marker("framework")
    feature = item.get_closest_marker("feature")
    params = getattr(item, "callspec", None)
    wire = params.params.get("stack") if params is not None else None
    if framework is None or feature is None or wire is None:
        return
    key = (framework.args[0], wire, feature.args[0])
    if report.skipped and report.when in ("setup", "call"):
        _results.setdefault(key, []).append("xfailed" if hasattr(report, "wasxfail") else "skipped")
    elif report.when == "call" or (report.failed and report.when == "setup"):
        _results.setdefault(key, []).append("passed" if report.passed else "failed")
    elif report.failed and report.when == "teardown":
        _results.setdefault(key, []).append("failed")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("UNILLM_WRITE_COMPATIBILITY")
    if not target or not _results:
        return
    from frameworks.compatibility_table import merge

    merge(Path(target), _results)
