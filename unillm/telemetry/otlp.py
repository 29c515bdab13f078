"""unillm's own tracer and meter providers with OTLP exporters, for apps that set
`OTEL_EXPORTER_OTLP_ENDPOINT` (or the per-signal variables) but configure no OpenTelemetry SDK
themselves. Never installed as the global providers: an app that sets its own later keeps it.

The exporters are the OpenTelemetry project's own (extra `unillm[otel]`), configured by the
standard OTEL_EXPORTER_OTLP_* variables; they send on their own threads, batched.
"""

from __future__ import annotations

import importlib
import os
import threading
from typing import Any

from unillm import diagnostics

_ENDPOINT_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)
_SHUTDOWN_WAIT_S = 3.0  # at exit, an unreachable collector may delay the app this long at most


def endpoint_configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(name) for name in _ENDPOINT_VARIABLES)


def _protocol(signal: str) -> str:
    protocol = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    return protocol.strip().lower()


def _exporter(signal: str) -> Any:
    """The OTLP exporter for `signal` (TRACES or METRICS) over the configured protocol."""
    grpc = _protocol(signal) == "grpc"
    package = "opentelemetry-exporter-otlp-proto-grpc" if grpc else "opentelemetry-exporter-otlp-proto-http"
    module = f"opentelemetry.exporter.otlp.proto.{'grpc' if grpc else 'http'}"
    module += ".metric_exporter" if signal == "METRICS" else ".trace_exporter"
    try:
        exporter = importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"OTEL_EXPORTER_OTLP_ENDPOINT is set but {package} is not installed: "
            f'pip install "unillm[otel]"' + (" opentelemetry-exporter-otlp-proto-grpc" if grpc else "")
        ) from None
    return exporter.OTLPMetricExporter() if signal == "METRICS" else exporter.OTLPSpanExporter()


class OwnProviders:
    """A TracerProvider and a MeterProvider exporting over OTLP (resource from OTEL_SERVICE_NAME /
    OTEL_RESOURCE_ATTRIBUTES, as the SDK reads them)."""

    def __init__(self) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create()
        self.tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)  # ours: close()
        self.tracer_provider.add_span_processor(BatchSpanProcessor(_exporter("TRACES")))
        reader = PeriodicExportingMetricReader(_exporter("METRICS"))
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[reader], shutdown_on_exit=False)

    def shutdown(self) -> None:
        """Send what is buffered, waiting a few seconds at most (the exporters retry on their own)."""

        def flush_and_stop() -> None:
            for provider in (self.tracer_provider, self.meter_provider):
                try:
                    provider.shutdown()
                except Exception as exc:
                    diagnostics.report("otel_export", f"OpenTelemetry shutdown failed: {type(exc).__name__}: {exc}")

        closer = threading.Thread(target=flush_and_stop, name="unillm-otel-shutdown", daemon=True)
        closer.start()
        closer.join(_SHUTDOWN_WAIT_S)


def build_own_providers() -> OwnProviders | None:
    """Providers exporting to the configured endpoint, or None (reported once) when the
    exporters or the SDK are not installed."""
    try:
        return OwnProviders()
    except ImportError as exc:
        message = str(exc)
        if "opentelemetry" in message and "pip install" not in message:
            message = f'OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is missing: pip install "unillm[otel]" ({exc})'
        diagnostics.report("otel_export", message)
        return None
