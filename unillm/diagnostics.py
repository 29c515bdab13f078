"""unillm's own trouble, counted and reported — never raised into the app.

Logfire's rule: fail open in production, fail loud in tests. A bug inside unillm (an unexpected
exception in a hook) is counted and logged once per kind; when `UNILLM_STRICT=1` (our own test
suite sets it) it is raised instead so it cannot hide. Environmental trouble (an unwritable log
folder, a locked database) is never raised, only counted and reported once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter

log = logging.getLogger("unillm")

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_reported: set[str] = set()
_last_messages: dict[str, str] = {}


def strict() -> bool:
    return os.environ.get("UNILLM_STRICT", "") not in ("", "0", "false")


def count(kind: str, n: int = 1) -> None:
    """Count an event (dropped records, failed writes, ...) without logging it."""
    with _lock:
        _counts[kind] += n


def report(kind: str, message: str) -> None:
    """Count a problem and log it the first time this kind is seen in this process."""
    with _lock:
        _counts[kind] += 1
        _last_messages[kind] = message
        first = kind not in _reported
        _reported.add(kind)
    if first:
        log.warning("unillm: %s (further occurrences are counted, see unillm.stats())", message)


def resolved(kind: str) -> None:
    """The problem went away (e.g. the log folder became writable): report it again if it returns."""
    with _lock:
        if kind in _reported:
            _reported.discard(kind)
            log.warning("unillm: %s resolved, recording resumed", kind)


def internal_error(where: str, exc: BaseException) -> None:
    """A bug in unillm. Strict mode raises it; otherwise the app goes on and it is counted."""
    if strict():
        raise exc
    report(f"internal_error:{where}", f"internal error in {where}: {type(exc).__name__}: {exc}")


def snapshot() -> dict[str, object]:
    with _lock:
        return {"counts": dict(_counts), "last_messages": dict(_last_messages)}


def reset() -> None:
    with _lock:
        _counts.clear()
        _reported.clear()
        _last_messages.clear()
