"""Long-term memories: store, list, update, and search by meaning.

Search ranks by cosine distance between the query and each stored embedding, nearest first, and
returns each memory with its cosine similarity (``1 - distance``, from -1 to 1, higher is closer):

- on PostgreSQL in SQL, with pgvector's ``<=>`` operator;
- on SQLite (file or in memory) exactly, with numpy, over the memories that pass the filters.

Ties are broken by id on both, so both return the same order. Only memories whose embedding has
as many dimensions as the query are compared: a store may hold the embeddings of several models,
and a vector of another model's length is not comparable, so it is skipped, not an error.
Searching does not count as an access; call :meth:`MemoryRepository.record_access` for the
memories actually used.
"""

from __future__ import annotations

import uuid
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pgvector.sqlalchemy import VECTOR
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import (
    ColumnElement,
    Connection,
    LargeBinary,
    Row,
    delete,
    func,
    insert,
    select,
    type_coerce,
    update,
)

from agentkeep.db.tables import agents, conversations, memories, messages, personas
from agentkeep.db.types import new_id, utcnow
from agentkeep.errors import ValidationError
from agentkeep.models.common import (
    IdLike,
    Page,
    check_json,
    check_limit,
    check_text_size,
    to_uuid,
)
from agentkeep.models.memory import EmbeddingVector, Memory, MemoryCreate, MemoryUpdate
from agentkeep.repositories.base import ModeT, changes_of, load, operation, require
from agentkeep.repositories.keyed import IdRepository, changed
from agentkeep.repositories.keyset import newest_first, to_page

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


class MemoryRepository(IdRepository[ModeT, Memory]):
    """SQL for the ``memories`` table."""

    _table = memories
    _item = Memory
    _noun = "memory"

    @operation("write")
    def add(self, data: MemoryCreate) -> Memory:
        """Store a memory.

        Raises:
            NotFoundError: A referenced conversation, agent, persona or message does not exist.
            TooLargeError: The content or the metadata exceed the configured limits.
        """
        self._check(data.content, data.metadata)
        now = utcnow()
        values: dict[str, Any] = {
            **data.model_dump(),
            "id": new_id(),
            "access_count": 0,
            "last_accessed_at": None,
            "created_at": now,
            "updated_at": now,
        }
        conn = self.conn
        _require_references(conn, values)
        conn.execute(insert(memories).values(values))
        return Memory.model_validate(values)

    @operation("read", single=True)
    def get(self, memory_id: IdLike) -> Memory:
        """The memory; ``NotFoundError`` if there is none."""
        return self._get(memory_id)

    @operation("read", single=True)
    def find(self, memory_id: IdLike) -> Memory | None:
        """The memory, or ``None``."""
        return self._find(self._key(memory_id))

    @operation("read", single=True)
    def list(
        self,
        *,
        conversation_id: IdLike | None = None,
        user_id: str | None = None,
        agent_id: IdLike | None = None,
        memory_type: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Memory]:
        """Memories, newest first, filtered by any of the arguments; keyset pages."""
        check_limit(limit, self.settings.max_page_size)
        conditions = _filters(
            conversation_id=conversation_id,
            user_id=user_id,
            agent_id=agent_id,
            memory_type=memory_type,
        )
        query = newest_first(
            select(memories).where(*conditions), memories.c.created_at, memories.c.id, cursor
        )
        conn = self.conn
        rows = conn.execute(query.limit(limit + 1)).all()
        return to_page(rows, limit, _memory, "created_at")

    @operation("write", single=True)
    def update(self, memory_id: IdLike, data: MemoryUpdate) -> Memory:
        """Change the fields set in ``data``; ``NotFoundError`` if there is no such memory."""
        key = self._key(memory_id)
        changes = changes_of(data, memories)
        self._check(changes.get("content"), changes.get("metadata"))
        return self._update_row(key, changed(changes), given=memory_id)

    @operation("write", single=True)
    def delete(self, memory_id: IdLike) -> bool:
        """Delete the memory; ``False`` if there was none."""
        key = self._key(memory_id)
        conn = self.conn
        result = conn.execute(delete(memories).where(memories.c.id == key))
        return result.rowcount > 0

    @operation("write", single=True)
    def record_access(self, memory_ids: IdLike | Iterable[IdLike]) -> int:
        """Count one access to each memory (``access_count``, ``last_accessed_at``) in one
        statement; returns how many memories exist among ``memory_ids`` (one id, or many).
        Being read is not a change: ``updated_at`` stays."""
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
            .values(access_count=memories.c.access_count + 1, last_accessed_at=utcnow())
        )
        return result.rowcount

    @operation("read", single=True)
    def search(
        self,
        embedding: Sequence[float],
        *,
        k: int = 10,
        user_id: str | None = None,
        conversation_id: IdLike | None = None,
        agent_id: IdLike | None = None,
        persona_id: IdLike | None = None,
        memory_type: str | None = None,
    ) -> Scored:
        """The ``k`` memories nearest to ``embedding`` by cosine distance, with their similarity.

        Only memories that pass the filters and whose embedding has the query's length are
        ranked (see the module's documentation).

        Raises:
            ValidationError: The query is empty, all zeros, or has NaN or infinite values, or
                ``k`` is out of range.
        """
        query = _query_vector(embedding)
        if k < 1 or k > self.settings.max_page_size:
            maximum = self.settings.max_page_size
            raise ValidationError(f"k must be between 1 and {maximum}", field="k")
        conditions = _filters(
            conversation_id=conversation_id,
            user_id=user_id,
            agent_id=agent_id,
            persona_id=persona_id,
            memory_type=memory_type,
        )
        if self.dialect == "postgresql":
            return self._search_in_sql(query, k, conditions)
        return self._search_exact(query, k, conditions)

    def _search_in_sql(self, query: Vector, k: int, conditions: Conditions) -> Scored:
        vector = type_coerce(memories.c.embedding, VECTOR())
        distance = vector.cosine_distance(query).label("distance")
        statement = (
            select(memories, distance)
            .where(*conditions, func.vector_dims(vector) == len(query))
            .order_by(distance, memories.c.id)
            .limit(k)
        )
        conn = self.conn
        rows = conn.execute(statement).all()
        return [(_memory(row), 1.0 - float(row.distance)) for row in rows]

    def _search_exact(self, query: Vector, k: int, conditions: Conditions) -> Scored:
        raw = type_coerce(memories.c.embedding, LargeBinary())  # the float32 bytes as stored
        candidates = select(memories.c.id, raw).where(
            *conditions, func.length(raw) == 4 * len(query)
        )
        conn = self.conn
        found = conn.execute(candidates).all()
        ranked = _rank(query, [row[0] for row in found], [row[1] for row in found], k)
        rows = conn.execute(
            select(memories).where(memories.c.id.in_([key for key, _ in ranked]))
        ).all()
        by_id = {row.id: _memory(row) for row in rows}
        return [(by_id[key], 1.0 - distance) for key, distance in ranked if key in by_id]

    def _check(self, content: str | None, metadata: Any) -> None:
        check_text_size(content, self.settings.max_content_bytes, "content")
        check_json(metadata, self.settings.max_metadata_bytes, "metadata")


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
        message = exc.errors()[0]["msg"] if isinstance(exc, PydanticValidationError) else str(exc)
        raise ValidationError(f"embedding: {message}", field="embedding") from None
    return array("f", vector).tolist()  # what PostgreSQL compares with: float32


def _filters(**given: object) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for field, value in given.items():
        if value is None:
            continue
        is_key = field.endswith("_id") and field != "user_id"
        conditions.append(memories.c[field] == (to_uuid(value, field) if is_key else value))
    return conditions


def _require_references(conn: Connection, values: dict[str, Any]) -> None:
    for field, table in _REFERENCES:
        if values[field] is not None:
            require(conn, table, values[field], field)


def _memory(row: Row[Any]) -> Memory:
    return load(Memory, row)
