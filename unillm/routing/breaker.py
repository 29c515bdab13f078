"""Circuit breakers, one per target (provider + model), shared by every thread and task of the process.

Closed: calls flow. After `failures` consecutive retryable failures the breaker opens: the target
is skipped, so a dead provider costs nothing but a dictionary lookup. After `cooldown` seconds calls
probe it again (half-open): success closes the breaker, failure opens it again for twice as long
(up to `max_cooldown`), so a target that keeps failing is tried less and less often.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class _State:
    failures: int = 0
    opened_at: float | None = None
    cooldown: float = 0.0
    trips: int = 0


class CircuitBreakers:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}

    def allow(self, key: str, cooldown: float) -> bool:
        """May a call go to `key` now? (An open breaker lets one probe through after its cooldown.)"""
        with self._lock:
            state = self._states.get(key)
            if state is None or state.opened_at is None:
                return True
            # Half-open once the cooldown has passed: calls go through as probes until one settles it.
            return time.monotonic() - state.opened_at >= (state.cooldown or cooldown)

    def record(self, key: str, ok: bool, *, failures: int, cooldown: float, max_cooldown: float) -> None:
        with self._lock:
            state = self._states.setdefault(key, _State())
            if ok:
                self._states[key] = _State()
                return
            state.failures += 1
            if state.opened_at is not None:  # a probe failed: open again, for longer
                state.opened_at = time.monotonic()
                state.cooldown = min((state.cooldown or cooldown) * 2, max_cooldown)
                state.trips += 1
            elif state.opened_at is None and state.failures >= failures:
                state.opened_at = time.monotonic()
                state.cooldown = cooldown
                state.trips += 1

    def is_open(self, key: str) -> bool:
        with self._lock:
            state = self._states.get(key)
            return state is not None and state.opened_at is not None

    def reset(self) -> None:
        with self._lock:
            self._states.clear()


BREAKERS = CircuitBreakers()
