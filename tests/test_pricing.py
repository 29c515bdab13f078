"""unillm's fast price arithmetic agrees with genai-prices, the library it takes prices from."""

from __future__ import annotations

import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price

from unillm.tracer.answer import Usage
from unillm.tracer.pricing import PriceOverride, Pricer

pytestmark = pytest.mark.sdk_independent  # scripts/test runs it in one openai environment only

CASES = [
    ("openai", "gpt-4o-mini", "openai", Usage(input_tokens=1200, output_tokens=300, cached_tokens=1024)),
    ("openai", "gpt-4.1", "openai", Usage(input_tokens=50_000, output_tokens=2_000, reasoning_tokens=0)),
    (
        "anthropic",
        "claude-sonnet-4-5",
        "anthropic",
        Usage(input_tokens=3000, output_tokens=500, cached_tokens=1000, cache_write_tokens=500),
    ),
    # Long context: the tier above 200k tokens applies to the whole request.
    ("anthropic", "claude-sonnet-4-5", "anthropic", Usage(input_tokens=250_000, output_tokens=1000)),
    ("gemini", "gemini-2.5-pro", "google", Usage(input_tokens=10_000, output_tokens=4000, cached_tokens=2000)),
    ("gemini", "gemini-2.5-pro", "google", Usage(input_tokens=300_000, output_tokens=100)),
    ("deepseek", "deepseek-chat", "deepseek", Usage(input_tokens=900, output_tokens=100, cached_tokens=512)),
]


@pytest.mark.parametrize(("provider", "model", "genai_provider", "usage"), CASES)
def test_cost_equals_genai_prices(provider: str, model: str, genai_provider: str, usage: Usage) -> None:
    expected = calc_price(
        GenaiUsage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_write_tokens,
        ),
        model_ref=model,
        provider_id=genai_provider,
    ).total_price
    cost = Pricer().cost(provider, model, usage)
    assert cost.usd == pytest.approx(float(expected), rel=1e-9)
    assert cost.source is not None and cost.source.startswith("genai-prices")


def test_unknown_model_has_no_price() -> None:
    cost = Pricer().cost("openai_compatible", "acme-mystery-model-9", Usage(input_tokens=10, output_tokens=5))
    assert cost.usd is None and not cost.known


def test_model_served_by_an_unnamed_openai_compatible_host_is_priced_by_name() -> None:
    cost = Pricer().cost("openai_compatible", "gpt-4o-mini", Usage(input_tokens=1_000_000, output_tokens=0))
    assert cost.usd == pytest.approx(0.15)


def test_override_wins_and_prices_cache_reads() -> None:
    pricer = Pricer({"my-model": PriceOverride(input=2.0, output=8.0, cache_read=0.5)})
    cost = pricer.cost(
        "openai", "my-model", Usage(input_tokens=1_000_000, output_tokens=1_000_000, cached_tokens=500_000)
    )
    assert cost.usd == pytest.approx(0.5 * 2.0 + 0.5 * 0.5 + 8.0)
    assert cost.source == "config"
