"""Which provider a call goes to, from the model name the app passed: `provider/model`.

`anthropic/claude-sonnet-4-5` goes straight to Anthropic; `[routes]` in the config maps a name the
app already uses (`gpt-4o`) to such a target without touching the app; a name whose prefix is no provider
(`meta-llama/Llama-3-8B` on a vLLM base URL) is left to the client's own base URL. Keys come from
`[providers.<name>] api_key` in the config, else the provider's conventional environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from unillm.adapters.base import Target
from unillm.adapters.registry import resolve_provider


class TargetResolver:
    def __init__(self, providers: Mapping[str, Any], routes: Mapping[str, str] | None = None) -> None:
        self._providers = providers
        self._routes = dict(routes or {})
        self._cache: dict[str, Target | None] = {}

    def __call__(self, model: str) -> Target | None:
        model = self._routes.get(model, model)
        if "/" not in model:
            return None
        if model in self._cache:
            return self._cache[model]
        prefix, _, rest = model.partition("/")
        spec = resolve_provider(prefix, self._providers)
        target = None
        if spec is not None and rest:
            configured = self._providers.get(prefix)
            key = configured.api_key if configured is not None and configured.api_key else None
            if key is None and spec.key_env:
                key = os.environ.get(spec.key_env) or None
            target = Target(spec, rest, key)
        self._cache[model] = target
        return target
