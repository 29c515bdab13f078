"""Retry and failover policy of a route: the attempt schedule, what is retryable, how long to wait.

A route's targets are tried in order (the `fallback` strategy); each target gets `retries` more
tries on retryable failures before the next target takes over. Waits grow exponentially with
jitter, and a provider's `Retry-After` is honoured up to a cap. Failing over to the next target
does not wait: it is a different provider.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# 408 timeout, 409 conflict, 429 rate limit, 5xx (529: Anthropic overloaded).
RETRYABLE_STATUSES = frozenset({408, 409, 429})


def is_retryable(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


@dataclass
class Plan:
    targets: list[Any]  # adapters.base.Target, in the order to try them
    retries: int = 1  # more tries per target on retryable failures
    backoff: float = 0.25  # seconds before the first retry on the same target
    max_backoff: float = 8.0
    retry_after_cap: float = 10.0  # never wait longer than this for a provider's Retry-After
    owns_retries: bool = True  # False: one target, the SDK's own retry loop does the retrying
    breaker_failures: int = 5  # consecutive retryable failures that open a target's breaker
    breaker_cooldown: float = 10.0  # seconds an open breaker waits before letting one probe through
    breaker_max_cooldown: float = 300.0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def schedule(self) -> Iterator[tuple[Any, int]]:
        """(target, try number on that target) for every attempt the plan allows.

        Targets whose circuit breaker is open are left out, unless every one is: then all are
        tried, since failing without trying helps nobody.
        """
        from unillm.routing.breaker import BREAKERS

        allowed = [t for t in self.targets if BREAKERS.allow(breaker_key(t), self.breaker_cooldown)]
        for target in allowed or self.targets:
            for attempt in range(self.retries + 1):
                yield target, attempt

    def record(self, target: Any, ok: bool) -> None:
        from unillm.routing.breaker import BREAKERS

        BREAKERS.record(
            breaker_key(target),
            ok,
            failures=self.breaker_failures,
            cooldown=self.breaker_cooldown,
            max_cooldown=self.breaker_max_cooldown,
        )

    @property
    def attempts(self) -> int:
        return len(self.targets) * (self.retries + 1)

    def wait_before_retry(self, try_number: int, headers: Any = None) -> float:
        """Seconds to wait before try `try_number + 1` on the same target."""
        retry_after = _retry_after(headers)
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        ceiling = min(self.max_backoff, self.backoff * 2**try_number)
        return ceiling * (0.5 + 0.5 * self._rng.random())  # jitter: spread out synchronized clients


def breaker_key(target: Any) -> str:
    return f"{target.provider.name}/{target.model}"


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
