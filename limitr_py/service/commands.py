"""`limitr serve`, `limitr keys new` and `limitr openapi`: the service's commands (cli.py hands them over)."""

from __future__ import annotations

import argparse
import copy
import ipaddress
import json
import os
from pathlib import Path
from typing import IO

from limitr_py.compile import load_policy
from limitr_py.errors import InvalidArgumentError, PolicyError
from limitr_py.limitr import Limitr
from limitr_py.service import app as service_app
from limitr_py.service import keys as api_keys
from limitr_py.service import webhook_config, webhooks

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake in the command line: the message, exit 2."""


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    import uvicorn

    policy = Path(args.policy)
    try:
        load_policy(policy)  # refused here, with every diagnostic, before any worker starts
    except PolicyError as exc:
        for d in exc.diagnostics:
            stderr.write(d.render() + "\n")
        return EXIT_INVALID
    if args.api_keys is None and not _loopback(args.host) and not args.insecure_no_auth:
        raise UsageError(
            f"`{args.host}` is not a loopback address: give --api-keys FILE (see `limitr keys new`), "
            "or --insecure-no-auth to serve without keys"
        )
    if args.api_keys is not None:
        try:
            api_keys.read_keys(Path(args.api_keys))
        except api_keys.KeyFileError as exc:
            raise UsageError(str(exc)) from None
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.webhooks is not None:
        _check_webhooks(Path(args.webhooks), policy)
    os.environ[service_app.ENV_POLICY] = str(policy.resolve())
    os.environ[service_app.ENV_STORE] = args.store or os.environ.get("LIMITR_STORE") or "sqlite:///limitr.db"
    if args.api_keys is not None:
        os.environ[service_app.ENV_KEYS] = str(Path(args.api_keys).resolve())
    else:
        os.environ.pop(service_app.ENV_KEYS, None)
    os.environ[service_app.ENV_WATCH] = "1" if args.watch else "0"
    if args.webhooks is not None:
        os.environ[service_app.ENV_WEBHOOKS] = str(Path(args.webhooks).resolve())
    else:
        os.environ.pop(service_app.ENV_WEBHOOKS, None)
    os.environ[service_app.ENV_HISTORY] = "0" if args.no_event_history else "1"
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)  # our `limitr.*` loggers print like uvicorn's own
    log_config["loggers"]["limitr"] = {"handlers": ["default"], "level": args.log_level.upper(), "propagate": False}
    uvicorn.run(
        "limitr_py.service.app:app_from_environment",
        factory=True,
        log_config=log_config,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        server_header=False,
    )
    return EXIT_OK


def _check_webhooks(path: Path, policy: Path) -> None:
    """The webhooks file is read, and its event names checked against the policy, before any worker starts."""
    try:
        hooks = webhook_config.load(path)
        webhooks.register(Limitr(load_policy(policy), store="memory://"), hooks)
    except webhook_config.WebhookConfigError as exc:
        raise UsageError(str(exc)) from None
    except InvalidArgumentError as exc:
        raise UsageError(f"{path}: {exc}") from None


def new_key(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    try:
        key = api_keys.new_key(Path(args.file), args.name, args.scope)
    except api_keys.KeyFileError as exc:
        raise UsageError(str(exc)) from None
    stdout.write(f"{key}\n")
    stderr.write(f"limitr: key `{args.name}` ({args.scope}) added to {args.file}; it is shown only this once\n")
    return EXIT_OK


def openapi(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    stdout.write(json.dumps(service_app.openapi_document(), indent=2, sort_keys=True) + "\n")
    return EXIT_OK
