"""One bad-argument corpus, run on every store: each call raises InvalidArgumentError with a one-line message,
and the full `customers()` export is exactly what it was before the call (issue 10, item 5).

Before, the memory store accepted values no other store could hold (`track(..., 10**5000)`, a bytes label, an
override with `resets=0.5`, a non-text segment), after which `customers()` raised, and other stores raised
driver or encoding errors instead of InvalidArgumentError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from limitr_py import InvalidArgumentError, Limitr, ManualClock
from tests.engine_helpers import START, Engines

DOC: dict[str, Any] = {
    "policy": {
        "currency": "USD",
        "credits": {"usd_unit": {"price": {"amount": Decimal("0.01")}}, "seat": {}},
        "plans": {
            "main": {
                "default": True,
                "entitlements": {
                    "api": {"limit": {"credit": "usd_unit", "value": 5}},
                    "gpu": {"limit": {"credit": "usd_unit", "value": 1000, "mode": "soft"}},
                    "seats": {"limit": {"credit": "seat", "value": 3}},
                },
                "topups": {"boost": {"credit": "usd_unit", "value": 10}},
            },
            "pro": {"entitlements": {"api": {"limit": {"credit": "usd_unit", "value": 50}}}},
        },
    }
}

IDS: list[Any] = [
    "",
    " x",
    "x ",
    "a:b",
    "{x",
    "}x",
    "a\x00b",
    "\ud800",
    "x" * 256,
    5,
    None,
    b"x",
    ["x"],
    {"x": 1},
    1.5,
    True,
]
QUANTITIES: list[Any] = [
    10**5000,
    Decimal("1e40"),
    Decimal("1e-40"),
    float("nan"),
    float("inf"),
    "Infinity",
    "1e999999999",
    True,
    [],
    {},
    "abc",
    b"1",
    Decimal("NaN"),
    "5 parsecs",
]
TEXTS: list[Any] = [b"x", 5, "\ud800", "x" * 2000, ["x"]]
FLAGS: list[Any] = ["no", "false", [], 0.5, "yes"]
METADATA: list[Any] = [
    {1: "a"},
    {"a": object()},
    {"a": float("nan")},
    {"a": 10**5000},
    "not a mapping",
    ["x"],
    {"a": b"x"},
    {"a": "\ud800"},
]
DATES: list[Any] = ["2026-13-01", 10**30, "x", datetime(1800, 1, 1, tzinfo=UTC), b"2026-01-01"]
TTLS: list[Any] = [10**30, -1, timedelta.max, "forever", float("nan"), timedelta(days=-1), [1]]
NAMES: list[Any] = ["nope", 5, None, ["api"], {"a": 1}, "\ud800", ""]


def _calls() -> Iterator[tuple[str, Callable[[Limitr], Any]]]:
    """(label, call) for every bad value in every argument position the corpus covers."""

    def each(
        label: str, values: list[Any], make: Callable[[Any], Callable[[Limitr], Any]]
    ) -> Iterator[tuple[str, Callable[[Limitr], Any]]]:
        for i, v in enumerate(values):
            yield f"{label}[{i}:{type(v).__name__}]", make(v)

    id_methods: dict[str, Callable[[Limitr, Any], Any]] = {
        "allow": lambda p, v: p.allow(v, "api", 1),
        "track": lambda p, v: p.track(v, "api", 1),
        "check": lambda p, v: p.check(v, "api", 1),
        "explain": lambda p, v: p.explain(v, "api", 1),
        "reserve": lambda p, v: p.reserve(v, "api", 1),
        "settle": lambda p, v: p.settle(v, "api", "h", 1),
        "release": lambda p, v: p.release(v, "api", "h"),
        "value": lambda p, v: p.value(v, "api"),
        "create_customer": lambda p, v: p.create_customer(v),
        "delete_customer": lambda p, v: p.delete_customer(v),
        "grant": lambda p, v: p.grant(v, "usd_unit", 1),
        "override": lambda p, v: p.create_customer_override(v, "api", value=9),
        "cap": lambda p, v: p.add_customer_cap(v, 10),
        "feature": lambda p, v: p.set_feature_config(v, "gpu", overage="block"),
        "overage_limit": lambda p, v: p.set_overage_limit(v, max_overage_amount=100),
        "controls": lambda p, v: p.update_billing_controls(v, overage_allowed=[]),
        "add_entity": lambda p, v: p.add_entity(v, "e1", feature="seats"),
        "plan": lambda p, v: p.set_customer_plan(v, "pro"),
        "refs": lambda p, v: p.set_customer_refs(v, []),
        "alt": lambda p, v: p.set_alt_customer_id(v, "alt-1"),
        "topup": lambda p, v: p.apply_customer_topup(v, "boost"),
        "invoice": lambda p, v: p.invoice(v),
        "customer": lambda p, v: p.customer(v),
    }
    for name, call in id_methods.items():
        yield from each(f"{name}.id", IDS, lambda v, call=call: lambda p: call(p, v))
    for label, values, call in [
        ("allow.value", QUANTITIES, lambda p, v: p.allow("alice", "gpu", v)),
        ("track.value", QUANTITIES, lambda p, v: p.track("alice", "gpu", v)),
        ("reserve.value", QUANTITIES, lambda p, v: p.reserve("alice", "gpu", v)),
        ("settle.value", QUANTITIES, lambda p, v: p.settle("alice", "gpu", "h", v)),
        ("grant.value", QUANTITIES, lambda p, v: p.grant("alice", "usd_unit", v)),
        ("override.value", QUANTITIES, lambda p, v: p.create_customer_override("alice", "api", value=v)),
        ("cap.value", QUANTITIES, lambda p, v: p.add_customer_cap("alice", v)),
        ("overage_limit.amount", QUANTITIES, lambda p, v: p.set_overage_limit("alice", max_overage_amount=v)),
        ("feature.max_units", QUANTITIES, lambda p, v: p.set_feature_config("alice", "gpu", max_overage_units=v)),
        # an unknown but well-formed entitlement or credit is Limitr's False / None, not an error
        ("allow.entitlement", NAMES[1:], lambda p, v: p.allow("alice", v, 1)),
        ("grant.credit", NAMES[1:], lambda p, v: p.grant("alice", v, 1)),
        ("create.plan", NAMES[:-1], lambda p, v: p.create_customer("bob", plan=v)),  # "" is the default plan
        ("topup.name", NAMES[1:], lambda p, v: p.apply_customer_topup("alice", v)),
        ("create.label", TEXTS, lambda p, v: p.create_customer("bob", label=v)),
        ("create.type", TEXTS, lambda p, v: p.create_customer("bob", type=v)),
        ("create.metadata", METADATA, lambda p, v: p.create_customer("bob", metadata=v)),
        ("create.refs", [5, "alice", [5], ["a:b"], [None]], lambda p, v: p.create_customer("bob", refs=v)),
        ("create.alt_ids", [5, [5], ["a:b"], ["\ud800"]], lambda p, v: p.create_customer("bob", alt_ids=v)),
        ("grant.metadata", METADATA, lambda p, v: p.grant("alice", "usd_unit", 1, metadata=v)),
        ("grant.expires_on", DATES, lambda p, v: p.grant("alice", "usd_unit", 1, expires_on=v)),
        ("grant.grant_id", IDS[:-6], lambda p, v: p.grant("alice", "usd_unit", 1, grant_id=v)),
        ("override.resets", FLAGS, lambda p, v: p.create_customer_override("alice", "api", value=5, resets=v)),
        ("override.expires", DATES, lambda p, v: p.create_customer_override("alice", "api", value=5, expires=v)),
        ("override.mode", ["nope", 5, b"hard"], lambda p, v: p.create_customer_override("alice", "api", mode=v)),
        ("cap.flags", FLAGS, lambda p, v: p.add_customer_cap("alice", 10, overage_only=v)),
        ("cap.cap_id", [*IDS[:-6], {"a"}, []], lambda p, v: p.add_customer_cap("alice", 10, cap_id=v)),
        ("cap.credit", NAMES[1:], lambda p, v: p.add_customer_cap("alice", 10, credit=v)),
        ("reserve.ttl", TTLS, lambda p, v: p.reserve("alice", "gpu", 1, ttl=v)),
        ("reserve.segment", [5, b"x", ["x"], "\ud800"], lambda p, v: p.reserve("alice", "gpu", 1, segment=v)),
        ("allow.idempotency_key", IDS[:-6], lambda p, v: p.allow("alice", "gpu", 1, idempotency_key=v)),
        ("allow.force", FLAGS, lambda p, v: p.allow("alice", "gpu", 1, force=v)),
        ("allow.cap", [5, {"nope": 1}, {"usd_unit": "x"}, "\ud800"], lambda p, v: p.allow("alice", "gpu", 1, cap=v)),
        ("feature.overage", ["sometimes", 5, True], lambda p, v: p.set_feature_config("alice", "gpu", overage=v)),
        (
            "controls.spend_limits",
            [5, [5], [{"bogus": 1}], [{"amount": 10**5000}]],
            lambda p, v: p.update_billing_controls("alice", spend_limits=v),
        ),
        (
            "controls.usage_limits",
            [5, [{"feature_id": "gpu", "limit": "x"}]],
            lambda p, v: p.update_billing_controls("alice", usage_limits=v),
        ),
        ("add_entity.metadata", METADATA, lambda p, v: p.add_entity("alice", "e1", feature="seats", metadata=v)),
        ("add_entity.entity_id", IDS, lambda p, v: p.add_entity("alice", v, feature="seats")),
        ("refs.refs", [5, [5], ["a:b"], "alice"], lambda p, v: p.set_customer_refs("alice", v)),
        ("alt.alt", IDS, lambda p, v: p.set_alt_customer_id("alice", v)),
        ("plan.overwrite", FLAGS, lambda p, v: p.set_customer_plan("alice", "pro", overwrite_meters=v)),
        (
            "invoice.period",
            ["someday", 5, b"current", datetime(1800, 1, 1, tzinfo=UTC)],
            lambda p, v: p.invoice("alice", period=v),
        ),
        (
            "load_customers",
            [None, 5, "x", [5], [{"id": "a:b"}], [{"id": "z", "plan": 5}]],
            lambda p, v: p.load_customers(v),
        ),
        ("set_customer", [None, 5, {}, {"id": "\ud800"}, {"id": "z", "meters": 5}], lambda p, v: p.set_customer(v)),
        ("local_margin_breakdown", [5, None, "x", {"api": "abc"}], lambda p, v: p.local_margin_breakdown("main", v)),
        ("local_margin_breakdown.scaled", FLAGS, lambda p, v: p.local_margin_breakdown("main", {"api": 1}, scaled=v)),
        ("value.percent", FLAGS, lambda p, v: p.value("alice", "api", percent=v)),
        ("remaining.grants", FLAGS, lambda p, v: p.remaining("alice", "api", grants=v)),
        ("limit.grants", FLAGS, lambda p, v: p.limit("alice", "api", grants=v)),
        ("allowance.grants", FLAGS, lambda p, v: p.allowance("alice", "api", grants=v)),
        ("projected_exhaustion.smoothed", FLAGS, lambda p, v: p.projected_exhaustion("alice", "gpu", smoothed=v)),
        ("estimate.quantile", [5, 0, -1, "nan", "1.5", True], lambda p, v: p.estimate("alice", "gpu", quantile=v)),
        ("reserve.quantile", [5, 0, "2"], lambda p, v: p.reserve("alice", "gpu", quantile=v)),
        ("deliver_pending.limit", [10**30, -1, 0, 1.5, True, "10"], lambda p, v: p.deliver_pending(v)),
        ("on.name", ["meter-overages", 5, None, ["*"]], lambda p, v: p.on(v, print)),
        ("off.name", ["meter-overages", 5, None], lambda p, v: p.off(v)),
    ]:
        yield from each(label, values, lambda v, call=call: lambda p: call(p, v))


CORPUS = list(_calls())


@pytest.fixture
def seeded(engines: Engines) -> Limitr:
    policy = engines.adopt(Limitr.new(DOC, clock=ManualClock(START), store=engines.url()))  # a fresh namespace
    policy.create_customer("alice", alt_ids=["alice-alt"], metadata={"tier": "gold"})
    policy.create_customer("carol", refs=["alice"])
    assert policy.allow("alice", "api", 2) and policy.allow("alice", "gpu", 7)
    policy.grant("alice", "usd_unit", 3, grant_id="promo")
    policy.add_customer_cap("alice", 100, cap_id="spend")
    assert policy.reserve("alice", "gpu", 2) is not None
    return policy


def test_every_bad_argument_is_refused_and_changes_nothing(seeded: Limitr) -> None:
    before = seeded.customers()
    assert before, "the seeded customers are exported"
    failures = []
    for label, call in CORPUS:
        try:
            call(seeded)
            failures.append(f"{label}: accepted")
        except InvalidArgumentError as exc:
            if "\n" in str(exc) or not str(exc):
                failures.append(f"{label}: message is not one line: {str(exc)!r}")
        except Exception as exc:
            failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:120]}")
        after = seeded.customers()
        if after != before:
            failures.append(f"{label}: the export changed")
            before = after
    assert failures == [], "\n".join(failures)
    assert len(CORPUS) > 400
