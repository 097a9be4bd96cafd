"""The seeds' billing controls set on a customer: Owostack's feature configs and overage limit, Autumn's lists."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from limitr_py.engine import arguments as args
from limitr_py.engine.arguments import UNSET
from limitr_py.engine.state import ON_LIMIT_REACHED, CustomerState, FeatureConfig, OverageLimit
from limitr_py.errors import InvalidArgumentError


def feature_config_args(overage: Any, max_overage_units: Any) -> tuple[Any, Decimal | object | None]:
    """`set_feature_config`'s fields, checked: each is UNSET (keep), None (clear) or a value."""
    if overage is not UNSET and overage not in (None, "block", "charge"):
        raise InvalidArgumentError(f"overage must be `block`, `charge` or None, got `{overage}`")
    units = max_overage_units
    if units is not UNSET and units is not None:
        units = args.amount(units, "max_overage_units")
        if units < 0:
            raise InvalidArgumentError(f"max_overage_units cannot be negative, got `{max_overage_units}`")
    return overage, units


def overage_limit_arg(max_overage_amount: Any, on_limit_reached: Any) -> OverageLimit | None:
    """`set_overage_limit`'s arguments, checked: a whole number of minor units, or None to remove the limit."""
    when_reached = args.one_of(on_limit_reached, ON_LIMIT_REACHED, "on_limit_reached")
    if max_overage_amount is None:
        return None
    amount = args.amount(max_overage_amount, "max_overage_amount")
    if amount < 0 or amount != amount.to_integral_value():
        raise InvalidArgumentError(f"max_overage_amount is a whole number of minor units, got `{max_overage_amount}`")
    return OverageLimit(int(amount), when_reached)


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
