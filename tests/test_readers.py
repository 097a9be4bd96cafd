"""Each reader: the tree it builds, where it locates things, and how it fails."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from limitr_py.documents import load_document
from limitr_py.errors import PolicySyntaxError

SAME_POLICY = {
    "json": (
        '{\n  "policy": {\n    "credits": {\n      "seat": {"label": "Seat", "price": {"amount": 12.50}}\n    }\n  }\n}'
    ),
    "yaml": "policy:\n  credits:\n    seat:\n      label: Seat\n      price: {amount: 12.50}\n",
    "toml": '[policy.credits.seat]\nlabel = "Seat"\nprice = { amount = 12.50 }\n',
    "stof": "policy: {\n    credits: {\n        seat: { label: 'Seat', price: { amount: 12.50 } }\n    }\n}\n",
}


def _amount_at(text: str) -> tuple[int, int, int, int]:
    """Where `/policy/credits/seat/price/amount` (key, then value) is in `text`, found by reading it."""
    number, line = next((i, ln) for i, ln in enumerate(text.splitlines(), start=1) if "amount" in ln)
    key = line.index('"amount"') if '"amount"' in line else line.index("amount")
    return number, key + 1, number, line.index("12.50") + 1


@pytest.mark.parametrize("fmt", SAME_POLICY)
def test_every_format_builds_the_same_tree(fmt: str) -> None:
    doc = load_document(SAME_POLICY[fmt], format=fmt)
    assert doc.tree == {"policy": {"credits": {"seat": {"label": "Seat", "price": {"amount": Decimal("12.5")}}}}}
    assert isinstance(doc.tree["policy"]["credits"]["seat"]["price"]["amount"], Decimal)


@pytest.mark.parametrize("fmt", SAME_POLICY)
def test_every_format_locates_keys_and_values(fmt: str) -> None:
    doc = load_document(SAME_POLICY[fmt], format=fmt)
    loc = doc.locations["/policy/credits/seat/price/amount"]
    assert (loc.line, loc.col, loc.value_line, loc.value_col) == _amount_at(SAME_POLICY[fmt])
    line = SAME_POLICY[fmt].splitlines()[loc.line - 1]
    assert line[loc.col - 1 :].startswith(("amount", '"amount"'))
    assert line[loc.value_col - 1 :].startswith("12.50")


@pytest.mark.parametrize("fmt", SAME_POLICY)
def test_format_is_sniffed_from_text(fmt: str) -> None:
    assert load_document(SAME_POLICY[fmt]).format == fmt


@pytest.mark.parametrize(
    ("suffix", "fmt"), [(".json", "json"), (".yml", "yaml"), (".yaml", "yaml"), (".toml", "toml"), (".stof", "stof")]
)
def test_suffix_decides_before_sniffing(tmp_path: Path, suffix: str, fmt: str) -> None:
    path = tmp_path / f"p{suffix}"
    path.write_text(SAME_POLICY[fmt])
    doc = load_document(path)
    assert doc.format == fmt
    assert doc.file == str(path)


def test_explicit_format_beats_the_suffix(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(SAME_POLICY["stof"])
    assert load_document(path, format="stof").format == "stof"
    with pytest.raises(PolicySyntaxError) as info:
        load_document(path)
    assert info.value.diagnostics[0].code == "L101"


def test_nothing_parses_reports_every_reader() -> None:
    with pytest.raises(PolicySyntaxError) as info:
        load_document("policy <- plans(free)\n = !@#$")
    (diag,) = info.value.diagnostics
    assert diag.code == "L111"
    for reader in ("json at", "stof at", "toml at", "yaml at"):
        assert reader in (diag.hint or "")


def test_sniffing_a_stof_function_reports_the_stof_error() -> None:
    with pytest.raises(PolicySyntaxError) as info:
        load_document("policy: {\n  credits: { a: {\n    fn overhead(u) { 1 }\n  } }\n}")
    assert info.value.diagnostics[0].code == "L102"


def test_bytes_bom_and_encoding() -> None:
    assert load_document("\ufeff" + SAME_POLICY["json"]).format == "json"
    assert load_document(SAME_POLICY["yaml"].encode()).format == "yaml"
    with pytest.raises(PolicySyntaxError) as info:
        load_document(b'{"a": "\xc3\x28"}', format="json")
    assert (info.value.diagnostics[0].code, info.value.diagnostics[0].col) == ("L112", 8)


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicySyntaxError, match="cannot read"):
        load_document(tmp_path / "nope.json")


@pytest.mark.parametrize(("fmt", "text"), [("json", '{"a": 1, "b": 2, "a": 3}'), ("yaml", "a: 1\nb: 2\na: 3\n")])
def test_duplicate_keys_are_reported_where_they_repeat(fmt: str, text: str) -> None:
    with pytest.raises(PolicySyntaxError) as info:
        load_document(text, format=fmt)
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.pointer) == ("L108", "/a")
    assert text.splitlines()[diag.line - 1][diag.col - 1 :].lstrip('"').startswith("a")


def test_stof_repeated_keys_merge_objects_and_replace_scalars() -> None:
    doc = load_document("a: { x: 1, y: { p: 1 } }\nb: 1\na: { y: { q: 2 } }\nb: 3", format="stof")
    assert doc.tree == {"a": {"x": 1, "y": {"p": 1, "q": 2}}, "b": 3}


def test_toml_errors_carry_the_position_tomllib_reports() -> None:
    with pytest.raises(PolicySyntaxError) as info:
        load_document('[policy]\ncurrency = "USD"\ncurrency = "EUR"\n', format="toml")
    diag = info.value.diagnostics[0]
    assert (diag.code, diag.line) == ("L101", 3)


def test_toml_dates_become_iso_text() -> None:
    doc = load_document("[policy]\nversion = 2026-01-02\n", format="toml")
    assert doc.tree == {"policy": {"version": "2026-01-02"}}


def test_yaml_timestamps_stay_text_and_floats_are_exact() -> None:
    doc = load_document("a: 2026-01-02\nb: 0.1\nc: 1_000\nd: 1e3\n", format="yaml")
    assert doc.tree == {"a": "2026-01-02", "b": Decimal("0.1"), "c": 1000, "d": "1e3"}


@pytest.mark.parametrize(
    "text",
    [
        "a: 1 b: 2",
        "a: 1; b: 2;",
        "a: 1, b: 2,",
        "{ a: 1\n b: 2 }",
        "#[attr('x')] const str a: 1\nb: 2",
        "/* c */ a: /* c */ 1 // c\nb: 2",
    ],
)
def test_stof_separator_styles_comments_and_attributes(text: str) -> None:
    assert load_document(text, format="stof").tree == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a: 'it\\'s'", "it's"),
        ('a: "say \\"hi\\""', 'say "hi"'),
        ('a: r#"C:\\path "x""#', 'C:\\path "x"'),
        ("a: `plain`", "plain"),
        ("a: 'tab\\tnl\\n'", "tab\tnl\n"),
        ("a: 0.1.0-test", "0.1.0-test"),
        ("a: 30days", "30days"),
        ("a: 1_000MB", "1000MB"),
        ("a: 0x10MB", "16MB"),
    ],
)
def test_stof_scalars(text: str, value: object) -> None:
    assert load_document(text, format="stof").tree == {"a": value}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("a: 1 + 2", "L104"),
        ("a: self.b", "L103"),
        ("a: soft", "L103"),
        ("a: `x ${y}`", "L104"),
        ("import 'x.stof'", "L105"),
        ("root Other { a: 1 }", "L105"),
        ("a: (1, 2)", "L104"),
        ("a: new Plan { }", "L104"),
        ("a: { b: 1 } as Thing\nc: 2", "L104"),
        ('a: "caf\\u00e9"', "L107"),
        ("a: 10 ms\nb: 1", "L106"),
        ("#[schema(x)] a: 1", "L104"),
    ],
)
def test_stof_non_data_is_refused_with_its_code(text: str, code: str) -> None:
    with pytest.raises(PolicySyntaxError) as info:
        load_document(text, format="stof")
    assert info.value.diagnostics[0].code == code
