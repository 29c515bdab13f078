"""A local OTLP/HTTP receiver: what an OpenTelemetry Collector's `otlphttp` receiver accepts, on
127.0.0.1, keeping every span and metric data point it is sent. For tests and for trying unillm's
OpenTelemetry export without running a collector::

    with OTLPReceiver() as receiver:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
        ...
        span = receiver.wait_for_spans(1)[0]

Decodes the protobuf encoding (the OpenTelemetry exporters' default) with the project's own
message definitions (`opentelemetry-proto`, installed with the OTLP exporters), and the JSON
encoding. Faults work as on the simulated providers: `receiver.fail_next(503)` is a collector
that is down.
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .http_server import FakeHTTPServer, JSONReply, RecordedRequest

_PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root span
    kind: str  # SPAN_KIND_CLIENT, ...
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status_code: str  # STATUS_CODE_UNSET, STATUS_CODE_OK, STATUS_CODE_ERROR
    status_message: str
    events: list[tuple[str, dict[str, Any]]]
    scope: str
    resource: dict[str, Any]


@dataclass(frozen=True)
class ReceivedPoint:
    """One data point of a metric (histograms: count and sum; sums and gauges: value)."""

    metric: str
    unit: str
    attributes: dict[str, Any]
    count: int | None = None
    sum: float | None = None
    value: float | None = None
    bucket_counts: list[int] = field(default_factory=list)
    explicit_bounds: list[float] = field(default_factory=list)


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    value = getattr(any_value, kind)
    if kind == "array_value":
        return tuple(_value(v) for v in value.values)
    if kind == "kvlist_value":
        return _attributes(value.values)
    return value


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


class OTLPReceiver(FakeHTTPServer):
    """POST /v1/traces, /v1/metrics and /v1/logs, answered like a collector."""

    def __init__(self, **knobs: Any) -> None:
        super().__init__(**knobs)
        self._received = threading.Condition()
        self._spans: list[ReceivedSpan] = []
        self._points: list[ReceivedPoint] = []
        self.add_route("POST", "/v1/traces", self._traces)
        self.add_route("POST", "/v1/metrics", self._metrics)
        self.add_route("POST", "/v1/logs", self._logs)

    # -- what arrived -----------------------------------------------------------------------
    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._received:
            return list(self._spans)

    @property
    def points(self) -> list[ReceivedPoint]:
        with self._received:
            return list(self._points)

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """Every span received, once there are at least `count` (AssertionError after `timeout`)."""
        return self._wait(lambda: len(self._spans) >= count, timeout, f"{count} spans", self._spans)

    def wait_for_metric(self, name: str, timeout: float = 10.0) -> list[ReceivedPoint]:
        """The data points of metric `name` from the latest export that had it."""
        points = self._wait(
            lambda: any(p.metric == name for p in self._points), timeout, f"metric {name}", self._points
        )
        return [p for p in points if p.metric == name]

    def _wait(self, ready: Any, timeout: float, what: str, items: list[Any]) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self._received:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"OTLPReceiver: no {what} within {timeout} s (got {len(items)})")
                self._received.wait(left)
            return list(items)

    # -- decoding ---------------------------------------------------------------------------
    def _decode(self, request: RecordedRequest, message_type: Any) -> Any:
        body = request.body
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        message = message_type()
        if request.headers.get("content-type", "").startswith("application/json"):
            from google.protobuf import json_format  # type: ignore[import-untyped]

            json_format.Parse(body, message)
        else:
            message.ParseFromString(body)
        return message

    def _answer(self, request: RecordedRequest, response_type: Any) -> JSONReply:
        if request.headers.get("content-type", "").startswith("application/json"):
            return JSONReply(200, {})
        return JSONReply(200, response_type().SerializeToString(), content_type=_PROTOBUF)

    def _traces(self, request: RecordedRequest) -> JSONReply:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as service
        from opentelemetry.proto.trace.v1 import trace_pb2

        received = []
        for resource_spans in self._decode(request, service.ExportTraceServiceRequest).resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            kind=trace_pb2.Span.SpanKind.Name(span.kind),
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                            attributes=_attributes(span.attributes),
                            status_code=trace_pb2.Status.StatusCode.Name(span.status.code),
                            status_message=span.status.message,
                            events=[(event.name, _attributes(event.attributes)) for event in span.events],
                            scope=scope_spans.scope.name,
                            resource=resource,
                        )
                    )
        with self._received:
            self._spans.extend(received)
            self._received.notify_all()
        return self._answer(request, service.ExportTraceServiceResponse)

    def _metrics(self, request: RecordedRequest) -> JSONReply:
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as service

        received = []
        for resource_metrics in self._decode(request, service.ExportMetricsServiceRequest).resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    received.extend(_points(metric))
        with self._received:
            self._points.extend(received)
            self._received.notify_all()
        return self._answer(request, service.ExportMetricsServiceResponse)

    def _logs(self, request: RecordedRequest) -> JSONReply:
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as service

        return self._answer(request, service.ExportLogsServiceResponse)


def _points(metric: Any) -> list[ReceivedPoint]:
    kind = metric.WhichOneof("data")
    if kind == "histogram":
        return [
            ReceivedPoint(
                metric.name,
                metric.unit,
                _attributes(p.attributes),
                count=p.count,
                sum=p.sum,
                bucket_counts=list(p.bucket_counts),
                explicit_bounds=list(p.explicit_bounds),
            )
            for p in metric.histogram.data_points
        ]
    if kind in ("sum", "gauge"):
        return [
            ReceivedPoint(
                metric.name,
                metric.unit,
                _attributes(p.attributes),
                value=p.as_double if p.WhichOneof("value") == "as_double" else p.as_int,
            )
            for p in getattr(metric, kind).data_points
        ]
    return []
