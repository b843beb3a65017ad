"""What the rules worker remembers of a department between batches.

Reading a department's reports again for every batch was the largest single statement of the
worker (docs/benchmarks.md, "Rules"). A worker keeps each department it judged: its reports, and
the rule memory and level of the assessment it stored last, marked with that assessment's id.
The next batch trusts the entry only when the department's newest stored assessment is still that
one. Anything else (a silence check, another replica after a rebalance, a batch that rolled back)
leaves a different newest assessment, and the department is read in full again.

A trusted entry is brought up to date with the signals of the batch's own events: every stored
signal has a `signal.received` event, committed with it, and a department's events come to one
consumer in order. A signal stored after the entry was made is therefore judged when its own
event arrives, as if it had come alone; one the entry already holds is not added twice.

The reports kept are what `loading._HISTORY` reads (`loading.brought_up_to_date` adds to them).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from services.core.domain import SignalKind
from services.rules.state import Report, RuleMemory

if TYPE_CHECKING:
    from services.rules.loading import Previous

DEPARTMENTS = 50_000  # entries kept; the least recently judged goes first


@dataclass
class Remembered:
    """A department as its last batch left it, valid while `token` is its newest assessment."""

    token: int | None  # the id of the newest stored assessment (None: never judged)
    since: datetime  # the start of the window the reports were kept for
    reports: dict[SignalKind, tuple[Report, ...]]
    received: dict[uuid.UUID, datetime]  # of each report kept: when it was received
    memory: dict[str, RuleMemory]
    previous: Previous | None


class StateCache:
    """Departments the worker judged, the least recently judged dropped beyond `size`."""

    def __init__(self, size: int = DEPARTMENTS) -> None:
        self.size = size
        self._entries: OrderedDict[uuid.UUID, Remembered] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def valid(
        self, newest: dict[uuid.UUID, int | None], since: datetime
    ) -> dict[uuid.UUID, Remembered]:
        """The entries still true: the newest assessment is theirs, and the window did not
        move back. The others are dropped (the caller reads those departments in full)."""
        found: dict[uuid.UUID, Remembered] = {}
        for department_id, token in newest.items():
            entry = self._entries.get(department_id)
            if entry is None:
                continue
            if entry.token == token and entry.since <= since:
                found[department_id] = entry
            else:
                del self._entries[department_id]
        self.hits += len(found)
        self.misses += len(newest) - len(found)
        return found

    def keep(self, department_id: uuid.UUID, entry: Remembered) -> None:
        entries = self._entries
        entries[department_id] = entry
        entries.move_to_end(department_id)
        while len(entries) > self.size:
            entries.popitem(last=False)
