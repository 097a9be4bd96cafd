"""Answers recorded under a caller's idempotency key, for callers that answer more than one engine call (the
HTTP service: a retried request with the same `Idempotency-Key` gets the first answer and status).

The engine's own idempotency keys (`allow(..., idempotency_key=)`, `grant`, …) record a call's result in the
same commit as its effect. A recorded answer is written after the answer was made, in a commit of its own: it
is what a retry is answered, and the calls under it whose repetition would change something (metering, grants,
top-ups, caps) carry the engine's key too, so a retry after a crash between the two repeats nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from limitr_py.engine import keys
from limitr_py.engine.api.core import Core
from limitr_py.engine.arguments import data
from limitr_py.engine.exact import exact
from limitr_py.errors import InvalidArgumentError
from limitr_py.stores.base import Commit

ANSWER_KEY = re.compile(r"[0-9a-f]{16,64}")


def _live(recorded: Any, now: datetime) -> bool:
    """A recorded answer still in force (a store drops it a day on, but not always at once)."""
    return recorded is not None and recorded["at"] + keys.IDEMPOTENCY_KEEP >= now


@exact
class Answers(Core):
    """The recorded-answer methods of `Limitr`."""

    def _answer_key(self, key: Any) -> tuple[str, str | None]:
        if not isinstance(key, str) or not ANSWER_KEY.fullmatch(key):
            raise InvalidArgumentError("an answer key is 16 to 64 lowercase hex digits (a hash of the caller's key)")
        return keys.answer(key), key if self._txn.grouped else None  # on a sharded store: a slot of its own

    def recorded_answer(self, key: str) -> dict[str, Any] | None:
        """The answer recorded under `key` in the last day, or None."""
        record_key, group = self._answer_key(key)
        found = self._txn.store.read([record_key], group)[record_key].value
        return dict(found["answer"]) if _live(found, self._clock.now()) else None

    def record_answer(self, key: str, answer: Mapping[str, Any]) -> bool:
        """Record `answer` (JSON-safe data) under `key` for a day, unless one is recorded already (False)."""
        record_key, group = self._answer_key(key)
        value = data(answer, "answer")
        now = self._clock.now()
        current = self._txn.store.read([record_key], group)[record_key]
        if _live(current.value, now):
            return False
        commit = Commit(
            {record_key: current.version},
            {record_key: {"answer": value, "at": now}},
            expires={record_key: now + keys.IDEMPOTENCY_KEEP},
            now=now,
            group=group,
        )
        return self._txn.store.commit(commit).ok
