"""Diagnostics with locations: `path:line:col: error[L201]: message`, the source line and a caret.

Codes are stable: L1xx syntax (the reader), L2xx schema, L3xx semantic checks. `CODES` documents each one and
`sample_policies/invalid/` holds one failing document per code.
"""

from __future__ import annotations

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
            text = self.source_line.rstrip("\n").expandtabs(1)
            lines.append(f"{pad} |")
            lines.append(f"{gutter} | {text}")
            lines.append(f"{pad} | {' ' * max(0, self.col - 1)}^")
        if self.pointer:
            lines.append(f"  = at: {self.pointer}")
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


def escape_pointer_token(token: str) -> str:
    """RFC 6901 escaping of one reference token."""
    return token.replace("~", "~0").replace("/", "~1")


def pointer_join(base: str, token: str | int) -> str:
    return f"{base}/{escape_pointer_token(str(token))}"


def pointer_tokens(pointer: str) -> list[str]:
    if not pointer:
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def dotted(pointer: str) -> str:
    """`/policy/credits/ai_token` → `policy.credits.ai_token`, the form users see in messages."""
    return ".".join(pointer_tokens(pointer)) or "(document)"
