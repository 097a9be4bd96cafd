"""The `webhooks` section of a service config file (`limitr serve --webhooks FILE`: YAML, JSON or TOML).

```yaml
webhooks:
  poll_interval: 1s               # how often a worker looks for due deliveries besides its own commits
  endpoints:
    billing:                      # the endpoint's name: letters, digits, `_`, `-`, `.`
      url: https://billing.example.com/hooks/limitr
      events: [limit-reached, usage-alert-triggered, overage-alert]   # ours, the policy's notifications, or "*"
      secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw                    # or secret_env: NAME_OF_A_VARIABLE
      retry_schedule: [5s, 30s, 2min, 10min, 1hr]                       # the default
      timeout: 10s                                                       # the default
```

pydantic checks the shape (every problem named by its path in the file); `standardwebhooks` checks each secret;
the engine checks the event names against the policy when the service starts.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from standardwebhooks.webhooks import Webhook

from limitr_py.units import duration_ms

Duration = str | int  # a duration with a unit (`30s`, `2min`), or milliseconds


class WebhookConfigError(Exception):
    """A config file that cannot be used: the message names the file and the field."""


class _Endpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(pattern=r"^https?://[^\s/]+")
    events: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    secret: str | None = None
    secret_env: str | None = None
    retry_schedule: list[Duration] | None = Field(default=None, max_length=20)
    timeout: Duration = "10s"

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: Duration) -> Duration:
        _seconds(value)
        return value

    @field_validator("retry_schedule")
    @classmethod
    def _schedule(cls, value: list[Duration] | None) -> list[Duration] | None:
        for wait in value or ():
            _seconds(wait)
        return value


class _Webhooks(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoints: dict[str, _Endpoint] = Field(min_length=1)
    poll_interval: Duration = "1s"

    @field_validator("poll_interval")
    @classmethod
    def _poll(cls, value: Duration) -> Duration:
        _seconds(value)
        return value


class _File(BaseModel):
    model_config = ConfigDict(extra="allow")  # a service config file may hold other sections
    webhooks: _Webhooks


def _seconds(value: Duration) -> float:
    try:
        ms = duration_ms(value)
    except Exception as exc:
        raise ValueError(f"not a duration: {exc}") from None
    if ms <= 0:
        raise ValueError("a duration must be positive")
    return float(ms) / 1000


@dataclass(frozen=True)
class EndpointConfig:
    name: str
    url: str
    events: tuple[str, ...]
    signer: Webhook
    retry_schedule: tuple[Duration, ...] | None
    timeout: Duration

    @property
    def timeout_seconds(self) -> float:
        return _seconds(self.timeout)


@dataclass(frozen=True)
class WebhooksConfig:
    endpoints: tuple[EndpointConfig, ...]
    poll_seconds: float


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WebhookConfigError(f"{path}: cannot read it: {exc}") from None
    try:
        if path.suffix == ".json":
            return json.loads(text)
        if path.suffix == ".toml":
            return tomllib.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise WebhookConfigError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except tomllib.TOMLDecodeError as exc:
        raise WebhookConfigError(f"{path}: not valid TOML: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise WebhookConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None


def _secret(path: Path, name: str, endpoint: _Endpoint) -> Webhook:
    where = f"{path}: webhooks.endpoints.{name}"
    if (endpoint.secret is None) == (endpoint.secret_env is None):
        raise WebhookConfigError(f"{where}: give one of `secret` or `secret_env`")
    secret = endpoint.secret
    if endpoint.secret_env is not None:
        secret = os.environ.get(endpoint.secret_env)
        if not secret:
            raise WebhookConfigError(f"{where}.secret_env: the variable `{endpoint.secret_env}` is not set")
    try:
        return Webhook(secret or "")
    except Exception as exc:
        raise WebhookConfigError(
            f"{where}.secret: not a Standard Webhooks secret (`whsec_` and base64): {exc}"
        ) from None


def load(path: Path) -> WebhooksConfig:
    """The file's `webhooks` section, checked; WebhookConfigError with the file and field otherwise."""
    raw = _read(path)
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "the file"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise WebhookConfigError(f"{path}: {field}: {first['msg']}{more}") from None
    endpoints = tuple(
        EndpointConfig(
            name,
            e.url,
            tuple(e.events),
            _secret(path, name, e),
            None if e.retry_schedule is None else tuple(e.retry_schedule),
            e.timeout,
        )
        for name, e in parsed.webhooks.endpoints.items()
    )
    return WebhooksConfig(endpoints, _seconds(parsed.webhooks.poll_interval))
