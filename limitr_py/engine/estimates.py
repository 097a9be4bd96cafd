"""Learned call sizes (reference/limitr.md §2.11 Estimate, §3.7): exponentially weighted mean and variance per
segment, optionally per unit of a basis (e.g. per input token), and a quantile prediction for `reserve`.

All arithmetic is Decimal (`ln` and `sqrt` included), so a prediction is reproducible to the last digit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from limitr_py.engine.state import ZERO, EstimateState

_HALF = Decimal("0.5")
_C = (Decimal("2.515517"), Decimal("0.802853"), Decimal("0.010328"))
_D = (Decimal("1.432788"), Decimal("0.189269"), Decimal("0.001308"))


@dataclass(frozen=True, slots=True)
class Estimate:
    """A prediction: `value` (credit units) and `overhead` (runes) at the asked quantile."""

    value: Decimal
    overhead: Decimal
    samples: int
    source: str
    scope: str  # `customer` (its own history) or `policy` (every customer's)


def segment_key(segment: object) -> str:
    """`all` when there is no segment; `.` and spaces become `_` (`claude-sonnet-4.5` → `claude-sonnet-4_5`)."""
    if segment is None or segment == "":
        return "all"
    return str(segment).replace(".", "_").replace(" ", "_")


def z_score(quantile: Decimal) -> Decimal:
    """Abramowitz & Stegun 26.2.23: the standard normal quantile, |error| < 4.5e-4."""
    q = min(max(quantile, Decimal("0.0001")), Decimal("0.9999"))
    if q == _HALF:
        return ZERO
    p = 1 - q if q > _HALF else q
    t = (-2 * p.ln()).sqrt()
    z = t - (_C[0] + _C[1] * t + _C[2] * t * t) / (1 + _D[0] * t + _D[1] * t * t + _D[2] * t * t * t)
    return z if q > _HALF else -z


def observe(
    e: EstimateState, value: Decimal, overhead: Decimal, basis: Decimal | None, per_basis: bool, now: datetime
) -> EstimateState | None:
    """One more sample; None when a per-basis estimate gets no positive basis (nothing learned)."""
    if e.per_basis != per_basis:
        e = EstimateState(alpha=e.alpha, per_basis=per_basis)
    if per_basis:
        if basis is None or basis <= 0:
            return None
        value, overhead = value / basis, overhead / basis
    n = e.samples + 1
    w = max(e.alpha, Decimal(1) / n)
    dv, do = value - e.value_mean, overhead - e.overhead_mean
    return replace(
        e,
        samples=n,
        value_mean=e.value_mean + w * dv,
        value_var=(1 - w) * (e.value_var + dv * w * dv),
        overhead_mean=e.overhead_mean + w * do,
        overhead_var=(1 - w) * (e.overhead_var + do * w * do),
        updated=now,
    )


def predict(e: EstimateState, basis: Decimal | None, quantile: Decimal, scope: str) -> Estimate | None:
    if e.samples < 1:
        return None
    scale = Decimal(1)
    if e.per_basis:
        if basis is None or basis <= 0:
            return None
        scale = basis
    z = z_score(quantile)
    value = max(ZERO, e.value_mean + z * max(ZERO, e.value_var).sqrt()) * scale
    overhead = max(ZERO, e.overhead_mean + z * max(ZERO, e.overhead_var).sqrt()) * scale
    return Estimate(value, overhead, e.samples, e.source, scope)
