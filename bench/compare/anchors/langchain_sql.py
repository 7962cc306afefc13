"""LangChain's ``SQLChatMessageHistory`` (langchain-community), as its documentation sets it up.

One SQLAlchemy engine (``create_engine(url)``: on SQLite pysqlite's defaults, on PostgreSQL
psycopg) shared by one history object per conversation (``session_id``). A message is a
``HumanMessage`` / ``AIMessage`` with the metadata in ``additional_kwargs``, stored by
``add_message`` (one session and commit each). The library has no "last N" and no list of
conversations: the last 50 are ``history.messages[-50:]`` (all messages are read), W3 is not
applicable, and a conversation exists only through its messages (the W3 conversations, which are
empty, add nothing). Its table has no index on ``session_id``: every read scans the table. Fills
use its own batch call, ``add_messages`` (one transaction).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from bench.compare import measure
from bench.compare.anchors import lib, sqlalchemy_sqlite_durability, versions
from bench.compare.workload import Msg


def to_message(msg: Msg) -> Any:
    messages = lib("langchain_core.messages")
    kind = messages.HumanMessage if msg.role == "user" else messages.AIMessage
    return kind(content=msg.text, additional_kwargs=msg.meta)


class LangChainSQLSubject(measure.Subject):
    label = "LangChain SQLChatMessageHistory"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        sa = lib("sqlalchemy")
        if spec["backend"] == "sqlite":
            url = f"sqlite:///{spec['sqlite_path']}"
        else:
            url = str(spec["pg_url"])
        self.engine = sa.create_engine(url)
        self.History = lib("langchain_community.chat_message_histories").SQLChatMessageHistory
        self.History(session_id="setup", connection=self.engine)  # creates the table
        with self.engine.connect() as conn:
            if spec["backend"] == "sqlite":
                self.durability = sqlalchemy_sqlite_durability(conn)
            else:
                sync = conn.exec_driver_sql("SHOW synchronous_commit").scalar()
                self.durability = f"synchronous_commit={sync}"
        driver = "psycopg" if spec["backend"] == "postgres" else "SQLAlchemy"
        self.versions = versions("langchain-community", "langchain-core", "SQLAlchemy", driver)
        self.fill_how = "its batch call add_messages (one transaction)"
        self.notes = ["no last-N read: the last 50 are the full history sliced"]

    async def create_conversation(self, user: str) -> Any:
        return self.History(session_id=str(uuid.uuid4()), connection=self.engine)

    async def create_conversations(self, owners: Sequence[str]) -> None:
        return None  # a conversation is only its messages here: an empty one stores nothing

    async def append(self, conv: Any, msg: Msg) -> None:
        conv.add_message(to_message(msg))

    async def fill_messages(self, conv: Any, msgs: Sequence[Msg]) -> None:
        if msgs:
            conv.add_messages([to_message(m) for m in msgs])

    async def load_all(self, conv: Any) -> int:
        return len(conv.messages)

    async def load_last(self, conv: Any, n: int) -> int:
        return len(conv.messages[-n:])

    async def close(self) -> None:
        self.engine.dispose()


async def open_subject(spec: dict[str, Any]) -> measure.Subject:
    return LangChainSQLSubject(spec)
