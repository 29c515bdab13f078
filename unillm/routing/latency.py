"""Observed latency per target, for the lowest-latency strategy.

An exponentially weighted moving average per target and kind (time to first token for streams,
whole duration otherwise), fed by the recorder thread from the attempts it logs, so the hot path
only reads a float. A target never measured counts as fastest: it gets traffic and is measured.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

_ALPHA = 0.3  # weight of the newest observation: recent behaviour matters, one outlier does not rule


class LatencyStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ewma: dict[tuple[str, bool], float] = {}

    def observe(self, key: str, stream: bool, ms: float) -> None:
        with self._lock:
            old = self._ewma.get((key, stream))
            self._ewma[(key, stream)] = ms if old is None else old + _ALPHA * (ms - old)

    def observe_rows(self, call_row: dict[str, Any], attempt_rows: Iterable[dict[str, Any]]) -> None:
        """Recorder observer: learn from every successful attempt."""
        stream = bool(call_row.get("stream"))
        for row in attempt_rows:
            if row.get("status") != "ok" or not row.get("provider"):
                continue
            ms = row.get("ttft_ms") if stream else row.get("duration_ms")
            if ms is not None:
                self.observe(f"{row['provider']}/{row['model']}", stream, ms)

    def estimate(self, key: str, stream: bool) -> float | None:
        return self._ewma.get((key, stream))

    def reset(self) -> None:
        with self._lock:
            self._ewma.clear()


LATENCY = LatencyStats()
