"""What every page gets: the log, the filters from the URL, and a cached way to load its data.

Each load opens the log the way every unillm reader does (`store.reading`: a fresh in-memory
DuckDB that attaches the file read-only for the length of the queries), so the dashboard never
holds the log while it is idle and apps keep recording. Results are cached per filters and
refresh tick, so clicking around does not re-run the same SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from unillm.dashboard.filters import UTC, Filters, Scope
from unillm.tracer.location import LogLocation
from unillm.tracer.store import reading

# Relative ranges end "now", rounded down to this many seconds so that reruns within it share
# cached results; "Refresh now" and auto-refresh move it on.
NOW_STEP_S = 5


@dataclass(frozen=True)
class PageContext:
    location: LogLocation
    filters: Filters
    now: dt.datetime
    refresh: int  # bumped by "Refresh now": part of every cache key

    @property
    def scope(self) -> Scope:
        return Scope(self.filters, self.filters.window(self.now))

    def load(self, loader: Callable[..., Any], **options: Any) -> Any:
        """`loader(con, scope, **options)` run against the log, cached."""
        return _cached_load(
            f"{loader.__module__}.{loader.__qualname__}",
            str(self.location.db_path),
            self.filters,
            self.now.isoformat(),
            self.refresh,
            tuple(sorted(options.items())),
        )


def current_now() -> dt.datetime:
    stamp = dt.datetime.now(UTC).timestamp()
    return dt.datetime.fromtimestamp(stamp - stamp % NOW_STEP_S, UTC)


def _loader(name: str) -> Callable[..., Any]:
    import importlib

    module, _, attr = name.rpartition(".")
    loader: Callable[..., Any] = getattr(importlib.import_module(module), attr)
    return loader


@st.cache_data(ttl=600, max_entries=128, show_spinner=False)
def _cached_load(
    loader: str, db_path: str, filters: Filters, now: str, refresh: int, options: Sequence[tuple[str, Any]]
) -> Any:
    scope = Scope(filters, filters.window(dt.datetime.fromisoformat(now)))
    with reading(LogLocation(Path(db_path))) as con:
        return _loader(loader)(con, scope, **dict(options))


@st.cache_data(ttl=60, show_spinner=False)
def filter_options(db_path: str, refresh: int) -> dict[str, list[str]]:
    """Values offered in the sidebar's filters: every provider, model, route and tag key in the log."""
    with reading(LogLocation(Path(db_path))) as con:
        found: dict[str, list[str]] = {}
        for name, sql in (
            ("provider", "SELECT DISTINCT provider FROM calls WHERE provider IS NOT NULL"),
            (
                "model",
                "SELECT DISTINCT m FROM (SELECT request_model AS m FROM calls UNION ALL "
                "SELECT response_model FROM calls) WHERE m IS NOT NULL",
            ),
            ("route", "SELECT DISTINCT route FROM calls WHERE route IS NOT NULL"),
        ):
            found[name] = sorted(str(v) for (v,) in con.execute(sql).fetchall())
        return found
