"""The simulated Anthropic and Gemini behind an app that still talks to "OpenAI": fixtures shared by
tests/test_providers.py (chat) and tests/test_responses_translation.py (the Responses API).

`provider` starts one fake per native wire family and patches unillm with it as a provider; the
app's clients (`app`, `async_app`) point at a closed port, so only unillm's routing reaches a fake.
Registered for the whole suite by tests/conftest.py (`pytest_plugins`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from conftest import TEST_KEY

import unillm
from unillm import diagnostics

NATIVE = ["anthropic", "gemini"]
MODELS = {"anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}


@dataclass
class Provider:
    name: str
    fake: Any
    model: str  # what the app passes: "<provider>/<model>"

    def last_request(self) -> dict[str, Any]:
        return self.fake.requests[-1].json


def start_fake(name: str) -> Any:
    from unillm import testing

    return testing.FakeAnthropic() if name == "anthropic" else testing.FakeGemini()


@pytest.fixture(params=NATIVE)
def provider(request: pytest.FixtureRequest, log_path, monkeypatch) -> Iterator[Provider]:
    name = request.param
    monkeypatch.chdir(log_path.parent.parent)
    fake = start_fake(name)
    try:
        unillm.patch(
            log=str(log_path),
            flush_interval=0.05,
            providers={name: {"base_url": fake.base_url, "api_key": f"test-key-{name}"}},
        )
        yield Provider(name, fake, f"{name}/{MODELS[name]}")
    finally:
        unillm.unpatch()
        diagnostics.reset()
        fake.close()


@pytest.fixture
def app(provider: Provider) -> openai.OpenAI:
    """The app's client: it still points at OpenAI; unillm sends provider/model calls elsewhere."""
    return openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)


@pytest.fixture
def async_app(provider: Provider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0)
