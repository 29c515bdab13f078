"""Every dashboard page, run with Streamlit's AppTest against a log whose numbers are known by
hand (tests/dashboard_log.py): the figures shown are checked against that arithmetic."""

from __future__ import annotations

import datetime as dt
import statistics
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("streamlit", reason="the dashboard extra (streamlit) is installed in the last test environment")

import dashboard_log as seeded  # noqa: E402
from genai_prices import Usage, calc_price  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

import unillm  # noqa: E402

APP = Path(unillm.__file__).parent / "dashboard" / "app.py"


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("dashboard") / "calls.duckdb"
    ids = seeded.write_log(path)
    return path, ids


@pytest.fixture
def open_page(log, monkeypatch):
    path, _ = log
    monkeypatch.setenv("UNILLM_LOG", str(path))
    monkeypatch.delenv("UNILLM_CONFIG", raising=False)

    def run(page: str, **params: str | list[str]) -> AppTest:
        import streamlit as st

        st.cache_data.clear()
        at = AppTest.from_file(str(APP), default_timeout=30)
        at.query_params["page"] = page
        for name, value in params.items():
            at.query_params[name] = value
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run


def metrics(at: AppTest) -> dict[str, Any]:
    return {m.label: m for m in at.metric}


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(str(e.value) for e in at.get(kind))


def frames(at: AppTest) -> list[Any]:
    return [e.value for e in at.dataframe]


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (DuckDB's quantile_cont)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def openai_price(model: str, input_tokens: int, output_tokens: int, cached: int = 0) -> float:
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cached)
    return float(calc_price(usage, model_ref=model, provider_id="openai").total_price)


# ---- Overview --------------------------------------------------------------------------------


def test_overview_kpis_against_the_previous_period(open_page) -> None:
    at = open_page("overview")
    shown = metrics(at)
    assert shown["Spend"].value == "$0.300"  # 10 x $0.01 + 4 x $0.05; the unpriced call is not $0
    before = seeded.BEFORE_CALLS * seeded.BEFORE_COST
    assert shown["Spend"].delta == f"{(seeded.SPEND - before) / before * 100:+.1f}%"  # +200.0%
    assert shown["Calls"].value == str(seeded.CALLS)
    assert shown["Calls"].delta == f"{(seeded.CALLS - seeded.BEFORE_CALLS) / seeded.BEFORE_CALLS * 100:+.1f}%"
    assert shown["Error rate"].value == f"{seeded.ERRORS / seeded.CALLS * 100:.1f}%"  # 11.8%
    assert shown["Error rate"].delta == f"{seeded.ERRORS / seeded.CALLS * 100:+.1f} pp"  # none before
    assert shown["Failover rate"].value == f"{seeded.FAILOVERS / seeded.CALLS * 100:.1f}%"  # 23.5%
    tokens = (seeded.CALLS - seeded.ERRORS) * (seeded.INPUT_TOKENS + seeded.OUTPUT_TOKENS)
    assert shown["Tokens"].value == f"{tokens / 1000:.1f}k"
    assert shown["Latency p50"].value == f"{quantile(seeded.OK_DURATIONS, 0.5):.0f} ms"  # 700 ms
    assert shown["Latency p95"].value == f"{quantile(seeded.OK_DURATIONS, 0.95) / 1000:.2f} s"
    assert shown["Latency p50"].delta == f"{(700 - 2000) / 2000 * 100:+.1f}%"
    assert shown["TTFT p50"].value == "—"  # no streams in this log


def test_overview_shows_where_it_is_slow_and_what_failed(open_page) -> None:
    at = open_page("overview")
    by_model, failed = frames(at)
    slowest = by_model.iloc[0]
    assert slowest["model"] == "anthropic/claude-sonnet-4-5"  # the failed-over calls: 1.5 s each
    assert (slowest["calls"], slowest["p95_ms"], slowest["usd"]) == (4, seeded.FAILOVER_DURATION, pytest.approx(0.2))
    mini = by_model.set_index("model").loc["openai/gpt-4o-mini"]
    assert mini["p50_ms"] == quantile(seeded.MINI_DURATIONS, 0.5)
    assert mini["p99_ms"] == pytest.approx(quantile(seeded.MINI_DURATIONS, 0.99))
    error = failed.iloc[0]
    assert (error["provider"], error["model"], error["error_type"], error["http_status"], error["calls"]) == (
        "openai",
        "gpt-4.1-mini",
        "server_error",
        500,
        seeded.ERRORS,
    )
    assert error["example"] == "The server had an error"


def test_overview_warns_about_unknown_prices_and_dropped_records(open_page) -> None:
    warnings = texts(open_page("overview"), "warning")
    assert "1 calls have no known price" in warnings and "ollama/llama3.1:8b (1)" in warnings
    assert f"dropped {seeded.DROPPED} records" in warnings


def test_overview_charts_show_spend_by_provider_or_model(open_page) -> None:
    at = open_page("overview")
    charts = at.get("vega_lite_chart")
    assert len(charts) == 3  # spend, calls by status, latency
    at = open_page("overview", spend_by="model")
    assert at.radio(key="spend_by").value == "model"


def test_a_filter_narrows_every_figure_and_lives_in_the_url(open_page) -> None:
    at = open_page("overview", provider="anthropic")
    assert metrics(at)["Calls"].value == str(seeded.FAILOVERS)
    assert metrics(at)["Spend"].value == "$0.200"
    at.sidebar.multiselect(key="provider").unselect("anthropic").select("ollama").run()
    assert metrics(at)["Calls"].value == "1"
    assert at.query_params["provider"] == "ollama"
    at.sidebar.text_input(key="tags").input("user=u-1").run()
    assert "No calls in this range" in texts(at, "info")  # the ollama call has no user tag
    assert at.query_params["tag"] == "user:u-1"


def test_tag_filter_from_the_url(open_page) -> None:
    at = open_page("overview", tag="user:u-2")
    assert metrics(at)["Calls"].value == "4"
    assert metrics(at)["Spend"].value == "$0.0400"
    assert at.sidebar.text_input(key="tags").value == "user=u-2"


def test_an_empty_range_says_so(open_page) -> None:
    at = open_page("overview", range="15m")
    assert "No calls in this range" in texts(at, "info")


# ---- Failover --------------------------------------------------------------------------------


def test_failover_story_timeline_and_breaker(open_page) -> None:
    at = open_page("failover")
    shown = metrics(at)
    assert shown["Calls failed over"].value == str(seeded.FAILOVERS)
    assert shown["Failed attempts"].value == str(seeded.FAILOVERS + seeded.ERRORS)
    assert shown["Added latency (median)"].value == f"{seeded.FAILOVER_DURATION - seeded.SECOND_ATTEMPT_MS:.0f} ms"
    # Cost difference: what Anthropic charged minus what gpt-4o would have for the same tokens.
    gpt4o = openai_price("gpt-4o", seeded.INPUT_TOKENS, seeded.OUTPUT_TOKENS)
    difference = seeded.FAILOVERS * (seeded.FAILOVER_COST - gpt4o)
    assert shown["Cost difference"].value == f"${difference:.3f}"

    story = texts(at, "markdown")
    assert "**openai/gpt-4o** failed 4 of 4 attempts (last error: 503 server_error The server is overloaded)" in story
    assert "most from openai/gpt-4o to anthropic/claude-sonnet-4-5 (4)" in story
    assert "Circuit breakers opened 2 times on 1 targets; all closed again." in story

    breakers, routes, timeline, health = frames(at)
    assert breakers.iloc[0]["target"] == "openai/gpt-4o" and breakers.iloc[0]["opened"] == 2
    assert breakers.iloc[0]["not_closed_s"] == pytest.approx(seeded.BREAKER_SECONDS)
    route = routes.iloc[0]
    assert (route["from_target"], route["to_target"], route["calls"]) == (
        "openai/gpt-4o",
        "anthropic/claude-sonnet-4-5",
        4,
    )
    assert route["reasons"] == "503 server_error"
    assert sorted(timeline["call_id"]) == sorted(f"failover-{i}" for i in range(seeded.FAILOVERS))
    assert set(timeline["added_ms"]) == {seeded.FIRST_ATTEMPT_MS + seeded.FAILOVER_WAIT_MS}
    by_target = health.set_index("target")
    assert by_target.loc["openai/gpt-4o", "success_rate"] == 0
    assert by_target.loc["anthropic/claude-sonnet-4-5", "took_over"] == 4
    assert by_target.loc["openai/gpt-4o-mini", "p50_ms"] == statistics.median(seeded.MINI_DURATIONS)
    assert len(at.get("vega_lite_chart")) == 3  # failed attempts over time, breaker periods, failover events


def test_failover_provider_filter_matches_either_end(open_page) -> None:
    at = open_page("failover", provider="openai")
    assert metrics(at)["Calls failed over"].value == str(seeded.FAILOVERS)  # they left OpenAI
    today = dt.datetime.now(dt.timezone.utc).date()
    week = {"range": "custom", "from": (today - dt.timedelta(days=7)).isoformat(), "to": today.isoformat()}
    at = open_page("failover", provider="openai", **week)  # a bounded window: breakers cut at its end
    assert metrics(at)["Calls failed over"].value == str(seeded.FAILOVERS)
    assert frames(at)[0].iloc[0]["not_closed_s"] == pytest.approx(seeded.BREAKER_SECONDS)
    at = open_page("failover", provider="gemini")
    assert metrics(at)["Calls failed over"].value == "0"
    assert "No attempt failed in this range" in texts(at, "markdown")


# ---- Cost ------------------------------------------------------------------------------------


def test_cost_by_model_with_per_1k_and_cache_savings(open_page) -> None:
    at = open_page("cost")
    shown = metrics(at)
    assert shown["Spend"].value == "$0.300"
    assert shown["Cost per 1k calls"].value == f"${seeded.SPEND / seeded.CALLS * 1000:.2f}"  # $17.65
    assert shown["Spend per day"].value == "$0.300"  # the range is one day
    assert shown["Calls without a price"].value == "1"
    full = openai_price("gpt-4o-mini", seeded.INPUT_TOKENS, seeded.OUTPUT_TOKENS)
    cached = openai_price("gpt-4o-mini", seeded.INPUT_TOKENS, seeded.OUTPUT_TOKENS, cached=seeded.MINI_CACHED)
    savings = len(seeded.MINI_DURATIONS) * (full - cached)
    assert shown["Cache savings"].value == f"${savings:.6f}".rstrip("0")

    by = frames(at)[0].set_index("group")
    assert by.loc["claude-sonnet-4-5", "spend_usd"] == pytest.approx(0.2)
    assert by.loc["claude-sonnet-4-5", "share"] == pytest.approx(0.2 / 0.3)
    assert by.loc["gpt-4o-mini", "usd_per_1k_calls"] == pytest.approx(10.0)
    assert by.loc["llama3.1:8b", "unknown_price"] == 1
    top = frames(at)[1]
    assert list(top["cost_usd"][:4]) == [seeded.FAILOVER_COST] * 4
    assert frames(at)[2].iloc[0]["saved_usd"] == pytest.approx(savings)


def test_cost_by_a_tag_from_the_url(open_page) -> None:
    at = open_page("cost", by="tag:user")
    assert at.selectbox(key="cost_by").value == "tag:user"
    by = frames(at)[0].set_index("group")
    assert by.loc["u-3", "spend_usd"] == pytest.approx(0.2)
    assert by.loc["u-1", "spend_usd"] == pytest.approx(0.06)
    assert by.loc["u-2", "spend_usd"] == pytest.approx(0.04)
    at.selectbox(key="cost_by").select("provider").run()
    assert at.query_params["by"] == "provider"
    assert frames(at)[0].set_index("group").loc["openai", "calls"] == 12
    at.sidebar.radio(key="page").set_value("overview").run()  # another page: the cost page's option leaves the URL
    assert "by" not in at.query_params and "page" not in at.query_params


# ---- Calls -----------------------------------------------------------------------------------


def test_calls_list_filters_by_status_and_searches_messages(open_page) -> None:
    at = open_page("calls")
    listing = frames(at)[0]
    assert len(listing) == seeded.CALLS and listing.iloc[0]["call_id"] == "local-0"  # newest first
    at = open_page("calls", status="error")
    assert sorted(frames(at)[0]["call_id"]) == ["error-0", "error-1"]
    at = open_page("calls", q=seeded.SEARCH_WORD)
    assert list(frames(at)[0]["call_id"]) == ["mini-0"]
    assert "17 calls match" not in texts(at, "caption") and "1 calls match" in texts(at, "caption")


def test_call_detail_shows_the_attempt_chain_and_the_messages(open_page) -> None:
    at = open_page("calls", call="failover-2")
    page = texts(at, "markdown")
    assert "`1` openai/gpt-4o (first): **503 server_error** in 400 ms" in page
    assert "`2` anthropic/claude-sonnet-4-5 (failover): **ok** in 1.00 s" in page
    shown = metrics(at)
    assert shown["Cost"].value == "$0.0500" and shown["Attempts"].value == "2"
    assert shown["Tokens in / out"].value == "1,000 / 200"
    chain = frames(at)[1]
    assert list(chain["provider"]) == ["openai", "anthropic"] and list(chain["wait_ms"].fillna(0)) == [0, 100]

    at = open_page("calls", call="mini-0")
    assert f"Where is my {seeded.SEARCH_WORD}?" in texts(at, "markdown") and "In the zoo." in texts(at, "markdown")
    at = open_page("calls", call="no-such-call")
    assert "No call with id 'no-such-call'" in texts(at, "warning")


# ---- SQL -------------------------------------------------------------------------------------


def test_sql_console_runs_a_query_with_table_chart_and_csv(open_page) -> None:
    at = open_page("sql", sql="select provider, count(*) as calls from calls group by 1 order by 2 desc")
    result = frames(at)[0]
    assert list(result["provider"]) == ["openai", "anthropic", "ollama"]
    assert list(result["calls"]) == [10 + seeded.ERRORS + seeded.BEFORE_CALLS, seeded.FAILOVERS, 1]
    assert len(at.get("vega_lite_chart")) == 1
    assert len(at.get("download_button")) == 1
    assert {"calls", "attempts", "breaker_events", "recorder_drops"} <= {e.label for e in at.expander}  # the schema


def test_sql_console_refuses_statements_that_would_modify_the_log(open_page, log) -> None:
    at = open_page("sql", sql="delete from calls")
    error = texts(at, "error")
    assert "Not run: the call log is read-only: DELETE statements are refused" in error
    at = open_page("sql", sql="select 1; drop table calls")
    assert "one read-only statement per query" in texts(at, "error")
    at = open_page("sql", sql="select * from read_text('/etc/hostname')")  # a browser may not read files
    assert "reads the call log only, no other file or database" in texts(at, "error")
    at = open_page("sql", sql="select count(*) as n from calls")
    assert frames(at)[0].iloc[0]["n"] == seeded.CALLS + seeded.BEFORE_CALLS


def test_sql_examples_all_run(open_page) -> None:
    from unillm.dashboard.views.sql_console import EXAMPLES

    at = open_page("sql")
    for name in EXAMPLES:
        at.selectbox(key="sql_example").select(name).run()
        assert not at.error, (name, texts(at, "error"))
        assert at.dataframe, name


# ---- the log is never held -------------------------------------------------------------------


def test_the_log_is_free_for_writers_between_page_loads(open_page, log) -> None:
    import duckdb

    open_page("overview")
    con = duckdb.connect(str(log[0]))  # read-write: fails if any reader still had it open
    con.close()


def test_pages_date_range_custom_days(open_page) -> None:
    today = dt.datetime.now(dt.timezone.utc).date()
    at = open_page("overview", range="custom", **{"from": (today - dt.timedelta(days=3)).isoformat()})
    assert at.sidebar.selectbox(key="range").value == "custom"
    assert metrics(at)["Calls"].value == str(seeded.CALLS + seeded.BEFORE_CALLS)


def test_refresh_now_shows_calls_recorded_since(tmp_path, monkeypatch) -> None:
    """The dashboard runs beside apps that are recording: "Refresh now" shows what they added."""
    import streamlit as st

    path = tmp_path / "calls.duckdb"
    seeded.write_log(path)
    monkeypatch.setenv("UNILLM_LOG", str(path))
    still = dt.datetime.now(dt.timezone.utc)
    monkeypatch.setattr("unillm.dashboard.context.current_now", lambda: still)  # the cache clock stands still
    st.cache_data.clear()
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert metrics(at)["Calls"].value == str(seeded.CALLS)
    seeded.add_call(path, "late-0")  # an app records one more call (a spool segment, not yet folded)
    at.run()
    assert metrics(at)["Calls"].value == str(seeded.CALLS)  # same cached view until refreshed
    at.sidebar.button[0].click().run()
    assert metrics(at)["Calls"].value == str(seeded.CALLS + 1)


def test_the_dashboard_and_a_recording_app_run_side_by_side(tmp_path, monkeypatch) -> None:
    """An app records calls (writing and folding every 0.1 s) while the dashboard renders page after
    page: the app never sees an error, every call lands in the log, the pages see them arrive."""
    import threading

    import openai
    import streamlit as st

    from unillm import diagnostics
    from unillm.testing import FakeOpenAI

    path = tmp_path / "calls.duckdb"
    monkeypatch.setenv("UNILLM_LOG", str(path))
    made: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    with FakeOpenAI() as fake:
        unillm.patch(log=str(path), flush_interval=0.1, fold_interval=0.1)
        try:
            client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)

            def app() -> None:
                while not stop.is_set():
                    try:
                        client.chat.completions.create(
                            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                        )
                        made.append(1)
                    except BaseException as exc:  # the app must never see one
                        errors.append(exc)

            worker = threading.Thread(target=app)
            worker.start()
            seen: list[int] = []
            try:
                for page in ("overview", "failover", "cost", "calls", "sql") * 2:
                    st.cache_data.clear()
                    at = AppTest.from_file(str(APP), default_timeout=30)
                    at.query_params["page"] = page
                    at.run()
                    assert not at.exception, (page, [e.value for e in at.exception])
                    if page == "overview" and "Calls" in metrics(at):
                        seen.append(int(metrics(at)["Calls"].value.replace(",", "")))
            finally:
                stop.set()
                worker.join()
            unillm.flush()
        finally:
            unillm.unpatch()
            snapshot = diagnostics.snapshot()
            diagnostics.reset()
    assert not errors
    assert unillm.sql("select count(*) from calls", log=str(path)).scalar() == len(made) > 0
    assert len(seen) == 2 and seen[1] > seen[0]  # the second look saw calls recorded since the first
    assert snapshot["counts"] == {}, snapshot  # unillm had no trouble of its own either


def test_a_log_held_open_by_another_program_is_named_not_a_traceback(tmp_path, monkeypatch) -> None:
    import duckdb
    import streamlit as st

    path = tmp_path / "calls.duckdb"
    seeded.write_log(path)
    monkeypatch.setenv("UNILLM_LOG", str(path))
    st.cache_data.clear()
    holder = duckdb.connect(str(path))  # e.g. a notebook that opened the file read-write
    try:
        at = AppTest.from_file(str(APP), default_timeout=30)
        at.run()
    finally:
        holder.close()
    assert not at.exception
    assert f"cannot read the call log {path}" in texts(at, "error")
