"""Cost of a call in USD, from genai-prices (maintained by Pydantic) with overrides from config.

Why genai-prices: it is maintained, versioned, covers every provider we route to, and knows
cache-read / cache-write and tiered (long-context) prices. Its `calc_price` costs ~60 µs per
call, too much for the recorder at thousands of calls per second, so we resolve a model's
prices once (per hour) and apply them with float arithmetic; a test checks the result equals
`genai_prices.calc_price` for real models.

An unknown price is None (stored as NULL with `price_known = false`), never 0.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from unillm.tracer.answer import Usage

# Our provider names → genai-prices provider ids. None lets genai-prices match by model name.
_GENAI_PRICES_PROVIDER: dict[str, str | None] = {
    "gemini": "google",
    "xai": "x-ai",
    "qwen": None,
    "openai_compatible": None,
    "ollama": None,
}
_TOKEN_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")
_CACHE_SECONDS = 3600.0


@dataclass(frozen=True)
class PriceOverride:
    """USD per million tokens, as a user writes them in `[prices]` of the config."""

    input: float
    output: float = 0.0
    cache_read: float | None = None
    cache_write: float | None = None


@dataclass(frozen=True)
class Cost:
    usd: float | None
    source: str | None

    @property
    def known(self) -> bool:
        return self.usd is not None


UNKNOWN = Cost(None, None)


def _rate(price: Any, total_input: int) -> float | None:
    """A genai-prices price (Decimal or TieredPrices) → USD per MTok for this request's size."""
    if price is None:
        return None
    tiers = getattr(price, "tiers", None)
    if tiers is None:
        return float(price)
    rate = price.base
    for tier in reversed(tiers):
        if total_input > tier.start:
            rate = tier.price
            break
    return float(rate)


class Pricer:
    def __init__(self, overrides: Mapping[str, PriceOverride] | None = None) -> None:
        self._overrides = dict(overrides or {})
        self._model_prices: dict[tuple[str | None, str], tuple[float, Any]] = {}
        self._source: str | None = None

    def warm_up(self) -> None:
        """Load genai-prices' price table (~200 ms, once per process)."""
        _lookup("openai", "gpt-4o-mini")

    def cost(self, provider: str | None, model: str | None, usage: Usage) -> Cost:
        if not model or usage.input_tokens is None:
            return UNKNOWN
        override = self._overrides.get(f"{provider}/{model}") or self._overrides.get(model)
        if override is not None:
            return Cost(
                _apply(override.input, override.output, override.cache_read, override.cache_write, usage), "config"
            )
        prices = self._prices_for(provider, model)
        if prices is None:
            return UNKNOWN
        total_input = usage.input_tokens or 0
        rates = [_rate(getattr(prices, key, None), total_input) for key in _TOKEN_KEYS]
        if rates[0] is None:
            return UNKNOWN
        usd = _apply(rates[0], rates[1] or 0.0, rates[2], rates[3], usage)
        per_request = getattr(prices, "requests_kcount", None)
        if per_request is not None:
            usd += float(per_request) / 1000
        return Cost(usd, self._source)

    def _prices_for(self, provider: str | None, model: str) -> Any:
        provider_id = _GENAI_PRICES_PROVIDER.get(provider or "", provider)
        key = (provider_id, model)
        cached = self._model_prices.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < _CACHE_SECONDS:
            return cached[1]
        prices = _lookup(provider_id, model)
        if prices is None and provider_id is not None:  # e.g. a gateway serving a known model
            prices = _lookup(None, model)
        if prices is None and provider_id is None:  # an unnamed OpenAI-wire host: OpenAI's model names
            prices = _lookup("openai", model)
        self._model_prices[key] = (now, prices)
        if self._source is None:
            import genai_prices

            self._source = f"genai-prices {genai_prices.__version__}"
        return prices


def _lookup(provider_id: str | None, model: str) -> Any:
    from datetime import datetime, timezone

    from genai_prices import data_snapshot

    try:
        _, model_info = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None
    return model_info.get_prices(datetime.now(tz=timezone.utc))


def _apply(
    input_rate: float, output_rate: float, cache_read: float | None, cache_write: float | None, usage: Usage
) -> float:
    """USD for normalised usage (input includes cache reads and writes; output includes reasoning)."""
    cached = usage.cached_tokens or 0
    written = usage.cache_write_tokens or 0
    uncached = max((usage.input_tokens or 0) - cached - written, 0)
    usd = uncached * input_rate
    usd += cached * (cache_read if cache_read is not None else input_rate)
    usd += written * (cache_write if cache_write is not None else input_rate)
    usd += (usage.output_tokens or 0) * output_rate
    return usd / 1_000_000
