"""Drive the dashboard in a real browser: start `unillm dashboard`, open its pages in Chromium, and
take screenshots. Used by tests/test_dashboard_*.py and scripts/dashboard_screenshots.py.

Chromium is the system one (Debian's `chromium` package, /usr/bin/chromium; `UNILLM_CHROMIUM`
names another), driven by Playwright without its own browser download (`playwright install` is
never needed). Nothing here imports streamlit or playwright at module level.

    with running_dashboard(log) as url, chromium() as browser:
        page = open_page(browser, url, {"page": "overview"})
        screenshot(page, "overview.png")
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

CHROMIUM = Path(os.environ.get("UNILLM_CHROMIUM") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 60.0  # the dashboard process answering /_stcore/health
RENDER_TIMEOUT_S = 30.0  # one page run and drawn
PAGES = ("overview", "failover", "cost", "calls", "sql")
WIDTH = 1400

_URL_LINE = re.compile(r"unillm dashboard: (http://\S+)")


# A tiny Streamlit app standing in for the dashboard where a test is about the harness or the
# launcher rather than the pages: `?page=slow` takes a while, `?page=boom` raises.
STAND_IN_APP = """
import os
import time

import streamlit as st

st.set_page_config(page_title="unillm", layout="wide")
page = st.query_params.get("page", "overview")
st.title("unillm stand-in")
if page == "slow":
    time.sleep(2.5)
if page == "boom":
    raise RuntimeError("stand-in failure")
st.line_chart({"calls": [3, 1, 4, 1, 5, 9, 2, 6]})
st.write(f"page={page} log={os.environ.get('UNILLM_LOG')} done")
"""


def write_stand_in_app(folder: str | os.PathLike[str]) -> Path:
    path = Path(folder) / "stand_in_app.py"
    path.write_text(STAND_IN_APP)
    return path


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install 'unillm[e2e]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set UNILLM_CHROMIUM)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_demo_log(log: Path, calls: int = 40) -> Path:
    """A call log recorded by `unillm demo` (simulated providers, an outage midway, failovers)."""
    subprocess.run(
        [sys.executable, "-m", "unillm.cli", "demo", "--log", str(log), "--quiet", "--calls", str(calls)],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=300,
    )
    return log


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except OSError:
        return False


@contextlib.contextmanager
def running_dashboard(
    log: str | os.PathLike[str],
    *,
    port: int | None = None,
    app_path: str | os.PathLike[str] | None = None,
    extra_args: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = START_TIMEOUT_S,
) -> Iterator[str]:
    """Run `unillm dashboard --log LOG --port PORT --no-open` and yield the URL it printed, once
    `/_stcore/health` answers there. Stopped on the way out, failure or not: SIGTERM to its
    process group (the launcher and Streamlit), then SIGKILL.

    `port`: None picks a free one; 0 passes no --port (the launcher's own choice)."""
    command = [sys.executable, "-m", "unillm.cli", "dashboard", "--log", str(log), "--no-open"]
    if port != 0:
        command += ["--port", str(port or free_port())]
    if app_path is not None:
        command += ["--app-path", str(app_path)]
    command += list(extra_args)
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group, so nothing it started can outlive the test
        )

        def printed() -> str:
            output.seek(0)
            return output.read().decode(errors="replace")

        try:
            deadline = time.monotonic() + timeout
            url = None
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise AssertionError(
                        f"`unillm dashboard` exited with code {process.returncode} before answering:\n{printed()}"
                    )
                found = _URL_LINE.search(printed())
                url = found.group(1) if found else None
                if url and _healthy(url):
                    break
                time.sleep(0.2)
            else:
                raise AssertionError(
                    f"`unillm dashboard` did not answer on {url or 'the URL it should print'} "
                    f"within {timeout:g} s:\n{printed()}"
                )
            yield url
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the launcher and Streamlit at once (a Ctrl+C's way: no waiting for the launcher to
    pass it on), SIGKILL to both if they are not gone 15 s later."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless system Chromium under Playwright (a playwright.sync_api.Browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


# True once Streamlit has run the page's script to its end and drawn it: connected, the script
# not running (it starts as "initial", so this also means it ran), the "Running..." status widget
# gone, no skeleton placeholders, the main block there, every chart and data frame drawn.
_RENDERED = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return false;
  if (app.dataset.testScriptState === "compilationError") return true;
  return app.dataset.testConnectionState === "CONNECTED"
    && app.dataset.testScriptState === "notRunning"
    && !document.querySelector('[data-testid="stStatusWidget"]')
    && !document.querySelector('[data-testid="stSkeleton"], [data-testid="stAppSkeleton"]')
    && !!document.querySelector('[data-testid="stMain"] [data-testid="stMainBlockContainer"]')
    && Array.from(document.querySelectorAll('[data-testid="stVegaLiteChart"]')).every(
         chart => chart.querySelector("svg, canvas"))
    && Array.from(document.querySelectorAll('[data-testid="stDataFrame"]')).every(
         frame => frame.querySelector("canvas"));
}"""

_STATE = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return {
    connection: app && app.dataset.testConnectionState,
    script: app && app.dataset.testScriptState,
    statusWidget: document.querySelector('[data-testid="stStatusWidget"]')?.innerText ?? null,
    skeletons: document.querySelectorAll('[data-testid="stSkeleton"], [data-testid="stAppSkeleton"]').length,
    mainBlock: !!document.querySelector('[data-testid="stMainBlockContainer"]'),
    text: (document.body?.innerText ?? "").slice(0, 600),
  };
}"""


def page_url(base_url: str, query: Mapping[str, str] | None = None) -> str:
    return f"{base_url}/?{urlencode(query)}" if query else f"{base_url}/"


def open_page(
    browser: Any,
    base_url: str,
    query: Mapping[str, str] | None = None,
    *,
    width: int = WIDTH,
    height: int = 900,
    timeout: float = RENDER_TIMEOUT_S,
) -> Any:
    """Open `base_url/?query` in a fresh browser context and return the Playwright page once
    Streamlit has finished running and drawing it (see `wait_rendered`).

    `page.errors` lists the uncaught JavaScript errors and console errors seen meanwhile."""
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme="light", locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda message: errors.append(f"console: {message.text}") if message.type == "error" else None)
    page.errors = errors
    url = page_url(base_url, query)
    page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
    wait_rendered(page, timeout=timeout, what=url)
    return page


def wait_rendered(page: Any, *, timeout: float = RENDER_TIMEOUT_S, what: str = "the page") -> None:
    """Wait until Streamlit has run the script and drawn the result, including elements that load
    their code lazily (charts, data frames); fail naming what the page was still doing."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    deadline = time.monotonic() + timeout
    try:
        page.wait_for_function(_RENDERED, timeout=timeout * 1000, polling=100)
        # Charts and data frames fetch their code after the script ends: let those requests
        # finish, then require the finished state again (a late element may have re-rendered).
        page.wait_for_load_state("networkidle", timeout=max(1.0, deadline - time.monotonic()) * 1000)
        page.wait_for_function(_RENDERED, timeout=max(1.0, deadline - time.monotonic()) * 1000, polling=100)
    except PlaywrightTimeout:
        state = page.evaluate(_STATE)
        raise AssertionError(
            f"Streamlit did not finish rendering {what} within {timeout:g} s: connection {state['connection']}, "
            f"script {state['script']}, status widget {state['statusWidget']!r}, {state['skeletons']} skeleton(s), "
            f"main block {'present' if state['mainBlock'] else 'missing'}; the page says:\n{state['text']}"
        ) from None
    if page.evaluate(_STATE)["script"] == "compilationError":
        raise AssertionError(f"the dashboard script does not compile ({what}):\n{page.evaluate(_STATE)['text']}")
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def screenshot(page: Any, path: str | os.PathLike[str]) -> Path:
    """A PNG of the whole page. Streamlit scrolls inside its main section rather than the document,
    so the viewport is first made as tall as the content (then restored)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    viewport = page.viewport_size
    tall = page.evaluate(
        """() => {
          const main = document.querySelector('[data-testid="stMain"]');
          const sidebar = document.querySelector('[data-testid="stSidebarContent"]');
          return Math.max(document.documentElement.scrollHeight, main ? main.scrollHeight : 0,
                          sidebar ? sidebar.scrollHeight : 0);
        }"""
    )
    if tall > viewport["height"]:
        page.set_viewport_size({"width": viewport["width"], "height": int(tall)})
        page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    try:
        page.screenshot(path=str(path), full_page=True, animations="disabled")
    finally:
        if tall > viewport["height"]:
            page.set_viewport_size(viewport)
    return path


def exception_texts(page: Any) -> list[str]:
    """The text of every Streamlit exception box on the page."""
    return [box.inner_text() for box in page.locator('[data-testid="stException"]').all()]
