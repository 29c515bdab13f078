"""Routing benchmarks: the cost of a routing decision, of a target whose breaker is open, and of
failing over from a dead target. Used by run.py (`python benchmarks/run.py --only routing`).

- decisions: `resolver(model)` + the budget check + `plan.start(...)` + `run.first()`, as the shim
  and the dispatch transport do for each routed call, per strategy, with Plans built by the same
  `TargetResolver` and price estimator the runtime uses (3 targets per route);
- routed calls on the in-process fake: raw SDK vs patched pass-through vs a route of one target vs
  a route [A, B] whose A has its breaker open (A must receive nothing);
- a dead target over real sockets: a route [dead, live] (dead: a closed port on 127.0.0.1) vs the
  route [live] alone, on `unillm.testing.FakeOpenAI`, with the breaker kept closed and with it on.
"""

from __future__ import annotations

import gc
import importlib
import json
import socket
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inprocess import sdk_http_library, transports

MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]

# Three real models with known prices (lowest-cost needs them), one per wire family.
ROUTE_TARGETS = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5", "gemini/gemini-2.5-flash"]
BENCH_KEYS = {name: {"api_key": "bench"} for name in ("openai", "anthropic", "gemini")}
STRATEGY_ROUTES = ("fallback", "weighted", "lowest-latency", "lowest-cost", "auto")

# Two OpenAI-wire targets for the routed-call measurements (base URLs set per measurement).
TARGET_A = "mistral/mistral-small-latest"  # the one whose breaker is open, or the dead one
TARGET_B = "groq/llama-3.1-8b-instant"  # the one that answers

SYSTEM_PROMPT = (
    "You are the customer support assistant of Northwind Parcel, a European parcel delivery company. "
    "Answer in the customer's language, in a friendly and concise tone, in at most five sentences. "
    "You can look up a parcel by its tracking number (ten digits, sometimes with an NW prefix), explain "
    "delivery windows (weekdays 8:00-20:00, Saturdays 9:00-14:00), redirect a parcel to a pickup point "
    "or a neighbour, and open a claim for a damaged or lost parcel. Never promise a delivery date the "
    "tracking data does not support. Never ask for payment details. If the customer is angry, "
    "acknowledge it once and move on to what you can do. If a question is not about a parcel, say "
    "politely that you can only help with deliveries. When a claim is needed, collect the tracking "
    "number, a description of the damage, and a photo if the customer has one; then tell them a "
    "human agent answers within two working days. Our returns policy: a return label is free within "
    "30 days for parcels from partner shops; other returns cost 4.90 EUR, paid at the pickup point."
)
CHAT_TURNS = [
    {"role": "user", "content": "Hi, my parcel NW4820193745 was supposed to arrive yesterday and nothing came."},
    {
        "role": "assistant",
        "content": "I'm sorry for the wait. The tracking shows NW4820193745 left the Lyon depot yesterday at "
        "18:40 and is now at your local delivery centre. It is scheduled for delivery today between 14:00 and "
        "18:00. Would you like me to redirect it to a pickup point instead?",
    },
    {"role": "user", "content": "I'm at work until 19:00, so nobody will be home. What are my options?"},
    {
        "role": "assistant",
        "content": "You have two options: I can redirect it to the Relais Colis pickup point at 12 rue Garibaldi, "
        "open until 20:00, or leave it with a neighbour if you give me their name and flat number. Which "
        "do you prefer?",
    },
    {"role": "user", "content": "The pickup point, please. Can I collect it tonight? And do I need ID?"},
]
CHAT_BODY = {"messages": [{"role": "system", "content": SYSTEM_PROMPT}, *CHAT_TURNS], "temperature": 0.3}
CODE_QUESTION = """Why does this function return None for some parcels?

```python
def eta(parcel):
    if parcel.status == "in_transit":
        hours = parcel.distance_km / 60
        return parcel.departed_at + timedelta(hours=hours)
    elif parcel.status == "at_depot":
        return next_round(parcel.depot)
```
"""
# A long last user turn without any cue: auto scans its first 800 and last 400 characters (classify.py).
LONG_PROSE = (
    "I ordered a sofa from your partner shop last month and the delivery was moved three times, "
    "each time to a day when nobody could be home, and nobody called before. "
) * 60
LONG_BODY = {"messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": LONG_PROSE[:8000]}]}
CODE_BODY = {
    "messages": [
        {"role": "system", "content": "You are a senior Python reviewer. Be precise and brief."},
        {"role": "user", "content": CODE_QUESTION},
    ]
}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _stats(samples: list[float], scale: float) -> dict[str, float]:
    return {"median": statistics.median(samples) * scale, "p99": _percentile(samples, 0.99) * scale, "n": len(samples)}


# -- 1. the routing decision ------------------------------------------------------------------


def bench_decisions(n: int, log: Path) -> dict[str, dict[str, Any]]:
    """µs per decision, per strategy (rows), with the route's reason for one such call."""
    import unillm
    from unillm import runtime
    from unillm.adapters.targets import TargetResolver
    from unillm.routing.breaker import BREAKERS, BreakerRules
    from unillm.routing.latency import LATENCY
    from unillm.routing.strategies import target_key

    weighted = [{"target": t, "weight": w} for t, w in zip(ROUTE_TARGETS, (6, 3, 1), strict=True)]
    routes: dict[str, Any] = {name: {"targets": ROUTE_TARGETS, "strategy": name} for name in STRATEGY_ROUTES}
    routes["weighted"]["targets"] = weighted
    routes["auto"]["auto"] = {"easy": ROUTE_TARGETS[0], "hard": ROUTE_TARGETS[1]}
    routes["breaker-open"] = {"targets": [TARGET_A, TARGET_B]}
    routes["single"] = {"targets": [TARGET_B]}
    providers = {**BENCH_KEYS, "mistral": {"api_key": "bench"}, "groq": {"api_key": "bench"}}
    budgets = {"daily": {"limit_usd": 1_000_000.0}}  # a budget covering every call: its check is on the path

    BREAKERS.reset()
    LATENCY.reset()
    unillm.patch(log=str(log), providers=providers, routes=routes, budgets=budgets)
    try:
        session = runtime.current()
        assert session is not None and session.budgets is not None
        guard = session.budgets
        # The plans as the runtime builds them: same resolver class, same price estimator.
        resolver = TargetResolver(session.settings.providers, session.settings.routes, session.estimate_cost)
        tags: dict[str, str] = {"feature": "support"}
        cases: dict[str, tuple[str, dict[str, Any]]] = {
            "fallback": ("fallback", CHAT_BODY),
            "weighted": ("weighted", CHAT_BODY),
            "lowest-latency": ("lowest-latency", CHAT_BODY),
            "lowest-cost": ("lowest-cost", CHAT_BODY),
            "auto (chat, easy)": ("auto", CHAT_BODY),
            "auto (code, hard)": ("auto", CODE_BODY),
            "auto (8,000-character user turn, easy)": ("auto", LONG_BODY),
            "[A, B], A's breaker open": ("breaker-open", CHAT_BODY),
            "[B] alone": ("single", CHAT_BODY),
        }
        bodies = {name: {"model": model, **body} for name, (model, body) in cases.items()}
        sizes = {name: len(json.dumps(body).encode()) for name, body in bodies.items()}

        def decide(name: str) -> Any:
            body = bodies[name]
            plan = resolver(body["model"])
            guard.check(plan.route, tags)
            run = plan.start(body, sizes[name], False, tags)
            return run, run.first()

        # A target's prices are looked up in genai-prices on its first cost estimate, then cached for
        # an hour: the first lowest-cost decision (table already loaded) pays that, say how much.
        session.pricer.warm_up()
        clock = time.perf_counter
        t0 = clock()
        decide("lowest-cost")
        cold_cost = clock() - t0

        for target in ROUTE_TARGETS:  # lowest-latency orders by measured latency: give it measurements
            for ms in (420.0, 380.0, 450.0):
                LATENCY.observe(target, False, ms * (1 + ROUTE_TARGETS.index(target) / 4))
        rules = BreakerRules(cooldown=3600.0, max_cooldown=3600.0)
        for _ in range(rules.failures):
            BREAKERS.record(TARGET_A, False, rules)
        assert BREAKERS.is_open(TARGET_A)

        reasons: dict[str, str | None] = {}
        chosen: dict[str, str] = {}
        for name in cases:  # warm up, and note what was decided
            for _ in range(200):
                run, step = decide(name)
            reasons[name], chosen[name] = run.reason, target_key(step.target)
        samples: dict[str, list[float]] = {name: [] for name in cases}
        rounds = 10
        for _ in range(rounds):  # interleaved, so drift hits every strategy alike
            for name in cases:
                values = samples[name]
                for _ in range(n // rounds // (20 if "8,000" in name else 1)):  # ~1 ms each: fewer
                    t0 = clock()
                    decide(name)
                    values.append(clock() - t0)
        assert BREAKERS.is_open(TARGET_A)
    finally:
        unillm.unpatch()
        BREAKERS.reset()
        LATENCY.reset()
    results: dict[str, dict[str, Any]] = {}
    for name in cases:
        results[name] = {
            **_stats(samples[name], 1e6),
            "reason": reasons[name],
            "first": chosen[name],
            "bytes": sizes[name],
        }
    results["lowest-cost"]["cold_us"] = cold_cost * 1e6
    return results


# -- 2. routed calls on the in-process fake; a target with its breaker open ---------------------


def bench_routed_calls(rounds: int, block: int, log: Path) -> dict[str, Any]:
    """Raw SDK vs patched pass-through vs route [B] vs route [A (breaker open), B], same fake."""
    import openai

    import unillm
    from unillm.routing.breaker import BREAKERS, BreakerRules

    httpx = importlib.import_module(sdk_http_library())
    hosts: dict[str, int] = {}
    transport, _ = transports(sdk_http_library(), hosts=hosts)
    client = openai.OpenAI(api_key="sk-bench", max_retries=0, http_client=httpx.Client(transport=transport))
    config = {
        "log": str(log),
        "providers": {
            "mistral": {"base_url": "http://a.bench/v1", "api_key": "bench"},
            "groq": {"base_url": "http://b.bench/openai/v1", "api_key": "bench"},
        },
        "routes": {
            "route-b": {"targets": [TARGET_B], "retries": 0, "backoff": 0},
            "route-ab": {"targets": [TARGET_A, TARGET_B], "retries": 0, "backoff": 0},
        },
    }
    models = {"pass-through": "gpt-4o-mini", "route [B]": "route-b", "route [A open, B]": "route-ab"}
    samples: dict[str, list[float]] = {"raw": [], **{side: [] for side in models}}
    clock = time.perf_counter

    def run(side: str, n: int) -> None:
        model = models.get(side, "gpt-4o-mini")
        values = samples[side]
        for _ in range(n):
            t0 = clock()
            client.chat.completions.create(model=model, messages=MESSAGES)
            values.append(clock() - t0)

    BREAKERS.reset()
    rules = BreakerRules(cooldown=3600.0, max_cooldown=3600.0)
    for _ in range(rules.failures):
        BREAKERS.record(TARGET_A, False, rules)
    try:
        run("raw", 50)  # warm up every path
        unillm.patch(**config)
        for side in models:
            run(side, 50)
        unillm.unpatch()
        for values in samples.values():
            values.clear()
        hosts.clear()
        patched_sides = list(models)
        for r in range(rounds):
            if r % 2 == 0:
                run("raw", block)
            unillm.patch(**config)
            for side in patched_sides[r % 3 :] + patched_sides[: r % 3]:  # rotate the order
                run(side, block)
            unillm.unpatch()
            if r % 2 == 1:
                run("raw", block)
        still_open = BREAKERS.is_open(TARGET_A)
    finally:
        unillm.unpatch()
        BREAKERS.reset()
    return {
        "samples": {side: _stats(values, 1e6) for side, values in samples.items()},
        "added": {
            "route [B] vs pass-through": _added(samples["pass-through"], samples["route [B]"]),
            "route [B] vs raw SDK": _added(samples["raw"], samples["route [B]"]),
            "route [A open, B] vs route [B]": _added(samples["route [B]"], samples["route [A open, B]"]),
        },
        "requests_to_a": hosts.get("a.bench", 0),
        "requests_to_b": hosts.get("b.bench", 0),
        "calls_through_b": len(samples["route [B]"]) + len(samples["route [A open, B]"]),
        "breaker_stayed_open": still_open,
    }


def _added(base: list[float], measured: list[float], scale: float = 1e6) -> dict[str, float]:
    base_median, measured_median = statistics.median(base), statistics.median(measured)
    return {
        "base_median": base_median * scale,
        "median": measured_median * scale,
        "added_median": (measured_median - base_median) * scale,
        "base_p99": _percentile(base, 0.99) * scale,
        "p99": _percentile(measured, 0.99) * scale,
        "added_p99": (_percentile(measured, 0.99) - _percentile(base, 0.99)) * scale,
        "ratio": measured_median / base_median,
    }


# -- 3. a dead target (connection refused), real sockets ----------------------------------------


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _GCPauses:
    """Full (generation 2) garbage collections while `side` is being timed: count and longest pause."""

    def __init__(self) -> None:
        self.side: str | None = None
        self.pauses: dict[str, list[float]] = {}
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2 or self.side is None:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.setdefault(self.side, []).append(time.perf_counter() - self._started)

    def summary(self, side: str) -> dict[str, float]:
        pauses = self.pauses.get(side, [])
        return {"gc2_count": len(pauses), "gc2_max_ms": max(pauses, default=0.0) * 1e3}


def bench_dead_target(rounds: int, block: int, log: Path) -> dict[str, Any]:
    """Route [dead, live] vs route [live] on a real FakeOpenAI server: breaker kept closed, and on."""
    import openai

    import unillm
    from unillm.routing.breaker import BREAKERS
    from unillm.testing import FakeOpenAI

    port = _closed_port()
    clock = time.perf_counter
    results: dict[str, Any] = {"dead_url": f"http://127.0.0.1:{port}/v1"}
    with FakeOpenAI() as live:
        unillm.patch(
            log=str(log),
            providers={
                "mistral": {"base_url": results["dead_url"], "api_key": "bench"},  # nothing listens there
                "groq": {"base_url": live.base_url, "api_key": "bench"},
            },
            routes={
                "live": {"targets": [TARGET_B], "retries": 0, "backoff": 0},
                "dead-first": {"targets": [TARGET_A, TARGET_B], "retries": 0, "backoff": 0},
            },
        )
        client = openai.OpenAI(api_key="sk-bench", base_url="http://127.0.0.1:9/v1", max_retries=0)

        gc_pauses = _GCPauses()

        def calls(model: str, n: int, before: Callable[[], None] | None, into: list[float]) -> None:
            gc_pauses.side = model if into else None
            for _ in range(n):
                if before is not None:
                    before()
                t0 = clock()
                answer = client.chat.completions.create(model=model, messages=MESSAGES)
                into.append(clock() - t0)
                assert answer.choices[0].message.content

        def dead_attempts() -> int:
            unillm.flush(timeout=10.0)
            query = "select count(*) from attempts where provider = 'mistral'"
            return unillm.sql(query, log=str(log)).rows[0][0]

        gc.callbacks.append(gc_pauses)
        try:
            for model in ("live", "dead-first"):  # warm up: pool, imports
                calls(model, 20, BREAKERS.reset, [])
            phases: dict[str, Callable[[], None] | None] = {"closed": BREAKERS.reset, "on": None}
            for phase, before in phases.items():
                BREAKERS.reset()
                if phase == "on":  # the default rules: the breaker opens after 5 failures in a row
                    calls("dead-first", 5, None, [])
                    assert BREAKERS.is_open(TARGET_A)
                attempts_before, served_before = dead_attempts(), len(live.requests)
                gc_pauses.pauses.clear()
                alone: list[float] = []
                failover: list[float] = []
                started = clock()
                for _ in range(rounds):
                    calls("live", block, before, alone)
                    calls("dead-first", block, before, failover)
                results[phase] = {
                    **_added(alone, failover, scale=1e3),
                    "calls": len(alone) + len(failover),
                    "dead_attempts": dead_attempts() - attempts_before,
                    "answered_by_live": len(live.requests) - served_before,
                    "seconds": clock() - started,
                    "gc_live": gc_pauses.summary("live"),
                    "gc_dead_first": gc_pauses.summary("dead-first"),
                }
                gc_pauses.side = None
        finally:
            gc.callbacks.remove(gc_pauses)
            unillm.unpatch()
            BREAKERS.reset()
    return results


def bench_routing(quick: bool, tmp: Path) -> dict[str, Any]:
    n, rounds, block, dead_rounds, dead_block = (4000, 3, 100, 3, 30) if quick else (20_000, 8, 200, 8, 100)
    print("routing: decisions ...", flush=True)
    decisions = bench_decisions(n, tmp / "routing-decisions.duckdb")
    print("routing: routed calls (in-process) ...", flush=True)
    calls = bench_routed_calls(rounds, block, tmp / "routing-calls.duckdb")
    print("routing: dead target (127.0.0.1) ...", flush=True)
    dead = bench_dead_target(dead_rounds, dead_block, tmp / "routing-dead.duckdb")
    return {"decisions": decisions, "calls": calls, "dead": dead, "n": n, "rounds": rounds, "block": block}


# -- rendering ----------------------------------------------------------------------------------

DECISION_LIMIT_US = 20.0
OPEN_BREAKER_LIMIT_US = 2.0  # "zero time": no request, no wait; the skip is a dictionary lookup
DEAD_TARGET_LIMIT_MS = 10.0
_REQUESTS = {
    "auto (code, hard)": "code question",
    "auto (8,000-character user turn, easy)": "system prompt + one 8,000-character user turn, no cue",
}


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def render_routing(r: dict[str, Any]) -> list[str]:
    decisions, calls, dead = r["decisions"], r["calls"], r["dead"]
    chat_kb = decisions["fallback"]["bytes"] / 1000
    lines = [
        "",
        "## Routing",
        "",
        "### Routing decision per call",
        "",
        "What unillm decides before a routed call's first attempt, timed per call: `resolver(model)` (the",
        "route's Plan, cached), the budget check (one budget covering every call), `plan.start(body,",
        "request_bytes, stream, tags)` (the strategy's ordering: price estimates, latency averages,",
        "classification) and `run.first()` (context-window and breaker checks). Plans come from",
        "`TargetResolver` with the runtime's own price estimator (`Session.estimate_cost`), 3 targets per",
        f"route ({', '.join(ROUTE_TARGETS)}); {r['n']:,} decisions per",
        "strategy, interleaved in 10 rounds. The request is a support chat (system prompt + 5 turns,",
        f"{chat_kb:.1f} KB) unless the row says otherwise.",
        "",
        "| strategy | request | decided (route reason) | median | p99 | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, d in decisions.items():
        if name.startswith("["):
            continue
        request = f"{_REQUESTS.get(name, 'support chat')}, {d['bytes'] / 1000:.1f} KB"
        lines.append(
            f"| {name} | {request} | {d['reason']} | {d['median']:.1f} µs | {d['p99']:.1f} µs "
            f"| ≤ {DECISION_LIMIT_US:.0f} µs | {_yes(d['median'] <= DECISION_LIMIT_US)} |"
        )
    lines += [
        "",
        "The first lowest-cost decision for a set of targets (and again once an hour, when the cached prices",
        f"expire) looks each target's prices up in genai-prices: {decisions['lowest-cost']['cold_us']:,.0f} µs "
        "for that one call (price table already loaded).",
    ]

    added = calls["added"]
    lines += [
        "",
        "### Routed call, end to end (in-process fake)",
        "",
        "The same in-process OpenAI-wire fake as above; a route of one OpenAI-wire target (`groq`, its",
        "`base_url` answered by the fake, `retries = 0`) against a pass-through patched call and against the",
        f"raw SDK, alternating blocks of {r['block']} calls, {r['rounds']} rounds. Informational: the issue sets",
        "no target for the whole routed call (it adds the dispatch transport: the request rebuilt for the",
        "provider, its answer re-read as OpenAI's, the attempt recorded).",
        "",
        "| path | baseline median | routed median | added median | baseline p99 | routed p99 | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("route [B] vs pass-through", "route [B] vs raw SDK"):
        a = added[name]
        label = name.replace("route [B]", "route of 1 target").replace("pass-through", "patched pass-through")
        lines.append(
            f"| {label} | {a['base_median']:,.1f} µs | {a['median']:,.1f} µs | {a['added_median']:,.1f} µs "
            f"| {a['base_p99']:,.1f} µs | {a['p99']:,.1f} µs | {a['ratio']:.3f} |"
        )

    skipped = added["route [A open, B] vs route [B]"]
    single, both = decisions["[B] alone"], decisions["[A, B], A's breaker open"]
    skip_cost = both["median"] - single["median"]
    met = skip_cost <= OPEN_BREAKER_LIMIT_US and calls["requests_to_a"] == 0 and calls["breaker_stayed_open"]
    lines += [
        "",
        "### A target whose breaker is open",
        "",
        "Route [A, B] with A's breaker opened beforehand (`BREAKERS.record` with failures ≥ the threshold, a",
        "one-hour cooldown) against the route [B] alone, both measured in the runs of the table above: the",
        "time per call the open-breaker route adds should be ≈ 0, and A must receive nothing. The verdict",
        "is on the decision (the skip itself) and the requests: end-to-end medians of ~750 µs calls in",
        "alternating blocks differ by ±15 µs from run to run whatever the route, so they are shown, not judged.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| added time per call, end to end: median | {skipped['added_median']:+,.1f} µs "
        f"({skipped['base_median']:,.1f} → {skipped['median']:,.1f} µs) |",
        f"| added time per call, end to end: p99 | {skipped['added_p99']:+,.1f} µs "
        f"({skipped['base_p99']:,.1f} → {skipped['p99']:,.1f} µs) |",
        f"| added decision time (median; the skip itself) | {skip_cost:+.1f} µs "
        f"({single['median']:.1f} → {both['median']:.1f} µs) |",
        f"| requests A received | {calls['requests_to_a']:,} (B: {calls['requests_to_b']:,} for "
        f"{calls['calls_through_b']:,} routed calls) |",
        f"| A's breaker still open at the end | {'yes' if calls['breaker_stayed_open'] else '**no**'} |",
        f"| target: ≈ 0 (no request to A, the skip ≤ {OPEN_BREAKER_LIMIT_US:.0f} µs of decision) | {_yes(met)} |",
    ]

    lines += [
        "",
        "### A dead target (connection refused), over 127.0.0.1",
        "",
        "Real sockets: route [dead, live] against route [live] alone, where `dead` is an OpenAI-wire",
        "provider whose `base_url` is a closed port on 127.0.0.1 and `live` a `unillm.testing.FakeOpenAI`",
        "server; `retries = 0`, the SDK's default HTTP client. Every call is answered by `live`. With the",
        "breaker kept closed (breakers reset before every call, both sides) each call first tries the dead",
        "target; with the default breaker rules it opens after 5 failures and the dead target is skipped",
        "(the measurement stays within its 10 s cooldown; after it, one call per cooldown probes the dead",
        "target again, the cooldown doubling up to 300 s).",
        "",
        "| breaker | route [live] median | route [dead, live] median | added median "
        "| [live] p99 | [dead, live] p99 | added p99 | tries of dead | target | met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for phase, label in (("closed", "kept closed"), ("on", "on (default rules)")):
        d = dead[phase]
        lines.append(
            f"| {label} | {d['base_median']:.2f} ms | {d['median']:.2f} ms | {d['added_median']:+.2f} ms "
            f"| {d['base_p99']:.2f} ms | {d['p99']:.2f} ms | {d['added_p99']:+.2f} ms "
            f"| {d['dead_attempts']:,} in {d['calls'] // 2:,} calls | ≤ {DEAD_TARGET_LIMIT_MS:.0f} ms "
            f"| {_yes(d['added_median'] <= DEAD_TARGET_LIMIT_MS)} |"
        )
    gc_lines = []
    for phase, label in (("closed", "breaker kept closed"), ("on", "breaker on")):
        d = dead[phase]
        live, dead_first = d["gc_live"], d["gc_dead_first"]
        gc_lines.append(
            f"{label}: {dead_first['gc2_count']} during the [dead, live] calls (longest "
            f"{dead_first['gc2_max_ms']:.0f} ms), {live['gc2_count']} during the [live] calls (longest "
            f"{live['gc2_max_ms']:.0f} ms)"
        )
    lines += [
        "",
        "The p99 columns hold unillm's background work more than routing: the recorder's spool writes and",
        "folds (every 0.5 s and 1 s) take the GIL from the calling thread for a few ms, on both sides alike",
        "(with `flush_interval = 30` both p99 fall to ~3 ms); and full (generation 2) garbage collections,",
        f"counted while timing: {'; '.join(gc_lines)}.",
    ]
    return lines
