"""`unillm doctor`: what unillm would do here, and whether it can.

Shows the config file in use, the call log (its spool backlog, segments it could not read), every
route with its strategy and targets, the budgets with today's spend, the circuit breakers that
changed state in the last 24 hours (from the log: breakers live in the app's processes), and for
each provider a route names: whether its key is set (never the key itself) and whether its API
answers a cheap request (listing models), with the time it took.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from unillm.adapters.base import Target
from unillm.adapters.registry import resolve_provider
from unillm.config import Settings, find_config_file, load_settings
from unillm.tracer.location import LogLocation
from unillm.tracer.schema import TABLES
from unillm.tracer.spool import list_segments
from unillm.tracer.store import BAD_DIR


@dataclass
class ProviderCheck:
    name: str
    wire: str
    base_url: str
    key: str  # "set (ENV)", "set in config", "missing: set ENV", "not needed"
    answer: str  # "ok 123 ms", "HTTP 401", "unreachable: ...", "skipped"


def _models_url(target: Target) -> tuple[str, dict[str, str]]:
    base = target.provider.base_url.rstrip("/")
    key = target.api_key or ""
    if target.provider.wire == "anthropic":
        return base + "/v1/models", {"x-api-key": key, "anthropic-version": "2023-06-01"}
    if target.provider.wire == "gemini":
        return base + "/v1beta/models", {"x-goog-api-key": key}
    if target.provider.auth == "api-key":
        return base + "/models", {"api-key": key}
    return base + "/models", {"authorization": f"Bearer {key}"} if key else {}


def _http_library() -> Any:
    """httpx2 (openai 3.x) or httpx (1.x/2.x): whichever the installed SDK brought."""
    import importlib

    for name in ("httpx2", "httpx"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise RuntimeError("neither httpx2 nor httpx is installed")  # pragma: no cover - openai needs one


def check_provider(name: str, settings: Settings, *, probe: bool = True, timeout: float = 5.0) -> ProviderCheck:
    spec = resolve_provider(name, settings.providers)
    if spec is None:
        return ProviderCheck(name, "?", "?", "?", "unknown provider")
    configured = settings.providers.get(name)
    if configured is not None and configured.api_key:
        key_state, key = "set in config", configured.api_key
    elif spec.key_env and os.environ.get(spec.key_env):
        key_state, key = f"set ({spec.key_env})", os.environ[spec.key_env]
    elif spec.key_env:
        key_state, key = f"missing: set {spec.key_env}", None
    else:
        key_state, key = "not needed", None
    answer = "skipped"
    if probe and spec.base_url and (key or not spec.key_env):
        http = _http_library()
        url, headers = _models_url(Target(spec, "", key))
        started = time.perf_counter()
        try:
            response = http.get(url, headers=headers, timeout=timeout)
            elapsed = (time.perf_counter() - started) * 1000
            answer = f"ok {elapsed:.0f} ms" if response.status_code < 400 else f"HTTP {response.status_code}"
        except http.HTTPError as exc:
            answer = f"unreachable: {type(exc).__name__}"
    elif not spec.base_url:
        answer = f"set base_url in [providers.{name}]"
    return ProviderCheck(name, spec.wire, spec.base_url or "(not set)", key_state, answer)


_BREAKERS_SQL = """
select target, count(*) filter (where to_state = 'open') as opened,
       arg_max(to_state, changed_at) as state, arg_max(reason, changed_at) as last_reason,
       max(changed_at) as last_change
from breaker_events where changed_at >= now() - interval 1 day group by target order by last_change desc
"""


_DROPS_SQL = """
select reason, sum(dropped) as dropped, count(distinct process_id) as processes, max(dropped_at) as last_drop
from recorder_drops where dropped_at >= now() - interval 1 day group by reason order by reason
"""


def _from_log(location: LogLocation, settings: Settings) -> dict[str, Any]:
    """Budgets' spend today, recent breaker changes and dropped records, read from the call log."""
    from unillm.routing.budgets import describe_scope, spend_sql, today_utc
    from unillm.tracer.store import query

    facts: dict[str, Any] = {"budgets": [], "breakers": [], "drops": [], "log_error": None}
    try:
        for name, budget in settings.budgets.items():
            sql, params = spend_sql(budget, today_utc())
            spent = query(location, sql, params, fold_first=False).scalar() or 0.0
            facts["budgets"].append(
                (name, describe_scope(budget), f"${spent:.4f} of ${budget.limit_usd:g}", budget.action)
            )
        facts["breakers"] = query(location, _BREAKERS_SQL, fold_first=False).rows
        facts["drops"] = query(location, _DROPS_SQL, fold_first=False).rows
    except Exception as exc:  # a busy or broken log is itself worth reporting
        facts["log_error"] = f"{type(exc).__name__}: {exc}"
    return facts


def report(*, probe: bool = True) -> dict[str, Any]:
    found = find_config_file()
    settings = load_settings()
    location = LogLocation(settings.log_path())
    routes = {
        alias: ("fallback", [route]) if isinstance(route, str) else (route.strategy, route.target_names())
        for alias, route in settings.routes.items()
    }
    names = sorted(
        {target.split("/", 1)[0] for _, targets in routes.values() for target in targets} | set(settings.providers)
    )
    bad_dir = location.spool_dir / BAD_DIR
    return {
        "config": str(found[0]) if found else "(none: defaults)",
        "log": str(location.db_path),
        "log_exists": location.db_path.exists(),
        "spool_backlog": sum(len(list_segments(location.spool_dir, t)) for t in TABLES),
        "bad_segments": len(list(bad_dir.iterdir())) if bad_dir.is_dir() else 0,
        "routes": routes,
        **_from_log(location, settings),
        "providers": [check_provider(name, settings, probe=probe) for name in names],
    }
