"""`limitr serve`: real server processes on 127.0.0.1, real HTTP (httpx), every store.

Each answer is checked against the Python API on the same store (an engine of the test's own, opened on the
server's store URL), or against numbers worked out from the policy in tests/service_helpers.py.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from limitr_py import Limitr
from limitr_py.service import keys as api_keys
from limitr_py.service.app import openapi_document
from tests import backends
from tests.engine_helpers import Engines
from tests.service_helpers import POLICY, ROOT, Server


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(POLICY), encoding="utf-8")
    return path


@pytest.fixture
def served(policy_file: Path, engines: Engines) -> Any:
    # memory:// lives in one process, the server's: the test then has no engine of its own on it
    url = None if engines.backend == "memory" else engines.url()
    with Server(policy_file, url or "memory://") as server:
        yield server, url


def test_every_endpoint_family_answers_what_the_python_api_answers(served: Any, policy_file: Path) -> None:
    server, url = served
    http = server.client
    created = http.post("/v1/customers", json={"id": "acme", "metadata": {"tier": "gold"}})
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "acme" and created.json()["metadata"] == {"tier": "gold"}
    # a hard limit of 5: five calls pass, the sixth is denied by the included limit
    answers = [http.post("/v1/allow", json={"customer": "acme", "entitlement": "api", "value": 1}) for _ in range(6)]
    assert [a.json()["allowed"] for a in answers] == [True] * 5 + [False]
    assert answers[-1].json()["limit_type"] == "included" and answers[-1].json()["headroom"] == "0"
    check = http.post("/v1/check", json={"customer": "acme", "entitlement": "api", "value": 1}).json()
    assert check["allowed"] is False
    # 150 tokens on a soft limit of 100: allowed, 50 over at 0.01 = 50 cents on the invoice
    assert http.post("/v1/allow", json={"customer": "acme", "entitlement": "tokens", "value": 150}).json()["allowed"]
    assert http.post("/v1/track", json={"customer": "acme", "entitlement": "tokens", "value": "0.5"}).json() == {
        "recorded": True
    }
    meter = http.get("/v1/customers/acme/entitlements/tokens").json()
    assert (meter["value"], meter["limit"], meter["remaining"], meter["feature"]) == ("150.5", "100", "-50.5", False)
    flag = http.get("/v1/customers/acme/entitlements/export").json()
    assert flag["feature"] is True and flag["value"] is None
    explained = http.get("/v1/explain", params={"customer": "acme", "entitlement": "api", "value": "1"}).json()
    assert explained["allowed"] is False and [g["name"] for g in explained["gates"]][-1] == "limit"
    invoice = http.get("/v1/customers/acme/invoice").json()
    health = http.get("/healthz").json()
    assert health["status"] == "ok"
    if url is not None:  # the same store, read through the Python API
        with Limitr.new(policy_file, store=url) as engine:
            assert str(engine.value("acme", "api")) == "5"
            assert invoice["total"] == engine.invoice("acme").total  # type: ignore[union-attr]
            assert health["policy"] == engine.fingerprint
    assert invoice["total"] == 51  # 50.5 tokens over at 0.01: 50.5 cents, rounded half-up
    assert http.delete("/v1/customers/acme").status_code == 204
    assert http.get("/v1/customers/acme").status_code == 404
    metrics = http.get("/metrics").text
    assert 'limitr_decisions_total{decision="denied",endpoint="allow"} 1.0' in metrics


BAD_REQUESTS: list[tuple[str, str, Any, int]] = [
    ("POST", "/v1/allow", {"customer": "u", "entitlement": "api", "value": True}, 422),
    ("POST", "/v1/allow", {"customer": "u", "entitlement": "api", "value": [1]}, 422),
    ("POST", "/v1/allow", {"customer": "u", "entitlement": "api", "value": "1e999999999"}, 422),
    ("POST", "/v1/allow", {"customer": "u", "entitlement": "api", "value": "10parsecs"}, 422),
    ("POST", "/v1/allow", {"customer": "u", "entitlement": "api", "value": 10**40}, 422),
    ("POST", "/v1/allow", {"customer": "u", "entitlement": "api", "bogus": 1}, 422),
    ("POST", "/v1/allow", {"customer": 7, "entitlement": "api"}, 422),
    ("POST", "/v1/allow", {"entitlement": "api"}, 422),
    ("POST", "/v1/allow", {"customer": "u:x", "entitlement": "api"}, 422),
    ("POST", "/v1/allow", {"customer": "u{1}", "entitlement": "api"}, 422),
    ("POST", "/v1/allow", {"customer": "u\n", "entitlement": "api"}, 422),
    ("POST", "/v1/allow", b'{"customer": "u", "entitlement": "api", "value": NaN}', 400),
    ("POST", "/v1/allow", b'{"customer": "u", "entitlement": "api", "value": Infinity}', 400),
    ("POST", "/v1/allow", b'{"customer": "u", ', 400),
    ("POST", "/v1/allow", b'{"customer": "\xff\xfe"}', 400),
    ("POST", "/v1/allow", b"[" * 100_000, 413),
    ("POST", "/v1/allow", b'{"customer": "' + b"u" * (1024 * 1024) + b'"}', 413),
    ("POST", "/v1/allow", b"[1, 2]", 422),
    ("POST", "/v1/track", {"customer": "u", "entitlement": "api", "value": -(10**31)}, 422),
    ("POST", "/v1/customers/u/caps", {"value": -1}, 422),
    ("POST", "/v1/customers/u/grants", {"credit": "token", "value": -5}, 422),
    ("POST", "/v1/reserve", {"customer": "u", "entitlement": "api", "value": 1, "ttl": "-5s"}, 422),
    ("POST", "/v1/reserve", {"customer": "u", "entitlement": "api", "value": 1, "ttl": "5parsecs"}, 422),
    ("POST", "/v1/customers", {"id": "n", "plan": "no-such-plan"}, 422),
    ("POST", "/v1/customers", {"id": "n", "metadata": "x"}, 422),
    ("GET", "/v1/customers/u/invoice?period=yesterday", None, 422),
    ("GET", "/v1/customers/nobody/entitlements/api", None, 404),
    ("GET", "/v1/customers/u/entitlements/nothing", None, 404),
    ("GET", "/v1/explain?customer=u", None, 422),
    ("GET", "/v1/nothing", None, 404),
    ("DELETE", "/v1/allow", None, 405),
]


def test_bad_requests_get_a_4xx_problem_and_change_nothing(served: Any) -> None:
    server, _ = served
    http = server.client
    assert http.post("/v1/customers", json={"id": "u"}).status_code == 201
    assert http.post("/v1/allow", json={"customer": "u", "entitlement": "api", "value": 2}).json()["allowed"]
    before = http.get("/v1/customers/u/entitlements/api").json()
    for method, path, body, status in BAD_REQUESTS:
        if isinstance(body, bytes):
            answer = http.request(method, path, content=body, headers={"content-type": "application/json"})
        else:
            answer = http.request(method, path, json=body)
        assert answer.status_code == status, (path, body if not isinstance(body, bytes) else body[:60], answer.text)
        problem = answer.json()
        assert answer.headers["content-type"] == "application/problem+json"
        assert problem["status"] == status and problem["code"] and problem["detail"] and problem["type"]
        assert "Traceback" not in answer.text
    assert http.get("/v1/customers/u/entitlements/api").json() == before
    assert http.get("/v1/customers/n").status_code == 404


def test_numbers_are_exact_both_ways(served: Any) -> None:
    """0.1 + 0.2 is 0.3 here: a JSON number with a point is read as a decimal, and answered as a string."""
    http = served[0].client
    http.post("/v1/customers", json={"id": "u"})
    for value in (b"0.1", b"0.2"):
        body = b'{"customer": "u", "entitlement": "tokens", "value": ' + value + b"}"
        assert http.post("/v1/allow", content=body, headers={"content-type": "application/json"}).json()["allowed"]
    assert http.get("/v1/customers/u/entitlements/tokens").json()["value"] == "0.3"


@pytest.fixture
def key_file(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "keys.txt"
    made = {scope: api_keys.new_key(path, f"k-{scope}", scope) for scope in api_keys.SCOPES}
    return path, made


# (method, path, body, the scope it needs) for every endpoint family; `u` exists, with a cap and a hold
FAMILIES: list[tuple[str, str, Any, str]] = [
    ("POST", "/v1/allow", {"customer": "u", "entitlement": "tokens", "value": 1}, "write"),
    ("POST", "/v1/track", {"customer": "u", "entitlement": "tokens", "value": 1}, "write"),
    ("POST", "/v1/check", {"customer": "u", "entitlement": "api", "value": 1}, "read"),
    ("GET", "/v1/explain?customer=u&entitlement=api", None, "read"),
    ("POST", "/v1/reserve", {"customer": "u", "entitlement": "tokens", "value": 1}, "write"),
    ("POST", "/v1/release", {"customer": "u", "entitlement": "tokens", "hold_id": "h"}, "write"),
    ("GET", "/v1/customers/u", None, "read"),
    ("PATCH", "/v1/customers/u", {"label": "U"}, "admin"),
    ("POST", "/v1/customers/u/alt_ids", {"alt": "u-alt"}, "admin"),
    ("PUT", "/v1/customers/u/overrides/api", {"value": 9}, "admin"),
    ("POST", "/v1/customers/u/entities", {"entity_id": "u-e"}, "admin"),
    ("GET", "/v1/customers/u/entitlements/api", None, "read"),
    ("GET", "/v1/customers/u/invoice", None, "read"),
    ("POST", "/v1/customers/u/caps", {"value": 5}, "admin"),
    ("GET", "/v1/customers/u/caps/c", None, "read"),
    ("POST", "/v1/customers/u/grants", {"credit": "token", "value": 5}, "admin"),
    ("GET", "/v1/customers/u/grants", None, "read"),
    ("POST", "/v1/customers/u/topups", {"topup": "pack"}, "admin"),
    ("GET", "/v1/customers/u/credits/token", None, "read"),
    ("PUT", "/v1/customers/u/feature_config/tokens", {"overage": "block"}, "admin"),
    ("PUT", "/v1/customers/u/overage_limit", {"max_overage_amount": 100}, "admin"),
    ("POST", "/v1/customers/u/billing_controls", {"usage_limits": []}, "admin"),
    ("GET", "/v1/customers/u/billing_config", None, "read"),
    ("POST", "/v1/customers", {"id": "u2"}, "admin"),
]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_family_needs_a_key_of_its_scope(
    policy_file: Path, engines: Engines, key_file: tuple[Path, dict[str, str]]
) -> None:
    path, made = key_file
    with Server(policy_file, engines.url(), "--api-keys", str(path)) as server:
        http = server.client
        admin = {"authorization": f"Bearer {made['admin']}"}
        assert http.post("/v1/customers", json={"id": "u"}, headers=admin).status_code == 201
        assert http.post("/v1/customers/u/caps", json={"value": 50, "cap_id": "c"}, headers=admin).status_code == 201
        for method, url, body, needed in FAMILIES:
            for presented in (None, "lk_wrong", *api_keys.SCOPES):
                key = made.get(presented or "", presented)
                headers = {"authorization": f"Bearer {key}"} if key else {}
                status = http.request(method, url, json=body, headers=headers).status_code
                if presented is None or presented == "lk_wrong":
                    expected = {401}
                elif api_keys.SCOPES.index(presented) < api_keys.SCOPES.index(needed):
                    expected = {403}
                else:
                    expected = {200, 201}
                assert status in expected, (method, url, presented, status)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_operation_of_the_api_refuses_a_caller_without_a_key(
    policy_file: Path, engines: Engines, key_file: tuple[Path, dict[str, str]]
) -> None:
    """Each `/v1` operation of the OpenAPI document, called without a key, with any body: 401, before its body
    or its path is looked at (a route without `@needs(...)` would answer 404, 422 or 200 here)."""
    path, _ = key_file
    document = json.loads((ROOT / "schemas" / "openapi.json").read_text())
    operations = [(m.upper(), p) for p, ops in document["paths"].items() if p.startswith("/v1") for m in ops]
    assert len(operations) >= 34  # every operation the API has today
    with Server(policy_file, engines.url(), "--api-keys", str(path)) as server:
        for method, template in operations:
            url = re.sub(r"\{[^}]+\}", "x", template)
            reply = server.client.request(method, url, content=b"{not json")
            assert reply.status_code == 401, (method, template, reply.status_code, reply.text)


def test_a_key_is_compared_with_every_entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Constant time: the presented key's hash meets every entry, whether it matches the first, the last or none."""
    path = tmp_path / "keys.txt"
    made = [api_keys.new_key(path, f"k{i}", "read") for i in range(5)]
    entries = api_keys.read_keys(path)
    compared: list[int] = []
    real = api_keys.hmac.compare_digest

    def counting(a: str, b: str) -> bool:
        compared.append(1)
        return real(a, b)

    monkeypatch.setattr(api_keys.hmac, "compare_digest", counting)
    for presented in (made[0], made[-1], "lk_none"):
        compared.clear()
        found = api_keys.find(entries, presented)
        assert len(compared) == 5
        assert (found.name if found else None) == {made[0]: "k0", made[-1]: "k4"}.get(presented)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_keys_and_scopes(policy_file: Path, engines: Engines, key_file: tuple[Path, dict[str, str]]) -> None:
    path, made = key_file
    with Server(policy_file, engines.url(), "--api-keys", str(path)) as server:
        http = server.client

        def call(scope: str | None, method: str, url: str, body: Any = None, key: str | None = None) -> int:
            headers = {"authorization": f"Bearer {key or made[scope]}"} if scope or key else {}
            return http.request(method, url, json=body, headers=headers).status_code

        customer = {"id": "u"}
        allow = {"customer": "u", "entitlement": "api", "value": 1}
        assert call(None, "POST", "/v1/customers", customer) == 401
        assert call(None, "POST", "/v1/customers", customer, key="lk_not-a-key") == 401
        assert call("write", "POST", "/v1/customers", customer) == 403
        assert call("admin", "POST", "/v1/customers", customer) == 201
        assert call("read", "POST", "/v1/allow", allow) == 403
        assert call("write", "POST", "/v1/allow", allow) == 200
        assert call("admin", "POST", "/v1/allow", allow) == 200
        assert call(None, "GET", "/v1/customers/u") == 401
        assert call("read", "GET", "/v1/customers/u") == 200
        assert call("read", "DELETE", "/v1/customers/u") == 403
        assert call(None, "GET", "/healthz") == 200  # for load balancers: no key
        answer = http.get("/v1/customers/u/entitlements/api", headers={"authorization": f"Bearer {made['read']}"})
        assert answer.json()["value"] == "2"  # the two allows of the write and admin keys
        assert http.get("/v1/customers/u").headers["www-authenticate"].startswith("Bearer")


def test_keys_new_prints_a_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    command = [sys.executable, "-m", "limitr_py", "keys", "new", "ci", "--scope", "write", "--file", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)}, timeout=60)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    assert key.startswith("lk_") and len(key) > 40
    stored = path.read_text()
    assert key not in stored and stored == f"ci {api_keys.digest(key)} write\n"
    again = subprocess.run(command, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)}, timeout=60)
    assert again.returncode == 2 and "already has a key named `ci`" in again.stderr


def test_a_public_host_without_keys_is_refused(policy_file: Path) -> None:
    command = [sys.executable, "-m", "limitr_py", "serve", str(policy_file), "--host", "0.0.0.0", "--port", "0"]
    done = subprocess.run(command, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)}, timeout=60)
    assert done.returncode == 2 and "not a loopback address" in done.stderr


def test_an_invalid_policy_is_refused_before_serving(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"policy": {"credits": {}, "plans": {"p": {"entitlements": {"a": {"limit": {"credit": "x"}}}}}}}')
    command = [sys.executable, "-m", "limitr_py", "serve", str(bad), "--port", "0"]
    done = subprocess.run(command, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)}, timeout=60)
    assert done.returncode == 1 and "bad.json:1:" in done.stderr


def test_the_store_gone_is_503_never_an_allow(policy_file: Path, tmp_path: Path) -> None:
    from tests.test_store_faults import free_port

    redis = backends.RedisProcess(free_port(), tmp_path)
    redis.wait_for(backends.RedisProcess.READY)
    try:
        with Server(policy_file, f"redis://127.0.0.1:{redis.port}/0") as server:
            http = server.client
            assert http.post("/v1/customers", json={"id": "u"}).status_code == 201
            assert http.post("/v1/allow", json={"customer": "u", "entitlement": "api"}).json()["allowed"]
            redis.stop()
            for _ in range(5):
                answer = http.post("/v1/allow", json={"customer": "u", "entitlement": "api", "value": 1})
                assert answer.status_code == 503 and answer.json()["code"] == "store_unavailable"
            assert http.get("/healthz").status_code == 503
            assert "limitr_store_errors_total 6.0" in http.get("/metrics").text
    finally:
        redis.stop()


def test_the_checked_in_openapi_document_is_the_served_one(served: Any) -> None:
    checked_in = json.loads((ROOT / "schemas" / "openapi.json").read_text(encoding="utf-8"))
    assert checked_in == openapi_document(), "run `limitr openapi > schemas/openapi.json`"
    assert served[0].client.get("/openapi.json").json() == checked_in


@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgres"], indirect=True)
def test_two_workers_share_one_hard_limit(policy_file: Path, engines: Engines) -> None:
    """Two worker processes of one server on one store: the limit of 5 holds across them."""
    with Server(policy_file, engines.url(), "--workers", "2") as server:
        http = server.client
        assert http.post("/v1/customers", json={"id": "u"}).status_code == 201
        with httpx.Client(base_url=server.url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as c:
            answers = [c.post("/v1/allow", json={"customer": "u", "entitlement": "api", "value": 1}) for _ in range(12)]
        assert sum(a.json()["allowed"] for a in answers) == 5


def test_reservations_entities_caps_grants_and_controls(served: Any, policy_file: Path) -> None:
    server, url = served
    http = server.client
    assert http.post("/v1/customers", json={"id": "org", "type": "org"}).status_code == 201
    # reserve 3 of the 5 calls, settle 2 of them: 2 used, nothing held
    held = http.post("/v1/reserve", json={"customer": "org", "entitlement": "api", "value": 3}).json()
    assert held["reserved"] and held["hold_id"]
    assert http.get("/v1/customers/org/entitlements/api").json()["held"] == "3"
    assert not http.post("/v1/reserve", json={"customer": "org", "entitlement": "api", "value": 3}).json()["reserved"]
    settle = {"customer": "org", "entitlement": "api", "hold_id": held["hold_id"], "value": 2}
    assert http.post("/v1/settle", json=settle).json() == {"settled": True}
    meter = http.get("/v1/customers/org/entitlements/api").json()
    assert (meter["value"], meter["held"], meter["remaining"]) == ("2", "0", "3")
    release = {"customer": "org", "entitlement": "api", "hold_id": "no-such-hold"}
    assert http.post("/v1/release", json=release).json() == {"released": False}
    # two seats: the third entity is denied with 409 and is not created
    for seat in ("e1", "e2"):
        added = http.post("/v1/customers/org/entities", json={"entity_id": seat, "feature": "seats"})
        assert added.status_code == 201, added.text
    third = http.post("/v1/customers/org/entities", json={"entity_id": "e3", "feature": "seats"})
    assert third.status_code == 409 and third.json()["code"] == "denied"
    assert http.get("/v1/customers/e3").status_code == 404
    assert http.delete("/v1/customers/org/entities/e2", params={"feature": "seats"}).status_code == 204
    assert http.post("/v1/customers/org/entities", json={"entity_id": "e3", "feature": "seats"}).status_code == 201
    # a cap of 0.5 runes on tokens (0.01 each past the 100 included): 150 over is 1.5, denied; 40 over is 0.4
    cap = http.post("/v1/customers/org/caps", json={"value": "0.5", "cap_id": "spend", "overage_only": True})
    assert cap.status_code == 201, cap.text
    assert not http.post("/v1/allow", json={"customer": "org", "entitlement": "tokens", "value": 250}).json()["allowed"]
    assert http.post("/v1/allow", json={"customer": "org", "entitlement": "tokens", "value": 140}).json()["allowed"]
    assert http.get("/v1/customers/org/caps/spend").json()["meter_value"] == "0.4"
    assert http.post("/v1/customers/org/caps/spend/reset").json()["meter_value"] == "0"
    assert http.delete("/v1/customers/org/caps/spend").status_code == 204
    assert http.get("/v1/customers/org/caps/spend").status_code == 404
    # grants and top-ups: 1,000 tokens bought, 25 granted
    assert http.post("/v1/customers/org/topups", json={"topup": "pack"}).status_code == 200
    grant = http.post("/v1/customers/org/grants", json={"credit": "token", "value": 25, "expires_on": "2099-01-01Z"})
    assert grant.status_code == 422  # not an ISO time with a zone the way Python reads it
    grant = http.post(
        "/v1/customers/org/grants", json={"credit": "token", "value": 25, "expires_on": "2099-01-01T00:00:00Z"}
    )
    assert grant.status_code == 201, grant.text
    assert http.get("/v1/customers/org/credits/token").json() == {"credit": "token", "remaining": "1025"}
    assert len(http.get("/v1/customers/org/grants").json()) == 2
    # billing controls: Owostack's and Autumn's, read back as they apply
    assert http.put("/v1/customers/org/overage_limit", json={"max_overage_amount": 500}).status_code == 200
    config = http.put("/v1/customers/org/feature_config/tokens", json={"overage": "block"}).json()
    assert config["feature_configs"]["tokens"]["overage"] == "block"
    autumn = {"usage_limits": [{"feature_id": "api", "limit": 3, "interval": "day"}]}
    controls = http.post("/v1/customers/org/billing_controls", json=autumn)
    assert controls.status_code == 200, controls.text
    assert http.get("/v1/customers/org/billing_config").json() == controls.json()
    if url is not None:
        with Limitr.new(policy_file, store=url) as engine:
            assert wire_plain(engine.billing_config("org")) == controls.json()
            assert str(engine.credit_remaining("org", "token")) == "1025"


def wire_plain(value: Any) -> Any:
    from limitr_py.service import wire

    return json.loads(wire.dumps(value))


def test_customers_change_plan_refs_alt_ids_and_overrides(served: Any) -> None:
    http = served[0].client
    assert http.post("/v1/customers", json={"id": "u", "label": "U"}).status_code == 201
    patched = http.patch("/v1/customers/u", json={"metadata": {"a": 1}, "label": "You"}).json()
    assert (patched["label"], patched["metadata"]) == ("You", {"a": 1})
    assert http.patch("/v1/customers/u", json={"plan": "no-such"}).status_code == 422
    assert http.post("/v1/customers/u/alt_ids", json={"alt": "u@example.com"}).status_code == 201
    assert http.get("/v1/customers/u@example.com").json()["id"] == "u"
    assert http.post("/v1/customers", json={"id": "v"}).status_code == 201
    assert http.post("/v1/customers/v/alt_ids", json={"alt": "u@example.com"}).status_code == 409
    assert http.delete("/v1/alt_ids/u@example.com").status_code == 204
    assert http.get("/v1/customers/u@example.com").status_code == 404
    override = http.put("/v1/customers/u/overrides/api", json={"value": 1}).json()
    assert override["value"] == "1"
    assert http.post("/v1/allow", json={"customer": "u", "entitlement": "api", "value": 1}).json()["allowed"]
    assert not http.post("/v1/allow", json={"customer": "u", "entitlement": "api", "value": 1}).json()["allowed"]
    assert http.delete("/v1/customers/u/overrides/api").status_code == 204
    assert http.post("/v1/allow", json={"customer": "u", "entitlement": "api", "value": 1}).json()["allowed"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_changed_policy_file_is_served_without_a_restart(policy_file: Path, engines: Engines) -> None:
    with Server(policy_file, engines.url(), "--watch") as server:
        http = server.client
        before = http.get("/healthz").json()["policy"]
        http.post("/v1/customers", json={"id": "u"})
        assert http.post("/v1/allow", json={"customer": "u", "entitlement": "api", "value": 1}).json()["allowed"]
        # the hard limit of 5 calls becomes 1: the next call is denied by the new policy, usage kept
        edited = json.loads(json.dumps(POLICY))
        edited["policy"]["plans"]["free"]["entitlements"]["api"]["limit"]["value"] = 1
        mark = len(server.log)
        policy_file.write_text(json.dumps(edited), encoding="utf-8")
        server.wait_for("policy reloaded", after=mark)
        assert http.get("/healthz").json()["policy"] != before
        answer = http.post("/v1/allow", json={"customer": "u", "entitlement": "api", "value": 1}).json()
        assert answer == {"allowed": False, "gate": "limit", "limit_type": "included", "headroom": "0"}
        # an invalid edit: the policy in force stays, the diagnostic is logged with its place, healthz says so
        current = http.get("/healthz").json()["policy"]
        mark = len(server.log)
        policy_file.write_text('{"policy": {"plans": ', encoding="utf-8")
        server.wait_for("policy reload refused", after=mark)
        assert any("policy.json:1:" in line for line in server.log[mark:])
        health = http.get("/healthz").json()
        assert (health["policy"], health["reload"], health["status"]) == (current, "failed", "ok")
        assert not http.post("/v1/allow", json={"customer": "u", "entitlement": "api", "value": 1}).json()["allowed"]
        # fixed again: reloaded, and the failure is cleared
        policy_file.write_text(json.dumps(POLICY), encoding="utf-8")
        server.wait_for("policy reloaded", after=mark)
        assert "reload" not in http.get("/healthz").json()
        assert http.get("/healthz").json()["policy"] == before


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sighup_reloads_the_policy(policy_file: Path, engines: Engines) -> None:
    with Server(policy_file, engines.url()) as server:
        before = server.client.get("/healthz").json()["policy"]
        edited = json.loads(json.dumps(POLICY))
        edited["policy"]["plans"]["free"]["entitlements"]["api"]["limit"]["value"] = 9
        policy_file.write_text(json.dumps(edited), encoding="utf-8")
        mark = len(server.log)
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for("policy reloaded", after=mark)
        assert server.client.get("/healthz").json()["policy"] != before
        assert server.proc.poll() is None  # still serving


def test_an_idempotency_key_meters_once_and_replays_the_first_answer(served: Any) -> None:
    http = served[0].client
    http.post("/v1/customers", json={"id": "u"})
    call = {"customer": "u", "entitlement": "api", "value": 4}
    first = http.post("/v1/allow", json=call, headers={"Idempotency-Key": "req-1"})
    again = http.post("/v1/allow", json=call, headers={"Idempotency-Key": "req-1"})
    assert (first.status_code, again.status_code) == (200, 200) and first.json() == again.json()
    assert http.get("/v1/customers/u/entitlements/api").json()["value"] == "4"  # metered once
    other = http.post("/v1/allow", json={**call, "value": 1}, headers={"Idempotency-Key": "req-1"})
    assert other.status_code == 422 and other.json()["code"] == "idempotency_conflict"
    track = {"customer": "u", "entitlement": "tokens", "value": 10}
    for _ in range(3):
        assert http.post("/v1/track", json=track, headers={"Idempotency-Key": "t-1"}).json() == {"recorded": True}
    assert http.get("/v1/customers/u/entitlements/tokens").json()["value"] == "10"
    hold = {"customer": "u", "entitlement": "tokens", "value": 5}
    first_hold = http.post("/v1/reserve", json=hold, headers={"Idempotency-Key": "h-1"}).json()
    assert http.post("/v1/reserve", json=hold, headers={"Idempotency-Key": "h-1"}).json() == first_hold
    assert http.get("/v1/customers/u/entitlements/tokens").json()["held"] == "5"


def test_an_idempotency_key_on_an_admin_call_replays_its_first_answer_and_changes_nothing_more(served: Any) -> None:
    """Grants, top-ups and caps would be made twice by a blind retry (each call without a grant or cap id makes a
    new one); with the same `Idempotency-Key` the retry gets the first status and body, and nothing more is made."""
    http = served[0].client

    def twice(method: str, path: str, key: str, body: Any = None) -> tuple[httpx.Response, httpx.Response]:
        sent = [http.request(method, path, json=body, headers={"Idempotency-Key": key}) for _ in range(2)]
        assert sent[0].status_code == sent[1].status_code and sent[0].content == sent[1].content, sent[1].text
        assert "idempotent-replayed" not in sent[0].headers and sent[1].headers["idempotent-replayed"] == "true"
        return sent[0], sent[1]

    created, _ = twice("POST", "/v1/customers", "c-1", {"id": "u"})
    assert created.status_code == 201 and created.json()["id"] == "u"
    grant, again = twice("POST", "/v1/customers/u/grants", "g-1", {"credit": "token", "value": "50"})
    assert grant.status_code == 201 and again.json()["id"] == grant.json()["id"]
    twice("POST", "/v1/customers/u/topups", "p-1", {"topup": "pack"})
    # one promo grant of 50 and one top-up of 1,000, not two of each
    assert sorted(g["value"] for g in http.get("/v1/customers/u/grants").json()) == ["1000", "50"]
    cap, _ = twice("POST", "/v1/customers/u/caps", "k-1", {"value": "5", "cap_id": "monthly"})
    assert cap.status_code == 201 and cap.json()["id"] == "monthly"
    # without the key, the same call is a new one: the id is taken
    assert http.post("/v1/customers/u/caps", json={"value": "5", "cap_id": "monthly"}).status_code == 409
    # the same key with another body: refused, and the first answer still stands for the first body
    other = http.post(
        "/v1/customers/u/grants", json={"credit": "token", "value": "60"}, headers={"Idempotency-Key": "g-1"}
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_conflict", other.text
    assert len(http.get("/v1/customers/u/grants").json()) == 2
    # a DELETE retried answers 204 again (without the key the retry would be a 404: the customer is gone)
    gone, _ = twice("DELETE", "/v1/customers/u", "d-1")
    assert gone.status_code == 204 and http.get("/v1/customers/u").status_code == 404
    assert http.delete("/v1/customers/u").status_code == 404
    # a key that is no key: refused before anything runs
    assert http.post("/v1/customers", json={"id": "w"}, headers={"Idempotency-Key": "k" * 256}).status_code == 422
    assert http.get("/v1/customers/w").status_code == 404


def test_a_client_that_times_out_and_retries_with_its_key_is_metered_once(served: Any) -> None:
    """The first request is sent and its answer never read (the client gave up); the retry with the same key
    gets the first answer, and the meter moved once."""
    server = served[0]
    server.client.post("/v1/customers", json={"id": "u"})
    body = json.dumps({"customer": "u", "entitlement": "tokens", "value": 3}).encode()
    raw = (
        b"POST /v1/allow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Idempotency-Key: slow-1\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(raw)
        sock.recv(1)  # the server has answered (one byte read): the client now hangs up without the rest
    retry = server.client.post(
        "/v1/allow", json={"customer": "u", "entitlement": "tokens", "value": 3}, headers={"Idempotency-Key": "slow-1"}
    )
    assert retry.status_code == 200 and retry.json()["allowed"]
    assert server.client.get("/v1/customers/u/entitlements/tokens").json()["value"] == "3"


@pytest.mark.parametrize("backend", ["redis", "postgres"], indirect=True)
def test_two_servers_of_two_workers_hold_a_hard_limit_and_a_shared_cap(policy_file: Path, engines: Engines) -> None:
    """32 concurrent clients over HTTP, spread over 2 servers × 2 worker processes on one store: exactly the hard
    limit of 5 calls passes for one customer, and exactly 50 tokens pass under an org's shared cap of 50."""
    url = engines.url()
    with Server(policy_file, url, "--workers", "2") as one, Server(policy_file, url, "--workers", "2") as two:
        admin = one.client
        assert admin.post("/v1/customers", json={"id": "solo"}).status_code == 201
        assert admin.post("/v1/customers", json={"id": "org", "type": "org"}).status_code == 201
        members = [f"m{i}" for i in range(8)]
        for m in members:
            assert admin.post("/v1/customers", json={"id": m, "refs": ["org"]}).status_code == 201
        cap = {"value": 50, "cap_id": "org-tokens", "credit": "token", "shared": True}
        assert admin.post("/v1/customers/org/caps", json=cap).status_code == 201

        def client(n: int) -> tuple[int, int]:
            base = (one if n % 2 else two).url
            solo = org = 0
            with httpx.Client(base_url=base, timeout=60) as http:
                for i in range(5):
                    a = http.post("/v1/allow", json={"customer": "solo", "entitlement": "api", "value": 1})
                    b = http.post(
                        "/v1/allow", json={"customer": members[(n + i) % 8], "entitlement": "tokens"} | {"value": 1}
                    )
                    assert a.status_code == b.status_code == 200, (a.text, b.text)
                    solo += a.json()["allowed"]
                    org += b.json()["allowed"]
            return solo, org

        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(client, range(32)))
        assert sum(s for s, _ in results) == 5  # of 160 attempts
        for server in (one, two):  # one worker answers a scrape; the line is there whatever it counted
            assert "limitr_conflicts_retried_total " in server.client.get("/metrics").text
        assert sum(o for _, o in results) == 50  # of 160 attempts
        assert admin.get("/v1/customers/org/caps/org-tokens").json()["meter_value"] == "50"
        assert two.client.get("/v1/customers/solo/entitlements/api").json()["value"] == "5"


@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgres"], indirect=True)
def test_a_server_killed_under_load_loses_no_committed_usage(policy_file: Path, engines: Engines) -> None:
    """4 clients track 1 token at a time; the server is SIGKILLed once 100 calls were answered. After a restart
    the meter holds every answered call, plus at most the one each client had in flight."""
    url = engines.url()
    server = Server(policy_file, url)
    server.client.post("/v1/customers", json={"id": "u"})
    answered: list[int] = []
    enough = threading.Event()
    lock = threading.Lock()

    def client() -> int:
        mine = 0
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for _ in range(10_000):
                try:
                    reply = http.post("/v1/track", json={"customer": "u", "entitlement": "tokens", "value": 1})
                except httpx.TransportError:
                    return mine
                assert reply.status_code == 200
                mine += 1
                with lock:
                    answered.append(1)
                    if len(answered) >= 100:
                        enough.set()
        return mine

    try:
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(client) for _ in range(4)]
            assert enough.wait(120)
            server.proc.kill()  # mid-load: SIGKILL, no shutdown
            total = sum(f.result() for f in futures)
    finally:
        server.stop()
    with Server(policy_file, url) as again:
        value = int(again.client.get("/v1/customers/u/entitlements/tokens").json()["value"])
    assert total >= 100 and total <= value <= total + 4
