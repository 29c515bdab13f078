"""OpenTelemetry GenAI semantic conventions for a recorded call: span names, attributes, metric
attributes. Pure functions of the call's log rows (no OpenTelemetry import), so what a span says
is exactly what the call log says.

Names follow the GenAI semantic conventions (gen_ai.* attributes, `{operation} {model}` spans);
values unillm adds beyond them live under `unillm.*`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# unillm's provider names → the conventions' `gen_ai.provider.name` values (others pass as they are).
_PROVIDER_NAMES = {
    "azure": "azure.ai.openai",
    "gemini": "gcp.gemini",
    "mistral": "mistral_ai",
    "xai": "x_ai",
}

# Bucket boundaries the conventions recommend for the GenAI client histograms.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
SECONDS_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)

TOKEN_USAGE = "gen_ai.client.token.usage"
OPERATION_DURATION = "gen_ai.client.operation.duration"
TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"


def provider_name(provider: str | None) -> str | None:
    return _PROVIDER_NAMES.get(provider, provider) if provider else None


def span_name(operation: str, model: str | None) -> str:
    return f"{operation} {model}" if model else operation


def _server(attributes: dict[str, Any], address: str | None) -> None:
    if not address:
        return
    host, _, port = address.rpartition(":")
    if host and port.isdigit():
        attributes["server.address"] = host
        attributes["server.port"] = int(port)
    else:
        attributes["server.address"] = address


def _put(attributes: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        attributes[key] = value


def error_type(row: Mapping[str, Any]) -> str | None:
    """`error.type` of a failed call or attempt: the error kind, else its HTTP status."""
    if row.get("status") != "error":
        return None
    kind = row.get("error_type")
    if kind:
        return str(kind)
    status = row.get("http_status")
    return str(status) if status else "_OTHER"


def call_attributes(call_row: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes of the call's CLIENT span: the metrics' ones and the call's own figures."""
    attributes = metric_attributes(call_row)
    if call_row.get("finish_reason"):
        attributes["gen_ai.response.finish_reasons"] = (call_row["finish_reason"],)
    _put(attributes, "gen_ai.usage.input_tokens", call_row.get("input_tokens"))
    _put(attributes, "gen_ai.usage.output_tokens", call_row.get("output_tokens"))
    _put(attributes, "gen_ai.usage.cache_read.input_tokens", call_row.get("cached_tokens"))
    _put(attributes, "gen_ai.usage.cache_creation.input_tokens", call_row.get("cache_write_tokens"))
    _put(attributes, "gen_ai.usage.reasoning.output_tokens", call_row.get("reasoning_tokens"))
    if call_row.get("ttft_ms") is not None:
        attributes["gen_ai.response.time_to_first_chunk"] = call_row["ttft_ms"] / 1000
    _put(attributes, "http.response.status_code", call_row.get("http_status"))
    attributes["unillm.call_id"] = call_row["call_id"]
    attributes["unillm.status"] = call_row["status"]
    attributes["unillm.stream"] = bool(call_row.get("stream"))
    attributes["unillm.attempts"] = call_row.get("attempts") or 0
    _put(attributes, "unillm.cost_usd", call_row.get("cost_usd"))
    _put(attributes, "unillm.route", call_row.get("route"))
    _put(attributes, "unillm.strategy", call_row.get("strategy"))
    _put(attributes, "unillm.route_reason", call_row.get("route_reason"))
    for key, value in (call_row.get("tags") or {}).items():
        attributes[f"unillm.tag.{key}"] = value
    # Only with capture_content on: the log's redacted, capped JSON (OpenAI shapes, hence not the
    # conventions' gen_ai.input.messages / gen_ai.output.messages, which have a schema of their own).
    _put(attributes, "unillm.request_content", call_row.get("request_content"))
    _put(attributes, "unillm.response_content", call_row.get("response_content"))
    return attributes


def attempt_attributes(call_row: Mapping[str, Any], attempt_row: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes of one attempt's child span (made when a call had more than one attempt)."""
    attributes: dict[str, Any] = {"gen_ai.operation.name": call_row["operation"]}
    _put(attributes, "gen_ai.provider.name", provider_name(attempt_row.get("provider")))
    _put(attributes, "gen_ai.request.model", attempt_row.get("model"))
    _put(attributes, "error.type", error_type(attempt_row))
    _server(attributes, attempt_row.get("server_address"))
    _put(attributes, "http.response.status_code", attempt_row.get("http_status"))
    attributes["unillm.attempt"] = attempt_row["attempt"]
    attributes["unillm.status"] = attempt_row["status"]
    _put(attributes, "unillm.attempt.reason", attempt_row.get("reason"))
    _put(attributes, "unillm.attempt.wait_ms", attempt_row.get("wait_ms"))
    _put(attributes, "unillm.breaker_state", attempt_row.get("breaker_state"))
    return attributes


def metric_attributes(call_row: Mapping[str, Any]) -> dict[str, Any]:
    """The low-cardinality attributes the GenAI client metrics are broken down by."""
    attributes: dict[str, Any] = {"gen_ai.operation.name": call_row["operation"]}
    _put(attributes, "gen_ai.provider.name", provider_name(call_row.get("provider")))
    _put(attributes, "gen_ai.request.model", call_row.get("request_model"))
    _put(attributes, "gen_ai.response.model", call_row.get("response_model"))
    _server(attributes, call_row.get("server_address"))
    _put(attributes, "error.type", error_type(call_row))
    return attributes
