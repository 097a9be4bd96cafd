"""The dashboard in a real headless Chromium, served by a real `limitr serve` process with keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from limitr_py import Limitr
from limitr_py.invoice_text import money
from limitr_py.service import keys as api_keys
from tests import browser
from tests.engine_helpers import Engines
from tests.service_helpers import POLICY, Server


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_log_in_see_a_customer_its_chart_and_its_invoice(tmp_path: Path, engines: Engines) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(POLICY))
    key_file = tmp_path / "keys.txt"
    admin = api_keys.new_key(key_file, "ops", "admin")
    reader = api_keys.new_key(key_file, "support", "read")
    writer = api_keys.new_key(key_file, "app", "write")
    url = engines.url()
    with Server(policy, url, "--api-keys", str(key_file)) as server:
        http = server.client
        auth = {"authorization": f"Bearer {admin}"}
        assert http.post("/v1/customers", json={"id": "acme", "label": "Acme Inc"}, headers=auth).status_code == 201
        assert http.post("/v1/customers", json={"id": "globex"}, headers=auth).status_code == 201
        for value in (100, 50):  # 150 tokens: 50 over the 100 included at 0.01 = 0.50
            call = {"customer": "acme", "entitlement": "tokens", "value": value}
            assert http.post("/v1/allow", json=call, headers={"authorization": f"Bearer {writer}"}).json()["allowed"]
        cap = {"value": 5, "cap_id": "budget"}
        assert http.post("/v1/customers/acme/caps", json=cap, headers=auth).status_code == 201
        with browser.page() as page:
            page.goto(f"{server.url}/dashboard")
            assert page.url.endswith("/dashboard/login")  # no key, no dashboard
            for refused in (writer, "lk_not-a-key"):  # an application's key, and no key at all
                page.fill("input[name=key]", refused)
                page.click("button[type=submit]")
                assert page.locator(".error").inner_text() == "That key does not open the dashboard."
            page.fill("input[name=key]", reader)
            page.click("button[type=submit]")
            assert page.url.endswith("/dashboard")
            cookie = next(c for c in page.context.cookies() if c["name"] == "limitr_key")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/dashboard"
            assert page.locator("tr.customer").count() == 2
            page.fill("input[type=search]", "acme inc")
            page.click("form.search button")
            assert page.locator("tr.customer").count() == 1
            page.screenshot(path=str(browser.artifact("dashboard_customers.png")), full_page=True)
            page.click("tr.customer a")
            assert page.locator(".customer-id").inner_text() == "acme"
            tokens = page.locator('tr.meter[data-entitlement="tokens"]')
            assert tokens.locator(".value").inner_text() == "150"
            assert tokens.locator(".bar > div.over").count() == 1  # past its limit: drawn over
            bars = page.locator('svg.usage-chart rect.period[data-entitlement="tokens"]')
            assert bars.count() == 1 and bars.get_attribute("data-value") == "150"
            assert page.locator("tr.cap").locator("td").nth(4).inner_text() == "5"  # nothing priced used it yet
            # newest first: adding the cap sent customer-set and customer-cap-added; the call within the 100
            # included sent meter-changed, which the history leaves out
            events = page.locator("tr.event")
            names = [events.nth(i).get_attribute("data-name") for i in range(events.count())]
            assert names == ["customer-set", "customer-cap-added", "meter-overage", "customer-set"], names
            assert "value 150 of 100 · 50 over" in events.nth(2).inner_text()
            page.screenshot(path=str(browser.artifact("dashboard_customer.png")), full_page=True)
            page.click("a.invoice-link")
            with Limitr.new(policy, store=url) as engine:
                expected = engine.invoice("acme")
            assert expected is not None and expected.total == 50
            assert page.locator(".total-amount").inner_text() == f"{money(expected.total, 'USD')} USD"
            page.screenshot(path=str(browser.artifact("dashboard_invoice.png")), full_page=True)
            answer = page.goto(f"{server.url}/dashboard/customers/nobody")
            assert answer is not None and answer.status == 404
            assert page.locator(".missing").inner_text() == "There is no customer nobody."
        with browser.page() as stranger:  # a new browser: no cookie
            stranger.goto(f"{server.url}/dashboard/customers/acme")
            assert stranger.url.endswith("/dashboard/login")
            stranger.goto(f"{server.url}/dashboard/customers/acme/invoice")
            assert stranger.url.endswith("/dashboard/login")
