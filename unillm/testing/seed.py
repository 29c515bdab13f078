"""A deterministic synthetic call log: millions of realistic calls written in seconds.

Used by the dashboard benchmark (1,000,000 and 5,000,000 calls), the dashboard tests (a few
thousand) and screenshots::

    from unillm.testing.seed import seed_log

    summary = seed_log("/tmp/demo/calls.duckdb", calls=100_000, days=7)

    python -m unillm.testing.seed --calls 5000000 --days 30 /tmp/big/calls.duckdb

The log is a new `calls.duckdb` made by the store's own migrations (so its schema is exactly the
real one), filled by a handful of `INSERT ... SELECT` statements over DuckDB's `range()`: every
random draw is `hash()` of (seed, call number, draw number), so the same arguments give the same
rows, and no Python runs per row.

What is in it, shaped like what the recorder writes (`unillm.tracer.rows.build_rows`):
- calls spread over `[end - days, end)` with a daily rhythm (working hours in Europe and the US,
  quieter weekends), inserted in time order as a real log grows;
- a mix of models: mostly openai gpt-4o-mini behind a fallback route (openai → anthropic →
  gemini), gpt-4o and gpt-4.1 routes, direct anthropic / gemini / mistral calls, un-routed
  embeddings and gpt-4o-mini, and ~1% on a local ollama model whose price is unknown;
- tokens, cache reads and writes, costs from genai-prices' real per-token prices (resolved once
  per model with `Pricer`), log-normal latencies per model, ~40% streams with time to first token;
- ~0.5% errors, ~0.3% retried calls, a few interrupted streams, tags (user, feature, team);
- with `outage`, a 25-minute OpenAI outage ending ~3 hours before `end`: routed OpenAI calls fail
  over (attempt 1 on OpenAI fails, attempt 2 — sometimes 3 — served by the next target),
  un-routed OpenAI calls fail after the SDK's retries, and every host's breakers for the OpenAI
  targets open, probe, and close again when OpenAI is back;
- a handful of `recorder_drops` rows; with `content`, small captured request / response JSON.

As the recorder writes them: a failed call's error_type / error_message are the SDK exception the
app got (RateLimitError, "Error code: 429 - {...}"), its attempts' are the provider's error code;
attempts of calls unillm sent itself (a route, or `provider/model`) have reason, wait_ms and
breaker_state, while pass-through calls (plain OpenAI, route and strategy NULL) leave them NULL;
server_address is the URL's host as httpx reports it (`api.openai.com`, no default port).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import duckdb

__all__ = ["SeedSummary", "seed_log"]

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_HOUR_US = 3_600_000_000
_DAY_US = 24 * _HOUR_US
_MAX_CALLS = 2**30  # the call number gets 6 bits of draw number and 2**36 of room below the seed
_MAX_SEED = 2**26
_DRAWS = 64

OUTAGE_MINUTES = 25
OUTAGE_ENDS_BEFORE_END = timedelta(hours=3)
HOSTS = ("web-1", "web-2", "web-3", "web-4")
TRACED_HOSTS = 2  # web-1 and web-2 export OpenTelemetry spans: their calls have trace ids
SDK_VERSIONS = ("2.8.0", "2.8.0", "2.8.0", "1.109.1")  # by host: web-4 still runs openai 1.x
BREAKER_FAILURES = 3
BREAKER_COOLDOWN_S = 10.0
BREAKER_MAX_COOLDOWN_S = 300.0


@dataclass(frozen=True)
class SeedSummary:
    calls: int
    attempts: int
    failover_calls: int
    error_calls: int
    unknown_price_calls: int
    total_cost_usd: float
    start: datetime
    end: datetime
    outage_start: datetime  # the outage's window (no outage in it when seeded with outage=False)
    outage_end: datetime
    seconds: float  # time the seeding took


class _Model(NamedTuple):
    provider: str
    name: str
    response_model: str
    server_address: str  # what the recorder writes: the URL's netloc (no port when it is the default)
    ttft_ms: float  # median time to the first token
    ms_per_token: float  # median time per output token


MODELS: tuple[_Model, ...] = (
    _Model("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "api.openai.com", 420, 11),  # 0
    _Model("openai", "gpt-4o", "gpt-4o-2024-08-06", "api.openai.com", 560, 17),  # 1
    _Model("openai", "gpt-4.1", "gpt-4.1-2025-04-14", "api.openai.com", 610, 15),  # 2
    _Model("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "api.anthropic.com", 1150, 19),  # 3
    _Model("anthropic", "claude-haiku-4-5", "claude-haiku-4-5-20251001", "api.anthropic.com", 520, 8),  # 4
    _Model("gemini", "gemini-2.5-flash", "gemini-2.5-flash", "generativelanguage.googleapis.com", 680, 4.5),  # 5
    _Model("mistral", "mistral-small-latest", "mistral-small-2506", "api.mistral.ai", 330, 7),  # 6
    _Model("openai", "text-embedding-3-small", "text-embedding-3-small", "api.openai.com", 140, 0),  # 7
    _Model("ollama", "llama3.1:8b", "llama3.1:8b", "localhost:11434", 240, 24),  # 8
)
_EMBEDDING = 7
_OPENAI_CHAT = (0, 1, 2)
_ANTHROPIC = (3, 4)


class _Kind(NamedTuple):
    """What the app asked for and how unillm handled it."""

    request_model: str
    model: int  # index into MODELS: the first (or only) target
    route: str | None  # a route of [routes]; None: not routed
    dispatched: bool  # unillm sent it (a route or provider/model): attempts have reason, breaker state
    failover: tuple[int, int] | None  # a route's second and third targets
    weight: float


KINDS: tuple[_Kind, ...] = (
    _Kind("gpt-4o-mini", 0, "gpt-4o-mini", True, (4, 5), 36),  # 0
    _Kind("gpt-4o-mini", 0, None, False, None, 9),  # 1: pass-through (a service without routes)
    _Kind("gpt-4o", 1, "gpt-4o", True, (3, 5), 9),  # 2
    _Kind("gpt-4o", 1, None, False, None, 1),  # 3
    _Kind("gpt-4.1", 2, "gpt-4.1", True, (3, 5), 7),  # 4
    _Kind("anthropic/claude-sonnet-4-5", 3, None, True, None, 8),  # 5
    _Kind("anthropic/claude-haiku-4-5", 4, None, True, None, 5),  # 6
    _Kind("gemini/gemini-2.5-flash", 5, None, True, None, 6),  # 7
    _Kind("mistral/mistral-small-latest", 6, None, True, None, 4),  # 8
    _Kind("text-embedding-3-small", 7, None, False, None, 14),  # 9
    _Kind("ollama/llama3.1:8b", 8, None, True, None, 1),  # 10
)
_EMBEDDINGS_KIND = 9

# Fates of a call (column `fate` of the draw table).
OK, ERROR, RETRY, INTERRUPTED, FAILOVER, OUTAGE_ERROR = range(6)

USERS = 500  # u-1 .. u-500, the first ones far busier
FEATURES = ("chat", "search", "summarize", "triage")
FEATURE_SHARES = (0.35, 0.25, 0.2, 0.2)
TEAM_OF_FEATURE = {"chat": "support", "search": "growth", "summarize": "platform", "triage": "support"}
TEAMS = ("growth", "support", "platform")

SYSTEM_PROMPT = "You are Acme's assistant. Answer briefly and politely."
PROMPTS: dict[str, tuple[str, ...]] = {
    "chat": (
        "Where is my parcel? Order A-1042 was due on Monday.",
        "Can I change the delivery address of my order?",
        "My discount code SPRING25 does not work at checkout.",
        "How do I reset my password?",
        "I was charged twice for the same subscription.",
        "Do you ship to Norway, and how long does it take?",
    ),
    "search": (
        "waterproof hiking boots size 44 under 150 euros",
        "gift ideas for a ten year old who likes dinosaurs",
        "noise cancelling headphones with long battery life",
        "ergonomic office chair for a small apartment",
        "vegan protein powder without soy",
    ),
    "summarize": (
        "Summarize this support thread about a refund for a damaged espresso machine.",
        "Summarize the customer's complaint about late delivery in two sentences.",
        "Summarize the product reviews of the trail running shoes.",
        "Summarize yesterday's incident report on the checkout outage.",
    ),
    "triage": (
        "Classify this ticket: 'The app crashes when I open my invoices.'",
        "Classify this ticket: 'I want to cancel my subscription today.'",
        "Classify this ticket: 'Package arrived empty, need a refund.'",
        "Classify this ticket: 'Can't log in after the update.'",
    ),
}
ANSWERS: tuple[str, ...] = (
    "Your parcel is on its way and should arrive within two working days.",
    "I have updated the delivery address; you will get a confirmation email shortly.",
    "The code SPRING25 expired on March 31; here is a new one: SUMMER10.",
    "Category: billing. Priority: high. Suggested team: payments.",
    "Here are three options that match: the Alpine Pro, the Ridge GTX and the Trail Lite.",
    "Summary: the customer received a damaged machine and asks for a full refund, which was approved.",
    "Category: technical. Priority: medium. Suggested team: mobile.",
    "We ship to Norway in 3 to 5 working days; customs fees may apply.",
)
EMBEDDING_INPUTS: tuple[str, ...] = (
    "refund policy",
    "shipping times to Europe",
    "how to reset a password",
    "warranty for electronics",
    "return a damaged item",
)


def seed_log(
    path: str | Path,
    *,
    calls: int,
    days: float = 30.0,
    end: datetime | None = None,
    seed: int = 7,
    outage: bool = True,
    content: bool = False,
) -> SeedSummary:
    """Write a new call log at `path` with `calls` synthetic calls over `[end - days, end)`.

    `end` defaults to now (UTC) rounded down to the minute. Raises FileExistsError when `path`
    exists. The same arguments (with the same `end`) give identical rows.
    """
    from unillm.tracer import store
    from unillm.tracer.location import LogLocation

    t0 = time.perf_counter()
    if calls < 0 or calls >= _MAX_CALLS:
        raise ValueError(f"calls must be between 0 and {_MAX_CALLS - 1:,}; got {calls}")
    if not 0 <= seed < _MAX_SEED:
        raise ValueError(f"seed must be between 0 and {_MAX_SEED - 1}; got {seed}")
    if not days > 0:
        raise ValueError(f"days must be positive; got {days}")
    db_path = Path(path)
    if db_path.exists():
        raise FileExistsError(f"{db_path} already exists: seed_log writes a new call log only")
    if end is None:
        end = datetime.now(tz=_UTC).replace(second=0, microsecond=0)
    elif end.tzinfo is None:
        end = end.replace(tzinfo=_UTC)
    end = end.astimezone(_UTC)
    end_us = _us(end)
    start_us = end_us - int(days * _DAY_US)
    outage_start_us, outage_end_us = _outage_window(start_us, end_us)

    plan = _Plan(seed, calls, start_us, end_us, outage_start_us if outage else None, outage_end_us)
    try:
        with store.writing(LogLocation(db_path), max_wait_s=10.0) as con:
            store._migrate(con)
            con.execute("SET TimeZone = 'UTC'")
            _fill(con, plan, content)
            summary = _summarize(con)
    except BaseException:  # no half-written log left behind to trip the next attempt
        for leftover in (db_path, db_path.with_name(db_path.name + ".wal")):
            leftover.unlink(missing_ok=True)
        raise
    return SeedSummary(
        calls=summary[0],
        attempts=summary[1],
        failover_calls=summary[2],
        error_calls=summary[3],
        unknown_price_calls=summary[4],
        total_cost_usd=float(summary[5] or 0.0),
        start=_dt(start_us),
        end=end,
        outage_start=_dt(outage_start_us),
        outage_end=_dt(outage_end_us),
        seconds=time.perf_counter() - t0,
    )


# --------------------------------------------------------------------------------------------
# time


def _us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _outage_window(start_us: int, end_us: int) -> tuple[int, int]:
    """25 minutes ending 3 hours before `end`; squeezed into the middle of a shorter range."""
    length = OUTAGE_MINUTES * 60_000_000
    outage_end = end_us - int(OUTAGE_ENDS_BEFORE_END.total_seconds() * 1_000_000)
    if outage_end - length < start_us:
        span = end_us - start_us
        length = min(length, span // 4)
        outage_end = start_us + span // 2 + length // 2
    return outage_end - length, outage_end


def _rhythm(moment_us: int) -> float:
    """Relative traffic at a moment (UTC): Europe's working day, the US afternoon, quiet nights."""
    moment = _dt(moment_us)
    hour = moment.hour + moment.minute / 60
    level = 0.12 + math.exp(-(((hour - 11.0) / 3.2) ** 2)) + 0.75 * math.exp(-(((hour - 18.5) / 3.0) ** 2))
    return level * (0.45 if moment.weekday() >= 5 else 1.0)


def _bins(plan: _Plan) -> list[tuple[int, int, int, int]]:
    """(start_us, width_us, first call, calls) of each hour of the range that gets calls.

    Calls are numbered in time order: call i lies in the bin whose [first, first + calls) holds i.
    """
    rng = random.Random(plan.seed)
    edges: list[int] = [plan.start_us]
    hour = (plan.start_us // _HOUR_US + 1) * _HOUR_US
    while hour < plan.end_us:
        edges.append(hour)
        hour += _HOUR_US
    edges.append(plan.end_us)
    weights = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        weights.append(_rhythm((lo + hi) // 2) * (hi - lo) * rng.uniform(0.85, 1.15))
    total = sum(weights) or 1.0
    out = []
    cumulative = 0.0
    first = 0
    for (lo, hi), weight in zip(zip(edges, edges[1:], strict=False), weights, strict=True):
        cumulative += weight
        last = min(plan.calls, round(plan.calls * cumulative / total))
        if last > first:
            out.append((lo, hi - lo, first, last - first))
        first = max(first, last)
    if first < plan.calls and out:  # rounding: the rest into the last bin
        lo, width, begin, n = out[-1]
        out[-1] = (lo, width, begin, n + plan.calls - first)
    return out


# --------------------------------------------------------------------------------------------
# SQL building blocks


@dataclass(frozen=True)
class _Plan:
    seed: int
    calls: int
    start_us: int
    end_us: int
    outage_start_us: int | None  # None: no outage
    outage_end_us: int

    @property
    def salt(self) -> int:
        return self.seed * 2**37


def _lit(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _case(expr: str, values: Sequence[Any], default: Any = None) -> str:
    """CASE expr WHEN 0 THEN values[0] ... END, with SQL literals (strings, numbers) or raw SQL."""
    whens = " ".join(f"WHEN {i} THEN {v if isinstance(v, _Raw) else _lit(v)}" for i, v in enumerate(values))
    return f"(CASE {expr} {whens} ELSE {_lit(default)} END)"


class _Raw(str):
    """SQL text to splice as is into `_case`."""


def _pick(u: str, values: Sequence[Any], shares: Sequence[float]) -> str:
    """One of `values` by the cumulative `shares` of a uniform draw `u`."""
    total = sum(shares)
    parts, acc = [], 0.0
    for value, share in zip(values[:-1], shares[:-1], strict=True):
        acc += share / total
        parts.append(f"WHEN {u} < {acc!r} THEN {value if isinstance(value, _Raw) else _lit(value)}")
    last = values[-1]
    return f"(CASE {' '.join(parts)} ELSE {last if isinstance(last, _Raw) else _lit(last)} END)"


def _in(expr: str, values: Sequence[int]) -> str:
    return f"{expr} IN ({', '.join(str(v) for v in values)})"


class _Draws:
    """SQL for the pseudo-random draws of call `i`: independent per draw number k < 64."""

    def __init__(self, salt: int, index: str = "i") -> None:
        self.salt, self.index = salt, index

    def bits(self, k: int) -> str:
        assert 0 <= k < _DRAWS
        return f"hash({self.index} * {_DRAWS} + {k + self.salt})"

    def u(self, k: int) -> str:
        """Uniform in [0, 1)."""
        return f"(({self.bits(k)} >> 11)::DOUBLE / 9007199254740992.0)"

    def normal(self, k: int) -> str:
        """Standard normal (Box-Muller over draws k and k + 1)."""
        return f"(sqrt(-2 * ln(1 - {self.u(k)})) * cos(2 * pi() * {self.u(k + 1)}))"

    def lognormal(self, k: int, median: str | float, sigma: float) -> str:
        return f"({median} * exp({sigma} * {self.normal(k)}))"


def _pid_sql(host: str, ts_us: str, salt: int) -> str:
    """A host's process id: the app is redeployed every day at midnight UTC."""
    return f"(1000 + hash({host} * 1000003 + {ts_us} // {_DAY_US} + {salt}) % 60000)::INTEGER"


def _hex_id_sql(ts_us: str, bits: str) -> str:
    """An id like `new_call_id()`: the time in ns (16 hex digits) + 48 random bits."""
    return f"printf('%016x%012x', {ts_us} * 1000, {bits} & 281474976710655::UBIGINT)"


# Draw numbers (second argument of _Draws methods); a normal draw uses k and k + 1.
D_KIND, D_STREAM, D_HOST, D_FATE, D_THIRD, D_FAILCODE, D_ERRCODE = 0, 1, 2, 3, 4, 5, 6
D_IN, D_OUT, D_FINISH, D_TOOLS, D_CACHED, D_CACHED_SHARE = 7, 9, 11, 12, 13, 14
D_WRITE, D_WRITE_SHARE, D_REASON, D_REASON_SHARE = 15, 16, 17, 18
D_TTFT, D_TPOT, D_D1, D_W2, D_D2, D_W3, D_DERR, D_CUT = 19, 21, 23, 25, 26, 28, 29, 31
D_USER, D_FEATURE, D_TEAM, D_TEAM_PICK, D_TAGSET, D_TEXT, D_ANSWER = 32, 33, 34, 35, 36, 37, 38
D_CALL_ID, D_TRACE_HI, D_TRACE_LO, D_SPAN, D_ATTEMPT_SPAN, D_TS = 41, 42, 43, 44, 45, 48  # 45..47 by attempt
D_EMBED_IN = 39


def _rates() -> list[tuple[float, float, float, float, float] | None]:
    """(per request, per input, per cached, per cache-write, per output token) USD of each model;
    None when genai-prices does not know it. Resolved once per model with the recorder's Pricer."""
    from unillm.tracer.answer import Usage
    from unillm.tracer.pricing import Pricer

    pricer = Pricer()
    n = 10_000  # a realistic request size: long-context tiers start far above it
    out: list[tuple[float, float, float, float, float] | None] = []
    for model in MODELS:

        def cost(usage: Usage, model: _Model = model) -> float | None:
            return pricer.cost(model.provider, model.name, usage).usd

        base = cost(Usage(input_tokens=0, output_tokens=0))
        if base is None:
            out.append(None)
            continue
        per_input = ((cost(Usage(input_tokens=n, output_tokens=0)) or 0.0) - base) / n
        per_cached = ((cost(Usage(input_tokens=n, cached_tokens=n, output_tokens=0)) or 0.0) - base) / n
        per_write = ((cost(Usage(input_tokens=n, cache_write_tokens=n, output_tokens=0)) or 0.0) - base) / n
        per_output = ((cost(Usage(input_tokens=n, output_tokens=n)) or 0.0) - base) / n - per_input
        out.append((base, per_input, per_cached, per_write, per_output))
    return out


def _price_source() -> str:
    import genai_prices

    return f"genai-prices {genai_prices.__version__}"


# --------------------------------------------------------------------------------------------
# the fill


def _fill(con: duckdb.DuckDBPyConnection, plan: _Plan, content: bool) -> None:
    bins = _bins(plan)
    con.execute("CREATE TEMP TABLE _seed_bins (lo BIGINT, width BIGINT, first BIGINT, n BIGINT)")
    if bins:
        con.executemany("INSERT INTO _seed_bins VALUES (?, ?, ?, ?)", bins)
    con.execute(_draws_sql(plan))
    con.execute(_tags_sql())
    con.execute(_calls_sql(plan, content))
    con.execute(_attempts_sql(plan))
    _insert_events(con, plan)
    con.execute("DROP TABLE _seed_draws")
    con.execute("DROP TABLE _seed_tags")
    con.execute("DROP TABLE _seed_bins")


def _layers(source: str, layers: Sequence[Sequence[tuple[str, str]]]) -> str:
    """Nested SELECTs, each adding its (expression, alias) columns to the one below it, so a
    layer's expressions can use the columns of the layers under it."""
    sql = source
    for layer in layers:
        columns = ",\n  ".join(f"{expr} AS {alias}" for expr, alias in layer)
        sql = f"SELECT *,\n  {columns}\nFROM (\n{sql}\n)"
    return sql


def _draws_sql(plan: _Plan) -> str:
    """The per-call draws both tables are built from, materialised once (a temp table, in time order)."""
    d = _Draws(plan.salt)
    routed = [i for i, k in enumerate(KINDS) if k.failover is not None]
    openai_direct = [i for i, k in enumerate(KINDS) if not k.dispatched and MODELS[k.model].provider == "openai"]
    if plan.outage_start_us is None:
        in_outage = "false"
    else:
        in_outage = f"(ts_us >= {plan.outage_start_us} AND ts_us < {plan.outage_end_us})"
    embedding = f"kind = {_EMBEDDINGS_KIND}"
    has_usage = f"fate IN ({OK}, {RETRY}, {FAILOVER})"
    failed = f"fate IN ({ERROR}, {OUTAGE_ERROR})"

    def fail_ms(code: str, k: int) -> str:
        """How long a failed attempt took: a rate limit answers at once, a server error later."""
        return f"(CASE WHEN {code} = 429 THEN {d.lognormal(k, 60, 0.4)} ELSE {d.lognormal(k, 300, 0.5)} END)"

    # Calls are numbered in time order; each bin spreads its calls evenly with a jitter that keeps the order.
    source = (
        f"SELECT i, lo + CAST(width * ((i - first) + {d.u(D_TS)}) / n AS BIGINT) AS ts_us\n"
        "FROM (SELECT lo, width, first, n, unnest(range(first, first + n)) AS i FROM _seed_bins)"
    )
    layers: list[list[tuple[str, str]]] = [
        [
            (_pick(d.u(D_KIND), list(range(len(KINDS))), [k.weight for k in KINDS]), "kind"),
            (in_outage, "outage"),
            (f"{d.u(D_STREAM)} < 0.4", "stream0"),
            (f"1 + floor(4 * {d.u(D_HOST)})::INTEGER", "host_n"),
            (d.u(D_FATE), "r"),
            (f"(1 + floor({USERS} * pow({d.u(D_USER)}, 2.0)))::INTEGER", "user_n"),
            (f"CASE WHEN {d.u(D_TEAM)} < 0.85 THEN -1 ELSE floor(3 * {d.u(D_TEAM_PICK)})::INTEGER END", "team_n"),
            (_pick(d.u(D_TAGSET), [0, 1, 2], [0.03, 0.04, 0.93]), "tagset"),
        ],
        [
            (f"stream0 AND kind <> {_EMBEDDINGS_KIND}", "stream"),
            (
                f"CASE WHEN {embedding} THEN 4 ELSE {_pick(d.u(D_FEATURE), [0, 1, 2, 3], FEATURE_SHARES)} END",
                "feature_n",
            ),
            (_case("kind", [k.model for k in KINDS]), "model"),
            (_case("kind", [k.failover[0] if k.failover else None for k in KINDS]), "second"),
            (_case("kind", [k.failover[1] if k.failover else None for k in KINDS]), "third"),
            (_case("kind", [k.dispatched for k in KINDS]), "dispatched"),
        ],
        [
            (
                f"CASE WHEN outage AND {_in('kind', routed)} THEN {FAILOVER} "
                f"WHEN outage AND {_in('kind', openai_direct)} THEN {OUTAGE_ERROR} "
                f"WHEN r < 0.005 THEN {ERROR} WHEN r < 0.008 THEN {RETRY} "
                f"WHEN stream AND r < 0.012 THEN {INTERRUPTED} ELSE {OK} END",
                "fate",
            ),
        ],
        [
            (
                f"CASE fate WHEN {FAILOVER} THEN (CASE WHEN {d.u(D_THIRD)} < 0.1 THEN 3 ELSE 2 END) "
                f"WHEN {OUTAGE_ERROR} THEN 3 WHEN {RETRY} THEN 2 ELSE 1 END",
                "n_attempts",
            ),
            (_pick(d.u(D_FAILCODE), [503, 429], [0.7, 0.3]), "first_code"),
        ],
        [
            (
                f"CASE fate WHEN {ERROR} THEN {_pick(d.u(D_ERRCODE), [400, 429, 500], [0.45, 0.3, 0.25])} "
                f"WHEN {OUTAGE_ERROR} THEN first_code ELSE NULL END",
                "code",
            ),
            (
                f"CASE WHEN fate = {FAILOVER} THEN (CASE WHEN n_attempts = 3 THEN third ELSE second END) ELSE model END",
                "served",
            ),
            (
                f"CASE WHEN NOT {has_usage} THEN NULL "
                f"WHEN {embedding} THEN greatest(4, least(2000, round({d.lognormal(D_IN, 40, 1.0)})))::BIGINT "
                f"ELSE greatest(100, least(8000, round({d.lognormal(D_IN, 900, 0.8)})))::BIGINT END",
                "input_tokens",
            ),
            (
                f"CASE WHEN NOT {has_usage} OR {embedding} THEN NULL "
                f"ELSE {_pick(d.u(D_FINISH), ['length', 'tool_calls', 'stop'], [0.03, 0.08, 0.89])} END",
                "finish_reason",
            ),
        ],
        [
            (
                "CASE WHEN finish_reason IS NULL THEN NULL WHEN finish_reason = 'length' THEN 1500 "
                f"WHEN finish_reason = 'tool_calls' THEN (18 + floor(60 * {d.u(D_OUT)}))::BIGINT "
                f"ELSE greatest(20, least(1499, round({d.lognormal(D_OUT, 180, 0.8)})))::BIGINT END",
                "output_tokens",
            ),
            (
                f"CASE WHEN input_tokens IS NULL OR {embedding} THEN NULL "
                f"WHEN {_in('served', _OPENAI_CHAT)} THEN (CASE WHEN input_tokens >= 1024 AND {d.u(D_CACHED)} < 0.35 "
                f"THEN (floor(input_tokens * (0.3 + 0.6 * {d.u(D_CACHED_SHARE)}) / 128) * 128)::BIGINT ELSE 0 END) "
                f"WHEN {_in('served', _ANTHROPIC)} THEN (CASE WHEN input_tokens >= 1024 AND {d.u(D_CACHED)} < 0.3 "
                f"THEN floor(input_tokens * (0.3 + 0.6 * {d.u(D_CACHED_SHARE)}))::BIGINT ELSE 0 END) "
                "ELSE NULL END",
                "cached_tokens",
            ),
            (_case("served", [m.ttft_ms for m in MODELS]), "ttft_median"),
            (_case("served", [float(m.ms_per_token) for m in MODELS]), "per_token"),
        ],
        [
            (
                f"CASE WHEN input_tokens IS NULL OR NOT {_in('served', _ANTHROPIC)} THEN NULL "
                f"WHEN cached_tokens = 0 AND {d.u(D_WRITE)} < 0.08 "
                f"THEN floor(input_tokens * (0.2 + 0.5 * {d.u(D_WRITE_SHARE)}))::BIGINT ELSE 0 END",
                "cache_write_tokens",
            ),
            (
                f"CASE WHEN output_tokens IS NULL THEN NULL WHEN {_in('served', _OPENAI_CHAT)} THEN 0 "
                f"WHEN served = 5 AND {d.u(D_REASON)} < 0.5 "
                f"THEN floor(output_tokens * (0.1 + 0.4 * {d.u(D_REASON_SHARE)}))::BIGINT ELSE NULL END",
                "reasoning_tokens",
            ),
            (
                f"CASE WHEN finish_reason = 'tool_calls' THEN 1 + floor(2.5 * pow({d.u(D_TOOLS)}, 2))::INTEGER "
                "ELSE 0 END",
                "tool_calls",
            ),
            # The final attempt: time to its first token and its whole duration.
            (
                f"CASE WHEN NOT stream OR {failed} THEN NULL ELSE {d.lognormal(D_TTFT, 'ttft_median', 0.35)} END",
                "ttft",
            ),
            (
                f"CASE WHEN {failed} THEN {fail_ms('code', D_DERR)} "
                f"WHEN {embedding} THEN {d.lognormal(D_TTFT, 140, 0.4)} "
                f"ELSE {d.lognormal(D_TTFT, 'ttft_median', 0.35)} + coalesce(output_tokens, 1 + 150 * {d.u(D_CUT)}) "
                f"* {d.lognormal(D_TPOT, 'per_token', 0.2)} END",
                "serve_ms",
            ),
            # Earlier attempts (failed) and the waits before the next: a failover goes on at once,
            # a retry waits for Retry-After, the SDK's own retries back off 0.5 s then 1 s.
            (
                f"CASE fate WHEN {FAILOVER} THEN {fail_ms('first_code', D_D1)} "
                f"WHEN {RETRY} THEN {d.lognormal(D_D1, 60, 0.4)} "
                f"WHEN {OUTAGE_ERROR} THEN {fail_ms('code', D_D1)} ELSE 0.0 END",
                "d1",
            ),
            (
                f"CASE fate WHEN {FAILOVER} THEN 0.0 WHEN {RETRY} THEN round(500 + 1500 * {d.u(D_W2)}) "
                f"WHEN {OUTAGE_ERROR} THEN round(400 + 300 * {d.u(D_W2)}) ELSE 0.0 END",
                "w2",
            ),
            (
                f"CASE fate WHEN {FAILOVER} THEN {d.lognormal(D_D2, 400, 0.4)} "
                f"WHEN {OUTAGE_ERROR} THEN {fail_ms('code', D_D2)} ELSE 0.0 END",
                "d2",
            ),
            (f"CASE fate WHEN {OUTAGE_ERROR} THEN round(800 + 600 * {d.u(D_W3)}) ELSE 0.0 END", "w3"),
        ],
        [
            (
                "CASE n_attempts WHEN 1 THEN 0.0 WHEN 2 THEN d1 + w2 ELSE d1 + w2 + d2 + w3 END",
                "offset_ms",
            ),
        ],
    ]
    keep = (
        "i, ts_us, kind, host_n, stream, fate, n_attempts, model, second, third, dispatched, served, code, first_code, "
        "input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, finish_reason, tool_calls, "
        "ttft, serve_ms, d1, w2, d2, w3, offset_ms, user_n, feature_n, team_n, tagset"
    )
    return f"CREATE TEMP TABLE _seed_draws AS SELECT {keep} FROM (\n{_layers(source, layers)}\n)"


# Errors: the provider's (attempts.error_type / error_message, what `_error_of` reads from the body)
# and the SDK exception the app got (calls.error_type / error_message, `str(exc)`).
_PROVIDER_ERRORS: dict[int, tuple[str, str, str]] = {  # http status → (code, type, message)
    400: (
        "context_length_exceeded",
        "invalid_request_error",
        "This model's maximum context length is 128000 tokens. However, your messages resulted in "
        "131072 tokens. Please reduce the length of the messages.",
    ),
    429: (
        "rate_limit_exceeded",
        "requests",
        "Rate limit reached in organization org-acme on requests per min (RPM): Limit 10000, Used 10000, "
        "Requested 1. Please try again in 6ms.",
    ),
    500: ("server_error", "server_error", "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", "server_error", "The engine is currently overloaded, please try again later."),
    529: ("overloaded_error", "overloaded_error", "Overloaded"),
}
_EXCEPTIONS = {400: "BadRequestError", 429: "RateLimitError", 500: "InternalServerError", 503: "InternalServerError"}


def _sdk_message(status: int) -> str:
    code, kind, message = _PROVIDER_ERRORS[status]
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return f"Error code: {status} - {body!r}"


def _by_code(expr: str, values: dict[int, str]) -> str:
    whens = " ".join(f"WHEN {code} THEN {_lit(value)}" for code, value in values.items())
    return f"(CASE {expr} {whens} END)"


def _status_sql() -> str:
    return (
        f"CASE WHEN fate IN ({ERROR}, {OUTAGE_ERROR}) THEN 'error' "
        f"WHEN fate = {INTERRUPTED} THEN 'interrupted' ELSE 'ok' END"
    )


def _usage_raw_sql() -> str:
    """The provider's usage object, as each wire sends it (OpenAI, Anthropic, Gemini)."""

    def fmt(template: dict[str, Any], *args: str) -> str:
        text = json.dumps(template, separators=(",", ":")).replace('"%d"', "%d")
        return f"printf({_lit(text)}, {', '.join(args)})"

    total = "input_tokens + output_tokens"
    openai_chat = fmt(
        {
            "prompt_tokens": "%d",
            "completion_tokens": "%d",
            "total_tokens": "%d",
            "prompt_tokens_details": {"cached_tokens": "%d"},
            "completion_tokens_details": {"reasoning_tokens": "%d"},
        },
        "input_tokens",
        "output_tokens",
        total,
        "cached_tokens",
        "reasoning_tokens",
    )
    plain = fmt(
        {"prompt_tokens": "%d", "completion_tokens": "%d", "total_tokens": "%d"}, "input_tokens", "output_tokens", total
    )
    anthropic = fmt(
        {
            "input_tokens": "%d",
            "cache_creation_input_tokens": "%d",
            "cache_read_input_tokens": "%d",
            "output_tokens": "%d",
        },
        "input_tokens - cached_tokens - cache_write_tokens",
        "cache_write_tokens",
        "cached_tokens",
        "output_tokens",
    )
    gemini_fields = {"promptTokenCount": "%d", "candidatesTokenCount": "%d", "totalTokenCount": "%d"}
    gemini = fmt(gemini_fields, "input_tokens", "output_tokens", total)
    thinking = fmt(
        {**gemini_fields, "thoughtsTokenCount": "%d"},
        "input_tokens",
        "output_tokens - reasoning_tokens",
        total,
        "reasoning_tokens",
    )
    embeddings = fmt({"prompt_tokens": "%d", "total_tokens": "%d"}, "input_tokens", "input_tokens")
    return (
        f"CASE WHEN input_tokens IS NULL THEN NULL WHEN served = {_EMBEDDING} THEN {embeddings} "
        f"WHEN {_in('served', _OPENAI_CHAT)} THEN {openai_chat} WHEN {_in('served', _ANTHROPIC)} THEN {anthropic} "
        f"WHEN served = 5 AND reasoning_tokens IS NOT NULL THEN {thinking} WHEN served = 5 THEN {gemini} "
        f"ELSE {plain} END"
    )


def _content_sql(plan: _Plan) -> tuple[str, str]:
    """(request_content, response_content) SQL: small OpenAI-shaped JSON picked from fixed texts."""
    d = _Draws(plan.salt)

    def choose(texts: Sequence[str], k: int) -> str:
        items = ", ".join(_lit(t) for t in texts)
        return f"[{items}][1 + floor({len(texts)} * {d.u(k)})::INTEGER]"

    system = {"role": "system", "content": SYSTEM_PROMPT}
    requests = []
    for feature in FEATURES:
        texts = [
            json.dumps({"messages": [system, {"role": "user", "content": p}]}, separators=(",", ":"))
            for p in PROMPTS[feature]
        ]
        requests.append(_Raw(choose(texts, D_TEXT)))
    inputs = [json.dumps({"input": [t]}, separators=(",", ":")) for t in EMBEDDING_INPUTS]
    requests.append(_Raw(choose(inputs, D_EMBED_IN)))
    request = _case("feature_n", requests)

    def message(text: str | None, cut: bool = False) -> str:
        if text is not None and cut:
            text = text[: len(text) // 2]
        return json.dumps({"messages": [{"role": "assistant", "content": text}]}, separators=(",", ":"))

    tool = json.dumps(
        {
            "messages": [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_7f3a",
                            "type": "function",
                            "function": {"name": "lookup_order", "arguments": '{"order_id":"A-1042"}'},
                        }
                    ],
                }
            ]
        },
        separators=(",", ":"),
    )
    response = (
        f"CASE WHEN kind = {_EMBEDDINGS_KIND} OR fate IN ({ERROR}, {OUTAGE_ERROR}) THEN NULL "
        f"WHEN fate = {INTERRUPTED} THEN {choose([message(a, cut=True) for a in ANSWERS], D_ANSWER)} "
        f"WHEN finish_reason = 'tool_calls' THEN {_lit(tool)} "
        f"ELSE {choose([message(a) for a in ANSWERS], D_ANSWER)} END"
    )
    return request, response


def _calls_sql(plan: _Plan, content: bool) -> str:
    d = _Draws(plan.salt)
    rates = _rates()
    source = _price_source()
    priced = [i for i, r in enumerate(rates) if r is not None]

    def rate(j: int) -> str:
        return _case("served", [r[j] if r is not None else None for r in rates])

    cost = (
        f"CASE WHEN input_tokens IS NULL OR NOT {_in('served', priced)} THEN NULL ELSE "
        f"{rate(0)} + (input_tokens - coalesce(cached_tokens, 0) - coalesce(cache_write_tokens, 0)) * {rate(1)} "
        f"+ coalesce(cached_tokens, 0) * {rate(2)} + coalesce(cache_write_tokens, 0) * {rate(3)} "
        f"+ coalesce(output_tokens, 0) * {rate(4)} END"
    )
    price_known = f"CASE WHEN input_tokens IS NULL THEN NULL ELSE {_in('served', priced)} END"
    traced = f"host_n <= {TRACED_HOSTS}"
    if content:
        request_content, response_content = _content_sql(plan)
    else:
        request_content = response_content = "NULL"
    from unillm._version import __version__

    columns = {
        "call_id": _hex_id_sql("ts_us", d.bits(D_CALL_ID)),
        "started_at": "(to_timestamp(0) + to_microseconds(ts_us))",
        "duration_ms": "round(offset_ms + serve_ms, 3)",
        "ttft_ms": "round(offset_ms + ttft, 3)",
        "operation": f"CASE WHEN kind = {_EMBEDDINGS_KIND} THEN 'embeddings' ELSE 'chat' END",
        "endpoint": f"CASE WHEN kind = {_EMBEDDINGS_KIND} THEN '/embeddings' ELSE '/chat/completions' END",
        "stream": "stream",
        "request_model": _case("kind", [k.request_model for k in KINDS]),
        "provider": _case("served", [m.provider for m in MODELS]),
        "server_address": _case("served", [m.server_address for m in MODELS]),
        "response_model": (
            f"CASE WHEN fate IN ({ERROR}, {OUTAGE_ERROR}) THEN NULL "
            f"ELSE {_case('served', [m.response_model for m in MODELS])} END"
        ),
        "status": _status_sql(),
        "error_type": f"CASE WHEN fate = {INTERRUPTED} THEN 'incomplete' ELSE {_by_code('code', _EXCEPTIONS)} END",
        "error_message": (
            f"CASE WHEN fate = {INTERRUPTED} THEN 'the stream was closed before its end' "
            f"ELSE {_by_code('code', {c: _sdk_message(c) for c in _EXCEPTIONS})} END"
        ),
        "http_status": "coalesce(code, 200)",
        "input_tokens": "input_tokens",
        "output_tokens": "output_tokens",
        "cached_tokens": "cached_tokens",
        "cache_write_tokens": "cache_write_tokens",
        "reasoning_tokens": "reasoning_tokens",
        "cost_usd": cost,
        "price_known": price_known,
        "price_source": f"CASE WHEN {price_known} THEN {_lit(source)} END",
        "finish_reason": "finish_reason",
        "tool_calls": "tool_calls",
        "attempts": "n_attempts",
        "tags": f"(SELECT list(tags ORDER BY tag_id) FROM _seed_tags)[{_tag_id('tagset', 'user_n', 'feature_n', 'team_n')} + 1]",
        "usage_raw": _usage_raw_sql(),
        "process_id": _pid_sql("host_n", "ts_us", plan.salt),
        "host": "'web-' || host_n::VARCHAR",
        "sdk_version": _case("host_n - 1", SDK_VERSIONS),
        "unillm_version": _lit(__version__),
        "route": _case("kind", [k.route for k in KINDS]),
        "strategy": "CASE WHEN dispatched THEN 'fallback' END",
        "route_reason": _case("kind", ["fallback: in order" if k.route else None for k in KINDS]),
        "trace_id": f"CASE WHEN {traced} THEN printf('%016x%016x', {d.bits(D_TRACE_HI)}, {d.bits(D_TRACE_LO)}) END",
        "span_id": f"CASE WHEN {traced} THEN printf('%016x', {d.bits(D_SPAN)}) END",
        "request_content": request_content,
        "response_content": response_content,
    }
    _check_columns("calls", columns)
    select = ",\n  ".join(f"{expr} AS {name}" for name, expr in columns.items())
    return f"INSERT INTO calls ({', '.join(columns)})\nSELECT\n  {select}\nFROM _seed_draws"


def _tag_id(tagset: str, user: str, feature: str, team: str) -> str:
    """0, 1, 2, ... over every (tagset, user 1.., feature 0.., team -1..2): an index into the list of maps."""
    return f"((({tagset} * {USERS} + {user} - 1) * {len(FEATURES) + 1} + {feature}) * 4 + {team} + 1)"


def _tags_sql() -> str:
    """Every tag map a call can have, by `_tag_id`: none, {feature, team} or {user, feature, team};
    the team is the feature's (team_n = -1) or another one (0..2). Calls pick theirs from this list
    (a scalar subquery, run once): 5x cheaper than MAP() per row, and unlike a join it keeps the order."""
    features = [*FEATURES, "embeddings"]
    feature = _case("f", features)
    team = f"CASE WHEN tm >= 0 THEN {_case('tm', TEAMS)} ELSE {_case('f', [TEAM_OF_FEATURE.get(f, 'platform') for f in features])} END"
    tags = (
        "CASE s WHEN 0 THEN MAP([]::VARCHAR[], []::VARCHAR[]) "
        f"WHEN 1 THEN MAP(['feature', 'team'], [{feature}, {team}]) "
        f"ELSE MAP(['user', 'feature', 'team'], ['u-' || u::VARCHAR, {feature}, {team}]) END"
    )
    return (
        f"CREATE TEMP TABLE _seed_tags AS SELECT {_tag_id('s', 'u', 'f', 'tm')}::BIGINT AS tag_id, {tags} AS tags "
        f"FROM range(3) AS a(s), range(1, {USERS + 1}) AS b(u), range({len(features)}) AS c(f), range(-1, 3) AS d(tm)"
    )


def _attempts_sql(plan: _Plan) -> str:
    d = _Draws(plan.salt)
    last = "a = n_attempts"
    # Which model an attempt went to: a failover's attempts walk the route's targets.
    target = (
        f"CASE WHEN fate = {FAILOVER} THEN (CASE a WHEN 1 THEN model WHEN 2 THEN second ELSE third END) ELSE model END"
    )
    # HTTP status of an attempt before the last: the outage's error, Anthropic overloaded, a rate limit.
    failed_code = (
        f"CASE WHEN fate = {FAILOVER} THEN (CASE a WHEN 1 THEN first_code ELSE 529 END) "
        f"WHEN fate = {RETRY} THEN 429 ELSE code END"
    )
    codes = {c: v[0] for c, v in _PROVIDER_ERRORS.items()}
    messages = {c: v[2] for c, v in _PROVIDER_ERRORS.items()}
    columns = {
        "call_id": _hex_id_sql("ts_us", d.bits(D_CALL_ID)),
        "attempt": "a",
        "started_at": "(to_timestamp(0) + to_microseconds(ts_us + CAST(1000 * attempt_offset AS BIGINT)))",
        "duration_ms": f"round(CASE WHEN {last} THEN serve_ms WHEN a = 1 THEN d1 ELSE d2 END, 3)",
        "ttft_ms": f"CASE WHEN {last} THEN round(ttft, 3) END",
        "provider": _case("target", [m.provider for m in MODELS]),
        "server_address": _case("target", [m.server_address for m in MODELS]),
        "model": _case("target", [m.name for m in MODELS]),
        "status": f"CASE WHEN {last} THEN {_status_sql()} ELSE 'error' END",
        "http_status": "attempt_code",
        "error_type": f"CASE WHEN {last} AND fate = {INTERRUPTED} THEN 'incomplete' ELSE {_by_code('attempt_code', codes)} END",
        "error_message": (
            f"CASE WHEN {last} AND fate = {INTERRUPTED} THEN 'the stream was closed before its end' "
            f"ELSE {_by_code('attempt_code', messages)} END"
        ),
        "reason": (
            "CASE WHEN NOT dispatched THEN NULL WHEN a = 1 THEN 'first' "
            f"WHEN fate = {FAILOVER} THEN 'failover' ELSE 'retry' END"
        ),
        "wait_ms": "CASE WHEN NOT dispatched THEN NULL WHEN a = 1 THEN 0.0 WHEN a = 2 THEN w2 ELSE w3 END",
        "breaker_state": "CASE WHEN dispatched THEN 'closed' END",
        "span_id": (
            f"CASE WHEN host_n <= {TRACED_HOSTS} AND n_attempts > 1 THEN printf('%016x', "
            f"(CASE a WHEN 1 THEN {d.bits(D_ATTEMPT_SPAN)} WHEN 2 THEN {d.bits(D_ATTEMPT_SPAN + 1)} "
            f"ELSE {d.bits(D_ATTEMPT_SPAN + 2)} END)) END"
        ),
    }
    _check_columns("attempts", columns)
    select = ",\n  ".join(f"{expr} AS {name}" for name, expr in columns.items())
    expanded = _layers(
        "SELECT *, unnest(range(1, n_attempts + 1))::INTEGER AS a FROM _seed_draws",
        [
            [
                (target, "target"),
                (f"CASE WHEN {last} THEN coalesce(code, 200) ELSE {failed_code} END", "attempt_code"),
                (
                    "CASE a WHEN 1 THEN 0.0 WHEN 2 THEN d1 + w2 ELSE d1 + w2 + d2 + w3 END",
                    "attempt_offset",
                ),
            ]
        ],
    )
    return f"INSERT INTO attempts ({', '.join(columns)})\nSELECT\n  {select}\nFROM (\n{expanded}\n)"


def _check_columns(table: str, columns: dict[str, str]) -> None:
    from unillm.tracer import schema

    expected = [c.name for c in schema.TABLES[table]]
    if list(columns) != expected:
        raise AssertionError(f"seed: the {table} columns drifted from the schema: {list(columns)} != {expected}")


# --------------------------------------------------------------------------------------------
# events: breaker_events and recorder_drops (a few hundred rows, built in Python)


def _event_id(rng: random.Random, at_us: int) -> str:
    return f"{at_us * 1000:016x}{rng.getrandbits(48):012x}"


def _breaker_rows(plan: _Plan) -> list[tuple[Any, ...]]:
    """Each host's breakers of the OpenAI targets during the outage, as `CircuitBreakers` emits them:
    open after 3 failures, probe after the cooldown, open again for twice as long while OpenAI is
    down (up to 300 s), closed by the first probe after the outage."""
    if plan.outage_start_us is None:
        return []
    rng = random.Random(plan.seed * 7919 + 1)
    targets = [MODELS[k.model] for k in KINDS if k.failover is not None]
    rows: list[tuple[Any, ...]] = []
    for host_n in range(1, len(HOSTS) + 1):
        for model in targets:
            target = f"{model.provider}/{model.name}"
            timeline: list[tuple[int, str, str, str, int, float | None]] = []
            at = plan.outage_start_us + int(rng.uniform(1.0, 20.0) * 1e6)
            failures, cooldown = BREAKER_FAILURES, BREAKER_COOLDOWN_S
            timeline.append((at, "closed", "open", f"{failures} failures in a row", failures, cooldown))
            while True:
                at += int(cooldown * 1e6) + int(rng.uniform(0.0, 2.0) * 1e6)  # the next call after the cooldown
                timeline.append((at, "open", "half_open", f"cooldown of {cooldown:g} s passed", failures, None))
                if at >= plan.outage_end_us:
                    at += int(rng.uniform(0.4, 2.5) * 1e6)
                    timeline.append((at, "half_open", "closed", "probe succeeded", 0, None))
                    break
                at += int(rng.uniform(0.05, 0.4) * 1e6)
                failures += 1
                cooldown = min(cooldown * 2, BREAKER_MAX_COOLDOWN_S)
                timeline.append((at, "half_open", "open", "probe failed", failures, cooldown))
            for at_us, before, after, reason, count, cooldown_s in timeline:
                rows.append(
                    (_event_id(rng, at_us), at_us, target, model.provider, model.name, before, after, reason)
                    + (count, cooldown_s, host_n)
                )
    return rows


def _drop_rows(plan: _Plan) -> list[tuple[Any, ...]]:
    """A handful of queue_full drops: bursts at busy hours that outran the recorder."""
    rng = random.Random(plan.seed * 7919 + 2)
    span = plan.end_us - plan.start_us
    rows = []
    for _ in range(5):
        at = plan.start_us + int(rng.random() * span)
        rows.append((_event_id(rng, at), at, rng.choice((12, 40, 180, 950, 2600)), "queue_full", rng.randint(1, 4)))
    return sorted(rows, key=lambda r: r[1])


def _insert_events(con: duckdb.DuckDBPyConnection, plan: _Plan) -> None:
    breaker = _breaker_rows(plan)
    if breaker:
        con.execute(
            "CREATE TEMP TABLE _seed_breaker (event_id VARCHAR, at_us BIGINT, target VARCHAR, provider VARCHAR, "
            "model VARCHAR, from_state VARCHAR, to_state VARCHAR, reason VARCHAR, failures INTEGER, "
            "cooldown_s DOUBLE, host_n INTEGER)"
        )
        con.executemany("INSERT INTO _seed_breaker VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", breaker)
        con.execute(
            "INSERT INTO breaker_events SELECT event_id, (to_timestamp(0) + to_microseconds(at_us)), target, provider, model, "
            "from_state, to_state, reason, failures, NULL, cooldown_s, "
            f"{_pid_sql('host_n', 'at_us', plan.salt)}, 'web-' || host_n::VARCHAR FROM _seed_breaker ORDER BY at_us"
        )
        con.execute("DROP TABLE _seed_breaker")
    drops = _drop_rows(plan)
    con.execute(
        "CREATE TEMP TABLE _seed_drops (event_id VARCHAR, at_us BIGINT, dropped BIGINT, reason VARCHAR, host_n INTEGER)"
    )
    con.executemany("INSERT INTO _seed_drops VALUES (?, ?, ?, ?, ?)", drops)
    con.execute(
        "INSERT INTO recorder_drops SELECT event_id, (to_timestamp(0) + to_microseconds(at_us)), dropped, reason, "
        f"{_pid_sql('host_n', 'at_us', plan.salt)}, 'web-' || host_n::VARCHAR FROM _seed_drops ORDER BY at_us"
    )
    con.execute("DROP TABLE _seed_drops")


def _summarize(con: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    row = con.execute(
        "SELECT (SELECT count(*) FROM calls), (SELECT count(*) FROM attempts), "
        "(SELECT count(*) FROM attempts WHERE reason = 'failover' AND attempt = 2), "
        "(SELECT count(*) FROM calls WHERE status = 'error'), "
        "(SELECT count(*) FROM calls WHERE price_known = false), "
        "(SELECT sum(cost_usd) FROM calls)"
    ).fetchone()
    assert row is not None
    return tuple(row)


# --------------------------------------------------------------------------------------------
# command line


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m unillm.testing.seed", description="Write a synthetic call log (a new calls.duckdb)."
    )
    parser.add_argument("path", help="the new call log, e.g. /tmp/big/calls.duckdb (must not exist)")
    parser.add_argument("--calls", type=int, default=100_000, help="number of calls (default 100,000)")
    parser.add_argument("--days", type=float, default=30.0, help="days of history before --end (default 30)")
    parser.add_argument("--end", help="end of the range, ISO 8601 in UTC (default: now, to the minute)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--no-outage", action="store_true", help="no OpenAI outage 3 hours before the end")
    parser.add_argument("--content", action="store_true", help="fill request_content / response_content")
    args = parser.parse_args(argv)
    end = datetime.fromisoformat(args.end) if args.end else None
    try:
        summary = seed_log(
            args.path,
            calls=args.calls,
            days=args.days,
            end=end,
            seed=args.seed,
            outage=not args.no_outage,
            content=args.content,
        )
    except (FileExistsError, ValueError) as e:
        parser.error(str(e))
    print(f"wrote {args.path} in {summary.seconds:.1f} s")
    print(f"  calls {summary.calls:,}, attempts {summary.attempts:,}, failovers {summary.failover_calls:,}")
    print(f"  errors {summary.error_calls:,}, unknown price {summary.unknown_price_calls:,}")
    print(f"  total cost ${summary.total_cost_usd:,.2f}")
    print(f"  range {summary.start.isoformat()} .. {summary.end.isoformat()}")
    print(f"  outage {summary.outage_start.isoformat()} .. {summary.outage_end.isoformat()}")


if __name__ == "__main__":
    main()
