"""Numbers are bounded at the edge and the arithmetic inside the bound is exact (issue 10, items 6 and 7, and the
Decimal-context finding).

The range (limitr_py/bounds.py): |x| < 10^30 with at most 30 digits after the point. `1e999999999` is 15 bytes
of text and a billion digits as an integer: before the bound it hung the fingerprint (documents), the meter
(calls) and the decoder (stored records).
"""

from __future__ import annotations

import decimal
import time
from decimal import Decimal as D
from typing import Any

import pytest

from limitr_py import InvalidArgumentError, Limitr, StoreError
from limitr_py.compile import load_policy
from limitr_py.errors import PolicyError
from tests.engine_helpers import Engines, limit, policy

HUGE = ["1e999999999", "1e1000000", "-1e999999999", "1e30", "1e-31", "1" * 5000]

TEMPLATES = {
    "json": '{"policy": {"credits": {"unit": {}}, "plans": {"p": {"default": true, "entitlements": '
    '{"a": {"limit": {"credit": "unit", "value": %s}}}}}}}',
    "yaml": "policy:\n  credits: {unit: {}}\n  plans:\n    p:\n      default: true\n      entitlements:\n"
    "        a: {limit: {credit: unit, value: %s}}\n",
    "toml": "[policy.credits.unit]\n[policy.plans.p]\ndefault = true\n"
    '[policy.plans.p.entitlements.a.limit]\ncredit = "unit"\nvalue = %s\n',
    "stof": "policy: { credits: { unit: {} } plans: { p: { default: true entitlements: "
    "{ a: { limit: { credit: 'unit' value: %s } } } } } }",
}


@pytest.mark.parametrize("fmt", list(TEMPLATES))
@pytest.mark.parametrize("number", HUGE)
def test_a_number_out_of_range_in_any_format_is_l204_at_once(fmt: str, number: str) -> None:
    text = TEMPLATES[fmt] % number
    started = time.perf_counter()
    with pytest.raises(PolicyError) as caught:
        load_policy(text, format=fmt)
    assert time.perf_counter() - started < 5, "a refusal must not expand the number"  # generous: hangs were ∞
    codes = {d.code for d in caught.value.diagnostics}
    assert codes <= {"L204", "L101"}, caught.value.diagnostics
    assert all(d.line >= 1 and d.col >= 1 for d in caught.value.diagnostics)


def test_the_range_diagnostic_points_at_the_number() -> None:
    text = TEMPLATES["json"] % "1e999999999"
    with pytest.raises(PolicyError) as caught:
        load_policy(text, format="json")
    [d] = caught.value.diagnostics
    assert d.code == "L204" and d.pointer == "/policy/plans/p/entitlements/a/limit/value"
    assert text[d.col - 1 :].startswith("1e999999999") and "10^30" in d.message


def test_an_in_memory_document_with_a_huge_number_or_a_cycle_is_a_policy_error() -> None:
    doc: dict[str, Any] = {
        "policy": {
            "credits": {"unit": {}},
            "plans": {"p": {"default": True, "entitlements": {"a": {"limit": {"credit": "unit", "value": 10**5000}}}}},
        }
    }
    with pytest.raises(PolicyError, match="out of range"):
        Limitr.new(doc)
    with pytest.raises(PolicyError, match="out of range"):
        Limitr.new(doc, validate=False)
    cyclic: dict[str, Any] = {"policy": {}}
    cyclic["policy"]["self"] = cyclic
    with pytest.raises(PolicyError, match="nested deeper"):
        Limitr.new(cyclic)
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(PolicyError, match="nested deeper"):
        Limitr.new({"policy": deep})


@pytest.mark.parametrize(
    "value",
    [*HUGE, 10**5000, D("1e999999999"), D("Infinity"), float("inf"), "Infinity"],
    ids=lambda v: f"{type(v).__name__}:{str(v)[:12] if not isinstance(v, int) else 'huge'}",
)
def test_a_number_out_of_range_in_a_call_is_invalid_argument(engines: Engines, value: Any) -> None:
    e, _ = engines.policy({"a": limit(100, mode="soft")})
    e.create_customer("u")
    before = e.customers()
    for call in (
        lambda: e.allow("u", "a", value),
        lambda: e.track("u", "a", value),
        lambda: e.grant("u", "unit", value),
        lambda: e.add_customer_cap("u", value),
        lambda: e.reserve("u", "a", value),
        lambda: e.check("u", "a", value),
    ):
        with pytest.raises(InvalidArgumentError, match=r"range|finite|number"):
            call()
    assert e.customers() == before


def test_the_largest_and_finest_numbers_in_range_are_exact(engines: Engines) -> None:
    # 28 significant digits (Python's default context) would round both sums below; the engine's does not
    e, _ = engines.policy({"a": limit("1e29", mode="soft")})
    e.create_customer("u")
    assert e.allow("u", "a", "99999999999999999999999999999")  # 29 nines: the largest integer in range
    assert e.allow("u", "a", "0.000000000000000000000000000001")  # 10^-30: the finest step in range
    assert e.value("u", "a") == D("99999999999999999999999999999.000000000000000000000000000001")
    e2, _ = engines.policy({"a": limit("1e28", mode="soft")})
    e2.create_customer("u")
    assert e2.track("u", "a", "1e28")
    for _ in range(1000):
        e2.track("u", "a", 1, event=False)
    assert e2.value("u", "a") == D("1e28") + 1000


def test_the_callers_decimal_context_is_neither_used_nor_changed() -> None:
    e, _ = policy({"a": limit(100, mode="soft")})
    e.create_customer("u")
    with decimal.localcontext(decimal.Context(prec=3)) as ctx:
        assert e.track("u", "a", "1.2345")
        assert e.track("u", "a", "1.2345")
        assert e.value("u", "a") == D("2.4690")
        assert decimal.getcontext() is ctx and ctx.prec == 3


def test_a_stored_number_out_of_range_is_a_store_error(tmp_path: Any) -> None:
    import sqlite3

    path = tmp_path / "s.db"
    e, _ = policy({"a": limit(100)}, store=f"sqlite:///{path}")
    e.create_customer("u")
    e.allow("u", "a", 1)
    with sqlite3.connect(path) as conn:
        (text,) = conn.execute("SELECT value FROM limitr_records WHERE key = 'customer:u'").fetchone()
        assert '"value":"1"' in text
        conn.execute(
            "UPDATE limitr_records SET value = ?, version = version + 1 WHERE key = 'customer:u'",
            (text.replace('"value":"1"', '"value":"1e999999999"'),),
        )
    started = time.perf_counter()
    with pytest.raises(StoreError, match="corrupt record `customer:u`"):
        e.allow("u", "a", 1)
    assert time.perf_counter() - started < 5
    e.close()
