"""The JSON Schema: draft 2020-12, the two validators agree, and its defaults match the compiled defaults."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from limitr_py.compile import load_policy
from limitr_py.documents import load_document
from limitr_py.errors import PolicySyntaxError
from limitr_py.schema import is_valid_fast, policy_schema
from tests.conftest import SAMPLES

REFERENCE = Draft202012Validator(policy_schema())
FILES = sorted(p for p in SAMPLES.rglob("*") if p.is_file() and not p.name.endswith(".expected"))


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(policy_schema())
    assert policy_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_fast_validator_is_available() -> None:
    assert is_valid_fast({"policy": {}}) is True


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SAMPLES)))
def test_both_validators_agree_on_every_sample_and_corpus_file(path: Path) -> None:
    try:
        tree = load_document(path).tree
    except PolicySyntaxError:
        return  # not a document: nothing to validate
    assert is_valid_fast(tree) == REFERENCE.is_valid(tree)


FIELD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.text(max_size=8),
    st.sampled_from(["1GB", "30days", "monthly:1", "soft", "tiered", "-1", "12 apples"]),
    st.decimals(min_value=-10, max_value=10, places=3, allow_nan=False),
)
LIMIT_KEYS = ["credit", "mode", "value", "increment", "resets", "reset_inc", "reset_sch", "ewma_alpha", "bogus"]


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(LIMIT_KEYS), FIELD_VALUES, max_size=5),
    st.dictionaries(
        st.sampled_from(["pricing_model", "price", "overhead_cost", "stof_units", "x"]), FIELD_VALUES, max_size=3
    ),
)
def test_both_validators_agree_on_random_policies(limit: dict[str, Any], credit: dict[str, Any]) -> None:
    tree = {"policy": {"credits": {"c": credit}, "plans": {"p": {"entitlements": {"e": {"limit": limit}}}}}}
    assert is_valid_fast(tree) == REFERENCE.is_valid(tree)


def _schema_default(*path: str) -> Any:
    node: Any = policy_schema()["$defs"]
    for part in path:
        node = node[part] if part in node else node["properties"][part]
    return node["default"]


def test_schema_defaults_are_the_compiled_defaults() -> None:
    p = load_policy(
        {
            "policy": {
                "credits": {"c": {}},
                "plans": {"p": {"entitlements": {"e": {"limit": {"credit": "c"}}}, "topups": {"t": {"credit": "c"}}}},
            }
        }
    )
    limit = p.plans["p"].entitlements["e"].limit
    credit = p.credits["c"]
    assert limit is not None
    assert _schema_default("limit", "mode") == limit.mode
    assert Decimal(_schema_default("limit", "value")) == limit.value
    assert Decimal(_schema_default("limit", "increment")) == limit.increment
    assert Decimal(str(_schema_default("limit", "ewma_alpha"))) == limit.ewma_alpha
    assert _schema_default("limit", "grants_apply") == limit.grants_apply
    assert _schema_default("credit", "pricing_model") == credit.pricing.model
    assert _schema_default("credit", "label") == credit.label
    assert _schema_default("credit", "unit") == credit.unit
    assert _schema_default("topup", "reset_mode") == p.plans["p"].topups["t"].reset_mode
    assert _schema_default("plan", "period") == p.plans["p"].period
    assert _schema_default("plan", "subscription") == p.plans["p"].subscription
    assert _schema_default("exchange", "grant_strategy") == p.exchange.grant_strategy
    assert _schema_default("policy", "currency") == p.currency
    assert _schema_default("policy", "estimate_min_samples") == p.estimate_min_samples
