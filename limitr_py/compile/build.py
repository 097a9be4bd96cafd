"""Semantic checks and compilation in one pass over a schema-shaped tree.

Each check reports a diagnostic and carries on, so a document with many problems shows them all at once.
The pass is defensive: a part of the tree the schema already rejected (wrong type) is skipped, not crashed on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from limitr_py.compile.conditions import compile_expression
from limitr_py.compile.graph import (
    DEFAULT_EWMA_ALPHA,
    CompiledPolicy,
    Credit,
    Entitlement,
    Exchange,
    ExchangePair,
    Limit,
    Notification,
    OverheadTable,
    Plan,
    PriceTier,
    Pricing,
    Topup,
)
from limitr_py.diagnostics import Diagnostic, close_match, pointer_join
from limitr_py.documents.source import SourceDocument
from limitr_py.event_names import EVENT_NAMES
from limitr_py.expressions import Expression, ExpressionError
from limitr_py.schedules import Schedule, ScheduleError, parse_schedule
from limitr_py.units import UNITS, QuantityOutOfRange, UnitError, canonical_unit, duration_ms, format_decimal, to_units

BUILTIN_PAIRS = {"usd": ExchangePair("usd", Decimal(1), "rune")}
_PLAIN_UNITS = ("float", "int", "")


class _Skip(Exception):
    """This part of the tree is malformed (already reported by the schema); leave it out."""


def _members(value: Any) -> dict[str, Any]:
    """A name → object map, or nothing when the schema already rejected its type."""
    return value if isinstance(value, dict) else {}


def _frozen(mapping: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(mapping)


class Builder:
    def __init__(self, doc: SourceDocument) -> None:
        self.doc = doc
        self.problems: list[Diagnostic] = []
        root = doc.tree if isinstance(doc.tree, dict) else {}
        policy = root.get("policy")
        self.raw: dict[str, Any] = policy if isinstance(policy, dict) else {}
        raw_credits = self.raw.get("credits")
        self.credit_names = list(raw_credits) if isinstance(raw_credits, dict) else []
        self.credits: dict[str, Credit] = {}

    # -- helpers ----------------------------------------------------------------------------------------------

    def problem(self, code: str, message: str, pointer: str, hint: str | None = None, *, value: bool = True) -> None:
        self.problems.append(self.doc.diagnostic(code, message, pointer, hint, value=value))

    @staticmethod
    def obj(value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise _Skip
        return value

    def quantity(self, value: Any, unit: str | None, pointer: str, *, non_negative: bool = True) -> Decimal | None:
        if value is None:
            return None
        try:
            amount = to_units(value, unit)
        except QuantityOutOfRange as exc:
            self.problem("L204", str(exc), pointer)
            return None
        except UnitError as exc:
            target = f"`{unit}`" if unit else "plain numbers (the credit has no `stof_units`)"
            self.problem("L309", f"{exc}; this value is in {target}", pointer)
            return None
        if non_negative and amount < 0:
            self.problem("L312", f"`{pointer.rsplit('/', 1)[-1]}` must not be negative, not `{value}`", pointer)
        return amount

    def duration(self, value: Any, pointer: str, *, allow_zero: bool = False) -> timedelta | None:
        if value is None:
            return None
        try:
            ms = duration_ms(value)
        except QuantityOutOfRange as exc:
            self.problem("L204", str(exc), pointer)
            return None
        except UnitError as exc:
            self.problem("L309", str(exc), pointer)
            return None
        if ms < 0 or (ms == 0 and not allow_zero):
            self.problem("L312", f"`{pointer.rsplit('/', 1)[-1]}` must be a positive duration, not `{value}`", pointer)
            return None
        return timedelta(microseconds=int(ms * 1000))

    def schedule(self, value: Any, pointer: str) -> Schedule | None:
        if value is None:
            return None
        try:
            return parse_schedule(value)
        except ScheduleError as exc:
            self.problem("L306", str(exc), pointer)
            return None

    def credit_ref(self, name: Any, pointer: str) -> str | None:
        if name in self.credit_names:
            return str(name)
        close = close_match(name, self.credit_names)
        hint = (
            f"did you mean `{close}`?"
            if close
            else (f"define it under `policy.credits.{name}`" if name else "name one of the policy's credits")
        )
        self.problem("L301", f"a credit named `{name}` does not exist in this policy", pointer, hint)
        return None

    def resets(self, raw: dict[str, Any], pointer: str) -> tuple[timedelta | None, Schedule | None]:
        if raw.get("reset_inc") is not None and raw.get("reset_sch") is not None:
            self.problem(
                "L305",
                "`reset_inc` and `reset_sch` are mutually exclusive",
                pointer_join(pointer, "reset_sch"),
                "keep `reset_inc` for a rolling period or `reset_sch` for a calendar schedule",
            )
        return (
            self.duration(raw.get("reset_inc"), pointer_join(pointer, "reset_inc")),
            self.schedule(raw.get("reset_sch"), pointer_join(pointer, "reset_sch")),
        )

    # -- parts ------------------------------------------------------------------------------------------------

    def pricing(self, raw: dict[str, Any], pointer: str, unit: str | None) -> Pricing:
        model = raw.get("pricing_model") or "flat"
        price_raw = raw.get("price")
        price = Decimal(self.obj(price_raw).get("amount", 0)) if price_raw is not None else None
        price_id = self.obj(price_raw).get("id") if price_raw is not None else None
        tiers_raw = raw.get("tiers")
        billing_units = self.quantity(raw.get("billing_units"), unit, pointer_join(pointer, "billing_units"))
        if model in ("flat", "package"):
            if tiers_raw:
                self.problem(
                    "L302",
                    f"a `{model}` pricing model takes `price`, not `tiers`",
                    pointer_join(pointer, "tiers"),
                    "remove `tiers`, or set `pricing_model: 'tiered'` (or `volume`, `stairstep`)",
                )
            if model == "package":
                if price is None:
                    self.problem(
                        "L302",
                        "`package` pricing needs a `price` per block",
                        pointer,
                        "add `price: { amount: … }` and `billing_units`",
                        value=False,
                    )
                if billing_units is None or billing_units <= 0:
                    self.problem(
                        "L314",
                        "`package` pricing needs `billing_units` greater than 0",
                        pointer,
                        "add `billing_units: 1000` (the block size the price is for)",
                        value=False,
                    )
            elif billing_units is not None:
                self.problem(
                    "L314",
                    "`billing_units` only applies to `package` pricing",
                    pointer_join(pointer, "billing_units"),
                    "set `pricing_model: 'package'` or remove it",
                )
            return Pricing(model, price, (), billing_units if model == "package" else None, price_id)
        if billing_units is not None:
            self.problem(
                "L314",
                "`billing_units` only applies to `package` pricing",
                pointer_join(pointer, "billing_units"),
                "set `pricing_model: 'package'` or remove it",
            )
        if price_raw is not None:
            self.problem(
                "L302",
                f"a `{model}` pricing model requires `price` to be null and a `tiers` list",
                pointer_join(pointer, "price"),
                "move the price into `tiers`",
            )
        if not tiers_raw:
            self.problem(
                "L302",
                f"a `{model}` pricing model requires a list of pricing tiers (`tiers`)",
                pointer,
                "add `tiers: [{ up_to: 100, price: { amount: 0.04 } }, { price: { amount: 0.02 } }]`",
                value=False,
            )
            return Pricing(model, None, (), None, price_id)
        return Pricing(model, None, self.tiers(tiers_raw, pointer_join(pointer, "tiers"), unit), None, price_id)

    def tiers(self, raw: list[Any], pointer: str, unit: str | None) -> tuple[PriceTier, ...]:
        built: list[tuple[int, PriceTier]] = []
        for i, tier in enumerate(raw):
            tier = self.obj(tier)
            p = pointer_join(pointer, i)
            up_to = self.quantity(tier.get("up_to"), unit, pointer_join(p, "up_to"))
            amount = Decimal(self.obj(tier.get("price")).get("amount", 0))
            built.append((i, PriceTier(up_to, amount, Decimal(tier.get("flat_fee") or 0))))
        unbounded = [i for i, t in built if t.up_to is None]
        if not unbounded:
            self.problem(
                "L303",
                "the last tier must be `up_to: null` (unbounded)",
                pointer_join(pointer, len(raw) - 1),
                "remove `up_to` from the last tier so every quantity has a price",
            )
        elif len(unbounded) > 1:
            self.problem(
                "L303",
                "only one tier may be unbounded (`up_to: null`)",
                pointer_join(pointer, unbounded[1]),
                "give every tier but the last an `up_to`",
            )
        bounds = [t.up_to for _, t in built if t.up_to is not None]
        seen: set[Decimal] = set()
        for i, t in built:
            if t.up_to is not None and t.up_to in seen:
                self.problem(
                    "L303",
                    f"two tiers end at `up_to: {format_decimal(t.up_to)}`",
                    pointer_join(pointer_join(pointer, i), "up_to"),
                    "each tier needs its own upper bound",
                )
            if t.up_to is not None:
                seen.add(t.up_to)
        if bounds and bounds[0] is not None and any(b <= 0 for b in bounds):
            first_bad = next(i for i, t in built if t.up_to is not None and t.up_to <= 0)
            self.problem(
                "L303",
                "a tier's `up_to` must be greater than 0",
                pointer_join(pointer_join(pointer, first_bad), "up_to"),
            )
        # Limitr sorts tiers by `up_to` (unbounded last); so do we.
        return tuple(sorted((t for _, t in built), key=lambda t: (t.up_to is None, t.up_to or Decimal(0))))

    def credit(self, name: str, raw: dict[str, Any], pointer: str) -> Credit:
        units_raw = raw.get("stof_units", "float")
        units: str | None = None
        if units_raw not in _PLAIN_UNITS:
            if units_raw in UNITS:
                units = canonical_unit(units_raw)
            else:
                close = close_match(units_raw, UNITS)
                self.problem(
                    "L309",
                    f"credit `{name}` has invalid units `{units_raw}`",
                    pointer_join(pointer, "stof_units"),
                    f"did you mean `{close}`?"
                    if close
                    else "use `float` for plain numbers, or a unit such as `MB`, `s`, `GiB`",
                )
        overhead = None
        if raw.get("overhead") is not None:
            table = self.obj(raw["overhead"])
            rates = {
                str(row): _frozen({str(f): Decimal(r) for f, r in self.obj(cols).items()})
                for row, cols in self.obj(table.get("rates")).items()
            }
            overhead = OverheadTable(table.get("by"), _frozen(rates))
        return Credit(
            name=name,
            unit=raw.get("unit", "credit"),
            label=raw.get("label", "Credit"),
            description=raw.get("description", ""),
            overhead_cost=Decimal(raw.get("overhead_cost", 0)),
            pricing=self.pricing(raw, pointer, units),
            units=units,
            overhead=overhead,
        )

    def limit(self, raw: dict[str, Any], pointer: str) -> Limit | None:
        if "credit" not in raw:
            known = ", ".join(f"`{c}`" for c in self.credit_names[:8])
            self.problem(
                "L205",
                "missing required field `credit`",
                pointer,
                f"name the credit this limit counts ({known})" if known else "define a credit and name it",
            )
            credit_name = None
        else:
            credit_name = self.credit_ref(raw["credit"], pointer_join(pointer, "credit"))
        credit = self.credits.get(credit_name or "")
        unit = credit.units if credit else None

        def q(key: str, *, non_negative: bool = True) -> Decimal | None:
            # without a credit there is no unit to read a quantity in (the missing credit is reported already)
            if credit is None:
                return None
            return self.quantity(raw.get(key), unit, pointer_join(pointer, key), non_negative=non_negative)

        mode = raw.get("mode", "hard")
        if raw.get("hard_trailing") and mode != "hard":
            self.problem(
                "L308",
                "`hard_trailing` can only be true when mode is `hard`",
                pointer_join(pointer, "hard_trailing"),
                "set `mode: 'hard'` or remove `hard_trailing`",
            )
        governor = bool(raw.get("governor_enabled"))
        if governor:
            missing = [k for k in ("governor_capacity", "governor_refill_rate") if raw.get(k) is None]
            if missing:
                self.problem(
                    "L307",
                    f"a governor needs {' and '.join(f'`{m}`' for m in missing)}",
                    pointer_join(pointer, "governor_enabled"),
                    "add `governor_capacity: 5, governor_refill_rate: 0.001` (tokens per ms)",
                )
            if mode != "hard":
                self.problem(
                    "L307",
                    f"a governor only applies to hard limits, not `{mode}`",
                    pointer_join(pointer, "governor_enabled"),
                    "set `mode: 'hard'` or remove the governor",
                )
        reset_inc, reset_sch = self.resets(raw, pointer)
        pricing = None
        if raw.get("pricing") is not None:
            pricing = self.pricing(self.obj(raw["pricing"]), pointer_join(pointer, "pricing"), unit)
        value, increment = q("value"), q("increment")
        refill = raw.get("governor_refill_rate")
        return Limit(
            credit=credit_name or "",
            mode=mode,
            value=value if value is not None else Decimal(0),
            increment=increment if increment is not None else Decimal(1),
            hard_trailing=bool(raw.get("hard_trailing", False)),
            grants_apply=bool(raw.get("grants_apply", True)),
            minimum=q("minimum", non_negative=False),
            resets=bool(raw.get("resets", False)),
            reset_inc=reset_inc,
            reset_sch=reset_sch,
            override_expires_on=(
                Decimal(raw["override_expires_on"]) if raw.get("override_expires_on") is not None else None
            ),
            governor_enabled=governor,
            governor_capacity=q("governor_capacity"),
            governor_refill_rate=Decimal(refill) if refill is not None else None,
            ewma_alpha=Decimal(raw.get("ewma_alpha", DEFAULT_EWMA_ALPHA)),
            pricing=pricing,
            max_overage=q("max_overage"),
            invoice_included=bool(raw.get("invoice_included", False)),
        )

    def entitlement(self, name: str, raw: dict[str, Any], pointer: str) -> Entitlement:
        scope = raw.get("scope")
        if scope is not None and not str(scope).strip():
            self.problem(
                "L313",
                "an empty `scope` matches no customer type",
                pointer_join(pointer, "scope"),
                "name a customer type such as `org`, or remove `scope`",
            )
        limit = self.limit(self.obj(raw["limit"]), pointer_join(pointer, "limit")) if raw.get("limit") else None
        return Entitlement(
            name,
            raw.get("description", ""),
            limit,
            scope,
            bool(raw.get("hidden", False)),
            raw.get("estimate_basis"),
            raw.get("estimate_segment"),
        )

    def topup(self, name: str, raw: dict[str, Any], pointer: str) -> Topup:
        credit_name = self.credit_ref(raw.get("credit", ""), pointer_join(pointer, "credit"))
        credit = self.credits.get(credit_name or "")
        unit = credit.units if credit else None

        def q(key: str) -> Decimal | None:
            return self.quantity(raw.get(key), unit, pointer_join(pointer, key)) if credit else None

        scopes = raw.get("included_scopes")
        if scopes is not None and any(not str(s).strip() for s in scopes):
            self.problem(
                "L313",
                "an empty name in `included_scopes` matches no customer type",
                pointer_join(pointer, "included_scopes"),
            )
        reset_inc, reset_sch = self.resets(raw, pointer)
        price_raw = raw.get("price")
        value = q("value")
        return Topup(
            name=name,
            credit=credit_name or "",
            value=value if value is not None else Decimal(0),
            description=raw.get("description", ""),
            price=Decimal(self.obj(price_raw).get("amount", 0)) if price_raw is not None else None,
            resets=bool(raw.get("resets", False)),
            included=bool(raw.get("included", False)),
            included_scopes=tuple(scopes) if scopes else None,
            reset_inc=reset_inc,
            reset_sch=reset_sch,
            reset_mode=raw.get("reset_mode") or "hard",
            rollover_min=q("rollover_min"),
            rollover_max=q("rollover_max"),
            rollover_pct=Decimal(raw["rollover_pct"]) if raw.get("rollover_pct") is not None else None,
            max_balance=q("max_balance"),
            expires_after=self.duration(raw.get("expires_after"), pointer_join(pointer, "expires_after")),
            reset_catchup_cap=raw.get("reset_catchup_cap"),
        )

    def plan(self, name: str, raw: dict[str, Any], pointer: str) -> Plan:
        entitlements: dict[str, Entitlement] = {}
        for ent_name, ent_raw in _members(raw.get("entitlements")).items():
            try:
                entitlements[ent_name] = self.entitlement(
                    ent_name, self.obj(ent_raw), pointer_join(pointer_join(pointer, "entitlements"), ent_name)
                )
            except (_Skip, TypeError, ValueError, InvalidOperation, AttributeError):
                continue
        topups: dict[str, Topup] = {}
        for top_name, top_raw in _members(raw.get("topups")).items():
            try:
                topups[top_name] = self.topup(
                    top_name, self.obj(top_raw), pointer_join(pointer_join(pointer, "topups"), top_name)
                )
            except (_Skip, TypeError, ValueError, InvalidOperation, AttributeError):
                continue
        subscription = raw.get("subscription", "subscription")
        trial = self.duration(raw.get("trial_period"), pointer_join(pointer, "trial_period"), allow_zero=True)
        if raw.get("trial_period") is not None and subscription not in entitlements:
            self.problem(
                "L310",
                f"plan `{name}` has a `trial_period` but no `{subscription}` entitlement",
                pointer_join(pointer, "trial_period"),
                f"add a `{subscription}` entitlement (the plan fee) or remove `trial_period`",
            )
        price_raw = raw.get("price")
        return Plan(
            name=name,
            label=raw.get("label", ""),
            period=raw.get("period", "monthly"),
            subscription=subscription,
            trial_period=trial,
            entitlements=_frozen(entitlements),
            topups=_frozen(topups),
            hidden=bool(raw.get("hidden", False)),
            default=bool(raw.get("default", False)),
            price=Decimal(self.obj(price_raw).get("amount", 0)) if price_raw is not None else None,
        )

    def exchange(self, raw: dict[str, Any], pointer: str) -> Exchange:
        pairs: dict[str, ExchangePair] = dict(BUILTIN_PAIRS)
        for key, pair_raw in raw.items():
            if key in ("grant_strategy", "rune") or not isinstance(pair_raw, dict):
                continue
            pairs[key] = ExchangePair(key, Decimal(pair_raw.get("value", 1)), pair_raw.get("currency", "usd"))
        for key in pairs:
            if key in raw:  # built-in pairs are known good; a user's own (or overridden `usd`) is checked
                self.check_reaches_runes(key, pairs, pointer_join(pointer, key))
        return Exchange(raw.get("grant_strategy", "expires_first"), _frozen(pairs))

    def check_reaches_runes(self, start: str, pairs: dict[str, ExchangePair], pointer: str) -> None:
        seen = [start]
        name = pairs[start].currency
        while True:
            if name == "rune":
                return
            if name in pairs:
                if name in seen:
                    self.problem(
                        "L304",
                        f"credit `{start}` exchange forms a cycle: {' → '.join([*seen, name])}",
                        pointer_join(pointer, "currency"),
                        "end the chain at `rune`, `usd` or a priced credit",
                    )
                    return
                seen.append(name)
                name = pairs[name].currency
                continue
            credit = self.credits.get(name)
            if credit is not None and credit.pricing.priced:
                return
            why = "an unpriced credit" if credit is not None else "not a credit or exchange pair"
            self.problem(
                "L304",
                f"credit `{start}` exchange `{pairs[start].currency}` currency does not map to "
                f"limitr runes (broken conversions: `{name}` is {why})",
                pointer_join(pointer, "currency"),
                "end the chain at `rune`, `usd` or a priced credit",
            )
            return

    def notification(self, name: str, raw: dict[str, Any], pointer: str) -> Notification:
        events = tuple(raw.get("events") or ("*",))
        for i, event in enumerate(events):
            if event != "*" and event not in EVENT_NAMES:
                close = close_match(event, EVENT_NAMES)
                self.problem(
                    "L203",
                    f"unknown event `{event}`",
                    pointer_join(pointer_join(pointer, "events"), i),
                    f"did you mean `{close}`?" if close else "use an event name such as `meter-overage`",
                )
        when: Expression | None = None
        if raw.get("when") is not None:
            try:
                when = compile_expression(raw["when"])
            except ExpressionError as exc:
                p = pointer_join(pointer, "when")
                line, col = self.doc.locate(p, value=True)
                offset = 1 if self.doc.format in ("stof", "json", "toml") else 0
                self.problems.append(
                    Diagnostic(
                        "L311",
                        str(exc),
                        self.doc.file,
                        line,
                        col + offset + exc.column - 1,
                        p,
                        "conditions use payload fields, numbers, strings, comparisons, + - * / %, and/or/not and `in`",
                        self.doc.source_line(line),
                    )
                )
        return Notification(name, events, when, raw.get("description", ""))

    # -- the whole policy -------------------------------------------------------------------------------------

    def build(self) -> CompiledPolicy:
        raw = self.raw
        for name, credit_raw in _members(raw.get("credits")).items():
            try:
                self.credits[name] = self.credit(name, self.obj(credit_raw), pointer_join("/policy/credits", name))
            except (_Skip, TypeError, ValueError, InvalidOperation, AttributeError):
                continue
        exchange = Exchange("expires_first", _frozen(dict(BUILTIN_PAIRS)))
        try:
            exchange = self.exchange(_members(raw.get("exchange")), "/policy/exchange")
        except (_Skip, TypeError, ValueError, InvalidOperation, AttributeError):
            pass
        plans: dict[str, Plan] = {}
        for name, plan_raw in _members(raw.get("plans")).items():
            try:
                plans[name] = self.plan(name, self.obj(plan_raw), pointer_join("/policy/plans", name))
            except (_Skip, TypeError, ValueError, InvalidOperation, AttributeError):
                continue
        notifications: dict[str, Notification] = {}
        for name, note_raw in _members(raw.get("notifications")).items():
            try:
                notifications[name] = self.notification(
                    name, self.obj(note_raw), pointer_join("/policy/notifications", name)
                )
            except (_Skip, TypeError, ValueError, InvalidOperation, AttributeError):
                continue
        hold_ttl = self.duration(raw.get("hold_ttl", "10min"), "/policy/hold_ttl") or timedelta(minutes=10)
        policy = CompiledPolicy(
            currency=raw.get("currency", "USD") if isinstance(raw.get("currency", "USD"), str) else "USD",
            credits=_frozen(self.credits),
            plans=_frozen(plans),
            exchange=exchange,
            notifications=_frozen(notifications),
            estimate_min_samples=(
                raw.get("estimate_min_samples", 5) if isinstance(raw.get("estimate_min_samples", 5), int) else 5
            ),
            hold_ttl=hold_ttl,
            version=raw.get("version") if isinstance(raw.get("version"), str) else None,
            fingerprint="",
        )
        return replace(policy, fingerprint=fingerprint(policy))


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def canonical(value: Any) -> Any:
    """A JSON-able form of the compiled graph: equal policies give equal forms, whatever their source format."""
    kind = type(value)
    if value is None or kind is str or kind is bool:
        return value
    if kind is Decimal or kind is int:
        return "#" + format_decimal(value)
    if kind is Schedule or kind is Expression:
        return value.text
    if kind is tuple or kind is list:
        return [canonical(v) for v in value]
    if isinstance(value, Mapping):
        return [[k, canonical(v)] for k, v in value.items()]  # order matters (e.g. the first default plan)
    if kind is timedelta:
        return f"td:{value // timedelta(microseconds=1)}"
    names = _FIELD_NAMES.get(kind)
    if names is None:
        if not is_dataclass(value):
            raise TypeError(f"cannot fingerprint {kind.__name__}")
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(value) if f.name != "fingerprint")
    return {name: canonical(getattr(value, name)) for name in names}


def fingerprint(policy: CompiledPolicy) -> str:
    text = json.dumps(canonical(policy), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
