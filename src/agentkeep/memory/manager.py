"""The memory manager (``db.memory``): remember, recall, change and forget memories, with their
embeddings computed by the store's embedder.

    memory = db.memory.remember("The user's daughter is called Alice", user_id="u1",
                                memory_type="fact", importance=0.8)
    for hit in db.memory.recall("what is my kid's name", user_id="u1", k=5):
        print(hit.score, hit.memory.content)

Each call computes what it must embed first, then runs its unit of work: on the async store
(``await db.memory.recall(...)``) both happen in one worker-thread hop. A recall ranks what a
vector search and a full-text search found (``memory.ranking``) and counts an access to each
memory it returns. A memory given ``expires_at`` is not recalled or listed from then on;
:meth:`MemoryManager.sweep_expired` deletes the expired ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from agentkeep.db.types import utcnow
from agentkeep.errors import ValidationError
from agentkeep.memory.embedders import Embedder, embedder_from
from agentkeep.memory.ranking import Candidate, Weights, rank, recency
from agentkeep.models.common import (
    IdLike,
    Page,
    as_input,
    check_text,
    check_text_size,
    validate_input,
)
from agentkeep.models.memory import Memory, MemoryCreate, MemoryHit, MemoryUpdate
from agentkeep.repositories.base import Bound, ModeT, Sync, blocking
from agentkeep.repositories.memories import MAX_QUERY_WORDS, words

if TYPE_CHECKING:
    from agentkeep.repositories.facade import DatabaseManager, Unit

CANDIDATES_PER_RESULT = 4
"""A recall of ``k`` ranks up to ``4 k`` candidates from each search (at least 20)."""
MIN_CANDIDATES = 20
PRUNE_BATCH = 500

Hits = list[MemoryHit]
Memories = list[Memory]


def search(
    uow: Unit,
    *,
    embedding: Sequence[float] | None,
    embedding_model: str | None,
    text: str | None,
    k: int = 10,
    min_score: float = 0.0,
    now: datetime | None = None,
    include_embedding: bool = False,
    embedded_text: bool = False,
    **filters: Any,
) -> list[MemoryHit]:
    """The ``k`` best memories for a query (a vector, text, or both) on an open unit, ranked by
    ``memory.ranking``; counts no access. ``filters``: those of ``uow.memories.search``.

    ``embedded_text``: ``embedding`` is ``text`` as the store's embedder embedded it, not a
    vector the caller gave; then a store with no memory of that model is searched by the
    text's words only (a text query is always valid), where a given vector of a model the
    store does not hold is refused.

    Candidates are read without their vectors (the similarity of one found only by its words is
    computed where the vectors are); ``include_embedding`` reads the ``k`` results' vectors."""
    if embedding is None and not text:
        raise ValidationError("give a text query or an embedding", field="q")
    if not 0.0 <= min_score <= 1.0:
        raise ValidationError("min_score must be between 0 and 1", field="min_score")
    maximum = uow.settings.max_page_size
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= maximum:
        raise ValidationError(f"k must be between 1 and {maximum}", field="k")
    pool = min(max(MIN_CANDIDATES, k * CANDIDATES_PER_RESULT), maximum)
    now = now or utcnow()
    candidates: list[Candidate] = []
    if embedding is not None:
        found = uow.memories.search(
            embedding,
            k=pool,
            embedding_model=embedding_model,
            with_embedding=False,
            known_model=not embedded_text,
            **filters,
        )
        candidates.extend(Candidate(memory, similarity) for memory, similarity in found)
    terms: list[str] | None = None
    if text:
        terms = words(text)[:MAX_QUERY_WORDS]
        found_by_vector = {candidate.memory.id for candidate in candidates}
        by_words = [
            memory
            for memory in uow.memories.match(text, limit=pool, with_embedding=False, **filters)
            if memory.id not in found_by_vector
        ]
        similar: dict[uuid.UUID, float] = {}
        if embedding is not None and embedding_model is not None and by_words:
            of_model = [m.id for m in by_words if m.embedding_model == embedding_model]
            similar = uow.memories.similarities(of_model, embedding, embedding_model)
        candidates.extend(Candidate(memory, similar.get(memory.id)) for memory in by_words)
    weights = Weights.from_settings(uow.settings)
    hits = rank(
        candidates,
        terms=terms,
        weights=weights,
        now=now,
        k=k,
        min_score=min_score,
    )
    if include_embedding and hits:
        full = {m.id: m for m in uow.memories.get_many([hit.memory.id for hit in hits])}
        hits = [
            hit.model_copy(update={"memory": full.get(hit.memory.id, hit.memory)}) for hit in hits
        ]
    return hits


class MemoryManager(Bound[ModeT]):
    """Long-term memory with embeddings computed for you: ``db.memory``."""

    def __init__(self, db: DatabaseManager[ModeT]) -> None:
        from agentkeep.repositories.facade import DatabaseManager  # noqa: PLC0415

        self._bound = db
        self._store = DatabaseManager(db.service, Sync)

    def on(self, unit: Unit) -> Any:
        raise TypeError("the memory manager is the store's; on a unit use uow.memories")

    @cached_property
    def embedder(self) -> Embedder:
        """The embedder the store's settings choose (made once per process)."""
        return embedder_from(self._store.settings)

    # -- one memory -----------------------------------------------------------------------------

    @blocking
    def remember(
        self,
        content: str,
        *,
        user_id: str | int | None = None,
        agent_id: IdLike | None = None,
        persona_id: IdLike | None = None,
        conversation_id: IdLike | None = None,
        first_message_id: IdLike | None = None,
        memory_type: str | None = None,
        importance: float = 0.5,
        metadata: dict[str, Any] | None = None,
        embedding: Sequence[float] | None = None,
        embedding_model: str | None = None,
        expires_at: datetime | None = None,
    ) -> Memory:
        """Store a memory, its embedding computed from ``content`` unless one is given.

        A given ``embedding`` is filed under ``embedding_model``; left out, the vector must be
        one of the store's embedder (its dimension), and is filed under that model. With
        ``expires_at`` (a time with a time zone, in the future, at most a century away) the
        memory is no longer recalled, searched or listed from then on, and
        :meth:`sweep_expired` deletes it.

        Raises:
            ValidationError: Bad input (``field`` names it), or an embedding of another length.
            NotFoundError: A referenced conversation, agent, persona or message does not exist.
            EmbedderError: The embedder failed.
        """
        data = validate_input(
            MemoryCreate,
            {
                "content": content,
                "user_id": None if user_id is None else str(user_id),
                "agent_id": agent_id,
                "persona_id": persona_id,
                "conversation_id": conversation_id,
                "first_message_id": first_message_id,
                "memory_type": memory_type,
                "importance": importance,
                "metadata": metadata or {},
                "embedding": embedding,
                "embedding_model": embedding_model,
                "expires_at": expires_at,
            },
        )
        return self._add([data])[0]

    @blocking
    def remember_many(self, items: Sequence[MemoryCreate]) -> Memories:
        """Store several memories in one unit of work, their embeddings computed in batches
        (those without one); all or none."""
        return self._add(items)

    @blocking
    def get(self, memory_id: IdLike) -> Memory:
        """The memory; ``NotFoundError`` if there is none. Reading it is not an access."""
        return self._store.memories.get(memory_id)

    @blocking
    def list(
        self,
        *,
        user_id: str | None = None,
        agent_id: IdLike | None = None,
        persona_id: IdLike | None = None,
        conversation_id: IdLike | None = None,
        memory_type: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Memory]:
        """Memories, newest first, filtered by any of the arguments; keyset pages."""
        return self._store.memories.list(
            user_id=user_id,
            agent_id=agent_id,
            persona_id=persona_id,
            conversation_id=conversation_id,
            memory_type=memory_type,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            cursor=cursor,
        )

    @blocking
    def update(self, memory_id: IdLike, data: MemoryUpdate | Mapping[str, Any]) -> Memory:
        """Change the fields set in ``data``; a new ``content`` is embedded again (unless
        ``data`` gives the embedding too). ``NotFoundError`` if there is no such memory."""
        data = as_input(MemoryUpdate, data)
        changes = data.model_dump(exclude_unset=True)
        check_text_size(changes.get("content"), self._store.settings.max_content_bytes, "content")
        if changes.get("content") is not None and "embedding" not in changes:
            (vector,) = self.embedder.embed([changes["content"]])
            data = data.model_copy(
                update={"embedding": vector, "embedding_model": self.embedder.name}
            )
            data.model_fields_set.update({"embedding", "embedding_model"})
        elif changes.get("embedding") is not None and "embedding_model" not in changes:
            self._check_dimension(changes["embedding"])
            data = data.model_copy(update={"embedding_model": self.embedder.name})
            data.model_fields_set.add("embedding_model")
        return self._store.memories.update(memory_id, data)

    @blocking
    def forget(self, memory_id: IdLike) -> bool:
        """Delete the memory; ``False`` if there was none."""
        return self._store.memories.delete(memory_id)

    # -- search ---------------------------------------------------------------------------------

    @blocking
    def recall(
        self,
        query: str | None = None,
        *,
        embedding: Sequence[float] | None = None,
        embedding_model: str | None = None,
        k: int = 10,
        user_id: str | int | None = None,
        agent_id: IdLike | None = None,
        persona_id: IdLike | None = None,
        conversation_id: IdLike | None = None,
        memory_type: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        min_score: float = 0.0,
        count_access: bool = True,
        include_embedding: bool = False,
    ) -> Hits:
        """The ``k`` memories that best answer ``query`` (text) or ``embedding``, best first,
        each with its score and the parts of it (see ``memory.ranking``).

        A text query is embedded by the store's embedder and also matched by its words; a
        given ``embedding`` is of ``embedding_model`` (the store's embedder's if left out).
        Each memory returned counts as accessed unless ``count_access`` is false (and shows
        that access in its ``access_count`` and ``last_accessed_at``). The memories come
        without their vectors unless ``include_embedding``.

        Raises:
            ValidationError: Neither a query nor an embedding; bad filters; or an embedding
                that no stored model made (``field``: ``embedding``).
        """
        if query is not None and not isinstance(query, str):
            raise ValidationError("query must be text", field="q")
        check_text(query, "q")
        embedded_text = False  # the vector is the query's, not one the caller gave
        if embedding is None and query and query.strip():
            (vector,) = self.embedder.embed([query])
            embedding, embedding_model, embedded_text = vector, self.embedder.name, True
        elif embedding is not None and embedding_model is None:
            self._check_dimension(embedding)
            embedding_model = self.embedder.name
        filters: dict[str, Any] = {
            "user_id": None if user_id is None else str(user_id),
            "agent_id": agent_id,
            "persona_id": persona_id,
            "conversation_id": conversation_id,
            "memory_type": memory_type,
            "created_after": created_after,
            "created_before": created_before,
        }

        def find(uow: Unit) -> Hits:
            return search(
                uow,
                embedding=embedding,
                embedding_model=embedding_model,
                text=query,
                k=k,
                min_score=min_score,
                include_embedding=include_embedding,
                embedded_text=embedded_text,
                **filters,
            )

        hits = self._store.run(find, "read")
        if count_access and hits:
            now = utcnow()
            self._store.memories.record_access([hit.memory.id for hit in hits], at=now)
            hits = [_accessed(hit, now) for hit in hits]  # as stored now, this access counted
        return hits

    # -- lifecycle ------------------------------------------------------------------------------

    @blocking
    def prune(
        self,
        *,
        below: float | None = None,
        older_than: timedelta | None = None,
        expired: bool = False,
        dry_run: bool = False,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> int:
        """Delete the memories whose lasting score (importance and recency, weighted as in a
        search, without relevance) is below ``below``, that were made more than ``older_than``
        ago, or (``expired``) whose expiry has passed; any one condition given is enough. How
        many (would be) deleted.

        Memories are read in batches by id; each batch's deletions commit on their own, so an
        interrupted prune keeps what it did. ``on_batch(seen, deleted)`` reports progress.
        """
        if below is None and older_than is None and not expired:
            raise ValidationError("say what to prune: below a score, older than an age, expired")
        if below is not None and not 0.0 <= below <= 1.0:
            raise ValidationError("below must be a score between 0 and 1", field="below")
        if older_than is not None and older_than <= timedelta(0):
            raise ValidationError("older_than must be a positive age", field="older_than")
        weights = Weights.from_settings(self._store.settings)
        now = utcnow()
        total = 0
        after: uuid.UUID | None = None
        while True:
            batch = self._store.memories.retention_batch(after=after, limit=PRUNE_BATCH)
            if not batch:
                return total
            after = batch[-1].id
            doomed = [
                memory.id
                for memory in batch
                if _prunable(
                    memory,
                    below=below,
                    older_than=older_than,
                    expired=expired,
                    weights=weights,
                    now=now,
                )
            ]
            if doomed and not dry_run:
                self._store.memories.delete_many(doomed)
            total += len(doomed)
            if on_batch is not None:
                on_batch(len(batch), len(doomed))

    @blocking
    def sweep_expired(self) -> int:
        """Delete the memories whose ``expires_at`` has passed; how many. (No read returns them
        meanwhile; a LangGraph store's sweep deletes them too.)"""
        return self._store.memories.delete_expired()

    @blocking
    def reindex(
        self, *, batch_size: int = 64, on_batch: Callable[[int], None] | None = None
    ) -> int:
        """Embed again, with the store's embedder, every memory it did not embed; how many.

        Each batch commits on its own, so an interrupted reindex resumes where it stopped.
        ``on_batch(done)`` reports how many each batch re-embedded."""
        if not 1 <= batch_size <= 10_000:
            raise ValidationError("batch_size must be between 1 and 10000", field="batch_size")
        embedder, total = self.embedder, 0
        while True:
            pending = self._store.memories.not_embedded_with(embedder.name, limit=batch_size)
            if not pending:
                return total
            vectors = embedder.embed([content for _, content in pending])
            pairs = [(key, vector) for (key, _), vector in zip(pending, vectors, strict=True)]
            self._store.memories.set_embeddings(embedder.name, pairs)
            total += len(pending)
            if on_batch is not None:
                on_batch(len(pending))

    @blocking
    def remaining_to_reindex(self) -> int:
        """How many memories the store's embedder did not embed (what a reindex would do)."""
        return self._store.memories.count_not_embedded_with(self.embedder.name)

    # -- helpers --------------------------------------------------------------------------------

    def _add(self, items: Sequence[MemoryCreate]) -> Memories:
        limit = self._store.settings.max_content_bytes
        for item in items:
            check_text_size(item.content, limit, "content")  # before embedding it, not after
            # the embedder's name would silently replace the one given
            if item.embedding is None and item.embedding_model is not None:
                raise ValidationError(
                    "embedding_model names the model of an embedding: give the embedding too",
                    field="embedding_model",
                )
        embedder = self.embedder
        missing = [i for i, item in enumerate(items) if item.embedding is None]
        vectors = embedder.embed([items[i].content for i in missing]) if missing else []
        filled = list(items)
        for i, vector in zip(missing, vectors, strict=True):
            filled[i] = filled[i].model_copy(
                update={"embedding": vector, "embedding_model": embedder.name}
            )
        for i, item in enumerate(filled):
            if item.embedding is not None and item.embedding_model is None:
                self._check_dimension(item.embedding)
                filled[i] = item.model_copy(update={"embedding_model": embedder.name})
        return self._store.memories.add_many(filled)

    def _check_dimension(self, embedding: Sequence[float]) -> None:
        embedder = self.embedder
        if len(embedding) != embedder.dimension:
            raise ValidationError(
                f"embedding has {len(embedding)} dimensions; the store's embedder "
                f"{embedder.name} makes {embedder.dimension} (name the model that made it "
                "with embedding_model)",
                field="embedding",
            )


def _accessed(hit: MemoryHit, at: datetime) -> MemoryHit:
    memory = hit.memory.model_copy(
        update={"access_count": hit.memory.access_count + 1, "last_accessed_at": at}
    )
    return hit.model_copy(update={"memory": memory})


def _prunable(
    memory: Memory,
    *,
    below: float | None,
    older_than: timedelta | None,
    expired: bool,
    weights: Weights,
    now: datetime,
) -> bool:
    if older_than is not None and now - memory.created_at > older_than:
        return True
    if expired and memory.expires_at is not None and memory.expires_at <= now:
        return True
    if below is None:
        return False
    total = weights.importance + weights.recency
    fresh = recency(memory, now, weights.half_life_days)
    lasting = (
        (weights.importance * memory.importance + weights.recency * fresh) / total
        if total > 0
        else memory.importance
    )
    return lasting < below
