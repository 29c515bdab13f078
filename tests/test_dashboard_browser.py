"""The dashboard in a real browser (system Chromium under Playwright), on a log `unillm demo` made.

Screenshots go to $UNILLM_SCREENSHOTS when set, else to each test's tmp_path. Without Chromium or
Playwright these tests skip, unless UNILLM_REQUIRE_BROWSER is set (CI), where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("streamlit", reason="the dashboard tests need Streamlit (pip install 'unillm[dashboard]')")

from browser import (  # noqa: E402
    PAGES,
    browser_missing,
    chromium,
    exception_texts,
    make_demo_log,
    open_page,
    running_dashboard,
    screenshot,
    write_stand_in_app,
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = browser_missing()
    if missing:
        if os.environ.get("UNILLM_REQUIRE_BROWSER"):
            pytest.fail(f"UNILLM_REQUIRE_BROWSER is set, but {missing}")
        pytest.skip(missing)
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_demo_log(tmp_path_factory.mktemp("dashboard") / "calls.duckdb", calls=40)


@pytest.fixture(scope="module")
def dashboard(browser: Any, demo_log: Path) -> Iterator[str]:
    """The real dashboard (unillm/dashboard/app.py) on the demo log; its base URL."""
    with running_dashboard(demo_log) as url:
        yield url


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = os.environ.get("UNILLM_SCREENSHOTS")
    return Path(folder) if folder else tmp_path


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_without_an_exception(browser: Any, dashboard: str, shots: Path, name: str) -> None:
    page = open_page(browser, dashboard, {"page": name, "range": "24h"})
    try:
        screenshot(page, shots / f"dashboard-{name}.png")
        assert "unillm" in page.title()
        assert exception_texts(page) == []
    finally:
        page.context.close()


def test_the_harness_waits_for_the_script_and_sees_exceptions(browser: Any, tmp_path: Path) -> None:
    """open_page returns only once a slow script has finished and been drawn; an exception box is
    found; the app reads the log the launcher was given."""
    log = tmp_path / "calls.duckdb"
    (tmp_path / "calls.spool").mkdir()
    with running_dashboard(log, app_path=write_stand_in_app(tmp_path)) as url:
        page = open_page(browser, url, {"page": "slow"})  # sleeps 2.5 s before its last elements
        try:
            main = page.locator('[data-testid="stMain"]')
            assert f"page=slow log={log} done" in main.inner_text()  # already there: no waiting here
            assert page.locator('[data-testid="stVegaLiteChart"] svg').count() == 1  # drawn, not pending
            assert exception_texts(page) == []
            assert screenshot(page, tmp_path / "slow.png").stat().st_size > 5_000
        finally:
            page.context.close()

        page = open_page(browser, url, {"page": "boom"})
        try:
            assert any("stand-in failure" in text for text in exception_texts(page))
        finally:
            page.context.close()


@pytest.fixture(scope="module")
def seeded_dashboard(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real dashboard on the log whose figures are known by hand (tests/dashboard_log.py)."""
    import dashboard_log

    log = tmp_path_factory.mktemp("seeded") / "calls.duckdb"
    dashboard_log.write_log(log)
    with running_dashboard(log) as url:
        yield url


def _metrics(page: Any) -> dict[str, str]:
    """Each KPI tile's label and value, as the browser shows them."""
    shown: dict[str, str] = {}
    for tile in page.locator('[data-testid="stMetric"]').all():
        label = tile.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        shown[label] = tile.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return shown


def test_the_kpis_show_the_seeded_numbers(browser: Any, seeded_dashboard: str, shots: Path) -> None:
    import dashboard_log as seeded

    page = open_page(browser, seeded_dashboard, {"page": "overview"})
    try:
        shown = _metrics(page)
        assert shown["Spend"] == "$0.300"
        assert shown["Calls"] == str(seeded.CALLS)
        assert shown["Error rate"] == f"{seeded.ERRORS / seeded.CALLS * 100:.1f}%"
        assert shown["Failover rate"] == f"{seeded.FAILOVERS / seeded.CALLS * 100:.1f}%"
        assert shown["Latency p50"] == "700 ms"
        main = page.locator('[data-testid="stMain"]').inner_text()
        assert "1 calls have no known price" in main and f"dropped {seeded.DROPPED} records" in main
        assert page.locator('[data-testid="stVegaLiteChart"] svg, [data-testid="stVegaLiteChart"] canvas').count() == 3
        screenshot(page, shots / "dashboard-seeded-overview.png")
    finally:
        page.context.close()


def test_the_failover_timeline_shows_the_outage(browser: Any, seeded_dashboard: str, shots: Path) -> None:
    import dashboard_log as seeded

    page = open_page(browser, seeded_dashboard, {"page": "failover"})
    try:
        shown = _metrics(page)
        assert shown["Calls failed over"] == str(seeded.FAILOVERS)
        assert shown["Added latency (median)"] == "500 ms"
        main = page.locator('[data-testid="stMain"]').inner_text()
        assert "openai/gpt-4o failed 4 of 4 attempts" in main
        assert "4 calls failed over, most from openai/gpt-4o to anthropic/claude-sonnet-4-5 (4)" in main
        assert "Circuit breakers opened 2 times on 1 targets; all closed again." in main
        # The breaker timeline is drawn: its rows are labelled with the target.
        charts = page.locator('[data-testid="stVegaLiteChart"]')
        assert charts.count() == 3
        assert "openai/gpt-4o" in charts.nth(1).inner_html()  # the breaker's row
        assert "openai/gpt-4o → anthropic/claude-sonnet-4-5" in charts.nth(2).inner_html()  # the timeline's lane
        screenshot(page, shots / "dashboard-seeded-failover.png")
    finally:
        page.context.close()


def test_a_filter_in_the_url_is_applied_in_the_browser(browser: Any, seeded_dashboard: str) -> None:
    page = open_page(browser, seeded_dashboard, {"page": "overview", "provider": "anthropic"})
    try:
        assert _metrics(page)["Calls"] == "4"
        assert "provider=anthropic" in page.url
    finally:
        page.context.close()


def test_auto_refresh_shows_new_calls_without_a_reload(browser: Any, tmp_path: Path) -> None:
    """With ?refresh=10s the page re-runs on its own and picks up a call an app just recorded."""
    import time

    import dashboard_log as seeded

    log = tmp_path / "calls.duckdb"
    seeded.write_log(log)
    with running_dashboard(log) as url:
        page = open_page(browser, url, {"page": "overview", "refresh": "10s"})
        try:
            assert _metrics(page)["Calls"] == str(seeded.CALLS)
            seeded.add_call(log, "late-0")
            deadline = time.monotonic() + 40
            while _metrics(page).get("Calls") != str(seeded.CALLS + 1):
                assert time.monotonic() < deadline, f"still {_metrics(page).get('Calls')} calls after 40 s"
                page.wait_for_timeout(1000)
            assert "refresh=10s" in page.url
        finally:
            page.context.close()
