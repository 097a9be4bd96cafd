"""sample_policies/invalid/: one document per diagnostic code, with its expected diagnostics beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from limitr_py.compile import check_document
from limitr_py.diagnostics import CODES
from tests.conftest import INVALID

CASES = sorted(p for p in INVALID.iterdir() if not p.name.endswith(".expected"))


def _expected(path: Path) -> list[dict[str, object]]:
    data: list[dict[str, object]] = json.loads(path.with_name(path.name.rsplit(".", 1)[0] + ".expected").read_text())
    return data


def test_every_code_has_a_corpus_document() -> None:
    covered = {p.name.split("_", 1)[0] for p in CASES}
    assert covered == set(CODES)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_document_produces_exactly_its_expected_diagnostics(path: Path) -> None:
    got = [{"code": d.code, "line": d.line, "col": d.col, "pointer": d.pointer} for d in check_document(path)]
    assert got == _expected(path)
    # the code the file is named after is among them
    assert path.name.split("_", 1)[0] in {g["code"] for g in got}


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_every_diagnostic_renders_with_location_and_one_line_message(path: Path) -> None:
    for d in check_document(path):
        assert "\n" not in d.message
        assert d.message == d.message.rstrip(".")
        assert d.message[0].islower() or d.message[0] == "`"
        headline = d.render().splitlines()[0]
        assert headline == f"{path}:{d.line}:{d.col}: error[{d.code}]: {d.message}"
