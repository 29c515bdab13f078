"""A small call log with numbers known by hand, for the dashboard's tests.

Written the way apps write (spool segments, then a fold), relative to now so the dashboard's
default "last 24 hours" contains it. Every figure a page shows can be worked out from the
constants below; the tests do that arithmetic themselves rather than asking the log.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from unillm.tracer import spool
from unillm.tracer.location import LogLocation
from unillm.tracer.schema import TABLES
from unillm.tracer.store import fold

# Ten calls on gpt-4o-mini, two hours ago: 100, 200, ... 1000 ms, $0.01 each, 500 cached tokens each.
MINI_DURATIONS = [100.0 * i for i in range(1, 11)]
MINI_COST = 0.01
MINI_CACHED = 500
# Four calls that failed over from openai/gpt-4o (503) to anthropic/claude-sonnet-4-5.
FAILOVERS = 4
FAILOVER_COST = 0.05
FIRST_ATTEMPT_MS = 400.0
FAILOVER_WAIT_MS = 100.0
SECOND_ATTEMPT_MS = 1000.0
FAILOVER_DURATION = FIRST_ATTEMPT_MS + FAILOVER_WAIT_MS + SECOND_ATTEMPT_MS
# Two un-routed calls that failed, one call on a model without a price.
ERRORS = 2
UNKNOWN_PRICE_MS = 300.0
INPUT_TOKENS, OUTPUT_TOKENS = 1000, 200
# The previous 24 hours: five calls of $0.02.
BEFORE_CALLS, BEFORE_COST = 5, 0.02
DROPPED = 7
SEARCH_WORD = "zebra"
# The breaker of openai/gpt-4o: open 10 s, a failed probe, open 10 s more, probe ok after 0.3 s.
BREAKER_STEPS = [
    (0.0, "closed", "open", "3 failures in a row"),
    (10.0, "open", "half_open", "cooldown of 10 s passed"),
    (10.2, "half_open", "open", "probe failed"),
    (20.2, "open", "half_open", "cooldown of 10 s passed"),
    (20.5, "half_open", "closed", "probe succeeded"),
]
BREAKER_SECONDS = 20.5

CALLS = len(MINI_DURATIONS) + FAILOVERS + ERRORS + 1
SPEND = len(MINI_DURATIONS) * MINI_COST + FAILOVERS * FAILOVER_COST
OK_DURATIONS = [*MINI_DURATIONS, *[FAILOVER_DURATION] * FAILOVERS, UNKNOWN_PRICE_MS]


def _iso(when: dt.datetime) -> str:
    return when.isoformat()


def _call(call_id: str, started: dt.datetime, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {c.name: None for c in TABLES["calls"]}
    row.update(
        call_id=call_id,
        started_at=_iso(started),
        operation="chat",
        endpoint="/chat/completions",
        stream=False,
        status="ok",
        attempts=1,
        input_tokens=INPUT_TOKENS,
        output_tokens=OUTPUT_TOKENS,
        price_known=True,
        price_source="genai-prices test",
        process_id=4242,
        host="web-1",
        sdk_version="test",
        unillm_version="test",
        tags={},
    )
    row.update(values)
    return row


def _attempt(call_id: str, number: int, started: dt.datetime, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {c.name: None for c in TABLES["attempts"]}
    row.update(call_id=call_id, attempt=number, started_at=_iso(started), status="ok", http_status=200, reason="first")
    row.update(values)
    return row


def write_log(path: Path, now: dt.datetime | None = None) -> dict[str, Any]:
    """Write the log at `path`; returns the ids the tests look up."""
    now = now or dt.datetime.now(dt.timezone.utc)
    base = now - dt.timedelta(hours=2)
    calls: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []
    ids: dict[str, Any] = {"mini": [], "failover": [], "error": []}

    for i, duration in enumerate(MINI_DURATIONS):
        call_id = f"mini-{i}"
        started = base + dt.timedelta(seconds=i)
        content = {}
        if i == 0:
            content = {
                "request_content": json.dumps(
                    {"messages": [{"role": "user", "content": f"Where is my {SEARCH_WORD}?"}]}
                ),
                "response_content": json.dumps({"messages": [{"role": "assistant", "content": "In the zoo."}]}),
            }
        calls.append(
            _call(
                call_id,
                started,
                request_model="gpt-4o-mini",
                response_model="gpt-4o-mini",
                provider="openai",
                duration_ms=duration,
                cost_usd=MINI_COST,
                cached_tokens=MINI_CACHED,
                route="gpt-4o-mini",
                strategy="fallback",
                tags={"user": "u-1" if i < 6 else "u-2", "feature": "search"},
                **content,
            )
        )
        attempts.append(_attempt(call_id, 1, started, provider="openai", model="gpt-4o-mini", duration_ms=duration))
        ids["mini"].append(call_id)

    for i in range(FAILOVERS):
        call_id = f"failover-{i}"
        started = base + dt.timedelta(minutes=10, seconds=i)
        calls.append(
            _call(
                call_id,
                started,
                request_model="gpt-4o",
                response_model="claude-sonnet-4-5",
                provider="anthropic",
                duration_ms=FAILOVER_DURATION,
                cost_usd=FAILOVER_COST,
                attempts=2,
                route="gpt-4o",
                strategy="fallback",
                tags={"user": "u-3", "feature": "chat"},
            )
        )
        attempts.append(
            _attempt(
                call_id,
                1,
                started,
                provider="openai",
                model="gpt-4o",
                status="error",
                http_status=503,
                error_type="server_error",
                error_message="The server is overloaded",
                duration_ms=FIRST_ATTEMPT_MS,
            )
        )
        attempts.append(
            _attempt(
                call_id,
                2,
                started + dt.timedelta(milliseconds=FIRST_ATTEMPT_MS + FAILOVER_WAIT_MS),
                provider="anthropic",
                model="claude-sonnet-4-5",
                reason="failover",
                wait_ms=FAILOVER_WAIT_MS,
                duration_ms=SECOND_ATTEMPT_MS,
            )
        )
        ids["failover"].append(call_id)

    for i in range(ERRORS):
        call_id = f"error-{i}"
        started = base + dt.timedelta(minutes=20, seconds=i)
        calls.append(
            _call(
                call_id,
                started,
                request_model="gpt-4.1-mini",
                provider="openai",
                status="error",
                http_status=500,
                error_type="server_error",
                error_message="The server had an error",
                duration_ms=50.0,
                input_tokens=None,
                output_tokens=None,
                price_known=None,
            )
        )
        attempts.append(
            _attempt(
                call_id,
                1,
                started,
                provider="openai",
                model="gpt-4.1-mini",
                status="error",
                http_status=500,
                error_type="server_error",
                duration_ms=50.0,
            )
        )
        ids["error"].append(call_id)

    started = base + dt.timedelta(minutes=30)
    calls.append(
        _call(
            "local-0",
            started,
            request_model="ollama/llama3.1:8b",
            response_model="llama3.1:8b",
            provider="ollama",
            duration_ms=UNKNOWN_PRICE_MS,
            price_known=False,
            price_source=None,
        )
    )
    attempts.append(
        _attempt("local-0", 1, started, provider="ollama", model="llama3.1:8b", duration_ms=UNKNOWN_PRICE_MS)
    )

    for i in range(BEFORE_CALLS):
        started = now - dt.timedelta(hours=30, seconds=i)
        calls.append(
            _call(
                f"before-{i}",
                started,
                request_model="gpt-4o-mini",
                response_model="gpt-4o-mini",
                provider="openai",
                duration_ms=2000.0,
                cost_usd=BEFORE_COST,
            )
        )
        attempts.append(_attempt(f"before-{i}", 1, started, provider="openai", model="gpt-4o-mini", duration_ms=2000.0))

    opened = base + dt.timedelta(minutes=10)
    breaker = [
        {
            "event_id": f"breaker-{i}",
            "changed_at": _iso(opened + dt.timedelta(seconds=offset)),
            "target": "openai/gpt-4o",
            "provider": "openai",
            "model": "gpt-4o",
            "from_state": before,
            "to_state": after,
            "reason": reason,
            "failures": 3,
            "cooldown_s": 10.0 if after == "open" else None,
            "process_id": 4242,
            "host": "web-1",
        }
        for i, (offset, before, after, reason) in enumerate(BREAKER_STEPS)
    ]
    drops = [
        {
            "event_id": "drop-0",
            "dropped_at": _iso(now - dt.timedelta(hours=1)),
            "dropped": DROPPED,
            "reason": "queue_full",
            "process_id": 4242,
            "host": "web-1",
        }
    ]
    location = LogLocation(path)
    for table, rows in (
        ("calls", calls),
        ("attempts", attempts),
        ("breaker_events", breaker),
        ("recorder_drops", drops),
    ):
        spool.write_segment(location.spool_dir, table, rows)
    result = fold(location, max_wait_s=10.0)
    assert result.folded, result
    return ids


def add_call(path: Path, call_id: str, when: dt.datetime | None = None) -> None:
    """Record one more ok call the way a running app does: a spool segment, folded later."""
    started = when or dt.datetime.now(dt.timezone.utc)
    row = _call(call_id, started, request_model="gpt-4o-mini", provider="openai", duration_ms=100.0, cost_usd=MINI_COST)
    location = LogLocation(path)
    spool.write_segment(location.spool_dir, "calls", [row])
    spool.write_segment(
        location.spool_dir, "attempts", [_attempt(call_id, 1, started, provider="openai", model="gpt-4o-mini")]
    )
