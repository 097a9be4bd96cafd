"""Every kind of key the engine keeps in a store, in one table: its prefix, whether a call writes it only once
(so it is assumed absent and never cached), and how long the store keeps it.

The codec decodes by kind, the cache skips one-shot kinds, and the runner expires what has a keep time: none of
them matches prefixes of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    prefix: str
    one_shot: bool = False
    """Written once per call and read only by that call's retries (an idempotent answer, a settled hold)."""
    keep: timedelta | None = None
    """How long the store keeps the record after it is written (None: until it is deleted)."""


CUSTOMER = Kind("customer", "customer:")
ALIAS = Kind("alias", "alias:")  # an alt id → the customer id it names
LOCATOR = Kind("locator", "locator:")  # an id → its customer group, on stores that shard by group
ESTIMATES = Kind("estimates", "estimates:")  # policy-wide learned call sizes, one record per entitlement
IDEMPOTENCY_KEEP = timedelta(days=1)
"""How long an idempotency key is remembered: a retry later than that is a new call."""
IDEMPOTENCY = Kind("idempotency", "idempotency:", one_shot=True, keep=IDEMPOTENCY_KEEP)
SETTLED = Kind("settled", "settled:", one_shot=True)  # kept until its hold's expiry + holds.TOMBSTONE_KEEP
WEBHOOK = Kind("webhook", "webhook:")  # a webhook delivery's state (engine/webhooks.py), beside its outbox entry
EVENTS = Kind("events", "events:")  # a customer's recent events (engine/history.py)
ANSWER = Kind("answer", "answer:", one_shot=True, keep=IDEMPOTENCY_KEEP)  # a caller's recorded answer to a key

KINDS = (CUSTOMER, ALIAS, LOCATOR, ESTIMATES, IDEMPOTENCY, SETTLED, WEBHOOK, EVENTS, ANSWER)
ONE_SHOT_PREFIXES = tuple(kind.prefix for kind in KINDS if kind.one_shot)

ESTIMATES_GROUP = "limitr-estimates"
"""Policy-wide estimates are shared by every customer: on a sharded store they live in a group of their own."""


def kind_of(key: str) -> Kind | None:
    return next((kind for kind in KINDS if key.startswith(kind.prefix)), None)


def customer(ident: str) -> str:
    return CUSTOMER.prefix + ident


def alias(alt: str) -> str:
    return ALIAS.prefix + alt


def locator(ident: str) -> str:
    return LOCATOR.prefix + ident


def estimates(entitlement: str) -> str:
    return ESTIMATES.prefix + entitlement


def events(ident: str) -> str:
    return EVENTS.prefix + ident


def answer(key: str) -> str:
    return ANSWER.prefix + key


def idempotency(ident: str, key: str) -> str:
    """Scoped to the customer (as the call named it): another customer's call with the same key is its own."""
    return f"{IDEMPOTENCY.prefix}{ident}:{key}"


def settled(ident: str, hold_id: str) -> str:
    """Scoped to the customer: settling someone else's hold id never marks yours settled."""
    return f"{SETTLED.prefix}{ident}:{hold_id}"
