"""Screenshots of every dashboard page for the docs: docs/dashboard-<page>.png, 1400 px wide.

Records a fresh call log with `unillm demo`, starts `unillm dashboard` on it and saves one
full-page PNG per page, using the browser harness of the tests (system Chromium under
Playwright). Needs the dashboard and e2e extras:

    .venvs/openai3/bin/pip install -e ".[dashboard,e2e]"
    .venvs/openai3/bin/python scripts/dashboard_screenshots.py [--out docs] [--calls 120] [--pages overview,cost]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import (  # noqa: E402
    PAGES,
    browser_missing,
    chromium,
    exception_texts,
    make_demo_log,
    open_page,
    running_dashboard,
    screenshot,
)

import unillm  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the PNGs (default: docs/)")
    parser.add_argument("--calls", type=int, default=120, help="app requests the demo simulates (default: 120)")
    parser.add_argument("--pages", default=",".join(PAGES), help=f"comma-separated (default: {','.join(PAGES)})")
    parser.add_argument("--width", type=int, default=1400, help="viewport width in px (default: 1400)")
    args = parser.parse_args()

    missing = browser_missing()
    if missing:
        print(f"cannot take screenshots: {missing}", file=sys.stderr)
        return 1
    failed = False
    with tempfile.TemporaryDirectory(prefix="unillm-shots-") as folder:
        log = Path(folder) / "calls.duckdb"
        print(f"recording a demo call log ({args.calls} requests) in {log} ...", flush=True)
        make_demo_log(log, calls=args.calls)
        # The Calls page is shown with the detail of a call that failed over: its attempt chain.
        failed_over = unillm.sql("select call_id from failovers where reason = 'failover' limit 1", log=str(log))
        extra = {"calls": {"call": str(failed_over.scalar())}} if failed_over.rows else {}
        with running_dashboard(log) as url, chromium() as browser:
            for name in args.pages.split(","):
                page = open_page(browser, url, {"page": name, **extra.get(name, {})}, width=args.width)
                try:
                    path = screenshot(page, args.out.resolve() / f"dashboard-{name}.png")
                    errors = exception_texts(page)
                finally:
                    page.context.close()
                print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)
                for error in errors:
                    failed = True
                    print(f"  the {name} page shows an exception: {error.splitlines()[0]}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
