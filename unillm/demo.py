"""`unillm demo`: a small support-bot app on simulated providers, recorded by unillm.patch().

Everything runs on 127.0.0.1 with the simulated providers from `unillm.testing`; no API key is
needed and nothing leaves the machine. The app code below is plain openai SDK code, as a user
would write it — unillm only adds `patch()` and `tags()`.

The demo's routes (`demo_routes()`, unless your unillm.toml has its own) send the chat models to
OpenAI with Anthropic and Gemini behind them. Midway the simulated OpenAI goes down, then comes
back: the routed calls fail over, the breaker opens and later closes, and the summary shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import random
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

DEMO_KEY = "sk-demo-0000-not-a-real-key"


class Triage(BaseModel):
    category: Literal["billing", "shipping", "technical", "other"]
    urgency: int
    summary: str


LOOKUP_ORDER_TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Find an order by its id",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
    },
}

TICKETS = [
    "My invoice shows a double charge for November",
    "The parcel was marked delivered but never arrived",
    "The app crashes when I upload a photo larger than 10 MB",
    "How do I change the email address on my account?",
    "Order 8812 is two weeks late, what is going on?",
    "I was billed after cancelling my subscription",
]


def _triage(client: Any, ticket: str) -> None:
    client.chat.completions.parse(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Classify the support ticket."},
            {"role": "user", "content": ticket},
        ],
        response_format=Triage,
    )


def _answer(client: Any, ticket: str) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o",
        stream=True,
        messages=[
            {"role": "system", "content": "You are a friendly support agent. Answer briefly."},
            {"role": "user", "content": ticket},
        ],
    )
    "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def _agent(client: Any, ticket: str) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": ticket}]
    first = client.chat.completions.create(model="gpt-4.1", messages=messages, tools=[LOOKUP_ORDER_TOOL])
    message = first.choices[0].message
    if not message.tool_calls:
        return
    messages.append(message.model_dump(exclude_none=True))
    for call in message.tool_calls:
        messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"status": "in transit"}'})
    client.chat.completions.create(model="gpt-4.1", messages=messages, tools=[LOOKUP_ORDER_TOOL])


def _search(client: Any, ticket: str) -> None:
    client.embeddings.create(model="text-embedding-3-small", input=[ticket, "refund policy", "shipping times"])


def _summary(client: Any, ticket: str) -> None:
    client.responses.create(
        model="gpt-4.1-mini",
        instructions="Summarise the ticket in one line for the weekly report.",
        input=ticket,
    )


STEPS: dict[str, Callable[[Any, str], None]] = {
    "triage": _triage,
    "answer": _answer,
    "agent": _agent,
    "search": _search,
    "summary": _summary,
}
WEIGHTS = {"triage": 3, "answer": 3, "agent": 2, "search": 2, "summary": 1}


async def _batch(client: Any, tickets: list[str]) -> int:
    """The nightly re-score job: many small calls at once on the async client."""

    async def one(ticket: str) -> bool:
        try:
            await client.chat.completions.create(
                model="gpt-4.1-nano", messages=[{"role": "user", "content": f"Rate urgency 1-5: {ticket}"}]
            )
            return True
        except Exception:
            return False

    results = await asyncio.gather(*(one(t) for t in tickets))
    return sum(not ok for ok in results)


_BREAKER = {"breaker_failures": 3, "breaker_cooldown": 0.3, "breaker_max_cooldown": 1.0}


def demo_routes(native: bool) -> dict[str, Any]:
    """Routes the demo uses when your config has none: what a unillm.toml could say. `native`:
    Anthropic and Gemini can be simulated (their SDKs' types are installed: unillm[demo]);
    otherwise OpenAI-wire providers (Mistral, DeepSeek) stand behind OpenAI instead."""
    strong = "anthropic/claude-sonnet-4-5" if native else "mistral/mistral-large-latest"
    fast = "gemini/gemini-2.5-flash" if native else "deepseek/deepseek-chat"
    return {
        "gpt-4o": {"targets": ["openai/gpt-4o", strong, fast], "retries": 1, "backoff": 0.02, **_BREAKER},
        "gpt-4o-mini": {"targets": ["openai/gpt-4o-mini", fast], "backoff": 0.02, **_BREAKER},
        "gpt-4.1": {
            "strategy": "auto",  # tool calls are hard: the strong model; plain questions: the cheap one
            "targets": ["openai/gpt-4.1-mini", "openai/gpt-4.1", strong],
            "auto": {"easy": "openai/gpt-4.1-mini", "hard": "openai/gpt-4.1"},
            "backoff": 0.02,
            **_BREAKER,
        },
        "text-embedding-3-small": {
            "targets": [
                "openai/text-embedding-3-small",
                "gemini/gemini-embedding-001" if native else "mistral/mistral-embed",
            ],
            "backoff": 0.02,
            **_BREAKER,
        },
        "gpt-4.1-nano": {
            "strategy": "lowest-cost",
            "targets": [
                "openai/gpt-4.1-nano",
                fast,
                "anthropic/claude-haiku-4-5" if native else "groq/llama-3.1-8b-instant",
            ],
        },
    }


def _native_fakes_available() -> bool:
    import importlib.util

    try:
        return all(importlib.util.find_spec(name) is not None for name in ("anthropic", "google.genai"))
    except ModuleNotFoundError:  # `google` itself is missing
        return False


PHASE_SQL = """
select
  tags['phase']                                              as phase,
  provider                                                   as "served by",
  count(*)                                                   as calls,
  count(*) filter (where status = 'ok')                      as ok,
  count(*) filter (where status <> 'ok')                     as failed,
  count(*) filter (where attempts > 1)                       as "failed over / retried",
  round(quantile_cont(duration_ms, 0.5), 1)                  as "p50 ms"
from calls
where tags['run'] = ? and route is not null
group by all
order by min(started_at), provider
"""

BREAKER_SQL = """
select
  target,
  strftime(min(changed_at) filter (where to_state = 'open'), '%H:%M:%S.%g')    as opened,
  count(*) filter (where to_state = 'half_open')                              as probes,
  count(*) filter (where reason = 'probe failed')                             as "probes failed",
  strftime(max(changed_at) filter (where to_state = 'closed'), '%H:%M:%S.%g') as "closed again",
  arg_max(to_state, changed_at)                                               as "state now"
from breaker_events
where changed_at >= ?
group by target
order by opened
"""

SUMMARY_SQL = """
select
  coalesce(tags['feature'], '(total)')                              as feature,
  string_agg(distinct provider, ', ' order by provider)              as provider,
  count(*)                                                           as calls,
  count(*) filter (where status = 'ok')                              as ok,
  count(*) filter (where status <> 'ok')                             as failed,
  count(*) filter (where attempts > 1)                               as retried,
  round(quantile_cont(duration_ms, 0.5), 1)                          as "p50 ms",
  round(quantile_cont(duration_ms, 0.95), 1)                         as "p95 ms",
  round(quantile_cont(ttft_ms, 0.5), 1)                              as "ttft p50 ms",
  sum(input_tokens)                                                  as "in tok",
  sum(output_tokens)                                                 as "out tok",
  printf('%.6f', sum(cost_usd))  as "cost $"
from calls
where tags['run'] = ?
group by rollup (tags['feature'])
order by feature = '(total)', feature
"""


def _describe_route(route: Any) -> str:
    if isinstance(route, str):
        return route
    targets = route["targets"] if isinstance(route, dict) else route.target_names()
    strategy = route.get("strategy", "fallback") if isinstance(route, dict) else route.strategy
    names = [t if isinstance(t, str) else t.get("target", "?") for t in targets]
    return f"{strategy}: " + ", ".join(names)


def _command_name() -> str:
    """`unillm` when it is on PATH, else the full path of the script that is running."""
    import shutil
    import sys

    if shutil.which("unillm"):
        return "unillm"
    script = Path(sys.argv[0])
    return str(script) if script.name == "unillm" else f"{sys.executable} -m unillm"


def run_demo(*, calls: int = 120, log: str | None = None, show_progress: bool = True, seed: int = 7) -> dict[str, Any]:
    import openai
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    import unillm
    from unillm import runtime
    from unillm.adapters.registry import BUILTIN_PROVIDERS
    from unillm.cli import print_table
    from unillm.testing import FakeAnthropic, FakeGemini, FakeOpenAI

    console = Console()
    rng = random.Random(seed)
    run_id = f"demo-{int(time.time())}"
    plan = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()), k=calls)
    outage = range(int(calls * 0.4), int(calls * 0.6))  # the simulated OpenAI is down, then back
    failures = 0
    started = datetime.now(tz=timezone.utc)

    timing: dict[str, Any] = {"latency": 0.008, "ttft": 0.02, "chunk_delay": 0.002, "seed": seed}
    native = _native_fakes_available()
    with contextlib.ExitStack() as servers:
        fake = servers.enter_context(FakeOpenAI(**timing))  # the simulated OpenAI, the one that goes down
        others = servers.enter_context(FakeOpenAI(**timing))  # every other OpenAI-wire provider
        # Every provider the config's routes may name is simulated on 127.0.0.1: nothing leaves the machine.
        simulated = {spec.name: {"base_url": others.base_url, "api_key": DEMO_KEY} for spec in BUILTIN_PROVIDERS}
        simulated["openai"] = {"base_url": fake.base_url, "api_key": DEMO_KEY}
        if native:
            simulated["anthropic"] = {"base_url": servers.enter_context(FakeAnthropic(**timing)).base_url}
            simulated["gemini"] = {"base_url": servers.enter_context(FakeGemini(**timing)).base_url}
            simulated["anthropic"]["api_key"] = simulated["gemini"]["api_key"] = DEMO_KEY
        else:  # not simulated: a closed local port, so nothing leaves the machine even if a route names them
            simulated["anthropic"] = simulated["gemini"] = {"base_url": "http://127.0.0.1:9", "api_key": DEMO_KEY}
        unillm.patch(providers=simulated, **({"log": log} if log else {}))
        session = runtime.current()
        own_routes = bool(session is not None and session.settings.routes)
        if not own_routes:  # no [routes] in the user's config: the demo's own
            unillm.patch(providers=simulated, routes=demo_routes(native), **({"log": log} if log else {}))
            session = runtime.current()
        client = openai.OpenAI(base_url=fake.base_url, api_key=DEMO_KEY, max_retries=2)
        async_client = openai.AsyncOpenAI(base_url=fake.base_url, api_key=DEMO_KEY, max_retries=2)
        routes = session.settings.routes if session is not None else {}
        console.print(f"[bold]unillm demo[/bold]: a support bot on simulated providers ({fake.base_url} and friends)")
        console.print(
            ("routes from your config: " if own_routes else "the demo's routes (put yours in unillm.toml): ")
            + "; ".join(f"{k} → {_describe_route(v)}" for k, v in routes.items())
        )
        if not native:
            console.print(
                "[dim]Anthropic and Gemini are simulated from their SDKs' types, which are not installed: "
                "pip install 'unillm[demo]' to see them in the demo.[/dim]"
            )
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, disable=not show_progress, transient=False) as progress:
            task = progress.add_task("app requests", total=calls + 1)
            for index, feature in enumerate(plan):
                fake.error_rate = 1.0 if index in outage else 0.03  # the simulated OpenAI is down
                phase = "1 before" if index < outage.start else "2 outage" if index in outage else "3 after"
                if index == outage.stop:
                    time.sleep(1.05)  # OpenAI is back: its breakers probe it again after their cooldown
                ticket = TICKETS[index % len(TICKETS)]
                tags = {"app": "unillm-demo", "run": run_id, "feature": feature, "user": f"user-{index % 7}"}
                with unillm.tags(**tags, phase=phase):
                    try:
                        STEPS[feature](client, ticket)
                    except openai.APIError:
                        failures += 1  # the app would show an apology; the log shows why
                progress.advance(task)
            fake.error_rate = 0.03
            with unillm.tags(app="unillm-demo", run=run_id, feature="batch", phase="3 after"):
                failures += asyncio.run(_batch(async_client, TICKETS * 3))
            progress.advance(task)
        unillm.flush()

    result = unillm.sql(SUMMARY_SQL, [run_id])
    print_table(result.columns, result.rows, title=f"Call log for this run ({run_id})")
    phases = unillm.sql(PHASE_SQL, [run_id])
    print_table(phases.columns, phases.rows, title="Routed calls before, during and after the OpenAI outage")
    events = unillm.sql(BREAKER_SQL, [started])
    if events.rows:
        print_table(events.columns, events.rows, title="Circuit breakers (every change: select * from breaker_events)")
    stats = unillm.stats()
    log_path = stats["recorder"]["log"] if stats["recorder"] else "?"
    unillm.unpatch()
    unillm_cmd = _command_name()
    log_flag = f" --log {log}" if log else ""
    console.print(
        f"\n{failures} app request(s) failed during the outage (calls on models without a route "
        "only had the SDK's retries); routed calls failed over. Every attempt is in the log.",
        f"Call log: [bold]{log_path}[/bold]\n",
        "Next:",
        f"  {unillm_cmd} dashboard{log_flag}   # cost, latency and the outage in the browser"
        + ("" if importlib.util.find_spec("streamlit") else " (first: pip install 'unillm[dashboard]')"),
        f"  {unillm_cmd} sql{log_flag} \"select tags['feature'] as feature, count(*) as calls, "
        'round(sum(cost_usd), 6) as usd from calls group by 1 order by usd desc"',
        f'  {unillm_cmd} sql{log_flag} "select request_model, attempt, provider, http_status, error_type, '
        'reason, served_by from failovers limit 20"',
        '  or from Python: unillm.sql("select ..."), or open the file in any DuckDB client.',
        sep="\n",
        soft_wrap=True,
        markup=True,
        highlight=False,
    )
    return {"run_id": run_id, "failures": failures, "log": log_path}
