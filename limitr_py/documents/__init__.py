"""Documents: four surface formats lowered to one JSON-shaped tree with locations (SPEC §2.1).

`load_document` is the only entry point the rest of the project uses; nothing downstream knows which format a
policy came from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from limitr_py.diagnostics import Diagnostic
from limitr_py.documents.json_reader import read_json
from limitr_py.documents.source import (
    MAX_BYTES,
    MAX_DEPTH,
    LineIndex,
    SourceDocument,
    bracket_depth_exceeds,
    syntax_diagnostic,
)
from limitr_py.documents.stof_reader import read_stof
from limitr_py.documents.toml_reader import read_toml
from limitr_py.documents.yaml_reader import read_yaml
from limitr_py.errors import PolicySyntaxError
from limitr_py.gc_pause import gc_paused

Reader = Callable[[str, str], tuple[SourceDocument, list[Diagnostic]]]

READERS: dict[str, Reader] = {"json": read_json, "stof": read_stof, "toml": read_toml, "yaml": read_yaml}
SUFFIXES: dict[str, str] = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".stof": "stof"}
FORMATS = tuple(READERS)
# Sniffing order when neither `format=` nor a suffix decides: the strictest readers first, YAML (which accepts
# almost any text as a string) last.
SNIFF_ORDER = ("json", "stof", "toml", "yaml")

__all__ = ["FORMATS", "SUFFIXES", "SourceDocument", "format_for_path", "load_document"]


def format_for_path(path: str | Path) -> str | None:
    return SUFFIXES.get(Path(path).suffix.lower())


def load_document(
    source: str | bytes | Path | Mapping[str, Any], *, format: str | None = None, file: str | None = None
) -> SourceDocument:
    """Read a policy document from text, bytes, a file path or an in-memory mapping.

    Format: explicit `format=` > the file's suffix > sniffing. Raises PolicySyntaxError with every problem.
    """
    if isinstance(source, Mapping):
        tree = _from_python(source)
        return SourceDocument(tree=tree, format="mapping", file=file or "<mapping>", text="")
    if isinstance(source, Path):
        file = file or str(source)
        format = format or format_for_path(source)
        try:
            source = source.read_bytes()
        except OSError as exc:
            raise PolicySyntaxError([Diagnostic("L101", f"cannot read `{file}`: {exc.strerror}", file)]) from None
    file = file or "<policy>"
    if format is None and file != "<policy>":
        format = format_for_path(file)
    if format is not None and format not in READERS:
        raise PolicySyntaxError(
            [Diagnostic("L111", f"unknown format `{format}`", file, hint=f"use one of {', '.join(FORMATS)}")]
        )
    if isinstance(source, str):
        _refuse_file_name(source, file)
    text = _decode(source, file)
    _check_size(text, file, format)
    with gc_paused():
        if format is not None:
            doc, problems = READERS[format](text, file)
            if problems:
                raise PolicySyntaxError(problems)
            return doc
        return _sniff(text, file)


_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone surrogate: a Python `str` can hold one, UTF-8 text cannot (it would fail later, in the fingerprint)."""


def _refuse_surrogate(text: str, file: str) -> None:
    m = _SURROGATE.search(text)
    if m is not None:
        line, col = LineIndex(text).position(m.start())
        raise PolicySyntaxError(
            [
                syntax_diagnostic(
                    "L112",
                    f"character U+{ord(m.group()):04X} is not UTF-8 text (a lone surrogate)",
                    file,
                    text,
                    line,
                    col,
                    "",
                    "decode the text with errors='strict' before loading it",
                )
            ]
        )


def _refuse_file_name(text: str, file: str) -> None:
    """A str is a document's text; one that is only the name of an existing policy file is a mistake worth
    naming (it would otherwise fail as text no reader understands)."""
    if "\n" in text or len(text) > 4096 or Path(text).suffix.lower() not in SUFFIXES:
        return
    try:
        exists = Path(text).is_file()
    except (OSError, ValueError):
        return
    if exists:
        raise PolicySyntaxError(
            [
                Diagnostic(
                    "L101",
                    f"the text `{text}` is a file name, not a policy",
                    file,
                    hint=f"pass Path({text!r}) to read the file (a str is the document's text)",
                )
            ]
        )


def _decode(source: str | bytes, file: str) -> str:
    if isinstance(source, str):
        _refuse_surrogate(source, file)
        return source.removeprefix("\ufeff")
    if not isinstance(source, bytes | bytearray | memoryview):
        raise PolicySyntaxError(
            [Diagnostic("L101", f"a policy is text, bytes, a path or a mapping, not {type(source).__name__}", file)]
        )
    source = bytes(source)
    try:
        return source.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        prefix = source[: exc.start].decode("utf-8", errors="replace")
        line, col = LineIndex(prefix).position(len(prefix))
        raise PolicySyntaxError(
            [
                syntax_diagnostic(
                    "L112",
                    f"byte 0x{source[exc.start]:02x} is not UTF-8 text",
                    file,
                    prefix,
                    line,
                    col,
                    "",
                    "save the file as UTF-8",
                )
            ]
        ) from None


def _check_size(text: str, file: str, format: str | None) -> None:
    if len(text) > MAX_BYTES:
        raise PolicySyntaxError(
            [
                Diagnostic(
                    "L110",
                    f"document is larger than {MAX_BYTES // (1024 * 1024)} MiB",
                    file,
                    hint="split the policy or remove unused plans",
                )
            ]
        )
    # JSON and Stof nest with brackets: refuse deep nesting before their parsers recurse. YAML and TOML check
    # the depth of what they build (their nesting is also indentation or dotted keys).
    offset = bracket_depth_exceeds(text) if format in (None, "json", "stof") else None
    if offset is not None:
        line, col = LineIndex(text).position(offset)
        raise PolicySyntaxError(
            [syntax_diagnostic("L110", f"document is nested deeper than {MAX_DEPTH} levels", file, text, line, col)]
        )


def _sniff(text: str, file: str) -> SourceDocument:
    attempts: list[tuple[str, list[Diagnostic]]] = []
    for name in SNIFF_ORDER:
        doc, problems = READERS[name](text, file)
        if not problems and (name != "yaml" or isinstance(doc.tree, dict)):
            return doc
        attempts.append(
            (name, problems or [syntax_diagnostic("L101", "the document is not a mapping", file, text, 1, 1)])
        )
    for _name, problems in attempts:
        if not any(p.code == "L101" for p in problems):
            # This reader understood the text (e.g. Stof holding a function): its errors are the answer.
            raise PolicySyntaxError(problems)
    furthest = max((a[1][0] for a in attempts), key=lambda d: (d.line, d.col))
    said = "; ".join(f"{name} at {ps[0].line}:{ps[0].col}: {ps[0].message}" for name, ps in attempts)
    raise PolicySyntaxError(
        [
            Diagnostic(
                "L111",
                "no reader understood this document",
                file,
                furthest.line,
                furthest.col,
                "",
                f"pass format= or use a file suffix ({said})",
                furthest.source_line,
            )
        ]
    )


def _from_python(value: Any, depth: int = 0) -> Any:
    """An in-memory document: floats go through `str` (SPEC §3), never through binary. Nesting is bounded as in
    text documents, which also ends a mapping that contains itself."""
    if depth > MAX_DEPTH:
        raise PolicySyntaxError(
            [Diagnostic("L110", f"document is nested deeper than {MAX_DEPTH} levels (or contains itself)", "<mapping>")]
        )
    if isinstance(value, Mapping):
        return {_from_python(str(k), depth + 1): _from_python(v, depth + 1) for k, v in value.items()}
    if isinstance(value, str):
        _refuse_surrogate(value, "<mapping>")
        return value
    if isinstance(value, list | tuple):
        return [_from_python(v, depth + 1) for v in value]
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PolicySyntaxError([Diagnostic("L101", f"`{value}` is not a finite number")])
        return Decimal(str(value))
    return value
