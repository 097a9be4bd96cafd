"""limitr_py: plans, credits, limits, caps and billing controls from one policy document, enforced with one call."""

from __future__ import annotations

__version__ = "0.2.0"

from limitr_py.clock import Clock, ManualClock, SystemClock
from limitr_py.compile import check_document, load_policy
from limitr_py.compile.graph import CompiledPolicy
from limitr_py.diagnostics import Diagnostic
from limitr_py.engine.estimates import Estimate
from limitr_py.engine.state import Cap, Grant
from limitr_py.engine.values import BillingConfig, Customer, Decision, Event, Gate
from limitr_py.engine.webhooks import WebhookDelivery
from limitr_py.errors import (
    ConcurrentUpdateError,
    CorruptRecordError,
    IdempotencyConflictError,
    InvalidArgumentError,
    LimitrError,
    PolicyCompileError,
    PolicyError,
    PolicySchemaError,
    PolicySyntaxError,
    StoreError,
)
from limitr_py.limitr import Limitr

__all__ = [
    "BillingConfig",
    "Cap",
    "Clock",
    "CompiledPolicy",
    "ConcurrentUpdateError",
    "CorruptRecordError",
    "Customer",
    "Decision",
    "Diagnostic",
    "Estimate",
    "Event",
    "Gate",
    "Grant",
    "IdempotencyConflictError",
    "InvalidArgumentError",
    "Limitr",
    "LimitrError",
    "ManualClock",
    "PolicyCompileError",
    "PolicyError",
    "PolicySchemaError",
    "PolicySyntaxError",
    "StoreError",
    "SystemClock",
    "WebhookDelivery",
    "__version__",
    "check_document",
    "load_policy",
]
