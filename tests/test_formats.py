"""One policy, four formats: the same tree and the same fingerprint, whichever format it was written in."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from limitr_py.compile import compile_document, load_policy
from limitr_py.documents import FORMATS, load_document
from limitr_py.documents.writers import dump
from tests.conftest import SAMPLES, SCENARIOS


def test_each_seed_has_a_sample_in_every_format() -> None:
    assert set(SCENARIOS) == {"ai_chat_caps", "owostack_seats_emails", "lumen_api_quota", "autumn_credit_system"}
    for scenario in SCENARIOS:
        assert {p.suffix for p in (SAMPLES / scenario).iterdir()} == {".json", ".yaml", ".toml", ".stof"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_sample_compiles_to_one_fingerprint_from_every_format(scenario: str) -> None:
    prints = {p.suffix: load_policy(p).fingerprint for p in (SAMPLES / scenario).iterdir()}
    assert len(set(prints.values())) == 1, prints


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("target", FORMATS)
def test_sample_converts_to_every_format_losslessly(scenario: str, target: str) -> None:
    doc = load_document(SAMPLES / scenario / "policy.stof")
    again = load_document(dump(doc.tree, target), format=target)
    assert compile_document(again).fingerprint == compile_document(doc).fingerprint


def test_fingerprint_changes_when_a_price_changes() -> None:
    path = SAMPLES / "lumen_api_quota" / "policy.json"
    original = load_policy(path)
    changed = load_policy(path.read_text().replace('"amount": 0.05', '"amount": 0.06'), format="json")
    assert original.fingerprint != changed.fingerprint


def test_explicit_defaults_and_nulls_do_not_change_the_fingerprint() -> None:
    bare = {"policy": {"credits": {"c": {}}, "plans": {"p": {"entitlements": {"e": {"limit": {"credit": "c"}}}}}}}
    spelled = {
        "policy": {
            "currency": "USD",
            "hold_ttl": "10min",
            "credits": {
                "c": {
                    "unit": "credit",
                    "label": "Credit",
                    "pricing_model": "flat",
                    "price": None,
                    "stof_units": "float",
                }
            },
            "plans": {
                "p": {
                    "period": "monthly",
                    "entitlements": {
                        "e": {
                            "limit": {
                                "credit": "c",
                                "mode": "hard",
                                "value": 0,
                                "increment": 1,
                                "minimum": None,
                                "grants_apply": True,
                            }
                        }
                    },
                }
            },
        }
    }
    assert load_policy(bare).fingerprint == load_policy(spelled).fingerprint


def test_units_and_numbers_compare_by_value_not_spelling() -> None:
    a = load_policy(
        "policy: { credits: { s: { stof_units: 'MB' } } plans: { p: { entitlements: { e: "
        "{ limit: { credit: 's', value: 1GB, reset_inc: 1day, resets: true } } } } } }",
        format="stof",
    )
    b = load_policy(
        {
            "policy": {
                "credits": {"s": {"stof_units": "MB"}},
                "plans": {
                    "p": {
                        "entitlements": {
                            "e": {"limit": {"credit": "s", "value": "1000MB", "reset_inc": 86_400_000, "resets": True}}
                        }
                    }
                },
            }
        }
    )
    assert a.fingerprint == b.fingerprint
    assert a.plans["p"].entitlements["e"].limit.value == Decimal(1000)  # type: ignore[union-attr]


# -- property: random valid policies survive every writer and reader -----------------------------------------

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
AMOUNTS = st.decimals(min_value=0, max_value=10_000, places=6, allow_nan=False, allow_infinity=False)
UNITS = {"float": [""], "MB": ["", "MB", "GB", "KiB"], "s": ["", "s", "ms", "min", "days"]}


@st.composite
def quantities(draw: st.DrawFn, units: str) -> Any:
    amount = draw(st.integers(min_value=0, max_value=10**9))
    suffix = draw(st.sampled_from(UNITS[units]))
    return f"{amount}{suffix}" if suffix else draw(st.sampled_from([amount, Decimal(amount)]))


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    credits: dict[str, Any] = {}
    for name in draw(st.lists(NAMES, min_size=1, max_size=4, unique=True)):
        credit: dict[str, Any] = {"label": draw(TEXT), "stof_units": draw(st.sampled_from(list(UNITS)))}
        if draw(st.booleans()):
            bounds = sorted(draw(st.lists(st.integers(1, 10**6), max_size=3, unique=True)))
            credit["pricing_model"] = draw(st.sampled_from(["tiered", "volume", "stairstep"]))
            credit["tiers"] = [{"up_to": b, "price": {"amount": draw(AMOUNTS)}} for b in bounds] + [
                {"up_to": None, "price": {"amount": draw(AMOUNTS)}}
            ]
        elif draw(st.booleans()):
            credit["price"] = {"amount": draw(AMOUNTS)}
        credits[name] = credit
    plans: dict[str, Any] = {}
    for plan_name in draw(st.lists(NAMES, min_size=1, max_size=3, unique=True)):
        entitlements: dict[str, Any] = {}
        for ent in draw(st.lists(NAMES, max_size=4, unique=True)):
            if draw(st.booleans()):
                entitlements[ent] = {}
                continue
            credit_name = draw(st.sampled_from(sorted(credits)))
            limit: dict[str, Any] = {
                "credit": credit_name,
                "mode": draw(st.sampled_from(["hard", "soft", "observe"])),
                "value": draw(quantities(credits[credit_name]["stof_units"])),
                "minimum": None,
            }
            if draw(st.booleans()):
                limit["resets"] = True
                if draw(st.booleans()):
                    limit["reset_sch"] = draw(st.sampled_from(["monthly:1", "weekly:mon", "cron:0 0 * * 1"]))
                else:
                    limit["reset_inc"] = draw(st.sampled_from(["30days", 86_400_000, "1s"]))
            entitlements[ent] = {"description": draw(TEXT), "limit": limit}
        plans[plan_name] = {"label": draw(TEXT), "default": draw(st.booleans()), "entitlements": entitlements}
    return {"policy": {"credits": credits, "plans": plans}}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies())
def test_random_policies_round_trip_through_every_format(tree: dict[str, Any]) -> None:
    original = load_policy(tree)
    for fmt in FORMATS:
        doc = load_document(dump(tree, fmt), format=fmt)
        assert compile_document(doc).fingerprint == original.fingerprint, fmt
        if fmt != "toml":  # TOML has no null: null fields are left out (same policy, different tree)
            assert doc.tree == tree, fmt


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | TEXT
    | st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=-(10**9), max_value=10**9),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(TEXT, JSON_VALUES, max_size=5))
@example({"A\n": None})  # found by hypothesis: a key ending in a newline was written bare and lost it
def test_random_trees_round_trip_through_json_yaml_and_stof(tree: dict[str, Any]) -> None:
    for fmt in ("json", "yaml", "stof"):
        assert load_document(dump(tree, fmt), format=fmt).tree == tree, fmt
