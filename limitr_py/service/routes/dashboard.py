"""`/dashboard`: customers, a customer's meters, caps, grants, controls, entities and usage per period, and its
invoices; server-rendered HTML (Jinja2), nothing loaded from the network.

With a key file, a login form takes a `read` or `admin` key (not an application's `write` key) and keeps it in
an HttpOnly, SameSite=Strict cookie (Secure over HTTPS) scoped to /dashboard; every page checks it as an API
request checks its header.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from limitr_py.invoice_html import invoice_page
from limitr_py.service import keys as api_keys
from limitr_py.service.common import engine_of, parse_time, service_of
from limitr_py.templating import ENV

router = APIRouter(prefix="/dashboard", include_in_schema=False)
COOKIE = "limitr_key"
PAGE_SIZE = 50


DASHBOARD_SCOPES = ("read", "admin")
"""The keys that open the dashboard: people's keys. A `write` key belongs to an application that meters."""


def _opens(keys: list[api_keys.ApiKey] | None, key: str) -> bool:
    if keys is None:
        return True
    found = api_keys.find(keys, key)
    return found is not None and found.scope in DASHBOARD_SCOPES


def _signed_in(request: Request) -> bool:
    return _opens(service_of(request).keys, request.cookies.get(COOKIE, ""))


def _page(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    engine = service_of(request).engine
    html = ENV.get_template(f"dashboard/{template}").render(policy_fingerprint=engine.fingerprint, **values)
    return HTMLResponse(html, status)


def _login() -> Response:
    return RedirectResponse("/dashboard/login", status_code=303)


@router.get("/login")
def login_form(request: Request) -> Response:
    return _page(request, "login.html", error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("key") or [""])[0].strip()
    if not _opens(service_of(request).keys, key):
        return _page(request, "login.html", 401, error="That key does not open the dashboard.")
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        COOKIE,
        key,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/dashboard",
    )
    return response


@router.get("")
def customers(request: Request, q: str = "", page: int = 1) -> Response:
    """Every customer (id, plan, type, label), searched by id, label or plan, 50 to a page."""
    engine = engine_of(request)
    if not _signed_in(request):
        return _login()
    needle = q.strip().lower()
    found = [
        c
        for c in engine.customers()
        if not needle or any(needle in str(c.get(f) or "").lower() for f in ("id", "label", "plan"))
    ]
    pages = max(1, (len(found) + PAGE_SIZE - 1) // PAGE_SIZE)
    page = min(max(page, 1), pages)
    shown = found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return _page(request, "customers.html", customers=shown, q=q, page=page, pages=pages, total=len(found))


@router.get("/customers/{id}")
def customer(request: Request, id: str) -> Response:
    engine = engine_of(request)
    if not _signed_in(request):
        return _login()
    state = engine.customer_state(id)
    if state is None:
        return _page(request, "missing.html", 404, message=f"There is no customer {id}.")
    meters = []
    for name in state.meters:
        value, limit = engine.value(id, name), engine.limit(id, name)
        share = float(value / limit * 100) if value is not None and limit else 0.0
        overage = value - limit if value is not None and limit is not None and value > limit else None
        meters.append(
            {"entitlement": name, "value": value, "limit": limit, "share": share, "overage": overage,
             "resets": engine.resets(id, name)}
        )  # fmt: skip
    caps = []
    for cap_id in state.caps:
        cap = engine.customer_cap(id, cap_id)
        if cap is not None:
            caps.append({"id": cap.id, "credit": cap.credit, "meter_value": cap.meter_value, "value": cap.value,
                         "headroom": cap.value - cap.meter_value})  # fmt: skip
    config = engine.billing_config(id)
    usage_limits = config.controls.get("usage_limits", []) if config is not None else []
    engine.record_event_history()  # what the outbox still owes, so the page is current
    events = [{"at": e.at, "name": e.name, "summary": event_summary(e.payload)} for e in engine.recent_events(id)]
    return _page(
        request,
        "customer.html",
        customer=state,
        plan=engine.customer_plan(id),
        meters=meters,
        chart=usage_chart(state.periods, meters),
        caps=caps,
        grants=engine.grants(id),
        usage_limits=usage_limits,
        overage_limit=config.overage_limit if config is not None else None,
        events=events,
    )


@router.get("/customers/{id}/invoice")
def invoice(request: Request, id: str, period: str = "current") -> Response:
    engine = engine_of(request)
    if not _signed_in(request):
        return _login()
    at: str | datetime = period if period in ("current", "previous") else parse_time(period, "period")
    found = engine.invoice(id, period=at)
    if found is None:
        return _page(request, "missing.html", 404, message=f"There is no customer {id}.")
    return HTMLResponse(invoice_page(found.to_dict()))


def event_summary(payload: dict[str, Any]) -> str:
    """One line of what an event says: its entitlement, cap or plan, the meter's value against its limit, and
    the call's overage or limit type, as far as the event has them."""
    parts = []
    for field in ("entitlement", "feature_id", "plan", "limit_type", "topup_name"):
        if payload.get(field):
            parts.append(f"{field.replace('_', ' ')} {payload[field]}")
    meter = payload.get("meter")
    if isinstance(meter, dict) and meter.get("value") is not None:
        limit = f" of {meter['limit']}" if meter.get("limit") is not None else ""
        parts.append(f"value {meter['value']}{limit}")
    if payload.get("overage"):
        parts.append(f"{payload['overage']} over")
    cap = payload.get("cap")
    if isinstance(cap, dict) and cap.get("id"):
        parts.append(f"cap {cap['id']}")
    return " · ".join(parts)


def usage_chart(periods: Any, meters: list[dict[str, Any]]) -> str:
    """An SVG bar chart: each meter's usage in its archived closed periods and in the current one."""
    rows: dict[str, list[tuple[str, Decimal]]] = {}
    for closed in periods:
        rows.setdefault(closed.entitlement, []).append((closed.start.date().isoformat(), closed.value))
    for m in meters:
        rows.setdefault(m["entitlement"], []).append(("now", m["value"] or Decimal(0)))
    if not rows:
        return '<p class="muted">No usage yet.</p>'
    bar_w, gap, height, label_h = 28, 10, 90, 34
    width = max(len(bars) for bars in rows.values()) * (bar_w + gap) + 150
    out = [f'<svg class="usage-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{len(rows) * (height + label_h)}" font-family="sans-serif" font-size="10">']  # fmt: skip
    for r, (entitlement, bars) in enumerate(sorted(rows.items())):
        top = r * (height + label_h)
        peak = max([v for _, v in bars] + [Decimal(1)])
        out.append(f'<text x="0" y="{top + 14}" font-weight="bold">{escape(entitlement)}</text>')
        for i, (label, value) in enumerate(bars):
            h = float(value / peak) * (height - 20)
            x = 140 + i * (bar_w + gap)
            color = "#2563eb" if label == "now" else "#9ca3af"
            out.append(
                f'<rect class="period" data-entitlement="{escape(entitlement)}" data-value="{value}" x="{x}" '
                f'y="{top + height - h:.1f}" width="{bar_w}" height="{h:.1f}" fill="{color}">'
                f"<title>{escape(label)}: {value}</title></rect>"
                f'<text x="{x}" y="{top + height + 12}">{escape(label)}</text>'
            )
    out.append("</svg>")
    return "".join(out)
