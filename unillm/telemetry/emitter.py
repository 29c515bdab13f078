"""Spans and metrics for recorded calls, made on the recorder's thread from the call's log rows.

Why after the fact rather than a live span around the call: the app's thread then pays nothing
but one context read (`parent.capture_parent`), span processors and exporters never run inside
the app's request, and the span carries exactly the figures the log has (tokens, cost, failover
chain), which only exist once the answer has been read. The span keeps the call's real start and
end times and the app's span that was current at the call as its parent. The trade-off: an HTTP
client instrumentation's spans are siblings of unillm's span, not children.

Which providers: the app's global TracerProvider / MeterProvider when it has set them; else, when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set, unillm's own OTLP providers (`otlp.py`); else none, and no
OpenTelemetry work at all. Looked up for every call (a global read), so an app that sets its
providers after `patch()` is picked up; the OTLP variables are read at `patch()`, as the SDK does.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from unillm._version import __version__
from unillm.telemetry import genai, otlp
from unillm.tracer.call import CallRecord

_NOT_BUILT: Any = object()


def _is_placeholder(provider: Any) -> bool:
    """The API's stand-ins before an SDK provider is set (proxy) or when disabled (no-op)."""
    return type(provider).__name__ in {
        "ProxyTracerProvider",
        "NoOpTracerProvider",
        "_ProxyMeterProvider",
        "NoOpMeterProvider",
    }


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _at(call: CallRecord, perf_time: float) -> int:
    """Wall-clock nanoseconds of a perf_counter stamp taken during `call` (one clock for all of
    the call's spans, so attempts nest exactly inside it)."""
    return _ns(call.wall_start + (perf_time - call.t_start))


class _Instruments:
    """The three GenAI client histograms of one meter."""

    def __init__(self, meter: Any) -> None:
        self.tokens = meter.create_histogram(
            genai.TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=genai.TOKEN_BUCKETS,
        )
        self.duration = meter.create_histogram(
            genai.OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=genai.SECONDS_BUCKETS,
        )
        self.first_chunk = meter.create_histogram(
            genai.TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of a streamed answer.",
            explicit_bucket_boundaries_advisory=genai.SECONDS_BUCKETS,
        )


class Telemetry:
    """Makes a call's spans and records its metrics; `stamp` is the recorder's row hook."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        # Read once, as the OpenTelemetry SDK reads its environment: not four lookups per call.
        self._endpoint = otlp.endpoint_configured()
        self._own: Any = _NOT_BUILT  # OwnProviders, or None when OTLP is not configured / failed
        self._tracer: tuple[Any, Any] | None = None  # (provider, tracer)
        self._instruments: tuple[Any, _Instruments] | None = None  # (provider, instruments)

    # -- providers --------------------------------------------------------------------------
    def _own_providers(self) -> Any:
        if self._own is _NOT_BUILT:
            self._own = otlp.build_own_providers() if self._endpoint else None
        return self._own

    def _providers(self) -> tuple[Any, Any]:
        """(tracer provider, meter provider) to use now; either may be None."""
        if "opentelemetry.trace" not in sys.modules and not self._endpoint:
            return None, None  # the app has no OpenTelemetry and asked for no export: nothing to do
        from opentelemetry import metrics, trace

        tracer_provider: Any = trace.get_tracer_provider()
        meter_provider: Any = metrics.get_meter_provider()
        own = None
        if _is_placeholder(tracer_provider) or _is_placeholder(meter_provider):
            own = self._own_providers()
        if _is_placeholder(tracer_provider):
            tracer_provider = own.tracer_provider if own is not None else None
        if _is_placeholder(meter_provider):
            meter_provider = own.meter_provider if own is not None else None
        return tracer_provider, meter_provider

    def _tracer_of(self, provider: Any) -> Any:
        if self._tracer is None or self._tracer[0] is not provider:
            self._tracer = (provider, provider.get_tracer("unillm", __version__))
        return self._tracer[1]

    def _instruments_of(self, provider: Any) -> _Instruments:
        if self._instruments is None or self._instruments[0] is not provider:
            self._instruments = (provider, _Instruments(provider.get_meter("unillm", __version__)))
        return self._instruments[1]

    # -- the hook ---------------------------------------------------------------------------
    def stamp(self, call: CallRecord, call_row: dict[str, Any], attempt_rows: list[dict[str, Any]]) -> None:
        """Make the call's spans (filling `trace_id` / `span_id` in its rows) and record its metrics."""
        if not self.enabled:
            return
        tracer_provider, meter_provider = self._providers()
        if tracer_provider is not None:
            self._spans(self._tracer_of(tracer_provider), call, call_row, attempt_rows)
        if meter_provider is not None:
            self._metrics(self._instruments_of(meter_provider), call_row)

    def _spans(
        self, tracer: Any, call: CallRecord, call_row: dict[str, Any], attempt_rows: list[dict[str, Any]]
    ) -> None:
        from opentelemetry.context import Context
        from opentelemetry.trace import SpanKind, set_span_in_context

        start = _ns(call.wall_start)
        span = tracer.start_span(
            genai.span_name(call_row["operation"], call_row.get("request_model")),
            context=call.otel_context if call.otel_context is not None else Context(),
            kind=SpanKind.CLIENT,
            attributes=genai.call_attributes(call_row),
            start_time=start,
        )
        context = span.get_span_context()
        if context.trace_flags.sampled:
            call_row["trace_id"] = format(context.trace_id, "032x")
            call_row["span_id"] = format(context.span_id, "016x")
        if len(attempt_rows) > 1:
            inside = set_span_in_context(span)
            for attempt, attempt_row in zip(call.attempts, attempt_rows, strict=True):
                times = (_at(call, attempt.t_start), _at(call, attempt.t_end or attempt.t_start))
                self._attempt_span(tracer, inside, call_row, attempt_row, times)
        last = call.attempts[-1] if call.attempts else None
        end = _at(call, (last.t_end if last is not None and last.t_end else call.t_end) or call.t_start)
        _set_outcome(span, call_row, call.exception.kind if call.exception else None, end)
        span.end(end_time=end)

    def _attempt_span(
        self, tracer: Any, parent: Any, call_row: Mapping[str, Any], attempt_row: dict[str, Any], times: tuple[int, int]
    ) -> None:
        from opentelemetry.trace import SpanKind

        start, end = times
        span = tracer.start_span(
            genai.span_name(call_row["operation"], attempt_row.get("model")),
            context=parent,
            kind=SpanKind.CLIENT,
            attributes=genai.attempt_attributes(call_row, attempt_row),
            start_time=start,
        )
        context = span.get_span_context()
        if context.trace_flags.sampled:
            attempt_row["span_id"] = format(context.span_id, "016x")
        _set_outcome(span, attempt_row, None, end)
        span.end(end_time=end)

    def _metrics(self, instruments: _Instruments, call_row: Mapping[str, Any]) -> None:
        attributes = genai.metric_attributes(call_row)
        for token_type, column in (("input", "input_tokens"), ("output", "output_tokens")):
            if call_row.get(column) is not None:
                instruments.tokens.record(call_row[column], {**attributes, "gen_ai.token.type": token_type})
        if call_row.get("duration_ms") is not None:
            instruments.duration.record(call_row["duration_ms"] / 1000, attributes)
        if call_row.get("ttft_ms") is not None:
            instruments.first_chunk.record(call_row["ttft_ms"] / 1000, attributes)

    def close(self) -> None:
        """Send what unillm's own exporters still hold (the app's providers are the app's)."""
        own = self._own
        if own is not _NOT_BUILT and own is not None:
            own.shutdown()
        self._own = _NOT_BUILT


def _set_outcome(span: Any, row: Mapping[str, Any], exception_kind: str | None, end: int) -> None:
    """A failed call or attempt: ERROR status and an `exception` event, with the log's redacted message."""
    if row.get("status") != "error":
        return
    from opentelemetry.trace import Status, StatusCode

    message = row.get("error_message") or ""
    span.add_event(
        "exception",
        {"exception.type": exception_kind or genai.error_type(row) or "error", "exception.message": message},
        timestamp=end,
    )
    span.set_status(Status(StatusCode.ERROR, message))
