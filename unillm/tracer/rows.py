"""Turn a finished call (and its attempts) into rows of the `calls` and `attempts` tables."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from unillm import diagnostics
from unillm._version import __version__
from unillm.adapters.registry import provider_for_host
from unillm.tracer.answer import Answer, read_attempt
from unillm.tracer.call import AttemptRecord, CallRecord, ErrorNote
from unillm.tracer.content import capture
from unillm.tracer.pricing import Pricer
from unillm.tracer.redact import redact


@lru_cache(maxsize=1)
def _host_and_sdk() -> tuple[str, str]:
    try:
        import openai

        sdk_version = openai.__version__
    except Exception:  # pragma: no cover - unillm is only active with openai installed
        sdk_version = "unknown"
    return socket.gethostname(), sdk_version


# os.getpid() is a system call (~0.3 µs, 2-3% of the recorder thread's time); the pid only changes at fork.
_pid = os.getpid()


def _after_fork() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def host_name() -> str:
    return _host_and_sdk()[0]


# The last whole second formatted: calls finishing in the same second share it, which halves the
# cost of a timestamp (~1.9 -> ~1.0 µs; two per call). One tuple, so threads never see half of it.
_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def _iso(wall: float) -> str:
    global _second
    whole = int(wall)
    micros = round((wall - whole) * 1e6)
    if micros >= 1_000_000 or whole < 0:  # rounds up into the next second; or before 1970
        return datetime.fromtimestamp(wall, tz=timezone.utc).isoformat(timespec="microseconds")
    second, text = _second
    if second != whole:
        text = datetime.fromtimestamp(whole, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (whole, text)
    return f"{text}.{micros:06d}+00:00"


def _ms(start: float, end: float | None) -> float | None:
    return None if end is None else round((end - start) * 1000, 3)


# Error kinds by HTTP status, for attempts whose error body was not read (the SDK closes the
# body of an attempt it is about to retry). Names follow the providers' own error codes.
_STATUS_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "request_timeout",
    409: "conflict",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
    529: "overloaded_error",
}


def _error_kind(error: ErrorNote) -> str:
    """timeout, connection, cancelled or bad_response, from the exception a transport raised."""
    name = error.kind
    if "timeout" in name.lower():
        return "timeout"
    if name == "CancelledError":
        return "cancelled"
    if name in ("JSONDecodeError", "ValueError", "UnicodeDecodeError"):
        return "bad_response"
    return "connection"


def _attempt_status(attempt: AttemptRecord, answer: Answer) -> tuple[str, str | None, str | None]:
    """(status, error_type, error_message) of one attempt."""
    error = attempt.transport_error
    if error is not None and (attempt.http_status is None or (attempt.is_sse and attempt.t_first_token is None)):
        # No answer came, or a stream's head came but nothing of the answer did.
        return "error", _error_kind(error), redact(str(error))
    if attempt.http_status is not None and attempt.http_status >= 400:
        kind = answer.error_type or _STATUS_ERROR_TYPES.get(attempt.http_status, f"http_{attempt.http_status}")
        return "error", kind, redact(answer.error_message)
    if answer.error_type is not None:  # error event inside a 200 stream: before any content, no answer at all
        status = "error" if attempt.is_sse and attempt.t_first_token is None else "interrupted"
        return status, answer.error_type, redact(answer.error_message)
    if attempt.interrupted or not attempt.saw_end:
        if error is not None:
            return "interrupted", _error_kind(error), redact(str(error))
        message = "the stream was closed before its end" if attempt.is_sse else "the body was not read to its end"
        return "interrupted", "incomplete", redact(message)
    return "ok", None, None


def build_rows(call: CallRecord, pricer: Pricer) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    host, sdk_version = _host_and_sdk()
    attempt_rows: list[dict[str, Any]] = []
    final_answer = Answer()
    final_status: tuple[str, str | None, str | None] = ("error", None, None)
    last: AttemptRecord | None = None
    for attempt in call.attempts:
        answer = read_attempt(attempt)
        outcome = _attempt_status(attempt, answer)
        attempt_rows.append(
            {
                "call_id": call.call_id,
                "attempt": attempt.number,
                "started_at": _iso(attempt.wall_start),
                "duration_ms": _ms(attempt.t_start, attempt.t_end),
                "ttft_ms": _ms(attempt.t_start, attempt.t_first_token),
                "provider": attempt.provider or provider_for_host(attempt.server_address),
                "server_address": attempt.server_address,
                "model": attempt.model,
                "status": outcome[0],
                "http_status": attempt.http_status,
                "error_type": outcome[1],
                "error_message": outcome[2],
                "reason": attempt.reason,
                "wait_ms": attempt.wait_ms,
                "breaker_state": attempt.breaker_state,
            }
        )
        final_answer, final_status, last = answer, outcome, attempt

    status, error_type, error_message = final_status
    if call.exception is not None:  # what the app saw is the last word
        status = "error"
        error_type = call.exception.kind
        error_message = redact(call.exception.message)
    elif last is None:
        status, error_type, error_message = "error", "no_attempt", "the SDK returned without sending a request"

    provider = (last.provider or provider_for_host(last.server_address)) if last else None
    usage = final_answer.usage
    translated = last.translation if last is not None else None
    provider_usage = translated.final_usage() if translated is not None else None
    if provider_usage is not None:
        usage = provider_usage  # the provider's own figures, raw usage and cache writes included
    model = final_answer.model or call.request_model
    cost = pricer.cost(provider, model, usage) if usage.input_tokens is not None else None
    call_row = {
        "call_id": call.call_id,
        "started_at": _iso(call.wall_start),
        "duration_ms": _ms(call.t_start, last.t_end if last and last.t_end else call.t_end),
        "ttft_ms": _ms(call.t_start, last.t_first_token) if last else None,
        "operation": call.operation,
        "endpoint": call.endpoint,
        "stream": call.stream,
        "request_model": call.request_model,
        "provider": provider,
        "server_address": last.server_address if last else None,
        "response_model": final_answer.model,
        "status": status,
        "error_type": error_type,
        "error_message": error_message,
        "http_status": last.http_status if last else (call.exception.status_code if call.exception else None),
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_tokens": usage.cached_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "cost_usd": cost.usd if cost else None,
        "price_known": cost.known if cost else None,  # NULL: nothing to price (no usage)
        "price_source": cost.source if cost else None,
        "finish_reason": final_answer.finish_reason,
        "tool_calls": final_answer.tool_calls,
        "attempts": len(call.attempts),
        "tags": dict(call.tags),
        "usage_raw": usage.raw,
        "process_id": _pid,
        "host": host,
        "sdk_version": sdk_version,
        "unillm_version": __version__,
        "route": call.route,
        "strategy": call.strategy,
        "route_reason": call.route_reason,
    }
    if call.request_body is not None:  # content capture is on
        try:
            call_row["request_content"], call_row["response_content"] = capture(call, last)
        except Exception as exc:  # the call's row matters more than its content
            diagnostics.internal_error("rows.content", exc)
    return call_row, attempt_rows
