"""Route strategies: the order in which a call tries a route's targets, and why.

Each strategy returns the targets in the order to try them (the first one gets the call, the
rest are its failover chain) and a short reason that goes into `calls.route_reason`.

- fallback: as written.
- weighted: the first target drawn at random by weight; the others follow by weight.
- lowest-latency: by moving average of observed latency (time to first token for streams);
  a target not yet measured goes first so it gets measured; 5% of calls explore another target
  so a target that was slow once is not shunned forever.
- lowest-cost: by the request's estimated cost (prices x estimated input and output tokens);
  a target whose price is unknown goes last.
- auto: easy requests to the `easy` target, hard ones to the `hard` target (see classify.py);
  the rest of the targets follow in order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

from unillm.routing.classify import classify
from unillm.routing.latency import LATENCY

_EXPLORE = 0.05
_TYPICAL_OUTPUT_TOKENS = 500  # for cost estimates when the request sets no output limit

Order = tuple[list[Any], str]


def target_key(target: Any) -> str:
    return f"{target.provider.name}/{target.model}"


def expected_output_tokens(body: Mapping[str, Any]) -> int:
    for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(key)
        if isinstance(value, int) and value > 0:
            return min(value, 4 * _TYPICAL_OUTPUT_TOKENS)
    return _TYPICAL_OUTPUT_TOKENS


def fallback(targets: list[Any], **_: Any) -> Order:
    return list(targets), "fallback: in order"


def weighted(targets: list[Any], rng: random.Random, **_: Any) -> Order:
    weights = [t.weight for t in targets]
    if not any(weights):
        return list(targets), "weighted: every weight is 0, in order"
    first = rng.choices(range(len(targets)), weights=weights)[0]
    rest = sorted((t for i, t in enumerate(targets) if i != first), key=lambda t: -t.weight)
    chosen = targets[first]
    share = chosen.weight / sum(weights)
    return [chosen, *rest], f"weighted: drew {target_key(chosen)} ({share:.0%} of traffic)"


def lowest_latency(targets: list[Any], stream: bool, rng: random.Random, **_: Any) -> Order:
    kind = "time to first token" if stream else "latency"
    estimates = {id(t): LATENCY.estimate(target_key(t), stream) for t in targets}
    unmeasured = [t for t in targets if estimates[id(t)] is None]
    if unmeasured:
        first = unmeasured[0]
        rest = sorted((t for t in targets if t is not first), key=lambda t: estimates[id(t)] or 0.0)
        return [first, *rest], f"lowest-latency: {target_key(first)} not measured yet"
    ordered = sorted(targets, key=lambda t: estimates[id(t)] or 0.0)
    if len(ordered) > 1 and rng.random() < _EXPLORE:
        pick = rng.randrange(1, len(ordered))
        ordered.insert(0, ordered.pop(pick))
        return (
            ordered,
            f"lowest-latency: exploring {target_key(ordered[0])} (measured {estimates[id(ordered[0])]:.0f} ms)",
        )
    best = ordered[0]
    return ordered, f"lowest-latency: {target_key(best)} has the lowest {kind} ({estimates[id(best)]:.0f} ms average)"


def lowest_cost(targets: list[Any], estimate_cost: Callable[[Any], float | None], **_: Any) -> Order:
    costs = {id(t): estimate_cost(t) for t in targets}
    ordered = sorted(targets, key=lambda t: (costs[id(t)] is None, costs[id(t)] or 0.0))
    best = costs[id(ordered[0])]
    if best is None:
        return ordered, "lowest-cost: no target has a known price, in order"
    return ordered, f"lowest-cost: {target_key(ordered[0])} estimated ${best:.6f}"


def auto(
    targets: list[Any],
    body: Mapping[str, Any],
    tokens: int,
    tags: Mapping[str, str],
    rules: Any,
    by_name: Callable[[str], Any],
    **_: Any,
) -> Order:
    verdict = classify(body, tokens, tags, rules)
    name = rules.hard if verdict.hard else rules.easy
    chosen = by_name(name) if name else None
    if chosen is None:
        chosen = targets[-1] if verdict.hard else targets[0]
    rest = [t for t in targets if t is not chosen]
    return [chosen, *rest], f"auto: {verdict.describe(tokens)} → {target_key(chosen)}"


STRATEGIES: dict[str, Callable[..., Order]] = {
    "fallback": fallback,
    "weighted": weighted,
    "lowest-latency": lowest_latency,
    "lowest-cost": lowest_cost,
    "auto": auto,
}
