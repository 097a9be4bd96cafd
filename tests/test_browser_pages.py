"""Pages a browser renders, checked in a real headless Chromium: `limitr simulate --chart` (a panel per customer,
each meter's line, the spend line, one red dot per denial) and `limitr invoice --format html`."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from limitr_py.cli import run
from tests import browser

POLICY = """
policy: {
    credits: { call: {}, tok: { price: { amount: 0.01 } } }
    plans: { basic: { default: true, entitlements: {
        api: { limit: { credit: 'call', value: 10, resets: true, reset_sch: 'monthly:1' } }
        chat: { limit: { credit: 'tok', mode: 'soft', value: 50 } }
    } } }
}
"""


@pytest.fixture
def replayed(tmp_path: Path) -> tuple[Path, Path]:
    """Three customers over March and April: 4 api calls a week each against a hard 10 a month (denials in the
    third week of each month), 20 chat tokens a week (overage: spend grows)."""
    policy = tmp_path / "policy.stof"
    policy.write_text(POLICY)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    lines = []
    for day in range(0, 61):
        for n, customer in enumerate(["acme", "globex", "initech"]):
            at = start + timedelta(days=day, hours=n)
            if day % 7 in (0, 2, 4, 6):
                lines.append({"at": at.isoformat(), "customer": customer, "entitlement": "api", "value": 1})
            if day % 7 == 3:
                lines.append({"at": at.isoformat(), "customer": customer, "entitlement": "chat", "value": 20})
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(line) + "\n" for line in sorted(lines, key=lambda e: e["at"])))
    return policy, events


def test_the_chart_renders_in_a_browser_with_every_customer_meter_and_denial(
    replayed: tuple[Path, Path], tmp_path: Path
) -> None:
    policy, events = replayed
    out = tmp_path / "chart.html"
    stdout = io.StringIO()
    assert (
        run(["simulate", str(policy), str(events), "--chart", str(out), "--format", "json"], stdout, io.StringIO()) == 0
    )
    denied = json.loads(stdout.getvalue())["denied"]
    assert denied > 0
    with browser.page() as page:
        page.goto(out.as_uri())
        assert page.locator("g.panel").count() == 3
        for customer in ("acme", "globex", "initech"):
            panel = page.locator(f'g.panel[data-customer="{customer}"]')
            assert panel.locator("text").first.text_content() == f"{customer} (plan basic)"
            # one point per event (well under the decimation bound): api on 4 days a week, chat on 1, in 61 days
            for entitlement, events_of_it in (("api", 35), ("chat", 9)):
                line = panel.locator(f'polyline.meter[data-entitlement="{entitlement}"]')
                assert len(line.get_attribute("points").split()) == events_of_it  # type: ignore[union-attr]
                box = line.bounding_box()
                assert box is not None and box["width"] > 250  # drawn across the two months
            assert len(panel.locator("polyline.spend").get_attribute("points").split()) == 35 + 9  # type: ignore[union-attr]
        assert page.locator("circle.denial").count() == denied  # every denial marked
        shot = browser.artifact("simulate_chart.png")
        page.screenshot(path=str(shot), full_page=True)  # the test's artifact
        assert shot.stat().st_size > 10_000


def test_the_svg_chart_is_an_svg_document(replayed: tuple[Path, Path], tmp_path: Path) -> None:
    policy, events = replayed
    out = tmp_path / "chart.svg"
    assert run(["simulate", str(policy), str(events), "--chart", str(out), "--chart-customer", "globex"],
               io.StringIO(), io.StringIO()) == 0  # fmt: skip
    root = ET.parse(out).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    assert [g.get("data-customer") for g in root.iter(f"{ns}g")] == ["globex"]  # only the customer named
    with browser.page() as page:
        page.goto(out.as_uri())
        assert page.locator("polyline.meter").count() == 2


def test_a_chart_file_of_another_kind_is_a_usage_error(replayed: tuple[Path, Path], tmp_path: Path) -> None:
    policy, events = replayed
    err = io.StringIO()
    assert run(["simulate", str(policy), str(events), "--chart", str(tmp_path / "c.png")], io.StringIO(), err) == 2
    assert "--chart writes .html or .svg" in err.getvalue()


def test_an_html_invoice_reads_like_one_and_prints(tmp_path: Path) -> None:
    """`limitr invoice --format html` in a browser: one row per line, the total as `invoice()` has it in the
    currency's format, and a PDF when printed."""
    from limitr_py import Limitr, ManualClock
    from limitr_py.invoice_text import money

    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "policy:\n  currency: USD\n  credits: {tok: {price: {amount: 0.01}}}\n  plans:\n    basic:\n"
        "      default: true\n      price: {amount: 5}\n      entitlements:\n"
        "        chat: {limit: {credit: tok, mode: soft, value: 50, resets: true, reset_sch: 'monthly:1'}}\n"
    )
    store, now = f"sqlite:///{tmp_path / 'state.db'}", datetime(2026, 3, 10, tzinfo=UTC)
    with Limitr.new(policy, store=store, clock=ManualClock(now)) as engine:
        engine.create_customer("acme <&> co")  # escaped in the page, not markup
        engine.allow("acme <&> co", "chat", 120)
        expected = engine.invoice("acme <&> co")
    assert expected is not None and expected.total == 570
    out = io.StringIO()
    command = ["invoice", str(policy), "acme <&> co", "--store", store, "--at", now.isoformat(), "--format", "html"]
    assert run(command, out, io.StringIO()) == 0
    page_file = tmp_path / "invoice.html"
    page_file.write_text(out.getvalue())
    with browser.page() as page:
        page.goto(page_file.as_uri())
        assert page.locator(".customer").inner_text() == "acme <&> co"
        assert page.locator("tr.line").count() == len(expected.lines)
        assert page.locator(".total-amount").inner_text() == f"{money(expected.total, 'USD')} USD" == "5.70 USD"
        amounts = [row.inner_text() for row in page.locator("tr.line td.amount").all()]
        assert amounts == [money(line.amount, "USD") for line in expected.lines]
        pdf = page.pdf()  # prints
        assert pdf.startswith(b"%PDF") and len(pdf) > 1000
        page.screenshot(path=str(browser.artifact("invoice_page.png")), full_page=True)
