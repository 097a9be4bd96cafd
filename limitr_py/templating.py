"""The Jinja2 environment of every page (`limitr_py/templates/`): autoescaped, with `money` for amounts."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from limitr_py.invoice_text import money

TEMPLATES = Path(__file__).resolve().parent / "templates"
ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
ENV.globals["money"] = money
