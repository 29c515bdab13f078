"""Failover: time to an answer when the first target fails, unillm vs LiteLLM's Router (issue 7, 3).

    .venvs/bench/bin/python benchmarks/run.py --only failover

A route [A, B] where B is a healthy OpenAI-wire `FakeOpenAI` and A
- refuses connections (a closed port on 127.0.0.1),
- answers every request 529 (overloaded), or
- stalls (accepts the request and never answers; the per-attempt timeout ends it),
against the same route's healthy target [B] alone. The fakes run in a child process (fakes.py).

Both sides make the same synchronous call with equivalent settings: no retry on A (unillm
`retries = 0`; LiteLLM `num_retries=0`, `max_retries=0`), the same per-attempt timeout on every
target (unillm `timeout` per target; LiteLLM `timeout` in each deployment's `litellm_params`),
fail over to B at once (unillm `backoff = 0`; LiteLLM `fallbacks=[{"a": ["b"]}]`).

Two modes, because unillm's breakers and LiteLLM's cooldowns change later calls:
- "no memory": every call meets A as the first call after A broke does (unillm
  `breaker_failures = 1000` with the breakers reset before each block; LiteLLM
  `disable_cooldowns=True`): what each call costs while nothing has learned A is down.
- "defaults": each side's shipped breaker / cooldown rules, measured in steady state after a
  warm-up of failing calls (unillm: open after 5 failures in a row, 10 s cooldown; LiteLLM: its
  cooldown rules as shipped), with the tries of A counted.
- "matched": unillm's defaults again, LiteLLM with `allowed_fails=4, cooldown_time=10` (A cooled
  down for 10 s on its 5th failure within a minute), the closest to unillm's breaker.
Requests are counted on the client side (a counting httpx transport shared by both sides), so
"tries of A" holds whatever each side sent to A.
"""

from __future__ import annotations

import os
import socket
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]
TIMEOUT_S = 0.25  # per attempt, both sides
TARGET_A = "mistral/mistral-small-latest"  # unillm's name for A (an OpenAI-wire provider)
TARGET_B = "groq/llama-3.1-8b-instant"  # ... and for B
SCENARIOS = {
    "refused": "refuses connections (closed port)",
    "529": "answers 529 overloaded",
    "stall": f"stalls (accepts, never answers; {TIMEOUT_S:g} s timeout)",
}
MODES = {
    "fresh": "no memory (breakers / cooldowns off)",
    "defaults": "each side's defaults, steady state",
    "matched": "LiteLLM cooldown set like unillm's breaker, steady state",
}
SIDES = ("unillm", "router")
LABELS = {"unillm": "unillm", "router": "LiteLLM Router"}
WARMUP = 10  # failing calls before the steady-state measurement in "defaults" mode


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_failover(quick: bool, tmp: Path) -> dict[str, Any]:
    # LiteLLM fetches its price map from the internet at import unless told to use its bundled copy.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import httpx
    import litellm
    import openai
    from fakes import served

    import unillm
    from unillm.routing.breaker import BREAKERS

    litellm.suppress_debug_info = True
    log = tmp / "failover.duckdb"
    # (calls per block, rounds): blocks alternate between the sides.
    sizes = {"refused": (20, 3), "529": (20, 3), "stall": (4, 2)}
    if quick:
        sizes = {"refused": (8, 2), "529": (8, 2), "stall": (2, 1)}
    started = time.perf_counter()
    sent: dict[str, int] = {}

    class Counting(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()

        def handle_request(self, request: Any) -> Any:
            key = f"{request.url.host}:{request.url.port}"
            sent[key] = sent.get(key, 0) + 1
            return self.inner.handle_request(request)

    http = httpx.Client(transport=Counting())
    litellm.client_session = http  # LiteLLM's OpenAI provider builds its openai client on it
    clock = time.perf_counter
    results: dict[str, Any] = {"timeout_s": TIMEOUT_S, "sizes": sizes, "warmup": WARMUP, "rows": {}}
    with served("openai", "openai:529", "openai:stall") as (live_url, overloaded_url, stalled_url):
        a_urls = {
            "refused": f"http://127.0.0.1:{_closed_port()}/v1",
            "529": overloaded_url,
            "stall": stalled_url,
        }
        client = openai.OpenAI(api_key="sk-bench", base_url="http://127.0.0.1:9/v1", max_retries=0, http_client=http)
        # The fake imports the SDK's types on its first answer: not within a 0.25 s timeout on a busy machine.
        openai.OpenAI(api_key="sk-bench", base_url=live_url, max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )

        def host(url: str) -> str:
            return url.split("://", 1)[1].split("/", 1)[0]

        def measure(a_url: str, mode: str, block: int, rounds: int) -> dict[str, Any]:
            target = {"timeout": TIMEOUT_S}
            route: dict[str, Any] = {
                "targets": [{"target": TARGET_A, **target}, {"target": TARGET_B, **target}],
                "retries": 0,
                "backoff": 0,
            }
            if mode == "fresh":
                route["breaker_failures"] = 1000
            params = {"api_key": "sk-bench", "max_retries": 0, "timeout": TIMEOUT_S}
            router = litellm.Router(
                model_list=[
                    {"model_name": "a", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": a_url, **params}},
                    {
                        "model_name": "b",
                        "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": live_url, **params},
                    },
                ],
                fallbacks=[{"a": ["b"]}],
                num_retries=0,
                disable_cooldowns=mode == "fresh",
                # "matched": cool A down on its 5th failure (more than 4 in a minute) for 10 s,
                # as unillm's default breaker opens on the 5th failure in a row for 10 s.
                **({"allowed_fails": 4, "cooldown_time": 10} if mode == "matched" else {}),
            )
            BREAKERS.reset()

            def call(side: str, model: str) -> None:
                if side == "unillm":
                    answer = client.chat.completions.create(model=model, messages=MESSAGES)
                else:
                    answer = router.completion(model="a" if model == "failover" else "b", messages=MESSAGES)
                assert answer.choices[0].message.content

            samples: dict[tuple[str, str], list[float]] = {}
            tries_of_a = dict.fromkeys(SIDES, 0)
            calls_timed = dict.fromkeys(SIDES, 0)

            def timed(side: str, model: str, n: int, into: list[float] | None) -> None:
                if side == "unillm":
                    unillm.patch(
                        log=str(log),
                        providers={
                            "mistral": {"base_url": a_url, "api_key": "bench"},
                            "groq": {"base_url": live_url, "api_key": "bench"},
                        },
                        routes={"failover": route, "live": {**route, "targets": route["targets"][1:]}},
                    )
                try:
                    before = sent.get(host(a_url), 0)
                    for _ in range(n):
                        t0 = clock()
                        call(side, model)
                        if into is not None:
                            into.append(clock() - t0)
                    if into is not None and model == "failover":
                        tries_of_a[side] += sent.get(host(a_url), 0) - before
                        calls_timed[side] += n
                finally:
                    if side == "unillm":
                        unillm.unpatch()

            # Warm up: pools, clients, imports, on the healthy target; then A's first failures
            # (in "defaults" mode, the warm-up that lets a breaker / cooldown learn A is down).
            for side in SIDES:
                timed(side, "live", 3, None)
                timed(side, "failover", 1 if mode == "fresh" else WARMUP, None)
            for r in range(rounds):
                order = SIDES if r % 2 == 0 else SIDES[::-1]
                for side in order:
                    if mode == "fresh":
                        BREAKERS.reset()
                    timed(side, "live", block, samples.setdefault((side, "live"), []))
                    timed(side, "failover", block, samples.setdefault((side, "failover"), []))
            row: dict[str, Any] = {}
            for side in SIDES:
                live, failover = samples[(side, "live")], samples[(side, "failover")]
                row[side] = {
                    "live_median_ms": statistics.median(live) * 1e3,
                    "live_p99_ms": _percentile(live, 0.99) * 1e3,
                    "median_ms": statistics.median(failover) * 1e3,
                    "p99_ms": _percentile(failover, 0.99) * 1e3,
                    "added_median_ms": (statistics.median(failover) - statistics.median(live)) * 1e3,
                    "n": len(failover),
                    "tries_of_a": tries_of_a[side],
                    "calls": calls_timed[side],
                }
            return row

        for scenario, a_url in a_urls.items():
            for mode in MODES:
                row = measure(a_url, mode, *sizes[scenario])
                results["rows"][f"{scenario}/{mode}"] = row
                BREAKERS.reset()
                print(
                    f"failover: A {scenario}, {mode}: unillm {row['unillm']['median_ms']:.2f} ms, "
                    f"Router {row['router']['median_ms']:.2f} ms",
                    flush=True,
                )
    http.close()
    results["seconds"] = time.perf_counter() - started
    results["quick"] = quick
    return results


# -- rendering ----------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:,.2f} ms"


def render_failover(r: dict[str, Any], versions: Callable[[], str] | None = None) -> list[str]:
    lines = [
        "",
        "## Failover: unillm vs LiteLLM Router",
        "",
        "Time to an answer for a route [A, B] whose first target A fails, B a healthy `FakeOpenAI` over",
        '127.0.0.1 (a child process), against each side\'s own route of B alone ("[B] median"), in the',
        "same run, blocks alternating between the sides. Settings on both sides: no retry on A (unillm",
        "`retries = 0`, `backoff = 0`; LiteLLM `num_retries=0` and `max_retries=0` per deployment), a",
        f"{r['timeout_s']:g} s per-attempt timeout on each target (unillm `timeout` per target; LiteLLM",
        '`timeout` in `litellm_params`), failover to B (unillm `strategy = "fallback"`; LiteLLM',
        '`fallbacks=[{"a": ["b"]}]`), one synchronous call at a time. unillm records every call and',
        "attempt to DuckDB. **No memory**: unillm `breaker_failures = 1000`, breakers reset before each",
        "block; LiteLLM `disable_cooldowns=True`: every call tries A first, as the first call after A breaks",
        f"does. **Defaults, steady state**: each side's shipped rules after {r['warmup']} failing warm-up",
        "calls (unillm: a breaker opens after 5 failures in a row, 10 s cooldown; LiteLLM: its cooldown",
        "rules as shipped, which do not cool down a failing deployment that has a fallback group unless",
        "told how many failures to allow). **Matched**: unillm's defaults again; LiteLLM",
        "`allowed_fails=4, cooldown_time=10` (A cooled down for 10 s on its 5th failure within a minute).",
        '"Tries of A" shows whether a side still sends to A. Calls per side: '
        + ", ".join(f"{s}: {b * n}" for s, (b, n) in r["sizes"].items())
        + " (a p99 of a few calls is their slowest).",
    ]
    if r.get("quick"):
        lines += ["", "**--quick run: a smoke check, not a result.**"]
    lines += [
        "",
        "| A | mode | unillm [B] median | unillm [A, B] median / p99 | unillm added | Router [B] median "
        "| Router [A, B] median / p99 | Router added | Router / unillm (median) | tries of A (unillm; Router) "
        "| unillm ahead |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, row in r["rows"].items():
        scenario, mode = key.split("/")
        u, ll = row["unillm"], row["router"]
        ahead = "yes" if u["median_ms"] < ll["median_ms"] and u["p99_ms"] <= ll["p99_ms"] else "**no**"
        if ahead != "yes" and u["median_ms"] < ll["median_ms"]:
            ahead = "median only (p99 behind)"
        lines.append(
            f"| {SCENARIOS[scenario]} | {MODES[mode]} | {_ms(u['live_median_ms'])} "
            f"| {_ms(u['median_ms'])} / {_ms(u['p99_ms'])} | {u['added_median_ms']:+,.2f} ms "
            f"| {_ms(ll['live_median_ms'])} | {_ms(ll['median_ms'])} / {_ms(ll['p99_ms'])} "
            f"| {ll['added_median_ms']:+,.2f} ms | ×{ll['median_ms'] / u['median_ms']:.2f} "
            f"| {u['tries_of_a']} in {u['calls']}; {ll['tries_of_a']} in {ll['calls']} | {ahead} |"
        )
    lines += [
        "",
        f"Section time: {r['seconds']:.0f} s. A stalled target costs each side its timeout on every call",
        "that tries it; with memory on, a side that stops trying A answers at [B]'s speed.",
    ]
    return lines
