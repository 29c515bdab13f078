"""Shared fixtures: a private call log per test, a patched SDK, and simulated providers."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["UNILLM_STRICT"] = "1"  # a bug inside unillm fails the test instead of being counted
# Never touch the real user's call log: the default location lives in a throw-away folder.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="unillm-tests-")
os.environ.pop("UNILLM_LOG", None)
os.environ.pop("UNILLM_CONFIG", None)

import unillm
from unillm import diagnostics

TEST_KEY = "sk-test-SECRET-0123456789abcdef"


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
