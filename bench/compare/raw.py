"""The floor: the raw driver (stdlib ``sqlite3``, ``psycopg``) running agentkeep's SQL, its schema.

The statements are the store benchmark's (``bench.store``): on SQLite ``BEGIN IMMEDIATE``, the
conversation's counter bump with ``RETURNING``, the INSERT, ``COMMIT``; on PostgreSQL the one
data-modifying-CTE statement in autocommit. Reads fetch tuples and build nothing from them. The
SQLite journal mode and ``synchronous`` level are the spec's options, so each anchor's durability
has its raw counterpart. Concurrent clients each open their own connection (SQLite: one writer at
a time, the others wait in SQLite's busy handler).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import psycopg

from agentkeep.db.types import new_id
from bench.compare import akschema, measure
from bench.compare.workload import Msg, message
from bench.store import LAST_50, LIST_20, PG_APPEND, SQLITE_BUMP, SQLITE_INSERT

FULL = "SELECT * FROM messages WHERE conversation_id = {p} ORDER BY seq"
PG_APPEND_ROLE = PG_APPEND.replace("'user'", "%(role)s")


class RawSubject(measure.Subject):
    label = "raw driver"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.bulk = akschema.Bulk(akschema.sqlalchemy_url(spec))
        self.fill_how = "multi-row INSERTs into agentkeep's tables (as for agentkeep)"

    async def create_conversation(self, user: str) -> Any:
        return self.bulk.create([user])[0]

    async def create_conversations(self, owners: Sequence[str]) -> None:
        self.bulk.create(owners)

    async def fill_messages(self, conv: Any, msgs: Sequence[Msg]) -> None:
        self.bulk.fill(conv, msgs)

    async def append_concurrently(
        self, convs: Sequence[Any], per_client: int, deadline: float
    ) -> int:
        def client(cid: uuid.UUID) -> int:
            append = self.connect_append()
            for i in range(per_client):
                if time.perf_counter() > deadline:
                    return i
                append(cid, message(i))
            return per_client

        with ThreadPoolExecutor(max_workers=len(convs)) as pool:
            return sum(pool.map(client, convs))

    def connect_append(self) -> Callable[[uuid.UUID, Msg], None]:
        raise NotImplementedError

    async def close(self) -> None:
        self.bulk.close()


class RawSQLite(RawSubject):
    label = "raw sqlite3"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.conn = self._connect()
        self.durability = measure.sqlite_durability(self.conn)
        self.versions = {"sqlite3 (SQLite)": sqlite3.sqlite_version}
        self._append = self._appender(self.conn)

    def _connect(self) -> sqlite3.Connection:
        options = self.spec["options"]
        conn = sqlite3.connect(self.spec["sqlite_path"], isolation_level=None, timeout=30)
        conn.execute(f"PRAGMA journal_mode={options['journal']}")
        conn.execute(f"PRAGMA synchronous={options['synchronous']}")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def connect_append(self) -> Callable[[uuid.UUID, Msg], None]:
        return self._appender(self._connect())

    @staticmethod
    def _appender(conn: sqlite3.Connection) -> Callable[[uuid.UUID, Msg], None]:
        def append(cid: uuid.UUID, msg: Msg) -> None:
            now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
            conn.execute("BEGIN IMMEDIATE")
            seq, _agent = conn.execute(SQLITE_BUMP, (now, now, cid.hex)).fetchone()
            row = (new_id().hex, cid.hex, seq, msg.role, msg.text, json.dumps(msg.meta))
            conn.execute(SQLITE_INSERT, (*row, "complete", now, now))
            conn.execute("COMMIT")

        return append

    async def append(self, conv: Any, msg: Msg) -> None:
        self._append(conv, msg)

    async def load_all(self, conv: Any) -> int:
        return len(self.conn.execute(FULL.format(p="?"), (conv.hex,)).fetchall())

    async def load_last(self, conv: Any, n: int) -> int:
        return len(self.conn.execute(LAST_50.format(p="?"), (conv.hex,)).fetchall()[:n])

    async def list_user(self, user: str, limit: int) -> int:
        return len(self.conn.execute(LIST_20.format(p="?"), (user,)).fetchall()[:limit])

    async def close(self) -> None:
        self.conn.close()
        await super().close()


class RawPostgres(RawSubject):
    label = "raw psycopg"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.conn = psycopg.connect(spec["pg_dsn"], autocommit=True)
        row = self.conn.execute("SHOW synchronous_commit").fetchone()
        self.durability = f"synchronous_commit={row[0] if row else '?'}"
        self.versions = {"psycopg": version("psycopg")}
        self._append = self._appender(self.conn)

    def connect_append(self) -> Callable[[uuid.UUID, Msg], None]:
        return self._appender(psycopg.connect(self.spec["pg_dsn"], autocommit=True))

    @staticmethod
    def _appender(conn: psycopg.Connection[Any]) -> Callable[[uuid.UUID, Msg], None]:
        def append(cid: uuid.UUID, msg: Msg) -> None:
            params = {
                "now": datetime.now(UTC),
                "cid": cid,
                "id": new_id(),
                "role": msg.role,
                "content": msg.text,
                "extra": json.dumps(msg.meta),
            }
            conn.execute(PG_APPEND_ROLE, params).fetchone()

        return append

    async def append(self, conv: Any, msg: Msg) -> None:
        self._append(conv, msg)

    async def load_all(self, conv: Any) -> int:
        return len(self.conn.execute(FULL.format(p="%s"), (conv,)).fetchall())

    async def load_last(self, conv: Any, n: int) -> int:
        return len(self.conn.execute(LAST_50.format(p="%s"), (conv,)).fetchall()[:n])

    async def list_user(self, user: str, limit: int) -> int:
        return len(self.conn.execute(LIST_20.format(p="%s"), (user,)).fetchall()[:limit])

    async def close(self) -> None:
        self.conn.close()
        await super().close()


async def open_subject(spec: dict[str, Any]) -> measure.Subject:
    akschema.migrate(akschema.sqlalchemy_url(spec))
    return RawSQLite(spec) if spec["backend"] == "sqlite" else RawPostgres(spec)
