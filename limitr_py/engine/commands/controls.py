"""The seeds' billing controls set on a customer: Owostack's feature configs and overage limit, Autumn's lists."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from limitr_py.engine.arguments import UNSET
from limitr_py.engine.state import CustomerState, FeatureConfig, OverageLimit
from limitr_py.errors import InvalidArgumentError


def feature_config(c: CustomerState, feature: str, overage: Any, units: Decimal | object | None) -> bool:
    """Owostack's per-feature exception; a field left UNSET keeps its value, None clears it."""
    old = c.billing.feature_configs.get(feature, FeatureConfig())
    new = FeatureConfig(
        old.overage if overage is UNSET else overage,
        old.max_overage_units if units is UNSET else units,  # type: ignore[arg-type]
    )
    configs = {k: v for k, v in c.billing.feature_configs.items() if k != feature}
    if new != FeatureConfig():
        configs[feature] = new
    c.billing = replace(c.billing, feature_configs=configs)
    return True


def overage_limit(c: CustomerState, limit: OverageLimit | None) -> bool:
    """Owostack's customer-wide overage money limit (None removes it); a new limit re-arms its `limit-reached`."""
    blocked = {k: v for k, v in c.billing.blocked.items() if k != "*overage_limit"}
    c.billing = replace(c.billing, overage_limit=limit, blocked=blocked)
    return True


def lists(c: CustomerState, parsed: dict[str, Any], entity_of: str | None) -> bool:
    """Autumn's control lists (each given list replaces its entries); `entity_of`: the customer `c` must be an
    entity of."""
    if entity_of is not None and c.parent != entity_of:
        raise InvalidArgumentError(f"`{c.id}` is not an entity of `{entity_of}`")
    c.billing = replace(c.billing, **parsed)
    return True
