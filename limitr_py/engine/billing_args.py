"""Checking `update_billing_controls` arguments: Autumn's lists of dicts (snake_case fields) → typed controls.

Every problem is an InvalidArgumentError naming the list, the entry and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from limitr_py.engine import arguments as args
from limitr_py.engine.controls import INTERVALS
from limitr_py.engine.state import AutoTopup, PurchaseLimit, SpendLimit, UsageAlert, UsageLimit
from limitr_py.errors import InvalidArgumentError

_FIELDS = {
    "overage_allowed": {"feature_id", "enabled"},
    "spend_limits": {"feature_id", "enabled", "overage_limit"},
    "usage_limits": {"feature_id", "limit", "interval", "enabled"},
    "usage_alerts": {"feature_id", "threshold", "threshold_type", "enabled", "name"},
    "auto_topups": {"feature_id", "enabled", "threshold", "quantity", "purchase_limit"},
}


def _entries(name: str, raw: Any) -> list[Mapping[str, Any]]:
    if isinstance(raw, Mapping | str) or not isinstance(raw, list | tuple):
        raise InvalidArgumentError(f"{name} must be a list of dicts")
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            raise InvalidArgumentError(f"{name}[{i}] must be a dict")
        unknown = set(entry) - _FIELDS[name]
        if unknown:
            raise InvalidArgumentError(
                f"{name}[{i}]: unknown field `{sorted(unknown)[0]}`; use {', '.join(sorted(_FIELDS[name]))}"
            )
        if not isinstance(entry.get("feature_id"), str) or not entry["feature_id"]:
            raise InvalidArgumentError(f"{name}[{i}]: `feature_id` is required")
    return list(raw)


def _bool(entry: Mapping[str, Any], key: str, where: str, default: bool = True) -> bool:
    value = entry.get(key, default)
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{where}: `{key}` must be true or false, got `{value!r}`")
    return value


def _number(entry: Mapping[str, Any], key: str, where: str, *, minimum: Decimal | None = Decimal(0)) -> Decimal:
    if entry.get(key) is None:
        raise InvalidArgumentError(f"{where}: `{key}` is required")
    value = args.amount(entry[key], f"{where}: `{key}`")
    if minimum is not None and value < minimum:
        raise InvalidArgumentError(f"{where}: `{key}` cannot be below {minimum}, got `{entry[key]}`")
    return value


def controls(
    overage_allowed: Any, spend_limits: Any, usage_limits: Any, usage_alerts: Any, auto_topups: Any
) -> dict[str, Any]:
    """The BillingState fields to replace (only those given). Features are not checked against the plan: a
    control for a feature the customer's plan lacks simply never applies (plans change; controls stay)."""
    out: dict[str, Any] = {}
    if overage_allowed is not None:
        out["overage_allowed"] = {
            e["feature_id"]: _bool(e, "enabled", f"overage_allowed[{i}]")
            for i, e in enumerate(_entries("overage_allowed", overage_allowed))
        }
    if spend_limits is not None:
        table = {}
        for i, e in enumerate(_entries("spend_limits", spend_limits)):
            where = f"spend_limits[{i}]"
            enabled = _bool(e, "enabled", where)
            limit = _number(e, "overage_limit", where) if e.get("overage_limit") is not None or enabled else None
            table[e["feature_id"]] = SpendLimit(e["feature_id"], enabled, limit)
        out["spend_limits"] = table
    if usage_limits is not None:
        table_u = {}
        for i, e in enumerate(_entries("usage_limits", usage_limits)):
            where = f"usage_limits[{i}]"
            interval = e.get("interval")
            if interval not in INTERVALS:
                raise InvalidArgumentError(
                    f"{where}: `interval` must be one of {', '.join(INTERVALS)}, got `{interval}`"
                )
            usage_limit = UsageLimit(e["feature_id"], _number(e, "limit", where), interval, _bool(e, "enabled", where))
            table_u[f"{usage_limit.feature_id}:{interval}"] = usage_limit
        out["usage_limits"] = table_u
    if usage_alerts is not None:
        alerts = []
        for i, e in enumerate(_entries("usage_alerts", usage_alerts)):
            where = f"usage_alerts[{i}]"
            kind = e.get("threshold_type", "usage")
            if kind not in ("usage", "usage_percentage"):
                raise InvalidArgumentError(f"{where}: `threshold_type` must be `usage` or `usage_percentage`")
            name = e.get("name")
            if name is not None and not isinstance(name, str):
                raise InvalidArgumentError(f"{where}: `name` must be a string")
            alerts.append(
                UsageAlert(e["feature_id"], _number(e, "threshold", where), kind, _bool(e, "enabled", where), name)
            )
        out["usage_alerts"] = tuple(alerts)
    if auto_topups is not None:
        table_t = {}
        for i, e in enumerate(_entries("auto_topups", auto_topups)):
            where = f"auto_topups[{i}]"
            quantity = _number(e, "quantity", where)
            if quantity <= 0:
                raise InvalidArgumentError(f"{where}: `quantity` must be positive")
            table_t[e["feature_id"]] = AutoTopup(
                e["feature_id"],
                _number(e, "threshold", where, minimum=None),
                quantity,
                _bool(e, "enabled", where),
                _purchase_limit(e.get("purchase_limit"), where),
            )
        out["auto_topups"] = table_t
    return out


def _purchase_limit(raw: Any, where: str) -> PurchaseLimit | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidArgumentError(f"{where}: `purchase_limit` must be a dict")
    interval = raw.get("interval")
    if interval not in ("hour", "day", "week", "month"):
        raise InvalidArgumentError(f"{where}: `purchase_limit.interval` must be hour, day, week or month")
    limit, count = raw.get("limit"), raw.get("interval_count", 1)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidArgumentError(f"{where}: `purchase_limit.limit` must be a non-negative integer")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidArgumentError(f"{where}: `purchase_limit.interval_count` must be a positive integer")
    return PurchaseLimit(interval, limit, count)
