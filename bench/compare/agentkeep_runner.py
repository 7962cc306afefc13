"""agentkeep through its public API: ``connect_sync()`` or ``connect()`` (async), default settings
except the spec's ``sqlite_synchronous``.

- append: ``db.messages.append(cid, MessageCreate(role, content, metadata))``;
- full history: ``db.messages.all(cid)`` (one read, oldest first);
- last 50: ``db.messages.last(cid, 50)``; list: ``db.conversations.list(user_id=…, limit=20)``;
- 16 clients: 16 asyncio tasks on one async manager, or 16 threads on one sync manager, each
  appending to its own conversation.

Conversations W1 appends to are created through the API; the bulk fills use ``akschema``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from typing import Any

import sqlalchemy

import agentkeep
from agentkeep import ConversationCreate, MessageCreate, Settings
from bench.compare import akschema, measure
from bench.compare.workload import Msg, message


def _create(m: Msg) -> MessageCreate:
    return MessageCreate(role=m.role, content=m.text, metadata=m.meta)


class AgentkeepSubject(measure.Subject):
    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        options = spec["options"]
        url = akschema.sqlalchemy_url(spec)
        settings = Settings(database_url=url, sqlite_synchronous=options.get("synchronous", "FULL"))
        self.db = agentkeep.connect_sync(settings)
        self.adb = agentkeep.connect(settings.model_copy(update={"auto_migrate": False}))
        self.kind = options["api"]
        self.label = f"agentkeep ({self.kind})"
        self.bulk = akschema.Bulk(url)
        self.fill_how = "multi-row INSERTs into agentkeep's tables, counters moved to match"
        self.durability = self._durability()
        self.versions = {
            "agentkeep": version("agentkeep"),
            "SQLAlchemy": sqlalchemy.__version__,
        }

    def _durability(self) -> str:
        with self.db.service.unit("read", single=True) as conn:
            if self.spec["backend"] == "sqlite":
                return measure.sqlite_durability(conn.connection.driver_connection)
            return f"synchronous_commit={conn.exec_driver_sql('SHOW synchronous_commit').scalar()}"

    async def create_conversation(self, user: str) -> Any:
        return self.db.conversations.create(ConversationCreate(user_id=user, title="bench")).id

    async def create_conversations(self, owners: Sequence[str]) -> None:
        self.bulk.create(owners)

    async def fill_messages(self, conv: Any, msgs: Sequence[Msg]) -> None:
        self.bulk.fill(conv, msgs)

    async def append(self, conv: Any, msg: Msg) -> None:
        if self.kind == "async":
            await self.adb.messages.append(conv, _create(msg))
        else:
            self.db.messages.append(conv, _create(msg))

    async def load_all(self, conv: Any) -> int:
        if self.kind == "async":
            return len(await self.adb.messages.all(conv))
        return len(self.db.messages.all(conv))

    async def load_last(self, conv: Any, n: int) -> int:
        if self.kind == "async":
            return len(await self.adb.messages.last(conv, n))
        return len(self.db.messages.last(conv, n))

    async def list_user(self, user: str, limit: int) -> int:
        if self.kind == "async":
            return len((await self.adb.conversations.list(user_id=user, limit=limit)).items)
        return len(self.db.conversations.list(user_id=user, limit=limit).items)

    async def append_concurrently(
        self, convs: Sequence[Any], per_client: int, deadline: float
    ) -> int:
        if self.kind == "async":

            async def client(cid: Any) -> int:
                for i in range(per_client):
                    if time.perf_counter() > deadline:
                        return i
                    await self.adb.messages.append(cid, _create(message(i)))
                return per_client

            return sum(await asyncio.gather(*(client(cid) for cid in convs)))

        def worker(cid: Any) -> int:
            for i in range(per_client):
                if time.perf_counter() > deadline:
                    return i
                self.db.messages.append(cid, _create(message(i)))
            return per_client

        with ThreadPoolExecutor(max_workers=len(convs)) as pool:
            return sum(pool.map(worker, convs))

    async def close(self) -> None:
        self.bulk.close()
        self.db.close()
        await self.adb.aclose()


async def open_subject(spec: dict[str, Any]) -> measure.Subject:
    return AgentkeepSubject(spec)
