"""Long-term memories: store, list, update, and find by meaning or by their words.

Each embedding is stored with the name of the model that made it (``embedding_models`` lists them,
each with its one dimension). A search by vector compares the query only with the vectors of its
model, nearest first by cosine distance:

- on PostgreSQL in SQL, with pgvector's ``<=>`` through the model's HNSW index (made when the model
  is registered, for up to 2,000 dimensions), with iterative scans so that filtered searches keep
  their recall;
- on SQLite (file or in memory) exactly, with numpy, over the memories that pass the filters:
  in a read unit through an in-process float32 matrix of the model's vectors that follows every
  writer through a change log kept by triggers (``repositories.vector_cache``), the filters
  applied in SQL; in a write unit (which may see its own uncommitted rows) from the table.

A search by words (:meth:`MemoryRepository.match`) uses the backend's full-text index (FTS5 on
SQLite, a ``tsvector`` GIN index on PostgreSQL) and finds memories containing any of the words.
Ranking the two together, with importance and recency, is ``memory.ranking``'s work.
Searching does not count as an access; call :meth:`MemoryRepository.record_access` for the
memories actually used.

A memory may expire (``expires_at``, indexed): searches, matches and lists leave out the
memories expired when they run (SQLite's in-process vector matrix is asked for as many more as
there are expired memories of the model, found by that index, and those are dropped), and
:meth:`MemoryRepository.delete_expired` sweeps them. Reading one by its id still finds it until
then.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from array import array
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from pgvector.sqlalchemy import VECTOR
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import (
    Column,
    ColumnElement,
    CursorResult,
    LargeBinary,
    Row,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy import text as sql

from agentkeep.db.rows import MEMORIES_FTS, MEMORIES_VECTOR_INDEX
from agentkeep.db.tables import (
    agents,
    conversations,
    embedding_models,
    memories,
    messages,
    personas,
)
from agentkeep.db.types import new_id, utcnow
from agentkeep.errors import ValidationError
from agentkeep.models.common import (
    IdLike,
    Page,
    as_input,
    blank,
    check_json,
    check_limit,
    check_text,
    check_text_size,
    reason,
    to_uuid,
    unspaced,
)
from agentkeep.models.memory import (
    EmbeddingModel,
    EmbeddingVector,
    Memory,
    MemoryCreate,
    MemoryUpdate,
)
from agentkeep.repositories.base import (
    ModeT,
    changes_of,
    dialect_insert,
    load,
    load_all,
    operation,
    require,
)
from agentkeep.repositories.conversation_flow import MAX_AGE_SECONDS
from agentkeep.repositories.keyed import IdRepository, changed
from agentkeep.repositories.keyset import newest_first, to_page
from agentkeep.repositories.vector_cache import cache_of

_REFERENCES = (
    ("conversation_id", conversations),
    ("agent_id", agents),
    ("persona_id", personas),
    ("first_message_id", messages),
)
_VECTOR: TypeAdapter[list[float]] = TypeAdapter(EmbeddingVector)
Float32 = npt.NDArray[np.float32]
# aliases: inside the class, ``list`` names the method
Scored = list[tuple[Memory, float]]
Conditions = list[ColumnElement[bool]]
Vector = list[float]
Columns = list[Column[Any]]
Memories = list[Memory]
Pairs = list[tuple[uuid.UUID, str]]
Models = list[EmbeddingModel]
Ranked = list[tuple[uuid.UUID, float]]

HNSW_MAX_DIMENSIONS = 2000
"""pgvector's HNSW indexes ``vector`` columns of at most this many dimensions; a model with more is
searched exactly."""
MAX_QUERY_WORDS = 32
"""Words of a text query used for full-text matching (the rest are ignored)."""
WORD = re.compile(r"\w+")


_WITHOUT_VECTOR = [column for column in memories.c if column.name != "embedding"]
"""Every column but the embedding: what a search candidate needs."""


def _columns(with_embedding: bool) -> Columns:
    return list(memories.c) if with_embedding else _WITHOUT_VECTOR


def words(text: str) -> list[str]:
    """The distinct words of ``text``, casefolded, in order: what a text query matches."""
    return list(dict.fromkeys(word.casefold() for word in WORD.findall(text)))


def unnamed_model(dimension: int) -> str:
    """The model name a vector is filed under when nobody says which model made it."""
    return f"unnamed-{dimension}"


def vector_index_name(model: str) -> str:
    """PostgreSQL: the name of ``model``'s HNSW index."""
    return MEMORIES_VECTOR_INDEX + hashlib.sha1(model.encode()).hexdigest()[:16]


class MemoryRepository(IdRepository[ModeT, Memory]):
    """SQL for the ``memories`` and ``embedding_models`` tables."""

    _table = memories
    _item = Memory
    _noun = "memory"

    @operation("write")
    def add(self, data: MemoryCreate | Mapping[str, Any]) -> Memory:
        """Store a memory (its embedding, if any, under its model: see :meth:`register_model`).

        Raises:
            NotFoundError: A referenced conversation, agent, persona or message does not exist.
            TooLargeError: The content or the metadata exceed the configured limits.
            ValidationError: The embedding's length is not its model's dimension.
        """
        return self._add([as_input(MemoryCreate, data)])[0]

    @operation("write")
    def add_many(self, items: Sequence[MemoryCreate | Mapping[str, Any]]) -> Memories:
        """Store several memories in one statement, in order; all or none.

        Raises what :meth:`add` raises, for the first bad item."""
        return self._add([as_input(MemoryCreate, data) for data in items])

    def _add(self, items: Sequence[MemoryCreate]) -> Memories:
        now = utcnow()
        rows: list[dict[str, Any]] = []
        conn = self.conn
        checked: set[tuple[str, uuid.UUID]] = set()
        for data in items:
            self._check(data.content, data.metadata)
            _check_expiry(data.expires_at, now)
            values: dict[str, Any] = {
                **data.model_dump(),
                "id": new_id(),
                "access_count": 0,
                "last_accessed_at": None,
                "created_at": now,
                "updated_at": now,
            }
            values["embedding_model"] = self._file_embedding(
                values["embedding"], values["embedding_model"]
            )
            for field, table in _REFERENCES:
                key = values[field]
                if key is not None and (field, key) not in checked:
                    require(conn, table, key, field)
                    checked.add((field, key))
            rows.append(values)
        if rows:
            conn.execute(insert(memories), rows)
        return [Memory.model_validate(values) for values in rows]

    @operation("read", single=True)
    def get(self, memory_id: IdLike) -> Memory:
        """The memory; ``NotFoundError`` if there is none."""
        return self._get(memory_id)

    @operation("read", single=True)
    def find(self, memory_id: IdLike) -> Memory | None:
        """The memory, or ``None``."""
        return self._find(self._key(memory_id))

    @operation("read", single=True)
    def get_many(self, memory_ids: Iterable[IdLike]) -> Memories:
        """The memories that exist among ``memory_ids``, in the order given."""
        keys = list(dict.fromkeys(to_uuid(key, "memory_ids") for key in memory_ids))
        if not keys:
            return []
        rows = self.conn.execute(select(memories).where(memories.c.id.in_(keys))).all()
        by_id = {row.id: _memory(row) for row in rows}
        return [by_id[key] for key in keys if key in by_id]

    @operation("read", single=True)
    def list(
        self,
        *,
        conversation_id: IdLike | None = None,
        user_id: str | None = None,
        agent_id: IdLike | None = None,
        persona_id: IdLike | None = None,
        memory_type: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Memory]:
        """Memories, newest first, filtered by any of the arguments; keyset pages."""
        check_limit(limit, self.settings.max_page_size)
        conditions = _filters(
            conversation_id=conversation_id,
            user_id=user_id,
            agent_id=agent_id,
            persona_id=persona_id,
            memory_type=memory_type,
            created_after=created_after,
            created_before=created_before,
        )
        query = newest_first(
            select(memories).where(*conditions, live(utcnow())),
            memories.c.created_at,
            memories.c.id,
            cursor,
        )
        conn = self.conn
        rows = conn.execute(query.limit(limit + 1)).all()
        return to_page(rows, limit, _memory, "created_at")

    @operation("write")
    def update(self, memory_id: IdLike, data: MemoryUpdate | Mapping[str, Any]) -> Memory:
        """Change the fields set in ``data``; ``NotFoundError`` if there is no such memory.

        A new ``embedding`` is filed under ``embedding_model`` (``unnamed-<dimension>`` if left
        out); ``embedding=None`` removes the embedding and its model."""
        key = self._key(memory_id)
        changes = changes_of(as_input(MemoryUpdate, data), memories)
        self._check(changes.get("content"), changes.get("metadata"))
        _check_expiry(changes.get("expires_at"), utcnow())
        if "embedding" in changes:
            changes["embedding_model"] = self._file_embedding(
                changes["embedding"], changes.get("embedding_model")
            )
        elif "embedding_model" in changes:
            raise ValidationError(
                "embedding_model names the model of a new embedding: give the embedding too",
                field="embedding_model",
            )
        return self._update_row(key, changed(changes), given=memory_id)

    @operation("write", single=True)
    def delete(self, memory_id: IdLike) -> bool:
        """Delete the memory; ``False`` if there was none."""
        key = self._key(memory_id)
        conn = self.conn
        result = conn.execute(delete(memories).where(memories.c.id == key))
        return result.rowcount > 0

    @operation("write", single=True)
    def delete_many(self, memory_ids: Iterable[IdLike]) -> int:
        """Delete the memories among ``memory_ids`` in one statement; how many there were."""
        keys = {to_uuid(key, "memory_ids") for key in memory_ids}
        if not keys:
            return 0
        result = self.conn.execute(delete(memories).where(memories.c.id.in_(keys)))
        return result.rowcount

    @operation("write", single=True)
    def delete_expired(self, *, now: datetime | None = None) -> int:
        """Delete the memories expired at ``now`` (default: now); how many."""
        at = utcnow() if now is None else _aware(now, "now")
        return self.conn.execute(delete(memories).where(memories.c.expires_at <= at)).rowcount

    @operation("write", single=True)
    def record_access(
        self, memory_ids: IdLike | Iterable[IdLike], *, at: datetime | None = None
    ) -> int:
        """Count one access to each memory (``access_count``, ``last_accessed_at``: ``at``,
        default now) in one statement; returns how many memories exist among ``memory_ids``
        (one id, or many). Being read is not a change: ``updated_at`` stays."""
        many = [memory_ids] if isinstance(memory_ids, uuid.UUID | str) else memory_ids
        try:
            keys = {to_uuid(memory_id, "memory_ids") for memory_id in many}
        except TypeError:  # neither an id nor ids: an int, None, …
            raise ValidationError(
                f"memory_ids must be an id or ids, not {type(memory_ids).__name__}",
                field="memory_ids",
            ) from None
        if not keys:
            return 0
        conn = self.conn
        result = conn.execute(
            update(memories)
            .where(memories.c.id.in_(keys))
            .values(
                access_count=memories.c.access_count + 1,
                last_accessed_at=utcnow() if at is None else _aware(at, "at"),
            )
        )
        return result.rowcount

    # -- embedding models ---------------------------------------------------------------------

    @operation("write")
    def register_model(self, name: str, dimension: int) -> EmbeddingModel:
        """Record that ``name`` makes vectors of ``dimension`` (once; the same again is a no-op),
        and on PostgreSQL make its HNSW index.

        Raises:
            ValidationError: ``name`` is registered with another dimension, or is not a model
                name, or ``dimension`` is out of range.
        """
        self._register(name, dimension)
        found = self._model(name)
        assert found is not None
        return found

    @operation("read", single=True)
    def models(self) -> Models:
        """The embedding models the store knows, each with how many memories it embedded."""
        return self._models()

    def _models(self) -> Models:
        counts = (
            select(memories.c.embedding_model, func.count().label("memories"))
            .group_by(memories.c.embedding_model)
            .subquery()
        )
        rows = self.conn.execute(
            select(embedding_models, func.coalesce(counts.c.memories, 0).label("memories"))
            .outerjoin(counts, counts.c.embedding_model == embedding_models.c.name)
            .order_by(embedding_models.c.name)
        ).all()
        return load_all(EmbeddingModel, rows)

    @operation("read", single=True)
    def model(self, name: str) -> EmbeddingModel | None:
        """The embedding model called ``name``, or ``None``."""
        return self._model(name)

    @operation("read", single=True)
    def not_embedded_with(self, model: str, *, limit: int = 100) -> Pairs:
        """Up to ``limit`` memories (id, content) whose embedding was not made by ``model``
        (another model, or none), oldest first: what re-embedding with ``model`` has left."""
        rows = self.conn.execute(
            select(memories.c.id, memories.c.content)
            .where(or_(memories.c.embedding_model.is_(None), memories.c.embedding_model != model))
            .order_by(memories.c.id)
            .limit(limit)
        ).all()
        return [(row.id, row.content) for row in rows]

    @operation("read", single=True)
    def count_not_embedded_with(self, model: str) -> int:
        """How many memories ``model`` did not embed (another model's, or none)."""
        return int(
            self.conn.scalar(
                select(func.count()).where(
                    or_(
                        memories.c.embedding_model.is_(None),
                        memories.c.embedding_model != model,
                    )
                )
            )
            or 0
        )

    @operation("read", single=True)
    def retention_batch(self, *, after: IdLike | None = None, limit: int = 500) -> Memories:
        """Up to ``limit`` memories in id order after ``after``, without their embeddings:
        what deciding which memories to keep reads, a batch at a time."""
        columns = [column for column in memories.c if column.name != "embedding"]
        statement = select(*columns).order_by(memories.c.id).limit(limit)
        if after is not None:
            statement = statement.where(memories.c.id > to_uuid(after, "after"))
        return load_all(Memory, _rows(self.conn.execute(statement).all()))

    @operation("write")
    def set_embeddings(
        self, model: str, embeddings: Sequence[tuple[IdLike, Sequence[float]]]
    ) -> int:
        """Replace the embeddings of the given memories with vectors of ``model`` (registered
        with their dimension); how many memories there were. Not a change to the memory:
        ``updated_at`` stays."""
        if not embeddings:
            return 0
        vectors = [_query_vector(vector) for _, vector in embeddings]
        for vector in vectors[1:]:
            if len(vector) != len(vectors[0]):
                raise ValidationError("embeddings of one model have one length", field="embedding")
        self._register(model, len(vectors[0]))
        statement = (
            update(memories)
            .where(memories.c.id == bindparam("key"))
            .values(embedding=bindparam("vector"), embedding_model=model)
        )
        rows = [
            {"key": to_uuid(key, "memory_ids"), "vector": vector}
            for (key, _), vector in zip(embeddings, vectors, strict=True)
        ]
        result = self.conn.execute(statement, rows)
        return result.rowcount

    # -- search -------------------------------------------------------------------------------

    @operation("read")
    def search(
        self,
        embedding: Sequence[float],
        *,
        k: int = 10,
        embedding_model: str | None = None,
        user_id: str | None = None,
        conversation_id: IdLike | None = None,
        agent_id: IdLike | None = None,
        persona_id: IdLike | None = None,
        memory_type: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        with_embedding: bool = True,
        known_model: bool = True,
    ) -> Scored:
        """The ``k`` memories nearest to ``embedding`` by cosine distance, with their
        similarity, among those embedded by ``embedding_model`` (``unnamed-<dimension>`` if left
        out) that pass the filters. An empty store (no model at all) finds nothing.
        ``with_embedding=False`` leaves the memories' vectors out (cheaper to read).
        ``known_model=False``: a model no memory is embedded with finds nothing instead of
        being refused (the store's embedder's vector of a text query, which the text's words
        still match).

        Raises:
            ValidationError: The query is empty, all zeros, or has NaN or infinite values; ``k``
                is out of range; or no memory is embedded by the model (unless
                ``known_model`` is false), or the model's dimension is not the query's
                (``field``: ``embedding``).
        """
        query = _query_vector(embedding)
        self._check_k(k)
        model = embedding_model or unnamed_model(len(query))
        conditions: Conditions = _filters(
            conversation_id=conversation_id,
            user_id=user_id,
            agent_id=agent_id,
            persona_id=persona_id,
            memory_type=memory_type,
            created_after=created_after,
            created_before=created_before,
        )
        registered = self._model(model)
        if registered is None:
            known = self._models() if known_model else []
            if not known:
                return []
            listed = ", ".join(f"{m.name} ({m.dimension} dimensions)" for m in known)
            raise ValidationError(
                f"no memory is embedded with model {model!r}; the store holds: {listed}",
                field="embedding",
            )
        if registered.dimension != len(query):
            raise ValidationError(
                f"embedding has {len(query)} dimensions; model {model!r} makes "
                f"{registered.dimension}",
                field="embedding",
            )
        columns = _columns(with_embedding)
        now = utcnow()
        if self.dialect == "postgresql":
            return self._search_in_sql(query, model, k, [*conditions, live(now)], columns)
        return self._search_exact(query, model, k, conditions, columns, now)

    @operation("read")
    def match(
        self,
        text: str,
        *,
        limit: int = 50,
        user_id: str | None = None,
        conversation_id: IdLike | None = None,
        agent_id: IdLike | None = None,
        persona_id: IdLike | None = None,
        memory_type: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        with_embedding: bool = True,
    ) -> Memories:
        """Up to ``limit`` memories containing any word of ``text`` (whole words, any case),
        best full-text match first, among those that pass the filters. Only the first
        ``MAX_QUERY_WORDS`` words count; a text without words finds nothing."""
        self._check_k(limit, "limit")
        terms = words(text)[:MAX_QUERY_WORDS]
        if not terms:
            return []
        conditions = _filters(
            conversation_id=conversation_id,
            user_id=user_id,
            agent_id=agent_id,
            persona_id=persona_id,
            memory_type=memory_type,
            created_after=created_after,
            created_before=created_before,
        )
        conditions.append(live(utcnow()))
        columns = _columns(with_embedding)
        spaced = [term for term in terms if not unspaced(term)]
        # a word of a script written without spaces is found inside the text (see unspaced)
        inside = [
            func.instr(func.lower(memories.c.content), term) > 0
            if self.dialect != "postgresql"
            else func.strpos(func.lower(memories.c.content), term) > 0
            for term in terms
            if unspaced(term)
        ]
        if self.dialect == "postgresql":
            vector = func.to_tsvector(literal_column("'simple'"), memories.c.content)
            matched: list[ColumnElement[bool]] = []
            order: list[ColumnElement[Any]] = []
            if spaced:
                query: ColumnElement[Any] = func.plainto_tsquery(
                    literal_column("'simple'"), spaced[0]
                )
                for term in spaced[1:]:
                    query = query.op("||")(func.plainto_tsquery(literal_column("'simple'"), term))
                matched.append(vector.op("@@")(query))
                order.append(func.ts_rank(vector, query).desc())
            statement = (
                select(*columns)
                .where(or_(*matched, *inside), *conditions)
                .order_by(*order, memories.c.id)
                .limit(limit)
            )
        else:
            statement = select(*columns)
            order = []
            if spaced:
                expression = " OR ".join('"' + term.replace('"', '""') + '"' for term in spaced)
                hits = (
                    select(
                        literal_column("rowid").label("rowid"), literal_column("rank").label("rank")
                    )
                    .select_from(sql(MEMORIES_FTS))
                    .where(literal_column(MEMORIES_FTS).op("MATCH")(expression))
                    .subquery()
                )
                # bm25's rank: negative, best lowest; a memory found only inside comes after
                statement = statement.select_from(
                    memories.join(
                        hits, hits.c.rowid == literal_column("memories.rowid"), isouter=bool(inside)
                    )
                )
                inside.append(hits.c.rowid.is_not(None))
                order.append(func.coalesce(hits.c.rank, 0))
            statement = (
                statement.where(or_(*inside), *conditions)
                .order_by(*order, memories.c.id)
                .limit(limit)
            )
        return load_all(Memory, _rows(self.conn.execute(statement).all()))

    @operation("read")
    def similarities(
        self, memory_ids: Iterable[IdLike], embedding: Sequence[float], embedding_model: str
    ) -> dict[uuid.UUID, float]:
        """The cosine similarity of ``embedding`` with each of these memories whose embedding
        ``embedding_model`` made (the others are left out), computed where the vectors are:
        in SQL on PostgreSQL, with numpy over the stored float32 bytes on SQLite."""
        keys = list({to_uuid(key, "memory_ids") for key in memory_ids})
        if not keys:
            return {}
        query = _query_vector(embedding)
        of_model = [memories.c.id.in_(keys), memories.c.embedding_model == embedding_model]
        conn = self.conn
        if self.dialect == "postgresql":
            vector = cast(memories.c.embedding, VECTOR(len(query)))
            distance = vector.cosine_distance(query).label("distance")
            rows = conn.execute(select(memories.c.id, distance).where(*of_model)).all()
            return {key: 1.0 - float(gap) for key, gap in rows}
        raw = type_coerce(memories.c.embedding, LargeBinary())
        found = conn.execute(
            select(memories.c.id, raw).where(*of_model, func.length(raw) == 4 * len(query))
        ).all()
        if not found:
            return {}
        matrix = np.frombuffer(b"".join(row[1] for row in found), dtype=np.float32)
        distances = _cosine_distances(
            np.asarray(query, dtype=np.float32), matrix.reshape(len(found), len(query))
        )
        return {
            row[0]: 1.0 - float(gap)
            for row, gap in zip(found, distances, strict=True)
            if np.isfinite(gap)
        }

    def _search_in_sql(
        self, query: Vector, model: str, k: int, conditions: Conditions, columns: Columns
    ) -> Scored:
        dimension = len(query)
        conn = self.conn
        if dimension <= HNSW_MAX_DIMENSIONS:
            # filtered searches walk the graph further instead of returning too few; both
            # settings in one round trip (set_config(..., true) is SET LOCAL)
            conn.execute(
                sql(
                    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                    "set_config('hnsw.ef_search', :ef, true)"
                ),
                {"ef": str(max(40, min(k * 2, 1000)))},
            )
        vector = cast(memories.c.embedding, VECTOR(dimension))
        distance = vector.cosine_distance(query).label("distance")
        # the model as a literal, so the planner matches the partial index's predicate
        of_model = memories.c.embedding_model == bindparam("model", model, literal_execute=True)
        nearest = (
            select(memories.c.id, distance)
            .where(of_model, *conditions)
            .order_by(distance)
            .limit(k)
            .subquery()
        )
        rows = _rows(
            conn.execute(
                select(*columns, nearest.c.distance).join(nearest, nearest.c.id == memories.c.id)
            ).all()
        )
        ranked = sorted(rows, key=lambda row: (float(row.distance), row.id))
        return [(_memory(row), 1.0 - float(row.distance)) for row in ranked]

    def _search_exact(
        self,
        query: Vector,
        model: str,
        k: int,
        conditions: Conditions,
        columns: Columns,
        now: datetime,
    ) -> Scored:
        conn = self.conn
        ranked = self._search_cached(query, model, k, conditions, now)
        if ranked is None:  # in a write unit, or a read older than the cache
            raw = type_coerce(memories.c.embedding, LargeBinary())  # the float32 bytes as stored
            candidates = select(memories.c.id, raw).where(
                memories.c.embedding_model == model, *conditions, live(now)
            )
            found = conn.execute(candidates).all()
            ranked = _rank(query, [row[0] for row in found], [row[1] for row in found], k)
        rows = _rows(
            conn.execute(
                select(*columns).where(memories.c.id.in_([key for key, _ in ranked]))
            ).all()
        )
        by_id = {row.id: _memory(row) for row in rows}
        return [(by_id[key], 1.0 - distance) for key, distance in ranked if key in by_id]

    def _search_cached(
        self, query: Vector, model: str, k: int, conditions: Conditions, now: datetime
    ) -> Ranked | None:
        """SQLite, in a read unit: the nearest through the in-process matrix of the model's
        vectors (``repositories.vector_cache``), the filters applied in SQL; ``None`` when the
        cache cannot answer for this transaction. The matrix holds expired memories until they
        are swept: as many more are asked for as there are (usually none, found by the expiry
        index), and they are dropped."""
        unit = self._binding.current_unit
        if unit is None or unit.intent != "read" or unit.single:
            return None
        conn = self.conn
        # by the expiry index alone (with the model in the condition SQLite walks the model's
        # every memory by the model index instead)
        expired = {
            uuid.UUID(str(key))
            for key, of_model in conn.execute(
                select(memories.c.id, memories.c.embedding_model).where(
                    memories.c.expires_at <= now
                )
            )
            if of_model == model
        }
        passed = None
        if conditions:
            result: CursorResult[Any] = conn.execute(
                select(literal_column("memories.rowid")).where(
                    memories.c.embedding_model == model, *conditions
                )
            )
            # integers as the driver returns them, without a result row object each
            rows = result.cursor.fetchall() if result.cursor is not None else []
            passed = np.array(rows, np.int64).reshape(-1)
        found = cache_of(self.service).nearest(conn, model, query, k + len(expired), passed)
        if found is None:
            return None
        kept = [(uuid.UUID(key), vector) for key, vector in found]
        kept = [(key, vector) for key, vector in kept if key not in expired]
        keys = [key for key, _ in kept]
        return _rank(query, keys, [vector.tobytes() for _, vector in kept], k)

    # -- helpers ------------------------------------------------------------------------------

    def _check(self, content: str | None, metadata: Any) -> None:
        check_text_size(content, self.settings.max_content_bytes, "content")
        if content is not None and blank(content):  # a model built without validation
            raise ValidationError(
                "content must have something to remember: it is blank or only invisible characters",
                field="content",
            )
        check_json(metadata, self.settings.max_metadata_bytes, "metadata")

    def _check_k(self, k: int, field: str = "k") -> None:
        if (
            isinstance(k, bool)
            or not isinstance(k, int)
            or not 1 <= k <= self.settings.max_page_size
        ):
            maximum = self.settings.max_page_size
            raise ValidationError(f"{field} must be between 1 and {maximum}", field=field)

    def _file_embedding(self, embedding: Sequence[float] | None, model: str | None) -> str | None:
        """The model a stored embedding goes under (registered now if new)."""
        if embedding is None:
            if model is not None:
                raise ValidationError(
                    "embedding_model names the model of an embedding: give the embedding too",
                    field="embedding_model",
                )
            return None
        name = model or unnamed_model(len(embedding))
        self._register(name, len(embedding))
        return name

    def _model(self, name: str) -> EmbeddingModel | None:
        row = self.conn.execute(
            select(embedding_models).where(embedding_models.c.name == name)
        ).first()
        return None if row is None else load(EmbeddingModel, row)

    def _register(self, name: str, dimension: int) -> None:
        known = self._model(name)
        if known is not None:
            if known.dimension != dimension:
                raise ValidationError(
                    f"embedding has {dimension} dimensions; model {name!r} makes {known.dimension}",
                    field="embedding",
                )
            return
        from agentkeep.models.memory import MODEL_NAME_PATTERN  # noqa: PLC0415

        if not re.fullmatch(MODEL_NAME_PATTERN, name) or len(name) > 200:
            raise ValidationError(f"{name!r} is not a model name", field="embedding_model")
        conn = self.conn
        conn.execute(
            dialect_insert(self.dialect, embedding_models)
            .values(id=new_id(), name=name, dimension=dimension, created_at=utcnow())
            .on_conflict_do_nothing()
        )
        if self.dialect == "postgresql" and dimension <= HNSW_MAX_DIMENSIONS:
            quoted = name.replace("'", "''")  # cannot hold one (MODEL_NAME_PATTERN); still quoted
            conn.execute(
                sql(
                    f"CREATE INDEX IF NOT EXISTS {vector_index_name(name)} ON memories "
                    f"USING hnsw ((embedding::vector({dimension})) vector_cosine_ops) "
                    f"WHERE embedding_model = '{quoted}'"
                )
            )
        stored = self._model(name)  # another writer may have registered it first
        if stored is not None and stored.dimension != dimension:
            raise ValidationError(
                f"embedding has {dimension} dimensions; model {name!r} makes {stored.dimension}",
                field="embedding",
            )


def _rank(
    query: list[float], keys: list[uuid.UUID], blobs: list[bytes], k: int
) -> list[tuple[uuid.UUID, float]]:
    """The ``k`` nearest ``(id, cosine distance)`` pairs, nearest first, ties by id."""
    if not keys:
        return []
    matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(keys), len(query))
    distances = _cosine_distances(np.asarray(query, dtype=np.float32), matrix)
    usable = np.flatnonzero(np.isfinite(distances))
    if len(usable) > k:  # keep the k nearest, and everything tied with the k-th
        kth = np.partition(distances[usable], k - 1)[k - 1]
        usable = usable[distances[usable] <= kth]
    ordered = sorted((float(distances[i]), keys[i]) for i in usable)
    return [(key, distance) for distance, key in ordered[:k]]


def _cosine_distances(query: Float32, matrix: Float32) -> npt.NDArray[np.float64]:
    """``1 - cos(query, row)`` for each row, in float64 (NaN for a zero row)."""
    rows = matrix.astype(np.float64)
    target = query.astype(np.float64)
    norms = np.linalg.norm(rows, axis=1) * np.linalg.norm(target)
    with np.errstate(divide="ignore", invalid="ignore"):
        result: npt.NDArray[np.float64] = 1.0 - (rows @ target) / norms
    return result


def _query_vector(embedding: Sequence[float]) -> list[float]:
    try:
        vector = _VECTOR.validate_python(list(embedding))
    except (PydanticValidationError, TypeError) as exc:
        message = reason(exc.errors()[0]) if isinstance(exc, PydanticValidationError) else str(exc)
        raise ValidationError(f"embedding: {message}", field="embedding") from None
    return array("f", vector).tolist()  # what PostgreSQL compares with: float32


def _filters(**given: object) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for field, value in given.items():
        if value is None:
            continue
        if field == "created_after":
            conditions.append(memories.c.created_at >= _aware(value, field))
            continue
        if field == "created_before":
            conditions.append(memories.c.created_at < _aware(value, field))
            continue
        is_key = field.endswith("_id") and field != "user_id"
        if not is_key:
            check_text(value, field)  # a user id, a memory type: text a lookup can bind
        conditions.append(memories.c[field] == (to_uuid(value, field) if is_key else value))
    return conditions


def live(now: datetime) -> ColumnElement[bool]:
    """Memories not expired at ``now``."""
    return or_(memories.c.expires_at.is_(None), memories.c.expires_at > now)


LONGEST_LIFE = timedelta(seconds=MAX_AGE_SECONDS)
"""The furthest a memory's expiry may be: a century, the longest age the store takes anywhere."""


def _check_expiry(expires_at: object, now: datetime) -> None:
    """Refuse an expiry that is not a time with a zone, not in the future, or over a century
    away (a memory that expired already would never be recalled: surely a mistake)."""
    if expires_at is None:
        return
    at = _aware(expires_at, "expires_at")
    if at <= now:
        raise ValidationError(
            f"expires_at must be in the future (it is {at.isoformat()}, now is "
            f"{now.isoformat()}): a memory that expired already would never be recalled",
            field="expires_at",
        )
    if at - now > LONGEST_LIFE:
        raise ValidationError(
            "expires_at must be at most a century away (leave it out for a memory that "
            "does not expire)",
            field="expires_at",
        )


def _aware(value: object, field: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(f"{field} must be a time with a time zone", field=field)
    return value


def _rows(rows: Sequence[Any]) -> Sequence[Row[Any]]:
    """Rows of a select over a list of columns (typed as wide rows), as plain rows."""
    return rows


def _memory(row: Row[Any]) -> Memory:
    return load(Memory, row)
