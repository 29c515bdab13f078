"""The dashboard's filters: what they mean in SQL, and how they live in the page URL.

Every page reads the same `Filters` (time range, providers, models, routes, tags) from the URL's
query parameters, so a view can be shared by copying the address. Nothing here imports
streamlit: the SQL a filter makes is tested on its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

UTC = dt.timezone.utc

# Relative ranges offered in the sidebar, in the order shown. "all" has no bounds and no previous
# period to compare with.
RANGES: dict[str, dt.timedelta | None] = {
    "15m": dt.timedelta(minutes=15),
    "1h": dt.timedelta(hours=1),
    "6h": dt.timedelta(hours=6),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
    "90d": dt.timedelta(days=90),
    "all": None,
}
RANGE_LABELS = {
    "15m": "Last 15 minutes",
    "1h": "Last hour",
    "6h": "Last 6 hours",
    "24h": "Last 24 hours",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "all": "All time",
    "custom": "Custom (UTC days)",
}
DEFAULT_RANGE = "24h"


@dataclass(frozen=True)
class Window:
    """A half-open time interval [start, end); None means unbounded on that side.

    A relative range ("last 24 hours") has no end: the dashboard's "now" is rounded for caching,
    and a call made a second ago must still show. Its `span` is the range's length.
    """

    start: dt.datetime | None
    end: dt.datetime | None
    span: dt.timedelta | None = None

    @property
    def length(self) -> dt.timedelta | None:
        if self.start is not None and self.end is not None:
            return self.end - self.start
        return self.span

    def previous(self) -> Window | None:
        """The interval of the same length just before this one (what KPIs compare with)."""
        length = self.length
        if length is None or self.start is None:
            return None
        return Window(self.start - length, self.start)


@dataclass(frozen=True)
class Filters:
    range: str = DEFAULT_RANGE  # a key of RANGES, or "custom" (then first_day/last_day)
    first_day: dt.date | None = None
    last_day: dt.date | None = None  # inclusive
    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()  # matches the model asked for or the model that answered
    routes: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = field(default=())  # (key, value) pairs, all must match

    def window(self, now: dt.datetime) -> Window:
        if self.range == "custom":
            start = _day_start(self.first_day)
            end = _day_start(self.last_day + dt.timedelta(days=1)) if self.last_day else None
            return Window(start, end)
        length = RANGES.get(self.range, RANGES[DEFAULT_RANGE])
        if length is None:
            return Window(None, None)
        return Window(now - length, None, span=length)

    def describe(self) -> str:
        """The filters in words, for captions and empty-result hints."""
        if self.range == "custom":
            parts = [f"{self.first_day or '…'} to {self.last_day or '…'} (UTC)"]
        else:
            parts = [RANGE_LABELS.get(self.range, self.range).lower()]
        for name, values in (("provider", self.providers), ("model", self.models), ("route", self.routes)):
            if values:
                parts.append(f"{name} {' or '.join(values)}")
        parts += [f"tag {k}={v}" for k, v in self.tags]
        return ", ".join(parts)

    # ---- URL -----------------------------------------------------------------------------

    @classmethod
    def from_params(cls, params: Mapping[str, Sequence[str]]) -> Filters:
        """Filters from query parameters (each a list of values). Unknown or malformed values are
        ignored rather than fatal: a hand-edited URL still opens a page."""

        def values(name: str) -> tuple[str, ...]:
            out: list[str] = []
            for raw in params.get(name, ()):
                out += [v.strip() for v in raw.split(",") if v.strip()]
            return tuple(dict.fromkeys(out))

        chosen = (values("range") or (DEFAULT_RANGE,))[0]
        if chosen not in RANGES and chosen != "custom":
            chosen = DEFAULT_RANGE
        tags = tuple((k.strip(), v.strip()) for k, sep, v in (t.partition(":") for t in values("tag")) if sep and k)
        first_day = _date(values("from"))
        last_day = _date(values("to"))
        if chosen == "custom" and first_day is None and last_day is None:
            chosen = DEFAULT_RANGE
        return cls(
            range=chosen,
            first_day=first_day if chosen == "custom" else None,
            last_day=last_day if chosen == "custom" else None,
            providers=values("provider"),
            models=values("model"),
            routes=values("route"),
            tags=tags,
        )

    def to_params(self) -> dict[str, list[str]]:
        """Query parameters for these filters (defaults left out, so URLs stay short)."""
        params: dict[str, list[str]] = {}
        if self.range != DEFAULT_RANGE:
            params["range"] = [self.range]
        if self.range == "custom":
            if self.first_day:
                params["from"] = [self.first_day.isoformat()]
            if self.last_day:
                params["to"] = [self.last_day.isoformat()]
        for name, vals in (("provider", self.providers), ("model", self.models), ("route", self.routes)):
            if vals:
                params[name] = list(vals)
        if self.tags:
            params["tag"] = [f"{k}:{v}" for k, v in self.tags]
        return params


PARAM_NAMES = ("range", "from", "to", "provider", "model", "route", "tag")


def _day_start(day: dt.date | None) -> dt.datetime | None:
    return dt.datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None


def _date(values: tuple[str, ...]) -> dt.date | None:
    for value in values:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            continue
    return None


# ---- SQL ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """The SQL condition that selects the filtered calls of one time window, with its parameters.

    `condition` is written against the `calls` table under the alias `c`; `time_condition(col)`
    gives the bare time bounds for other tables (attempts, breaker events, recorder drops).
    """

    filters: Filters
    window: Window

    def condition(self, alias: str = "c", *, include_providers: bool = True) -> tuple[str, list[Any]]:
        parts, params = self._time(f"{alias}.started_at")
        if self.filters.providers and include_providers:
            parts.append(f"{alias}.provider IN ({placeholders(self.filters.providers)})")
            params += list(self.filters.providers)
        if self.filters.models:
            marks = placeholders(self.filters.models)
            parts.append(f"({alias}.request_model IN ({marks}) OR {alias}.response_model IN ({marks}))")
            params += list(self.filters.models) * 2
        if self.filters.routes:
            parts.append(f"{alias}.route IN ({placeholders(self.filters.routes)})")
            params += list(self.filters.routes)
        for key, value in self.filters.tags:
            parts.append(f"{alias}.tags[?] = ?")
            params += [key, value]
        return (" AND ".join(parts) or "TRUE"), params

    def time_condition(self, column: str) -> tuple[str, list[Any]]:
        parts, params = self._time(column)
        return (" AND ".join(parts) or "TRUE"), params

    @property
    def narrows_calls(self) -> bool:
        """Whether anything beyond time (and provider) selects calls: then attempts must be joined."""
        f = self.filters
        return bool(f.models or f.routes or f.tags)

    def previous(self) -> Scope | None:
        before = self.window.previous()
        return Scope(self.filters, before) if before else None

    def _time(self, column: str) -> tuple[list[str], list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        if self.window.start is not None:
            parts.append(f"{column} >= CAST(? AS TIMESTAMPTZ)")
            params.append(self.window.start.isoformat())
        if self.window.end is not None:
            parts.append(f"{column} < CAST(? AS TIMESTAMPTZ)")
            params.append(self.window.end.isoformat())
        return parts, params


def placeholders(values: Sequence[object]) -> str:
    """`?, ?, ?`: one parameter per value, for `IN (...)`."""
    return ", ".join("?" for _ in values)
