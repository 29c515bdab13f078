"""Dashboard benchmark: how long each page of `unillm dashboard` takes to render in full on a call
log of 1,000,000 and 5,000,000 calls. Used by run.py (`python benchmarks/run.py --only dashboard`).

The logs come from `unillm.testing.seed` (29 days of synthetic calls ending when they were seeded,
so the 30-day range holds every row) and are cached in `benchmarks/.cache/dashboard/`: they are
seeded again only when the seeding arguments or the seeder change, or when a log is more than
12 hours old. Seeding a log runs in its own interpreter; so does the measuring of each log size.

Each page (`?page=NAME&range=30d`, the widest range: every row) is rendered by Streamlit's
`AppTest` — the whole script: sidebar, filter options, the page's queries, charts and tables —
once to warm up (imports, DuckDB's first open), then `RUNS` times, each from a fresh AppTest with
`st.cache_data` cleared, so no cached result hides the work. A run fails when the script raised
or showed an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
APP = ROOT / "unillm" / "dashboard" / "app.py"
CACHE = HERE / ".cache" / "dashboard"

PAGES = ("overview", "failover", "cost", "calls", "sql")
RANGE = "30d"
SIZES = (1_000_000, 5_000_000)
SEED_DAYS = 29.0  # the 30-day range holds every row while the log is less than a day old
SEED = 7
MAX_AGE = timedelta(hours=12)
RUNS = 5
QUICK_RUNS = 2
SLOW_PAGE_S = 10.0  # a page this slow on its warm-up run gets QUICK_RUNS timed runs, not RUNS
TIMEOUT_S = 60
TARGET_S = 2.0
TARGET_CALLS = 5_000_000


# -- workers (each runs in its own interpreter) ---------------------------------------------------


def worker_seed(p: dict[str, Any]) -> dict[str, Any]:
    from unillm.testing.seed import seed_log

    s = seed_log(p["path"], calls=p["calls"], days=p["days"], seed=p["seed"])
    return {
        "calls": s.calls,
        "attempts": s.attempts,
        "seconds": s.seconds,
        "end": s.end.isoformat(),
        "bytes": Path(p["path"]).stat().st_size,
    }


def _run_page(app: str, page: str) -> tuple[float, str | None]:
    """Seconds to render `page` once in a fresh AppTest, and what went wrong (None: nothing)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(app, default_timeout=TIMEOUT_S)
    at.query_params["page"] = page
    at.query_params["range"] = RANGE
    t0 = time.perf_counter()
    try:
        at.run()
    except Exception as exc:  # a timeout, mostly
        return time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - t0
    if at.exception:
        return seconds, "exception: " + " | ".join(str(e.value).splitlines()[0] for e in at.exception)
    if at.error:
        return seconds, "error shown: " + " | ".join(str(e.value).splitlines()[0] for e in at.error)
    return seconds, None


def worker_pages(p: dict[str, Any]) -> dict[str, Any]:
    """Warm up every page, then time `runs` renders of each, interleaving the pages."""
    import streamlit

    os.environ["UNILLM_LOG"] = p["log"]
    pages: dict[str, dict[str, Any]] = {}
    for page in p["pages"]:
        streamlit.cache_data.clear()
        seconds, problem = _run_page(p["app"], page)
        pages[page] = {"warmup_s": seconds, "times": [], "problem": problem}
    for round_ in range(p["runs"]):
        for page, r in pages.items():
            if r["problem"] or (round_ >= QUICK_RUNS and r["warmup_s"] > SLOW_PAGE_S):
                continue
            streamlit.cache_data.clear()
            seconds, problem = _run_page(p["app"], page)
            if problem:
                r["problem"] = problem
            else:
                r["times"].append(seconds)
    for r in pages.values():
        if r["times"]:
            r["median_s"] = statistics.median(r["times"])
            r["max_s"] = max(r["times"])
    return {"pages": pages}


WORKERS = {"seed": worker_seed, "pages": worker_pages}


# -- the harness side -----------------------------------------------------------------------------


def _run_worker(kind: str, params: dict[str, Any], cwd: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), kind, json.dumps(params)]
    env = {k: v for k, v in os.environ.items() if k not in ("UNILLM_LOG", "UNILLM_CONFIG")}
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"dashboard benchmark worker {kind} failed:\n{out.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _seeder_version() -> str:
    """Changes whenever the seeder's code does: a cached log from an older seeder is seeded again."""
    source = (ROOT / "unillm" / "testing" / "seed.py").read_bytes()
    return hashlib.sha256(source).hexdigest()[:16]


def seeded_log(calls: int, cache: Path, work: Path) -> dict[str, Any]:
    """The cached log of `calls` calls (seeded now if missing, stale or made differently)."""
    folder = cache / f"calls-{calls}"
    log, meta_path = folder / "calls.duckdb", folder / "seed.json"
    wanted = {"calls": calls, "days": SEED_DAYS, "seed": SEED, "seeder": _seeder_version()}
    try:
        meta = json.loads(meta_path.read_text())
        fresh = datetime.now(timezone.utc) - datetime.fromisoformat(meta["end"]) < MAX_AGE
        if fresh and log.exists() and all(meta.get(k) == v for k, v in wanted.items()):
            return {**meta, "log": str(log), "cached": True}
    except (OSError, ValueError, KeyError):
        pass
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    print(f"dashboard: seeding {calls:,} calls into {log} ...", flush=True)
    summary = _run_worker("seed", {"path": str(log), "calls": calls, "days": SEED_DAYS, "seed": SEED}, work)
    meta = {**wanted, **summary}
    meta_path.write_text(json.dumps(meta, indent=1))
    return {**meta, "log": str(log), "cached": False}


def bench_dashboard(
    quick: bool,
    tmp: Path,
    *,
    app: Path = APP,
    sizes: tuple[int, ...] = SIZES,
    cache: Path = CACHE,
    pages: tuple[str, ...] = PAGES,
) -> dict[str, Any]:
    if not app.exists():
        return {"skipped": f"{app.relative_to(ROOT) if app.is_relative_to(ROOT) else app} does not exist yet"}
    runs = QUICK_RUNS if quick else RUNS
    work = tmp / "dashboard"
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"runs": runs, "range": RANGE, "sizes": {}}
    for calls in sizes:
        started = time.perf_counter()
        seed = seeded_log(calls, cache, work)
        print(f"dashboard: rendering {len(pages)} pages on {calls:,} calls ...", flush=True)
        measured = _run_worker("pages", {"log": seed["log"], "app": str(app), "pages": list(pages), "runs": runs}, work)
        results["sizes"][str(calls)] = {"seed": seed, **measured}
        print(f"dashboard: {calls:,} calls took {time.perf_counter() - started:.0f} s", flush=True)
    return results


# -- rendering ------------------------------------------------------------------------------------


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def _calls(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n:,}"


def _verdict(r: dict[str, Any] | None) -> str:
    if r is None or "median_s" not in r:
        return "**no** (failed)" if r is not None else "—"
    if r["max_s"] <= TARGET_S:
        return "yes"
    if r["median_s"] <= TARGET_S:
        return "median only"
    return "**no**"


def render_dashboard(r: dict[str, Any]) -> list[str]:
    lines = ["", "## Dashboard", ""]
    if "skipped" in r:
        return [*lines, f"Not measured: {r['skipped']}."]
    sizes = sorted(r["sizes"], key=int)
    seeds = {int(n): r["sizes"][n]["seed"] for n in sizes}
    target_size = str(TARGET_CALLS) if str(TARGET_CALLS) in r["sizes"] else sizes[-1]
    lines += [
        "Each page of `unillm dashboard` rendered in full by Streamlit's `AppTest` (the whole script:",
        "sidebar, filter options, the page's queries, charts and tables) with",
        f"`?page=NAME&range={r['range']}`, the widest range (every row of the log): one warm-up render, then",
        f"{r['runs']} timed renders per page, each from a fresh `AppTest` with `st.cache_data` cleared so no",
        f"cached result hides the work. Target (issue): each page fully rendered within {TARGET_S:g} s at",
        f"{TARGET_CALLS:,} calls, judged on the slowest of the {_calls(int(target_size))} runs",
        '("median only": the median is within it, the slowest run is not).',
        "",
        "| page | " + " | ".join(f"{_calls(int(n))} median | {_calls(int(n))} max" for n in sizes) + " | target met |",
        "|---|" + "---|---|" * len(sizes) + "---|",
    ]
    problems = []
    for page in PAGES:
        cells = []
        for n in sizes:
            p = r["sizes"][n]["pages"].get(page)
            cells += [_s(p.get("median_s")) if p else "—", _s(p.get("max_s")) if p else "—"]
            if p and p.get("problem"):
                problems.append(f"- `{page}` at {_calls(int(n))} calls: {p['problem']}")
        target = r["sizes"][target_size]["pages"].get(page)
        lines.append(f"| {page} | " + " | ".join(cells) + f" | {_verdict(target)} |")
    if problems:
        lines += ["", "Failed renders:", "", *problems]
    seeded = "; ".join(
        f"{n:,} calls in {s['seconds']:.1f} s ({s['attempts']:,} attempts, {s['bytes'] / 2**20:,.0f} MiB)"
        for n, s in seeds.items()
    )
    lines += [
        "",
        "The logs are synthetic (`unillm.testing.seed`: DuckDB SQL, no Python per row): a realistic mix",
        "of providers, routes, streams, errors and tags over 29 days, with a 25-minute OpenAI outage",
        "(failovers, breaker events) 3 hours before the end. Seeded with",
        f"`python -m unillm.testing.seed --calls N --days {SEED_DAYS:g} PATH/calls.duckdb`: {seeded};",
        f"cached in `benchmarks/.cache/dashboard/` and seeded again when older than {MAX_AGE.total_seconds() / 3600:g} hours.",
        "Run this section alone with `python benchmarks/run.py --only dashboard`.",
    ]
    return lines


if __name__ == "__main__":
    kind, raw = sys.argv[1], sys.argv[2]
    print(json.dumps(WORKERS[kind](json.loads(raw))), flush=True)
