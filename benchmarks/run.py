"""unillm benchmarks: one command, results written to docs/benchmarks.md.

    bash benchmarks/run.sh                    # the one command: environments if missing, then every section
    python benchmarks/run.py                  # full run (every section; the peer sections in .venvs/bench)
    python benchmarks/run.py --quick          # fewer rounds, for a smoke check (printed; --output FILE to keep it)
    python benchmarks/run.py --only routing   # one section (repeatable); printed, written only to --output
    python benchmarks/run.py --only recorder  # the call log: recorder throughput, 4 processes, 10M rows, memory
    python benchmarks/run.py --only dashboard # each dashboard page rendered on 1M and 5M seeded calls
    python benchmarks/run.py --only peers     # vs LiteLLM and the OTel OpenAI instrumentations
    python benchmarks/run.py --only failover --only concurrency   # vs LiteLLM's Router; 1/16/256 async calls

The peer sections (peers, failover, concurrency) need LiteLLM and the OTel instrumentations, which
live only in .venvs/bench (benchmarks/peers_env.sh creates it), never in unillm's dependencies:
when the running interpreter lacks them, run.py runs those sections with .venvs/bench/bin/python
(creating the environment first if it is missing) and merges their results into the same file.

Every comparison is measured in the same run, side by side, as a ratio or a difference against
the raw openai SDK on the same in-process fake (the SDK's floor). Blocks of raw and patched
calls alternate so that drift on a shared machine hits both sides alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from dashboard import bench_dashboard, render_dashboard  # noqa: E402
from inprocess import sdk_http_library, transports  # noqa: E402
from recorder import bench_recorder, render_recorder  # noqa: E402
from routing import bench_routing, render_routing  # noqa: E402

MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]
STREAM_CHUNKS = 10
STREAM_CHUNKS_LONG = 110


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(raw: list[float], patched: list[float]) -> dict[str, float]:
    raw_median, patched_median = statistics.median(raw), statistics.median(patched)
    return {
        "raw_median_us": raw_median * 1e6,
        "patched_median_us": patched_median * 1e6,
        "added_median_us": (patched_median - raw_median) * 1e6,
        "raw_p99_us": _percentile(raw, 0.99) * 1e6,
        "patched_p99_us": _percentile(patched, 0.99) * 1e6,
        "added_p99_us": (_percentile(patched, 0.99) - _percentile(raw, 0.99)) * 1e6,
        "ratio": patched_median / raw_median,
    }


# Steady state, not a fresh patch(): the recorder's threads flush every 0.5 s and fold every 1 s,
# so a patched side is timed only after SETTLE_S of calls and for at least BLOCK_S, which holds
# flushes and folds (a block of 400 calls right after patch() ended before the first flush, and
# its writer's work fell into the untimed unpatch()).
SETTLE_S = 0.6
BLOCK_S = 1.0


def _timed_for(run_block: Callable[[], list[float]], seconds: float) -> list[float]:
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        times += run_block()
    return times


def _alternate(run_block: Callable[[], list[float]], rounds: int, log: Path) -> tuple[list[float], list[float]]:
    import unillm

    raw: list[float] = []
    patched: list[float] = []
    run_block()  # warm up both paths (imports, pools, caches)
    unillm.patch(log=str(log))
    run_block()
    unillm.unpatch()
    for _ in range(rounds):
        raw += _timed_for(run_block, BLOCK_S)
        unillm.patch(log=str(log))
        _timed_for(run_block, SETTLE_S)
        patched += _timed_for(run_block, BLOCK_S)
        unillm.unpatch()
    return raw, patched


def bench_sync(rounds: int, block: int, log: Path, *, streams: bool = True) -> dict[str, dict[str, float]]:
    import importlib

    import openai

    httpx = importlib.import_module(sdk_http_library())

    def client_for(chunks: int) -> Any:
        transport, _ = transports(sdk_http_library(), chunks)
        return openai.OpenAI(api_key="sk-bench", max_retries=0, http_client=httpx.Client(transport=transport))

    client = client_for(STREAM_CHUNKS)
    clock = time.perf_counter

    def non_stream() -> list[float]:
        times = []
        for _ in range(block):
            t0 = clock()
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            times.append(clock() - t0)
        return times

    ttft: dict[str, list[float]] = {"raw": [], "patched": []}

    def streamer(stream_client: Any, n: int) -> Callable[[], list[float]]:
        def run() -> list[float]:
            import unillm.shim

            side = "patched" if unillm.shim.is_installed() else "raw"
            times = []
            for _ in range(n):
                t0 = clock()
                first = None
                for chunk in stream_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
                    if first is None and chunk.choices and chunk.choices[0].delta.content:
                        first = clock()
                times.append(clock() - t0)
                ttft[side].append((first or clock()) - t0)
            return times

        return run

    results = {"sync non-streaming": _summary(*_alternate(non_stream, rounds, log))}
    if not streams:
        return results
    short = _summary(*_alternate(streamer(client_for(STREAM_CHUNKS), block // 2), rounds, log))
    ttft_summary = _summary(ttft["raw"], ttft["patched"])
    # A 110-chunk stream takes ~6x a 10-chunk one: fewer of them keep the section short.
    long = _summary(*_alternate(streamer(client_for(STREAM_CHUNKS_LONG), block // 8), rounds, log))
    # Per-chunk cost is the slope between a short and a long stream: the per-call part cancels.
    per_chunk = (long["added_median_us"] - short["added_median_us"]) / (STREAM_CHUNKS_LONG - STREAM_CHUNKS)
    short["added_per_chunk_us"] = long["added_per_chunk_us"] = per_chunk
    results[f"sync streaming ({STREAM_CHUNKS} chunks)"] = short
    results[f"sync streaming ({STREAM_CHUNKS_LONG} chunks)"] = long
    results[f"sync streaming: time to first token ({STREAM_CHUNKS} chunks)"] = ttft_summary
    return results


def bench_async(rounds: int, block: int, log: Path) -> dict[str, dict[str, float]]:
    import importlib

    import openai

    httpx = importlib.import_module(sdk_http_library())
    _, async_transport = transports(sdk_http_library(), STREAM_CHUNKS)
    client = openai.AsyncOpenAI(
        api_key="sk-bench", max_retries=0, http_client=httpx.AsyncClient(transport=async_transport)
    )
    clock = time.perf_counter
    loop = asyncio.new_event_loop()

    async def calls() -> list[float]:
        times = []
        for _ in range(block):
            t0 = clock()
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            times.append(clock() - t0)
        return times

    results = {"async non-streaming": _summary(*_alternate(lambda: loop.run_until_complete(calls()), rounds, log))}
    loop.close()
    return results


ONE_CPU_ROW = "sync non-streaming, the process on one CPU (informational)"


def bench_one_cpu(rounds: int, block: int, log: Path) -> dict[str, dict[str, float]]:
    """Sync non-streaming again with this thread (and the recorder threads each patch() starts,
    which inherit it) on one CPU: what the GIL's hand-overs between two CPUs cost the app."""
    import os

    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        return {}
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        sync = bench_sync(rounds, block, log, streams=False)
    finally:
        os.sched_setaffinity(0, cpus)
    return {ONE_CPU_ROW: sync["sync non-streaming"]}


def bench_translation(rounds: int, block: int, log: Path) -> dict[str, dict[str, float]]:
    """unillm pass-through vs unillm translating to Anthropic / Gemini, same in-process fake.

    Streams are measured at two lengths; the per-chunk cost is the slope between them, so the
    per-call part of a streamed call (which differs from a whole one) cancels out.
    """
    import importlib

    import openai

    import unillm

    httpx = importlib.import_module(sdk_http_library())
    clients = {
        chunks: openai.OpenAI(
            api_key="sk-bench",
            max_retries=0,
            http_client=httpx.Client(transport=transports(sdk_http_library(), chunks)[0]),
        )
        for chunks in (STREAM_CHUNKS, STREAM_CHUNKS_LONG)
    }
    clock = time.perf_counter
    models = {
        "pass-through": "gpt-4o-mini",
        "anthropic": "anthropic/claude-sonnet-4-5",
        "gemini": "gemini/gemini-2.5-flash",
    }
    kinds = (0, STREAM_CHUNKS, STREAM_CHUNKS_LONG)  # 0: not streamed
    samples: dict[tuple[str, int], list[float]] = {(name, kind): [] for name in models for kind in kinds}

    def run(name: str, kind: int, n: int) -> None:
        client = clients[kind or STREAM_CHUNKS]
        for _ in range(n):
            t0 = clock()
            if kind:
                for _chunk in client.chat.completions.create(model=models[name], messages=MESSAGES, stream=True):
                    pass
            else:
                client.chat.completions.create(model=models[name], messages=MESSAGES)
            samples[(name, kind)].append(clock() - t0)

    unillm.patch(
        log=str(log),
        providers={
            "anthropic": {"base_url": "http://anthropic.bench", "api_key": "bench"},
            "gemini": {"base_url": "http://gemini.bench", "api_key": "bench"},
        },
    )
    try:
        for name in models:  # warm up every path
            for kind in kinds:
                run(name, kind, 20)
        for values in samples.values():
            values.clear()
        for _ in range(rounds):
            for name in models:
                run(name, 0, block)
                run(name, STREAM_CHUNKS, block // 4)
                run(name, STREAM_CHUNKS_LONG, block // 8)
    finally:
        unillm.unpatch()
    results = {}
    for name in ("anthropic", "gemini"):
        whole = _summary(samples[("pass-through", 0)], samples[(name, 0)])
        short = _summary(samples[("pass-through", STREAM_CHUNKS)], samples[(name, STREAM_CHUNKS)])
        long = _summary(samples[("pass-through", STREAM_CHUNKS_LONG)], samples[(name, STREAM_CHUNKS_LONG)])
        per_chunk = (long["added_median_us"] - short["added_median_us"]) / (STREAM_CHUNKS_LONG - STREAM_CHUNKS)
        long["added_per_chunk_us"] = per_chunk
        results[f"translate to {name}, non-streaming"] = whole
        results[f"translate to {name}, streaming ({STREAM_CHUNKS_LONG} chunks; slope vs {STREAM_CHUNKS})"] = long
    return results


IMPORT_PROBE = textwrap.dedent(
    """
    import json, sys, time
    t0 = time.perf_counter()
    import openai
    t1 = time.perf_counter()
    import unillm
    t2 = time.perf_counter()
    unillm.patch(log=sys.argv[1])
    t3 = time.perf_counter()
    print(json.dumps({"openai_ms": (t1 - t0) * 1e3, "unillm_import_ms": (t2 - t1) * 1e3,
                      "patch_ms": (t3 - t2) * 1e3}))
    """
)


def compile_unillm() -> None:
    """Write unillm's bytecode cache, as `pip install` does for openai, litellm and every other
    installed package. An editable checkout under PYTHONDONTWRITEBYTECODE=1 (this machine sets it)
    otherwise compiles unillm's modules from source in every fresh interpreter: ~25 ms of the
    import-and-patch figure that no installed unillm pays."""
    import compileall

    import unillm

    compileall.compile_dir(Path(unillm.__file__).parent, quiet=1)


def bench_import(repeats: int, log: Path) -> dict[str, float]:
    compile_unillm()
    samples = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", IMPORT_PROBE, str(log)], capture_output=True, text=True, check=True)
        samples.append(json.loads(out.stdout))
    result = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    result["unillm_total_ms"] = result["unillm_import_ms"] + result["patch_ms"]
    return result


VOLUME_PROBE = textwrap.dedent(
    """
    import importlib, json, sys, time
    sys.path.insert(0, sys.argv[3])
    import openai, unillm
    from inprocess import sdk_http_library, transports
    n, log = int(sys.argv[1]), sys.argv[2]

    def rss_mb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024

    httpx = importlib.import_module(sdk_http_library())
    client = openai.OpenAI(api_key="sk-bench", max_retries=0, http_client=httpx.Client(transport=transports(sdk_http_library())[0]))
    unillm.patch(log=log)
    msgs = [{"role": "user", "content": "hi"}]
    for _ in range(1000):
        client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    samples = {}
    t0 = time.perf_counter()
    for i in range(1, n + 1):
        client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
        if i % (n // 10) == 0:
            samples[i] = rss_mb()
    elapsed = time.perf_counter() - t0
    unillm.unpatch()
    total = unillm.sql("select count(*), count(distinct call_id) from calls", log=log).rows[0]
    print(json.dumps({"calls": n + 1000, "rows": total[0], "distinct": total[1], "seconds": elapsed,
                      "rss_mb": samples, "stats": unillm.stats()["counts"]}))
    """
)


def bench_volume(n: int, log: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", VOLUME_PROBE, str(n), str(log), str(HERE)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import openai

    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"openai {openai.__version__} ({sdk_http_library()}), {platform.system()} {platform.release()}"
    )


def _us(value: float) -> str:
    return f"{value:,.1f} µs"


def _verdict(
    name: str, r: dict[str, float], *, per_call_limit_us: float, floor_share: float | None = None
) -> tuple[str, str, str]:
    """(row name, target, met) for a row: streams are judged per chunk (≤ 5 µs), whole calls per call
    (and, with `floor_share`, also as a share of the raw SDK's own time: the ratio)."""
    if "streaming (" in name:
        per_chunk = r["added_per_chunk_us"]
        return (
            f"{name}: {per_chunk:.2f} µs per chunk",
            "≤ 5 µs per chunk (slope)",
            "yes" if per_chunk <= 5 else "**no**",
        )
    met = r["added_median_us"] <= per_call_limit_us
    target = f"≤ {per_call_limit_us:.0f} µs"
    if floor_share is not None:
        met = met and r["ratio"] <= 1 + floor_share
        target += f" and ≤ {floor_share:.0%} of the raw SDK's time (ratio ≤ {1 + floor_share:.2f})"
    return name, target, "yes" if met else "**no**"


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    command = "bash benchmarks/run.sh" if not args.only else "python benchmarks/run.py"
    command += "".join(f" --only {name}" for name in args.only or ())
    command += " --quick" if args.quick else ""
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        + (f", {results['total_seconds'] / 60:.1f} minutes in all." if "total_seconds" in results else "."),
        f"Machine: {machine()}.",
    ]
    if "peers_machine" in results:
        lines.append(f"Peer sections (LiteLLM, OTel; their own environment, .venvs/bench): {results['peers_machine']}.")
    if args.quick:
        lines += ["", "**--quick run: a smoke check, not a result.**"]
    if "overhead" in results:
        lines += render_overhead(results, args)
    if "translation" in results:
        lines += render_translation(results)
    if "routing" in results:
        lines += render_routing(results["routing"])
    if "import" in results:
        lines += render_import(results)
    if "volume" in results:
        lines += render_volume(results)
    if "recorder" in results:
        lines += render_recorder(results["recorder"])
    if "dashboard" in results:
        lines += render_dashboard(results["dashboard"])
    if "peers" in results:
        from peers import render_peers

        lines += render_peers(results["peers"])
    if "failover" in results:
        from failover import render_failover

        lines += render_failover(results["failover"])
    if "concurrency" in results:
        from concurrency import render_concurrency

        lines += render_concurrency(results["concurrency"])
    if "seconds" in results:
        lines += ["", "## Section times", "", "| section | seconds |", "|---|---|"]
        lines += [f"| {name} | {sec:.0f} |" for name, sec in results["seconds"].items()]
        if "total_seconds" in results:
            lines.append(
                f"| all, with interpreter starts and the peer sections' child process | {results['total_seconds']:.0f} |"
            )
    if "overhead" in results or "translation" in results:
        lines += render_notes()
    return "\n".join(lines) + "\n"


def _overhead_rounds(args: argparse.Namespace) -> int:
    return max(2, args.rounds * 2 // 5)  # each round is ~2.6 s per path (settle and block times)


def render_overhead(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    lines = [
        "",
        "## Added time per call (in-process fake: the SDK's floor, no network)",
        "",
        "Raw openai SDK vs the same client after `unillm.patch()` (recording on, its threads running), "
        f"alternating sides for {_overhead_rounds(args)} rounds: each side timed for {BLOCK_S:.1f} s of calls "
        f"(in blocks of {args.block} calls, {args.block // 2} {STREAM_CHUNKS}-chunk streams or "
        f"{args.block // 8} {STREAM_CHUNKS_LONG}-chunk streams), the patched side after {SETTLE_S:.1f} s of "
        "untimed calls. So the patched side is in its steady state (the recorder flushes every 0.5 s and folds "
        "every 1 s, and its thread turns calls into rows on the same GIL, in the timed blocks), not the first "
        "calls after `patch()`. The in-process fake never blocks: the worst case for a background thread, "
        "whose work an app waiting on the network does not wait for.",
        "",
        "| path | raw SDK median | with unillm median | added median | raw p99 | with unillm p99 | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["overhead"].items():
        if "first token" in name or name == ONE_CPU_ROW:
            target, met = "—", "—"
        else:
            name, target, met = _verdict(name, r, per_call_limit_us=50, floor_share=0.05)
        lines.append(
            f"| {name} | {_us(r['raw_median_us'])} | {_us(r['patched_median_us'])} | {_us(r['added_median_us'])} "
            f"| {_us(r['raw_p99_us'])} | {_us(r['patched_p99_us'])} | {r['ratio']:.3f} | {target} | {met} |"
        )
    if ONE_CPU_ROW in results["overhead"]:
        lines += [
            "",
            "Why whole calls miss here, and what the one-CPU row shows: the calling thread never blocks on this "
            "fake, but it lets go of the GIL for a moment in every call (`os.urandom` in the SDK). CPython then "
            "wakes a thread waiting for the GIL and restarts that thread's 5 ms wait before it asks for the GIL, "
            "so the recorder's threads, once they want the GIL (every flush and fold tick), are starved for up to "
            "seconds (measured: a 0.5 s `Event.wait` returned 1.1 and 2.2 s late), and every call in between pays "
            "for waking them on the other CPU. With the process on one CPU that hand-over is cheap: the added "
            "time is then what unillm's code costs (its hooks, plus the writer's rows on the same GIL). An app "
            "that waits on the network lets the writer have the GIL in its waits (the 127.0.0.1 rows of the peers "
            "section).",
        ]
    return lines


def render_translation(results: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Translation (on top of pass-through)",
        "",
        "unillm pass-through vs unillm translating the same call to Anthropic's Messages API or Gemini's",
        "generateContent, all patched, same in-process fake answering in each provider's wire format.",
        "unillm translating vs LiteLLM calling the same providers natively is in the peers section below.",
        "",
        "| path | pass-through median | translated median | added median | pass-through p99 | translated p99 "
        "| ratio | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["translation"].items():
        name, target, met = _verdict(name, r, per_call_limit_us=100)
        lines.append(
            f"| {name} | {_us(r['raw_median_us'])} | {_us(r['patched_median_us'])} | {_us(r['added_median_us'])} "
            f"| {_us(r['raw_p99_us'])} | {_us(r['patched_p99_us'])} | {r['ratio']:.3f} | {target} | {met} |"
        )
    return lines


def render_import(results: dict[str, Any]) -> list[str]:
    imp = results["import"]
    return [
        "",
        "## Import and patch",
        "",
        "Medians of fresh interpreters, unillm's modules loaded from their bytecode cache as after `pip "
        "install` (an editable checkout with PYTHONDONTWRITEBYTECODE=1 compiles them from source on every start).",
        "",
        "| step | time |",
        "|---|---|",
        f"| `import openai` | {imp['openai_ms']:.1f} ms |",
        f"| `import unillm` | {imp['unillm_import_ms']:.1f} ms |",
        f"| `unillm.patch()` | {imp['patch_ms']:.1f} ms |",
        f"| unillm on top of openai (target ≤ 50 ms) | **{imp['unillm_total_ms']:.1f} ms** "
        f"({'met' if imp['unillm_total_ms'] <= 50 else 'not met'}) |",
    ]


def render_volume(results: dict[str, Any]) -> list[str]:
    vol = results["volume"]
    rss = {int(k): v for k, v in vol["rss_mb"].items()}
    first, last = rss[min(rss)], rss[max(rss)]
    return [
        "",
        "## Recording volume",
        "",
        f"{vol['calls']:,} patched calls in one process (in-process fake), then `unpatch()` and a count.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| calls made | {vol['calls']:,} |",
        f"| rows in `calls` | {vol['rows']:,} ({vol['distinct']:,} distinct call ids) |",
        f"| rows lost | {vol['calls'] - vol['rows']:,} |",
        f"| calls per second (SDK + unillm) | {vol['calls'] / vol['seconds']:,.0f} |",
        f"| RSS after 10% / 100% of calls | {first:.0f} MB / {last:.0f} MB (growth {last - first:+.0f} MB) |",
        f"| unillm trouble counters | {vol['stats'] or 'none'} |",
    ]


def render_notes() -> list[str]:
    return [
        "",
        "## How to read this",
        "",
        "- The patched side includes everything unillm does for a call: the hooks, the byte taps, and the",
        "  recorder thread's work (rows, prices, spool writes, folds), which competes for the GIL.",
        "- The in-process fake never blocks, the worst case for a background thread: when the writer falls",
        f"  behind by {2 * 2000:,} calls, the calling thread yields 0.2 ms per call until it catches up (see",
        "  `unillm/tracer/recorder.py`); an app that waits on the network never hits this.",
        "- Per-chunk cost is the slope between a 10-chunk and a 110-chunk stream, so the per-call part cancels.",
        "- Translation per chunk is the slope of its added time between 10- and 110-chunk streams.",
        "- The peers (LiteLLM completion and Router, the OpenTelemetry and OpenLLMetry OpenAI instrumentations)",
        "  are measured in .venvs/bench (openai 2.x, which LiteLLM requires; created by",
        "  `benchmarks/peers_env.sh`), in the same run: the peers are never unillm dependencies.",
    ]


SECTIONS = (
    "overhead",
    "translation",
    "routing",
    "import",
    "volume",
    "recorder",
    "dashboard",
    "peers",
    "failover",
    "concurrency",
)
PEER_SECTIONS = ("peers", "failover", "concurrency")
BENCH_PYTHON = ROOT / ".venvs" / "bench" / "bin" / "python"


def _peers_here() -> bool:
    from peers import missing

    return not missing()


def run_peer_sections(sections: list[str], quick: bool, tmp: Path) -> dict[str, Any]:
    """Run the peer sections with .venvs/bench/bin/python (created when missing); their results."""
    if not BENCH_PYTHON.exists():
        print("peers: creating .venvs/bench (benchmarks/peers_env.sh) ...", flush=True)
        subprocess.run(["bash", str(HERE / "peers_env.sh")], check=True)
    out = tmp / "peer-sections.json"
    cmd = [str(BENCH_PYTHON), str(HERE / "run.py"), "--json", str(out)]
    cmd += [arg for name in sections for arg in ("--only", name)]
    cmd += ["--quick"] if quick else []
    print(f"peers: {' '.join(cmd[1:])} (in .venvs/bench) ...", flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)
    results: dict[str, Any] = json.loads(out.read_text())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke check, not a result")
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        help="run only this section (repeatable); the result is printed, and written only to --output",
    )
    parser.add_argument(
        "--output", help="where to write the result (default: docs/benchmarks.md, full runs without --only only)"
    )
    parser.add_argument("--json", help=argparse.SUPPRESS)  # results as JSON (the peer sections' child run)
    args = parser.parse_args()
    args.rounds, args.block = (3, 200) if args.quick else (10, 400)
    volume_calls = 20_000 if args.quick else 40_000
    sections = set(args.only or SECTIONS)
    # A partial run never replaces the full results in docs/benchmarks.md by default.
    output = args.output or (None if args.only or args.quick or args.json else str(ROOT / "docs" / "benchmarks.md"))

    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    run_started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        peer_sections = [name for name in PEER_SECTIONS if name in sections]
        if peer_sections and not _peers_here():
            # LiteLLM and the OTel instrumentations live in .venvs/bench only: run these there, first,
            # while nothing else of this run is going on.
            started = time.perf_counter()
            child = run_peer_sections(peer_sections, args.quick, Path(tmp))
            seconds.update(child.pop("seconds", {}))
            results["peers_machine"] = child.pop("machine")
            for key in ("total_seconds", "openai"):
                child.pop(key, None)
            results.update(child)
            sections -= set(peer_sections)
            print(f"peer sections took {time.perf_counter() - started:.0f} s", flush=True)
        log = Path(tmp) / "bench.duckdb"

        def timed(name: str, bench: Callable[[], Any]) -> None:
            if name not in sections:
                return
            print(f"{name} ...", flush=True)
            started = time.perf_counter()
            results[name] = bench()
            seconds[name] = time.perf_counter() - started
            print(f"{name} took {seconds[name]:.0f} s", flush=True)

        def overhead() -> dict[str, Any]:
            out = bench_sync(_overhead_rounds(args), args.block, log)
            out.update(bench_async(_overhead_rounds(args), args.block, log))
            out.update(bench_one_cpu(_overhead_rounds(args), args.block, log))
            return out

        def peer(name: str) -> Callable[[], Any]:
            # Imported here: the peers (litellm, OpenTelemetry) live only in .venvs/bench.
            def bench() -> Any:
                module = __import__(name)
                return getattr(module, f"bench_{name}")(args.quick, Path(tmp))

            return bench

        # The peer sections first (when they run here): LiteLLM's import is the heaviest of all.
        for name in PEER_SECTIONS:
            timed(name, peer(name))
        timed("overhead", overhead)
        # Translation's medians settle on half the overhead section's blocks (its rows are 2x the raw calls).
        timed("translation", lambda: bench_translation(args.rounds, args.block // 2, log))
        timed("routing", lambda: bench_routing(args.quick, Path(tmp)))
        timed("import", lambda: bench_import(5 if args.quick else 9, Path(tmp) / "import.duckdb"))
        timed("volume", lambda: bench_volume(volume_calls, Path(tmp) / "volume.duckdb"))
        timed("recorder", lambda: bench_recorder(args.quick, Path(tmp)))
        timed("dashboard", lambda: bench_dashboard(args.quick, Path(tmp)))
    results["seconds"] = seconds
    results["total_seconds"] = time.perf_counter() - run_started
    if args.json:
        import openai

        results["machine"] = machine()
        results["openai"] = openai.__version__
        Path(args.json).write_text(json.dumps(results))
        return
    text = render(results, args)
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
