"""Circuit breakers, one per target (provider + model), shared by every thread and task of the process.

Closed: calls flow. The breaker opens after `failures` consecutive retryable failures, or when
`failure_rate` of the last `window` calls failed: the target is skipped, so a dead provider costs
nothing but a dictionary lookup. After the cooldown one call probes it (half-open) while the others
keep skipping it: success closes the breaker, failure opens it again for twice as long (up to
`max_cooldown`), so a target that keeps failing is tried less and less often.

Every change of state is handed to `on_transition` (the call log's `breaker_events` table).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class BreakerRules:
    failures: int = 5
    failure_rate: float | None = None  # None: only consecutive failures open the breaker
    window: int = 20
    cooldown: float = 10.0
    max_cooldown: float = 300.0


@dataclass
class _State:
    failures: int = 0  # consecutive
    outcomes: deque[bool] = field(default_factory=deque)  # recent calls, True = failed
    opened_at: float | None = None
    cooldown: float = 0.0
    probe_since: float | None = None  # a half-open probe is out since then

    @property
    def name(self) -> str:
        if self.opened_at is None:
            return CLOSED
        return HALF_OPEN if self.probe_since is not None else OPEN

    def failure_rate(self) -> float | None:
        return sum(self.outcomes) / len(self.outcomes) if self.outcomes else None


Transition = Callable[[dict[str, Any]], None]


class CircuitBreakers:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}
        self.on_transition: Transition | None = None

    def acquire(self, key: str, rules: BreakerRules) -> str | None:
        """May a call go to `key` now? Its breaker state if so (closed or half_open), else None.

        A half-open breaker lets one probe through per cooldown; the others skip the target.
        """
        state = self._states.get(key)
        if state is None or state.opened_at is None:  # closed: no lock needed to read
            return CLOSED
        with self._lock:
            now = time.monotonic()
            if state.opened_at is None:
                return CLOSED
            if now - state.opened_at < state.cooldown:
                return None
            if state.probe_since is not None and now - state.probe_since < state.cooldown:
                return None  # a probe is out; a lost one (cancelled call) is replaced after a cooldown
            first_probe = state.probe_since is None
            state.probe_since = now
            if first_probe:
                self._emit(key, state, OPEN, HALF_OPEN, f"cooldown of {state.cooldown:g} s passed")
            return HALF_OPEN

    def record(self, key: str, ok: bool, rules: BreakerRules) -> None:
        with self._lock:
            state = self._states.setdefault(key, _State())
            if rules.failure_rate is not None:
                state.outcomes.append(not ok)
                while len(state.outcomes) > rules.window:
                    state.outcomes.popleft()
            if ok:
                state.failures = 0
                if state.opened_at is not None:
                    before = state.name
                    state.opened_at = state.probe_since = None
                    state.cooldown = 0.0
                    state.outcomes.clear()
                    self._emit(key, state, before, CLOSED, "probe succeeded")
                return
            state.failures += 1
            now = time.monotonic()
            if state.opened_at is not None:
                if state.probe_since is None:
                    return  # a call sent before the breaker opened: it changes nothing
                before = state.name
                state.cooldown = min(state.cooldown * 2, rules.max_cooldown)
                state.opened_at, state.probe_since = now, None
                self._emit(key, state, before, OPEN, "probe failed")
                return
            reason = self._why_open(state, rules)
            if reason is not None:
                state.opened_at, state.cooldown = now, rules.cooldown
                self._emit(key, state, CLOSED, OPEN, reason)

    @staticmethod
    def _why_open(state: _State, rules: BreakerRules) -> str | None:
        if state.failures >= rules.failures:
            return f"{state.failures} failures in a row"
        rate = state.failure_rate()
        if rules.failure_rate is not None and rate is not None and len(state.outcomes) >= rules.window:
            if rate >= rules.failure_rate:
                return f"{rate:.0%} of the last {len(state.outcomes)} calls failed"
        return None

    def _emit(self, key: str, state: _State, before: str, after: str, reason: str) -> None:
        callback = self.on_transition
        if callback is None:
            return
        provider, _, model = key.partition("/")
        event = {
            "at": time.time(),
            "target": key,
            "provider": provider,
            "model": model,
            "from_state": before,
            "to_state": after,
            "reason": reason,
            "failures": state.failures,
            "failure_rate": state.failure_rate(),
            "cooldown_s": state.cooldown if after == OPEN else None,
        }
        try:
            callback(event)
        except Exception as exc:  # the log's trouble must not break routing
            from unillm import diagnostics

            diagnostics.internal_error("breaker.on_transition", exc)

    def state(self, key: str) -> str:
        with self._lock:
            state = self._states.get(key)
            return CLOSED if state is None else state.name

    def is_open(self, key: str) -> bool:
        return self.state(key) != CLOSED

    def snapshot(self) -> dict[str, str]:
        """Every breaker that is not closed, by target (for `unillm doctor` and tests)."""
        with self._lock:
            return {key: s.name for key, s in self._states.items() if s.opened_at is not None}

    def reset(self) -> None:
        with self._lock:
            self._states.clear()


BREAKERS = CircuitBreakers()
