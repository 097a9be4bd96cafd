"""The Limitr fixtures of reference/stof.md §4: data parses to the JSON given there; non-data is refused."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from limitr_py.documents import load_document
from limitr_py.errors import PolicySyntaxError
from limitr_py.units import format_decimal
from tests.conftest import FIXTURES

DATA = sorted(p.stem for p in (FIXTURES / "stof").glob("F*.stof"))


def test_all_thirteen_data_fixtures_are_present() -> None:
    assert [f"F{i:02d}" for i in range(1, 14)] == DATA


@pytest.mark.parametrize("name", DATA)
def test_data_fixture_parses_to_its_json(name: str) -> None:
    text = (FIXTURES / "stof" / f"{name}.stof").read_text()
    expected = json.loads((FIXTURES / "stof" / f"{name}.json").read_text(), parse_float=Decimal)
    doc = load_document(text, format="stof")
    assert doc.tree == expected
    # key order is source order, as in Stof
    assert json.dumps(doc.tree, default=format_decimal) == json.dumps(expected, default=format_decimal)


@pytest.mark.parametrize("name", DATA)
def test_data_fixture_is_sniffed_as_stof(name: str) -> None:
    text = (FIXTURES / "stof" / f"{name}.stof").read_text()
    assert load_document(text).format == "stof"


@pytest.mark.parametrize(
    ("name", "code", "message", "pointer"),
    [
        ("R01", "L102", "functions are not supported: `fn overhead`", "/policy/credits/ai_token/overhead"),
        ("R02", "L103", "references are not supported", "/Policy/paid/entitlements/free"),
        ("R03", "L102", "functions are not supported: `fn matches`", "/notifications/low_balance/matches"),
        ("R04", "L104", "calls and constructors are not supported: `map(…)`", "/threshold_crossings"),
    ],
)
def test_reject_fixture_names_the_construct(name: str, code: str, message: str, pointer: str) -> None:
    text = (FIXTURES / "stof" / f"{name}.stof").read_text()
    with pytest.raises(PolicySyntaxError) as info:
        load_document(text, format="stof", file=f"{name}.stof")
    (diag,) = info.value.diagnostics
    assert diag.code == code
    assert message in diag.message
    assert diag.pointer == pointer
    assert diag.hint


def test_r01_points_at_the_fn_keyword_with_the_declarative_replacement() -> None:
    text = (FIXTURES / "stof" / "R01.stof").read_text()
    with pytest.raises(PolicySyntaxError) as info:
        load_document(text, format="stof", file="tutorial07.stof")
    (diag,) = info.value.diagnostics
    line = text.splitlines()[diag.line - 1]
    assert line[diag.col - 1 :].startswith("fn overhead(")
    assert "overhead: { by:" in (diag.hint or "")
    assert "policy.credits.ai_token.overhead" in diag.message
    rendered = diag.render().splitlines()
    assert rendered[0].startswith(f"tutorial07.stof:{diag.line}:{diag.col}: error[L102]:")
    gutter = len(str(diag.line))
    assert rendered[2] == f"{diag.line} | {line}"
    # the caret sits under the `f` of `fn`
    assert rendered[3] == " " * gutter + " | " + " " * (diag.col - 1) + "^"


def test_r03_hint_points_to_declarative_notifications() -> None:
    text = (FIXTURES / "stof" / "R03.stof").read_text()
    with pytest.raises(PolicySyntaxError) as info:
        load_document(text, format="stof")
    assert "when:" in (info.value.diagnostics[0].hint or "")
