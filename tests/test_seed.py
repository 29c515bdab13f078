"""The synthetic call log (`unillm.testing.seed`): consistent with itself, shaped like a real log,
deterministic. Read back through the store's own reader, as the dashboard reads it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from unillm.testing.seed import SeedSummary, seed_log
from unillm.tracer.answer import Usage
from unillm.tracer.pricing import Pricer
from unillm.tracer.store import LogLocation, query

pytestmark = pytest.mark.sdk_independent  # scripts/test runs it in one openai environment only

END = datetime(2026, 3, 4, 15, 30, tzinfo=timezone.utc)  # a Wednesday
CALLS = 5000


def rows(path: Path, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    return query(LogLocation(path), sql, params, fold_first=False).rows


def one(path: Path, sql: str, params: Any = None) -> Any:
    found = rows(path, sql, params)
    assert len(found) == 1 and len(found[0]) == 1, found
    return found[0][0]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SeedSummary]:
    path = tmp_path_factory.mktemp("seed") / "calls.duckdb"
    return path, seed_log(path, calls=CALLS, days=1, end=END, content=True)


def test_counts_and_range(seeded: tuple[Path, SeedSummary]) -> None:
    path, s = seeded
    assert (s.start, s.end) == (END - timedelta(days=1), END)
    assert s.outage_end == END - timedelta(hours=3) and s.outage_start == s.outage_end - timedelta(minutes=25)
    count, first, last, attempts, distinct = rows(
        path, "select count(*), min(started_at), max(started_at), sum(attempts), count(distinct call_id) from calls"
    )[0]
    assert count == distinct == s.calls == CALLS
    assert s.start <= first and last < s.end
    assert attempts == s.attempts == one(path, "select count(*) from attempts")
    assert s.error_calls == one(path, "select count(*) from calls where status = 'error'")
    assert s.total_cost_usd == pytest.approx(one(path, "select sum(cost_usd) from calls"))
    assert 0 < one(path, "select count(*) from recorder_drops where reason = 'queue_full'") < 10
    assert s.seconds > 0


def test_attempts_agree_with_their_calls(seeded: tuple[Path, SeedSummary]) -> None:
    path, _ = seeded
    # Every call has attempts 1..n; its last attempt is the call's provider, address and status;
    # attempts start in order, none before the call, and fit in the call's duration.
    bad = rows(
        path,
        """
        with a as (
          select call_id, count(*) n, min(attempt) lo, max(attempt) hi,
                 arg_max(provider, attempt) provider, arg_max(server_address, attempt) address,
                 arg_max(status, attempt) status, arg_max(http_status, attempt) http_status,
                 min(started_at) first_start,
                 max(epoch_ms(started_at) + duration_ms) last_end
          from attempts group by call_id
        )
        select c.call_id from calls c left join a using (call_id)
        where a.n is distinct from c.attempts or a.lo <> 1 or a.hi <> a.n
           or a.provider <> c.provider or a.address <> c.server_address or a.status <> c.status
           or a.http_status <> c.http_status or a.first_start < c.started_at
           or a.last_end > epoch_ms(c.started_at) + c.duration_ms + 1
        """,
    )
    assert bad == []
    assert one(path, "select count(*) from attempts a where a.status <> 'error' and a.attempt < "
               "(select c.attempts from calls c where c.call_id = a.call_id)") == 0  # fmt: skip
    # The first attempt of a call unillm sent is 'first'; pass-through calls (route and strategy NULL) have none.
    reasons = dict(rows(path, "select coalesce(reason, 'NULL'), count(*) from attempts where attempt = 1 group by 1"))
    assert set(reasons) == {"first", "NULL"}
    assert (
        one(
            path,
            "select count(*) from attempts a join calls c using (call_id) "
            "where (a.reason is null) <> (c.strategy is null)",
        )
        == 0
    )


def test_mix_prices_and_shapes(seeded: tuple[Path, SeedSummary]) -> None:
    path, s = seeded
    share = dict(rows(path, "select provider, count(*) / sum(count(*)) over () from calls group by 1"))
    assert share["openai"] > 0.5 and {"anthropic", "gemini", "mistral", "ollama"} <= set(share)
    assert 0.005 < share["ollama"] < 0.02
    # An unknown price is NULL, never 0; calls without usage have no price at all.
    assert s.unknown_price_calls == one(path, "select count(*) from calls where price_known = false") > 0
    assert rows(path, "select distinct provider, cost_usd from calls where price_known = false") == [("ollama", None)]
    assert one(path, "select count(*) from calls where price_known and not cost_usd > 0") == 0
    assert one(path, "select count(*) from calls where status = 'error' and cost_usd is not null") == 0
    assert one(path, "select count(distinct price_source) from calls where price_known") == 1
    assert one(path, "select any_value(price_source) from calls where price_known").startswith("genai-prices ")
    # Costs are the recorder's: tokens x the model's genai-prices prices.
    sample = rows(
        path,
        "select c.provider, a.model, c.input_tokens, c.output_tokens, c.cached_tokens, c.cache_write_tokens, "
        "c.cost_usd from calls c join attempts a on a.call_id = c.call_id and a.attempt = c.attempts "
        "where c.price_known order by c.call_id limit 300",
    )
    pricer = Pricer()
    for provider, model, inp, out, cached, written, cost in sample:
        usage = Usage(input_tokens=inp, output_tokens=out, cached_tokens=cached, cache_write_tokens=written)
        assert pricer.cost(provider, model, usage).usd == pytest.approx(cost, rel=1e-9), (provider, model)
    stats = rows(
        path,
        "select avg(stream::int) filter (where operation = 'chat'), min(input_tokens), max(input_tokens), "
        "min(output_tokens), max(output_tokens), count(*) filter (where stream and ttft_ms is null and status = 'ok'), "
        "count(*) filter (where not stream and ttft_ms is not null), count(*) filter (where cached_tokens > 0), "
        "count(*) filter (where operation = 'embeddings'), count(*) filter (where status = 'interrupted') from calls",
    )[0]
    stream_share, in_lo, in_hi, out_lo, out_hi, no_ttft, stray_ttft, cached, embeddings, interrupted = stats
    assert 0.3 < stream_share < 0.5 and no_ttft == stray_ttft == 0
    assert in_lo >= 4 and in_hi <= 8000 and out_lo >= 18 and out_hi <= 1500
    assert cached > 0 and embeddings > 0 and interrupted > 0
    assert (
        0.002
        < one(path, "select avg((status = 'error')::int) from calls where started_at < ?", [s.outage_start])
        < 0.01
    )
    # Most chat calls went through a fallback route named after the model they asked for.
    routed = rows(path, "select distinct route, request_model, strategy from calls where route is not null")
    assert routed and all(route == model and strategy == "fallback" for route, model, strategy in routed)
    assert one(path, "select avg((route is not null)::int) from calls where operation = 'chat'") > 0.5
    # Tags: most calls carry user, feature and team; users are skewed.
    tagged = rows(
        path,
        "select avg((tags['feature'] is not null)::int), avg((tags['user'] is not null)::int), "
        "count(distinct tags['user']), count(distinct tags['team']) from calls",
    )[0]
    assert tagged[0] > 0.9 and tagged[1] > 0.85 and tagged[2] > 300 and tagged[3] == 3
    top = rows(path, "select tags['user'], count(*) from calls group by 1 order by 2 desc limit 1")[0]
    assert top[1] > 3 * CALLS / 500
    # A daily rhythm: working hours are far busier than the night.
    day = one(path, "select count(*) from calls where hour(started_at) between 9 and 11")
    night = one(path, "select count(*) from calls where hour(started_at) between 2 and 4")
    assert day > 3 * night


def test_outage(seeded: tuple[Path, SeedSummary]) -> None:
    path, s = seeded
    window = [s.outage_start, s.outage_end]
    # Routed OpenAI calls in the window failed over: attempt 1 on OpenAI failed, the next target served.
    failovers = rows(
        path,
        "select c.route, c.provider, c.status, c.attempts, a.provider, a.status, a.http_status, a.reason "
        "from calls c join attempts a on a.call_id = c.call_id and a.attempt = 1 "
        "where c.route is not null and c.started_at >= ? and c.started_at < ?",
        window,
    )
    assert len(failovers) > 20
    for _route, provider, status, attempts, first_provider, first_status, first_http, reason in failovers:
        assert (first_provider, first_status, reason) == ("openai", "error", "first")
        assert first_http in (503, 429) and attempts >= 2 and status == "ok" and provider in ("anthropic", "gemini")
    assert s.failover_calls == one(path, "select count(*) from attempts where reason = 'failover' and attempt = 2")
    assert s.failover_calls >= len(failovers)
    second = rows(path, "select distinct reason from attempts where attempt > 1 and started_at between ? and ?", window)
    assert ("failover",) in second
    # Un-routed OpenAI calls in the window failed (after the SDK's retries); other providers were fine.
    outcomes = dict(
        rows(
            path,
            "select provider = 'openai' and strategy is null, list(distinct status) from calls "
            "where started_at >= ? and started_at < ? group by 1",
            window,
        )
    )
    assert outcomes[True] == ["error"]
    assert "ok" in outcomes[False]
    # No failover outside the window (retries only).
    assert one(path, "select count(*) from failovers where reason = 'failover' and (started_at < ? or started_at >= ?)",
               window) == 0  # fmt: skip
    assert one(path, "select count(*) from attempts where reason = 'retry'") > 0
    # Every host's breaker of every OpenAI target opened, probed and closed again at the end.
    timelines = rows(
        path,
        "select host, target, list(from_state || '>' || to_state order by changed_at), min(changed_at), "
        "max(changed_at), list(reason order by changed_at)[1] from breaker_events group by all",
    )
    assert len(timelines) == 4 * 3
    for _host, target, steps, first, last, why in timelines:
        assert target.startswith("openai/")
        assert steps[0] == "closed>open" and steps[-1] == "half_open>closed" and "half_open>open" in steps
        assert why == "3 failures in a row"
        assert s.outage_start <= first < s.outage_end <= last < s.outage_end + timedelta(minutes=6)


def test_content(seeded: tuple[Path, SeedSummary], tmp_path: Path) -> None:
    path, _ = seeded
    found = rows(
        path,
        "select request_content->>'$.messages[1].content', response_content->>'$.messages[0].role' from calls "
        "where request_content::varchar ilike '%parcel%' and status = 'ok' limit 1",
    )
    assert found and "parcel" in found[0][0].lower() and found[0][1] == "assistant"
    assert one(path, "select count(*) from calls where operation = 'chat' and request_content is null") == 0
    assert one(path, "select count(*) from calls where status = 'error' and response_content is not null") == 0


def test_same_arguments_same_log(seeded: tuple[Path, SeedSummary], tmp_path: Path) -> None:
    path, s = seeded
    again = tmp_path / "again.duckdb"
    s2 = seed_log(again, calls=CALLS, days=1, end=END, content=True)
    assert (s2.calls, s2.attempts, s2.failover_calls, s2.total_cost_usd) == (
        s.calls,
        s.attempts,
        s.failover_calls,
        s.total_cost_usd,
    )
    digest = {
        table: f"select md5(string_agg(t::varchar, '|' order by {key})) from {table} t"
        for table, key in (
            ("calls", "call_id"),
            ("attempts", "call_id, attempt"),
            ("breaker_events", "event_id"),
            ("recorder_drops", "event_id"),
        )
    }
    for sql in digest.values():
        assert one(path, sql) == one(again, sql)
    other = tmp_path / "other.duckdb"
    s3 = seed_log(other, calls=CALLS, days=1, end=END, seed=8, outage=False)
    assert one(other, digest["calls"]) != one(path, digest["calls"])
    assert s3.failover_calls == 0 and one(other, "select count(*) from breaker_events") == 0
    assert one(other, "select count(*) from calls where request_content is not null") == 0
    with pytest.raises(FileExistsError, match="again.duckdb"):
        seed_log(again, calls=10, end=END)


def test_default_end_and_tiny_logs(tmp_path: Path) -> None:
    s = seed_log(tmp_path / "small.duckdb", calls=3, days=0.05)
    now = datetime.now(tz=timezone.utc)
    assert s.end.second == 0 and now - timedelta(minutes=2) < s.end <= now
    assert s.start <= s.outage_start < s.outage_end <= s.end  # squeezed into a range shorter than 3 hours
    assert s.calls == 3
    empty = seed_log(tmp_path / "empty.duckdb", calls=0, end=END)
    assert (empty.calls, empty.attempts) == (0, 0)
