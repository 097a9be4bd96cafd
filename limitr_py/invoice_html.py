"""An invoice (`Invoice.to_dict()`) as an HTML page that reads like an invoice and prints cleanly.

Jinja2 (autoescaping on) over `templates/invoice.html`, the template the dashboard shows invoices with too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from limitr_py.invoice_text import money

_TEMPLATES = Path(__file__).resolve().parent / "templates"
_ENV = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html"]))
_ENV.globals["money"] = money


def invoice_page(invoice: dict[str, Any]) -> str:
    return _ENV.get_template("invoice.html").render(invoice=invoice)
