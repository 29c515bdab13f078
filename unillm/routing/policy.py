"""A route's plan, and the run of one call through it: which attempt comes next, and when.

`Plan` is what the config says about a route (targets, strategy, retries, breaker rules, ...).
For each call, `Plan.start` orders the targets with the route's strategy and returns a `Run`,
which hands out the attempts one at a time:

- a retryable failure (408, 409, 429, 5xx, timeouts, connection errors) is tried again on the
  same target up to `retries` times, after an exponential backoff with jitter or the provider's
  `Retry-After` (up to a cap); then the next target takes over at once: it is another provider;
- a context-window error goes to the next target with a larger (or unknown) window, a refusal
  to the next target only when the route says so; other 4xx answers are final;
- a target whose breaker is open is skipped, a half-open one gets a single probe, and when every
  breaker is open the targets are tried anyway (failing without trying helps nobody);
- a target that cannot hold the request (its `context_window` is below the estimate) or that
  costs more than `max_cost_ratio` times the first target is skipped, and the run says so;
- nothing starts once `time_budget` seconds have passed since the call began.

Everything a run decided is written to the call log: the order's reason and the skipped targets
in `calls.route_reason`, and each attempt's reason, wait and breaker state in `attempts`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from unillm.routing.breaker import BREAKERS, CLOSED, HALF_OPEN, BreakerRules
from unillm.routing.classify import estimate_tokens
from unillm.routing.strategies import STRATEGIES, expected_output_tokens, target_key

# 408 timeout, 409 conflict, 429 rate limit, 5xx (529: Anthropic overloaded).
RETRYABLE_STATUSES = frozenset({408, 409, 429})

# What an attempt's outcome asks of the run.
RETRY = "retry"  # the provider had trouble: the same target again if tries are left, else the next
FAILOVER = "failover"  # this target cannot serve the request, another may: the next target
FINAL = "final"  # the app gets this answer

_CONTEXT_WINDOW_HINTS = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "prompt is too long",
    "input token count",
    "too many tokens",
    "exceeds the maximum number of tokens",
    "reduce the length",
)
_REFUSAL_CODES = frozenset({"content_policy_violation", "content_filter", "safety", "refusal"})


def is_retryable(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


def is_context_window_error(status: int, code: str | None, message: str | None) -> bool:
    if status not in (400, 413, 422):
        return False
    text = f"{code or ''} {message or ''}".lower()
    return any(hint in text for hint in _CONTEXT_WINDOW_HINTS)


def is_refusal(status: int, code: str | None, finish_reason: str | None) -> bool:
    if finish_reason == "content_filter":
        return True
    return status == 400 and (code or "").lower() in _REFUSAL_CODES


@dataclass
class Step:
    """One attempt the run allows: where, why, after how long a wait, and the breaker's state."""

    target: Any  # adapters.base.Target
    reason: str  # first, retry, failover, probe
    wait: float
    breaker_state: str
    deadline: float  # monotonic time by which the call's time budget is spent


@dataclass
class Plan:
    targets: list[Any]  # adapters.base.Target, as configured
    route: str | None = None
    strategy: str = "fallback"
    retries: int = 1  # more tries per target on retryable failures
    backoff: float = 0.25  # seconds before the first retry on the same target
    max_backoff: float = 8.0
    retry_after_cap: float = 10.0  # never wait longer than this for a provider's Retry-After
    time_budget: float = 600.0  # seconds all attempts of one call may take
    failover_on_refusal: bool = False
    max_cost_ratio: float | None = None
    breaker: BreakerRules = field(default_factory=BreakerRules)
    auto: Any = None  # config.AutoConfig for the auto strategy
    owns_retries: bool = True  # False: one target, the SDK's own retry loop does the retrying
    estimate_cost: Callable[[Any, int, int], float | None] | None = None  # (target, in, out) → USD
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def start(self, body: Mapping[str, Any], request_bytes: int, stream: bool, tags: Mapping[str, str]) -> Run:
        """Order the targets for this call and begin its run."""
        tokens = estimate_tokens(request_bytes)
        output = expected_output_tokens(body)
        costs: dict[int, float | None] = {}

        def cost_of(target: Any) -> float | None:
            if id(target) not in costs:
                costs[id(target)] = self.estimate_cost(target, tokens, output) if self.estimate_cost else None
            return costs[id(target)]

        if len(self.targets) == 1:
            order, reason = list(self.targets), None
        else:
            order, reason = STRATEGIES[self.strategy](
                self.targets,
                body=body,
                tokens=tokens,
                stream=stream,
                tags=tags,
                rules=self.auto,
                rng=self._rng,
                estimate_cost=cost_of,
                by_name=self._by_name,
            )
        return Run(self, order, tokens, cost_of, [reason] if reason else [])

    def _by_name(self, name: str) -> Any:
        return next((t for t in self.targets if target_key(t) == name), None)

    def record(self, target: Any, ok: bool) -> None:
        BREAKERS.record(target_key(target), ok, self.breaker)

    def wait_before_retry(self, try_number: int, headers: Any = None) -> float:
        """Seconds to wait before try `try_number + 1` on the same target."""
        retry_after = _retry_after(headers)
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        ceiling = min(self.max_backoff, self.backoff * 2**try_number)
        return ceiling * (0.5 + 0.5 * self._rng.random())  # jitter: spread out synchronized clients


class Run:
    """One call's way through a plan: `first()`, then `next(outcome)` after each failed attempt."""

    def __init__(
        self,
        plan: Plan,
        order: list[Any],
        tokens: int,
        cost_of: Callable[[Any], float | None],
        notes: list[str],
    ) -> None:
        self.plan = plan
        self.order = order
        self.tokens = tokens
        self.notes = notes
        self._cost_of = cost_of
        self._started = time.monotonic()
        self._deadline = self._started + plan.time_budget
        self._index = -1
        self._step: Step | None = None
        self._tries = 0
        self._window_failed: int | None = None  # a context window known to be too small
        self._sent = 0
        self._forced = False

    @property
    def reason(self) -> str | None:
        return "; ".join(self.notes) if self.notes else None

    def first(self) -> Step | None:
        return self._next_target("first")

    def next(self, outcome: str, headers: Any = None) -> Step | None:
        """The step after a failed attempt (`outcome`: RETRY or FAILOVER); None: the last answer stands."""
        step = self._step
        assert step is not None
        if outcome == RETRY and self._tries < self.plan.retries and step.breaker_state == CLOSED:
            wait = self.plan.wait_before_retry(self._tries, headers)
            self._tries += 1
            return self._within_budget(Step(step.target, "retry", wait, CLOSED, self._deadline))
        if outcome == FAILOVER and step.target.context_window is not None:
            self._window_failed = step.target.context_window
        return self._next_target("failover")

    def _next_target(self, reason: str) -> Step | None:
        while self._index + 1 < len(self.order):
            self._index += 1
            target = self.order[self._index]
            skip = None if self._forced else self._why_skip(target)
            if skip is not None:
                self.notes.append(f"skipped {target_key(target)}: {skip}")
                continue
            state = BREAKERS.acquire(target_key(target), self.plan.breaker)
            if state is None and not self._forced:
                self.notes.append(f"skipped {target_key(target)}: breaker open")
                continue
            self._tries = 0
            why = "probe" if state == HALF_OPEN else reason
            return self._within_budget(Step(target, why, 0.0, state or "open", self._deadline))
        if self._sent == 0 and not self._forced and self.order:
            # Nothing could be tried (every breaker open, every window too small by our estimate):
            # try them all anyway; the providers' own answers are better than unillm's guess.
            self.notes.append("no target was available: trying them all anyway")
            self._forced, self._index = True, -1
            return self._next_target(reason)
        return None

    def _why_skip(self, target: Any) -> str | None:
        window = target.context_window
        if window is not None and self.tokens > window:
            return f"~{self.tokens} tokens exceed its context window of {window}"
        if window is not None and self._window_failed is not None and window <= self._window_failed:
            return f"its context window ({window}) is no larger than the one that was exceeded"
        if self._sent and self.plan.max_cost_ratio is not None:
            first, mine = self._cost_of(self.order[0]), self._cost_of(target)
            if first is None or mine is None:
                return "its price is unknown, and max_cost_ratio is set"
            if first > 0 and mine > first * self.plan.max_cost_ratio:
                return f"costs {mine / first:.1f}x the first target (max_cost_ratio {self.plan.max_cost_ratio:g})"
        return None

    def _within_budget(self, step: Step) -> Step | None:
        if time.monotonic() + step.wait >= self._deadline:
            self.notes.append(f"time budget of {self.plan.time_budget:g} s spent")
            return None
        self._step = step
        self._sent += 1
        return step


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    seconds = headers.get("retry-after")
    try:
        if millis is not None:
            return float(millis) / 1000
        if seconds is not None:
            return float(seconds)
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
    return None
