"""Overview: the headline figures of a time range against the previous one, and their trends."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unillm.dashboard.filters import Scope
from unillm.dashboard.queries.common import NONE_LABEL, bucket_seconds, bucket_sql, frame, row, top_groups_sql

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

# A call failed over when one of its attempts went to the next target (not a retry of the same one).
FAILED_OVER = "c.call_id IN (SELECT call_id FROM attempts WHERE reason = 'failover')"


@dataclass(frozen=True)
class Kpis:
    calls: int
    spend_usd: float | None
    unknown_price_calls: int
    errors: int
    failed_over: int
    retried: int  # calls with more than one attempt (retries and failovers)
    input_tokens: int
    output_tokens: int
    latency_ms: tuple[float | None, float | None, float | None]  # p50, p95, p99 of successful calls
    ttft_ms: tuple[float | None, float | None, float | None]  # the same for streams
    first: dt.datetime | None
    last: dt.datetime | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None

    @property
    def failover_rate(self) -> float | None:
        return self.failed_over / self.calls if self.calls else None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def kpis(con: duckdb.DuckDBPyConnection, scope: Scope) -> Kpis:
    where, params = scope.condition()
    found = row(
        con,
        f"""
SELECT count(*), sum(cost_usd), count(*) FILTER (WHERE price_known = false),
       count(*) FILTER (WHERE status <> 'ok'),
       count(*) FILTER (WHERE attempts > 1 AND {FAILED_OVER}),
       count(*) FILTER (WHERE attempts > 1),
       coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
       quantile_cont(duration_ms, [0.5, 0.95, 0.99]) FILTER (WHERE status = 'ok'),
       quantile_cont(ttft_ms, [0.5, 0.95, 0.99]) FILTER (WHERE status = 'ok' AND ttft_ms IS NOT NULL),
       timezone('UTC', min(started_at)), timezone('UTC', max(started_at))
FROM calls AS c WHERE {where}""",
        params,
    )
    return Kpis(
        calls=found[0],
        spend_usd=found[1],
        unknown_price_calls=found[2],
        errors=found[3],
        failed_over=found[4],
        retried=found[5],
        input_tokens=int(found[6]),
        output_tokens=int(found[7]),
        latency_ms=_three(found[8]),
        ttft_ms=_three(found[9]),
        first=found[10],
        last=found[11],
    )


def _three(values: Any) -> tuple[float | None, float | None, float | None]:
    if not values:
        return (None, None, None)
    return (values[0], values[1], values[2])


@dataclass(frozen=True)
class Overview:
    now: Kpis
    before: Kpis | None  # the previous period of the same length; None for "all time"
    bucket_s: int
    spend: pd.DataFrame  # time, group, usd
    traffic: pd.DataFrame  # time, status, calls
    latency: pd.DataFrame  # time, p50, p95, p99 (ms, successful calls)
    unknown_prices: pd.DataFrame  # provider, model, calls
    dropped: int  # records the recorder dropped in the window (any process)
    by_model: pd.DataFrame  # model, calls, errors, p50/p95/p99 ms, ttft p50 ms, usd: where it is slow
    errors: pd.DataFrame  # provider, model, error_type, http_status, calls, last_seen, example: what failed


SPEND_GROUPS = {"provider": "c.provider", "model": "coalesce(c.response_model, c.request_model)"}


def overview(con: duckdb.DuckDBPyConnection, scope: Scope, *, spend_by: str = "provider") -> Overview:
    now = kpis(con, scope)
    previous = scope.previous()
    before = kpis(con, previous) if previous is not None else None
    seconds = bucket_seconds(now.first, now.last)
    where, params = scope.condition()
    bucket = bucket_sql("c.started_at", seconds)
    group = SPEND_GROUPS.get(spend_by, SPEND_GROUPS["provider"])
    spend = frame(
        con,
        top_groups_sql(
            f"SELECT {bucket} AS time, coalesce({group}, '{NONE_LABEL}') AS grp, sum(c.cost_usd) AS usd "
            f"FROM calls AS c WHERE {where} AND c.cost_usd IS NOT NULL GROUP BY ALL",
            "grp",
            "usd",
        ),
        params,
    )
    traffic = frame(
        con,
        f"SELECT {bucket} AS time, c.status, count(*) AS calls FROM calls AS c WHERE {where} GROUP BY ALL ORDER BY 1",
        params,
    )
    latency = frame(
        con,
        f"""
SELECT time, q[1] AS p50, q[2] AS p95, q[3] AS p99 FROM (
  SELECT {bucket} AS time, quantile_cont(c.duration_ms, [0.5, 0.95, 0.99]) AS q
  FROM calls AS c WHERE {where} AND c.status = 'ok' GROUP BY 1
) ORDER BY time""",
        params,
    )
    unknown = frame(
        con,
        f"""
SELECT coalesce(c.provider, '{NONE_LABEL}') AS provider, coalesce(c.response_model, c.request_model) AS model,
       count(*) AS calls
FROM calls AS c WHERE {where} AND c.price_known = false GROUP BY ALL ORDER BY calls DESC LIMIT 10""",
        params,
    )
    drops_where, drops_params = scope.time_condition("dropped_at")
    dropped = row(con, f"SELECT coalesce(sum(dropped), 0) FROM recorder_drops WHERE {drops_where}", drops_params)[0]
    by_model = _by_model(con, where, params)
    errors = frame(
        con,
        f"""
SELECT coalesce(c.provider, '{NONE_LABEL}') AS provider, c.request_model AS model, c.error_type, c.http_status,
       count(*) AS calls, timezone('UTC', max(c.started_at)) AS last_seen,
       arg_max(c.error_message, c.started_at) AS example
FROM calls AS c WHERE {where} AND c.status <> 'ok' GROUP BY ALL ORDER BY calls DESC LIMIT 20""",
        params,
    )
    return Overview(now, before, seconds, spend, traffic, latency, unknown, int(dropped), by_model, errors)


def _by_model(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> pd.DataFrame:
    """Calls, errors, latency percentiles, time to first token and spend per provider/model,
    slowest (p95) first: where it is slow."""
    return frame(
        con,
        f"""
SELECT coalesce(provider, '{NONE_LABEL}') || '/' || model AS model, calls, errors,
       q[1] AS p50_ms, q[2] AS p95_ms, q[3] AS p99_ms, ttft_p50_ms, usd
FROM (
  SELECT c.provider, coalesce(c.response_model, c.request_model) AS model, count(*) AS calls, count(*) FILTER (WHERE c.status <> 'ok') AS errors,
         quantile_cont(c.duration_ms, [0.5, 0.95, 0.99]) FILTER (WHERE c.status = 'ok') AS q,
         quantile_cont(c.ttft_ms, 0.5) FILTER (WHERE c.status = 'ok') AS ttft_p50_ms,
         sum(c.cost_usd) AS usd
  FROM calls AS c WHERE {where} GROUP BY 1, 2
) ORDER BY p95_ms DESC NULLS LAST, calls DESC""",
        params,
    )
