"""Store URL query options: ours (`prefix`, `tag`) taken out and checked, the driver's passed on re-encoded.

A malformed or unknown option is refused with `InvalidArgumentError` naming it, before anything connects: an
option silently dropped (a timeout that never applies) or mangled (a `%20` decoded and sent raw) is worse.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from limitr_py.errors import InvalidArgumentError

NAMESPACE = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
"""A `prefix` (and a Redis `tag`): no glob or hash-tag characters, so one namespace can never match another's keys."""


def split(url: str, ours: frozenset[str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(our options, the driver's options in order). Each option may be given once."""
    query = urlsplit(url).query
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise InvalidArgumentError(f"malformed query in store URL `{redact(url)}`: {exc}") from None
    names = [name for name, _ in pairs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidArgumentError(f"store URL option `{repeated[0]}` is given more than once in `{redact(url)}`")
    mine = {name: value for name, value in pairs if name in ours}
    return mine, [(name, value) for name, value in pairs if name not in ours]


def namespace(value: str, option: str, url: str) -> str:
    if not NAMESPACE.fullmatch(value):
        raise InvalidArgumentError(
            f"store URL option `{option}={value[:80]}` in `{redact(url)}` must be 1-64 "
            "characters of letters, digits, `_`, `.`, `:` and `-`"
        )
    return value


def whole_number(value: str, option: str, url: str, low: int, high: int) -> int:
    """An option that is a count, such as `pool_max_size=10`."""
    if not value.isdigit() or not low <= int(value) <= high:
        raise InvalidArgumentError(
            f"store URL option `{option}={value[:80]}` in `{redact(url)}` must be a whole number from {low} to {high}"
        )
    return int(value)


def refuse_unknown(driver_options: list[tuple[str, str]], known: frozenset[str], url: str) -> None:
    for name, _ in driver_options:
        if name not in known:
            raise InvalidArgumentError(
                f"unknown store URL option `{name}` in `{redact(url)}`; known: "
                + ", ".join(f"`{k}`" for k in sorted(known))
            )


def with_query(url: str, options: list[tuple[str, str]]) -> str:
    """`url` with exactly `options` as its query, each value percent-encoded again."""
    return urlunsplit(urlsplit(url)._replace(query=urlencode(options, quote_via=quote)))


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
