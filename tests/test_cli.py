"""The CLI, in-process through run(argv, stdout, stderr), and once as a real subprocess."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from limitr_py.cli import run
from limitr_py.compile import load_policy
from limitr_py.documents import FORMATS
from tests.conftest import INVALID, SAMPLES


def cli(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err, io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def test_validate_valid_samples_exits_0() -> None:
    code, out, _ = cli("validate", str(SAMPLES), "--exclude", "invalid")
    assert code == 0
    assert out.strip().endswith("16 file(s) checked: 16 valid, 0 invalid")


def test_validate_invalid_file_shows_the_first_problem_and_exits_1() -> None:
    code, out, _ = cli("validate", str(INVALID / "L302_pricing_model.yaml"))
    assert code == 1
    assert f"{INVALID / 'L302_pricing_model.yaml'}:3:5: error[L302]:" in out
    assert "(1 more in" in out and "use --all" in out
    assert "1 file(s) checked: 0 valid, 1 invalid (2 problem(s))" in out


def test_validate_all_shows_every_problem() -> None:
    _, out, _ = cli("validate", "--all", str(INVALID / "L302_pricing_model.yaml"))
    assert out.count("error[L302]") == 2


def test_validate_directory_recurses_and_fails_on_any_invalid_file() -> None:
    code, out, _ = cli("validate", str(SAMPLES))
    cases = [
        p
        for p in INVALID.iterdir()
        if p.suffix in (".json", ".yaml", ".toml", ".stof") and not p.name.endswith(".expected")
    ]
    assert code == 1
    assert f"{16 + len(cases)} file(s) checked: 16 valid, {len(cases)} invalid" in out


def test_validate_json_report() -> None:
    code, out, _ = cli(
        "validate",
        "--format",
        "json",
        str(INVALID / "L301_unknown_credit.stof"),
        str(SAMPLES / "lumen_api_quota" / "policy.toml"),
    )
    report = json.loads(out)
    assert code == 1 and report["valid"] is False
    bad, good = report["files"]
    assert bad["diagnostics"][0]["code"] == "L301"
    assert bad["diagnostics"][0]["pointer"] == "/policy/plans/free/entitlements/api/limit/credit"
    assert good == {
        "path": str(SAMPLES / "lumen_api_quota" / "policy.toml"),
        "valid": True,
        "format": "toml",
        "fingerprint": load_policy(SAMPLES / "lumen_api_quota" / "policy.toml").fingerprint,
        "diagnostics": [],
    }


def test_validate_github_annotations() -> None:
    code, out, _ = cli("validate", "--format", "github", str(INVALID / "L201_unknown_field.toml"))
    assert code == 1
    path = str(INVALID / "L201_unknown_field.toml").replace(":", "%3A").replace(",", "%2C")
    assert out == (
        f"::error file={path},line=3,col=1,title=L201::unknown field `pricing_modle` "
        f"(hint: did you mean `pricing_model`?)\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "/no/such/path"],
        ["validate"],
        ["frobnicate"],
        ["convert", "x.json"],
        ["validate", "--format", "xml", "."],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    code, _, err = cli(*argv)
    assert code == 2
    assert err.splitlines()[-1].startswith("limitr: ")
    if argv[0] != "frobnicate" and argv != ["validate", "/no/such/path"]:  # a malformed command line: its usage
        assert err.startswith(f"usage: limitr {argv[0]}")


def test_empty_directory_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = cli("validate", str(tmp_path))
    assert code == 2 and "no policy files" in err


@pytest.mark.parametrize("target", FORMATS)
def test_convert_writes_an_equivalent_policy(target: str, tmp_path: Path) -> None:
    source = SAMPLES / "owostack_seats_emails" / "policy.yaml"
    code, out, _ = cli("convert", str(source), "--to", target)
    assert code == 0
    assert load_policy(out, format=target).fingerprint == load_policy(source).fingerprint
    dest = tmp_path / f"out.{target}"
    assert cli("convert", str(source), "--to", target, "-o", str(dest))[0] == 0
    assert load_policy(dest).fingerprint == load_policy(source).fingerprint


def test_convert_refuses_an_invalid_policy() -> None:
    code, out, err = cli("convert", str(INVALID / "L303_tiers.stof"), "--to", "json")
    assert code == 1 and out == ""
    assert "error[L303]" in err


def test_schema_prints_the_json_schema() -> None:
    code, out, _ = cli("schema")
    schema = json.loads(out)
    assert code == 0
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "limit" in schema["$defs"]


def test_real_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "limitr_py", "validate", "--format", "github", str(INVALID / "L102_function.stof")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout.startswith("::error file=")
    assert "title=L102::functions are not supported: `fn overhead`" in proc.stdout
    ok = subprocess.run(
        [sys.executable, "-m", "limitr_py", "validate", str(SAMPLES / "ai_chat_caps")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_explain_reads_the_state_of_the_store_given_or_named_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from limitr_py import Limitr

    policy = SAMPLES / "owostack_seats_emails" / "policy.yaml"
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with Limitr.new(policy, store=url) as engine:
        engine.create_customer("acme", plan="pro")
        engine.allow("acme", "emails", 29000)
    out, err = io.StringIO(), io.StringIO()
    assert (
        run(
            [
                "explain",
                str(policy),
                "--customer",
                "acme",
                "--entitlement",
                "emails",
                "--value",
                "2000",
                "--store",
                url,
            ],
            out,
            err,
        )
        == 4  # denied: scripts can tell from the exit status
    )
    # 29,000 used of 10,000 included: 2,000 more would be 21,000 past it, over max_overage 20,000
    assert out.getvalue().startswith("denied by gate `max_overage` (max_overage), headroom 1000")
    monkeypatch.setenv("LIMITR_STORE", url)
    out = io.StringIO()
    assert (
        run(
            [
                "explain",
                str(policy),
                "--customer",
                "acme",
                "--entitlement",
                "emails",
                "--value",
                "500",
                "--format",
                "json",
            ],
            out,
            err,
        )
        == 0
    )
    decision = json.loads(out.getvalue())
    assert decision["allowed"] is True and decision["gates"][-1]["name"] == "limit"
    monkeypatch.delenv("LIMITR_STORE")
    monkeypatch.chdir(tmp_path)  # the default store is ./limitr.db, which does not exist here: never created
    out, err = io.StringIO(), io.StringIO()
    assert run(["explain", str(policy), "--customer", "acme", "--entitlement", "emails"], out, err) == 2
    assert "no store at `limitr.db`" in err.getvalue() and not (tmp_path / "limitr.db").exists()
    assert (
        run(
            ["explain", str(policy), "--customer", "acme", "--entitlement", "emails", "--store", "nosuch://x"], out, err
        )
        == 2
    )


# -- hostile files, internal errors and JSON output (issue 10, item 9) ----------------------------------------

HOSTILE_FILES = {
    "a_exponent.json": '{"policy": {"version": 1e999999999}}',
    "b_unterminated.stof": "policy: { credits: {} } /* " * 2000,
    "c_deep.yaml": "a: " + "[" * 100_000,
    "d_dotted.toml": "a" + ".a" * 50_000 + " = 1\n",
    "e_bomb.yaml": 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    + "".join(f"{n}: &{n} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)),
}


def _hostile_directory(tmp_path: Path) -> Path:
    for name, text in HOSTILE_FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "z_valid.yaml").write_bytes((SAMPLES / "ai_chat_caps" / "policy.yaml").read_bytes())
    return tmp_path


def test_validate_reports_every_hostile_file_and_still_checks_the_ones_after_them(tmp_path: Path) -> None:
    # A real process: what a CI job sees. Before the fix the first of these files never returned.
    done = subprocess.run(
        [sys.executable, "-m", "limitr_py", "validate", "--format", "json", str(_hostile_directory(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    by_name = {Path(f["path"]).name: f for f in report["files"]}
    assert set(by_name) == {*HOSTILE_FILES, "z_valid.yaml"}
    codes = {name: [d["code"] for d in f["diagnostics"]] for name, f in by_name.items()}
    assert codes == {
        "a_exponent.json": ["L204"],
        "b_unterminated.stof": ["L101"],
        "c_deep.yaml": ["L110"],
        "d_dotted.toml": ["L110"],
        "e_bomb.yaml": ["L110"],
        "z_valid.yaml": [],
    }
    assert by_name["z_valid.yaml"]["valid"] and by_name["z_valid.yaml"]["fingerprint"]


def test_an_internal_error_is_exit_3_with_one_line_and_the_other_files_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No input is known to reach a bug any more, so one is injected: the compiler fails on one file's policy.
    import limitr_py.compile as compile_module

    real = compile_module.compile_document

    def compile_or_fail(doc):  # type: ignore[no-untyped-def]
        if doc.file.endswith("b_bug.yaml"):
            raise RuntimeError("injected\nbug")
        return real(doc)

    monkeypatch.setattr(compile_module, "compile_document", compile_or_fail)
    for name in ("a_ok.yaml", "b_bug.yaml", "c_ok.yaml"):
        (tmp_path / name).write_bytes((SAMPLES / "ai_chat_caps" / "policy.yaml").read_bytes())
    code, out, err = cli("validate", str(tmp_path))
    assert code == 3
    assert err.count("\n") == 1 and "b_bug.yaml: internal error: RuntimeError: injected bug" in err
    assert "3 file(s) checked: 2 valid, 1 invalid, 1 internal error(s)" in out
    code, out, err = cli("validate", "--format", "json", str(tmp_path))
    report = json.loads(out)
    assert code == 3 and [f["valid"] for f in report["files"]] == [True, False, True]
    assert report["files"][1]["internal_error"].startswith("internal error: RuntimeError")


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "--format", "json", "no/such/path"],
        ["explain", "no/such/policy.yaml", "--customer", "c", "--entitlement", "e", "--format", "json"],
        [
            "explain",
            str(INVALID / "L302_pricing_model.yaml"),
            "--customer",
            "c",
            "--entitlement",
            "e",
            "--format",
            "json",
        ],
        ["simulate", str(SAMPLES / "ai_chat_caps" / "policy.yaml"), "no/such/events.jsonl", "--format", "json"],
    ],
)
def test_format_json_prints_one_json_document_even_on_errors(argv: list[str]) -> None:
    code, out, err = cli(*argv)
    assert code in (1, 2) and err
    report = json.loads(out)
    assert report["error"]["exit"] == code and report["error"]["message"]


def test_explain_at_a_time_decides_as_of_then(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from limitr_py import Limitr, ManualClock

    policy = SAMPLES / "autumn_credit_system" / "policy.yaml"  # api_calls: 1,000 included, monthly on the 1st
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with Limitr.new(policy, store=url, clock=ManualClock(datetime(2026, 3, 2, tzinfo=UTC))) as engine:
        engine.create_customer("c")
        engine.update_billing_controls("c", overage_allowed=[{"feature_id": "api_calls", "enabled": False}])
        assert engine.allow("c", "api_calls", 1000)
    base = ["explain", str(policy), "--customer", "c", "--entitlement", "api_calls", "--value", "1", "--store", url]
    assert cli(*base, "--at", "2026-03-20T00:00:00Z")[0] == 4  # March is used up
    assert cli(*base, "--at", "2026-04-01T00:00:01Z")[0] == 0  # April's period has begun
    code, _, err = cli(*base, "--at", "yesterday")
    assert code == 2 and "ISO 8601" in err


def test_validate_reads_standard_input_and_reports_the_detected_format() -> None:
    text = (SAMPLES / "ai_chat_caps" / "policy.toml").read_text(encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert run(["validate", "-", "--format", "json"], out, err, io.StringIO(text)) == 0
    assert json.loads(out.getvalue())["files"][0]["format"] == "toml"
    out = io.StringIO()
    broken = text.replace("[policy]", "[policy]\nbogus = 1", 1)
    assert run(["validate", "-", "--format", "json"], out, err, io.StringIO(broken)) == 1
    report = json.loads(out.getvalue())["files"][0]
    assert report["format"] == "toml" and [d["code"] for d in report["diagnostics"]] == ["L201"]


def test_the_pre_commit_hook_checks_policy_files_and_not_a_repositorys_other_config() -> None:
    import re

    import yaml

    hook = yaml.safe_load((SAMPLES.parent / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))[0]
    matches = re.compile(hook["files"]).search
    for path in ("pyproject.toml", "package.json", ".pre-commit-config.yaml", "config/app.yaml"):
        assert not matches(path), path
    for path in ("policies/pro.yaml", "billing/policy.toml", "plans.stof", "sample_policies/x/policy.json"):
        assert matches(path), path


def test_validate_shows_the_problem_to_fix_first() -> None:
    # a schema problem (L2xx) comes before a semantic one (L3xx) it may have caused, wherever they are
    doc = (
        'policy: { credits: { c: {} }, plans: { p: { entitlements: { e: { limit: { credit: "nope", value: 5 } } } } },'
        " bogus: 1 }"
    )
    code, out, _ = cli("validate", "-", stdin=doc)
    assert code == 1 and "error[L201]: unknown field `bogus`" in out.split("\n")[0]


def test_the_readmes_hook_snippet_names_this_release() -> None:
    # the tag `v<version>` marks the commit each release is cut from (git tag); README, package and changelog agree
    import re
    import tomllib

    from limitr_py import __version__

    root = SAMPLES.parent
    version = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    rev = re.search(r"^\s*rev: (\S+)", (root / "README.md").read_text(encoding="utf-8"), re.M)
    assert rev is not None and rev.group(1) == f"v{version}" and __version__ == version
    assert f"## [{version}] - " in (root / "CHANGELOG.md").read_text(encoding="utf-8")


def test_invoice_prints_what_invoice_returns(tmp_path: Path) -> None:
    """`limitr invoice` on a store written by the Python API: `--format json` is `Invoice.to_dict()`; the text has
    every line and the total in the currency's format. 70 tokens over 50 at 0.01 = 0.70, plus the 5.00 fee."""
    from datetime import UTC, datetime

    from limitr_py import Limitr, ManualClock

    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "policy:\n  currency: USD\n  credits: {tok: {price: {amount: 0.01}}}\n"
        "  plans:\n    basic:\n      default: true\n      price: {amount: 5}\n"
        "      entitlements:\n"
        "        chat: {limit: {credit: tok, mode: soft, value: 50, resets: true, reset_sch: 'monthly:1'}}\n"
    )
    store = f"sqlite:///{tmp_path / 'state.db'}"
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    at = ["--at", now.isoformat()]  # the CLI's clock, set to the engine's
    with Limitr.new(policy, store=store, clock=ManualClock(now)) as engine:
        engine.create_customer("acme")
        assert engine.allow("acme", "chat", 120)
        expected = engine.invoice("acme")
        assert expected is not None
    out, err = io.StringIO(), io.StringIO()
    assert run(["invoice", str(policy), "acme", "--store", store, "--format", "json", *at], out, err) == 0, (
        err.getvalue()
    )
    printed = json.loads(out.getvalue())
    assert printed == expected.to_dict() and printed["total"] == 570 == expected.total
    assert json.loads(json.dumps(expected.to_dict())) == printed  # JSON-safe as it is
    out = io.StringIO()
    assert run(["invoice", str(policy), "acme", "--store", store, *at], out, err) == 0
    text = out.getvalue()
    assert text.startswith("invoice of acme, ") and "5.70 USD" in text and "0.70" in text
    out = io.StringIO()
    previous = ["invoice", str(policy), "acme", "--store", store, "--period", "previous", "--format", "json", *at]
    assert run(previous, out, err) == 0
    assert json.loads(out.getvalue())["lines"] == []  # February: acme did not exist yet
    out = io.StringIO()
    assert run([*previous[:-2], "--at", "2026-04-02T00:00:00Z"], out, err) == 0
    assert json.loads(out.getvalue())["total"] == 570  # in April, March is the previous period
    for argv, message in [
        (["invoice", str(policy), "nobody", "--store", store], "no customer `nobody`"),
        (["invoice", str(policy), "acme", "--store", store, "--period", "yesterday"], "--period must be an ISO"),
        (["invoice", str(policy), "acme", "--store", f"sqlite:///{tmp_path / 'none.db'}"], "no store at"),
    ]:
        err = io.StringIO()
        assert run(argv, io.StringIO(), err) == 2 and message in err.getvalue(), err.getvalue()
