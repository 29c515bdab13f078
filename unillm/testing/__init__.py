"""Simulated LLM providers: real HTTP servers on 127.0.0.1 with fault injection.

Used by unillm's tests, ``unillm demo`` and the benchmarks::

    from unillm.testing import FakeOpenAI

    with FakeOpenAI(answer_words=20) as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
        fake.fail_next(status=429, retry_after=1)
        ...

Importing this package does not import ``openai``; the fakes import the SDK's types on the
first request they answer.
"""

from __future__ import annotations

from .anthropic_wire import FakeAnthropic
from .gemini_wire import DEFAULT_GEMINI_MODELS, FakeGemini
from .http_server import (
    FAULT_HEADER,
    FakeHTTPServer,
    Fault,
    FaultInjector,
    JSONReply,
    RecordedRequest,
    StreamReply,
)
from .openai_wire import DEFAULT_MODELS, FakeOpenAI
from .otlp_receiver import OTLPReceiver, ReceivedPoint, ReceivedSpan

__all__ = [
    "DEFAULT_GEMINI_MODELS",
    "DEFAULT_MODELS",
    "FAULT_HEADER",
    "FakeAnthropic",
    "FakeGemini",
    "FakeHTTPServer",
    "FakeOpenAI",
    "Fault",
    "FaultInjector",
    "JSONReply",
    "OTLPReceiver",
    "ReceivedPoint",
    "ReceivedSpan",
    "RecordedRequest",
    "StreamReply",
]
