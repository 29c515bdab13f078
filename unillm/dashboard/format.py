"""How the dashboard writes money, durations, shares and counts: short, and never rounding a
real cost down to "$0"."""

from __future__ import annotations

import math


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def usd(value: float | None) -> str:
    if _missing(value):
        return "—"
    assert value is not None
    size = abs(value)
    if size == 0:
        return "$0"
    if size >= 100:
        return f"${value:,.0f}"
    if size >= 1:
        return f"${value:,.2f}"
    # Small amounts keep three significant digits: $0.0306, $0.000135.
    digits = max(2, -math.floor(math.log10(size)) + 2)
    return f"${value:.{digits}f}"


def ms(value: float | None) -> str:
    if _missing(value):
        return "—"
    assert value is not None
    if abs(value) >= 10_000:
        return f"{value / 1000:,.1f} s"
    if abs(value) >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.0f} ms" if abs(value) >= 10 else f"{value:.1f} ms"


def share(value: float | None) -> str:
    if _missing(value):
        return "—"
    assert value is not None
    if value == 0:
        return "0%"
    return f"{value * 100:.1f}%" if value >= 0.001 else f"{value * 100:.2f}%"


def count(value: float | None) -> str:
    if _missing(value):
        return "—"
    assert value is not None
    for unit, size, above in (("B", 1e9, 1e9), ("M", 1e6, 1e6), ("k", 1e3, 1e4)):
        if abs(value) >= above:
            return f"{value / size:,.1f}{unit}"
    return f"{value:,.0f}"


def change(now: float | None, before: float | None, *, relative: bool = True) -> str | None:
    """A KPI's change against the previous period: "+12.5%" (relative) or "+1.2 pp" (shares);
    None when there is nothing to compare with."""
    if _missing(now) or _missing(before):
        return None
    assert now is not None and before is not None
    if not relative:
        return f"{(now - before) * 100:+.1f} pp"
    if before == 0:
        return None if now == 0 else "new"
    return f"{(now - before) / abs(before) * 100:+.1f}%"
