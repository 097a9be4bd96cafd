"""`Engine`: the public methods of `Limitr` over a compiled policy and a Store (`limitr_py/limitr.py` adds `new`).

Each kind of call has its own table of methods in `engine/api/` (customers, metering, reads, grants, caps,
holds, billing controls, webhooks, event history, recorded answers), and every method there does the same three
things: check its arguments, build a command (`engine/commands/`, pure: snapshot in, writes and events out), and
hand it to the transaction runner (`engine/txn.py`), which reads a versioned snapshot, runs the command, commits
with the versions it read, retries on a conflict, and publishes the events of the attempt that committed. This
class only joins the tables.
"""

from __future__ import annotations

from limitr_py.engine.api.answers import Answers
from limitr_py.engine.api.billing import Billing
from limitr_py.engine.api.caps import Caps
from limitr_py.engine.api.customers import Customers
from limitr_py.engine.api.grants import Grants
from limitr_py.engine.api.history import History
from limitr_py.engine.api.holds import Holds
from limitr_py.engine.api.metering import Metering
from limitr_py.engine.api.reads import Reads
from limitr_py.engine.api.webhooks import Webhooks


class Engine(Customers, Metering, Reads, Grants, Caps, Holds, Billing, Webhooks, History, Answers):
    """A compiled policy enforced on a store: every public method of `Limitr` (limitr_py/limitr.py adds reading
    documents and opening stores by URL, so this module needs neither the parsers nor the store drivers)."""
