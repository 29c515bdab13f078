"""Shared fixtures: a private call log per test, a patched SDK, and simulated providers."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx  # noqa: F401 - see below
import pytest

# openai 3.x peeks at sys.modules["httpx"] without the import lock; the fakes import the anthropic
# SDK (which imports httpx) on their server threads on first use, so an app thread could see a
# half-imported httpx. Importing it up front keeps that test-harness race out of the results.
os.environ["UNILLM_STRICT"] = "1"  # a bug inside unillm fails the test instead of being counted
# Never touch the real user's call log: the default location lives in a throw-away folder.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="unillm-tests-")
os.environ.pop("UNILLM_LOG", None)
os.environ.pop("UNILLM_CONFIG", None)

import unillm
from unillm import diagnostics

TEST_KEY = "sk-test-SECRET-0123456789abcdef"

# The simulated Anthropic / Gemini fixtures (provider, app, async_app) of the provider tests.
pytest_plugins = ["native_providers"]


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "log" / "calls.duckdb"


@pytest.fixture
def patched(log_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """unillm.patch() writing to a private log; unpatched (and flushed) after the test."""
    monkeypatch.chdir(log_path.parent.parent)  # no stray unillm.toml from the repo
    unillm.patch(log=str(log_path), flush_interval=0.05, fold_interval=0.2)
    try:
        yield log_path
    finally:
        unillm.unpatch()
        diagnostics.reset()


@pytest.fixture
def fake() -> Iterator[object]:
    from unillm.testing import FakeOpenAI

    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def client(fake: object) -> object:
    import openai

    return openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0)  # type: ignore[attr-defined]


@pytest.fixture
def aclient(fake: object) -> object:
    import openai

    return openai.AsyncOpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0)  # type: ignore[attr-defined]


def rows(query: str, *params: object) -> list[dict[str, object]]:
    """Flush the recorder and read the log as dicts."""
    unillm.flush()
    return unillm.sql(query, list(params) if params else None).to_dicts()


# -- the provider × feature table (docs/providers.md), generated from the tests that ran ----------
_conformance: dict[tuple[str, str], list[bool]] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance(feature): a provider round trip that feeds docs/providers.md")
    config.addinivalue_line(
        "markers",
        "sdk_independent: never touches the openai SDK (call-log storage, prices, provider fakes, translators), "
        "so its outcome cannot depend on the SDK's major; scripts/test runs it in the last environment only",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # scripts/test sets this in every openai environment but the last: ~30 s less per environment.
    if os.environ.get("UNILLM_SKIP_SDK_INDEPENDENT") != "1":
        return
    kept = [item for item in items if item.get_closest_marker("sdk_independent") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("conformance")
    params = getattr(item, "callspec", None)
    provider = (params.params.get("provider") or params.params.get("compat")) if params is not None else None
    if marker is None or provider is None:
        return
    if report.skipped:  # not applicable to this provider: a blank cell
        return
    if report.when == "call" or (report.when == "setup" and report.failed):
        _conformance.setdefault((provider, marker.args[0]), []).append(report.passed)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("UNILLM_WRITE_CONFORMANCE")
    if not target or not _conformance:
        return
    from conformance_table import render

    Path(target).write_text(render(_conformance))


@pytest.fixture(autouse=True)
def _fresh_routing_state() -> Iterator[None]:
    """Breakers and latency averages are per process by design; each test starts with every
    circuit closed and nothing measured."""
    from unillm.routing.breaker import BREAKERS
    from unillm.routing.latency import LATENCY

    BREAKERS.reset()
    LATENCY.reset()
    yield
    BREAKERS.reset()
    LATENCY.reset()
