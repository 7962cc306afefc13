"""What changed in the store, told to whoever keeps a copy of it (the agent cache).

A repository that changes configuration or a conversation records a :class:`Change` on its unit
of work; once the unit has committed, the changes are published to the listeners of that
database. Listeners are per database (its URL), not per connection object, so a change made
through any store object of this process (the HTTP API, a script's ``connect_sync()``, the CLI
in-process) reaches every cache of this process. Other processes on the database hear of it when
they next follow the change log (``repositories.store_changes``): a unit of work logs what it
changed, with this process's :attr:`Changes.origin`, in its own transaction.

Listeners run in the thread that committed, after the commit; they must be quick and must not
call the store. A failing listener is logged and does not affect the write.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("agentkeep.changes")


@dataclass(frozen=True, slots=True)
class Change:
    """``kind`` (``"agent"``, ``"agent_tools"``, ``"persona"``, ``"tool"``, ``"module"``,
    ``"workflow"``, ``"conversation"``) of row ``key`` changed; ``value`` is the row as stored now
    (``None`` when deleted, or when the change is not to the row itself)."""

    kind: str
    key: uuid.UUID
    value: Any = None
    created: bool = False


Listener = Callable[[Change], None]

EVERYTHING = "everything"
"""The kind of a change that may be to anything: a process that fell too far behind the others'
changes to follow them one by one hears this once; a listener drops every copy it keeps."""


class Changes:
    """The listeners of one database."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self.origin = uuid.uuid4().hex
        """This process (for this database), as the change log names who made a change."""
        self.followed: int | None = None
        """The last entry of the change log this process has followed (``None``: not yet)."""

    def follow_from(self, seq: int) -> None:
        """Note that the change log has been followed through entry ``seq``."""
        with self._lock:
            if self.followed is None or seq > self.followed:
                self.followed = seq

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every committed change; returns the call that stops it."""
        with self._lock:
            self._listeners = [*self._listeners, listener]

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = [x for x in self._listeners if x is not listener]

        return unsubscribe

    def publish(self, changes: Iterable[Change]) -> None:
        listeners = self._listeners  # replaced, never mutated: safe to read without the lock
        if not listeners:
            return
        for change in changes:
            for listener in listeners:
                try:
                    listener(change)
                except Exception:
                    log.exception("a change listener failed on %s %s", change.kind, change.key)


_by_database: dict[str, Changes] = {}
_registry_lock = threading.Lock()


def listeners_of(database: str) -> Changes:
    """The listeners of the database named ``database`` (one object per database per process)."""
    with _registry_lock:
        found = _by_database.get(database)
        if found is None:
            found = _by_database[database] = Changes()
        return found
