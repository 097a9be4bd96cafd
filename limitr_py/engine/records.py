"""Customer state ↔ plain JSON-safe records (`customers()`, `set_customer`, `load_customers`, durable stores).

Numbers are written as strings so no amount ever passes through a float; times are ISO 8601 UTC; durations are
milliseconds; schedules their text. Values are encoded from their dataclass field annotations, so a new field
is serialized without new code. A record that does not have the expected shape raises InvalidArgumentError
naming the customer and the field.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar, get_args

from limitr_py import bounds
from limitr_py.compile.graph import Limit, Mode
from limitr_py.engine.state import (
    NOTHING,
    AutoTopup,
    BillingState,
    Cap,
    ClosedPeriod,
    CustomerState,
    EstimateState,
    FeatureConfig,
    Grant,
    Hold,
    Interval,
    MeterState,
    OnLimitReached,
    OverageLimit,
    Override,
    PurchaseLimit,
    SpendLimit,
    UsageAlert,
    UsageLimit,
    Window,
)
from limitr_py.errors import InvalidArgumentError
from limitr_py.schedules import Schedule, ScheduleError, parse_schedule
from limitr_py.units import format_decimal

T = TypeVar("T")
_US = timedelta(microseconds=1)
_OVERRIDE_FIELDS = ("credit", "mode", "value", "increment", "resets", "reset_inc", "reset_sch")


def encode(value: Any) -> Any:
    """One value → JSON-safe (by its runtime type)."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_decimal(Decimal(value // _US) / 1000)
    if isinstance(value, Schedule):
        return value.text
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    raise TypeError(f"cannot encode {type(value).__name__}")


def plain(value: Any) -> Any:
    """A value object as an event payload: dataclasses → dicts, tuples → lists, schedules → their text; numbers
    stay Decimal and times datetime (SPEC §4.1)."""
    if isinstance(value, Schedule):
        return value.text
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


_LITERALS: dict[str, tuple[str, ...]] = {
    "Mode": get_args(Mode),
    "Interval": get_args(Interval),
    "OnLimitReached": get_args(OnLimitReached),
}
"""The Literal aliases record fields are annotated with, and the values each allows."""


def _literal_choices(annotation: str) -> tuple[str, ...]:
    """The values of a `Literal["a", "b"]` annotation written out in a dataclass field."""
    return tuple(ast.literal_eval("(" + annotation[len("Literal[") : -1] + ",)"))


class Decoder:
    """Decodes fields by their annotation, with errors that say which field of which record is wrong."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field: str, why: str) -> InvalidArgumentError:
        return InvalidArgumentError(f"customer record {self.where}: `{field}` {why}")

    def value(self, annotation: str, raw: Any, field: str) -> Any:
        optional = annotation.endswith(" | None")
        base = annotation.removesuffix(" | None")
        if raw is None:
            if optional or base == "Any" or base.startswith("dict"):
                return None
            raise self.fail(field, "is required")
        if base == "Decimal":
            if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
                raise self.fail(field, f"is not a number: `{raw!r}`")
            try:
                return bounds.parse_stored(str(raw))
            except ValueError as exc:  # OutOfRange included: a stored `1e999999999` is refused, never expanded
                raise self.fail(field, f"is not a number in range: {exc}") from None
        if base == "datetime":
            try:
                when = datetime.fromisoformat(str(raw))
            except ValueError:
                raise self.fail(field, f"is not an ISO 8601 time: `{raw}`") from None
            if when.tzinfo is None:
                raise self.fail(field, f"has no time zone: `{raw}`")
            return when
        if base == "timedelta":
            try:
                return timedelta(microseconds=int(self.value("Decimal", raw, field) * 1000))
            except OverflowError:
                raise self.fail(field, f"is not a duration in range: `{raw}`") from None
        if base == "Schedule":
            try:
                return parse_schedule(str(raw))
            except ScheduleError as exc:
                raise self.fail(field, str(exc)) from None
        if base == "bool":
            if not isinstance(raw, bool):
                raise self.fail(field, f"must be true or false, got `{raw}`")
            return raw
        if base == "int":
            if (
                isinstance(raw, bool)
                or not isinstance(raw, int | str)
                or len(str(raw)) > 30
                or not str(raw).lstrip("-").isdigit()
            ):
                raise self.fail(field, f"must be an integer, got `{raw}`")
            return int(raw)
        if base == "str":
            if not isinstance(raw, str):
                raise self.fail(field, f"must be a string, got `{raw!r}`")
            return raw
        choices = _LITERALS.get(base) or (_literal_choices(base) if base.startswith("Literal[") else None)
        if choices is not None:
            if raw not in choices:
                raise self.fail(field, f"must be one of {', '.join(choices)}, got `{raw!r}`")
            return raw
        if base.startswith("tuple[str"):
            if isinstance(raw, str) or not isinstance(raw, list | tuple):
                raise self.fail(field, "must be a list of strings")
            return tuple(str(v) for v in raw)
        if base.startswith("dict") or base == "Any":
            if base.startswith("dict") and not isinstance(raw, Mapping):
                raise self.fail(field, "must be an object")
            return dict(raw) if isinstance(raw, Mapping) else raw
        raise self.fail(field, f"has an unsupported type `{annotation}`")

    def obj(self, cls: type[T], raw: Any, field: str) -> T:
        if not isinstance(raw, Mapping):
            raise self.fail(field, "must be an object")
        kwargs = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name not in raw and (
                f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            ):
                continue
            kwargs[f.name] = self.value(str(f.type), raw.get(f.name), f"{field}.{f.name}")
        return cls(**kwargs)

    def mapping(self, raw: Any, field: str) -> Mapping[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            raise self.fail(field, "must be an object")
        return raw


def meter_record(m: MeterState) -> dict[str, Any]:
    """`encode` of a meter, written out field by field: a durable store encodes the meter a call changed on
    every call, and the generic walk costs three times as much (tests/test_records_shared.py checks both agree)."""
    return {
        "credit": m.credit,
        "started": None if m.started is None else m.started.isoformat(),
        "value": format_decimal(m.value),
        "overhead": format_decimal(m.overhead),
        "history": [[at.isoformat(), format_decimal(delta)] for at, delta in m.history],
        "ewma_rate": None if m.ewma_rate is None else format_decimal(m.ewma_rate),
        "governor_tokens": None if m.governor_tokens is None else format_decimal(m.governor_tokens),
        "governor_last_refill": None if m.governor_last_refill is None else m.governor_last_refill.isoformat(),
        "holds": encode(m.holds) if m.holds else {},
        "estimates": encode(m.estimates) if m.estimates else {},
        "billed": format_decimal(m.billed),
        "covered": format_decimal(m.covered),
        "covered_units": format_decimal(m.covered_units),
    }


def customer_record(c: CustomerState, *, shared: bool = False) -> dict[str, Any]:
    """`shared`: meters, grants, caps, billing state and archived periods encoded before are reused as they were
    (for a store's commit, which serializes the record at once: nobody else sees the parts). A call changes one
    meter, so a customer with 20 of them costs one meter's encoding, not twenty."""
    enc = _encode_shared if shared else encode
    meter = _shared_meter_record if shared else meter_record
    return {
        "id": c.id,
        "plan": c.plan,
        "type": c.type,
        "label": c.label,
        "refs": list(c.refs),
        "alt_ids": list(c.alt_ids),
        "metadata": dict(c.metadata),
        "created": encode(c.created),
        "meters": {k: meter(m) for k, m in c.meters.items()},
        "overrides": {
            k: {**{f: encode(getattr(o.limit, f)) for f in _OVERRIDE_FIELDS}, "expires": encode(o.expires)}
            for k, o in c.overrides.items()
        },
        "grants": enc(c.grants),
        "caps": enc(c.caps),
        "billing": enc(c.billing),
        "parent": c.parent,
        "entities": list(c.entities),
        "billing_anchor": encode(c.billing_anchor),
        "periods": enc(c.periods),
    }


# -- encodings reused by identity ------------------------------------------------------------------------------
# The engine never changes a state object once a decision has produced it (a call copies what it changes: the
# copy-on-write rule codec's decoding memo rests on too), so an object's encoding, once made, stays right for as
# long as the object lives. Memoized by id() with the object itself kept beside it, so an id is never reused while
# its entry exists; bounded, cleared when full. VERIFY_SHARED (the test suite sets it) re-encodes on every hit
# and fails loudly if an object was changed after all.

_SHARED: dict[int, tuple[Any, Any]] = {}
_SHARED_MAX = 50_000
VERIFY_SHARED = False


def _memo(value: Any, build: Any) -> Any:
    hit = _SHARED.get(id(value))
    if hit is not None and hit[0] is value:
        if VERIFY_SHARED and build(value) != hit[1]:
            raise AssertionError(f"a {type(value).__name__} changed after it was encoded: {value!r:.200}")
        return hit[1]
    out = build(value)
    if len(_SHARED) >= _SHARED_MAX:
        _SHARED.clear()
    _SHARED[id(value)] = (value, out)
    return out


def _shared_meter_record(m: MeterState) -> dict[str, Any]:
    return _memo(m, meter_record)  # type: ignore[no-any-return]


def _encode_shared(value: Any) -> Any:
    """`encode`, with each state object (and each archive of periods) encoded once per object."""
    if isinstance(value, Mapping):
        return {str(k): _encode_shared(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) or (type(value) is tuple and value):
        return _memo(value, encode)
    return encode(value)


def _meter_from(raw: Any, d: Decoder, where: str) -> MeterState:
    raw = d.mapping(raw, where)
    credit = raw.get("credit")
    if not isinstance(credit, str) or not credit:
        raise d.fail(f"{where}.credit", "must be a credit name")
    history = []
    for i, entry in enumerate(raw.get("history") or []):
        if not isinstance(entry, list | tuple) or len(entry) != 2:
            raise d.fail(f"{where}.history", "entries must be [time, delta] pairs")
        history.append(
            (
                d.value("datetime", entry[0], f"{where}.history[{i}]"),
                d.value("Decimal", entry[1], f"{where}.history[{i}]"),
            )
        )
    return MeterState(
        credit,
        d.value("datetime | None", raw.get("started"), f"{where}.started"),
        d.value("Decimal", raw.get("value", "0"), f"{where}.value"),
        d.value("Decimal", raw.get("overhead", "0"), f"{where}.overhead"),
        tuple(history),
        d.value("Decimal | None", raw.get("ewma_rate"), f"{where}.ewma_rate"),
        d.value("Decimal | None", raw.get("governor_tokens"), f"{where}.governor_tokens"),
        d.value("datetime | None", raw.get("governor_last_refill"), f"{where}.governor_last_refill"),
        {k: d.obj(Hold, h, f"{where}.holds.{k}") for k, h in d.mapping(raw.get("holds"), f"{where}.holds").items()}
        or NOTHING,
        {
            k: d.obj(EstimateState, e, f"{where}.estimates.{k}")
            for k, e in d.mapping(raw.get("estimates"), f"{where}.estimates").items()
        }
        or NOTHING,
        d.value("Decimal", raw.get("billed", "0"), f"{where}.billed"),
        d.value("Decimal", raw.get("covered", "0"), f"{where}.covered"),
        d.value("Decimal", raw.get("covered_units", "0"), f"{where}.covered_units"),
    )


def _override_from(raw: Any, d: Decoder, where: str) -> Override:
    raw = d.mapping(raw, where)
    annotations = {f.name: str(f.type) for f in dataclasses.fields(Limit)}
    fields = {f: d.value(annotations[f], raw[f], f"{where}.{f}") for f in _OVERRIDE_FIELDS if raw.get(f) is not None}
    return Override(Limit(**fields), d.value("datetime | None", raw.get("expires"), f"{where}.expires"))


def _billing_from(raw: Any, d: Decoder) -> BillingState:
    raw = d.mapping(raw, "billing")

    def table(name: str, cls: type[T]) -> dict[str, T]:
        return {k: d.obj(cls, v, f"billing.{name}.{k}") for k, v in d.mapping(raw.get(name), f"billing.{name}").items()}

    topups = {}
    for k, v in d.mapping(raw.get("auto_topups"), "billing.auto_topups").items():
        v = d.mapping(v, f"billing.auto_topups.{k}")
        limit = v.get("purchase_limit")
        topup = d.obj(AutoTopup, {**v, "purchase_limit": None}, f"billing.auto_topups.{k}")
        if limit is not None:
            topup = dataclasses.replace(topup, purchase_limit=d.obj(PurchaseLimit, limit, f"billing.auto_topups.{k}"))
        topups[k] = topup
    overage_limit = raw.get("overage_limit")
    return BillingState(
        feature_configs=table("feature_configs", FeatureConfig),
        overage_limit=None if overage_limit is None else d.obj(OverageLimit, overage_limit, "billing.overage_limit"),
        overage_allowed={
            k: d.value("bool", v, f"billing.overage_allowed.{k}")
            for k, v in d.mapping(raw.get("overage_allowed"), "billing.overage_allowed").items()
        },
        spend_limits=table("spend_limits", SpendLimit),
        usage_limits=table("usage_limits", UsageLimit),
        usage_alerts=tuple(d.obj(UsageAlert, a, "billing.usage_alerts") for a in raw.get("usage_alerts") or ()),
        auto_topups=topups,
        windows=table("windows", Window),
        topup_purchases={
            k: tuple(d.value("datetime", t, f"billing.topup_purchases.{k}") for t in v)
            for k, v in d.mapping(raw.get("topup_purchases"), "billing.topup_purchases").items()
        },
        blocked={k: str(v) for k, v in d.mapping(raw.get("blocked"), "billing.blocked").items()},
    )


def customer_from(raw: Any) -> CustomerState:
    if not isinstance(raw, Mapping):
        raise InvalidArgumentError("customer record must be an object")
    ident = raw.get("id")
    if not isinstance(ident, str) or not ident:
        raise InvalidArgumentError("customer record: `id` must be a non-empty string")
    d = Decoder(f"`{ident}`")
    return CustomerState(
        id=ident,
        plan=str(raw.get("plan") or ""),
        type=str(raw.get("type") or "user"),
        label=str(raw.get("label") or "User"),
        refs=d.value("tuple[str, ...]", raw.get("refs") or [], "refs"),
        alt_ids=d.value("tuple[str, ...]", raw.get("alt_ids") or [], "alt_ids"),
        metadata=dict(d.mapping(raw.get("metadata"), "metadata")),
        created=d.value("datetime | None", raw.get("created"), "created"),
        meters={k: _meter_from(m, d, f"meters.{k}") for k, m in d.mapping(raw.get("meters"), "meters").items()},
        overrides={
            k: _override_from(o, d, f"overrides.{k}") for k, o in d.mapping(raw.get("overrides"), "overrides").items()
        },
        grants={k: d.obj(Grant, g, f"grants.{k}") for k, g in d.mapping(raw.get("grants"), "grants").items()},
        caps={k: d.obj(Cap, c, f"caps.{k}") for k, c in d.mapping(raw.get("caps"), "caps").items()},
        billing=_billing_from(raw.get("billing"), d),
        parent=d.value("str | None", raw.get("parent"), "parent"),
        entities=d.value("tuple[str, ...]", raw.get("entities") or [], "entities"),
        billing_anchor=d.value("datetime | None", raw.get("billing_anchor"), "billing_anchor"),
        periods=tuple(d.obj(ClosedPeriod, p, "periods") for p in raw.get("periods") or ()),
    )
