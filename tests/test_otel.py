"""OpenTelemetry: one CLIENT span per call with the GenAI attributes, a child span per attempt when
unillm retried or failed over, the GenAI client metrics; on the app's own providers under its
current span, or over OTLP to a collector (here unillm.testing.OTLPReceiver on 127.0.0.1); the
call row joins its trace. Beside other OpenAI instrumentation (openai-v2, OpenLLMetry, Langfuse):
tests/test_side_by_side.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import TEST_KEY, rows
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.test.globals_test import reset_metrics_globals, reset_trace_globals
from opentelemetry.trace import SpanKind, StatusCode

import unillm
from unillm import diagnostics
from unillm.testing import FakeOpenAI, OTLPReceiver

ASK = [{"role": "user", "content": "Where is my parcel?"}]
GROQ_KEY = "gsk_" + "G" * 40
MISTRAL_KEY = "mistral-key-" + "M" * 24


@pytest.fixture(autouse=True)
def _no_global_providers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts as an app that has set no OpenTelemetry providers and no OTLP endpoint."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    reset_trace_globals()
    reset_metrics_globals()
    yield
    unillm.unpatch()
    diagnostics.reset()
    reset_trace_globals()
    reset_metrics_globals()


class AppTelemetry:
    """What an app that uses the OpenTelemetry SDK has: global providers with its exporters."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        trace.set_tracer_provider(self.tracer_provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[self.reader]))

    def finished(self) -> list[ReadableSpan]:
        unillm.flush()
        return list(self.spans.get_finished_spans())

    def unillm_spans(self) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.instrumentation_scope and s.instrumentation_scope.name == "unillm"]

    def histograms(self) -> dict[str, list[Any]]:
        unillm.flush()
        found: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                if scope.scope.name != "unillm":
                    continue
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


def patch(log: Path, **settings: Any) -> None:
    unillm.patch(log=str(log), flush_interval=0.05, fold_interval=0.2, **settings)


def test_a_call_is_one_client_span_with_the_genai_attributes(log_path: Path, fake: FakeOpenAI) -> None:
    app = AppTelemetry()
    patch(log_path)
    client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=ASK)

    [span] = app.unillm_spans()
    assert span.name == "chat gpt-4o-mini" and span.kind is SpanKind.CLIENT
    call = rows("select * from calls")[0]
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.response.model"] == call["response_model"]
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.usage.input_tokens"] == call["input_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] == call["output_tokens"] > 0
    assert attributes["server.address"] == "127.0.0.1" and attributes["server.port"] == fake.port
    assert attributes["unillm.call_id"] == call["call_id"]
    assert "error.type" not in attributes and span.status.status_code is StatusCode.UNSET
    # The span is the call: same start, same duration as the log says.
    assert abs((span.end_time - span.start_time) / 1e6 - call["duration_ms"]) < 1.0
    assert abs(span.start_time / 1e9 - call["started_at"].timestamp()) < 0.001
    # The call row joins its trace.
    assert call["trace_id"] == format(span.context.trace_id, "032x")
    assert call["span_id"] == format(span.context.span_id, "016x")


def test_the_apps_current_span_is_the_parent(log_path: Path, fake: FakeOpenAI) -> None:
    app = AppTelemetry()
    patch(log_path)
    client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0)
    tracer = trace.get_tracer("checkout-service")
    with tracer.start_as_current_span("handle /checkout") as request_span:
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # outside: a trace of its own

    inside, outside = sorted(app.unillm_spans(), key=lambda s: s.start_time)
    assert inside.parent is not None and inside.parent.span_id == request_span.get_span_context().span_id
    assert inside.context.trace_id == request_span.get_span_context().trace_id
    assert outside.parent is None and outside.context.trace_id != inside.context.trace_id
    calls = rows("select trace_id from calls order by started_at")
    assert calls[0]["trace_id"] == format(request_span.get_span_context().trace_id, "032x")


async def test_async_calls_keep_their_task_context(log_path: Path, fake: FakeOpenAI) -> None:
    import asyncio

    app = AppTelemetry()
    patch(log_path)
    client = openai.AsyncOpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0)
    tracer = trace.get_tracer("worker")

    async def job(name: str) -> int:
        with tracer.start_as_current_span(name) as span:
            await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
            return span.get_span_context().span_id

    parents = set(await asyncio.gather(*(job(f"job {i}") for i in range(5))))
    assert {s.parent.span_id for s in app.unillm_spans() if s.parent} == parents


def test_a_stream_has_time_to_first_chunk(log_path: Path, fake: FakeOpenAI) -> None:
    app = AppTelemetry()
    patch(log_path)
    client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0)
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True)
        if c.choices
    )
    assert text
    [span] = app.unillm_spans()
    call = rows("select ttft_ms, output_tokens from calls")[0]
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.response.time_to_first_chunk"] == pytest.approx(call["ttft_ms"] / 1000)
    assert attributes["gen_ai.usage.output_tokens"] == call["output_tokens"]
    first_chunk = app.histograms()["gen_ai.client.operation.time_to_first_chunk"]
    assert sum(p.count for p in first_chunk) == 1


def test_failover_is_a_child_span_per_attempt_and_errors_are_recorded(log_path: Path) -> None:
    app = AppTelemetry()
    with FakeOpenAI() as groq, FakeOpenAI() as mistral:
        patch(
            log_path,
            providers={
                "groq": {"base_url": groq.base_url, "api_key": GROQ_KEY},
                "mistral": {"base_url": mistral.base_url, "api_key": MISTRAL_KEY},
            },
            routes={"smart": {"targets": ["groq/llama-3.3-70b", "mistral/mistral-small"], "retries": 0}},
        )
        client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key=TEST_KEY, max_retries=0)
        groq.fail_next(status=503, message=f"upstream down (key {GROQ_KEY})")
        client.chat.completions.create(model="smart", messages=ASK)
        groq.fail_next(status=400, count=1)
        mistral.fail_next(status=400, count=1)
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="smart", messages=ASK)

    spans = app.unillm_spans()
    calls = {s.context.span_id: s for s in spans if s.parent is None}
    served, failed = sorted(calls.values(), key=lambda s: s.start_time)
    assert served.name == "chat smart"
    assert dict(served.attributes or {})["gen_ai.provider.name"] == "mistral_ai"
    assert dict(served.attributes or {})["unillm.route"] == "smart"
    attempts = sorted(
        (s for s in spans if s.parent and s.parent.span_id == served.context.span_id), key=lambda s: s.start_time
    )
    assert [s.name for s in attempts] == ["chat llama-3.3-70b", "chat mistral-small"]
    first = dict(attempts[0].attributes or {})
    assert first["gen_ai.provider.name"] == "groq" and first["error.type"] and first["http.response.status_code"] == 503
    assert attempts[0].status.status_code is StatusCode.ERROR
    assert GROQ_KEY not in (attempts[0].status.description or "")  # the log's redacted message
    assert attempts[1].status.status_code is StatusCode.UNSET
    assert all(served.start_time <= a.start_time and a.end_time <= served.end_time for a in attempts)

    assert failed.status.status_code is StatusCode.ERROR
    assert dict(failed.attributes or {})["error.type"]
    [event] = [e for e in failed.events if e.name == "exception"]
    assert dict(event.attributes or {})["exception.type"] == "BadRequestError"
    attempt_rows = rows(
        "select span_id, attempt from attempts where call_id = (select call_id from calls "
        "where status = 'ok') order by attempt"
    )
    assert [r["span_id"] for r in attempt_rows] == [format(a.context.span_id, "016x") for a in attempts]


def test_metrics_follow_the_genai_conventions(log_path: Path, fake: FakeOpenAI) -> None:
    app = AppTelemetry()
    patch(log_path)
    client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    client.embeddings.create(model="text-embedding-3-small", input="parcel")

    histograms = app.histograms()
    totals = rows("select sum(input_tokens) as i, sum(output_tokens) as o from calls where operation = 'chat'")[0]
    tokens = {
        (p.attributes["gen_ai.operation.name"], p.attributes["gen_ai.token.type"]): p
        for p in histograms["gen_ai.client.token.usage"]
    }
    assert tokens["chat", "input"].sum == totals["i"] and tokens["chat", "input"].count == 3
    assert tokens["chat", "output"].sum == totals["o"]
    assert tokens["embeddings", "input"].count == 1
    durations = {p.attributes["gen_ai.operation.name"]: p for p in histograms["gen_ai.client.operation.duration"]}
    assert durations["chat"].count == 3 and durations["embeddings"].count == 1
    assert durations["chat"].attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert list(durations["chat"].explicit_bounds)[:3] == [0.01, 0.02, 0.04]  # the conventions' buckets


def test_providers_set_after_patch_are_picked_up(log_path: Path, fake: FakeOpenAI) -> None:
    patch(log_path)
    client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert rows("select trace_id from calls") == [{"trace_id": None}]  # no provider yet: no span
    app = AppTelemetry()
    client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert len(app.unillm_spans()) == 1


def test_otel_false_makes_no_spans(log_path: Path, fake: FakeOpenAI) -> None:
    app = AppTelemetry()
    patch(log_path, otel=False)
    client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert app.unillm_spans() == [] and "gen_ai.client.operation.duration" not in app.histograms()
    assert rows("select trace_id, span_id from calls") == [{"trace_id": None, "span_id": None}]


# -- OTLP: an app with no OpenTelemetry SDK of its own, only the standard environment -------------


def test_otlp_export_to_a_collector(log_path: Path, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    with OTLPReceiver() as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
        patch(log_path)
        client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
        list(client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True))
        call_rows = rows("select trace_id, span_id, stream, input_tokens from calls order by started_at")
        unillm.unpatch()  # exporters send what they hold at exit

        spans = sorted(collector.wait_for_spans(2), key=lambda s: s.start_ns)
        assert [s.name for s in spans] == ["chat gpt-4o-mini"] * 2
        assert {s.kind for s in spans} == {"SPAN_KIND_CLIENT"} and {s.scope for s in spans} == {"unillm"}
        assert spans[0].resource["service.name"] == "checkout"
        assert [(s.trace_id, s.span_id) for s in spans] == [(r["trace_id"], r["span_id"]) for r in call_rows]
        assert spans[0].attributes["gen_ai.usage.input_tokens"] == call_rows[0]["input_tokens"]
        assert "gen_ai.response.time_to_first_chunk" in spans[1].attributes
        durations = collector.wait_for_metric("gen_ai.client.operation.duration")
        assert sum(p.count or 0 for p in durations) == 2 and {p.unit for p in durations} == {"s"}
        assert collector.wait_for_metric("gen_ai.client.token.usage")
        assert collector.wait_for_metric("gen_ai.client.operation.time_to_first_chunk")
        everything = repr(collector.spans) + repr(collector.points) + repr(collector.requests)
        assert TEST_KEY not in everything


def test_a_collector_that_is_down_costs_the_app_nothing(
    log_path: Path, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    patch(log_path)
    client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0)
    for _ in range(20):
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert len(rows("select call_id from calls where trace_id is not null")) == 20  # logged, with ids
    started = time.monotonic()
    unillm.unpatch()  # the exporters retry for 10 s; the app's exit waits for them 3 s at most
    assert time.monotonic() - started < 6


def test_a_missing_exporter_is_named(log_path: Path, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")  # its exporter is not installed here
    patch(log_path)
    client = openai.OpenAI(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert rows("select count(*) as n from calls") == [{"n": 1}]
    message = unillm.stats()["last_messages"]["otel_export"]
    assert "opentelemetry-exporter-otlp-proto-grpc" in message and 'pip install "unillm[otel]"' in message
