"""API keys: a file of `NAME SHA256 SCOPE` lines, `Authorization: Bearer KEY`, scopes read < write < admin.

The file holds only hashes: a key is shown once, when `limitr keys new` makes it. A request's key is hashed and
compared with every entry in constant time (`hmac.compare_digest`, all of them, so the time does not tell how
many entries or which one nearly matched).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

SCOPES = ("read", "write", "admin")
"""Each scope includes the ones before it: `read` — reads and explain; `write` — metering; `admin` — customers,
entities, caps, grants, billing controls."""

_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_HASH = re.compile(r"[0-9a-f]{64}")


class KeyFileError(ValueError):
    """A key file that cannot be used; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    digest: str
    scope: str


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def read_keys(path: Path) -> list[ApiKey]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read the key file `{path}`: {exc}") from None
    out: list[ApiKey] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split()
        if len(parts) != 3 or not _NAME.fullmatch(parts[0]) or not _HASH.fullmatch(parts[1]):
            raise KeyFileError(f"{path}:{number}: expected `NAME SHA256-HEX SCOPE`")
        if parts[2] not in SCOPES:
            raise KeyFileError(f"{path}:{number}: unknown scope `{parts[2]}` (one of {', '.join(SCOPES)})")
        out.append(ApiKey(parts[0], parts[1], parts[2]))
    if not out:
        raise KeyFileError(f"the key file `{path}` has no keys")
    return out


def new_key(path: Path, name: str, scope: str) -> str:
    """A new key: its hash is appended to `path` (created if missing); the key itself is returned, once."""
    if not _NAME.fullmatch(name):
        raise KeyFileError(f"a key name is 1-64 letters, digits, `_.@-`: `{name}`")
    if scope not in SCOPES:
        raise KeyFileError(f"unknown scope `{scope}` (one of {', '.join(SCOPES)})")
    if path.exists() and any(k.name == name for k in read_keys(path)):
        raise KeyFileError(f"the key file `{path}` already has a key named `{name}`")
    key = "lk_" + secrets.token_urlsafe(32)
    with path.open("a", encoding="utf-8") as out:
        out.write(f"{name} {digest(key)} {scope}\n")
    return key


def find(keys: list[ApiKey], presented: str) -> ApiKey | None:
    """The entry for a presented key, comparing against every entry in constant time."""
    wanted = digest(presented)
    found: ApiKey | None = None
    for entry in keys:
        if hmac.compare_digest(entry.digest, wanted):
            found = entry
    return found


def allows(key: ApiKey, scope: str) -> bool:
    return SCOPES.index(key.scope) >= SCOPES.index(scope)
