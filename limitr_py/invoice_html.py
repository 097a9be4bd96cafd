"""An invoice (`Invoice.to_dict()`) as an HTML page that reads like an invoice and prints cleanly
(`templates/invoice.html`: `limitr invoice --format html`, and the dashboard's invoice page)."""

from __future__ import annotations

from typing import Any

from limitr_py.templating import ENV


def invoice_page(invoice: dict[str, Any]) -> str:
    return ENV.get_template("invoice.html").render(invoice=invoice)
