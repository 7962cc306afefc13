"""Conversation data a bot collects: ``partial``, ``complete`` and ``missing_fields`` snapshots.

Snapshots are appended, never changed: the latest of a type is the current one, the earlier ones
are the history of what the agent understood when. Reads go by the
``(conversation_id, data_type, created_at)`` index.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, Select, insert, select, union_all

from agentkeep.db.tables import conversation_data as snapshots
from agentkeep.db.tables import conversations
from agentkeep.db.types import new_id, utcnow
from agentkeep.models.common import (
    IdLike,
    JSONObject,
    Page,
    check_json,
    check_limit,
    to_enum,
    to_uuid,
    validate_input,
)
from agentkeep.models.conversation_flow import ConversationData, ConversationDataCreate
from agentkeep.models.enums import DataType
from agentkeep.repositories.base import ModeT, Repository, load, operation, require
from agentkeep.repositories.keyset import newest_first, to_page


class ConversationDataRepository(Repository[ModeT]):
    """SQL for the ``conversation_data`` table."""

    @operation("write")
    def add(
        self,
        conversation_id: IdLike,
        data_type: DataType | str,
        content: JSONObject | list[Any],
    ) -> ConversationData:
        """Store a snapshot of the conversation's structured data.

        Args:
            conversation_id: The conversation it belongs to.
            data_type: ``partial`` or ``complete`` (``content`` is a JSON object) or
                ``missing_fields`` (``content`` is a list of field names).
            content: The data.

        Raises:
            NotFoundError: The conversation does not exist.
            ValidationError: Wrong data type, or content that does not fit it or is not JSON.
            TooLargeError: The content exceeds ``settings.max_metadata_bytes`` as JSON.
        """
        cid = to_uuid(conversation_id, "conversation_id")
        data = validate_input(ConversationDataCreate, {"data_type": data_type, "content": content})
        check_json(data.content, self.settings.max_metadata_bytes, "content")
        values: dict[str, Any] = {
            "id": new_id(),
            "conversation_id": cid,
            "data_type": data.data_type,
            "content": data.content,
            "created_at": utcnow(),
        }
        conn = self.conn
        require(conn, conversations, cid, "conversation_id")
        conn.execute(insert(snapshots).values(values))
        return ConversationData.model_validate(values)

    @operation("read", single=True)
    def latest(
        self, conversation_id: IdLike, data_type: DataType | str = DataType.PARTIAL
    ) -> ConversationData | None:
        """The most recent snapshot of ``data_type``, or ``None`` if there is none."""
        cid = to_uuid(conversation_id, "conversation_id")
        query = _latest_query(cid, to_enum(DataType, data_type, "data_type"))
        conn = self.conn
        row = conn.execute(query).first()
        return None if row is None else _snapshot(row)

    @operation("read", single=True)
    def latest_of_each(self, conversation_id: IdLike) -> dict[DataType, ConversationData]:
        """The most recent snapshot of every data type the conversation has, in one query."""
        cid = to_uuid(conversation_id, "conversation_id")
        parts = [select(_latest_query(cid, kind).subquery()) for kind in DataType]
        conn = self.conn
        rows = conn.execute(union_all(*parts)).all()
        return {found.data_type: found for found in (_snapshot(row) for row in rows)}

    @operation("read", single=True)
    def list(
        self,
        conversation_id: IdLike,
        *,
        data_type: DataType | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ConversationData]:
        """A conversation's snapshots, newest first, optionally of one type; keyset pages."""
        check_limit(limit, self.settings.max_page_size)
        query = select(snapshots).where(
            snapshots.c.conversation_id == to_uuid(conversation_id, "conversation_id")
        )
        if data_type is not None:
            query = query.where(snapshots.c.data_type == to_enum(DataType, data_type, "data_type"))
        query = newest_first(query, snapshots.c.created_at, snapshots.c.id, cursor)
        conn = self.conn
        rows = conn.execute(query.limit(limit + 1)).all()
        return to_page(rows, limit, _snapshot, "created_at")


def _latest_query(cid: uuid.UUID, data_type: DataType) -> Select[Any]:
    query = select(snapshots).where(
        snapshots.c.conversation_id == cid, snapshots.c.data_type == data_type
    )
    return newest_first(query, snapshots.c.created_at, snapshots.c.id, None).limit(1)


def _snapshot(row: Row[Any]) -> ConversationData:
    return load(ConversationData, row)
