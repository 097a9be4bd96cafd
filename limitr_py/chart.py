"""`limitr simulate --chart`: each customer's meters and spend over the replayed time, denials marked.

A `Recorder` watches the replay (simulate.replay's `observe`) and keeps, for at most `MAX_CUSTOMERS` customers,
each meter's share of its limit and the customer's current invoice total as they move; a series longer than
`4 × POINTS` drops every other point and samples half as often from then on, so memory stays bounded however long
the replay. `svg()` draws one panel per customer (server-side SVG, nothing to download); `html()` wraps it in a
page that prints. Points are floats: a chart's pixels, never an amount anyone is billed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from xml.sax.saxutils import escape

from limitr_py.invoice_text import money
from limitr_py.limitr import Limitr

MAX_CUSTOMERS = 20
POINTS = 120
COLORS = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
PANEL_W, PANEL_H, COLUMNS = 480, 200, 2
PLOT = (50, 30, 380, 140)  # left, top, width, height of the plot inside a panel


@dataclass(slots=True)
class _Series:
    points: list[tuple[datetime, float]] = field(default_factory=list)
    stride: int = 1
    seen: int = 0

    def offer(self, at: datetime, value: Callable[[], float]) -> None:
        """A point every `stride`-th offer (`value` is worked out only then)."""
        due = self.seen % self.stride == 0
        self.seen += 1
        if due:
            self.points.append((at, value()))
            if len(self.points) > 4 * POINTS:
                self.points = self.points[::2]
                self.stride *= 2


@dataclass(slots=True)
class _Customer:
    plan: str | None
    meters: dict[str, _Series] = field(default_factory=dict)
    spend: _Series = field(default_factory=_Series)
    denials: list[tuple[datetime, str]] = field(default_factory=list)


class Recorder:
    """Called after each metered event with the engine, the event's time and its decision."""

    def __init__(self, customers: list[str] | None = None) -> None:
        self.named = list(dict.fromkeys(customers)) if customers else None
        self.customers: dict[str, _Customer] = {}
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.currency = "USD"

    def __call__(self, engine: Limitr, at: datetime, customer: str, entitlement: str, allowed: bool) -> None:
        self.first = self.first or at
        self.last = at
        self.currency = engine.currency
        c = self.customers.get(customer)
        if c is None:
            if (self.named is not None and customer not in self.named) or len(self.customers) >= MAX_CUSTOMERS:
                return
            c = self.customers[customer] = _Customer(engine.customer_plan(customer))
        if not allowed and len(c.denials) < 4 * POINTS:
            c.denials.append((at, entitlement))
        c.meters.setdefault(entitlement, _Series()).offer(at, lambda: _share(engine, customer, entitlement))
        c.spend.offer(at, lambda: _spend(engine, customer))


def _share(engine: Limitr, customer: str, entitlement: str) -> float:
    """The meter as a share of its limit (1.0 = the included amount used), or its value when it has no limit."""
    value, limit = engine.value(customer, entitlement), engine.limit(customer, entitlement, grants=False)
    if value is None:
        return 0.0
    return float(value / limit) if limit else float(value)


def _spend(engine: Limitr, customer: str) -> float:
    invoice = engine.invoice(customer)
    return 0.0 if invoice is None else float(invoice.total)


def svg(recorder: Recorder, title: str) -> str:
    customers = list(recorder.customers.items())
    rows = max(1, (len(customers) + COLUMNS - 1) // COLUMNS)
    width, height = PANEL_W * COLUMNS, PANEL_H * rows + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    if not customers or recorder.first is None or recorder.last is None:
        out.append('<text x="10" y="60">no metered events to draw</text></svg>')
        return "\n".join(out)
    start, end = recorder.first, recorder.last
    span = max((end - start).total_seconds(), 1.0)
    for i, (ident, c) in enumerate(customers):
        x0, y0 = (i % COLUMNS) * PANEL_W, 40 + (i // COLUMNS) * PANEL_H
        out.extend(_panel(ident, c, x0, y0, start, span, recorder.currency))
    out.append("</svg>")
    return "\n".join(out)


def _panel(ident: str, c: _Customer, x0: int, y0: int, start: datetime, span: float, currency: str) -> list[str]:
    left, top, w, h = PLOT
    share_max = max([1.0] + [v for s in c.meters.values() for _, v in s.points])
    spend_max = max([1.0] + [v for _, v in c.spend.points])

    def x(at: datetime) -> float:
        return x0 + left + w * (at - start).total_seconds() / span

    def y(value: float, top_value: float) -> float:
        return y0 + top + h - h * value / top_value

    label = f"{ident} (plan {c.plan})" if c.plan else ident
    parts = [
        f'<g class="panel" data-customer="{escape(ident, {chr(34): "&quot;"})}">',
        f'<text x="{x0 + left}" y="{y0 + 18}" font-weight="bold">{escape(label)}</text>',
        f'<rect x="{x0 + left}" y="{y0 + top}" width="{w}" height="{h}" fill="none" stroke="#ccc"/>',
        f'<line class="included" x1="{x0 + left}" x2="{x0 + left + w}" y1="{y(1.0, share_max):.1f}" '
        f'y2="{y(1.0, share_max):.1f}" stroke="#999" stroke-dasharray="4 3"/>',
        f'<text x="{x0 + 4}" y="{y(1.0, share_max) + 4:.1f}" fill="#666">100%</text>',
        f'<text x="{x0 + left + w + 4}" y="{y0 + top + 10}" fill="#d62728">{money(int(spend_max), currency)}</text>',
    ]
    for n, (entitlement, series) in enumerate(sorted(c.meters.items())):
        color = COLORS[n % len(COLORS)]
        points = " ".join(f"{x(at):.1f},{y(v, share_max):.1f}" for at, v in series.points)
        parts.append(
            f'<polyline class="meter" data-entitlement="{escape(entitlement)}" points="{points}" fill="none" '
            f'stroke="{color}" stroke-width="1.5"/>'
        )
        parts.append(
            f'<text x="{x0 + left + 8 + 110 * n}" y="{y0 + top + h + 28}" fill="{color}">■ {escape(entitlement)}</text>'
        )
    spend = " ".join(f"{x(at):.1f},{y(v, spend_max):.1f}" for at, v in c.spend.points)
    parts.append(f'<polyline class="spend" points="{spend}" fill="none" stroke="#111" stroke-width="1"/>')
    for at, entitlement in c.denials:
        parts.append(
            f'<circle class="denial" cx="{x(at):.1f}" cy="{y0 + top + 4}" r="2.5" fill="#d62728">'
            f"<title>{escape(entitlement)} denied at {at.isoformat()}</title></circle>"
        )
    parts.append(
        f'<text x="{x0 + left}" y="{y0 + top + h + 14}" fill="#666">{start.date().isoformat()}</text>'
        f'<text x="{x0 + left + w}" y="{y0 + top + h + 14}" fill="#666" text-anchor="end">'
        f"{(start + timedelta(seconds=span)).date().isoformat()}</text>"
    )
    parts.append("</g>")
    return parts


def html(recorder: Recorder, title: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:16px}p{color:#555}</style></head><body>\n"
        f"<p>Each panel: every meter as a share of its limit (dashed: 100%, the included amount), the current "
        f"invoice's total (black, scale at the right, {escape(recorder.currency)}), denials as red dots.</p>\n"
        f"{svg(recorder, title)}\n</body></html>\n"
    )
