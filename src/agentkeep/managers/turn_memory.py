"""What a chat turn remembers: memories recalled into its prompt, the user's message kept as a
memory, and a conversation summarised now and then.

All of it happens in the worker-thread hop of the turn's first store step
(``TurnStore.prepare``), so a turn pays no extra hop for its memory: the user's message is
embedded once, before any unit of work opens (no connection is held while an embedder runs);
that one vector serves a search in a read unit (:meth:`TurnMemory.recall`: no write lock is held
while it searches, and SQLite's in-process vector cache answers read units only), then the
turn's write unit counts the access to what was recalled and keeps the message
(:meth:`TurnMemory.count_access`, :meth:`TurnMemory.capture`).

- **Recall** (``AGENTKEEP_MEMORY_RECALL`` memories, 0: none, scoring at least
  ``AGENTKEEP_MEMORY_RECALL_MIN_SCORE``, and with something of the message, a likeness or a
  word, not importance and recency alone): the user's message is the query (by meaning and by
  its words, ranked as ``db.memory.recall`` ranks). The memories searched are the
  conversation's user's (``user_id``), whichever agent made them or none: what a user told one
  agent of an application, its other agents know too. A conversation with no user recalls only
  its own memories. Each memory recalled counts as accessed; the reply's metadata lists them
  (``memories``: ``id``, ``content`` (an excerpt of at most :data:`EXCERPT_CHARS` characters),
  ``score``), and so does ``message_end``. Recall happens before the message is stored, so a
  message never recalls itself.
- **Capture** (``AGENTKEEP_MEMORY_CAPTURE``): each user message a turn stores (not a blank one)
  is also stored as an ``episodic`` memory of the conversation's user, agent and conversation,
  ``first_message_id`` naming the message, importance 0.5, in the same transaction as the message.
- **Summaries** (``AGENTKEEP_MEMORY_SUMMARY_EVERY`` = N, 0: never; only for agents on a real
  model, not the offline ``echo``): after each N messages of a conversation, once the reply is
  stored, the model summarises the last N messages into a ``semantic`` memory (importance
  :data:`SUMMARY_IMPORTANCE`).

A memory that cannot be recalled (the embedder is unavailable, the stored embeddings are of
another dimension) never fails the turn: it goes on without memories, and the reply's
``metadata.warnings`` says why (code ``memory_unavailable``). A message captured while the
embedder is unavailable is stored without an embedding (found by its words; ``agentkeep memory
reindex`` embeds it later).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentkeep.config import Settings
from agentkeep.errors import AgentkeepError, StorageError
from agentkeep.memory.manager import search
from agentkeep.models.common import blank
from agentkeep.models.conversation import Conversation, Message
from agentkeep.models.memory import Memory, MemoryCreate, MemoryHit
from agentkeep.repositories.base import Async
from agentkeep.repositories.facade import DatabaseManager, Unit

log = logging.getLogger("agentkeep.chat")

EPISODIC, SEMANTIC = "episodic", "semantic"
CAPTURE_IMPORTANCE = 0.5
SUMMARY_IMPORTANCE = 0.7
"""A summary says more than one message: it outranks them when relevance is equal."""

PROMPT_CHARS = 2000
"""A recalled memory shows in the prompt up to this many characters."""
EXCERPT_CHARS = 200
"""A recalled memory shows in the reply's metadata up to this many characters."""

UNAVAILABLE = "memory_unavailable"
"""The warning code of a turn that went on without its memories."""

Warning_ = dict[str, str]


@dataclass(frozen=True, slots=True)
class Query:
    """The user's message, embedded (or why it could not be)."""

    text: str
    embedding: list[float] | None = None
    model: str | None = None
    warnings: tuple[Warning_, ...] = ()


@dataclass(slots=True)
class Recalled:
    """The memories a turn recalled, best first, and what went wrong recalling them."""

    hits: list[MemoryHit] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)

    def shown(self, budget: int) -> list[dict[str, Any]]:
        """The memories as the reply's metadata lists them, within ``budget`` bytes of JSON."""
        listed: list[dict[str, Any]] = []
        for hit in self.hits:
            item = {
                "id": str(hit.memory.id),
                "content": _excerpt(hit.memory.content, EXCERPT_CHARS),
                "score": round(hit.score, 3),
            }
            budget -= len(json.dumps(item, ensure_ascii=False).encode()) + 1
            if budget < 0:
                break
            listed.append(item)
        return listed


class TurnMemory:
    """Recall and capture for the chat turns of one store."""

    def __init__(self, db: DatabaseManager[Async], settings: Settings) -> None:
        self._db = db
        self._settings = settings

    @property
    def active(self) -> bool:
        """Whether a turn recalls or captures anything (else nothing is embedded)."""
        return self._settings.memory_recall > 0 or self._settings.memory_capture

    def embed(self, text: str) -> Query:
        """The user's message with its embedding (blocking: call it in a worker thread, before
        the unit of work opens). An embedder that fails leaves the embedding out and says why."""
        if not self.active or not text.strip():
            return Query(text)
        try:
            embedder = self._db.memory.embedder
            (vector,) = embedder.embed([text])
            return Query(text, vector, embedder.name)
        except Exception as exc:  # the embedder is not ours: whatever it raises, chat goes on
            log.warning("the chat message could not be embedded", exc_info=True)
            reason = exc.message if isinstance(exc, AgentkeepError) else "the embedder failed"
            return Query(text, warnings=(_unavailable(reason),))

    def recalls(self, query: Query) -> bool:
        """Whether the turn of ``query`` searches its memories at all."""
        return self._settings.memory_recall > 0 and bool(query.text.strip())

    def recall(
        self,
        uow: Unit,
        query: Query,
        *,
        user_id: str | None,
        conversation_id: uuid.UUID | None,
    ) -> Recalled:
        """The memories to put into the prompt: the user's, else (no user) the conversation's
        (``None``: a new one, which has none yet). Run it in a read unit: no write lock is held
        while it searches, and a store's search caches answer read units."""
        if not self.recalls(query):
            return Recalled()
        if query.embedding is None:
            return Recalled(warnings=list(query.warnings))
        if user_id is not None:
            scope: dict[str, Any] = {"user_id": user_id}
        elif conversation_id is not None:
            scope = {"conversation_id": conversation_id}
        else:
            return Recalled()
        k = self._settings.memory_recall
        try:
            hits = search(
                uow,
                embedding=query.embedding,
                embedding_model=query.model,
                text=query.text,
                k=min(k * 2, uow.settings.max_page_size),  # room for those not about it
                min_score=self._settings.memory_recall_min_score,
                embedded_text=True,  # a store of other models' vectors: matched by words
                **scope,
            )
        except StorageError:
            raise  # the store failed: the turn fails as on any store failure
        except AgentkeepError as exc:  # e.g. embeddings stored with another dimension
            log.warning("memories were not recalled: %s", exc.message)
            return Recalled(warnings=[_unavailable(exc.message)])
        # with the default weights a fresh memory of importance 0.5 reaches the default minimum
        # score (0.3) on importance and recency alone: one with nothing of the message is left out
        return Recalled([hit for hit in hits if hit.relevance > 0][:k])

    def count_access(self, uow: Unit, recalled: Recalled) -> None:
        """Count an access to each memory recalled, on the unit that stores the turn."""
        if recalled.hits:
            uow.memories.record_access([hit.memory.id for hit in recalled.hits])

    def capture(
        self, uow: Unit, query: Query, conversation: Conversation, message: Message
    ) -> Memory | None:
        """Keep the user's message as an episodic memory, on the unit that stored it."""
        if not self._settings.memory_capture or blank(query.text):  # nothing to remember
            return None
        data = MemoryCreate(
            content=query.text,
            memory_type=EPISODIC,
            importance=CAPTURE_IMPORTANCE,
            embedding=query.embedding,
            embedding_model=query.model,
            conversation_id=conversation.id,
            agent_id=conversation.agent_id,
            first_message_id=message.id,
            user_id=conversation.user_id,
        )
        try:
            return uow.memories.add(data)
        except StorageError:
            raise
        except AgentkeepError as exc:  # checked before anything is written: the unit goes on
            if data.embedding is None:
                raise
            # the stored model's vectors have another length (recall warns of it too)
            log.warning("a chat message was kept as a memory without embedding: %s", exc.message)
            return uow.memories.add(
                data.model_copy(update={"embedding": None, "embedding_model": None})
            )

    async def keep_summary(
        self, conversation: Conversation, summarised: Sequence[Message], summary: str
    ) -> Memory:
        """Store a summary of ``summarised`` (oldest first) as a semantic memory; embedded by
        the store's embedder, or without an embedding if it is unavailable."""
        fields: dict[str, Any] = {
            "user_id": conversation.user_id,
            "agent_id": conversation.agent_id,
            "conversation_id": conversation.id,
            "first_message_id": summarised[0].id,
            "memory_type": SEMANTIC,
            "importance": SUMMARY_IMPORTANCE,
            "metadata": {"summarised_messages": len(summarised)},
        }
        try:
            return await self._db.memory.remember(summary, **fields)
        except StorageError:
            raise
        except AgentkeepError as exc:  # the embedder is away: keep it, found by its words
            log.warning("a conversation summary was kept without an embedding: %s", exc.message)
            return await self._db.memories.add(MemoryCreate(content=summary, **fields))


def memory_lines(hits: Sequence[MemoryHit]) -> list[str]:
    """The memories as the prompt shows them: one line each, whitespace folded."""
    return [_excerpt(" ".join(hit.memory.content.split()), PROMPT_CHARS) for hit in hits]


def summary_due(every: int, *, before: int, last: int) -> bool:
    """Whether a conversation whose messages went from ``before`` to ``last`` (sequence
    numbers) passed a multiple of ``every``."""
    return every > 0 and last // every > before // every


def _excerpt(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _unavailable(reason: str) -> Warning_:
    return {"code": UNAVAILABLE, "message": f"memories were not recalled: {reason}"}
