"""Spend limits per UTC day, for a route, for tagged calls, or for every call; enforced from the log.

Today's spend of a budget = what the call log holds for today from other processes and earlier
runs (read at patch() and again every `refresh` seconds, off the app's thread) + what this process
has spent since patch() (added by the recorder thread as each call's cost is known). The check on
the call path compares two floats. A call's cost is only known once it has finished, so calls
already under way when a limit is crossed can overshoot it by their own cost.

When a budget is reached its `action` applies: `block` answers the call with an HTTP 429
`insufficient_quota` error (as OpenAI does for an exhausted quota) that names the budget, the
spend and the limit; `downgrade` sends the call to `downgrade_to` instead (a cheaper route or
`provider/model`), and the call log says so in `calls.route_reason`.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from unillm import diagnostics

_REFRESH_SECONDS = 10.0


@dataclass(frozen=True)
class Reached:
    """A budget that is spent: what to tell the app, or where to send the call instead."""

    name: str
    action: str  # block or downgrade
    downgrade_to: str | None
    message: str


def today_utc() -> datetime:
    now = datetime.now(tz=timezone.utc)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


class BudgetGuard:
    def __init__(
        self,
        budgets: Mapping[str, Any],  # name → config.BudgetConfig
        run_query: Callable[[str, list[Any]], Any],  # (sql, params) → first value
        *,
        refresh: float = _REFRESH_SECONDS,
    ) -> None:
        self._budgets = dict(budgets)
        self._query = run_query
        self._refresh = refresh
        self._since = datetime.now(tz=timezone.utc)  # this process's calls from here on are counted live
        self._day = today_utc()
        self._next_day = (self._day + timedelta(days=1)).timestamp()  # a float compare per call
        self._logged: dict[str, float] = dict.fromkeys(self._budgets, 0.0)  # others, from the log
        self._mine: dict[str, float] = dict.fromkeys(self._budgets, 0.0)  # this process, today
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- call path ------------------------------------------------------------------------
    def check(self, route: str | None, tags: Mapping[str, str]) -> Reached | None:
        """The first budget covering this call that is spent, if any."""
        if time.time() >= self._next_day:
            self._new_day()
        for name, budget in self._budgets.items():
            if not _covers(budget, route, tags):
                continue
            spent = self._logged[name] + self._mine[name]
            if spent >= budget.limit_usd:
                message = (
                    f"unillm: budget {name!r} reached: ${spent:.4f} of ${budget.limit_usd:g} spent today (UTC) on "
                    f"{describe_scope(budget)}; raise limit_usd in [budgets.{name}] of the config, or wait until 00:00 UTC"
                )
                return Reached(name, budget.action, budget.downgrade_to, message)
        return None

    # -- recorder thread ------------------------------------------------------------------
    def observe_rows(self, call_row: dict[str, Any], attempt_rows: Any) -> None:
        cost = call_row.get("cost_usd")
        if not cost:
            return
        tags = call_row.get("tags") or {}
        with self._lock:
            for name, budget in self._budgets.items():
                if _covers(budget, call_row.get("route"), tags):
                    self._mine[name] += cost

    # -- the log --------------------------------------------------------------------------
    def start(self) -> None:
        """Read today's spend now, then keep it fresh in the background."""
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name="unillm-budgets", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._refresh):
            self.refresh()

    def refresh(self) -> None:
        day = today_utc()
        for name, budget in self._budgets.items():
            sql, params = spend_sql(budget, day, exclude_since=self._since)
            try:
                value = self._query(sql, params)
            except Exception as exc:  # a busy or missing log: keep the last figure, say so once
                diagnostics.report(
                    "budget_unreadable", f"cannot read today's spend for budget {name!r} from the log: {exc}"
                )
                continue
            self._logged[name] = float(value or 0.0)

    def _new_day(self) -> None:
        with self._lock:
            self._day = today_utc()
            self._next_day = (self._day + timedelta(days=1)).timestamp()
            self._since = max(self._since, self._day)
            self._logged = dict.fromkeys(self._budgets, 0.0)
            self._mine = dict.fromkeys(self._budgets, 0.0)


def describe_scope(budget: Any) -> str:
    """What a budget covers, in words: "all calls", "route support", "calls tagged team=search"."""
    scope = f"route {budget.route}" if budget.route else "all calls"
    if budget.tags:
        scope += " tagged " + ", ".join(f"{k}={v}" for k, v in budget.tags.items())
    return scope


def _covers(budget: Any, route: str | None, tags: Mapping[str, str]) -> bool:
    if budget.route is not None and budget.route != route:
        return False
    return all(tags.get(k) == v for k, v in budget.tags.items())


def spend_sql(budget: Any, day: datetime, exclude_since: datetime | None = None) -> tuple[str, list[Any]]:
    """Spend since `day` covered by `budget`; with `exclude_since`, without this process's calls
    from then on (those are counted live)."""
    where = ["started_at >= ?"]
    params: list[Any] = [day]
    if exclude_since is not None:
        where.append("NOT (process_id = ? AND host = ? AND started_at >= ?)")
        params += [os.getpid(), socket.gethostname(), exclude_since]
    if budget.route is not None:
        where.append("route = ?")
        params.append(budget.route)
    for key, value in budget.tags.items():
        where.append("tags[?] = ?")
        params.extend([key, value])
    return f"SELECT coalesce(sum(cost_usd), 0) FROM calls WHERE {' AND '.join(where)}", params
