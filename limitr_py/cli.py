"""The `limitr` command. `run(argv, stdout, stderr)` is the whole CLI (tests call it in-process); `main()` wraps it.

Exit codes: 0 success / valid / allowed, 1 invalid policy, 2 usage or I/O error, 3 internal error (a bug: one
line on stderr naming the exception, never a traceback; `validate` still checks every other file), 4 `explain`:
the call would be denied. With `--format json`, standard output is always one JSON document, errors included.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, NamedTuple, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from limitr_py import __version__, chart, iso_time, json_text
from limitr_py.chart import MAX_CUSTOMERS, Recorder
from limitr_py.clock import ManualClock
from limitr_py.compile import check, compile_document
from limitr_py.compile.graph import CompiledPolicy
from limitr_py.diagnostics import Diagnostic
from limitr_py.documents import FORMATS, SUFFIXES, format_for_path, load_document
from limitr_py.documents.writers import dump
from limitr_py.engine.records import plain
from limitr_py.errors import InvalidArgumentError, PolicyError, StoreError
from limitr_py.invoice_html import invoice_page
from limitr_py.invoice_text import invoice_lines
from limitr_py.limitr import Limitr
from limitr_py.resources import resource_path
from limitr_py.simulate import SimulationError, replay, report

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERNAL, EXIT_DENIED = 0, 1, 2, 3, 4
T = TypeVar("T")
DEFAULT_STORE = "sqlite:///limitr.db"
"""The CLI's store when neither --store nor LIMITR_STORE says otherwise: a SQLite file in the working directory."""


class _Usage(Exception):
    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.usage = usage  # the command's usage line, for mistakes in the command line itself


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Usage(message, self.format_usage())


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="limitr", description="Validate, convert and run limitr policy documents.")
    parser.add_argument("--version", action="version", version=f"limitr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    validate = sub.add_parser("validate", help="check policy files (directories recurse)")
    validate.add_argument("paths", nargs="+", metavar="PATH")
    validate.add_argument("--format", choices=["human", "json", "github"], default="human")
    validate.add_argument("--all", action="store_true", help="show every diagnostic, not only the first per file")
    validate.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip files or directories whose name matches (repeatable)",
    )

    convert = sub.add_parser("convert", help="rewrite a policy in another format (lossless)")
    convert.add_argument("path", metavar="PATH")
    convert.add_argument("--to", required=True, choices=list(FORMATS))
    convert.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")

    sub.add_parser("schema", help="print the policy JSON Schema")

    explain = sub.add_parser("explain", help="why a call would be allowed or denied, from the store's state")
    explain.add_argument("policy", metavar="POLICY")
    explain.add_argument("--customer", required=True)
    explain.add_argument("--entitlement", required=True)
    explain.add_argument("--value", default="0", help="units, with a unit suffix if the credit has one")
    explain.add_argument(
        "--store", default=None, help=f"store URL (default: $LIMITR_STORE, else {DEFAULT_STORE}, which must exist)"
    )
    explain.add_argument("--at", default=None, metavar="TIME", help="decide as of this ISO 8601 time (default: now)")
    explain.add_argument("--format", choices=["human", "json"], default="human")

    invoice = sub.add_parser("invoice", help="a customer's invoice, from the store's state")
    invoice.add_argument("policy", metavar="POLICY")
    invoice.add_argument("customer", metavar="CUSTOMER")
    invoice.add_argument(
        "--store", default=None, help=f"store URL (default: $LIMITR_STORE, else {DEFAULT_STORE}, which must exist)"
    )
    invoice.add_argument(
        "--period", default="current", help="current (default), previous, or an ISO 8601 time in the period"
    )
    invoice.add_argument("--at", default=None, metavar="TIME", help="as of this ISO 8601 time (default: now)")
    invoice.add_argument("--format", choices=["human", "json", "html"], default="human")

    simulate = sub.add_parser("simulate", help="replay timestamped usage (JSON lines) against a policy")
    simulate.add_argument("policy", metavar="POLICY")
    simulate.add_argument("events", metavar="EVENTS.jsonl", help="usage and engine calls, one JSON object a line")
    simulate.add_argument("--format", choices=["human", "json"], default="human")
    simulate.add_argument(
        "--no-create-customers",
        action="store_true",
        help="deny usage of unknown customers instead of creating them on the default plan",
    )
    simulate.add_argument("--progress", action="store_true", help="show progress on stderr (default: on a terminal)")
    simulate.add_argument(
        "--chart", metavar="OUT", default=None, help="draw meters, spend and denials over time to OUT.html or OUT.svg"
    )
    simulate.add_argument(
        "--chart-customer",
        action="append",
        default=None,
        metavar="ID",
        help=f"a customer to draw (repeatable; default: the first {MAX_CUSTOMERS} the events name)",
    )

    serve = sub.add_parser("serve", help="run the HTTP service (pip install 'limitr-py[serve]')")
    serve.add_argument("policy", metavar="POLICY")
    serve.add_argument("--store", default=None, help=f"store URL (default: $LIMITR_STORE, else {DEFAULT_STORE})")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port (the log names it)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes; they share state through the store")
    serve.add_argument("--api-keys", default=None, metavar="FILE", help="require keys from this file (`limitr keys`)")
    serve.add_argument(
        "--insecure-no-auth", action="store_true", help="serve a non-loopback host without keys (never in production)"
    )
    serve.add_argument("--watch", action="store_true", help="reload the policy when its file changes (and on SIGHUP)")
    serve.add_argument(
        "--webhooks", default=None, metavar="FILE", help="deliver events to the endpoints of this file's `webhooks`"
    )
    serve.add_argument(
        "--no-event-history", action="store_true", help="keep no recent events per customer (the dashboard's list)"
    )
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])

    keys = sub.add_parser("keys", help="API keys of `limitr serve`")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, parser_class=_Parser)
    new = keys_sub.add_parser("new", help="make a key: printed once, its hash appended to the key file")
    new.add_argument("name", metavar="NAME")
    new.add_argument("--scope", required=True, choices=["read", "write", "admin"])
    new.add_argument("--file", default="limitr-keys.txt", help="the key file (default: limitr-keys.txt)")

    sub.add_parser("openapi", help="print the HTTP service's OpenAPI document")
    return parser


def run(argv: Sequence[str], stdout: IO[str], stderr: IO[str], stdin: IO[str] | None = None) -> int:
    """Run the CLI with `argv` (without the program name); returns the exit code. `stdin` is what `validate -`
    reads (the process's standard input by default)."""
    try:
        args = _parser().parse_args(list(argv))
    except _Usage as exc:
        stderr.write(f"{exc.usage or ''}limitr: {exc}\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help / --version print and exit 0
        return int(exc.code or 0)
    as_json = getattr(args, "format", None) == "json"
    args.stdin = stdin if stdin is not None else sys.stdin
    try:
        if args.command == "validate":
            return _validate(args, stdout, stderr)
        if args.command == "convert":
            return _convert(args, stdout, stderr)
        if args.command == "simulate":
            return _simulate(args, stdout, stderr)
        if args.command == "explain":
            return _explain(args, stdout, stderr)
        if args.command == "invoice":
            return _invoice(args, stdout, stderr)
        if args.command in ("serve", "keys", "openapi"):
            return _service_command(args, stdout, stderr)
        stdout.write(resource_path("schemas", "policy.schema.json").read_text(encoding="utf-8"))
        return EXIT_OK
    except _Usage as exc:
        return _fail(EXIT_USAGE, "usage", str(exc), stdout, stderr, as_json)
    except KeyboardInterrupt:
        return _fail(130, "interrupted", "interrupted", stdout, stderr, as_json)
    except Exception as exc:  # a bug: reported in one line, not as a traceback
        return _fail(EXIT_INTERNAL, "internal", _internal(exc), stdout, stderr, as_json)


def _service_command(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    try:
        from limitr_py.service import commands
    except ImportError as exc:
        raise _Usage(f"the service needs its extra: pip install 'limitr-py[serve]' ({exc})") from None
    try:
        if args.command == "serve":
            return commands.serve(args, stdout, stderr)
        if args.command == "keys":
            return commands.new_key(args, stdout, stderr)
        return commands.openapi(args, stdout, stderr)
    except commands.UsageError as exc:
        raise _Usage(str(exc)) from None


def _internal(exc: BaseException) -> str:
    return f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]} (please report it)"


def _fail(code: int, kind: str, message: str, stdout: IO[str], stderr: IO[str], as_json: bool) -> int:
    stderr.write(f"limitr: {message}\n")
    if as_json:
        stdout.write(json.dumps({"error": {"kind": kind, "message": message, "exit": code}}) + "\n")
    return code


def main() -> None:
    sys.exit(run(sys.argv[1:], sys.stdout, sys.stderr))


# -- validate ------------------------------------------------------------------------------------------------


def _excluded(path: Path, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(part, pattern) for part in path.parts for pattern in patterns)


def _policy_files(paths: list[str], exclude: list[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if raw == "-":
            files.append(STDIN)
        elif path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in SUFFIXES
                and not _excluded(p.relative_to(path), exclude)
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                raise _Usage(f"no policy files (.json, .yaml, .yml, .toml, .stof) under `{raw}`")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise _Usage(f"`{raw}` does not exist")
    return files


class _Checked(NamedTuple):
    path: Path
    diagnostics: list[Diagnostic]
    format: str | None = None
    fingerprint: str | None = None
    internal: str | None = None  # the one-line report of a bug met while checking this file


STDIN = Path("-")
"""`validate -`: the document on standard input (its format is sniffed)."""


def _check(path: Path, stdin: IO[str]) -> _Checked:
    try:
        found = check(stdin.read(), file="<stdin>") if path == STDIN else check(path, format=format_for_path(path))
    except Exception as exc:  # a bug in a reader or a check: this file is reported, the others still checked
        return _Checked(path, [], internal=_internal(exc))
    return _Checked(path, found.diagnostics, found.format, found.fingerprint)


def _github_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def _validate(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    results = [_check(path, args.stdin) for path in _policy_files(args.paths, args.exclude)]
    invalid = [r for r in results if r.diagnostics or r.internal]
    broken = [r for r in results if r.internal]
    for r in broken:
        stderr.write(f"limitr: {r.path}: {r.internal}\n")
    if args.format == "json":
        report = {
            "valid": not invalid,
            "files": [
                {
                    "path": str(r.path),
                    "valid": not (r.diagnostics or r.internal),
                    "format": r.format,
                    "fingerprint": r.fingerprint,
                    "diagnostics": [d.to_json() for d in r.diagnostics],
                    **({"internal_error": r.internal} if r.internal else {}),
                }
                for r in results
            ],
        }
        stdout.write(json.dumps(report, indent=2) + "\n")
    elif args.format == "github":
        for r in results:
            for d in r.diagnostics:
                props = f"file={_github_escape(d.file, prop=True)},line={d.line},col={d.col},title={d.code}"
                message = d.message + (f" (hint: {d.hint})" if d.hint else "")
                stdout.write(f"::error {props}::{_github_escape(message)}\n")
            if r.internal:
                stdout.write(f"::error file={_github_escape(str(r.path), prop=True)}::{_github_escape(r.internal)}\n")
    else:
        for r in results:
            shown = r.diagnostics if args.all else r.diagnostics[:1]
            for d in shown:
                stdout.write(d.render() + "\n\n")
            if len(r.diagnostics) > len(shown):
                stdout.write(
                    f"({len(r.diagnostics) - len(shown)} more in {r.diagnostics[0].file}; use --all to see them)\n\n"
                )
        count = sum(len(r.diagnostics) for r in results)
        summary = f"{len(results)} file(s) checked: {len(results) - len(invalid)} valid, {len(invalid)} invalid"
        stdout.write(
            summary
            + (f" ({count} problem(s))" if count else "")
            + (f", {len(broken)} internal error(s)" if broken else "")
            + "\n"
        )
    return EXIT_INTERNAL if broken else EXIT_INVALID if invalid else EXIT_OK


# -- convert -------------------------------------------------------------------------------------------------


def _convert(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    path = Path(args.path)
    if not path.is_file():
        raise _Usage(f"`{args.path}` does not exist")
    try:
        doc = load_document(path)
        policy = compile_document(doc)
    except PolicyError as exc:
        stderr.write(exc.render() + "\n")
        return EXIT_INVALID
    text = dump(doc.tree, args.to)
    # Lossless or nothing: the converted text must compile to the very same policy.
    again = compile_document(load_document(text, format=args.to, file=f"<converted {args.to}>"))
    if again.fingerprint != policy.fingerprint:
        stderr.write(f"limitr: converting `{path}` to {args.to} would change the policy; nothing was written\n")
        return EXIT_INVALID
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise _Usage(f"cannot write `{args.output}`: {exc.strerror}") from None
    else:
        stdout.write(text)
    return EXIT_OK


# -- explain -------------------------------------------------------------------------------------------------


def _load_compiled(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> CompiledPolicy | None:
    path = args.policy
    try:
        return compile_document(load_document(Path(path)))
    except PolicyError as exc:
        stderr.write(exc.render() + "\n")
        if args.format == "json":
            stdout.write(
                json.dumps(
                    {
                        "error": {
                            "kind": "invalid",
                            "message": f"`{path}` is not a valid policy",
                            "exit": EXIT_INVALID,
                            "diagnostics": [d.to_json() for d in exc.diagnostics],
                        }
                    }
                )
                + "\n"
            )
        return None
    except OSError as exc:
        raise _Usage(f"cannot read `{path}`: {exc.strerror}") from None


def _store_url(args: argparse.Namespace) -> str:
    return str(args.store or os.environ.get("LIMITR_STORE") or DEFAULT_STORE)


def _read_store(args: argparse.Namespace, compiled: CompiledPolicy, read: Callable[[Limitr], T]) -> T:
    """What `read` finds in the store the command names (`--store`, else $LIMITR_STORE, else ./limitr.db, never
    created by a read), as of `--at`; a store that cannot be read is a usage error."""
    url = _store_url(args)
    _refuse_new_sqlite_file(url)
    clock = ManualClock(_instant(args.at)) if args.at is not None else None
    try:
        with Limitr(compiled, store=url, clock=clock) as engine:
            return read(engine)
    except (StoreError, InvalidArgumentError) as exc:
        raise _Usage(str(exc)) from None


def _explain(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    compiled = _load_compiled(args, stdout, stderr)
    if compiled is None:
        return EXIT_INVALID
    decision = _read_store(args, compiled, lambda engine: engine.explain(args.customer, args.entitlement, args.value))
    status = EXIT_OK if decision.allowed else EXIT_DENIED
    if args.format == "json":
        stdout.write(json.dumps(plain_json(decision), indent=2) + "\n")
        return status
    verdict = "allowed" if decision.allowed else "denied"
    stdout.write(
        f"{verdict} by gate `{decision.gate}`"
        + (f" ({decision.limit_type})" if decision.limit_type else "")
        + (f", headroom {decision.headroom}" if decision.headroom is not None else "")
        + "\n"
    )
    for gate in decision.gates:
        details = ", ".join(f"{k}={v}" for k, v in gate.detail.items() if v is not None)
        stdout.write(f"  {'pass' if gate.passed else 'FAIL'} {gate.name}: {details}\n")
    return status


def _invoice(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    """`limitr invoice`: what `invoice()` returns, as text or as `Invoice.to_dict()` (exit 2: no such customer)."""
    compiled = _load_compiled(args, stdout, stderr)
    if compiled is None:
        return EXIT_INVALID
    period: str | datetime = (
        args.period if args.period in ("current", "previous") else _instant(args.period, "--period")
    )
    invoice = _read_store(args, compiled, lambda engine: engine.invoice(args.customer, period=period))
    if invoice is None:
        raise _Usage(
            f"no customer `{args.customer}` in `{args.store or os.environ.get('LIMITR_STORE') or DEFAULT_STORE}`"
        )
    if args.format == "json":
        stdout.write(json.dumps(invoice.to_dict(), indent=2) + "\n")
    elif args.format == "html":
        stdout.write(invoice_page(invoice.to_dict()))
    else:
        stdout.writelines(line + "\n" for line in invoice_lines(invoice.to_dict()))
    return EXIT_OK


def _refuse_new_sqlite_file(url: str) -> None:
    """`explain` and `invoice` only read: a SQLite file that does not exist is a mistake (a wrong directory or
    path), and opening it would create an empty store silently."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
        if not path.exists():
            raise _Usage(f"no store at `{path}`: pass --store URL or set LIMITR_STORE (reading never creates one)")


def _instant(text: str, option: str = "--at") -> datetime:
    try:
        return iso_time.parse(text)
    except iso_time.NotATime as exc:
        example = "" if exc.no_zone else " such as 2026-03-01T12:00:00Z"
        raise _Usage(f"{option} {exc}{example}, got `{text}`") from None


def plain_json(value: object) -> object:
    """A Decision (or any value object) as JSON-safe data: numbers and times as strings."""
    return json.loads(json.dumps(plain(value), default=str))


# -- simulate ------------------------------------------------------------------------------------------------

PROGRESS_EVERY = 1_000
"""Events between two updates of the progress bar (each update is a little work for the terminal)."""


@contextmanager
def progress_bar(stream: IO[str], total: int, show: bool) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on `stream` (events done of `total`, rate, time left), or nothing when not shown."""
    if not show:
        yield None
        return
    columns = (
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _Rate(),
        TimeRemainingColumn(),
    )
    console = Console(file=stream, force_terminal=stream.isatty(), width=100 if not stream.isatty() else None)
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("events", total=total)

        def advance(done: int) -> None:
            if done % PROGRESS_EVERY == 0 or done == total:
                bar.update(task, completed=done)

        yield advance


class _Rate(ProgressColumn):
    """Events per second, as rich measures them (its own clock: the engine's time is the events' `at`)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f} events/s" if task.speed else "… events/s")


def _simulate(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    compiled = _load_compiled(args, stdout, stderr)
    if compiled is None:
        return EXIT_INVALID
    show = args.progress or stderr.isatty()
    chart_path = Path(args.chart) if args.chart else None
    if chart_path is not None and chart_path.suffix.lower() not in (".html", ".svg"):
        raise _Usage(f"--chart writes .html or .svg, not `{chart_path.name}`")
    recorder = Recorder(args.chart_customer) if chart_path is not None else None
    try:
        with open(args.events, encoding="utf-8") as lines:
            total = sum(1 for line in lines if line.strip()) if show else 0  # the bar's 100%: one fast pass
            lines.seek(0)
            with progress_bar(stderr, total, show) as advance:
                engine, summary = replay(
                    lambda clock: Limitr(compiled, clock=clock),
                    lines,
                    create_customers=not args.no_create_customers,
                    progress=advance,
                    observe=recorder,
                )
    except OSError as exc:
        raise _Usage(f"cannot read `{args.events}`: {exc.strerror}") from None
    except SimulationError as exc:
        return _fail(EXIT_USAGE, "usage", f"{args.events}: {exc}", stdout, stderr, args.format == "json")
    if chart_path is not None and recorder is not None:
        title = f"limitr simulate: {Path(args.events).name} against {Path(args.policy).name}"
        drawn = chart.html(recorder, title) if chart_path.suffix.lower() == ".html" else chart.svg(recorder, title)
        try:
            chart_path.write_text(drawn, encoding="utf-8")
        except OSError as exc:
            raise _Usage(f"cannot write `{chart_path}`: {exc.strerror}") from None
    result = report(engine, summary)
    if args.format == "json":
        stdout.write(json_text.pretty(result) + "\n")
        return EXIT_OK
    stdout.write(
        f"events: {result['events']:,}  allowed: {result['allowed']:,}  denied: {result['denied']:,}"
        f"  customers created: {result['created_customers']:,}\n"
    )
    if result["denials"]:
        stdout.write("denials by limit type: " + ", ".join(f"{k} {v:,}" for k, v in result["denials"].items()) + "\n")
    for ident, customer in result["customers"].items():
        stdout.write(f"\n{ident} (plan `{customer['plan']}`)\n")
        for name, meter in customer["meters"].items():
            stdout.write(f"  {name}: {meter['value']} of {meter['limit'] if meter['limit'] is not None else '-'}\n")
        for cap_id, cap in customer["caps"].items():
            stdout.write(f"  cap {cap_id}: {cap['meter_value']} of {cap['ceiling']}\n")
        for period, invoice in customer["invoices"].items():
            stdout.write(f"  {period}:\n")
            stdout.writelines(line + "\n" for line in invoice_lines(invoice, indent="    "))
    return EXIT_OK
