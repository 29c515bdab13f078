"""Call and attempt records, the recorder, the DuckDB store, pricing and (later) OpenTelemetry."""
