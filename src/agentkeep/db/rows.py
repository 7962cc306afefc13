"""The schema: one ORM row class per table. Rows never leave ``repositories/``.

Data design, in brief:

- Every key is a time-ordered UUID (v7), so ids sort by creation and can be made by any instance.
- ``conversations`` carries its own counters (``message_count``, ``last_sequence``,
  ``last_message_at``, the token totals) so that appending a message is one statement on
  PostgreSQL and listing a user's recent conversations (or the store's totals) never aggregates
  messages. Token totals have one source: the message writes, which add a message's tokens (or
  the change in them) to its conversation and its agent.
- ``messages.seq`` is a per-conversation sequence number taken from ``last_sequence``; history is
  read by the ``(conversation_id, seq)`` unique index, newest first, with keyset cursors.
- ``messages.client_id`` makes retried appends idempotent (unique per conversation).
- ``conversation_states`` are unique per (conversation, persona, module, key). Persona and module
  are optional, and SQL treats NULLs as distinct, so uniqueness is enforced on ``scope``: a string
  made from both ids by the repository.
- Enumerations are strings with CHECK constraints (no native enum types to migrate).
- Full-text search over ``messages.content`` lives outside this metadata (migration 0002): on
  PostgreSQL the GIN expression index ``MESSAGES_FTS_INDEX`` on ``to_tsvector('simple', content)``,
  on SQLite the FTS5 external-content table ``MESSAGES_FTS`` (plus its shadow tables) kept in sync
  by triggers. Autogenerate ignores both (``db/migrations/env.py``).
- LangGraph's persistence (``integrations.langgraph``): ``graph_checkpoints`` holds each checkpoint
  without its channel values, which live in ``graph_blobs`` once per (thread, namespace, channel,
  version), so a turn stores only the channels it changed; a list that grew by appending (a
  conversation's messages) is stored as the appended items plus a reference to the version it
  extends, so storage grows by what a turn adds, not by the whole list. ``graph_writes`` holds the
  pending writes of each task. ``store_items`` is the key/value store (namespace, key, JSON value,
  optional expiry), whose items may be indexed for semantic search as ``memories``.
- ``store_changes`` logs what changed that caches keep (agents and their configuration, a
  conversation's agent), so that every process on the database can follow the others' changes.
- ``api_keys`` keeps a SHA-256 digest of each key, never the key (``repositories/api_keys.py``),
  and a short ``prefix`` of it that listings show so keys can be told apart.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from agentkeep.db.types import Embedding, JSONDocument, JSONValue, UTCDateTime, new_id, utcnow
from agentkeep.models.enums import (
    ConversationStatus,
    DataType,
    ExecutionContext,
    MessageStatus,
    Role,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME = 255
MODEL_NAME = 200

MESSAGES_FTS = "messages_fts"
"""SQLite: the FTS5 table over ``messages.content``; its shadow tables are ``messages_fts_*``."""
MESSAGES_FTS_INDEX = "ix_messages_content_fts"
"""PostgreSQL: the GIN index on ``to_tsvector('simple', messages.content)``."""


MEMORIES_FTS = "memories_fts"
"""SQLite: the FTS5 table over ``memories.content``."""
MEMORIES_FTS_INDEX = "ix_memories_content_fts"
"""PostgreSQL: the GIN index on ``to_tsvector('simple', memories.content)``."""
MEMORIES_VECTOR_INDEX = "ix_memories_hnsw_"
"""PostgreSQL: the prefix of each embedding model's HNSW index (made when the model is
registered: ``repositories.memories``)."""
MEMORY_VECTOR_LOG = "memory_vector_log"
"""SQLite: the rowids of memories whose embedding changed, in order (``repositories.vector_cache``;
migration 0008)."""


def is_search_object(name: str | None) -> bool:
    """Whether ``name`` is one of the search objects (full-text tables and indexes, vector
    indexes) that the metadata does not hold."""
    if name is None:
        return False
    return name in {
        MESSAGES_FTS_INDEX,
        MESSAGES_FTS,
        MEMORIES_FTS_INDEX,
        MEMORIES_FTS,
        MEMORY_VECTOR_LOG,
    } or name.startswith((MESSAGES_FTS + "_", MEMORIES_FTS + "_", MEMORIES_VECTOR_INDEX))


def _enum(kind: type[StrEnum], name: str) -> Enum:
    return Enum(
        kind,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        uuid.UUID: Uuid(),
        datetime: UTCDateTime(),
        dict[str, Any]: JSONDocument,
        list[Any]: JSONDocument,
        str: String(NAME),
    }


def _id() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, default=new_id)


def _created() -> Mapped[datetime]:
    return mapped_column(default=utcnow)


def _updated() -> Mapped[datetime]:
    # no ``onupdate``: a counter is not a change, so repositories set it (keyed.changed)
    return mapped_column(default=utcnow)


def _json_object() -> Mapped[dict[str, Any]]:
    return mapped_column(default=dict)


def _metadata() -> Mapped[dict[str, Any]]:
    # the column is ``metadata`` everywhere, as are the models' field and the Core column key;
    # only the ORM attribute is ``metadata_``, the declarative base's own ``metadata`` being taken
    return mapped_column("metadata", default=dict)


class PersonaRow(Base):
    __tablename__ = "personas"

    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    template: Mapped[str] = mapped_column(Text)
    mode: Mapped[str | None] = mapped_column(String(50))
    loop_frequency: Mapped[str | None] = mapped_column(String(50))
    first_message: Mapped[str | None] = mapped_column(Text)
    image_path: Mapped[str | None] = mapped_column(String(500))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class ModuleRow(Base):
    __tablename__ = "modules"

    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(50))
    trigger_pattern: Mapped[str | None] = mapped_column(String(500))
    script: Mapped[str | None] = mapped_column(Text)
    execution_context: Mapped[ExecutionContext] = mapped_column(
        _enum(ExecutionContext, "execution_context"), default=ExecutionContext.ON_DEMAND
    )
    requires_ai_inference: Mapped[bool] = mapped_column(default=False)
    stage_priority: Mapped[int] = mapped_column(default=100)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class AgentRow(Base):
    __tablename__ = "agents"

    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    persona_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("personas.id", ondelete="SET NULL"), index=True
    )
    provider: Mapped[str | None] = mapped_column(String(50))
    model: Mapped[str | None]
    model_settings: Mapped[dict[str, Any]] = _json_object()
    metadata_: Mapped[dict[str, Any]] = _metadata()
    include_history: Mapped[bool] = mapped_column(default=True)
    conversation_count: Mapped[int] = mapped_column(default=0)
    message_count: Mapped[int] = mapped_column(default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class ToolRow(Base):
    __tablename__ = "tools"

    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]] = _json_object()
    config: Mapped[dict[str, Any]] = _json_object()
    usage_count: Mapped[int] = mapped_column(default=0)
    last_used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class AgentToolRow(Base):
    __tablename__ = "agent_tools"

    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    tool_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tools.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = _created()


class AgentModuleRow(Base):
    """The modules an agent runs, in the order declared (an agent with none runs every active
    module)."""

    __tablename__ = "agent_modules"

    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    module_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("modules.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int]
    created_at: Mapped[datetime] = _created()


class WorkflowRow(Base):
    __tablename__ = "workflows"

    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    steps: Mapped[list[Any]] = mapped_column(default=list)
    config: Mapped[dict[str, Any]] = _json_object()
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class ConversationRow(Base):
    __tablename__ = "conversations"

    id: Mapped[uuid.UUID] = _id()
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    persona_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("personas.id", ondelete="SET NULL"), index=True
    )
    user_id: Mapped[str | None]
    chat_id: Mapped[str | None]
    title: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[ConversationStatus] = mapped_column(
        _enum(ConversationStatus, "conversation_status"), default=ConversationStatus.ACTIVE
    )
    operation_type: Mapped[str | None] = mapped_column(String(100))
    agent_state: Mapped[str | None]
    external_ref: Mapped[str | None]
    provider_type: Mapped[str | None] = mapped_column(String(50))
    provider_config: Mapped[dict[str, Any]] = _json_object()
    metadata_: Mapped[dict[str, Any]] = _metadata()
    message_count: Mapped[int] = mapped_column(default=0)
    last_sequence: Mapped[int] = mapped_column(default=0)
    last_message_at: Mapped[datetime | None]
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (
        Index(None, "user_id", "chat_id"),
        Index(None, "user_id", "updated_at"),
        Index(None, "agent_id", "updated_at"),
        Index(None, "status", "updated_at"),
        Index(None, "created_at"),
    )


class MessageRow(Base):
    __tablename__ = "messages"

    id: Mapped[uuid.UUID] = _id()
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[Role] = mapped_column(_enum(Role, "message_role"))
    content: Mapped[str] = mapped_column(Text)
    thinking: Mapped[str | None] = mapped_column(Text)
    tool_calls: Mapped[list[Any] | None] = mapped_column(JSONDocument)
    metadata_: Mapped[dict[str, Any]] = _metadata()
    input_tokens: Mapped[int | None]
    output_tokens: Mapped[int | None]
    status: Mapped[MessageStatus] = mapped_column(
        _enum(MessageStatus, "message_status"), default=MessageStatus.COMPLETE
    )
    message_id: Mapped[str | None] = mapped_column(index=True)
    reply_to_message_id: Mapped[str | None] = mapped_column(index=True)
    client_id: Mapped[str | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        UniqueConstraint("conversation_id", "client_id"),
        # the replies being streamed (few): what the sweep of stopped servers' replies reads
        Index(
            "ix_messages_streaming",
            "updated_at",
            sqlite_where=text("status = 'streaming'"),
            postgresql_where=text("status = 'streaming'"),
        ),
    )


class ConversationDataRow(Base):
    __tablename__ = "conversation_data"

    id: Mapped[uuid.UUID] = _id()
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    data_type: Mapped[DataType] = mapped_column(_enum(DataType, "data_type"))
    content: Mapped[dict[str, Any] | list[Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = _created()

    __table_args__ = (Index(None, "conversation_id", "data_type", "created_at"),)


class AgentQuestionRow(Base):
    __tablename__ = "agent_questions"

    id: Mapped[uuid.UUID] = _id()
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    agent_name: Mapped[str] = mapped_column(index=True)
    question: Mapped[str] = mapped_column(Text)
    missing_fields: Mapped[list[Any]] = mapped_column(default=list)
    message_id: Mapped[str | None]
    answer: Mapped[str | None] = mapped_column(Text)
    asked_at: Mapped[datetime] = _created()
    answered_at: Mapped[datetime | None]

    __table_args__ = (Index(None, "conversation_id", "asked_at"),)


class ConversationStateRow(Base):
    __tablename__ = "conversation_states"

    id: Mapped[uuid.UUID] = _id()
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    persona_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("personas.id", ondelete="CASCADE"), index=True
    )
    module_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("modules.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(80))
    state_key: Mapped[str]
    state_value: Mapped[Any] = mapped_column(JSONValue)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (UniqueConstraint("conversation_id", "scope", "state_key"),)


class MemoryRow(Base):
    __tablename__ = "memories"

    id: Mapped[uuid.UUID] = _id()
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), index=True
    )
    persona_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("personas.id", ondelete="SET NULL"), index=True
    )
    first_message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    user_id: Mapped[str | None]
    content: Mapped[str] = mapped_column(Text)
    memory_type: Mapped[str | None] = mapped_column(String(50))
    importance: Mapped[float] = mapped_column(Float, default=0.5)
    embedding: Mapped[list[float] | None] = mapped_column(Embedding)
    embedding_model: Mapped[str | None] = mapped_column(
        String(MODEL_NAME), ForeignKey("embedding_models.name")
    )
    metadata_: Mapped[dict[str, Any]] = _metadata()
    last_accessed_at: Mapped[datetime | None]
    access_count: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (
        Index(None, "user_id", "created_at"),
        Index(None, "embedding_model", "user_id"),
        Index(None, "created_at"),  # every user's memories, newest first
    )


class EmbeddingModelRow(Base):
    """The models whose embeddings the store holds, each with its one dimension."""

    __tablename__ = "embedding_models"

    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(MODEL_NAME), unique=True)
    dimension: Mapped[int]
    created_at: Mapped[datetime] = _created()


class UserSessionRow(Base):
    __tablename__ = "user_sessions"

    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[str]
    chat_id: Mapped[str]
    last_conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    metadata_: Mapped[dict[str, Any]] = _metadata()
    last_activity_at: Mapped[datetime] = _created()
    created_at: Mapped[datetime] = _created()

    __table_args__ = (UniqueConstraint("user_id", "chat_id"),)


class OperationTemplateRow(Base):
    __tablename__ = "operation_templates"

    id: Mapped[uuid.UUID] = _id()
    operation_type: Mapped[str] = mapped_column(String(100), index=True)
    template_name: Mapped[str]
    sample_input: Mapped[str] = mapped_column(Text)
    expected_output: Mapped[dict[str, Any]] = _json_object()
    usage_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (UniqueConstraint("operation_type", "template_name"),)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str]
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    admin: Mapped[bool] = mapped_column(default=False)
    """May change the whole store at once (sync or export its configuration, purge)."""
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class GraphCheckpointRow(Base):
    """A LangGraph checkpoint, its channel values left out (they are in ``graph_blobs``)."""

    __tablename__ = "graph_checkpoints"

    thread_id: Mapped[str] = mapped_column(primary_key=True)
    checkpoint_ns: Mapped[str] = mapped_column(Text, primary_key=True)
    checkpoint_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    parent_checkpoint_id: Mapped[str | None] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    checkpoint: Mapped[bytes] = mapped_column(LargeBinary)
    metadata_type: Mapped[str] = mapped_column(String(32))
    metadata_: Mapped[bytes] = mapped_column("metadata", LargeBinary)
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = _created()


class GraphBlobRow(Base):
    """One version of one channel's value: whole (``base_version`` NULL) or the items appended
    to the list of ``base_version`` (its first ``base_length`` items)."""

    __tablename__ = "graph_blobs"

    thread_id: Mapped[str] = mapped_column(primary_key=True)
    checkpoint_ns: Mapped[str] = mapped_column(Text, primary_key=True)
    channel: Mapped[str] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    value: Mapped[bytes | None] = mapped_column(LargeBinary)
    base_version: Mapped[str | None] = mapped_column(String(64))
    base_length: Mapped[int | None]
    depth: Mapped[int] = mapped_column(default=0)


class GraphWriteRow(Base):
    """A pending write of a task, kept with the checkpoint it follows."""

    __tablename__ = "graph_writes"

    thread_id: Mapped[str] = mapped_column(primary_key=True)
    checkpoint_ns: Mapped[str] = mapped_column(Text, primary_key=True)
    checkpoint_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_id: Mapped[str] = mapped_column(primary_key=True)
    idx: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str]
    type: Mapped[str] = mapped_column(String(32))
    value: Mapped[bytes | None] = mapped_column(LargeBinary)
    task_path: Mapped[str] = mapped_column(Text, default="")


class StoreItemRow(Base):
    """A key/value item of a namespace (LangGraph's long-term store); ``memory_id`` is its
    semantic-search entry when the store indexes items."""

    __tablename__ = "store_items"

    namespace: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    memory_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("memories.id", ondelete="SET NULL"), index=True
    )
    ttl_minutes: Mapped[float | None] = mapped_column(Float)
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class StoreChangeRow(Base):
    """A change that caches keep a copy of (an agent, persona, tool, module, workflow, or a
    conversation's agent), logged for the other processes on the database
    (``repositories.store_changes``); ``origin`` names the process that made it."""

    __tablename__ = "store_changes"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[uuid.UUID]
    origin: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
