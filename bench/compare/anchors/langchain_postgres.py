"""langchain-postgres's ``PostgresChatMessageHistory``, as its documentation sets it up.

One psycopg connection (``psycopg.connect(dsn)``, not autocommit), ``create_tables`` once, one
history object per conversation (a UUID ``session_id``). ``add_messages([message])`` is one INSERT
and a commit. The table is indexed on ``session_id``; reads return every message of the session
(there is no "last N": the last 50 are the full history sliced) and there is no list of
conversations (W3 not applicable). Fills use ``add_messages`` with the whole batch (one commit).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from bench.compare import measure
from bench.compare.anchors import lib, versions
from bench.compare.anchors.langchain_sql import to_message
from bench.compare.workload import Msg

TABLE = "chat_history"


class LangChainPostgresSubject(measure.Subject):
    label = "langchain-postgres PostgresChatMessageHistory"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.conn = lib("psycopg").connect(spec["pg_dsn"])
        self.History = lib("langchain_postgres").PostgresChatMessageHistory
        self.History.create_tables(self.conn, TABLE)
        row = self.conn.execute("SHOW synchronous_commit").fetchone()
        self.conn.commit()
        self.durability = f"synchronous_commit={row[0]}"
        self.versions = versions("langchain-postgres", "langchain-core", "psycopg")
        self.fill_how = "its batch call add_messages (one commit)"
        self.notes = ["no last-N read: the last 50 are the full history sliced"]

    async def create_conversation(self, user: str) -> Any:
        return self.History(TABLE, str(uuid.uuid4()), sync_connection=self.conn)

    async def create_conversations(self, owners: Sequence[str]) -> None:
        return None  # a conversation is only its messages here: an empty one stores nothing

    async def append(self, conv: Any, msg: Msg) -> None:
        conv.add_messages([to_message(msg)])

    async def fill_messages(self, conv: Any, msgs: Sequence[Msg]) -> None:
        if msgs:
            conv.add_messages([to_message(m) for m in msgs])

    async def load_all(self, conv: Any) -> int:
        return len(conv.get_messages())

    async def load_last(self, conv: Any, n: int) -> int:
        return len(conv.get_messages()[-n:])

    async def close(self) -> None:
        self.conn.close()


async def open_subject(spec: dict[str, Any]) -> measure.Subject:
    return LangChainPostgresSubject(spec)
