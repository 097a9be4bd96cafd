"""Every event name the engine publishes (SPEC §4, reference/limitr.md §3.8), as one Literal type.

`EventName` types the events the engine builds, so mypy refuses a misspelt one; `EVENT_NAMES` is the same list
at run time (what `on()` and a notification's `events:` accept, besides notification names and `"*"`).
`plan-set` and `plan-removed` are Limitr's events for replacing plans at run time, which this engine does not
do: they are accepted (a Limitr policy may name them) and never sent.
"""

from __future__ import annotations

from typing import Literal, get_args

EventName = Literal[
    "meter-changed",
    "meter-overage",
    "meter-limit",
    "meter-governed",
    "meter-reset",
    "cap-limit",
    "cap-threshold-crossed",
    "customer-set",
    "customer-removed",
    "customer-plan-changed",
    "customer-topup-granted",
    "customer-cap-added",
    "customer-cap-reset",
    "customer-cap-removed",
    "plan-set",
    "plan-removed",
    "limit-reached",
    "usage-alert-triggered",
    "auto-topup-triggered",
    "period-closed",
]
EVENT_NAMES: tuple[EventName, ...] = get_args(EventName)
METER_EVENTS = tuple(name for name in EVENT_NAMES if name.startswith("meter-"))
CAP_EVENTS = tuple(name for name in EVENT_NAMES if name.startswith("cap-"))
