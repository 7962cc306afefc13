"""SQLite: each embedding model's vectors as one float32 matrix in this process, kept in step with
every writer, so that an exact search costs a matrix product instead of reading every vector.

The data design. Per store (``DatabaseService``) and model, a :class:`ModelVectors` holds

- ``matrix``: one row (a *slot*) per embedded memory, float32 as stored, with spare capacity;
- ``norms``: each slot's Euclidean norm; ``keys``: each slot's memory id (32 hex digits);
- ``slot_of``: memory ``rowid`` -> slot (-1: none), a numpy array indexed by rowid;
- ``seq``: the last entry of ``memory_vector_log`` it has applied.

Triggers (migration 0008) log the ``rowid`` of every memory whose embedding appears, changes or
goes away, in any process. Before a search, in the search's own read transaction, the cache reads
``max(seq)``; if it moved, it re-reads only the logged memories (a slot is overwritten, freed or
added), or everything when it fell behind the log's trimmed tail or too much changed. Freed slots
are reused after a compaction, when a quarter of the slots are free.

Filters stay in SQL: a filtered search asks the database for the rowids that pass them (through
its indexes) and scores only their slots. A search in a write unit (which may see its own
uncommitted rows), or in a read transaction older than what the cache already applied, does not
use the cache: the caller reads the vectors from the table instead.

One lock per store guards refreshes and searches alike: a matrix product over 100,000 x 384
floats reads 150 MB and takes about 15 ms on one core here; searches of one store queue for it.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection
from sqlalchemy import text as sql

from agentkeep.db.rows import MEMORY_VECTOR_LOG

if TYPE_CHECKING:
    from agentkeep.db.service import DatabaseService

Float32 = npt.NDArray[np.float32]
Int64 = npt.NDArray[np.int64]
Changed = tuple[int, str, str | None, bytes | None]
"""A logged memory as it is now: rowid, id, model, vector."""

RELOAD_ABOVE = 20_000
"""Changed memories beyond which re-reading them one by one costs more than reloading all."""
BLOCK = 256
"""Rows per matrix-vector product (see :func:`_products`)."""
PRESELECT_MARGIN = 16
"""Extra float32 candidates whose distance is then computed exactly (float64), for ties."""

_LAST_SEQ = sql(  # two subqueries: SQLite reads max() or min() alone off the key, not both
    f"SELECT coalesce((SELECT max(seq) FROM {MEMORY_VECTOR_LOG}), 0), "
    f"coalesce((SELECT min(seq) FROM {MEMORY_VECTOR_LOG}), 0)"
)
_CHANGED = sql(f"SELECT DISTINCT memory_rowid FROM {MEMORY_VECTOR_LOG} WHERE seq > :after")
# raw columns: the id as its 32 stored hex digits, the vector as its float32 bytes
_ALL = sql(
    "SELECT rowid, id, embedding FROM memories "
    "WHERE embedding_model = :model AND embedding IS NOT NULL"
)


@dataclass
class ModelVectors:
    """One model's vectors (see the module)."""

    dimension: int
    seq: int = -1
    count: int = 0
    matrix: Float32 = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    norms: Float32 = field(default_factory=lambda: np.zeros(0, np.float32))
    keys: list[str | None] = field(default_factory=list)
    rowids: Int64 = field(default_factory=lambda: np.zeros(0, np.int64))
    slot_of: Int64 = field(default_factory=lambda: np.zeros(0, np.int64))
    free: int = 0

    def clear(self) -> None:
        self.count = self.free = 0
        self.matrix = np.zeros((1024, self.dimension), np.float32)
        self.norms = np.zeros(1024, np.float32)
        self.keys = [None] * 1024
        self.rowids = np.full(1024, -1, np.int64)
        self.slot_of = np.full(1024, -1, np.int64)

    def put(self, rowid: int, key: str, vector: Float32) -> None:
        slot = int(self.slot_of[rowid]) if rowid < len(self.slot_of) else -1
        if slot < 0:
            slot = self._new_slot()
            self._map(rowid, slot)
        self.matrix[slot] = vector
        self.norms[slot] = np.linalg.norm(vector.astype(np.float64))
        self.keys[slot] = key

    def drop(self, rowid: int) -> None:
        if rowid >= len(self.slot_of) or self.slot_of[rowid] < 0:
            return
        slot = int(self.slot_of[rowid])
        self.slot_of[rowid] = -1
        self.rowids[slot] = -1
        self.keys[slot] = None
        self.norms[slot] = 0.0  # never a candidate: its distance is NaN
        self.free += 1

    def load(self, rowids: Int64, keys: list[str], blob: bytes) -> None:
        """Replace everything with these rows (``blob``: their vectors, concatenated)."""
        vectors = np.frombuffer(blob, dtype=np.float32).reshape(len(keys), self.dimension)
        self.count = len(keys)
        self.free = 0
        capacity = max(1024, self.count + self.count // 4)
        self.matrix = np.zeros((capacity, self.dimension), np.float32)
        self.matrix[: self.count] = vectors
        self.norms = np.zeros(capacity, np.float32)
        self.norms[: self.count] = np.linalg.norm(vectors.astype(np.float64), axis=1)
        self.keys = [*keys, *([None] * (capacity - self.count))]
        self.rowids = np.full(capacity, -1, np.int64)
        self.rowids[: self.count] = rowids
        top = int(rowids.max()) + 1 if len(rowids) else 0
        self.slot_of = np.full(max(1024, top + top // 4), -1, np.int64)
        self.slot_of[rowids] = np.arange(self.count)

    def compact(self) -> None:
        live = np.flatnonzero(self.rowids[: self.count] >= 0)
        keys = [self.keys[i] or "" for i in live]
        self.load(self.rowids[live], keys, self.matrix[live].tobytes())

    def _new_slot(self) -> int:
        if self.count == len(self.matrix):
            grown = max(1024, 2 * len(self.matrix))
            self.matrix = np.resize(self.matrix, (grown, self.dimension))
            self.norms = np.concatenate([self.norms, np.zeros(grown - len(self.norms), np.float32)])
            self.rowids = np.concatenate([self.rowids, np.full(grown - len(self.rowids), -1)])
            self.keys.extend([None] * (grown - len(self.keys)))
        self.count += 1
        return self.count - 1

    def _map(self, rowid: int, slot: int) -> None:
        if rowid >= len(self.slot_of):
            bigger = np.full(max(2 * len(self.slot_of), rowid + 1024), -1, np.int64)
            bigger[: len(self.slot_of)] = self.slot_of
            self.slot_of = bigger
        self.slot_of[rowid] = slot
        self.rowids[slot] = rowid

    def nearest(self, query: Float32, k: int, slots: Int64 | None) -> list[tuple[str, Float32]]:
        """Up to ``k + PRESELECT_MARGIN`` (id, vector) of the nearest slots by float32 cosine,
        among ``slots`` (``None``: all); the caller ranks them exactly."""
        if slots is None:  # all: a view of the matrix, not a copy of it
            slots = np.arange(self.count)
            rows, norms = self.matrix[: self.count], self.norms[: self.count]
        else:
            rows, norms = self.matrix[slots], self.norms[slots]
        if len(slots) == 0:
            return []
        with np.errstate(divide="ignore", invalid="ignore"):
            similarity = _products(rows, query) / norms
        similarity[~np.isfinite(similarity)] = -np.inf  # freed slots (norm 0)
        take = min(len(slots), k + PRESELECT_MARGIN)
        best = np.argpartition(-similarity, take - 1)[:take] if take < len(slots) else None
        chosen = slots if best is None else slots[best]
        return [
            (key, self.matrix[slot])
            for slot in chosen
            if (key := self.keys[int(slot)]) is not None and self.norms[int(slot)] > 0
        ]


def _products(rows: Float32, query: Float32) -> Float32:
    """``rows @ query``, a block of ``BLOCK`` rows at a time: one call over a large matrix lets
    OpenBLAS wake its threads, which on a busy machine costs more than the product itself
    (measured here: 3,000 x 384 in 0.4 ms by blocks, 16 ms at once, with other work running)."""
    out = np.empty(len(rows), np.float32)
    for start in range(0, len(rows), BLOCK):
        np.dot(rows[start : start + BLOCK], query, out=out[start : start + BLOCK])
    return out


class VectorCache:
    """Every model's vectors of one SQLite store (see the module)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.models: dict[str, ModelVectors] = {}

    def nearest(
        self,
        conn: Connection,
        model: str,
        query: list[float],
        k: int,
        rowids: Int64 | None,
    ) -> list[tuple[str, Float32]] | None:
        """The candidates :meth:`ModelVectors.nearest` gives, after catching up with the log in
        ``conn``'s read transaction; ``None`` when this transaction is older than the cache (the
        caller then reads the table). ``rowids``: those that passed the filters, or ``None``."""
        last, oldest = conn.execute(_LAST_SEQ).one()
        with self.lock:
            vectors = self.models.get(model)
            if vectors is None:
                vectors = self.models[model] = ModelVectors(len(query))
            if last < vectors.seq:
                return None
            if last > vectors.seq:
                self._refresh(conn, model, vectors, int(last), int(oldest))
            slots = None
            if rowids is not None:
                known = rowids[rowids < len(vectors.slot_of)]
                slots = vectors.slot_of[known]
                slots = slots[slots >= 0]
            return vectors.nearest(np.asarray(query, np.float32), k, slots)

    def _refresh(
        self, conn: Connection, model: str, vectors: ModelVectors, last: int, oldest: int
    ) -> None:
        behind = vectors.seq < 0 or (oldest > vectors.seq + 1 and vectors.seq < last)
        changed: list[int] = []
        if not behind:
            changed = list(conn.execute(_CHANGED, {"after": vectors.seq}).scalars())
        if behind or len(changed) > RELOAD_ABOVE:
            rows = conn.execute(_ALL, {"model": model}).all()
            vectors.load(
                np.fromiter((row[0] for row in rows), np.int64, len(rows)),
                [row[1] for row in rows],
                b"".join(row[2] for row in rows),
            )
        else:
            found = self._changed_rows(conn, changed)
            for rowid in changed:
                row = found.get(rowid)
                if row is None or row[2] != model or row[3] is None:
                    vectors.drop(rowid)
                else:
                    vectors.put(rowid, row[1], np.frombuffer(row[3], np.float32))
            if vectors.free * 4 > max(vectors.count, 1024):
                vectors.compact()
        vectors.seq = last

    @staticmethod
    def _changed_rows(
        conn: Connection, rowids: list[int]
    ) -> dict[int, tuple[int, str, str, bytes]]:
        found: dict[int, tuple[int, str, str, bytes]] = {}
        for start in range(0, len(rowids), 500):
            chunk = ",".join(str(int(r)) for r in rowids[start : start + 500])
            for row in conn.execute(
                sql(
                    "SELECT rowid, id, embedding_model, embedding FROM memories "
                    f"WHERE rowid IN ({chunk})"
                )
            ):
                found[row[0]] = (row[0], row[1], row[2], row[3])
        return found


_caches: weakref.WeakKeyDictionary[DatabaseService, VectorCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_of(service: DatabaseService) -> VectorCache:
    """The vector cache of ``service``'s store (made on first use)."""
    with _caches_lock:
        cache = _caches.get(service)
        if cache is None:
            cache = _caches[service] = VectorCache()
        return cache
