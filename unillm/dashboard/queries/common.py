"""Helpers the page queries share: running SQL into small frames, and time buckets for charts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

# Bucket widths a time chart may use, in seconds: "nice" steps from one second to a week.
_NICE_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800)
# About this many buckets across a chart: enough to show an outage's shape, few enough to read.
TARGET_BUCKETS = 60
# How many groups a stacked chart shows before the rest become "other".
TOP_GROUPS = 8
OTHER = "other"
NONE_LABEL = "(none)"


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    return con.execute(sql, list(params)).df()


def row(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
    found = con.execute(sql, list(params)).fetchone()
    assert found is not None  # aggregates without GROUP BY always return one row
    return found


def bucket_seconds(first: dt.datetime | None, last: dt.datetime | None) -> int:
    """A bucket width that spreads the data between `first` and `last` over ~TARGET_BUCKETS bars.

    Charts follow the data, not the chosen range: a demo run that lasted 20 seconds gets
    one-second bars even in a "last 24 hours" view.
    """
    if first is None or last is None:
        return 60
    span = max((last - first).total_seconds(), 1.0)
    for seconds in _NICE_SECONDS:
        if span / seconds <= TARGET_BUCKETS:
            return seconds
    return _NICE_SECONDS[-1]


def bucket_label(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def bucket_sql(column: str, seconds: int) -> str:
    """The bucket start of a TIMESTAMPTZ column, as a naive UTC timestamp (what charts take).

    Integer arithmetic on epoch microseconds: at 5M rows ~0.05 s, where time_bucket() on a
    TIMESTAMPTZ (time-zone aware) takes ~0.33 s.
    """
    micros = int(seconds) * 1_000_000
    return f"make_timestamp((epoch_us({column}) // {micros}) * {micros})"


def utc(column: str) -> str:
    """A TIMESTAMPTZ column as a naive UTC timestamp: frames without tz conversions (and pytz)."""
    return f"timezone('UTC', {column})"


def top_groups_sql(inner: str, group: str, value: str) -> str:
    """Wrap `inner` (a SELECT with columns time, `group`, `value`) so only the TOP_GROUPS largest
    groups keep their name and the rest are summed as "other"."""
    return f"""
WITH t AS MATERIALIZED ({inner}),
top AS (SELECT {group} FROM t GROUP BY {group} ORDER BY sum({value}) DESC NULLS LAST LIMIT {TOP_GROUPS})
SELECT time, CASE WHEN {group} IN (SELECT {group} FROM top) THEN {group} ELSE '{OTHER}' END AS {group},
       sum({value}) AS {value}
FROM t GROUP BY ALL ORDER BY time"""


def among_top(column: str, where: str, n: int) -> str:
    """A condition on `calls AS c` rows: `column` is at least the n-th largest value under `where`
    (its parameters are needed once more, after the caller's own).

    For "newest 200" and "most expensive 20" lists: sorting 5M rows with every column to show
    costs ~0.6 s, finding the cutoff on one column and then reading the few rows above it ~0.1 s.
    """
    return (
        f"{column} >= (SELECT min(v) FROM (SELECT {column} AS v FROM calls AS c "
        f"WHERE {where} AND {column} IS NOT NULL ORDER BY v DESC LIMIT {int(n)}))"
    )
