"""An invoice (`Invoice.to_dict()`) as text for a terminal: its period, one row per line, the total."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from limitr_py.money import exponent


def money(minor: int, currency: str) -> str:
    """Minor units as the currency writes them: 5100 USD → `51.00`, 5100 JPY → `5100`."""
    digits = exponent(currency)
    return f"{Decimal(minor).scaleb(-digits):.{digits}f}"


def invoice_lines(invoice: dict[str, Any], indent: str = "") -> list[str]:
    currency = invoice["currency"]
    start, end = invoice["period_start"] or "-", invoice["period_end"] or "-"
    rows = [(line["description"], line["quantity"], money(line["amount"], currency)) for line in invoice["lines"]]
    width = max([len(d) for d, _, _ in rows] + [5])
    out = [f"{indent}invoice of {invoice['customer']}, {start} → {end}, {currency}"]
    out += [f"{indent}  {d:<{width}}  {q:>14}  {a:>12}" for d, q, a in rows] or [f"{indent}  (no lines)"]
    out.append(f"{indent}  {'total':<{width}}  {'':>14}  {money(invoice['total'], currency):>12} {currency}")
    return out
