"""LangGraph's checkpointers: ``SqliteSaver`` and ``PostgresSaver``, as their documentation sets
them up (``sqlite3.connect(path, check_same_thread=False)``; psycopg with ``autocommit=True``,
``prepare_threshold=0``, ``dict_row``), then ``setup()``.

A conversation is a thread; its messages live in the ``messages`` channel of the thread's latest
checkpoint, as in a graph over ``MessagesState`` (the channel holds the whole list: LangGraph's
default reducer channel, not the beta ``DeltaChannel``). An append is one ``put`` of a new
checkpoint whose ``messages`` are the previous ones plus the new message, chained to its parent.
That is the least a graph step writes; a compiled graph also reads the latest checkpoint first
and writes an input checkpoint and pending writes, so these figures flatter LangGraph. Reads are
``get_tuple`` (the latest checkpoint, whole list; the last 50 are a slice); the closest thing to a
user's conversations is ``list(None, filter={"user_id": …}, limit=20)``, newest checkpoints whose
metadata has that user.

Fills: a conversation of n messages is one ``put`` holding them (what ``update_state`` writes);
the W3 conversations are copies, by SQL into LangGraph's own tables, of one empty thread made by
``put``, each under a new thread id with its user in the metadata.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.compare import measure
from bench.compare.anchors import lib, versions
from bench.compare.anchors.langchain_sql import to_message
from bench.compare.workload import Msg

PG_COPY_CHECKPOINTS = """
INSERT INTO checkpoints
  (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata)
SELECT t.tid, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.type, c.checkpoint,
  c.metadata || jsonb_build_object('user_id', t.uid)
FROM checkpoints c, unnest(%s::text[], %s::text[]) AS t(tid, uid) WHERE c.thread_id = %s
"""
PG_COPY_BLOBS = """
INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
SELECT t.tid, b.checkpoint_ns, b.channel, b.version, b.type, b.blob
FROM checkpoint_blobs b, unnest(%s::text[]) AS t(tid) WHERE b.thread_id = %s
"""
SQLITE_COPY = (
    "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,"
    " type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


@dataclass
class Thread:
    thread_id: str
    user: str
    messages: list[Any] = field(default_factory=list)
    checkpoint_id: str | None = None
    version: Any = None
    step: int = -1

    def config(self) -> dict[str, Any]:
        configurable = {"thread_id": self.thread_id, "checkpoint_ns": ""}
        if self.checkpoint_id is not None:
            configurable["checkpoint_id"] = self.checkpoint_id
        return {"configurable": configurable}


class LangGraphSubject(measure.Subject):
    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.base = lib("langgraph.checkpoint.base")
        if spec["backend"] == "sqlite":
            self.label = "LangGraph SqliteSaver"
            self.conn: Any = sqlite3.connect(spec["sqlite_path"], check_same_thread=False)
            self.saver = lib("langgraph.checkpoint.sqlite").SqliteSaver(self.conn)
            self.saver.setup()
            self.durability = measure.sqlite_durability(self.conn)
            self.versions = versions("langgraph-checkpoint-sqlite", "langgraph-checkpoint")
        else:
            self.label = "LangGraph PostgresSaver"
            psycopg = lib("psycopg")
            self.conn = psycopg.connect(
                spec["pg_dsn"],
                autocommit=True,
                prepare_threshold=0,
                row_factory=lib("psycopg.rows").dict_row,
            )
            self.saver = lib("langgraph.checkpoint.postgres").PostgresSaver(self.conn)
            self.saver.setup()
            row = self.conn.execute("SHOW synchronous_commit").fetchone()
            self.durability = f"synchronous_commit={row['synchronous_commit']}"
            self.versions = versions(
                "langgraph-checkpoint-postgres", "langgraph-checkpoint", "psycopg"
            )
        self.fill_how = (
            "a conversation of n messages: one put holding them; W3: SQL copies of one empty "
            "thread into LangGraph's tables"
        )
        self.notes = [
            "an append is one checkpoint put (what a graph step writes at least)",
            "the last 50 are the latest checkpoint's list sliced",
        ]

    def _put(self, thread: Thread, messages: list[Any]) -> None:
        checkpoint = self.base.empty_checkpoint()
        version = self.saver.get_next_version(thread.version, None)
        checkpoint["channel_values"] = {"messages": messages}
        checkpoint["channel_versions"] = {"messages": version}
        thread.step += 1
        metadata = {"source": "loop", "step": thread.step, "user_id": thread.user}
        saved = self.saver.put(thread.config(), checkpoint, metadata, {"messages": version})
        thread.checkpoint_id = saved["configurable"]["checkpoint_id"]
        thread.messages, thread.version = messages, version

    async def create_conversation(self, user: str) -> Any:
        thread = Thread(str(uuid.uuid4()), user)
        self._put(thread, [])
        return thread

    async def append(self, conv: Any, msg: Msg) -> None:
        self._put(conv, [*conv.messages, to_message(msg)])

    async def fill_messages(self, conv: Any, msgs: Sequence[Msg]) -> None:
        if msgs:
            self._put(conv, [*conv.messages, *(to_message(m) for m in msgs)])

    def _latest(self, conv: Any) -> list[Any]:
        config = {"configurable": {"thread_id": conv.thread_id, "checkpoint_ns": ""}}
        found = self.saver.get_tuple(config)
        return list(found.checkpoint["channel_values"].get("messages", []))

    async def load_all(self, conv: Any) -> int:
        return len(self._latest(conv))

    async def load_last(self, conv: Any, n: int) -> int:
        return len(self._latest(conv)[-n:])

    async def list_user(self, user: str, limit: int) -> int:
        return len(list(self.saver.list(None, filter={"user_id": user}, limit=limit)))

    async def create_conversations(self, owners: Sequence[str]) -> None:
        template = await self.create_conversation("template")
        tids = [str(uuid.uuid4()) for _ in owners]
        if self.spec["backend"] == "postgres":
            self.conn.execute(PG_COPY_CHECKPOINTS, (tids, list(owners), template.thread_id))
            self.conn.execute(PG_COPY_BLOBS, (tids, template.thread_id))
            return
        row = self.conn.execute(
            "SELECT checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata"
            " FROM checkpoints WHERE thread_id = ?",
            (template.thread_id,),
        ).fetchone()
        metadata = json.loads(row[5])
        rows = [
            (tid, *row[:5], json.dumps({**metadata, "user_id": owner}).encode())
            for tid, owner in zip(tids, owners, strict=True)
        ]
        with self.conn:
            self.conn.executemany(SQLITE_COPY, rows)

    async def close(self) -> None:
        self.conn.close()


async def open_subject(spec: dict[str, Any]) -> measure.Subject:
    return LangGraphSubject(spec)
