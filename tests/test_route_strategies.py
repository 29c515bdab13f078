"""Route strategies, per-target settings, guards, breaker events and spend budgets, seen from the app
and from the call log. Two OpenAI-wire providers (groq, deepseek) are fakes on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from conftest import TEST_KEY, rows

import unillm
from unillm import diagnostics

CHEAP, STRONG = "groq/llama-3.1-8b-instant", "deepseek/deepseek-reasoner"
PRICES = {CHEAP: {"input": 0.05, "output": 0.08}, STRONG: {"input": 0.55, "output": 2.19}}
HELLO = [{"role": "user", "content": "Hello, where is my parcel?"}]


@pytest.fixture
def servers() -> Iterator[tuple[Any, Any]]:
    from unillm.testing import FakeOpenAI

    with FakeOpenAI() as cheap, FakeOpenAI() as strong:
        yield cheap, strong


@pytest.fixture
def route(servers, log_path, monkeypatch) -> Iterator[Callable[..., openai.OpenAI]]:
    """route(**settings) patches unillm with a route "support" over the two fakes; returns an app client."""
    cheap, strong = servers
    monkeypatch.chdir(log_path.parent.parent)

    def make(targets: list[Any] | None = None, budgets: dict[str, Any] | None = None, **settings: Any) -> openai.OpenAI:
        routes = {"support": {"targets": targets or [CHEAP, STRONG], "backoff": 0.0, **settings}}
        routes["support-lite"] = CHEAP
        unillm.patch(
            log=str(log_path),
            flush_interval=0.05,
            prices=PRICES,
            providers={
                "groq": {"base_url": cheap.base_url, "api_key": "groq-key"},
                "deepseek": {"base_url": strong.base_url, "api_key": "deepseek-key"},
            },
            routes=routes,
            budgets=budgets or {},
        )
        return openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1", max_retries=3)

    try:
        yield make
    finally:
        unillm.unpatch()
        diagnostics.reset()


def ask(app: openai.OpenAI, text: str = "Hello, where is my parcel?", **kwargs: Any) -> Any:
    return app.chat.completions.create(model="support", messages=[{"role": "user", "content": text}], **kwargs)


# -- strategies -----------------------------------------------------------------------------


def test_weighted_splits_traffic_by_weight(route, servers) -> None:
    cheap, strong = servers
    app = route(targets=[{"target": CHEAP, "weight": 3}, {"target": STRONG, "weight": 1}], strategy="weighted")
    for _ in range(400):  # 0.65-0.85 is ±4.6 standard deviations of 400 draws at 75% (200: ±3.3, failed once)
        ask(app)
    share = len(cheap.requests) / 400
    assert 0.65 < share < 0.85, share
    reasons = rows("select strategy, route_reason from calls")
    assert {r["strategy"] for r in reasons} == {"weighted"}
    assert any("drew groq/llama-3.1-8b-instant (75% of traffic)" in r["route_reason"] for r in reasons)


def test_lowest_latency_learns_which_target_is_faster(route, servers) -> None:
    cheap, strong = servers
    for server in (cheap, strong):  # a fake's first answer imports SDK types (slow): not what we measure
        headers = {"authorization": "Bearer warm-up"}
        httpx.post(f"{server.base_url}/chat/completions", json={"model": "m", "messages": HELLO}, headers=headers)
    app = route(strategy="lowest-latency")
    cheap.stall_next(seconds=0.15, count=1000)  # groq is slow today
    ask(app)  # measures groq (first, unmeasured)
    unillm.flush()
    ask(app)  # measures deepseek
    unillm.flush()
    before = len(strong.requests)
    for _ in range(20):
        ask(app)
    assert len(strong.requests) - before >= 16  # the rest explore now and then (5%)
    reason = rows("select route_reason from calls order by started_at desc limit 1")[0]["route_reason"]
    assert reason.startswith("lowest-latency:")


def test_lowest_cost_sends_the_call_to_the_cheapest_target_for_its_size(route, servers) -> None:
    cheap, strong = servers
    app = route(targets=[STRONG, CHEAP], strategy="lowest-cost")
    ask(app)
    assert (len(cheap.requests), len(strong.requests)) == (1, 0)
    [call] = rows("select provider, route_reason from calls")
    assert call["provider"] == "groq"
    assert call["route_reason"].startswith("lowest-cost: groq/llama-3.1-8b-instant estimated $")


@pytest.mark.parametrize(
    ("prompt", "extra", "hard", "cue"),
    [
        ("Hello, where is my parcel?", {}, False, "easy (~"),
        ("Why does this fail?\n```python\ndef f(x):\n    return x[0]\n```", {}, True, "code"),
        ("Prove that the sum of two even numbers is even.", {}, True, "reasoning cue 'prove'"),
        ("What's the weather?", {"tools": [{"type": "function", "function": {"name": "w"}}]}, True, "1 tools"),
        ("Please review my contract clause.", {}, True, "keyword 'contract'"),
        ("word " * 5000, {}, True, "tokens > 4000"),
        ("Fix this:\nfrom os import path\nprint(path.sep)", {}, True, "code"),
        ("int a = 1;\nint b = 2;\nWhy is b not 3?", {}, True, "code"),
        (
            "My parcel is late again. " * 200 + "Explain why it keeps happening.",
            {},
            True,
            "reasoning cue 'explain why'",
        ),
        # A long turn is read at its start and end only: a cue in the middle is not seen.
        ("My parcel is late again. " * 100 + "Prove it. " + "My parcel is late again. " * 100, {}, False, "easy (~"),
    ],
)
def test_auto_sends_hard_requests_to_the_strong_target_and_says_why(route, servers, prompt, extra, hard, cue) -> None:
    cheap, strong = servers
    app = route(strategy="auto", auto={"easy": CHEAP, "hard": STRONG, "hard_keywords": ["contract"]})
    ask(app, prompt, **extra)
    assert (len(strong.requests), len(cheap.requests)) == ((1, 0) if hard else (0, 1))
    [call] = rows("select provider, strategy, route_reason from calls")
    assert call["strategy"] == "auto" and cue in call["route_reason"]
    assert call["route_reason"].endswith("→ " + (STRONG if hard else CHEAP))


def test_auto_honours_a_tag_rule(route, servers) -> None:
    cheap, strong = servers
    app = route(strategy="auto", auto={"hard_tags": {"tier": "premium"}})
    with unillm.tags(tier="premium"):
        ask(app)
    ask(app)
    assert (len(strong.requests), len(cheap.requests)) == (1, 1)


# -- per-target settings -------------------------------------------------------------------


def test_per_target_parameters_are_sent_to_that_target_only(route, servers) -> None:
    cheap, strong = servers
    app = route(targets=[{"target": CHEAP, "params": {"temperature": 0.0, "max_tokens": 64}}, STRONG])
    cheap.fail_next(count=2, status=503)
    ask(app, temperature=0.9)
    sent_cheap = [r.json for r in cheap.requests]
    assert all(body["temperature"] == 0.0 and body["max_tokens"] == 64 for body in sent_cheap)
    assert strong.requests[0].json["temperature"] == 0.9 and "max_tokens" not in strong.requests[0].json


def test_per_target_timeout_fails_over_to_the_next_target(route, servers) -> None:
    cheap, strong = servers
    app = route(targets=[{"target": CHEAP, "timeout": 0.2}, STRONG], retries=0)
    cheap.stall_next(seconds=2.0)
    started = time.perf_counter()
    answer = ask(app)
    assert time.perf_counter() - started < 1.0
    assert answer.choices[0].message.content and len(strong.requests) == 1
    chain = rows("select provider, error_type, reason from attempts order by attempt")
    assert [(a["provider"], a["error_type"], a["reason"]) for a in chain] == [
        ("groq", "timeout", "first"),
        ("deepseek", None, "failover"),
    ]


def test_time_budget_bounds_the_whole_call(route, servers) -> None:
    cheap, strong = servers
    app = route(retries=5, time_budget=0.6)
    cheap.fail_next(count=100, status=503, retry_after=0.25)
    strong.fail_next(count=100, status=503, retry_after=0.25)
    started = time.perf_counter()
    with pytest.raises(openai.InternalServerError, match="time budget of 0.6 s spent"):
        ask(app)
    assert time.perf_counter() - started < 0.9


# -- context windows, refusals, cost guard ------------------------------------------------


def test_a_request_too_big_for_a_target_skips_it_before_sending(route, servers) -> None:
    cheap, strong = servers
    app = route(targets=[{"target": CHEAP, "context_window": 1000}, STRONG])
    ask(app, "word " * 2000)
    assert (len(cheap.requests), len(strong.requests)) == (0, 1)
    [call] = rows("select provider, route_reason from calls")
    assert call["provider"] == "deepseek"
    assert "skipped groq/llama-3.1-8b-instant: ~" in call["route_reason"]
    assert "exceed its context window of 1000" in call["route_reason"]


def test_context_window_exceeded_fails_over_to_a_larger_window(route, servers) -> None:
    cheap, strong = servers
    cheap.context_window = 500  # the provider says so; the config did not know
    app = route()
    answer = ask(app, "word " * 1500)
    assert answer.choices[0].message.content and len(strong.requests) == 1
    chain = rows("select provider, http_status, error_type, reason from attempts order by attempt")
    assert [(a["provider"], a["http_status"], a["reason"]) for a in chain] == [
        ("groq", 400, "first"),
        ("deepseek", 200, "failover"),
    ]
    assert chain[0]["error_type"] == "context_length_exceeded"


def test_other_bad_requests_are_final(route, servers) -> None:
    cheap, strong = servers
    app = route()
    cheap.fail_next(status=400, message="messages[0].role is invalid")
    with pytest.raises(openai.BadRequestError, match="role is invalid"):
        ask(app)
    assert len(strong.requests) == 0


def test_refusals_fail_over_only_when_the_route_says_so(servers, log_path, monkeypatch) -> None:
    from unillm.testing import FakeGemini

    cheap, _ = servers
    monkeypatch.chdir(log_path.parent.parent)
    with FakeGemini() as gemini:
        for failover, expected in ((False, "content_filter"), (True, "stop")):
            unillm.patch(
                log=str(log_path),
                providers={
                    "gemini": {"base_url": gemini.base_url, "api_key": "k"},
                    "groq": {"base_url": cheap.base_url, "api_key": "k"},
                },
                routes={"support": {"targets": ["gemini/gemini-2.5-flash", CHEAP], "failover_on_refusal": failover}},
            )
            try:
                gemini.force_finish_reason = "SAFETY"
                app = openai.OpenAI(api_key=TEST_KEY, base_url="http://127.0.0.1:9/v1")
                answer = app.chat.completions.create(model="support", messages=HELLO)
                assert answer.choices[0].finish_reason == expected
            finally:
                unillm.unpatch()


def test_cost_guard_stops_failover_to_a_much_dearer_target(route, servers) -> None:
    cheap, strong = servers
    app = route(max_cost_ratio=2.0)
    cheap.fail_next(count=2, status=503)
    with pytest.raises(openai.InternalServerError) as raised:
        ask(app)
    assert len(strong.requests) == 0
    assert "skipped deepseek/deepseek-reasoner: costs" in str(raised.value)
    assert "max_cost_ratio 2" in str(raised.value)


# -- breakers in the log ------------------------------------------------------------------


def test_breaker_opens_on_failure_rate_and_every_transition_is_logged(route, servers) -> None:
    cheap, strong = servers
    app = route(
        retries=0,
        breaker_failures=100,
        breaker_failure_rate=0.5,
        breaker_window=4,
        breaker_cooldown=0.3,
    )
    for status in (503, None, 503, 503):  # 3 of the last 4 failed: 75% ≥ 50%
        if status:
            cheap.fail_next(status=status)
        ask(app)
    assert len(cheap.requests) == 4
    ask(app)  # open: skipped
    assert len(cheap.requests) == 4
    time.sleep(0.35)
    ask(app)  # half-open probe succeeds
    assert len(cheap.requests) == 5
    events = rows("select target, from_state, to_state, reason from breaker_events order by changed_at")
    assert [(e["from_state"], e["to_state"]) for e in events] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert events[0]["target"] == CHEAP and events[0]["reason"] == "75% of the last 4 calls failed"
    skipped = rows("select route_reason from calls where provider = 'deepseek' and attempts = 1")
    assert any("skipped groq/llama-3.1-8b-instant: breaker open" in (r["route_reason"] or "") for r in skipped)
    probe = rows("select reason, breaker_state from attempts order by started_at desc limit 1")[0]
    assert probe == {"reason": "probe", "breaker_state": "half_open"}


def test_failovers_view_answers_what_failed_and_where_traffic_went(route, servers) -> None:
    cheap, strong = servers
    app = route(retries=1)
    cheap.fail_next(count=2, status=429, retry_after=0.05)
    ask(app)
    chain = rows("select provider, http_status, reason, wait_ms, served_by from failovers order by attempt")
    assert [(c["provider"], c["http_status"], c["reason"]) for c in chain] == [
        ("groq", 429, "first"),
        ("groq", 429, "retry"),
        ("deepseek", 200, "failover"),
    ]
    assert chain[1]["wait_ms"] == pytest.approx(50, abs=1) and {c["served_by"] for c in chain} == {"deepseek"}


# -- budgets ------------------------------------------------------------------------------


def test_a_spent_budget_blocks_with_an_error_naming_it(route, servers) -> None:
    cheap, strong = servers
    app = route(budgets={"support-daily": {"limit_usd": 0.0000001, "route": "support"}})
    ask(app)  # nothing spent yet
    unillm.flush()  # the recorder learns the call's cost
    with pytest.raises(openai.RateLimitError, match=r"budget 'support-daily' reached: \$0\.0000 of \$1e-07"):
        ask(app)
    assert len(cheap.requests) == 1
    blocked = rows("select provider, status, error_type from calls order by started_at desc limit 1")[0]
    assert blocked == {"provider": "unillm", "status": "error", "error_type": "RateLimitError"}
    assert rows("select error_type from attempts where provider = 'unillm'")[0]["error_type"] == "budget_exceeded"


def test_a_spent_budget_can_downgrade_to_a_cheaper_route(route, servers) -> None:
    cheap, strong = servers
    budget = {"limit_usd": 0.0000001, "route": "support", "action": "downgrade", "downgrade_to": "support-lite"}
    app = route(targets=[STRONG], budgets={"support-daily": budget})
    ask(app)
    unillm.flush()
    ask(app)
    assert (len(strong.requests), len(cheap.requests)) == (1, 1)
    last = rows("select provider, route_reason from calls order by started_at desc limit 1")[0]
    assert last["provider"] == "groq" and "budget 'support-daily' reached: downgraded to support-lite" in (
        last["route_reason"] or ""
    )


def test_budgets_count_what_the_log_already_holds(route, servers) -> None:
    cheap, _ = servers
    budget = {"support-daily": {"limit_usd": 0.0000001}}
    app = route(budgets=budget)
    ask(app)
    unillm.unpatch()  # a new process would start here: only the log remembers the spend
    app = route(budgets=budget)
    with pytest.raises(openai.RateLimitError, match="budget 'support-daily' reached"):
        ask(app)
    assert len(cheap.requests) == 1


def test_budget_config_errors_name_the_key(log_path) -> None:
    from unillm.config import ConfigError

    with pytest.raises(ConfigError, match=r"budgets\.b\.route: 'nope' is not a route"):
        unillm.patch(log=str(log_path), budgets={"b": {"limit_usd": 1, "route": "nope"}})
    with pytest.raises(ConfigError, match="downgrade_to"):
        unillm.patch(log=str(log_path), budgets={"b": {"limit_usd": 1, "action": "downgrade"}})
    with pytest.raises(ConfigError, match=r"routes\.r\.auto\.hard: 'groq/x' is not one of the route's targets"):
        unillm.patch(log=str(log_path), routes={"r": {"targets": [CHEAP], "auto": {"hard": "groq/x"}}})


def test_doctor_reports_strategies_budget_spend_and_recent_breakers(route, servers, log_path, monkeypatch) -> None:
    from unillm.doctor import report

    cheap, _ = servers
    app = route(strategy="lowest-cost", retries=0, breaker_failures=2, budgets={"daily": {"limit_usd": 5}})
    cheap.fail_next(count=2, status=503)
    ask(app)
    ask(app)
    unillm.flush()
    (log_path.parent.parent / "unillm.toml").write_text(
        f'log = "{log_path}"\n[routes.support]\nstrategy = "lowest-cost"\ntargets = ["{CHEAP}", "{STRONG}"]\n'
        "[budgets.daily]\nlimit_usd = 5\n"
    )
    facts = report(probe=False)
    assert facts["routes"]["support"] == ("lowest-cost", [CHEAP, STRONG])
    [(name, scope, spent, action)] = facts["budgets"]
    assert (name, scope, action) == ("daily", "all calls", "block") and spent.endswith("of $5")
    assert float(spent.split()[0].lstrip("$")) > 0
    [(target, opened, state, *_)] = facts["breakers"]
    assert (target, opened, state) == (CHEAP, 1, "open")
    assert facts["log_error"] is None and facts["bad_segments"] == 0
