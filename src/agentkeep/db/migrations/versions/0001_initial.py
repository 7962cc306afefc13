"""initial schema: every entity the store keeps

Revision ID: 0001
Revises:
Create Date: 2026-11-23 13:47:35.639516
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import agentkeep.db.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "modules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("trigger_pattern", sa.String(length=500), nullable=True),
        sa.Column("script", sa.Text(), nullable=True),
        sa.Column(
            "execution_context",
            sa.Enum(
                "IMMEDIATE",
                "POST_RESPONSE",
                "ON_DEMAND",
                name="execution_context",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("requires_ai_inference", sa.Boolean(), nullable=False),
        sa.Column("stage_priority", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_modules")),
        sa.UniqueConstraint("name", name=op.f("uq_modules_name")),
    )
    op.create_table(
        "operation_templates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("operation_type", sa.String(length=100), nullable=False),
        sa.Column("template_name", sa.String(length=255), nullable=False),
        sa.Column("sample_input", sa.Text(), nullable=False),
        sa.Column(
            "expected_output",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("usage_count", sa.Integer(), nullable=False),
        sa.Column("created_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operation_templates")),
        sa.UniqueConstraint(
            "operation_type",
            "template_name",
            name=op.f("uq_operation_templates_operation_type_template_name"),
        ),
    )
    with op.batch_alter_table("operation_templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_operation_templates_operation_type"), ["operation_type"], unique=False
        )

    op.create_table(
        "personas",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(length=50), nullable=True),
        sa.Column("loop_frequency", sa.String(length=50), nullable=True),
        sa.Column("first_message", sa.Text(), nullable=True),
        sa.Column("image_path", sa.String(length=500), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personas")),
        sa.UniqueConstraint("name", name=op.f("uq_personas_name")),
    )
    op.create_table(
        "tools",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("usage_count", sa.Integer(), nullable=False),
        sa.Column("last_used_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tools")),
        sa.UniqueConstraint("name", name=op.f("uq_tools_name")),
    )
    op.create_table(
        "workflows",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "steps",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
        sa.UniqueConstraint("name", name=op.f("uq_workflows_name")),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("persona_id", sa.Uuid(), nullable=True),
        sa.Column("provider", sa.String(length=50), nullable=True),
        sa.Column("model", sa.String(length=255), nullable=True),
        sa.Column(
            "model_settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("include_history", sa.Boolean(), nullable=False),
        sa.Column("conversation_count", sa.Integer(), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("last_used_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["persona_id"],
            ["personas.id"],
            name=op.f("fk_agents_persona_id_personas"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("name", name=op.f("uq_agents_name")),
    )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agents_persona_id"), ["persona_id"], unique=False)

    op.create_table(
        "agent_tools",
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("tool_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_tools_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tool_id"], ["tools.id"], name=op.f("fk_agent_tools_tool_id_tools"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("agent_id", "tool_id", name=op.f("pk_agent_tools")),
    )
    with op.batch_alter_table("agent_tools", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agent_tools_tool_id"), ["tool_id"], unique=False)

    op.create_table(
        "conversations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("persona_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column("chat_id", sa.String(length=255), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "completed",
                "abandoned",
                name="conversation_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("operation_type", sa.String(length=100), nullable=True),
        sa.Column("agent_state", sa.String(length=255), nullable=True),
        sa.Column("external_ref", sa.String(length=255), nullable=True),
        sa.Column("provider_type", sa.String(length=50), nullable=True),
        sa.Column(
            "provider_config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("last_sequence", sa.Integer(), nullable=False),
        sa.Column("last_message_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_conversations_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["persona_id"],
            ["personas.id"],
            name=op.f("fk_conversations_persona_id_personas"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversations_agent_id_updated_at"),
            ["agent_id", "updated_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_conversations_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_conversations_persona_id"), ["persona_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_conversations_status_updated_at"), ["status", "updated_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_conversations_user_id_chat_id"), ["user_id", "chat_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_conversations_user_id_updated_at"),
            ["user_id", "updated_at"],
            unique=False,
        )

    op.create_table(
        "agent_questions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("agent_name", sa.String(length=255), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column(
            "missing_fields",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("asked_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_agent_questions_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_questions")),
    )
    with op.batch_alter_table("agent_questions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agent_questions_agent_name"), ["agent_name"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_agent_questions_conversation_id_asked_at"),
            ["conversation_id", "asked_at"],
            unique=False,
        )

    op.create_table(
        "conversation_data",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column(
            "data_type",
            sa.Enum(
                "partial",
                "complete",
                "missing_fields",
                name="data_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "content",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_data_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_data")),
    )
    with op.batch_alter_table("conversation_data", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_data_conversation_id_data_type_created_at"),
            ["conversation_id", "data_type", "created_at"],
            unique=False,
        )

    op.create_table(
        "conversation_states",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("persona_id", sa.Uuid(), nullable=True),
        sa.Column("module_id", sa.Uuid(), nullable=True),
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("state_key", sa.String(length=255), nullable=False),
        sa.Column(
            "state_value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_states_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["module_id"],
            ["modules.id"],
            name=op.f("fk_conversation_states_module_id_modules"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["persona_id"],
            ["personas.id"],
            name=op.f("fk_conversation_states_persona_id_personas"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_states")),
        sa.UniqueConstraint(
            "conversation_id",
            "scope",
            "state_key",
            name=op.f("uq_conversation_states_conversation_id_scope_state_key"),
        ),
    )
    with op.batch_alter_table("conversation_states", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_states_module_id"), ["module_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_conversation_states_persona_id"), ["persona_id"], unique=False
        )

    op.create_table(
        "messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "system",
                "user",
                "assistant",
                "tool",
                name="message_role",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("thinking", sa.Text(), nullable=True),
        sa.Column(
            "tool_calls",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "extra_data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "complete",
                "streaming",
                "cancelled",
                "error",
                name="message_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("reply_to_message_id", sa.String(length=255), nullable=True),
        sa.Column("client_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint(
            "conversation_id", "client_id", name=op.f("uq_messages_conversation_id_client_id")
        ),
        sa.UniqueConstraint("conversation_id", "seq", name=op.f("uq_messages_conversation_id_seq")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messages_message_id"), ["message_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_messages_reply_to_message_id"), ["reply_to_message_id"], unique=False
        )

    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("chat_id", sa.String(length=255), nullable=False),
        sa.Column("last_conversation_id", sa.Uuid(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "last_activity_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["last_conversation_id"],
            ["conversations.id"],
            name=op.f("fk_user_sessions_last_conversation_id_conversations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("user_id", "chat_id", name=op.f("uq_user_sessions_user_id_chat_id")),
    )
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_user_sessions_last_conversation_id"),
            ["last_conversation_id"],
            unique=False,
        )

    op.create_table(
        "memories",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=True),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("persona_id", sa.Uuid(), nullable=True),
        sa.Column("first_message_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("memory_type", sa.String(length=50), nullable=True),
        sa.Column("importance", sa.Float(), nullable=False),
        sa.Column("embedding", agentkeep.db.types.Embedding(), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("last_accessed_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("access_count", sa.Integer(), nullable=False),
        sa.Column("created_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_memories_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_memories_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["first_message_id"],
            ["messages.id"],
            name=op.f("fk_memories_first_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["persona_id"],
            ["personas.id"],
            name=op.f("fk_memories_persona_id_personas"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memories")),
    )
    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_memories_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_memories_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_memories_first_message_id"), ["first_message_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_memories_persona_id"), ["persona_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_memories_user_id_created_at"), ["user_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_memories_user_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_memories_persona_id"))
        batch_op.drop_index(batch_op.f("ix_memories_first_message_id"))
        batch_op.drop_index(batch_op.f("ix_memories_conversation_id"))
        batch_op.drop_index(batch_op.f("ix_memories_agent_id"))

    op.drop_table("memories")
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_sessions_last_conversation_id"))

    op.drop_table("user_sessions")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_reply_to_message_id"))
        batch_op.drop_index(batch_op.f("ix_messages_message_id"))

    op.drop_table("messages")
    with op.batch_alter_table("conversation_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_states_persona_id"))
        batch_op.drop_index(batch_op.f("ix_conversation_states_module_id"))

    op.drop_table("conversation_states")
    with op.batch_alter_table("conversation_data", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_data_conversation_id_data_type_created_at"))

    op.drop_table("conversation_data")
    with op.batch_alter_table("agent_questions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_questions_conversation_id_asked_at"))
        batch_op.drop_index(batch_op.f("ix_agent_questions_agent_name"))

    op.drop_table("agent_questions")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversations_user_id_updated_at"))
        batch_op.drop_index(batch_op.f("ix_conversations_user_id_chat_id"))
        batch_op.drop_index(batch_op.f("ix_conversations_status_updated_at"))
        batch_op.drop_index(batch_op.f("ix_conversations_persona_id"))
        batch_op.drop_index(batch_op.f("ix_conversations_created_at"))
        batch_op.drop_index(batch_op.f("ix_conversations_agent_id_updated_at"))

    op.drop_table("conversations")
    with op.batch_alter_table("agent_tools", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_tools_tool_id"))

    op.drop_table("agent_tools")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agents_persona_id"))

    op.drop_table("agents")
    op.drop_table("workflows")
    op.drop_table("tools")
    op.drop_table("personas")
    with op.batch_alter_table("operation_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_operation_templates_operation_type"))

    op.drop_table("operation_templates")
    op.drop_table("modules")
