"""Conversations: create, read, list (keyset pages), update, delete with everything they own.

A conversation's status moves ``active`` → ``completed`` | ``abandoned``, and an abandoned one may
be resumed (``active``) or completed later; a completed one is final. A change of status is one
conditional ``UPDATE … WHERE status IN (the states it may come from)``, so two concurrent changes
cannot both pass the check; a refused one is a ``ConflictError`` naming ``status``.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Integer, Select, delete, func, insert, select, update

from agentkeep.db.prepared import param, prepared
from agentkeep.db.tables import agents, conversations, personas
from agentkeep.db.types import new_id, utcnow
from agentkeep.errors import ConflictError, NotFoundError
from agentkeep.models.common import (
    IdLike,
    Page,
    as_input,
    check_json,
    check_limit,
    check_text,
    encode_cursor,
    optional_uuid,
    to_enum,
    to_uuid,
)
from agentkeep.models.conversation import Conversation, ConversationCreate, ConversationUpdate
from agentkeep.models.enums import ConversationStatus
from agentkeep.repositories.base import ModeT, changes_of, load, operation, require
from agentkeep.repositories.decode import decoder
from agentkeep.repositories.keyed import IdRepository, changed
from agentkeep.repositories.keyset import after, cursor_position

Status = ConversationStatus

COMES_FROM: dict[ConversationStatus, frozenset[ConversationStatus]] = {
    Status.ACTIVE: frozenset({Status.ACTIVE, Status.ABANDONED}),
    Status.COMPLETED: frozenset({Status.ACTIVE, Status.ABANDONED, Status.COMPLETED}),
    Status.ABANDONED: frozenset({Status.ACTIVE, Status.ABANDONED}),
}
"""The statuses a conversation may be in to be set to each status (staying is no change)."""


class ConversationRepository(IdRepository[ModeT, Conversation]):
    """SQL for the ``conversations`` table."""

    _table = conversations
    _item = Conversation
    _noun = "conversation"

    @operation("write")
    def create(self, data: ConversationCreate | Mapping[str, Any]) -> Conversation:
        """Start a conversation; counts it in its agent's usage statistics."""
        data = as_input(ConversationCreate, data)
        self._check(data.metadata, data.provider_config)
        now = utcnow()
        values: dict[str, Any] = {
            **data.model_dump(),
            "id": new_id(),
            "message_count": 0,
            "last_sequence": 0,
            "created_at": now,
            "updated_at": now,
        }
        conn = self.conn
        if data.agent_id is not None:  # usage, not a change of the agent: updated_at stays
            counted = conn.execute(
                update(agents)
                .where(agents.c.id == data.agent_id)
                .values(conversation_count=agents.c.conversation_count + 1, last_used_at=now)
            )
            if counted.rowcount == 0:
                raise NotFoundError(f"agent {data.agent_id} not found", field="agent_id")
        if data.persona_id is not None:
            require(conn, personas, data.persona_id, "persona_id")
        conn.execute(insert(conversations).values(values))
        return Conversation.model_validate(values)

    @operation("read", single=True, bounded=True)
    def get(self, conversation_id: IdLike) -> Conversation:
        """The conversation; ``NotFoundError`` if there is none."""
        return self._get(conversation_id)

    @operation("read", single=True, bounded=True)
    def find(self, conversation_id: IdLike) -> Conversation | None:
        """The conversation, or ``None``."""
        return self._find(self._key(conversation_id))

    @operation("read", single=True, bounded=True)
    def list(
        self,
        *,
        user_id: str | None = None,
        chat_id: str | None = None,
        agent_id: IdLike | None = None,
        status: ConversationStatus | str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page[Conversation]:
        """Conversations, most recently active first, filtered; keyset-paginated by ``cursor``."""
        check_limit(limit, self.settings.max_page_size)
        check_text(user_id, "user_id")
        check_text(chat_id, "chat_id")
        values: dict[str, Any] = {
            "user_id": user_id,
            "chat_id": chat_id,
            "agent_id": None if agent_id is None else to_uuid(agent_id, "agent_id"),
            "status": None if status is None else to_enum(ConversationStatus, status, "status"),
        }
        if cursor is not None:
            values["after_time"], values["after_id"] = cursor_position(cursor)
        shape = tuple(name for name, value in values.items() if value is not None)
        query = _LISTS.get(shape)
        if query is None:
            query = _LISTS[shape] = _list_query(shape)
        conn = self.conn
        values["limit"] = limit + 1
        rows = prepared(query, conn.dialect).rows(conn, values)
        items = decoder(Conversation, conversations, conn.dialect).all(rows[:limit])
        if len(rows) <= limit:
            return Page(items=items)
        last = items[-1]
        return Page(items=items, next_cursor=encode_cursor(last.updated_at, last.id))

    @operation("write")
    def update(
        self,
        conversation_id: IdLike,
        data: ConversationUpdate | Mapping[str, Any],
        *,
        from_status: Collection[ConversationStatus] | None = None,
    ) -> Conversation:
        """Change the fields set in ``data``.

        Args:
            conversation_id: The conversation.
            data: The fields to change.
            from_status: Change it only if it is in one of these statuses (besides the ones a
                change of status needs it to be in).

        Raises:
            NotFoundError: There is no such conversation.
            ConflictError: ``status`` cannot change from the conversation's status to this one
                (such as a completed conversation made active), or it is not in ``from_status``.
        """
        cid = self._key(conversation_id)
        changes = changes_of(as_input(ConversationUpdate, data), conversations)
        allowed = None if from_status is None else frozenset(from_status)
        if changes.get("status") is not None:
            sources = COMES_FROM[ConversationStatus(changes["status"])]
            allowed = sources if allowed is None else allowed & sources
        self._check(changes.get("metadata"), changes.get("provider_config"))
        references = [
            (f, t) for f, t in (("agent_id", agents), ("persona_id", personas)) if changes.get(f)
        ]
        conn = self.conn
        for field, table in references:
            require(conn, table, changes[field], field)
        if allowed is None:
            updated = self._update_row(cid, changed(changes), given=conversation_id)
        else:
            updated = self._update_from(cid, changed(changes), allowed, changes.get("status"))
        self.uow.changed("conversation", cid)  # its agent may be another now
        return updated

    def _update_from(
        self,
        cid: uuid.UUID,
        values: dict[str, Any],
        allowed: frozenset[ConversationStatus],
        target: ConversationStatus | None,
    ) -> Conversation:
        """Update the conversation only if its status is one of ``allowed``."""
        conn = self.conn
        statement = (
            update(conversations)
            .where(conversations.c.id == cid, conversations.c.status.in_(sorted(allowed)))
            .values(values)
            .returning(*conversations.c)
        )
        row = conn.execute(statement).first()
        if row is not None:
            return load(Conversation, row)
        current = self._find(cid)
        if current is None:
            raise self._not_found(cid)
        if target is current.status:
            problem = f"is already {target.value}"
        else:
            wanted = f"become {target.value}" if target is not None else "change now"
            problem = f"is {current.status.value}: it cannot {wanted}"
        raise ConflictError(f"conversation {cid} {problem}", field="status")

    @operation("write")  # with the change log's entry: a transaction
    def delete(self, conversation_id: IdLike) -> bool:
        """Delete the conversation and, by cascade, everything it owns. ``False`` if absent."""
        cid = self._key(conversation_id)
        conn = self.conn
        result = conn.execute(delete(conversations).where(conversations.c.id == cid))
        if result.rowcount == 0:
            return False
        self.uow.changed("conversation", cid)
        return True

    @operation("read", single=True)
    def count(self, *, user_id: str | None = None, agent_id: IdLike | None = None) -> int:
        query = select(func.count()).select_from(conversations)
        if user_id is not None:
            query = query.where(conversations.c.user_id == user_id)
        aid = optional_uuid(agent_id, "agent_id")
        if aid is not None:
            query = query.where(conversations.c.agent_id == aid)
        conn = self.conn
        return int(conn.scalar(query) or 0)

    def _check(self, metadata: Any, provider_config: Any) -> None:
        limit = self.settings.max_metadata_bytes
        check_json(metadata, limit, "metadata")
        check_json(provider_config, limit, "provider_config")


_LISTS: dict[tuple[str, ...], Select[Any]] = {}
"""The list statements by the filters given (with ``after_time``: from a cursor on), each
compiled once per backend and run on the driver (``db.prepared``)."""


def _list_query(given: tuple[str, ...]) -> Select[Any]:
    """Conversations matching the ``given`` filters, most recently active first."""
    query = select(conversations)
    for name in ("user_id", "chat_id", "agent_id", "status"):
        if name in given:
            query = query.where(conversations.c[name] == param(name))
    when, key = conversations.c.updated_at, conversations.c.id
    if "after_time" in given:
        query = query.where(after(when, key, param("after_time"), param("after_id")))
    query = query.order_by(when.desc(), key.desc())
    return query.limit(param("limit", Integer))
