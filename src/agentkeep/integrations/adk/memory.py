"""``AgentkeepMemoryService``: Google ADK's memory service over agentkeep's long-term memory.

Each text event of a session becomes one ``episodic`` memory of the session's user, filed under
the app's agent (``store.py``), with its embedding computed by the store's embedder; a search is a
``db.memory.recall`` (vector and full-text candidates, ranked by relevance, importance and
recency) among that app's memories of that user. Memories do not belong to the session's
conversation: they outlive the session, as ADK's memory does. A session added again (ADK allows
it during a session's lifetime) adds only the events not kept yet (by event id).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from google.adk.events.event import Event
from google.adk.memory import _utils
from google.adk.memory.base_memory_service import BaseMemoryService, SearchMemoryResponse
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.sessions.session import Session
from google.genai import types

from agentkeep.config import Settings
from agentkeep.errors import ValidationError
from agentkeep.models.common import blank
from agentkeep.models.memory import MemoryCreate, MemoryHit
from agentkeep.repositories.base import Sync, in_worker_thread
from agentkeep.repositories.facade import DatabaseManager, connect_sync

from .sessions import Runner
from .store import AdkStore

MEMORY_TYPE = "episodic"
SEARCH_RESULTS = 10
"""At most this many memories per search (as ADK's in-memory service)."""


class AgentkeepMemoryService(BaseMemoryService):
    """ADK memory kept as agentkeep memories, searched by ``db.memory.recall``.

    Args:
        db: A store from :func:`agentkeep.connect` (or ``connect_sync``); it stays the caller's
            to close. Use :meth:`from_url` to let the service open and close its own.
        k: At most this many memories per search.
        min_score: Leave out memories scoring below this (0 to 1).
    """

    def __init__(
        self, db: DatabaseManager[Any], *, k: int = SEARCH_RESULTS, min_score: float = 0.0
    ) -> None:
        self._run = Runner(db)
        # the blocking API over the same service, called in a worker thread
        self._sync: DatabaseManager[Sync] = DatabaseManager(db.service, Sync)
        self._k = k
        self._min_score = min_score
        self._owned = False

    @classmethod
    def from_url(
        cls, url: str | os.PathLike[str] | Settings, **options: Any
    ) -> AgentkeepMemoryService:
        """A service over the store at ``url``, which :meth:`close` closes."""
        service = cls(connect_sync(url), **options)
        service._owned = True
        return service

    async def close(self) -> None:
        """Close the store if this service opened it."""
        if self._owned:
            await in_worker_thread(self._sync.close)

    async def add_session_to_memory(self, session: Session) -> None:
        await self.add_events_to_memory(
            app_name=session.app_name,
            user_id=session.user_id,
            events=session.events,
            session_id=session.id,
        )

    async def add_events_to_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        events: Sequence[Event],
        session_id: str | None = None,
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        """Keep the text events among ``events`` not kept yet (``custom_metadata`` goes into
        each memory's metadata)."""
        texts = [(event, _text(event)) for event in events]
        texts = [(event, text) for event, text in texts if not blank(text)]
        if not texts:
            return

        def known(store: AdkStore) -> tuple[Any, set[str]]:
            agent_id = store.app(app_name, create=True)
            assert agent_id is not None
            return agent_id, store.remembered_events(agent_id, user_id)

        agent_id, kept = await self._run.write(known)
        extra = dict(custom_metadata or {})
        items = [
            MemoryCreate(
                content=text,
                memory_type=MEMORY_TYPE,
                user_id=user_id,
                agent_id=agent_id,
                metadata={
                    **extra,
                    "adk_app": app_name,
                    "adk_session_id": session_id,
                    "adk_event_id": event.id,
                    "author": event.author,
                    "timestamp": event.timestamp,
                },
            )
            for event, text in texts
            if event.id not in kept
        ]
        if items:
            await in_worker_thread(self._sync.memory.remember_many, items)

    async def search_memory(
        self, *, app_name: str, user_id: str, query: str
    ) -> SearchMemoryResponse:
        """The memories of this app's user that best answer ``query``, best first: only those
        that match it (by meaning or by its words), never one that importance and recency alone
        would rank."""

        def search() -> list[MemoryHit]:
            agent = self._sync.agents.find_by_name(app_name)
            if agent is None or not query.strip():
                return []
            hits = self._sync.memory.recall(
                query,
                user_id=user_id,
                agent_id=agent.id,
                # room for those not about it, which are left out
                k=min(self._k * 2, self._sync.settings.max_page_size),
                min_score=self._min_score,
                count_access=False,
            )
            relevant = [hit for hit in hits if hit.relevance > 0][: self._k]
            if relevant:
                self._sync.memories.record_access([hit.memory.id for hit in relevant])
            return relevant

        hits = await in_worker_thread(search)
        return SearchMemoryResponse(memories=[_entry(hit) for hit in hits])

    async def delete_memory(
        self, *, app_name: str, user_id: str, memory_id: str | None = None
    ) -> None:
        """Forget one memory (by the id a search returned), if it is this app's user's."""
        if not memory_id:
            return

        def forget() -> None:
            agent = self._sync.agents.find_by_name(app_name)
            try:
                memory = self._sync.memories.find(memory_id)
            except ValidationError:  # not an id this service gave out
                return
            if (
                agent is not None
                and memory is not None
                and (memory.user_id, memory.agent_id) == (user_id, agent.id)
            ):
                self._sync.memory.forget(memory.id)

        await in_worker_thread(forget)


def _text(event: Event) -> str:
    if event.content is None or not event.content.parts:
        return ""
    return " ".join(part.text for part in event.content.parts if part.text and not part.thought)


def _entry(hit: MemoryHit) -> MemoryEntry:
    memory = hit.memory
    metadata = memory.metadata
    author = metadata.get("author")
    timestamp = metadata.get("timestamp")
    return MemoryEntry(
        id=str(memory.id),
        content=types.Content(
            role="user" if author == "user" else "model", parts=[types.Part(text=memory.content)]
        ),
        author=author if isinstance(author, str) else None,
        timestamp=_utils.format_timestamp(timestamp)
        if isinstance(timestamp, int | float)
        else datetime.isoformat(memory.created_at),
        custom_metadata={
            "score": hit.score,
            "session_id": metadata.get("adk_session_id"),
            "event_id": metadata.get("adk_event_id"),
        },
    )
