"""Hostile documents, each with the diagnostic code its refusal must carry (issue 10, item 8).

Sizes are about 1 MB (30 MB for the long strings): several times what the issue measured, so a refusal that is
quadratic would take minutes where a linear one takes a fraction of a second. The comment on each case is what
it cost before the fix.

`python tests/hostile_documents.py NAME` loads one case in a fresh process and prints one JSON line: the codes,
the seconds it took, and the peak memory past what the process held before the text was built.
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path


def _yaml_alias_bomb() -> str:
    # nine levels of nine aliases each: 9^9 = 387 million values from 324 bytes
    text = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    previous = "a"
    for name in "bcdefghi":
        text += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    return text


CASES: dict[str, tuple[str, Callable[[], str], str]] = {
    # 90 KB took 27 s: every later `/*` rescanned the rest of the text for its `*/`
    "stof_unterminated_comments": ("stof", lambda: "/* " * 300_000, "L101"),
    # 120 KB took 17 s, the same way
    "stof_unterminated_raw_strings": ("stof", lambda: 'x: r#"' * 200_000, "L101"),
    "stof_unterminated_escaped_quotes": ("stof", lambda: 'x: "' + '\\"' * 500_000, "L101"),
    "stof_alternating_quotes": ("stof", lambda: "x: " + "'\"" * 500_000, "L101"),
    # 16k duplicates took 5-12 s: every diagnostic split the whole text into lines again
    "json_duplicate_keys": ("json", lambda: "{" + ",".join(f'"k": {i}' for i in range(100_000)) + "}", "L108"),
    "yaml_duplicate_keys": ("yaml", lambda: "\n".join(f"k: {i}" for i in range(100_000)), "L108"),
    "toml_duplicate_keys": ("toml", lambda: "\n".join(f"k = {i}" for i in range(100_000)), "L101"),
    "stof_duplicate_keys": ("stof", lambda: "\n".join(f"k: {i}" for i in range(100_000)), "L205"),
    # 40k parts took 47 s and 6 GiB inside tomllib
    "toml_dotted_key": ("toml", lambda: "a" + ".a" * 400_000 + " = 1\n", "L110"),
    "toml_dotted_table_header": ("toml", lambda: "[a" + ".a" * 400_000 + "]\n", "L110"),
    "toml_dotted_quoted_key": ("toml", lambda: '"a"' + '."a"' * 300_000 + " = 1\n", "L110"),
    # took 10.6 s and 400 MB: the aliases were expanded up to the node budget before it was refused
    "yaml_alias_bomb": ("yaml", _yaml_alias_bomb, "L110"),
    "yaml_recursive_alias": ("yaml", lambda: "a: &a [*a]", "L110"),
    # a 30 MB JSON string peaked at 3.5 GiB: one backtracking entry per character in the string regex
    "json_30mb_string": ("json", lambda: '{"policy": {"name": "' + "x" * 30_000_000 + '"}}', "L201"),
    "stof_30mb_string": ("stof", lambda: 'policy: { name: "' + "x" * 30_000_000 + '" }', "L201"),
    "yaml_30mb_string": ("yaml", lambda: 'policy: {name: "' + "x" * 30_000_000 + '"}', "L201"),
    "toml_30mb_string": ("toml", lambda: '[policy]\nname = "' + "x" * 30_000_000 + '"', "L201"),
    # a 10 MB key: difflib's did-you-mean used 300 MB on it
    "json_10mb_key": ("json", lambda: '{"policy": {"' + "k" * 10_000_000 + '": 1}}', "L201"),
    "json_deep_brackets": ("json", lambda: "[" * 1_000_000, "L110"),
    "stof_deep_brackets": ("stof", lambda: "a: " + "[" * 1_000_000, "L110"),
    # libyaml's composer recursed on the C stack and crashed the process (SIGSEGV)
    "yaml_deep_flow": ("yaml", lambda: "a: " + "[" * 1_000_000, "L110"),
    "yaml_deep_compact_block": ("yaml", lambda: "- " * 500_000 + "x", "L110"),
    "yaml_deep_indented_block": ("yaml", lambda: "".join(" " * i + "- \n" for i in range(1_500)), "L110"),
    "toml_deep_arrays": ("toml", lambda: "a = " + "[" * 1_000_000, "L110"),
    "toml_deep_inline_tables": ("toml", lambda: "a = " + "{b = " * 100_000, "L110"),
    # `1e999999999` never returned (expanded to an int for the fingerprint)
    "json_huge_exponent": ("json", lambda: '{"policy": {"version": 1e999999999}}', "L204"),
    "yaml_huge_exponent": ("yaml", lambda: "policy: {version: 1.0e+999999999}", "L204"),
    "toml_huge_exponent": ("toml", lambda: "[policy]\nversion = 1e999999999", "L204"),
    "stof_huge_exponent": ("stof", lambda: "policy: { version: 1e999999999 }", "L204"),
    "json_long_integer": ("json", lambda: '{"policy": {"version": ' + "9" * 1_000_000 + "}}", "L204"),
    "yaml_long_integer": ("yaml", lambda: "policy: {version: " + "9" * 1_000_000 + "}", "L204"),
    "toml_long_integer": ("toml", lambda: "[policy]\nversion = " + "9" * 1_000_000, "L204"),
    "stof_long_integer": ("stof", lambda: "policy: { version: " + "9" * 1_000_000 + " }", "L204"),
    "yaml_many_anchors": ("yaml", lambda: "a: [" + ",".join(f"&a{i} {i}" for i in range(100_000)) + "]", "L201"),
    "stof_many_unknown_fields": (
        "stof",
        lambda: "policy: {" + " ".join(f"f{i}: {i}" for i in range(20_000)) + "}",
        "L201",
    ),
}


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def run(name: str) -> dict[str, object]:
    from limitr_py import Limitr
    from limitr_py.errors import PolicyError

    fmt, build, _code = CASES[name]
    Limitr.new("policy: { credits: {} }", format="stof")  # every module and the grammar are loaded now
    before = _max_rss_bytes()
    text = build()
    start = time.perf_counter()
    try:
        Limitr.new(text, format=fmt)
        codes: list[str] = []
        escaped = None
    except PolicyError as exc:
        codes = sorted({d.code for d in exc.diagnostics})
        escaped = None
        assert all(d.file and d.line >= 1 and d.col >= 1 and d.hint for d in exc.diagnostics)
        str(exc), [d.render() for d in exc.diagnostics[:10]]  # rendering must be as cheap as the refusal
    except BaseException as exc:
        codes, escaped = [], f"{type(exc).__name__}: {str(exc)[:200]}"
    return {
        "size": len(text),
        "seconds": time.perf_counter() - start,
        "codes": codes,
        "escaped": escaped,
        "peak_bytes": _max_rss_bytes() - before,
    }


FRAGMENTS = [
    "/*",
    "*/",
    'r#"',
    '"#',
    '"',
    "'",
    "`",
    "\\",
    "[" * 70,
    "{" * 70,
    "]",
    "}",
    "&a ",
    "*a",
    "<<: *a",
    "!!python/object:os.system",
    "1e999999999",
    "9" * 5000,
    "0x",
    ".inf",
    "nan",
    "\x00",
    "\ud800",
    ": ",
    "- " * 70,
    " = ",
    "#",
    "\n",
    "\t",
    "10parsecs",
    "fn x() { }",
    'import "x"',
    "a." * 70,
    "&b [*a, *a]",
    "-1e-40",
    "1" + "0" * 40,
    "'''",
    '"""',
    "\\u{110000}",
    "${x}",
    "\r\n",
    "\ufeff",
]
"""Pieces of every reader's hard cases: openers without closers, nesting, aliases, huge numbers, bad text."""


def _mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 4)):
        i, j = sorted(rng.randrange(len(text) + 1) for _ in range(2))
        op = rng.randrange(5)
        if op == 0:
            text = text[:i] + rng.choice(FRAGMENTS) * rng.choice([1, 1, 2, 50]) + text[i:]
        elif op == 1:
            text = text[:i] + text[j:]
        elif op == 2:
            text = text[:j] + text[i:j] * rng.randint(2, 40) + text[j:]
        elif op == 3:
            text = text[:i]
        else:
            text = text[:i] + text[j:] + text[i:j]
    return text


def fuzz(seed: int, rounds: int, budget: float = 2.0) -> dict[str, object]:
    """Load `rounds` mutated sample policies; report every input that escaped, lacked a place or a hint, or took
    longer than `budget` seconds (per MiB, plus one MiB's worth)."""
    from limitr_py.compile import compile_document
    from limitr_py.documents import load_document
    from limitr_py.errors import PolicyError
    from tests.conftest import SAMPLES, SCENARIOS

    rng = random.Random(seed)
    texts = [(p.suffix[1:], p.read_text(encoding="utf-8")) for s in SCENARIOS for p in sorted((SAMPLES / s).iterdir())]
    problems: list[dict[str, object]] = []
    slowest = 0.0
    for n in range(rounds):
        fmt, base = rng.choice(texts)
        text = _mutate(rng, base)
        start = time.perf_counter()
        try:
            compile_document(load_document(text, format=rng.choice([fmt, fmt, None])))
        except PolicyError as exc:
            if not exc.diagnostics or not all(d.line >= 1 and d.col >= 1 and d.hint for d in exc.diagnostics):
                problems.append({"input": n, "why": "a diagnostic without a place or a hint", "text": text[:300]})
            str(exc)
        except BaseException as exc:
            problems.append({"input": n, "why": f"{type(exc).__name__}: {exc}"[:300], "text": text[:300]})
        took = time.perf_counter() - start
        if took > budget * (1 + len(text) / 2**20):
            problems.append({"input": n, "why": f"took {took:.2f} s for {len(text)} characters", "text": text[:300]})
        slowest = max(slowest, took)
    return {"problems": problems[:20], "slowest": slowest, "peak_bytes": _max_rss_bytes()}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if sys.argv[1] == "--fuzz":
        print(json.dumps(fuzz(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        print(json.dumps(run(sys.argv[1])))
