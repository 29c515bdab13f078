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


@dataclass(frozen=True)
class _Rate:
    """One genai-prices price as floats: a flat rate, or a base rate with long-context tiers."""

    base: float
    tiers: tuple[tuple[int, float], ...] = ()  # (input tokens above which, rate), ascending

    @classmethod
    def of(cls, price: Any) -> _Rate | None:
        if price is None:
            return None
        tiers = getattr(price, "tiers", None)
        if tiers is None:
            return cls(float(price))
        return cls(float(price.base), tuple((int(t.start), float(t.price)) for t in tiers))

    def at(self, total_input: int) -> float:
        """USD per MTok for a request of this size."""
        for start, rate in reversed(self.tiers):
            if total_input > start:
                return rate
        return self.base


@dataclass(frozen=True)
class _ModelPrices:
    """A model's genai-prices prices converted once (reading them costs µs per attribute)."""

    rates: tuple[_Rate | None, ...]  # in the order of _TOKEN_KEYS
    per_request: float | None

    @classmethod
    def of(cls, prices: Any) -> _ModelPrices | None:
        if prices is None:
            return None
        per_request = getattr(prices, "requests_kcount", None)
        return cls(
            tuple(_Rate.of(getattr(prices, key, None)) for key in _TOKEN_KEYS),
            float(per_request) / 1000 if per_request is not None else None,
        )


class Pricer:
    def __init__(self, overrides: Mapping[str, PriceOverride] | None = None) -> None:
        self._overrides = dict(overrides or {})
        self._model_prices: dict[tuple[str | None, str], tuple[float, _ModelPrices | None]] = {}
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
        if prices is None or prices.rates[0] is None:
            return UNKNOWN
        total_input = usage.input_tokens or 0
        rates = [rate.at(total_input) if rate is not None else None for rate in prices.rates]
        usd = _apply(rates[0] or 0.0, rates[1] or 0.0, rates[2], rates[3], usage)
        if prices.per_request is not None:
            usd += prices.per_request
        return Cost(usd, self._source)

    def cache_read_savings(self, provider: str | None, model: str | None, cached_tokens: int) -> float | None:
        """USD that `cached_tokens` read from the prompt cache saved against the plain input price
        (None when the model's price or its cache-read price is unknown)."""
        if not model:
            return None
        override = self._overrides.get(f"{provider}/{model}") or self._overrides.get(model)
        if override is not None:
            input_rate, cache_rate = override.input, override.cache_read
        else:
            prices = self._prices_for(provider, model)
            if prices is None or prices.rates[0] is None or prices.rates[2] is None:
                return None
            input_rate, cache_rate = prices.rates[0].base, prices.rates[2].base
        if cache_rate is None:
            return None
        return cached_tokens * (input_rate - cache_rate) / 1_000_000

    def _prices_for(self, provider: str | None, model: str) -> _ModelPrices | None:
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
        converted = _ModelPrices.of(prices)
        self._model_prices[key] = (now, converted)
        if self._source is None:
            import genai_prices

            self._source = f"genai-prices {genai_prices.__version__}"
        return converted


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
