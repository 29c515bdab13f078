"""Throughput under concurrency: 1, 16 and 256 concurrent async calls (issue 7, 4).

    .venvs/bench/bin/python benchmarks/run.py --only concurrency

One `FakeOpenAI` over 127.0.0.1 (a child process, fakes.py); N asyncio worker tasks on one event
loop, each making calls back to back until the block's calls are made. Sides, in the same run:
- raw `openai.AsyncOpenAI` (the floor),
- the same client after `unillm.patch()` (pass-through, recording on),
- unillm routed: `model="routed"`, a route of one OpenAI-wire target whose base_url is the fake,
- `litellm.acompletion(model="openai/gpt-4o-mini", api_base=...)`,
- `litellm.Router(...).acompletion(...)` with one deployment.
Every side sends through one shared `httpx.AsyncClient` (connection limits above 256, so no side
waits for a connection slot): the SDK clients get it as `http_client=`, LiteLLM as
`litellm.aclient_session`. Blocks rotate over the sides, round after round.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import time
from pathlib import Path
from typing import Any

MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]
SIDES = ("raw", "unillm", "routed", "litellm", "router")
LABELS = {
    "raw": "raw AsyncOpenAI (floor)",
    "unillm": "unillm.patch() pass-through",
    "routed": "unillm routed (1 target)",
    "litellm": "litellm.acompletion",
    "router": "litellm Router",
}
PEERS = ("litellm", "router")
LEVELS = (1, 16, 256)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_concurrency(quick: bool, tmp: Path) -> dict[str, Any]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import httpx
    import litellm
    import openai
    from fakes import served

    import unillm

    litellm.suppress_debug_info = True
    log = tmp / "concurrency.duckdb"
    rounds = 1 if quick else 2
    # calls per block, per concurrency level
    calls = {1: 40, 16: 160, 256: 512} if quick else {1: 50, 16: 160, 256: 384}
    started = time.perf_counter()
    sent = [0]

    class Counting(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            limits = httpx.Limits(max_connections=1024, max_keepalive_connections=1024)
            self.inner = httpx.AsyncHTTPTransport(limits=limits)

        async def handle_async_request(self, request: Any) -> Any:
            sent[0] += 1
            return await self.inner.handle_async_request(request)

    limits = httpx.Limits(max_connections=1024, max_keepalive_connections=1024)
    ahttp = httpx.AsyncClient(transport=Counting(), limits=limits, timeout=60)
    litellm.aclient_session = ahttp
    loop = asyncio.new_event_loop()
    samples: dict[tuple[int, str], list[float]] = {}
    walls: dict[tuple[int, str], list[tuple[int, float]]] = {}
    with served("openai") as (url,):
        client = openai.AsyncOpenAI(api_key="sk-bench", base_url=url, max_retries=0, http_client=ahttp)
        router = litellm.Router(
            model_list=[
                {
                    "model_name": "bench",
                    "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": url, "api_key": "sk-bench"},
                }
            ],
            num_retries=0,
        )
        config = {
            "log": str(log),
            "providers": {"groq": {"base_url": url, "api_key": "bench"}},
            "routes": {"routed": {"targets": ["groq/llama-3.1-8b-instant"], "retries": 0}},
        }

        async def one(side: str) -> None:
            if side == "litellm":
                answer = await litellm.acompletion(
                    model="openai/gpt-4o-mini", api_base=url, api_key="sk-bench", messages=MESSAGES, max_retries=0
                )
            elif side == "router":
                answer = await router.acompletion(model="bench", messages=MESSAGES)
            else:
                model = "routed" if side == "routed" else "gpt-4o-mini"
                answer = await client.chat.completions.create(model=model, messages=MESSAGES)
            assert answer.choices[0].message.content

        async def block(side: str, level: int, n: int, into: list[float] | None) -> float:
            left = [n]
            clock = time.perf_counter

            async def worker() -> None:
                while left[0] > 0:
                    left[0] -= 1
                    t0 = clock()
                    await one(side)
                    if into is not None:
                        into.append(clock() - t0)

            t0 = clock()
            await asyncio.gather(*(worker() for _ in range(level)))
            return clock() - t0

        def run(side: str, level: int, n: int, timed: bool) -> None:
            if side in ("unillm", "routed"):
                unillm.patch(**config)
            before = sent[0]
            try:
                into = samples.setdefault((level, side), []) if timed else None
                wall = loop.run_until_complete(block(side, level, n, into))
                if timed:
                    walls.setdefault((level, side), []).append((n, wall))
            finally:
                if side in ("unillm", "routed"):
                    unillm.unpatch()
            if sent[0] - before != n:
                raise RuntimeError(f"concurrency {side} x{level}: {sent[0] - before} requests for {n} calls")
            gc.collect()
            time.sleep(0.05)  # background work (LiteLLM's logging worker, unillm's writer) settles

        for side in SIDES:  # warm up: pools, clients, imports, 256 connections opened
            run(side, 256, 256, False)
        for level in LEVELS:
            for r in range(rounds):
                order = SIDES[r % len(SIDES) :] + SIDES[: r % len(SIDES)]
                for side in order:
                    run(side, level, calls[level], True)
            print(f"concurrency: x{level} done", flush=True)
    loop.run_until_complete(ahttp.aclose())
    pending = asyncio.all_tasks(loop)  # LiteLLM's logging worker
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()

    rows: dict[str, Any] = {}
    for level in LEVELS:
        row = {}
        for side in SIDES:
            values = samples[(level, side)]
            n = sum(k for k, _ in walls[(level, side)])
            wall = sum(w for _, w in walls[(level, side)])
            row[side] = {
                "calls_per_s": n / wall,
                "median_ms": statistics.median(values) * 1e3,
                "p99_ms": _percentile(values, 0.99) * 1e3,
                "n": len(values),
            }
        rows[str(level)] = row
    return {
        "rows": rows,
        "calls": calls,
        "rounds": rounds,
        "seconds": time.perf_counter() - started,
        "quick": quick,
    }


def render_concurrency(r: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Throughput under concurrency (async, 127.0.0.1)",
        "",
        "N asyncio tasks on one event loop make non-streamed calls back to back against one `FakeOpenAI`",
        "(a child process), every side through the same `httpx.AsyncClient` (1,024 connections allowed).",
        f"Per concurrency level, blocks of {', '.join(f'{n:,} calls at ×{lv}' for lv, n in r['calls'].items())}",
        f"rotate over the sides for {r['rounds']} round(s). calls/s is calls over the blocks' wall time;",
        "latency is each call's, from its start to its answer (under concurrency it holds the queueing of",
        "every side's work on one event loop and the fake's own). The fake serves every side alike, so",
        "calls/s above what it can answer cannot show; the ratio to the raw SDK is in the same run.",
    ]
    if r.get("quick"):
        lines += ["", "**--quick run: a smoke check, not a result.**"]
    lines += [
        "",
        "| concurrent calls | " + " | ".join(LABELS[s] for s in SIDES) + " | unillm ahead of every peer |",
        "|---|" + "---|" * len(SIDES) + "---|",
    ]
    for level, row in r["rows"].items():
        raw = row["raw"]
        cells = []
        for side in SIDES:
            s = row[side]
            cell = f"{s['calls_per_s']:,.0f} calls/s; p99 {s['p99_ms']:,.1f} ms"
            if side != "raw":
                cell += (
                    f" ({s['p99_ms'] - raw['p99_ms']:+,.1f} ms; ×{s['calls_per_s'] / raw['calls_per_s']:.2f} calls/s)"
                )
            cells.append(cell)
        behind = []
        for ours in ("unillm", "routed"):
            for peer in PEERS:
                if row[ours]["calls_per_s"] <= row[peer]["calls_per_s"] or row[ours]["p99_ms"] >= row[peer]["p99_ms"]:
                    behind.append(f"{LABELS[ours]} behind {LABELS[peer]}")
        verdict = "yes" if not behind else "**no**: " + "; ".join(behind)
        lines.append(f"| ×{level} | " + " | ".join(cells) + f" | {verdict} |")
    lines += [
        "",
        "Each cell: calls per second; p99 latency per call (in brackets: p99 added to the raw SDK's, and",
        "calls/s as a ratio to the raw SDK's). Median latency per call, for reference: "
        + "; ".join(
            f"×{level}: " + ", ".join(f"{LABELS[s]} {row[s]['median_ms']:,.1f} ms" for s in SIDES)
            for level, row in r["rows"].items()
        )
        + f". Section time: {r['seconds']:.0f} s.",
    ]
    return lines
