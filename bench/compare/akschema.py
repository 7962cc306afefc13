"""Set-up for subjects on agentkeep's schema (agentkeep itself and the raw drivers): migrate, and
fill by bulk SQL.

Creating 100,000 conversations through ``conversations.create`` takes about a minute here; the
fills are not what is measured, so they go in as multi-row INSERTs into agentkeep's own tables,
with the values its API would store: the conversation's counters and ``last_sequence`` are moved
exactly as that many appends would move them, so a timed append after a fill continues the
sequence. The engine here is a plain one (no pragmas): it never changes the journal mode a raw
subject chose.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, create_engine, insert, select, update
from sqlalchemy.pool import NullPool

import agentkeep
from agentkeep import ConversationCreate, Role, Settings
from agentkeep.db.tables import conversations, messages
from agentkeep.db.types import new_id, utcnow
from bench.compare.workload import Msg

CHUNK = 5_000


def migrate(url: str) -> None:
    agentkeep.connect_sync(Settings(database_url=url)).close()


def sqlalchemy_url(spec: dict[str, Any]) -> str:
    if spec["backend"] == "sqlite":
        return f"sqlite+pysqlite:///{spec['sqlite_path']}"
    return str(spec["pg_url"])


class Bulk:
    def __init__(self, url: str) -> None:
        self.engine: Engine = create_engine(url, poolclass=NullPool)

    def create(self, owners: Sequence[str]) -> list[uuid.UUID]:
        # distinct, increasing times, as conversations created one by one would have: a list
        # ordered by activity must not meet 100,000 ties it would have to sort
        first = utcnow() - timedelta(milliseconds=len(owners))
        rows = []
        for i, owner in enumerate(owners):
            at = first + timedelta(milliseconds=i)
            data = ConversationCreate(user_id=owner, title=f"conversation {i}").model_dump()
            rows.append(
                {
                    **data,
                    "id": new_id(),
                    "message_count": 0,
                    "last_sequence": 0,
                    "created_at": at,
                    "updated_at": at,
                }
            )
        with self.engine.begin() as conn:
            for start in range(0, len(rows), CHUNK):
                conn.execute(insert(conversations), rows[start : start + CHUNK])
        return [row["id"] for row in rows]

    def fill(self, cid: uuid.UUID, msgs: Sequence[Msg]) -> None:
        if not msgs:
            return
        now = utcnow()
        with self.engine.begin() as conn:
            last = conn.execute(
                select(conversations.c.last_sequence).where(conversations.c.id == cid)
            ).scalar_one()
            rows = [
                {
                    "id": new_id(),
                    "conversation_id": cid,
                    "seq": last + k,
                    "role": Role(m.role),
                    "content": m.text,
                    "metadata": m.meta,
                    "created_at": now,
                    "updated_at": now,
                }
                for k, m in enumerate(msgs, start=1)
            ]
            for start in range(0, len(rows), CHUNK):
                conn.execute(insert(messages), rows[start : start + CHUNK])
            conn.execute(
                update(conversations)
                .where(conversations.c.id == cid)
                .values(
                    message_count=conversations.c.message_count + len(rows),
                    last_sequence=last + len(rows),
                    last_message_at=now,
                    updated_at=now,
                )
            )

    def close(self) -> None:
        self.engine.dispose()
