"""The DatabaseManager facade (seed 000): one object that groups the repositories, owns
transactions, normalises ids and runs the operations that span domains.

Use the repositories through it (``db.messages.append(...)``); the facade adds only what no single
repository can do, plus the seed documents' own call shapes (``create_conversation``,
``add_message``, ``delete_conversation``, ``test_connection``). Seed 003's conversation-workflow
operations (``get_conversation_context``, ``find_conversation_by_reply``, …) are inherited from
``repositories.conversation_flow``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager
from typing import Any, overload

import anyio.to_thread
from sqlalchemy import Connection

from agentkeep.config import Settings
from agentkeep.db import migrate
from agentkeep.db.service import DatabaseService
from agentkeep.models.common import IdLike, to_uuid, validate_input
from agentkeep.models.conversation import ConversationCreate, Message, MessageCreate
from agentkeep.models.stats import Stats
from agentkeep.repositories.agents import AgentRepository
from agentkeep.repositories.api_keys import ApiKeyRepository
from agentkeep.repositories.base import Async, Component, ModeT, Sync, operation
from agentkeep.repositories.conversation_data import ConversationDataRepository
from agentkeep.repositories.conversation_flow import ConversationFlowOperations
from agentkeep.repositories.conversations import ConversationRepository
from agentkeep.repositories.memories import MemoryRepository
from agentkeep.repositories.messages import MessageRepository
from agentkeep.repositories.modules import ModuleRepository
from agentkeep.repositories.personas import PersonaRepository
from agentkeep.repositories.questions import AgentQuestionRepository
from agentkeep.repositories.sessions import UserSessionRepository
from agentkeep.repositories.states import ConversationStateRepository
from agentkeep.repositories.stats import read_stats
from agentkeep.repositories.templates import OperationTemplateRepository
from agentkeep.repositories.tools import ToolRepository
from agentkeep.repositories.workflows import WorkflowRepository


class DatabaseManager(ConversationFlowOperations[ModeT]):
    """Every store operation, sync or async depending on how the manager was opened.

    Open one with :func:`agentkeep.connect` (async) or :func:`agentkeep.connect_sync`.
    """

    def __init__(self, service: DatabaseService, mode: type[ModeT]) -> None:
        Component.__init__(self, service, mode)
        self.conversations: ConversationRepository[ModeT] = ConversationRepository(service, mode)
        self.messages: MessageRepository[ModeT] = MessageRepository(service, mode)
        self.conversation_data: ConversationDataRepository[ModeT] = ConversationDataRepository(
            service, mode
        )
        self.questions: AgentQuestionRepository[ModeT] = AgentQuestionRepository(service, mode)
        self.states: ConversationStateRepository[ModeT] = ConversationStateRepository(service, mode)
        self.memories: MemoryRepository[ModeT] = MemoryRepository(service, mode)
        self.user_sessions: UserSessionRepository[ModeT] = UserSessionRepository(service, mode)
        self.templates: OperationTemplateRepository[ModeT] = OperationTemplateRepository(
            service, mode
        )
        self.personas: PersonaRepository[ModeT] = PersonaRepository(service, mode)
        self.modules: ModuleRepository[ModeT] = ModuleRepository(service, mode)
        self.agents: AgentRepository[ModeT] = AgentRepository(service, mode)
        self.tools: ToolRepository[ModeT] = ToolRepository(service, mode)
        self.workflows: WorkflowRepository[ModeT] = WorkflowRepository(service, mode)
        self.api_keys: ApiKeyRepository[ModeT] = ApiKeyRepository(service, mode)

    # -- unit of work -------------------------------------------------------------------------

    @overload
    def transaction(self: DatabaseManager[Sync]) -> AbstractContextManager[Connection]: ...
    @overload
    def transaction(
        self: DatabaseManager[Async],
    ) -> AbstractAsyncContextManager[Connection]: ...
    def transaction(
        self,
    ) -> AbstractContextManager[Connection] | AbstractAsyncContextManager[Connection]:
        """Group operations into one transaction: ``with db.transaction():`` (or ``async with``).

        Everything inside commits together when the block ends, or nothing does if it raises.
        """
        if self.is_async:
            return _async_transaction(self.service)
        return self.service.transaction()

    # -- cross-domain operations and the seeds' call shapes -----------------------------------

    @operation
    def create_conversation(
        self,
        /,
        *,
        user_id: str | None = None,
        name: str | None = None,
        title: str | None = None,
        chat_id: str | None = None,
        agent_id: IdLike | None = None,
        metadata: dict[str, Any] | None = None,
        **fields: Any,
    ) -> uuid.UUID:
        """Seed 000's ``create_conversation(user_id=..., name=...)``: returns the new id."""
        data = validate_input(
            ConversationCreate,
            {
                "user_id": user_id,
                "title": title if title is not None else name,
                "chat_id": chat_id,
                "agent_id": agent_id,
                "metadata": metadata or {},
                **fields,
            },
        )
        return ConversationRepository.create.direct(self.conversations, data).id

    @operation
    def add_message(
        self,
        /,
        *,
        session_id: IdLike,
        role: str,
        content: str,
        metadata: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Message:
        """Seed 000's ``add_message(session_id=..., role=..., content=..., metadata=...)``."""
        data = validate_input(
            MessageCreate,
            {"role": role, "content": content, "metadata": metadata or {}, **fields},
        )
        return MessageRepository.append.direct(
            self.messages, to_uuid(session_id, "session_id"), data
        )

    @operation
    def delete_conversation(self, *, conversation_id: IdLike) -> bool:
        """Delete a conversation with its messages, data, questions, states and memories.

        One statement: the foreign keys cascade, so it is all or nothing.
        """
        return ConversationRepository.delete.direct(self.conversations, conversation_id)

    @operation
    def test_connection(self) -> dict[str, Any]:
        """Seed 004's health check: status, message, database, version, host, port."""
        return self.service.health()

    health = test_connection

    @operation
    def stats(self) -> Stats:
        """How much the store holds and what is used most, read from one snapshot."""
        return read_stats(self.service)

    # -- lifecycle ----------------------------------------------------------------------------

    @operation
    def upgrade(self, revision: str = "head") -> None:
        """Apply pending migrations."""
        migrate.upgrade(self.service, revision)

    def close(self) -> None:
        """Release every pooled connection (an in-memory store is gone afterwards)."""
        self.service.dispose()

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.service.dispose)

    def __enter__(self) -> DatabaseManager[ModeT]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> DatabaseManager[ModeT]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        mode = "async" if self.is_async else "sync"
        return f"DatabaseManager({self.service.masked_url}, {mode})"


@asynccontextmanager
async def _async_transaction(service: DatabaseService) -> AsyncIterator[Connection]:
    """Opened and finished in worker threads; bound to the awaiting task in between."""
    conn, trans = await anyio.to_thread.run_sync(service.begin_detached)
    commit = False
    try:
        with service.bound(conn):
            yield conn
        commit = True
    finally:
        await anyio.to_thread.run_sync(lambda: service.end_detached(conn, trans, commit=commit))


def open_service(
    settings: Settings | None = None, *, upgrade: bool | None = None
) -> DatabaseService:
    """Build the service for ``settings``; migrate it to the newest schema unless told not to.

    An in-memory store is always migrated (it starts empty).
    """
    settings = settings or Settings()
    service = DatabaseService(settings)
    if upgrade is None:
        upgrade = settings.auto_migrate
    if upgrade or service.is_memory:
        migrate.upgrade(service)
    return service


def connect_sync(
    settings: Settings | None = None, *, upgrade: bool | None = None
) -> DatabaseManager[Sync]:
    """Open the store for scripts and notebooks: every operation is a plain call."""
    return DatabaseManager(open_service(settings, upgrade=upgrade), Sync)


def connect(
    settings: Settings | None = None, *, upgrade: bool | None = None
) -> DatabaseManager[Async]:
    """Open the store for async code: every operation is awaited (it runs in a worker thread).

    Opening is synchronous and quick; call it once at start-up.
    """
    return DatabaseManager(open_service(settings, upgrade=upgrade), Async)
