"""Which conversation holds a session: remembered by the service, so an append skips the lookup.

A session's conversation id and its agent's never change while the session exists (a session
deleted and made again with the same ids is a new conversation with a new id). So the service
keeps the last few thousand sessions it appended to, and an append writes straight to the
conversation it remembers. What the memory may get wrong, and how it is put right:

- The session was deleted, here or by another process (or deleted and made again): the
  remembered conversation is gone, the append finds no conversation to write to and stores
  nothing; the service forgets the session, looks it up again once and answers as a lookup
  would have (the new conversation, or ``SessionNotFoundError``).
- The conversation was changed or deleted through any store object of this process (the
  Python API, the HTTP API, this service's ``delete_session``): the store tells the memory once
  the change has committed (``db.changes``), and it forgets that conversation.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable

from agentkeep.db.changes import Change, Changes

SessionKey = tuple[str, str, str]
"""An ADK session's app, user and session id."""
Found = tuple[uuid.UUID, uuid.UUID]
"""A session's conversation id and its agent's id."""

SIZE = 4096
"""Sessions remembered per service (about 0.5 MB at most)."""


class SessionKeys:
    """A bounded memory of sessions' conversations, least recently used forgotten first; safe
    to use from several threads."""

    def __init__(self, changes: Changes, size: int = SIZE) -> None:
        self._found: OrderedDict[SessionKey, Found] = OrderedDict()
        self._sessions: dict[uuid.UUID, SessionKey] = {}  # a conversation holds one session
        self._size = size
        self._lock = threading.Lock()
        self._stop: Callable[[], None] = changes.subscribe(_forgetting(weakref.ref(self)))
        weakref.finalize(self, self._stop)

    def get(self, key: SessionKey) -> Found | None:
        with self._lock:
            found = self._found.get(key)
            if found is not None:
                self._found.move_to_end(key)
            return found

    def put(self, key: SessionKey, found: Found) -> None:
        with self._lock:
            self._forget(key)
            self._found[key] = found
            self._sessions[found[0]] = key
            if len(self._found) > self._size:
                self._forget(next(iter(self._found)))

    def drop(self, key: SessionKey) -> None:
        with self._lock:
            self._forget(key)

    def drop_conversation(self, conversation_id: uuid.UUID) -> None:
        with self._lock:
            key = self._sessions.get(conversation_id)
            if key is not None:
                self._forget(key)

    def _forget(self, key: SessionKey) -> None:
        found = self._found.pop(key, None)
        if found is not None and self._sessions.get(found[0]) == key:
            del self._sessions[found[0]]

    def close(self) -> None:
        """Stop hearing of the store's changes."""
        self._stop()

    def __len__(self) -> int:
        return len(self._found)


def _forgetting(keys: weakref.ref[SessionKeys]) -> Callable[[Change], None]:
    # holds the memory weakly: a service dropped without close() does not stay alive through it
    def heard(change: Change) -> None:
        memory = keys()
        if memory is not None and change.kind == "conversation":
            memory.drop_conversation(change.key)

    return heard
