"""The DatabaseManager facade: one object that groups the repositories, opens units of work,
normalises ids and runs the operations that span domains.

Use the repositories through it: ``db.messages.append(...)`` is one operation in a unit of work
of its own. Several operations that must see one state or commit together run in one unit:

    def record(uow: Unit) -> None:
        uow.conversation_data.add(conversation_id, "partial", {"amount": 300})
        uow.questions.ask(conversation_id, "ExpenseAgent", "Which account?")

    await db.run(record)                 # async store: one worker-thread hop, one transaction
    db.run(record)                       # sync store: the same, in the caller's thread
    with db.unit("write") as uow: ...    # sync store: the same, as a block

A :class:`Unit` has every repository and cross-domain operation the store has, called directly
on its connection. Operations across domains (``get_conversation_context``,
``find_conversation_by_reply``, …) are plain functions over a unit, in
``repositories.conversation_flow``.
"""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import cached_property
from typing import Any, Generic, TypeVar, cast, overload

from sqlalchemy import Connection

from agentkeep.config import Settings
from agentkeep.db import migrate
from agentkeep.db.changes import Change
from agentkeep.db.service import DatabaseService, Intent
from agentkeep.errors import NotFoundError, ValidationError
from agentkeep.memory.manager import MemoryManager
from agentkeep.models.common import (
    IdLike,
    check_limit,
    check_text,
    platform_id,
    to_uuid,
    validate_input,
)
from agentkeep.models.conversation import ConversationCreate, Message, MessageCreate
from agentkeep.models.enums import ConversationStatus
from agentkeep.models.stats import Stats
from agentkeep.repositories import conversation_flow as flow
from agentkeep.repositories import store_changes
from agentkeep.repositories.agents import AgentRepository
from agentkeep.repositories.api_keys import ApiKeyRepository
from agentkeep.repositories.base import (
    Async,
    Binding,
    Bound,
    ModeT,
    Sync,
    in_worker_thread,
    operation,
)
from agentkeep.repositories.conversation_data import ConversationDataRepository
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

T = TypeVar("T")


def _create_conversation(
    uow: Unit,
    /,
    *,
    user_id: str | int | None = None,
    name: str | None = None,
    title: str | None = None,
    chat_id: str | int | None = None,
    agent_id: IdLike | None = None,
    metadata: dict[str, Any] | None = None,
    **fields: Any,
) -> uuid.UUID:
    """Start a conversation from keyword arguments and return its id
    (``create_conversation(user_id=..., name=...)``); with a user and a chat, the user's session
    in that chat records it as the last conversation."""
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
    conversation = uow.conversations.create(data)
    flow.touch_session(uow, conversation)
    return conversation.id


def _add_message(
    uow: Unit,
    /,
    *,
    session_id: IdLike,
    role: str,
    content: str,
    metadata: dict[str, Any] | None = None,
    **fields: Any,
) -> Message:
    """Append a message from keyword arguments
    (``add_message(session_id=..., role=..., content=..., metadata=...)``)."""
    data = validate_input(
        MessageCreate, {"role": role, "content": content, "metadata": metadata or {}, **fields}
    )
    return uow.messages.append(to_uuid(session_id, "session_id"), data)


def _delete_conversation(uow: Unit, /, *, conversation_id: IdLike) -> bool:
    """Delete a conversation with its messages, data, questions, states and memories.

    One statement (and the change log's entry, in the same transaction): the foreign keys
    cascade, so it is all or nothing.
    """
    return uow.conversations.delete(conversation_id)


def _follow_changes(uow: Unit, /) -> int:
    """Tell this process's caches what other processes (``agentkeep serve --workers``, other
    instances, scripts) changed of what they keep since the last call: agents, their persona,
    tools and modules, a conversation's agent. How many changes there were. A chat turn calls
    it before it trusts its copies; nothing to do on the in-memory store."""
    service = uow.service
    if service.is_memory:
        return 0
    found = store_changes.follow(uow.connection, service.changes)
    if found:
        service.changes.publish(found)
    return len(found)


def _load_history(
    uow: Unit, /, agent_name: str, user_id: str | int, limit: int = 50
) -> list[Message]:
    """The agent's earlier turns with this user across their conversations, oldest first.

    What an agent with ``include_history`` remembers of a user: the latest ``limit`` finished
    messages (complete or cancelled; a reply still streaming or that failed is left out), counted
    back from the user's most recently active conversation with the agent, each conversation's
    messages together and in order. One query (``MessageRepository.history``).

    Args:
        agent_name: The agent, by name.
        user_id: The user, as conversations record them (a chat platform's id; ``42`` is
            ``"42"``).
        limit: At most this many messages (1 to the store's page-size limit).

    Raises:
        NotFoundError: No agent has that name.
        ValidationError: ``limit`` is out of range, ``agent_name`` is not a name (an id, say),
            or ``user_id`` is not a user id (text or an integer).
    """
    check_limit(limit, uow.settings.max_page_size)
    if not isinstance(agent_name, str):  # an Agent or its id, say: the name is what is asked
        raise ValidationError(
            f"agent_name must be the agent's name (text), not {type(agent_name).__name__}",
            field="agent_name",
        )
    check_text(agent_name, "agent_name")
    user = platform_id(user_id, "user_id")
    agent = uow.agents.find_by_name(agent_name)
    if agent is None:
        raise NotFoundError(f"agent {agent_name!r} not found", field="agent_name")
    return uow.messages.history(agent.id, user, limit=limit)


def _stats(uow: Unit) -> Stats:
    """How much the store holds and what is used most, read from one snapshot."""
    return read_stats(uow.connection)


class Operations(Binding[ModeT], Bound[ModeT]):
    """What a store and a unit of work both offer: the repositories and the cross-domain
    operations."""

    @cached_property
    def conversations(self) -> ConversationRepository[ModeT]:
        return ConversationRepository(self)

    @cached_property
    def messages(self) -> MessageRepository[ModeT]:
        return MessageRepository(self)

    @cached_property
    def conversation_data(self) -> ConversationDataRepository[ModeT]:
        return ConversationDataRepository(self)

    @cached_property
    def questions(self) -> AgentQuestionRepository[ModeT]:
        return AgentQuestionRepository(self)

    @cached_property
    def states(self) -> ConversationStateRepository[ModeT]:
        return ConversationStateRepository(self)

    @cached_property
    def memories(self) -> MemoryRepository[ModeT]:
        return MemoryRepository(self)

    @cached_property
    def user_sessions(self) -> UserSessionRepository[ModeT]:
        return UserSessionRepository(self)

    @cached_property
    def templates(self) -> OperationTemplateRepository[ModeT]:
        return OperationTemplateRepository(self)

    @cached_property
    def personas(self) -> PersonaRepository[ModeT]:
        return PersonaRepository(self)

    @cached_property
    def modules(self) -> ModuleRepository[ModeT]:
        return ModuleRepository(self)

    @cached_property
    def agents(self) -> AgentRepository[ModeT]:
        return AgentRepository(self)

    @cached_property
    def tools(self) -> ToolRepository[ModeT]:
        return ToolRepository(self)

    @cached_property
    def workflows(self) -> WorkflowRepository[ModeT]:
        return WorkflowRepository(self)

    @cached_property
    def api_keys(self) -> ApiKeyRepository[ModeT]:
        return ApiKeyRepository(self)

    @property
    def settings(self) -> Settings:
        return self.service.settings

    def on(self, unit: Unit) -> Any:
        return unit

    # the cross-domain operations, and the classic call shapes of a conversation store
    create_conversation = operation("write")(_create_conversation)
    add_message = operation("write")(_add_message)
    delete_conversation = operation("write")(_delete_conversation)
    stats = operation("read")(_stats)
    load_history = operation("read")(_load_history)
    get_conversation_context = operation("read")(flow.get_conversation_context)
    find_conversation_by_reply = operation("read", single=True)(flow.find_conversation_by_reply)
    mark_conversation_complete = operation("write")(flow.mark_conversation_complete)
    get_user_active_conversations = operation("read")(flow.get_user_active_conversations)
    store_final_operation_data = operation("write")(flow.store_final_operation_data)
    store_user_response = operation("write")(flow.store_user_response)
    store_bot_message = operation("write")(flow.store_bot_message)
    update_conversation_state = operation("write")(flow.update_conversation_state)
    resume_conversation = operation("write")(flow.resume_conversation)
    abandon_idle_conversations = operation("write")(flow.abandon_idle_conversations)
    count_purgeable = operation("read", single=True)(flow.count_purgeable)
    follow_changes = operation("read", single=True, bounded=True)(_follow_changes)


class Unit(Operations[Sync]):
    """An open unit of work: every operation runs on its one connection, and all of them commit
    together when it ends (a ``"write"`` unit) or see one state of the store (``"read"``).

    Get one from :meth:`DatabaseManager.run` or :meth:`DatabaseManager.unit`.
    """

    def __init__(
        self, service: DatabaseService, connection: Connection, intent: Intent, single: bool
    ) -> None:
        self.service = service
        self.mode = Sync
        self.connection = connection
        self.intent: Intent = intent
        self.single = single
        self.changes: list[Change] = []
        """What this unit changed that caches keep (published once it has committed)."""

    # Properties, not attributes: a unit that held itself would be a reference cycle, which only
    # the garbage collector frees, with the unit's connection and everything it holds (a unit
    # of work per request would leave about ten objects a request to collect).
    @property
    def current_unit(self) -> Unit:
        return self

    @property
    def _binding(self) -> Unit:
        return self

    def changed(
        self, kind: str, key: uuid.UUID, value: Any = None, *, created: bool = False
    ) -> None:
        """Record that ``kind`` ``key`` changed (``value``: the row as stored now, if it is)."""
        self.changes.append(Change(kind, key, value, created))

    def log_changes(self) -> None:
        """Log what this unit changed for the other processes on the database, in its own
        transaction (call it last before the commit; ``repositories.store_changes``)."""
        if self.changes and not self.service.is_memory:
            store_changes.record(self.connection, self.changes, self.service.changes.origin)

    def publish(self) -> None:
        """Tell the store's listeners what this unit changed (call once it has committed)."""
        if self.changes:
            self.service.changes.publish(self.changes)

    def end(self) -> None:
        """Close the unit to further use: its connection went back to the pool, where an
        operation kept past the end would run outside any transaction (and leave one open).
        It lets go of the repositories bound to it too: each refers to the unit, a reference
        cycle that only the garbage collector would free."""
        self.connection = cast("Connection", _ENDED)
        for name in _BOUND_TO_UNIT:
            self.__dict__.pop(name, None)

    def __repr__(self) -> str:
        return f"Unit({self.intent}, {self.service.masked_url})"


_BOUND_TO_UNIT = tuple(
    name for name, value in vars(Operations).items() if isinstance(value, cached_property)
)
"""The repositories (and the like) an open unit makes when first used."""


class DatabaseManager(Operations[ModeT], Generic[ModeT]):
    """Every store operation, sync or async depending on how the manager was opened.

    Open one with :func:`agentkeep.connect` (async) or :func:`agentkeep.connect_sync`.
    """

    def __init__(self, service: DatabaseService, mode: type[ModeT]) -> None:
        self.service = service
        self.mode = mode
        self._bound = self

    def open_unit(self, connection: Connection, intent: Intent, single: bool) -> Unit:
        return Unit(self.service, connection, intent, single)

    @cached_property
    def memory(self) -> MemoryManager[ModeT]:
        """Long-term memory with embeddings computed by the store's embedder:
        ``db.memory.remember(...)``, ``db.memory.recall(...)`` (``memory.manager``)."""
        return MemoryManager(self)

    # -- units of work ------------------------------------------------------------------------

    @overload
    def run(self: DatabaseManager[Sync], work: Callable[[Unit], T], intent: Intent = ...) -> T: ...
    @overload
    def run(
        self: DatabaseManager[Async], work: Callable[[Unit], T], intent: Intent = ...
    ) -> Coroutine[Any, Any, T]: ...
    def run(self, work: Callable[[Unit], T], intent: Intent = "write") -> Any:
        """Run ``work`` in one unit of work and return what it returns.

        ``intent="write"`` (the default): everything ``work`` does commits together when it
        returns, or nothing does if it raises. ``"read"``: every read sees one state of the store.
        On the async store ``work`` runs in one worker-thread hop (it is plain synchronous code:
        call the unit's operations without ``await``).

        Raises:
            ValidationError: ``intent`` is neither ``"read"`` nor ``"write"``.
            TypeError: ``work`` is a coroutine function (or returns an awaitable): it would
                run nothing, and the unit would commit nothing.
        """
        _check_intent(intent)
        if inspect.iscoroutinefunction(work):
            raise TypeError(_NOT_ASYNC)

        def checked(uow: Unit) -> T:
            result = work(uow)
            if inspect.isawaitable(result):  # rolls the unit back: nothing of it ran
                if inspect.iscoroutine(result):
                    result.close()  # never awaited: no "never awaited" warning on top
                raise TypeError(_NOT_ASYNC)
            return result

        # a unit kept by work (returned, stored) cannot be used past its end: run_unit ends it
        return self._blocking(lambda: self.run_unit(intent, checked))

    @contextmanager
    def unit(self: DatabaseManager[Sync], intent: Intent = "write") -> Iterator[Unit]:
        """The sync store's unit of work as a block: ``with db.unit("write") as uow:``.

        (On the async store use ``await db.run(work)``: a block's body would run on the event
        loop, and a unit of work runs in one worker-thread hop.)
        """
        if self.mode is not Sync:
            raise TypeError("on the async store, run a unit of work with: await db.run(work)")
        _check_intent(intent)
        with self.service.unit(intent) as connection:
            uow = Unit(self.service, connection, intent, False)
            try:
                yield uow
                uow.log_changes()
            finally:
                uow.end()
        uow.publish()

    # -- operations that are not one unit of work ---------------------------------------------

    @overload
    def purge_conversations(
        self: DatabaseManager[Sync],
        status: ConversationStatus | str,
        older_than: timedelta,
        *,
        batch_size: int = ...,
        on_batch: Callable[[int], None] | None = ...,
    ) -> int: ...
    @overload
    def purge_conversations(
        self: DatabaseManager[Async],
        status: ConversationStatus | str,
        older_than: timedelta,
        *,
        batch_size: int = ...,
        on_batch: Callable[[int], None] | None = ...,
    ) -> Coroutine[Any, Any, int]: ...
    def purge_conversations(
        self,
        status: ConversationStatus | str,
        older_than: timedelta,
        *,
        batch_size: int = 500,
        on_batch: Callable[[int], None] | None = None,
    ) -> Any:
        """Delete the conversations in ``status`` not updated for ``older_than``, with everything
        they own (messages, data, questions, states, memories), and return how many.

        Each batch of ``batch_size`` conversations is a unit of work of its own (one statement),
        so a large purge never holds locks for long. ``on_batch``, if given, is called with how
        many each batch deleted once it has committed (to show progress).
        """
        statement = flow.purge_statement(status, older_than, batch_size)

        def purge() -> int:
            total = 0
            while True:
                deleted = self.service.run(
                    "write", lambda conn: flow.purge_batch(conn, statement), single=True
                )
                total += deleted
                if on_batch is not None:
                    on_batch(deleted)
                if deleted < batch_size:
                    return total

        return self._blocking(purge)

    @overload
    def health(self: DatabaseManager[Sync]) -> dict[str, Any]: ...
    @overload
    def health(self: DatabaseManager[Async]) -> Coroutine[Any, Any, dict[str, Any]]: ...
    def health(self) -> Any:
        """The connection test: status, message, database, version, host, port, latency."""
        return self._blocking(self.service.health)

    test_connection = health

    @overload
    def upgrade(self: DatabaseManager[Sync], revision: str = ...) -> None: ...
    @overload
    def upgrade(self: DatabaseManager[Async], revision: str = ...) -> Coroutine[Any, Any, None]: ...
    def upgrade(self, revision: str = "head") -> Any:
        """Apply pending migrations."""
        return self._blocking(lambda: migrate.upgrade(self.service, revision))

    def _blocking(self, fn: Callable[[], T]) -> Any:
        """``fn()`` on the sync store; a coroutine running it in a worker thread on the async."""
        return fn() if self.mode is Sync else in_worker_thread(fn)

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Release every pooled connection (an in-memory store is gone afterwards)."""
        self.service.dispose()

    async def aclose(self) -> None:
        await in_worker_thread(self.service.dispose)

    def __enter__(self) -> DatabaseManager[ModeT]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> DatabaseManager[ModeT]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        mode = "async" if self.mode is Async else "sync"
        return f"DatabaseManager({self.service.masked_url}, {mode})"


def settings_for(target: Settings | str | os.PathLike[str] | None) -> Settings:
    """The settings to open ``target`` with: settings as given; a database URL
    (``"postgresql://…"``, ``"sqlite:///app.db"``), a SQLite file path (``"app.db"``, as
    ``sqlite3.connect`` takes) or ``"memory"`` / ``":memory:"``, with every other setting read
    from the environment; ``None``: all from the environment. An empty string is a
    ``ValidationError`` (it would otherwise open SQLite's in-memory database, losing everything).
    """
    if target is None:
        return Settings()
    if isinstance(target, Settings):
        return target
    if isinstance(target, os.PathLike):
        target = os.fspath(target)
    if not isinstance(target, str):
        raise TypeError(
            f"open a store with a URL, a file path or Settings, not {type(target).__name__}"
        )
    if not target.strip():  # an unset variable, say: never quietly a store that forgets
        raise ValidationError(
            "no database given (an empty string): give a URL, a SQLite file path or 'memory',"
            " or None to read AGENTKEEP_DATABASE_URL",
            field="database_url",
        )
    if target.strip().lower() in ("memory", ":memory:"):
        return Settings(database_url="memory")
    if "://" not in target:  # a file path
        return Settings(database_url=f"sqlite+pysqlite:///{target}")
    return Settings(database_url=target)


def open_service(
    target: Settings | str | os.PathLike[str] | None = None, *, upgrade: bool | None = None
) -> DatabaseService:
    """Build the service for ``target`` (see :func:`settings_for`); migrate it to the newest
    schema unless told not to.

    An in-memory store is always migrated (it starts empty).
    """
    settings = settings_for(target)
    service = DatabaseService(settings)
    if upgrade is None:
        upgrade = settings.auto_migrate
    if upgrade or service.is_memory:
        migrate.upgrade(service)
    return service


def connect_sync(
    target: Settings | str | os.PathLike[str] | None = None, *, upgrade: bool | None = None
) -> DatabaseManager[Sync]:
    """Open the store for scripts and notebooks: every operation is a plain call.

    ``target`` is a database URL (``"postgresql://user@host/db"``, ``"sqlite:///app.db"``), a
    SQLite file path (``"app.db"``), ``"memory"``, or :class:`Settings`; without it every setting
    comes from the ``AGENTKEEP_*`` environment (a URL or path sets only the database: the rest
    still comes from there).
    """
    return DatabaseManager(open_service(target, upgrade=upgrade), Sync)


def connect(
    target: Settings | str | os.PathLike[str] | None = None, *, upgrade: bool | None = None
) -> DatabaseManager[Async]:
    """Open the store for async code: every operation is awaited (it runs in a worker thread).

    ``target`` as for :func:`connect_sync`. Opening is synchronous and quick; call it once at
    start-up.
    """
    return DatabaseManager(open_service(target, upgrade=upgrade), Async)


_NOT_ASYNC = (
    "a unit of work runs plain synchronous code in one worker-thread hop: give db.run a def"
    " (not an async def) that calls the unit's operations without await"
)


def _check_intent(intent: object) -> None:
    if intent not in ("read", "write"):
        raise ValidationError(f"intent must be 'read' or 'write', not {intent!r}", field="intent")


class _Ended:
    """The connection of a unit of work that has ended: any use says so."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(
            "this unit of work has ended (its block or db.run returned): run another with"
            " db.run(work) or db.unit(), or call the store's operations (db.messages.append…)"
        )


_ENDED = _Ended()
