"""The fast Stof reader against the full one (lark, grammar/stof.lark): whenever it answers, the same tree.

Giving up is always allowed (the full reader then runs); answering differently never is. Checked on every Stof
document in the repository, on documents generated from the grammar's pieces, and on mutations of both.
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from limitr_py.compile import load_policy
from limitr_py.documents import load_document, stof_fast
from limitr_py.documents.stof_fast import fast_tree
from limitr_py.documents.stof_reader import _parser, _read_fully
from limitr_py.errors import PolicyError
from tests.conftest import FIXTURES
from tests.hostile_documents import FRAGMENTS, _mutate

ROOT = Path(__file__).resolve().parent.parent
CORPUS = sorted([*ROOT.glob("sample_policies/**/*.stof"), *(FIXTURES / "stof").glob("*.stof")])


def typed(value: Any) -> Any:
    """A form in which key order and the type of every value count (1, Decimal(1) and True all differ)."""
    if isinstance(value, dict):
        return ["dict", [(k, typed(v)) for k, v in value.items()]]
    if isinstance(value, list):
        return ["list", [typed(v) for v in value]]
    return [type(value).__name__, str(value)]


def agrees(text: str) -> bool:
    """Checks the fast reader against the full one on `text`; True when the fast one answered."""
    fast = fast_tree(text)
    if fast is None:
        return False
    doc, problems = _read_fully(text, "t.stof")
    assert problems == [], f"the fast reader accepted a document the full one refuses: {text!r}"
    assert typed(fast) == typed(doc.tree), text
    return True


def test_the_fast_reader_uses_the_grammars_own_terminals() -> None:
    terminals = {t.name: t.pattern.to_regexp() for t in _parser().terminals}
    assert stof_fast.IDENT.pattern == terminals["IDENT"]
    assert stof_fast.VERSION.pattern == terminals["VERSION"]
    assert stof_fast.NUMBER.pattern == terminals["NUMBER"]
    assert terminals["RAW_STRING"] == stof_fast.RAW_STRING
    assert [terminals["DQ_STRING"], terminals["SQ_STRING"], terminals["BT_STRING"]] == stof_fast.QUOTED
    assert terminals["LINE_COMMENT"] == stof_fast.LINE_COMMENT
    assert terminals["BLOCK_COMMENT"] == stof_fast.BLOCK_COMMENT
    assert terminals["WS"] == "(?:[ \t\x0c\r\n])+" and stof_fast.WS == " \t\f\r\n"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_stof_document_in_the_repository_reads_the_same(path: Path) -> None:
    agrees(path.read_text(encoding="utf-8"))


def test_the_fast_reader_answers_for_plain_data() -> None:
    """It must actually be used: every data fixture and every valid sample policy is plain data."""
    plain = [p for p in CORPUS if "invalid" not in p.parts and not p.name.startswith("R")]
    assert len(plain) >= 15
    answered = [p.name for p in plain if agrees(p.read_text(encoding="utf-8"))]
    assert len(answered) == len(plain), sorted({p.name for p in plain} - set(answered))


@pytest.mark.parametrize(
    "text",
    [
        "{ a: 1 } b: 2",  # text after a whole-document object
        "a: 1,, b: 2",
        "{, a: 1}",
        "a: [1,,2]",
        "a: [1 2]",
        "a: [,]",
        "a: /* never closed",
        "a: 'never closed",
        "a: 1.2.3e5",  # VERSION then a name, to lark
        "a: 1.2.3+build",
        "a: +5",
        "a: b.c",
        "a: const",
        "const: 1",
        "ms a: 1",  # a unit where a type goes: the full reader may report it
        "a.b c: 1",
        "'t' c: 1",
        "a: 10 ms\nb: 1",
        "#[attr] a: 1",
        "a: 'bad \\q escape'",
        "a: `${x}`",
        "a: 10parsecs",
        "a:\v1",
        '"a": 1 \'b\': 2 r#"c"#: 3',
        "a: 0b102",
        "a: 1 }",
        "a: { b: 1 ",
    ],
)
def test_the_fast_reader_gives_up_on_what_it_does_not_read(text: str) -> None:
    assert fast_tree(text) is None


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("", {}),
        ("{}", {}),
        ("a: {x: 1} b: 2 a: {y: 2}", {"a": {"x": 1, "y": 2}, "b": 2}),  # merged, in place
        ("a: 1 b: 2 a: 3", {"b": 2, "a": 3}),  # replaced: moves to its latest position
        ("a: [1, 2,]; b: [] // c: 3\n", {"a": [1, 2], "b": []}),
        ('\'q k\': "x\\n" r: r#"raw "quoted""# t: `tick` v: 1.2.3-rc.1', None),
        ("big: 1.5GB d: 30days h: 0x1F n: -1_000 e: 1e3 f: 0.000008", None),
        ("Limitr policy: { int n: 1 }", {"policy": {"n": 1}}),  # one-word types are ignored
        ("true: true false: false null: null", {"true": True, "false": False, "null": None}),
    ],
)
def test_the_fast_reader_reads_plain_data_as_the_full_one_does(text: str, tree: dict[str, Any] | None) -> None:
    assert agrees(text)
    if tree is not None:
        assert typed(fast_tree(text)) == typed(tree)


PIECES = [
    "a",
    "b",
    "plan",
    "'k'",
    '"k k"',
    "const",
    "true",
    "null",
    "ref.x",
    ":",
    ": ",
    ",",
    ";",
    "{",
    "}",
    "[",
    "]",
    " ",
    "\n",
    "\t",
    "1",
    "-2",
    "0x1F",
    "1.5",
    "1e3",
    "30days",
    "10parsecs",
    "1.2.3",
    "1.2.3+b",
    "+1",
    "'s'",
    '"d\\n"',
    "'bad\\q'",
    "`t`",
    "`${x}`",
    'r#"raw"#',
    "// c\n",
    "/* c */",
    "/*",
    "#[x]",
    "int ",
    "fn f() {}",
    "<T>",
    "|",
    "!",
    "(",
    ")",
    "\v",
    "é",
    "1_000",
    "0b12",
]


def mostly(good: list[str], bad: list[str]) -> st.SearchStrategy[str]:
    """One of `good`, and one time in forty one of `bad` (what only the full reader reads, or nobody)."""
    return st.integers(0, 39).flatmap(lambda i: st.sampled_from(bad if i == 0 else good))


KEYS = mostly(
    ["a", "b", "plan", "_x", "@at", "k-1", "true", "'q k'", '"d k"', "'esc\\n'"], ["'bad\\q'", "const", "1", "`t`"]
)
SCALARS = mostly(
    [
        "1",
        "-2",
        "0",
        "007",
        "1_000",
        "0x1F",
        "0o17",
        "0b101",
        "1.5",
        "-0.25",
        "1e3",
        "2E-2",
        "30days",
        "1.5GB",
        "10ms",
        "1.2.3",
        "1.2.3-rc.1",
        "true",
        "false",
        "null",
        "'s'",
        '"d"',
        "'it\\'s'",
        '"tab\\t"',
        "`tick`",
        'r#"raw "q""#',
        "'é'",
        "''",
    ],
    ["10parsecs", "0x", "1.2.3+b", "1.2.3e5", "+1", "ref", "a.b", "'bad\\q'", "`${x}`", "fn()", "<T>"],
)
GAPS = mostly([" ", "", "\n", "  ", "\t", " // note\n", " /* c */ ", "\r\n"], ["\v", "/*", "é"])
SEPARATORS = mostly(["", "", ",", ";", "\n"], [",,", ";;", ":"])
TYPES = mostly(["", "", "", "", "int ", "Limitr ", "obj "], ["ms ", "a.b ", "const ", "#[x] ", "str! "])


def _values(depth: int) -> st.SearchStrategy[str]:
    scalar = SCALARS
    if depth == 0:
        return scalar
    return st.one_of(scalar, _object(depth - 1), _array(depth - 1))


@st.composite
def _fields(draw: st.DrawFn, depth: int) -> str:
    out = []
    for _ in range(draw(st.integers(0, 4))):
        gap = draw(GAPS)
        typed_key = draw(TYPES) + draw(KEYS)
        out.append(f"{gap}{typed_key}{draw(st.sampled_from(['', ' ']))}:{gap}{draw(_values(depth))}")
        out.append(draw(SEPARATORS))
    return "".join(out)


def _object(depth: int) -> st.SearchStrategy[str]:
    return _fields(depth).map(lambda body: "{" + body + "}")


def _array(depth: int) -> st.SearchStrategy[str]:
    items = st.lists(_values(depth), max_size=4)
    trailing = mostly(["", ",", " "], [",,"])
    return st.tuples(items, trailing).map(lambda t: "[" + ", ".join(t[0]) + (t[1] if t[0] else "") + "]")


@st.composite
def documents(draw: st.DrawFn) -> str:
    """Stof text built from the grammar's pieces: mostly data, with now and then what only the full reader reads
    (types, attributes, references, bad escapes, doubled separators) and, at random, a token dropped or doubled."""
    body = draw(_fields(3))
    text = "{" + body + "}" if draw(st.booleans()) else body
    if draw(st.integers(0, 3)) == 0 and text:
        i = draw(st.integers(0, len(text) - 1))
        j = draw(st.integers(i, min(len(text), i + 3)))
        text = text[:i] + draw(st.sampled_from(["", text[i:j] * 2, *PIECES])) + text[j:]
    return text


def test_documents_made_of_the_grammars_pieces_read_the_same() -> None:
    answered: list[bool] = []

    @settings(max_examples=1500, deadline=None, database=None, derandomize=True)
    @given(documents())
    def read(text: str) -> None:
        answered.append(agrees(text))

    read()
    # the property is only worth something if the fast reader answers for many documents and gives up on many
    assert 0.15 * len(answered) < sum(answered) < 0.9 * len(answered), (sum(answered), len(answered))


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.sampled_from(CORPUS))
def test_mutated_documents_read_the_same(seed: int, path: Path) -> None:
    rng = random.Random(seed)
    text = path.read_text(encoding="utf-8")
    agrees(_mutate(rng, text) if rng.random() < 0.8 else text + rng.choice(FRAGMENTS))


def test_a_problem_in_a_fast_read_document_is_located_by_the_full_reader() -> None:
    """Positions come from the full reader when a diagnostic asks: the same line and column either way."""
    text = "policy: {\n  credits: { c: {\n    label: 'C'\n    price: { amount: 'ten' }\n  } }\n}\n"
    assert fast_tree(text) is not None
    with pytest.raises(PolicyError) as fast_read:
        load_policy(text, format="stof")
    doc, problems = _read_fully(text, "<policy>")
    assert problems == []
    expected = [(d.code, d.line, d.col, d.pointer) for d in fast_read.value.diagnostics]
    assert expected and all(line == 4 for _, line, _, _ in expected), expected
    assert doc.locate("/policy/credits/c/price/amount", value=True) == (4, 22)
    assert load_document(text, format="stof").locate("/policy/credits/c/price/amount", value=True) == (4, 22)


def test_numbers_are_exact_in_the_fast_reader() -> None:
    assert fast_tree("a: 0.1 b: 100000000000000000000.000000001") == {
        "a": Decimal("0.1"),
        "b": Decimal("100000000000000000000.000000001"),
    }
