"""Metering: one call decided and, when it writes, its changes and events recorded on the attempt."""

from __future__ import annotations

from datetime import datetime

from limitr_py.engine.decide import Decider, Request
from limitr_py.engine.txn import Attempt
from limitr_py.engine.values import Decision


def meter(
    decider: Decider,
    at: Attempt,
    now: datetime,
    request: Request,
    decisions: list[Decision] | None,
    gates: bool = True,
) -> bool:
    """`allow` (and `track`, `increment`, `decrement`): the decision's changes and events go on the attempt;
    `decisions` (when given) receives the decision of the attempt, for `allow_explained` (with every gate listed
    unless `gates` is off)."""
    outcome = decider.allow(at.snap, request, now, explain=decisions is not None and gates)
    at.put_customers(outcome.changed)
    at.events.extend(outcome.events)
    if decisions is not None:
        decisions[:] = [outcome.decision]
    return outcome.allowed
