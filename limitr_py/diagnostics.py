"""Diagnostics with locations: `path:line:col: error[L201]: message`, the source line and a caret.

Codes are stable: L1xx syntax (the reader), L2xx schema, L3xx semantic checks. `CODES` documents each one and
`sample_policies/invalid/` holds one failing document per code.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

CODES: dict[str, str] = {
    "L101": "invalid syntax for the document's format",
    "L102": "a Stof function (`fn`) where data was expected",
    "L103": "a Stof reference (a bare name, `self.x`, `<Type>`) where a literal was expected",
    "L104": "a Stof expression, call, constructor, cast or template where a literal was expected",
    "L105": "a Stof statement that is not data (`import`, `root`, a binary data block)",
    "L106": "an unknown unit suffix",
    "L107": "an invalid string escape",
    "L108": "a duplicate key",
    "L109": "a YAML tag, anchor or value that is not plain data",
    "L110": "a document that is too large or nested too deeply",
    "L111": "a document whose format could not be detected",
    "L112": "a document that is not UTF-8 text",
    "L201": "an unknown field",
    "L202": "a value of the wrong type",
    "L203": "a value outside the allowed choices",
    "L204": "a number out of range",
    "L205": "a required field is missing",
    "L206": "a malformed number, quantity or duration string",
    "L207": "a document that breaks another schema rule",
    "L301": "a reference to a credit that does not exist",
    "L302": "a pricing model whose price or tiers do not match it",
    "L303": "price tiers out of order or without a last unbounded tier",
    "L304": "an exchange pair that does not reach runes",
    "L305": "both `reset_inc` and `reset_sch` on one limit or top-up",
    "L306": "a reset schedule that cannot be parsed",
    "L307": "a governor without its capacity and refill rate, or on a limit that is not hard",
    "L308": "`hard_trailing` on a limit that is not hard",
    "L309": "a quantity whose unit cannot be converted to its credit's unit",
    "L310": "a plan whose trial period or subscription entitlement is inconsistent",
    "L311": "a notification expression that cannot be parsed",
    "L312": "a negative amount or a non-positive duration where it is not allowed",
    "L313": "an entitlement scope or included scope that no customer type can satisfy",
    "L314": "package pricing without `billing_units`, or `billing_units` on another model",
}

GENERAL_HINTS: dict[str, str] = {
    "L101": "fix the syntax at this position (the README's Formats section lists what each reader accepts)",
    "L102": "compute the value outside the policy and write it as a literal",
    "L103": "write the referenced value here as a literal",
    "L104": "write the computed value as a literal",
    "L105": "write the policy as plain data under one `policy` field",
    "L106": "use a unit suffix the README's Formats section lists (`ms`, `s`, `MB`, `GiB`, …)",
    "L107": "use one of the escapes \\n \\t \\\\ \\\" \\' \\u{…}",
    "L108": "keep one of the two keys",
    "L109": "write plain data: maps, lists, strings, numbers, booleans",
    "L110": "make the document smaller or flatter",
    "L111": "pass format= or use a .json, .yaml, .toml or .stof suffix",
    "L112": "save the file as UTF-8",
    "L201": "remove the field or check its spelling",
    "L202": "write a value of the type the schema expects here",
    "L203": "use one of the allowed values",
    "L204": "keep numbers below 10^30 with at most 30 digits after the point",
    "L205": "add the missing field",
    "L206": "write a number, a quantity with its unit (`250MB`) or a duration (`30d`, `1h`)",
    "L207": "see the schema rule named in the message",
    "L301": "define the credit under `policy.credits` or fix the name",
    "L302": "give the pricing model the price or tiers it needs",
    "L303": "order the tiers by `up_to` and end with one without `up_to`",
    "L304": "add an exchange pair that leads to runes",
    "L305": "keep either `reset_inc` or `reset_sch`",
    "L306": (
        "use `monthly:N`, `monthly:last`, `weekly:mon`, `nth_weekday:N:mon`, `yearly:M-D`, `quarterly:D` or "
        "`cron:…`, optionally ending in `@Zone/Name`"
    ),
    "L307": "give the governor both `capacity` and `refill`, on a hard limit",
    "L308": "remove `hard_trailing` or make the limit hard",
    "L309": "use a unit of the credit's dimension",
    "L310": "make the trial and the subscription entitlement agree",
    "L311": "use literals, payload paths, arithmetic, comparisons, `and`/`or`/`not` and `in`",
    "L312": "use a positive amount or duration",
    "L313": "use a scope a customer type of the policy can have",
    "L314": "give package pricing `billing_units`, and only package pricing",
}
"""The hint a diagnostic carries when its reader or check has nothing more specific to say: every problem
reported to a user comes with a way to fix it."""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in a document, with where it is and how to fix it."""

    code: str
    message: str
    file: str = "<policy>"
    line: int = 1
    col: int = 1
    pointer: str = ""
    hint: str | None = None
    source_line: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        hint = GENERAL_HINTS.get(self.code) if self.hint is None else self.hint
        object.__setattr__(self, "hint", _clip_quoted(hint) if hint is not None else None)
        object.__setattr__(self, "message", _clip_quoted(self.message))

    @property
    def severity(self) -> str:
        return "error"

    def headline(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.severity}[{self.code}]: {self.message}"

    def render(self) -> str:
        """Cargo/Cedar style: the headline, the source line with a caret under the column, then the hint."""
        lines = [self.headline()]
        if self.source_line is not None:
            gutter = str(self.line)
            pad = " " * len(gutter)
            text, caret = _window(self.source_line.rstrip("\n").expandtabs(1), self.col - 1)
            lines.append(f"{pad} |")
            lines.append(f"{gutter} | {text}")
            lines.append(f"{pad} | {' ' * caret}^")
        if self.pointer:
            lines.append(f"  = at: {'/'.join(_clip(t) for t in self.pointer.split('/'))}")
        if self.hint:
            lines.append(f"  = hint: {self.hint}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "pointer": self.pointer,
            "hint": self.hint,
        }


def close_match(word: object, choices: Iterable[str]) -> str | None:
    """The choice `word` is most likely a typo of, or None. A word much longer than every choice cannot be one,
    and is not compared: difflib's cost grows with the word (a 10 MB key would take seconds and 300 MB)."""
    options = list(choices)
    text = str(word)
    if not options or len(text) > 2 * max(map(len, options)) + 8:
        return None
    close = difflib.get_close_matches(text, options, n=1)
    return close[0] if close else None


_QUOTED_WIDTH = 60
_LINE_WIDTH = 160


def _clip(text: str, width: int = _QUOTED_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 20] + "…" + text[-19:]


def _clip_quoted(text: str) -> str:
    """Shortens every `quoted` span longer than 60 characters: a 10 MB key stays readable in a message."""
    if len(text) <= _QUOTED_WIDTH:
        return text
    parts = text.split("`")
    return "`".join(_clip(part) if i % 2 else part for i, part in enumerate(parts))


def _window(line: str, col: int) -> tuple[str, int]:
    """At most 160 characters of a source line around the column, and the caret's place in them."""
    if len(line) <= _LINE_WIDTH:
        return line, max(0, col)
    start = min(max(0, col - _LINE_WIDTH // 2), len(line) - _LINE_WIDTH)
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + _LINE_WIDTH < len(line) else ""
    return prefix + line[start : start + _LINE_WIDTH] + suffix, col - start + len(prefix)


def escape_pointer_token(token: str) -> str:
    """RFC 6901 escaping of one reference token."""
    return token.replace("~", "~0").replace("/", "~1")


def pointer_from(tokens: list[str] | tuple[str, ...]) -> str:
    """The RFC 6901 pointer of a path of tokens (`["a/b", "c"]` → `/a~1b/c`)."""
    return "".join("/" + escape_pointer_token(t) for t in tokens)


def pointer_join(base: str, token: str | int) -> str:
    return f"{base}/{escape_pointer_token(str(token))}"


def pointer_tokens(pointer: str) -> list[str]:
    if not pointer:
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def dotted(pointer: str) -> str:
    """`/policy/credits/ai_token` → `policy.credits.ai_token`, the form users see in messages."""
    return ".".join(pointer_tokens(pointer)) or "(document)"
