"""Live workflows of recently saved cases, so the next command on a case skips deserializing it.

Deserializing ``case.state`` costs more than any query of a command.  A process
that saved a case keeps the live workflow, with the exact text it stored and
the row's ``version`` after the save; the next command that reads the row at
that version *and* with that very text takes the workflow instead of parsing
the text.  The text check costs a string comparison and makes a hit safe even
where a version alone is not: a case id reused after rows were deleted (SQLite
reuses rowids), a database restored under a running process.  Three more rules
keep the cache invisible to correctness:

- an entry is *taken* (removed) by the command that uses it, so no two
  transactions or threads ever share a workflow object;
- a saved workflow goes in only when the transaction that saved it commits
  (``after_commit`` of the outermost transaction); a rollback, a failed
  commit or a session closed without commit leaves nothing behind;
- only active cases are kept: an incident is reloaded from its saved state
  before a retry, a closed case is not worked on.

A read that changes nothing (a task page, the case page) takes the workflow
too, and gives it back when done (:func:`engine.runtime.reading`): parsed if it
was not kept, so the command that usually follows (the form sent from that
page) finds it.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

# session.info key: {case id: (cache, entry)} saved by the current transaction, not yet committed.
_SAVED = "spie_saved_workflows"


@dataclass(frozen=True)
class CachedWorkflow:
    version: int
    state: str  # the text stored with that version
    workflow: Any  # BpmnWorkflow
    snapshot: Any  # projection.Snapshot of the workflow, as the projection rows have it


class WorkflowCache:
    """A bounded LRU of :class:`CachedWorkflow` by case id; thread-safe, one per engine context.

    ``capacity=0`` turns it off.  An entry holds a task tree and the text it was
    saved as, about three times the size of the state: 50 to 80 kB for the
    pathways here at mid-course, so the default stays under 25 MB a process.
    """

    def __init__(self, capacity: int = 256):
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[int, CachedWorkflow] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def take(self, case_id: int, version: int, state: str) -> CachedWorkflow | None:
        """The workflow saved as this version and text of the case, now the caller's; None if not kept."""
        with self._lock:
            entry = self._items.pop(case_id, None)
            if entry is not None and entry.version == version and entry.state == state:
                self.hits += 1
                return entry
            self.misses += 1
            return None

    def keep_on_commit(self, session: Session, case_id: int, entry: CachedWorkflow) -> None:
        """Keep ``entry`` once the session's transaction commits (the last save of a case wins)."""
        if self.capacity > 0:
            session.info.setdefault(_SAVED, {})[case_id] = (self, entry)

    def give_back(self, case_id: int, entry: CachedWorkflow) -> None:
        """Return a workflow that a reader took, or parsed, and did not change.

        An entry kept for the case in the meantime (a command saved it) stays.
        """
        if self.capacity > 0:
            with self._lock:
                if case_id not in self._items:
                    self._insert(case_id, entry)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def _put(self, case_id: int, entry: CachedWorkflow) -> None:
        with self._lock:
            self._insert(case_id, entry)

    def _insert(self, case_id: int, entry: CachedWorkflow) -> None:
        self._items[case_id] = entry
        self._items.move_to_end(case_id)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)


@event.listens_for(Session, "after_commit")
def _keep_saved(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: the outer transaction may still roll back
        return
    for case_id, (cache, entry) in session.info.pop(_SAVED, {}).items():
        cache._put(case_id, entry)


@event.listens_for(Session, "after_rollback")
def _drop_saved_on_rollback(session: Session) -> None:
    session.info.pop(_SAVED, None)  # a savepoint's rollback too: dropping more than needed is safe


@event.listens_for(Session, "after_transaction_end")
def _drop_saved_at_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # closed without commit (after a commit, already emptied)
        session.info.pop(_SAVED, None)
