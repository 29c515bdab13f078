"""Which provider a call goes to, from the model name the app passed: `provider/model`.

`anthropic/claude-sonnet-4-5` goes straight to Anthropic; `[routes]` in the config maps a name the
app already uses (`gpt-4o`) to such a target without touching the app; a name whose prefix is no provider
(`meta-llama/Llama-3-8B` on a vLLM base URL) is left to the client's own base URL. Keys come from
`[providers.<name>] api_key` in the config, else the provider's conventional environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from unillm.adapters.base import Target
from unillm.adapters.registry import resolve_provider
from unillm.config import TargetConfig
from unillm.routing.breaker import BreakerRules

if TYPE_CHECKING:
    from unillm.routing.policy import Plan


_UNSEEN = object()  # a model name not resolved yet (None is a resolution: not unillm's to route)


class TargetResolver:
    """Model name → the plan of targets to try (None: not unillm's to route)."""

    def __init__(
        self,
        providers: Mapping[str, Any],
        routes: Mapping[str, Any] | None = None,
        estimate_cost: Callable[[Target, int, int], float | None] | None = None,
    ) -> None:
        self._providers = providers
        self._routes = dict(routes or {})
        self._estimate_cost = estimate_cost
        self._cache: dict[str, Plan | None] = {}

    def __call__(self, model: str) -> Plan | None:
        plan = self._cache.get(model, _UNSEEN)
        if plan is not _UNSEEN:
            return plan  # type: ignore[return-value]
        # Here, not at module level: the strategies and their classifier are ~6 ms of patch()
        # that an app whose calls are never routed does not need.
        from unillm.routing.policy import Plan

        route = self._routes.get(model, model)
        if isinstance(route, str):
            target = self.target(route)
            # `model = "provider/model"` in [routes] is a route of one target: the log names it
            # (a provider/model string the app asks for directly is not a route).
            alias = model if model in self._routes else None
            plan = Plan([target], route=alias, retries=0, owns_retries=False) if target is not None else None
        else:  # a route table: unillm orders the targets, retries and fails over itself
            targets = [t for t in (self._configured(entry) for entry in route.targets) if t is not None]
            plan = Plan(
                targets,
                route=model,
                strategy=route.strategy,
                retries=route.retries,
                backoff=route.backoff,
                max_backoff=route.max_backoff,
                retry_after_cap=route.retry_after_cap,
                time_budget=route.time_budget,
                failover_on_refusal=route.failover_on_refusal,
                max_cost_ratio=route.max_cost_ratio,
                breaker=BreakerRules(
                    failures=route.breaker_failures,
                    failure_rate=route.breaker_failure_rate,
                    window=route.breaker_window,
                    cooldown=route.breaker_cooldown,
                    max_cooldown=max(route.breaker_max_cooldown, route.breaker_cooldown),
                ),
                auto=route.auto,
                estimate_cost=self._estimate_cost,
            )
        self._cache[model] = plan
        return plan

    def _configured(self, entry: str | TargetConfig) -> Target | None:
        if isinstance(entry, str):
            return self.target(entry)
        target = self.target(entry.target)
        if target is not None:
            target.weight, target.timeout, target.context_window = entry.weight, entry.timeout, entry.context_window
            target.params = dict(entry.params)
        return target

    def target(self, name: str) -> Target | None:
        """`provider/model` → a Target with its key; None when the prefix names no provider."""
        prefix, _, rest = name.partition("/")
        if not rest:
            return None
        spec = resolve_provider(prefix, self._providers)
        if spec is None:
            return None
        configured = self._providers.get(prefix)
        key = configured.api_key if configured is not None and configured.api_key else None
        if key is None and spec.key_env:
            key = os.environ.get(spec.key_env) or None
        return Target(spec, rest, key)
