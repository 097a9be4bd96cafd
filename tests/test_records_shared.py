"""The encoding memo of store commits: what it reuses is what a fresh encoding gives, and a break of the rule
it rests on (a state object changed after it was encoded) is caught, not written."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import pytest

from limitr_py import Limitr
from limitr_py.engine import keys, records

DOC = {
    "policy": {
        "credits": {"tok": {"price": {"amount": 0.001}}},
        "plans": {
            "p": {
                "default": True,
                "entitlements": {
                    f"e{i}": {
                        "limit": {"credit": "tok", "value": 1000, "mode": "soft", "resets": True, "reset_inc": "1day"}
                    }
                    for i in range(20)
                },
            }
        },
    }
}


def test_a_committed_record_equals_a_fresh_encoding(tmp_path: Path) -> None:
    engine = Limitr.new(DOC, store=f"sqlite:///{tmp_path}/s.db")
    me = f"c{uuid.uuid4().hex[:8]}"
    engine.create_customer(me)
    assert engine.add_customer_cap(me, 10_000, cap_id="spend", credit="tok") is not None
    assert engine.grant(me, "tok", 5) is not None
    for round_ in range(3):
        for i in range(20):
            assert engine.allow(me, f"e{i}", round_ + 1)
    state = engine.customer_state(me)
    engine.close()
    # the text the commits wrote (each reusing the 19 meters the call did not change), against a fresh encoding
    # of the state the engine holds
    with sqlite3.connect(tmp_path / "s.db") as db:
        (text,) = db.execute("SELECT value FROM limitr_records WHERE key = ?", (keys.customer(me),)).fetchone()
    written = json.loads(text)
    assert state is not None and written == records.customer_record(state)
    assert {m["value"] for m in written["meters"].values()} == {"6"}  # 1 + 2 + 3 on each of the 20 meters


def test_a_state_object_changed_after_it_was_encoded_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Limitr.new(DOC)
    engine.create_customer("u")
    engine.allow("u", "e0", 1)
    state = engine.customer_state("u")
    assert state is not None
    records.customer_record(state, shared=True)  # remembered
    meter = state.meters["e0"]
    meter.value += 1  # what the engine never does: change a state object in place
    monkeypatch.setattr(records, "VERIFY_SHARED", True)
    with pytest.raises(AssertionError, match="MeterState changed after it was encoded"):
        records.customer_record(state, shared=True)
    monkeypatch.setattr(records, "VERIFY_SHARED", False)
    stale = records.customer_record(state, shared=True)["meters"]["e0"]["value"]
    assert stale == "1" and records.customer_record(state)["meters"]["e0"]["value"] == "2"


def test_a_detached_state_can_be_changed_without_changing_anything_stored() -> None:
    """The engine shares the tables it never changes in place (one empty mapping, one empty billing state for all
    customers); `customer_state()` hands out copies a caller may change freely."""
    engine = Limitr.new(DOC)
    engine.create_customer("u")
    engine.create_customer("v")
    engine.allow("u", "e0", 1)
    mine = engine.customer_state("u")
    assert mine is not None
    mine.caps["x"] = mine.caps.get("x")  # type: ignore[index, assignment]
    mine.billing.windows["w"] = mine.billing.windows.get("w")  # type: ignore[assignment]
    mine.meters["e0"].holds["h"] = mine.meters["e0"].holds.get("h")  # type: ignore[index, assignment]
    mine.metadata["k"] = 1  # type: ignore[index]
    for ident in ("u", "v"):
        stored = engine.customer_state(ident)
        assert stored is not None
        assert not stored.caps and not stored.billing.windows and not stored.metadata
        assert all(not m.holds for m in stored.meters.values())


def test_the_written_out_meter_encoding_is_the_generic_one() -> None:
    """`meter_record` spells out what `encode` derives from MeterState's fields: the same object for empty,
    full and partly filled meters (a field added to MeterState and not to meter_record fails here)."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from limitr_py.engine.state import EstimateState, Hold, MeterState

    at = datetime(2026, 12, 4, 12, 30, 0, 123456, tzinfo=UTC)
    meters = [
        MeterState("tok", None),
        MeterState("tok", at, Decimal("12.5"), Decimal("0.000003"), ((at, Decimal(1)), (at, Decimal("2.25")))),
        MeterState(
            "tok",
            at,
            Decimal("1E+3"),
            Decimal("-4"),
            (),
            Decimal("0.0000123456789012345678901234567"),
            Decimal("7.50"),
            at,
            {"h1": Hold(Decimal(5), Decimal("0.01"), at, Decimal(2), "sonnet")},
            {"sonnet": EstimateState(3, Decimal("0.2"), True, Decimal("1.5"), Decimal("0.25"))},
            Decimal("0.300"),
            Decimal("0.1"),
            Decimal(3),
        ),
    ]
    for meter in meters:
        assert records.meter_record(meter) == records.encode(meter)


def test_evolve_builds_what_dataclasses_replace_builds() -> None:
    """`state.evolve`, the hot path's replace: the same object as `dataclasses.replace` for caps, grants, spends
    and limits, the original untouched, an unknown field refused."""
    import dataclasses
    from datetime import UTC, datetime
    from decimal import Decimal

    from limitr_py.compile.graph import Limit
    from limitr_py.engine.caps import Spend
    from limitr_py.engine.state import Cap, Grant, evolve

    at = datetime(2026, 12, 4, tzinfo=UTC)
    cap = Cap("monthly", Decimal(100), overage_only=True, meter_value=Decimal(3))
    grant = Grant("g1", "usd", Decimal(5), Decimal(10), at, at, metadata={"why": "promo"})
    spend = Spend(Decimal(1), Decimal(0), Decimal(0), Decimal(-5), Decimal(0), Decimal(0), Decimal(0))
    limit = Limit("tok", "hard", Decimal(10))
    cases = [
        (cap, {"meter_value": Decimal(7), "last_reset": at}),
        (grant, {"value": Decimal(0)}),
        (spend, {"covered": Decimal(2)}),
        (limit, {"mode": "soft"}),
    ]
    for original, changes in cases:
        before = dataclasses.replace(original)
        made = evolve(original, **changes)
        assert made == dataclasses.replace(original, **changes) and type(made) is type(original)
        assert original == before  # untouched
    with pytest.raises(TypeError, match="no field 'colour'"):
        evolve(cap, colour="red")


def test_json_text_writes_what_the_standard_library_writes() -> None:
    """orjson's text (records, answers, simulate's report) is json.dumps' own, with the standard library taking
    over for what orjson refuses (an int past 64 bits)."""
    from limitr_py import json_text

    value = {"a": [1, {"b": "é ✓", "c": []}], "d": {}, "e": None, "f": True, "g": "x\ny\u2028", "h": -(2**63)}
    assert json_text.dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert json_text.pretty(value) == json.dumps(value, indent=2, ensure_ascii=False)
    huge = {"n": 10**30, "m": [2**64]}
    assert json_text.dumps(huge) == json.dumps(huge, separators=(",", ":"))
    assert json_text.pretty(huge) == json.dumps(huge, indent=2)
    assert json_text.encoded(value) == json_text.dumps(value).encode("utf-8")
