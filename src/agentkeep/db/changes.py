"""What changed in the store, told to whoever keeps a copy of it (the agent cache).

A repository that changes configuration or a conversation records a :class:`Change` on its unit
of work; once the unit has committed, the changes are published to the listeners of that
database. Listeners are per database (its URL), not per connection object, so a change made
through any store object of this process (the HTTP API, a script's ``connect_sync()``, the CLI
in-process) reaches every cache of this process. Other processes see the change when their
cache entries expire (PostgreSQL's LISTEN/NOTIFY is where cross-instance notification hooks in).

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


class Changes:
    """The listeners of one database."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

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
