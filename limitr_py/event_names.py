"""Every event name the engine publishes (SPEC §4, reference/limitr.md §3.8)."""

from __future__ import annotations

METER_EVENTS = ("meter-changed", "meter-overage", "meter-limit", "meter-governed", "meter-reset")
CAP_EVENTS = ("cap-limit", "cap-threshold-crossed")
CUSTOMER_EVENTS = (
    "customer-set",
    "customer-removed",
    "customer-plan-changed",
    "customer-topup-granted",
    "customer-cap-added",
    "customer-cap-reset",
    "customer-cap-removed",
)
BILLING_EVENTS = ("limit-reached", "usage-alert-triggered", "auto-topup-triggered", "period-closed")
EVENT_NAMES = (*METER_EVENTS, *CAP_EVENTS, *CUSTOMER_EVENTS, "plan-set", "plan-removed", *BILLING_EVENTS)
