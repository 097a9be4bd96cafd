"""Compilation: defaults, conversions, semantic checks, immutability, and Limitr.new."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from limitr_py import Limitr, PolicyCompileError, PolicyError, PolicySchemaError, load_policy
from limitr_py.compile.graph import DEFAULT_PERIOD
from tests.conftest import SAMPLES


def policy(**parts: Any) -> dict[str, Any]:
    return {"policy": parts}


def codes(source: Any) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy(source)
    return [d.code for d in info.value.diagnostics]


def test_defaults_follow_limitr() -> None:
    p = load_policy(
        policy(credits={"c": {}}, plans={"p": {"entitlements": {"e": {"limit": {"credit": "c", "resets": True}}}}})
    )
    limit = p.plans["p"].entitlements["e"].limit
    assert limit is not None
    assert (limit.mode, limit.value, limit.increment, limit.grants_apply, limit.ewma_alpha) == (
        "hard",
        0,
        1,
        True,
        Decimal("0.2"),
    )
    assert limit.period == DEFAULT_PERIOD == timedelta(days=30)  # resets with no interval: 30 days
    credit = p.credits["c"]
    assert (credit.unit, credit.label, credit.pricing.model, credit.units) == ("credit", "Credit", "flat", None)
    assert p.hold_ttl == timedelta(minutes=10)
    assert p.estimate_min_samples == 5
    assert p.currency == "USD"
    assert p.exchange.grant_strategy == "expires_first"
    assert p.exchange.pairs["usd"].currency == "rune"  # built in


def test_values_are_converted_to_the_credit_unit() -> None:
    p = load_policy(SAMPLES / "ai_chat_caps" / "policy.yaml")
    limit = p.plans["starter"].entitlements["ai_chat"].limit
    assert limit is not None and limit.value == 16_667 and limit.reset_sch is not None
    assert limit.reset_sch.text == "monthly:1"
    storage = (
        load_policy(
            "policy: { credits: { s: { stof_units: 'MB' } } plans: { p: { entitlements: { e: { limit: "
            "{ credit: 's', value: 10MiB, increment: '250MB', reset_inc: 1day, resets: true } } } } } }",
            format="stof",
        )
        .plans["p"]
        .entitlements["e"]
        .limit
    )
    assert storage is not None
    assert (storage.value, storage.increment, storage.reset_inc) == (Decimal("10.48576"), 250, timedelta(days=1))


def test_tiers_are_sorted_with_the_unbounded_tier_last() -> None:
    p = load_policy(
        policy(
            credits={
                "img": {
                    "pricing_model": "tiered",
                    "tiers": [
                        {"price": {"amount": 0.02}},
                        {"up_to": 1000, "price": {"amount": 0.03}},
                        {"up_to": 100, "price": {"amount": 0.04}},
                    ],
                }
            }
        )
    )
    assert [t.up_to for t in p.credits["img"].pricing.tiers] == [100, 1000, None]
    assert [t.amount for t in p.credits["img"].pricing.tiers] == [Decimal("0.04"), Decimal("0.03"), Decimal("0.02")]


def test_owostack_package_and_graduated_overage_compile() -> None:
    p = load_policy(SAMPLES / "owostack_seats_emails" / "policy.toml")
    emails = p.plans["pro"].entitlements["emails"].limit
    assert emails is not None and emails.pricing is not None
    assert (emails.pricing.model, emails.pricing.price, emails.pricing.billing_units) == ("package", 5, 1000)
    assert emails.max_overage == 20_000
    graduated = p.plans["pro_graduated"].entitlements["emails"].limit
    assert graduated is not None and graduated.pricing is not None
    assert [(t.up_to, t.amount) for t in graduated.pricing.tiers] == [(5000, Decimal("0.08")), (None, Decimal("0.05"))]
    assert p.plans["pro"].price == 30


def test_the_graph_is_immutable() -> None:
    p = load_policy(SAMPLES / "lumen_api_quota" / "policy.json")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.currency = "EUR"  # type: ignore[misc]
    with pytest.raises(TypeError):
        p.plans["new"] = p.plans["api_pro"]  # type: ignore[index]
    with pytest.raises(TypeError):
        p.plans["api_pro"].entitlements["x"] = None  # type: ignore[index]


def test_schema_and_semantic_problems_are_reported_together() -> None:
    doc = policy(
        credits={"c": {"overhead_cost": "cheap"}},
        plans={"p": {"entitlements": {"e": {"limit": {"credit": "nope", "mode": "soft", "hard_trailing": True}}}}},
    )
    with pytest.raises(PolicySchemaError) as info:
        load_policy(doc)
    assert sorted(d.code for d in info.value.diagnostics) == ["L202", "L301", "L308"]


def test_semantic_only_problems_raise_compile_error() -> None:
    with pytest.raises(PolicyCompileError):
        load_policy(policy(plans={"p": {"entitlements": {"e": {"limit": {"credit": "missing"}}}}}))


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (policy(credits={"c": {"pricing_model": "volume"}}), ["L302"]),
        (policy(credits={"c": {"pricing_model": "flat", "tiers": [{"price": {"amount": 1}}]}}), ["L302"]),
        (
            policy(
                credits={
                    "c": {"pricing_model": "tiered", "tiers": [{"price": {"amount": 1}}, {"price": {"amount": 2}}]}
                }
            ),
            ["L303"],
        ),
        (
            policy(
                credits={
                    "c": {
                        "pricing_model": "tiered",
                        "tiers": [
                            {"up_to": 5, "price": {"amount": 1}},
                            {"up_to": 5, "price": {"amount": 1}},
                            {"price": {"amount": 2}},
                        ],
                    }
                }
            ),
            ["L303"],
        ),
        (policy(credits={"c": {"price": {"amount": 1}, "billing_units": 10}}), ["L314"]),
        (policy(credits={"c": {"stof_units": "Mb"}}), ["L309"]),
        (policy(exchange={"a": {"currency": "b"}, "b": {"currency": "a"}}), ["L304", "L304"]),
        (policy(credits={"free": {}}, exchange={"x": {"currency": "free"}}), ["L304"]),  # unpriced credit
        (policy(notifications={"n": {"events": ["meter-overage"], "when": "a ="}}), ["L311"]),
        (policy(hold_ttl="0s"), ["L312"]),
        (
            policy(credits={"c": {}}, plans={"p": {"topups": {"t": {"credit": "c", "expires_after": "-1day"}}}}),
            ["L312"],
        ),
    ],
)
def test_semantic_checks(doc: dict[str, Any], expected: list[str]) -> None:
    assert codes(doc) == expected


def test_exchange_chains_through_pairs_and_priced_credits() -> None:
    p = load_policy(
        policy(
            credits={"tok": {"price": {"amount": 0.00002}}},
            exchange={
                "euro": {"value": 1.14, "currency": "usd"},
                "partner": {"value": 0.5, "currency": "tok"},
                "gold": {"value": 10, "currency": "euro"},
            },
        )
    )
    assert p.exchange.pairs["gold"].currency == "euro"


def test_limitr_new_accepts_every_source_kind() -> None:
    path = SAMPLES / "autumn_credit_system" / "policy.stof"
    mapping = json.loads((SAMPLES / "autumn_credit_system" / "policy.json").read_text())
    prints = {
        Limitr.new(path).fingerprint,
        Limitr.new(path.read_text()).fingerprint,
        Limitr.new(path.read_bytes()).fingerprint,
        Limitr.new(path.read_text(), format="stof").fingerprint,
        Limitr.new(mapping).fingerprint,
    }
    assert len(prints) == 1
    assert Limitr.new(path).policy.plans["growth"].topups["monthly_credits"].included is True


def test_limitr_new_without_schema_pass_still_checks_semantics() -> None:
    assert Limitr.new(SAMPLES / "lumen_api_quota" / "policy.json", validate=False).currency == "USD"
    with pytest.raises(PolicyCompileError):
        Limitr.new(policy(plans={"p": {"entitlements": {"e": {"limit": {"credit": "missing"}}}}}), validate=False)


def test_a_limit_without_a_credit_is_a_missing_field_not_an_unknown_credit() -> None:
    # before: "a credit named `` does not exist in this policy" (L301)
    with pytest.raises(PolicyError) as refused:
        load_policy(
            {"policy": {"credits": {"c": {}}, "plans": {"p": {"entitlements": {"e": {"limit": {"value": 5}}}}}}}
        )
    assert [(d.code, d.message) for d in refused.value.diagnostics] == [("L205", "missing required field `credit`")]
    assert "`c`" in (refused.value.diagnostics[0].hint or "")


def test_a_str_that_names_a_policy_file_is_refused_with_a_hint_to_pass_a_path() -> None:
    from tests.conftest import SAMPLES

    path = SAMPLES / "ai_chat_caps" / "policy.yaml"
    with pytest.raises(PolicyError) as refused:
        load_policy(str(path))
    assert "is a file name" in refused.value.diagnostics[0].message
    assert "Path(" in (refused.value.diagnostics[0].hint or "")
    assert load_policy(path).fingerprint  # the Path reads the file
