"""Failover: which targets failed, where the calls went instead, what it cost in time and money,
and when each circuit breaker was open."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from unillm.dashboard.filters import Scope, placeholders
from unillm.dashboard.queries.common import bucket_seconds, bucket_sql, frame, row, utc
from unillm.tracer.answer import Usage
from unillm.tracer.pricing import Pricer

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

# Events listed in the timeline table (newest first); the totals above it count them all.
EVENT_ROWS = 500


@dataclass(frozen=True)
class Failover:
    failed_over: int  # calls that went to another target
    failed_attempts: int  # attempts that failed, on any target
    added_ms_median: float | None  # time the failed attempts added to a failed-over call
    cost_diff_usd: float | None  # what the failed-over calls cost minus what their first target would have
    bucket_s: int
    routes: pd.DataFrame  # from_target, to_target, calls, reasons, added_ms_p50, cost_diff_usd
    events: (
        pd.DataFrame
    )  # time, call_id, route, from_target, to_target, reason, attempts, added_ms, cost_usd, cost_diff_usd
    over_time: pd.DataFrame  # time, target, failed (failed attempts per bucket and target)
    breaker_periods: pd.DataFrame  # target, state, start, end, seconds, reason
    breaker_summary: pd.DataFrame  # target, opened, open_s, state_now
    health: pd.DataFrame  # target, attempts, success_rate, errors, p50_ms, p95_ms, took_over, last_error


def _event_sql(scope: Scope) -> tuple[str, list[object]]:
    """The calls that failed over, with their first and last attempt. A provider filter matches
    either end, so "openai" shows the calls that left OpenAI as well as those it served."""
    where, params = scope.condition(include_providers=False)
    providers = scope.filters.providers
    if providers:
        marks = placeholders(providers)
        where += f" AND (f.provider IN ({marks}) OR l.provider IN ({marks}))"
        params += list(providers) * 2
    # The few attempts of failed-over calls are picked first: joining calls to every attempt
    # (twice) would hash millions of rows.
    sql = f"""
WITH fo AS MATERIALIZED (SELECT DISTINCT call_id FROM attempts WHERE reason = 'failover'),
fa AS MATERIALIZED (SELECT * FROM attempts WHERE call_id IN (SELECT call_id FROM fo))
SELECT {utc("c.started_at")} AS time, c.call_id, c.route,
       f.provider || '/' || f.model AS from_target, f.provider AS from_provider, f.model AS from_model,
       l.provider || '/' || l.model AS to_target,
       concat_ws(' ', CAST(f.http_status AS VARCHAR), f.error_type) AS reason, f.error_message,
       c.attempts, c.status, greatest(c.duration_ms - l.duration_ms, 0) AS added_ms, c.cost_usd,
       c.input_tokens, c.output_tokens, c.cached_tokens, c.cache_write_tokens
FROM calls AS c
JOIN fa AS f ON f.call_id = c.call_id AND f.attempt = 1
JOIN fa AS l ON l.call_id = c.call_id AND l.attempt = c.attempts
WHERE {where} AND c.attempts > 1 AND c.call_id IN (SELECT call_id FROM fo)"""
    return sql, params


def failover(con: duckdb.DuckDBPyConnection, scope: Scope, pricer: Pricer | None = None) -> Failover:
    pricer = pricer or Pricer()
    event_sql, params = _event_sql(scope)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _failover_events AS {event_sql}", params)
    routes = frame(
        con,
        """
SELECT from_target, to_target, count(*) AS calls, string_agg(DISTINCT reason, ', ') AS reasons,
       median(added_ms) AS added_ms_p50, sum(cost_usd) AS cost_usd, any_value(from_provider) AS from_provider,
       any_value(from_model) AS from_model, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
       sum(cached_tokens) AS cached_tokens, sum(cache_write_tokens) AS cache_write_tokens
FROM _failover_events GROUP BY from_target, to_target ORDER BY calls DESC""",
    )
    route_diffs = [
        _difference(pricer, r.from_provider, r.from_model, r.cost_usd, r) for r in routes.itertuples(index=False)
    ]
    routes["cost_diff_usd"] = route_diffs
    events = frame(con, f"SELECT * FROM _failover_events ORDER BY time DESC LIMIT {EVENT_ROWS}")
    events["cost_diff_usd"] = [
        _difference(pricer, r.from_provider, r.from_model, r.cost_usd, r) for r in events.itertuples(index=False)
    ]
    total = row(con, "SELECT count(*), median(added_ms) FROM _failover_events")
    known_diffs = [d for d in route_diffs if d is not None]

    attempts_where, attempts_params = _attempts_scope(scope)
    failed = row(
        con, f"SELECT count(*) FROM attempts AS a WHERE {attempts_where} AND a.status <> 'ok'", attempts_params
    )
    span = row(
        con,
        f"SELECT timezone('UTC', min(a.started_at)), timezone('UTC', max(a.started_at)) FROM attempts AS a "
        f"WHERE {attempts_where} AND a.status <> 'ok'",
        attempts_params,
    )
    seconds = bucket_seconds(span[0], span[1])
    over_time = frame(
        con,
        f"""
SELECT {bucket_sql("a.started_at", seconds)} AS time, a.provider || '/' || a.model AS target, count(*) AS failed
FROM attempts AS a WHERE {attempts_where} AND a.status <> 'ok' GROUP BY ALL ORDER BY time""",
        attempts_params,
    )
    # Grouped by the plain columns (not a concatenation per row), the last error read from the
    # failed attempts only: ~0.1 s instead of ~0.45 s over 5M attempts.
    health = frame(
        con,
        f"""
WITH g AS (
  SELECT a.provider, a.model, count(*) AS attempts,
         count(*) FILTER (WHERE a.status = 'ok') / count(*) AS success_rate,
         count(*) FILTER (WHERE a.status <> 'ok') AS errors,
         quantile_cont(a.duration_ms, [0.5, 0.95]) FILTER (WHERE a.status = 'ok') AS q,
         count(*) FILTER (WHERE a.reason = 'failover' AND a.status = 'ok') AS took_over
  FROM attempts AS a WHERE {attempts_where} GROUP BY ALL
),
e AS (
  SELECT a.provider, a.model,
         arg_max(concat_ws(' ', CAST(a.http_status AS VARCHAR), a.error_type, a.error_message), a.started_at) AS last_error
  FROM attempts AS a WHERE {attempts_where} AND a.status <> 'ok' GROUP BY ALL
)
SELECT g.provider || '/' || g.model AS target, attempts, success_rate, errors, q[1] AS p50_ms, q[2] AS p95_ms,
       took_over, e.last_error
FROM g LEFT JOIN e ON e.provider IS NOT DISTINCT FROM g.provider AND e.model IS NOT DISTINCT FROM g.model
ORDER BY errors DESC, attempts DESC""",
        attempts_params * 2,
    )
    periods, summary = _breakers(con, scope)
    return Failover(
        failed_over=int(total[0]),
        failed_attempts=int(failed[0]),
        added_ms_median=total[1],
        cost_diff_usd=sum(known_diffs) if known_diffs else None,
        bucket_s=seconds,
        routes=routes[["from_target", "to_target", "calls", "reasons", "added_ms_p50", "cost_diff_usd"]],
        events=events[
            [
                "time",
                "call_id",
                "route",
                "from_target",
                "to_target",
                "reason",
                "error_message",
                "attempts",
                "status",
                "added_ms",
                "cost_usd",
                "cost_diff_usd",
            ]
        ],
        over_time=over_time,
        breaker_periods=periods,
        breaker_summary=summary,
        health=health,
    )


def _attempts_scope(scope: Scope) -> tuple[str, list[object]]:
    """Attempts of the filtered calls. Time and provider are the attempt's own; other filters
    (model, route, tags) are the call's, joined only when set (a join over every attempt costs)."""
    where, params = scope.time_condition("a.started_at")
    if scope.filters.providers:
        where += f" AND a.provider IN ({placeholders(scope.filters.providers)})"
        params += list(scope.filters.providers)
    if scope.narrows_calls:
        calls_where, calls_params = scope.condition(include_providers=False)
        where += f" AND a.call_id IN (SELECT c.call_id FROM calls AS c WHERE {calls_where})"
        params += calls_params
    return where, params


def _difference(
    pricer: Pricer, provider: str | None, model: str | None, cost: float | None, tokens: object
) -> float | None:
    """What the calls cost minus what the target they left would have charged for the same tokens."""
    if cost is None or cost != cost or not model:  # None, or NaN from a frame
        return None
    usage = Usage(
        input_tokens=_int(getattr(tokens, "input_tokens", None)),
        output_tokens=_int(getattr(tokens, "output_tokens", None)),
        cached_tokens=_int(getattr(tokens, "cached_tokens", None)),
        cache_write_tokens=_int(getattr(tokens, "cache_write_tokens", None)),
    )
    if usage.input_tokens is None:
        return None
    would_have = pricer.cost(provider, model, usage).usd
    return None if would_have is None else cost - would_have


def _int(value: object) -> int | None:
    try:
        return None if value is None or value != value else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _breakers(con: duckdb.DuckDBPyConnection, scope: Scope) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Periods each breaker was not closed (open, or half-open while probing), cut to the window.

    Each event starts a state that lasts until the target's next event in the same process; a
    breaker still open at the end of the window is drawn up to the window's end (or its last event).
    """
    window = scope.window
    bounds, bounds_params = [], []
    if window.end is not None:
        bounds.append("changed_at < CAST(? AS TIMESTAMPTZ)")
        bounds_params.append(window.end.isoformat())
    if scope.filters.providers:
        bounds.append(f"provider IN ({placeholders(scope.filters.providers)})")
        bounds_params += list(scope.filters.providers)
    where = " AND ".join(bounds) or "TRUE"
    # A breaker lives in one process: one still open at that process's last recorded call stays
    # drawn up to that call, not forever (the process may have exited).
    seen_where, seen_params = scope.time_condition("started_at")
    start_cut = "greatest(s.start, CAST(? AS TIMESTAMPTZ))" if window.start is not None else "s.start"
    start_params = [window.start.isoformat()] if window.start is not None else []
    states = f"""
WITH e AS (
  SELECT target, host, process_id, to_state AS state, changed_at AS start, reason,
         lead(changed_at) OVER (PARTITION BY target, host, process_id ORDER BY changed_at) AS next_change
  FROM breaker_events WHERE {where}
),
seen AS (SELECT host, process_id, max(started_at) AS last_call FROM calls WHERE {seen_where} GROUP BY ALL),
s AS (
  SELECT e.target, e.state, e.start, e.reason,
         coalesce(e.next_change, greatest(seen.last_call, e.start)) AS stop, e.next_change IS NULL AS still
  FROM e LEFT JOIN seen ON seen.host = e.host AND seen.process_id = e.process_id
  WHERE e.state <> 'closed'
)
SELECT target, state, timezone('UTC', {start_cut}) AS start, timezone('UTC', s.stop) AS "end",
       epoch(s.stop) - epoch({start_cut}) AS seconds, reason, still
FROM s WHERE {f"s.stop > {start_cut}" if window.start is not None else "TRUE"}
ORDER BY target, start"""
    # Parameters in the order of the text: e's WHERE, seen's WHERE, then start_cut three times.
    params = bounds_params + seen_params + start_params * 3
    periods = frame(con, states, params)
    summary = frame(
        con,
        f"""
WITH p AS ({states})
SELECT target, count(*) FILTER (WHERE state = 'open') AS opened, sum(seconds) AS not_closed_s,
       (SELECT arg_max(to_state, changed_at) FROM breaker_events AS b
        WHERE b.target = p.target {"AND b.changed_at < CAST(? AS TIMESTAMPTZ)" if window.end is not None else ""}) AS state_now
FROM p GROUP BY target ORDER BY not_closed_s DESC""",
        params + ([window.end.isoformat()] if window.end is not None else []),
    )
    return periods, summary
