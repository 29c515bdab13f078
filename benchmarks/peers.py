"""unillm against its peers, in one process, on the same fakes (issue 7).

    bash benchmarks/peers_env.sh     # .venvs/bench: unillm + litellm + the OTel OpenAI instrumentation
    .venvs/bench/bin/python benchmarks/run.py --only peers --output /tmp/peers.md

Paths, all calling the same fake with the same request:
- raw openai SDK (the floor): `client.chat.completions.create(...)`
- unillm: the same client after `unillm.patch()` (recording to DuckDB on, writer thread running)
- LiteLLM: `litellm.completion(model="openai/gpt-4o-mini", api_base=..., api_key=...)`
- LiteLLM Router: `Router(model_list=[one deployment]).completion(...)`
- OTel: the same client as raw after `OpenAIInstrumentor().instrument(tracer_provider=...)`
  (opentelemetry-instrumentation-openai-v2), spans through a SimpleSpanProcessor into an
  InMemorySpanExporter (cleared after each block); metrics and logs go to the no-op globals.

Transports: the in-process fake of benchmarks/inprocess.py (no socket: the SDK's floor) and
`unillm.testing.FakeOpenAI` over 127.0.0.1 (a real HTTP server). Every side, LiteLLM included,
sends through one httpx transport that answers `*.bench` hosts in process and hands anything else
to a real `httpx.HTTPTransport` (the FakeOpenAI servers run in a child process of their own): the SDK clients get it as `http_client=`, LiteLLM as
`litellm.client_session` / `litellm.aclient_session` (the hooks its OpenAI provider reads before
building its own client, `litellm/llms/openai/common_utils.py`).

A second part (`bench_translation`) sets unillm translating an openai SDK call to Anthropic and
Gemini beside LiteLLM's own anthropic/ and gemini/ providers and the providers' SDKs, on
FakeAnthropic / FakeGemini over 127.0.0.1.

Blocks of calls rotate over the sides, round after round, so drift hits every side alike; each
side is switched on only for its own block (`unillm.patch()` / `unpatch()`, `instrument()` /
`uninstrument()`). Nothing here is imported by run.py until the section runs; litellm and
OpenTelemetry are imported inside functions only.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import itertools
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]
SHORT, LONG = 10, 110  # stream lengths: the per-chunk cost is the slope between them
SIDES = ("raw", "unillm", "litellm", "router", "otel", "openllmetry")
LABELS = {
    "raw": "raw openai SDK (floor)",
    "unillm": "unillm.patch()",
    "litellm": "litellm.completion",
    "router": "litellm Router",
    "otel": "OTel openai-v2",
    "openllmetry": "OpenLLMetry",
}
PEERS = ("litellm", "router", "otel", "openllmetry")
TRANSPORTS = {"inprocess": "in-process", "loopback": "127.0.0.1"}
UNILLM_SETTLE_S = 0.6  # untimed in-process unillm calls after each patch() (see `settle`)
KINDS = ("sync", "stream10", "stream110", "async")
NOT_MEASURED = "not measured: run it with .venvs/bench/bin/python (benchmarks/peers_env.sh)"
# LiteLLM fetches its model price map from the internet at import unless told to use its bundled copy.
LITELLM_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def missing() -> list[str]:
    """The peer packages the running interpreter lacks (empty: the section can run)."""
    wanted = {
        "litellm": "litellm",
        "opentelemetry.sdk": "opentelemetry-sdk",
        "opentelemetry.instrumentation.openai_v2": "opentelemetry-instrumentation-openai-v2",
    }
    return [package for module, package in wanted.items() if not _has(module)]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in (
        "unillm",
        "openai",
        "httpx",
        "litellm",
        "opentelemetry-sdk",
        "opentelemetry-instrumentation-openai-v2",
        "opentelemetry-instrumentation-openai",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _dispatching_transports(sent: list[int]) -> tuple[Any, Any]:
    """(sync, async) httpx transports: `sN.bench` hosts answered in process (N chunks per stream),
    anything else (127.0.0.1) sent over a real socket. `sent[0]` counts the requests sent."""
    import httpx
    from inprocess import transports

    sync_fakes, async_fakes = {}, {}
    for chunks in (SHORT, LONG):
        sync_fakes[f"s{chunks}.bench"], async_fakes[f"s{chunks}.bench"] = transports("httpx", chunks)
    real_sync, real_async = httpx.HTTPTransport(), httpx.AsyncHTTPTransport()

    class Sync(httpx.BaseTransport):
        def handle_request(self, request: Any) -> Any:
            sent[0] += 1
            return sync_fakes.get(request.url.host, real_sync).handle_request(request)

    class Async(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: Any) -> Any:
            sent[0] += 1
            return await async_fakes.get(request.url.host, real_async).handle_async_request(request)

    return Sync(), Async()


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Close `loop` after cancelling what is still pending on it (LiteLLM's logging worker)."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()


def bench_peers(quick: bool, tmp: Path) -> dict[str, Any]:
    absent = missing()
    if absent:
        return {"missing": absent, "python": sys.executable}
    for key, value in LITELLM_ENV.items():
        os.environ.setdefault(key, value)
    started = time.perf_counter()
    print("peers: calls (sync, streamed, async; in-process and 127.0.0.1) ...", flush=True)
    calls = _bench_calls(quick, tmp / "peers.duckdb")
    print(f"peers: calls took {time.perf_counter() - started:.0f} s; translation ...", flush=True)
    translation = bench_translation(quick, tmp / "peers-translation.duckdb")
    print(f"peers: translation took {translation['seconds']:.0f} s; imports ...", flush=True)
    imports = bench_imports(2 if quick else 3, tmp / "peers-import.duckdb")
    return {
        "calls": calls,
        "translation": translation,
        "imports": imports,
        "versions": versions(),
        "seconds": time.perf_counter() - started,
        "quick": quick,
    }


def _bench_calls(quick: bool, log: Path) -> dict[str, Any]:
    import httpx
    import litellm
    import openai
    from fakes import served
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import unillm

    litellm.suppress_debug_info = True
    rounds = 2 if quick else 4
    sizes = {"sync": 50, "stream10": 40, "stream110": 5, "async": 50}
    if quick:
        sizes = {kind: max(3, n // 3) for kind, n in sizes.items()}

    sides = tuple(side for side in SIDES if side != "openllmetry" or _has("opentelemetry.instrumentation.openai"))
    sent = [0]  # every side must send exactly one request per call (no cache, no retry)
    spans = [0]  # each OTel side must end exactly one span per call
    sync_transport, async_transport = _dispatching_transports(sent)
    http = httpx.Client(transport=sync_transport)
    ahttp = httpx.AsyncClient(transport=async_transport)
    # LiteLLM's OpenAI provider builds its openai client on these when they are set.
    litellm.client_session = httpx.Client(transport=sync_transport)
    litellm.aclient_session = httpx.AsyncClient(transport=async_transport)

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    from openai.resources.chat.completions import AsyncCompletions, Completions

    originals = {cls: cls.__dict__["create"] for cls in (Completions, AsyncCompletions)}
    instrumentors = {"otel": OpenAIInstrumentor()}
    if "openllmetry" in sides:
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OpenLLMetryInstrumentor

        instrumentors["openllmetry"] = OpenLLMetryInstrumentor()

    # The 127.0.0.1 fakes run in a process of their own, as a provider would: their threads do
    # not compete with the sides' for this process's GIL.
    servers = contextlib.ExitStack()
    try:
        short_url, long_url = servers.enter_context(served(f"openai:words={SHORT}", f"openai:words={LONG}"))
        bases = {
            ("inprocess", SHORT): f"http://s{SHORT}.bench/v1",
            ("inprocess", LONG): f"http://s{LONG}.bench/v1",
            ("loopback", SHORT): short_url,
            ("loopback", LONG): long_url,
        }
        clients = {
            key: openai.OpenAI(api_key="sk-bench", base_url=url, max_retries=0, http_client=http)
            for key, url in bases.items()
        }
        aclients = {
            key: openai.AsyncOpenAI(api_key="sk-bench", base_url=url, max_retries=0, http_client=ahttp)
            for key, url in bases.items()
        }
        group = {key: f"bench-{key[0]}-{key[1]}" for key in bases}
        router = litellm.Router(
            model_list=[
                {
                    "model_name": group[key],
                    "litellm_params": {
                        "model": "openai/gpt-4o-mini",
                        "api_base": url,
                        "api_key": "sk-bench",
                        "max_retries": 0,
                    },
                }
                for key, url in bases.items()
            ],
            num_retries=0,
        )
        loop = asyncio.new_event_loop()

        def one(side: str, key: tuple[str, int], stream: bool) -> Any:
            if side == "litellm":
                return litellm.completion(
                    model="openai/gpt-4o-mini",
                    api_base=bases[key],
                    api_key="sk-bench",
                    messages=MESSAGES,
                    stream=stream,
                    max_retries=0,
                )
            if side == "router":
                return router.completion(model=group[key], messages=MESSAGES, stream=stream)
            return clients[key].chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=stream)

        async def aone(side: str, key: tuple[str, int]) -> Any:
            if side == "litellm":
                return await litellm.acompletion(
                    model="openai/gpt-4o-mini",
                    api_base=bases[key],
                    api_key="sk-bench",
                    messages=MESSAGES,
                    max_retries=0,
                )
            if side == "router":
                return await router.acompletion(model=group[key], messages=MESSAGES)
            return await aclients[key].chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

        clock = time.perf_counter
        samples: dict[tuple[str, str, str], list[float]] = {}
        ttft: dict[tuple[str, str], list[float]] = {}

        def block(side: str, transport: str, kind: str, n: int) -> None:
            before = sent[0]
            try:
                timed(side, transport, kind, n)
            finally:
                if sent[0] - before != n:
                    raise RuntimeError(f"{side} {transport} {kind}: {sent[0] - before} requests for {n} calls")

        def timed(side: str, transport: str, kind: str, n: int) -> None:
            out = samples.setdefault((transport, kind, side), [])
            if kind == "async":

                async def run() -> None:
                    for _ in range(n):
                        t0 = clock()
                        await aone(side, (transport, SHORT))
                        out.append(clock() - t0)

                loop.run_until_complete(run())
                return
            if kind == "sync":
                for _ in range(n):
                    t0 = clock()
                    one(side, (transport, SHORT), False)
                    out.append(clock() - t0)
                return
            chunks = SHORT if kind == "stream10" else LONG
            firsts = ttft.setdefault((transport, side), [])
            for _ in range(n):
                t0 = clock()
                first = None
                for chunk in one(side, (transport, chunks), True):
                    if first is None and chunk.choices and chunk.choices[0].delta.content:
                        first = clock()
                out.append(clock() - t0)
                if chunks == SHORT:
                    firsts.append((first or clock()) - t0)

        settled = [0]  # untimed unillm calls (each recorded: counted in the log check)

        def settle(kind: str) -> None:
            """Untimed in-process unillm calls for UNILLM_SETTLE_S: its block is timed in its steady state,
            not as the first calls after patch() (in process the recorder's threads wait for the GIL once
            they wake, run.py's overhead section says why; a block of 50 calls ended before they first did)."""
            calls = samples.setdefault(("inprocess", kind, "unillm"), [])
            firsts = ttft.setdefault(("inprocess", "unillm"), [])
            n_calls, n_firsts = len(calls), len(firsts)
            until = time.perf_counter() + UNILLM_SETTLE_S
            while time.perf_counter() < until:
                timed("unillm", "inprocess", kind, 1)
                settled[0] += 1
            del calls[n_calls:]  # untimed: their samples go
            del firsts[n_firsts:]

        def switched(side: str, on: bool) -> None:
            if side == "unillm":
                if on:
                    unillm.patch(log=str(log))
                else:
                    unillm.unpatch()
            elif side in instrumentors:
                if on:
                    instrumentors[side].instrument(tracer_provider=provider)
                else:
                    instrumentors[side].uninstrument()
                    # OpenLLMetry's uninstrument() leaves its wrapper on chat.completions.create (one more
                    # layer every block): put back the methods as they were before it.
                    for cls, method in originals.items():
                        cls.create = method
                    spans[0] += len(exporter.get_finished_spans())
                    exporter.clear()

        def one_round(n_of: Callable[[str], int], *, timed_round: bool = True) -> None:
            for transport in TRANSPORTS:
                for kind in KINDS:
                    for side in order:
                        switched(side, True)
                        try:
                            if side == "unillm" and transport == "inprocess" and timed_round:
                                settle(kind)
                            block(side, transport, kind, n_of(kind))
                        finally:
                            switched(side, False)
                        # Let background work (LiteLLM's logging worker, unillm's writer, garbage)
                        # finish before the next side's block, so no side pays for another's.
                        gc.collect()
                        time.sleep(0.02)

        order = list(sides)
        gc.collect()
        gc.freeze()
        one_round(lambda kind: 5, timed_round=False)  # warm up every path: imports, pools, LiteLLM's clients
        samples.clear()
        ttft.clear()
        spans[0] = 0
        gc.collect()
        gc.freeze()  # LiteLLM's large heap out of the collector's way: the collects between blocks stay cheap
        ends: list[dict[Any, int]] = []  # after each round, how many samples each list had
        for r in range(rounds):
            order = list(sides[r % len(sides) :] + sides[: r % len(sides)])  # rotate who goes first
            one_round(lambda kind: sizes[kind])
            ends.append({key: len(values) for key, values in [*samples.items(), *ttft.items()]})
        _close(loop)
        gc.unfreeze()
        otel_calls = sum(len(samples[(t, k, side)]) for t in TRANSPORTS for k in KINDS for side in instrumentors)
        if spans[0] != otel_calls:
            raise RuntimeError(f"OTel sides: {spans[0]} spans for {otel_calls} calls")
        unillm_calls = sum(len(samples[(t, k, "unillm")]) for t in TRANSPORTS for k in KINDS) + 5 * len(KINDS) * 2
        unillm_calls += settled[0]
        rows = unillm.sql("select count(*) from calls", log=str(log)).rows[0][0]
        if rows != unillm_calls:
            raise RuntimeError(f"unillm side: {rows} calls recorded for {unillm_calls} calls")
    finally:
        servers.close()
        http.close()

    def stat(values: list[float]) -> dict[str, float]:
        return {
            "median_us": statistics.median(values) * 1e6,
            "p99_us": _percentile(values, 0.99) * 1e6,
            "n": len(values),
        }

    def by_round(key: Any, values: list[float]) -> list[float]:
        """The median of each round's samples, in µs: how much a row moves from round to round."""
        cuts = [0, *(end.get(key, 0) for end in ends)]
        return [statistics.median(values[a:b]) * 1e6 for a, b in itertools.pairwise(cuts) if b > a]

    def stat_rounds(key: Any, values: list[float]) -> dict[str, Any]:
        return {**stat(values), "rounds_us": by_round(key, values)}

    results: dict[str, Any] = {"rounds": rounds, "sizes": sizes, "sides": sides, "rows": {}}
    for transport in TRANSPORTS:
        for kind in KINDS:
            results["rows"][f"{transport}/{kind}"] = {
                side: stat_rounds((transport, kind, side), samples[(transport, kind, side)]) for side in sides
            }
        results["rows"][f"{transport}/ttft"] = {
            side: stat_rounds((transport, side), ttft[(transport, side)]) for side in sides
        }
        short, long = results["rows"][f"{transport}/stream10"], results["rows"][f"{transport}/stream110"]
        results["rows"][f"{transport}/per_chunk"] = {
            side: {
                "median_us": (long[side]["median_us"] - short[side]["median_us"]) / (LONG - SHORT),
                "rounds_us": [
                    (b - a) / (LONG - SHORT)
                    for a, b in zip(short[side]["rounds_us"], long[side]["rounds_us"], strict=True)
                ],
            }
            for side in sides
        }
    return results


def _rounds_ahead(row: dict[str, Any], peer: str) -> tuple[int, int]:
    """In how many rounds unillm's median was below `peer`'s, of how many (same round, same block size)."""
    pairs = list(zip(row["unillm"]["rounds_us"], row[peer]["rounds_us"], strict=True))
    return sum(1 for ours, theirs in pairs if ours < theirs), len(pairs)


def _verdict(row: dict[str, Any], added: dict[str, float], sides: Sequence[str]) -> str:
    """Ahead of every peer on the medians of all rounds together; with, for each peer where the
    rounds disagree, in how many of them unillm was ahead (the run-to-run noise, shown)."""
    behind = [p for p in PEERS if p in sides and added["unillm"] >= added[p]]
    split = []
    for p in PEERS:
        if p in sides:
            ahead, n = _rounds_ahead(row, p)
            if 0 < ahead < n:
                split.append(f"ahead of {LABELS[p]} in {ahead} of {n} rounds")
    verdict = "yes" if not behind else "**no**: behind " + ", ".join(LABELS[p] for p in behind)
    return verdict + (f" ({'; '.join(split)})" if split else "")


TRANSLATION_SIDES = ("native", "unillm", "litellm")
TRANSLATION_LABELS = {
    "native": "the provider's own SDK (floor)",
    "unillm": "unillm: openai SDK, translated",
    "litellm": "litellm.completion",
}
PROVIDERS = {"anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}


def bench_translation(quick: bool, log: Path) -> dict[str, Any]:
    """unillm translating an OpenAI-wire call to Anthropic / Gemini vs LiteLLM calling the same fake
    natively (its anthropic/ and gemini/ providers, api_base pointed at the fake) vs the provider's
    own SDK (anthropic, google-genai), all over 127.0.0.1 against FakeAnthropic / FakeGemini in a
    child process."""
    import anthropic
    import litellm
    import openai
    from fakes import served
    from google import genai
    from google.genai import types

    import unillm

    started = time.perf_counter()
    rounds = 2 if quick else 5
    sizes = {"sync": 8, "stream": 4} if quick else {"sync": 30, "stream": 10}
    samples: dict[tuple[str, str, str], list[float]] = {}
    with served("anthropic", "gemini") as (anthropic_url, gemini_url):
        oai = openai.OpenAI(api_key="sk-bench", base_url="http://127.0.0.1:9/v1", max_retries=0)
        native_anthropic = anthropic.Anthropic(api_key="bench", base_url=anthropic_url, max_retries=0)
        native_gemini = genai.Client(api_key="bench", http_options=types.HttpOptions(base_url=gemini_url))
        config = {
            "log": str(log),
            "providers": {
                "anthropic": {"base_url": anthropic_url, "api_key": "bench"},
                "gemini": {"base_url": gemini_url, "api_key": "bench"},
            },
        }
        api_bases = {"anthropic": anthropic_url, "gemini": gemini_url.rstrip("/") + "/v1beta"}

        def one(side: str, provider: str, stream: bool) -> None:
            model = PROVIDERS[provider]
            text = ""
            if side == "unillm":
                out = oai.chat.completions.create(model=f"{provider}/{model}", messages=MESSAGES, stream=stream)
                if stream:
                    text = "".join(c.choices[0].delta.content or "" for c in out if c.choices)
                else:
                    text = out.choices[0].message.content or ""
            elif side == "litellm":
                out = litellm.completion(
                    model=f"{provider}/{model}",
                    api_base=api_bases[provider],
                    api_key="bench",
                    messages=MESSAGES,
                    stream=stream,
                    max_retries=0,
                )
                if stream:
                    text = "".join(c.choices[0].delta.content or "" for c in out if c.choices)
                else:
                    text = out.choices[0].message.content or ""
            elif provider == "anthropic":
                kwargs = {"model": model, "max_tokens": 256, "messages": MESSAGES}
                if stream:
                    with native_anthropic.messages.stream(**kwargs) as events:
                        text = "".join(events.text_stream)
                else:
                    text = native_anthropic.messages.create(**kwargs).content[0].text
            else:
                contents = MESSAGES[0]["content"]
                if stream:
                    text = "".join(
                        c.text or ""
                        for c in native_gemini.models.generate_content_stream(model=model, contents=contents)
                    )
                else:
                    text = native_gemini.models.generate_content(model=model, contents=contents).text or ""
            assert text

        def block(side: str, provider: str, kind: str, n: int, timed: bool) -> None:
            if side == "unillm":
                unillm.patch(**config)
            try:
                out = samples.setdefault((provider, kind, side), [])
                for _ in range(n):
                    t0 = time.perf_counter()
                    one(side, provider, kind == "stream")
                    if timed:
                        out.append(time.perf_counter() - t0)
            finally:
                if side == "unillm":
                    unillm.unpatch()
            gc.collect()
            time.sleep(0.02)

        for provider in PROVIDERS:  # warm up every path
            for kind in sizes:
                for side in TRANSLATION_SIDES:
                    block(side, provider, kind, 3, False)
        gc.collect()
        gc.freeze()  # LiteLLM's large heap out of the collector's way: the collects between blocks stay cheap
        for r in range(rounds):
            order = TRANSLATION_SIDES[r % 3 :] + TRANSLATION_SIDES[: r % 3]
            for provider in PROVIDERS:
                for kind, n in sizes.items():
                    for side in order:
                        block(side, provider, kind, n, True)
        gc.unfreeze()
    rows = {
        f"{provider}/{kind}": {
            side: {
                "median_us": statistics.median(samples[(provider, kind, side)]) * 1e6,
                "p99_us": _percentile(samples[(provider, kind, side)], 0.99) * 1e6,
                "n": len(samples[(provider, kind, side)]),
            }
            for side in TRANSLATION_SIDES
        }
        for provider in PROVIDERS
        for kind in sizes
    }
    return {"rows": rows, "rounds": rounds, "sizes": sizes, "seconds": time.perf_counter() - started}


IMPORT_PROBE = textwrap.dedent(
    """
    import json, sys, time

    def rss_mb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024

    kind, log = sys.argv[1], sys.argv[2]
    before = rss_mb()
    t0 = time.perf_counter()
    if kind == "openai":
        import openai
    elif kind == "unillm":
        import openai
        import unillm
        unillm.patch(log=log)
    elif kind == "otel":
        import openai
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        OpenAIInstrumentor().instrument(tracer_provider=TracerProvider())
    elif kind == "openllmetry":
        import openai
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        OpenAIInstrumentor().instrument(tracer_provider=TracerProvider())
    elif kind == "litellm":
        import litellm
    elapsed = time.perf_counter() - t0
    print(json.dumps({"ms": elapsed * 1e3, "rss_mb": rss_mb(), "rss_added_mb": rss_mb() - before}))
    """
)

IMPORT_KINDS = {
    "openai": "`import openai`",
    "unillm": "`import openai, unillm; unillm.patch()`",
    "otel": "`import openai` + OTel SDK + openai-v2 `OpenAIInstrumentor().instrument()`",
    "openllmetry": "`import openai` + OTel SDK + OpenLLMetry `OpenAIInstrumentor().instrument()`",
    "litellm": "`import litellm`",
}


def bench_imports(repeats: int, log: Path) -> dict[str, dict[str, float]]:
    import compileall

    import unillm

    compileall.compile_dir(
        Path(unillm.__file__).parent, quiet=1
    )  # installed packages come compiled; see run.compile_unillm
    env = {**os.environ, **LITELLM_ENV}
    kinds = [kind for kind in IMPORT_KINDS if kind != "openllmetry" or _has("opentelemetry.instrumentation.openai")]
    samples: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    for _ in range(repeats):  # interleaved, like the call blocks
        for kind in kinds:
            out = subprocess.run(
                [sys.executable, "-c", IMPORT_PROBE, kind, str(log)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            samples[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {kind: {key: statistics.median(s[key] for s in runs) for key in runs[0]} for kind, runs in samples.items()}


# --- rendering ---------------------------------------------------------------------------------

ROW_NAMES = {
    "sync": "sync, non-streaming",
    "async": "async, non-streaming",
    "ttft": f"sync streaming: time to first token ({SHORT} chunks)",
    "stream10": f"sync streaming, whole stream ({SHORT} chunks)",
    "stream110": f"sync streaming, whole stream ({LONG} chunks)",
    "per_chunk": f"sync streaming: per chunk (slope {SHORT}→{LONG})",
}


def _us(value: float) -> str:
    return f"{value:,.1f} µs" if abs(value) < 100 else f"{value:,.0f} µs"


def render_peers(result: dict[str, Any]) -> list[str]:
    lines = ["", "## unillm vs its peers (LiteLLM, the OpenTelemetry OpenAI instrumentation)", ""]
    if "missing" in result:
        return lines + [f"{NOT_MEASURED}. Missing here ({result['python']}): {', '.join(result['missing'])}."]
    calls, v = result["calls"], result["versions"]
    sides = calls["sides"]
    lines += [
        f"Measured in .venvs/bench (`benchmarks/peers_env.sh`), {result['seconds']:.0f} s. Versions: unillm {v['unillm']}, openai {v['openai']} (httpx {v['httpx']}), "
        f"litellm {v['litellm']}, opentelemetry-sdk {v['opentelemetry-sdk']}, "
        f"opentelemetry-instrumentation-openai-v2 {v['opentelemetry-instrumentation-openai-v2']}, "
        f"OpenLLMetry's opentelemetry-instrumentation-openai {v['opentelemetry-instrumentation-openai']}"
        + ("" if "openllmetry" in sides else " (its column is left out)")
        + ".",
        "",
        "One process, one fake per transport, the same request on every side. Blocks rotate over the "
        f"{len(sides)} sides for {calls['rounds']} rounds (blocks of {calls['sizes']['sync']} whole calls, "
        f"{calls['sizes']['stream10']} {SHORT}-chunk and {calls['sizes']['stream110']} {LONG}-chunk streams); "
        "each side is switched on only for its own block. unillm records every call to DuckDB (writer thread "
        f"running; in process its block is timed after {UNILLM_SETTLE_S:.1f} s of untimed calls, in its steady "
        "state); LiteLLM runs with its defaults (its logging worker and success callbacks as shipped, "
        "`LITELLM_LOCAL_MODEL_COST_MAP=True` so that import reads its bundled price map instead of the "
        "internet); both OTel instrumentations export each span through a SimpleSpanProcessor to an in-memory "
        "exporter, with their own defaults for message content (openai-v2: off; OpenLLMetry: on, as span "
        "attributes). The verdict compares the medians of all rounds together; where the rounds disagree "
        "it says in how many of them unillm was ahead of that peer, which is how far apart the two are "
        "from the noise.",
    ]
    if result.get("quick"):
        lines += ["", "**--quick run: a smoke check, not a result.**"]
    header = " | ".join(LABELS[s] for s in sides)
    for transport, title in TRANSPORTS.items():
        lines += [
            "",
            f"### {title}: median / p99 per call",
            "",
            f"| path | {header} |",
            "|---|" + "---|" * len(sides),
        ]
        for kind, name in ROW_NAMES.items():
            row = calls["rows"][f"{transport}/{kind}"]
            if kind == "per_chunk":
                cells = [_us(row[s]["median_us"]) for s in sides]
            else:
                cells = [f"{_us(row[s]['median_us'])} / {_us(row[s]['p99_us'])}" for s in sides]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += [
            "",
            f"### {title}: added to the raw SDK (median; ratio to the raw SDK)",
            "",
            "| path | " + " | ".join(LABELS[s] for s in sides[1:]) + " | unillm ahead of every peer |",
            "|---|" + "---|" * len(sides),
        ]
        for kind, name in ROW_NAMES.items():
            if kind in ("stream10", "stream110"):
                continue
            row = calls["rows"][f"{transport}/{kind}"]
            floor = row["raw"]["median_us"]
            added = {s: row[s]["median_us"] - floor for s in sides}
            if kind == "per_chunk":
                cells = [f"{added[s]:+,.2f} µs" for s in sides[1:]]
            else:
                cells = [f"{added[s]:+,.1f} µs (×{row[s]['median_us'] / floor:.2f})" for s in sides[1:]]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {_verdict(row, added, sides)} |")
    if "translation" in result:
        lines += render_translation_peers(result["translation"])
    imports = result["imports"]
    floor = imports["openai"]
    lines += [
        "",
        "### Import time and memory (fresh interpreters, medians)",
        "",
        "| step | time | on top of `import openai` | RSS after | RSS added by the step |",
        "|---|---|---|---|---|",
    ]
    for kind, name in IMPORT_KINDS.items():
        if kind not in imports:
            continue
        imp = imports[kind]
        extra = "—" if kind == "openai" else f"{imp['ms'] - floor['ms']:+,.0f} ms"
        lines.append(
            f"| {name} | {imp['ms']:,.0f} ms | {extra} | {imp['rss_mb']:,.0f} MB | {imp['rss_added_mb']:+,.0f} MB |"
        )
    ahead = (
        imports["unillm"]["ms"] < imports["litellm"]["ms"]
        and imports["unillm"]["rss_mb"] < imports["litellm"]["rss_mb"]
    )
    lines += [
        "",
        f"unillm ahead of LiteLLM on import time and memory: {'yes' if ahead else '**no**'}. "
        "Per chunk is the slope of a side's median between the 10- and 110-chunk streams (the per-call part "
        "cancels); its added column is that slope minus the raw SDK's. unillm adds "
        "`stream_options.include_usage` to streamed requests (to record tokens), so its streams carry one more "
        "event, the last: part of unillm's whole-stream figures over 127.0.0.1, not of its time to first token "
        "(the fake builds each event as it sends it, as a provider does). "
        "The raw SDK and both OTel instrumentations send the body as the app wrote it.",
    ]
    return lines


def render_translation_peers(t: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "### Translation to Anthropic and Gemini, 127.0.0.1: median / p99 per call",
        "",
        "The same request to `FakeAnthropic` / `FakeGemini` (a child process): unillm translating an openai",
        'SDK call (`model="anthropic/claude-sonnet-4-5"`, `"gemini/gemini-2.5-flash"`, providers\' base_url',
        "at the fakes, recording on) vs LiteLLM calling the fake natively (`litellm.completion` with its",
        "`anthropic/` and `gemini/` providers, `api_base` at the fake) vs the provider's own SDK (`anthropic`,",
        "`google-genai`: the floor, no translation). Blocks rotate over the sides for "
        f"{t['rounds']} rounds ({t['sizes']['sync']} whole calls, {t['sizes']['stream']} streams of the fake's",
        "default answer per block).",
        "",
        "| path | " + " | ".join(TRANSLATION_LABELS[s] for s in TRANSLATION_SIDES) + " | LiteLLM / unillm (median) "
        "| unillm ahead of LiteLLM |",
        "|---|" + "---|" * len(TRANSLATION_SIDES) + "---|---|",
    ]
    for key, row in t["rows"].items():
        provider, kind = key.split("/")
        name = f"{provider}, {'streamed (whole stream)' if kind == 'stream' else 'non-streaming'}"
        cells = [f"{_us(row[s]['median_us'])} / {_us(row[s]['p99_us'])}" for s in TRANSLATION_SIDES]
        u, ll = row["unillm"], row["litellm"]
        if u["median_us"] < ll["median_us"] and u["p99_us"] < ll["p99_us"]:
            verdict = "yes"
        elif u["median_us"] < ll["median_us"]:
            verdict = "median only (p99 behind)"
        else:
            verdict = "**no**"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | ×{ll['median_us'] / u['median_us']:.2f} | {verdict} |")
    return lines
