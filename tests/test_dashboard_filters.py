"""The dashboard's filters: read from a URL (hand-edited ones included), written back, and turned
into SQL that selects the right calls. No streamlit needed."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from unillm.dashboard.filters import Filters, Scope, Window

pytestmark = pytest.mark.sdk_independent  # scripts/test runs it in one openai environment only

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.timezone.utc)


def test_a_url_round_trips_and_defaults_stay_out_of_it() -> None:
    params = {
        "range": ["7d"],
        "provider": ["openai", "anthropic"],
        "tag": ["user:u-1", "team:growth"],
        "route": ["support"],
    }
    filters = Filters.from_params(params)
    assert filters.providers == ("openai", "anthropic") and filters.tags == (("user", "u-1"), ("team", "growth"))
    assert filters.to_params() == params
    assert Filters().to_params() == {}  # the default view has a bare URL
    assert Filters.from_params({"provider": ["openai,gemini"]}).providers == ("openai", "gemini")


def test_a_hand_edited_url_still_opens() -> None:
    filters = Filters.from_params({"range": ["fortnight"], "tag": ["no-colon", ":empty-key"], "from": ["yesterday"]})
    assert filters == Filters()
    custom = Filters.from_params({"range": ["custom"], "from": ["2026-11-01"], "to": ["not-a-date"]})
    assert (custom.first_day, custom.last_day) == (dt.date(2026, 11, 1), None)


def test_windows_and_the_previous_period() -> None:
    day = Filters(range="24h").window(NOW)
    assert day.start == NOW - dt.timedelta(hours=24) and day.end is None  # a call made a second ago shows
    assert day.previous() == Window(NOW - dt.timedelta(hours=48), NOW - dt.timedelta(hours=24))
    assert Filters(range="all").window(NOW).previous() is None
    custom = Filters(range="custom", first_day=dt.date(2026, 11, 1), last_day=dt.date(2026, 11, 3)).window(NOW)
    assert custom.length == dt.timedelta(days=3)
    assert custom.previous() == Window(custom.start - dt.timedelta(days=3), custom.start)  # type: ignore[operator]


def test_the_sql_selects_the_filtered_calls() -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TABLE calls (call_id VARCHAR, started_at TIMESTAMPTZ, provider VARCHAR, request_model VARCHAR,"
        " response_model VARCHAR, route VARCHAR, tags MAP(VARCHAR, VARCHAR))"
    )
    rows = [
        ("a", NOW - dt.timedelta(hours=1), "openai", "gpt-4o", "gpt-4o-2024-08-06", "support", {"user": "u-1"}),
        ("b", NOW - dt.timedelta(hours=2), "anthropic", "gpt-4o", "claude-sonnet-4-5", "support", {"user": "u-2"}),
        ("c", NOW - dt.timedelta(hours=30), "openai", "gpt-4o-mini", "gpt-4o-mini", None, {}),
        ("d", NOW + dt.timedelta(seconds=5), "openai", "gpt-4o-mini", None, None, {"user": "u-1"}),  # after "now"
    ]
    for call_id, started, *rest in rows:
        con.execute(
            "INSERT INTO calls VALUES (?, CAST(? AS TIMESTAMPTZ), ?, ?, ?, ?, ?)", [call_id, started.isoformat(), *rest]
        )

    def selected(**values: object) -> list[str]:
        filters = Filters(**values)  # type: ignore[arg-type]
        where, params = Scope(filters, filters.window(NOW)).condition()
        return sorted(r[0] for r in con.execute(f"SELECT call_id FROM calls AS c WHERE {where}", params).fetchall())

    assert selected() == ["a", "b", "d"]
    assert selected(range="all") == ["a", "b", "c", "d"]
    assert selected(providers=("anthropic",)) == ["b"]
    assert selected(models=("claude-sonnet-4-5",)) == ["b"]  # the model that answered
    assert selected(models=("gpt-4o",)) == ["a", "b"]  # or the one asked for
    assert selected(routes=("support",), tags=(("user", "u-1"),)) == ["a"]
    assert selected(
        range="custom", first_day=(NOW - dt.timedelta(days=2)).date(), last_day=(NOW - dt.timedelta(days=1)).date()
    ) == ["c"]
