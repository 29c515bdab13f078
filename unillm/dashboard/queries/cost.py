"""Cost: where the money goes (by model, provider, route or any tag), the most expensive calls,
and what the providers' prompt caches saved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from unillm.dashboard.filters import Scope
from unillm.dashboard.queries.common import (
    NONE_LABEL,
    among_top,
    bucket_seconds,
    bucket_sql,
    frame,
    row,
    top_groups_sql,
    utc,
)
from unillm.tracer.pricing import Pricer

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

TOP_CALLS = 20
# Fixed groupings; any tag key is offered as well ("tag:<key>").
DIMENSIONS = {
    "model": "coalesce(c.response_model, c.request_model)",
    "provider": "c.provider",
    "route": "c.route",
    "operation": "c.operation",
}
TAG_PREFIX = "tag:"


@dataclass(frozen=True)
class Cost:
    calls: int
    spend_usd: float | None
    unknown_price_calls: int
    days: float  # days the spend is averaged over (see _days)
    cache_savings_usd: float | None  # None: no cached tokens, or no price to compare with
    cached_tokens: int
    bucket_s: int
    by: pd.DataFrame  # group, calls, spend_usd, share, usd_per_1k_calls, input_tokens, output_tokens, unknown_price
    over_time: pd.DataFrame  # time, grp, usd
    top_calls: pd.DataFrame
    savings: pd.DataFrame  # provider, model, cached_tokens, saved_usd

    @property
    def usd_per_1k_calls(self) -> float | None:
        return None if self.spend_usd is None or not self.calls else self.spend_usd / self.calls * 1000

    @property
    def usd_per_day(self) -> float | None:
        return None if self.spend_usd is None else self.spend_usd / self.days


def _days(scope: Scope, span_s: float | None) -> float:
    """Days to average spend over: the chosen range, or for "all time" the calls' span (at least a day)."""
    length = scope.window.length
    if length is not None:
        return length.total_seconds() / 86400
    return max((span_s or 0.0) / 86400, 1.0)


def tag_keys(con: duckdb.DuckDBPyConnection, scope: Scope) -> list[str]:
    where, params = scope.condition()
    found = con.execute(
        f"SELECT DISTINCT unnest(map_keys(c.tags)) AS k FROM calls AS c WHERE {where} ORDER BY k", params
    ).fetchall()
    return [k for (k,) in found if k]


def dimension_sql(dimension: str) -> tuple[str, list[object]]:
    """SQL of a grouping and its parameters; "tag:<key>" groups by that tag's value."""
    if dimension.startswith(TAG_PREFIX):
        return "c.tags[?]", [dimension[len(TAG_PREFIX) :]]
    return DIMENSIONS.get(dimension, DIMENSIONS["model"]), []


def cost(con: duckdb.DuckDBPyConnection, scope: Scope, *, by: str = "model", pricer: Pricer | None = None) -> Cost:
    pricer = pricer or Pricer()
    where, params = scope.condition()
    totals = row(
        con,
        f"""
SELECT count(*), sum(cost_usd), count(*) FILTER (WHERE price_known = false), coalesce(sum(cached_tokens), 0),
       timezone('UTC', min(started_at)), timezone('UTC', max(started_at)),
       epoch(max(started_at)) - epoch(min(started_at))
FROM calls AS c WHERE {where}""",
        params,
    )
    group, group_params = dimension_sql(by)
    by_frame = frame(
        con,
        f"""
SELECT coalesce(CAST({group} AS VARCHAR), '{NONE_LABEL}') AS "group", count(*) AS calls, sum(c.cost_usd) AS spend_usd,
       sum(c.cost_usd) / nullif(sum(sum(c.cost_usd)) OVER (), 0) AS share,
       sum(c.cost_usd) / count(*) * 1000 AS usd_per_1k_calls,
       sum(c.input_tokens) AS input_tokens, sum(c.output_tokens) AS output_tokens,
       count(*) FILTER (WHERE c.price_known = false) AS unknown_price
FROM calls AS c WHERE {where} GROUP BY 1 ORDER BY spend_usd DESC NULLS LAST, calls DESC""",
        group_params + params,
    )
    seconds = bucket_seconds(totals[4], totals[5])
    over_time = frame(
        con,
        top_groups_sql(
            f"SELECT {bucket_sql('c.started_at', seconds)} AS time, "
            f"coalesce(CAST({group} AS VARCHAR), '{NONE_LABEL}') AS grp, sum(c.cost_usd) AS usd "
            f"FROM calls AS c WHERE {where} AND c.cost_usd IS NOT NULL GROUP BY ALL",
            "grp",
            "usd",
        ),
        group_params + params,
    )
    top = frame(
        con,
        f"""
SELECT {utc("c.started_at")} AS time, c.call_id, c.provider, coalesce(c.response_model, c.request_model) AS model,
       c.route, c.input_tokens, c.output_tokens, c.cost_usd, c.duration_ms, c.status,
       CAST(c.tags AS VARCHAR) AS tags
FROM calls AS c WHERE {where} AND {among_top("c.cost_usd", where, TOP_CALLS)}
ORDER BY c.cost_usd DESC LIMIT {TOP_CALLS}""",
        params * 2,
    )
    savings = frame(
        con,
        f"""
SELECT c.provider, coalesce(c.response_model, c.request_model) AS model, sum(c.cached_tokens) AS cached_tokens
FROM calls AS c WHERE {where} AND c.cached_tokens > 0 GROUP BY ALL ORDER BY cached_tokens DESC""",
        params,
    )
    savings["saved_usd"] = [
        pricer.cache_read_savings(r.provider, r.model, int(r.cached_tokens)) for r in savings.itertuples(index=False)
    ]
    known = [s for s in savings["saved_usd"] if s is not None]
    return Cost(
        calls=int(totals[0]),
        spend_usd=totals[1],
        unknown_price_calls=int(totals[2]),
        days=_days(scope, totals[6]),
        cache_savings_usd=sum(known) if known else None,
        cached_tokens=int(totals[3]),
        bucket_s=seconds,
        by=by_frame,
        over_time=over_time,
        top_calls=top,
        savings=savings,
    )
