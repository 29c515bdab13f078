"""OpenTelemetry for recorded calls: GenAI spans and metrics through the app's own providers, or
through OTLP exporters of unillm's own when only `OTEL_EXPORTER_OTLP_ENDPOINT` is set."""
