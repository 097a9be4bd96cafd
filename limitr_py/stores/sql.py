"""What the SQL stores (SQLite, PostgreSQL) share: the outbox statements of a commit."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from limitr_py.stores.base import Commit


def write_outbox(execute: Callable[[str, tuple[Any, ...]], Any], commit: Commit, mark: str) -> None:
    """Insert the commit's outbox entries and apply its acks; `mark` is the driver's placeholder (`?`, `%s`)."""
    for entry in commit.events:
        execute(f"INSERT INTO limitr_outbox (id, grp, body, consumers) VALUES ({mark}, {mark}, {mark}, {mark})",
                (entry.id, entry.group, entry.body, json.dumps(entry.consumers)))
    for event_id, owed in commit.acks.items():
        if owed:
            execute(f"UPDATE limitr_outbox SET consumers = {mark} WHERE id = {mark}", (json.dumps(owed), event_id))
        else:
            execute(f"DELETE FROM limitr_outbox WHERE id = {mark}", (event_id,))
