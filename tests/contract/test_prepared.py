"""Statements compiled once and run on the driver: values stored as SQLAlchemy stores them,
driver errors as domain errors."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from agentkeep import ConversationCreate, DatabaseManager, MessageCreate, Sync
from agentkeep.db.prepared import prepared
from agentkeep.db.tables import messages
from agentkeep.errors import ConflictError


def test_an_appended_message_is_stored_as_sqlalchemy_stores_it(db: DatabaseManager[Sync]) -> None:
    cid = db.conversations.create(ConversationCreate(user_id="u")).id
    appended = db.messages.append(
        cid,
        MessageCreate(
            role="assistant",
            content="héllo",
            metadata={"a": [1, "é", 1.5e20]},
            tool_calls=[{"name": "f", "arguments": {"x": 1}}],
            input_tokens=3,
            client_id="c1",
        ),
    )
    copy = {**appended.model_dump(), "seq": 99, "client_id": "c2", "id": None}
    with db.service.unit("write") as conn:
        copy["id"] = conn.execute(select(messages.c.id).where(messages.c.seq == 1)).scalar()
        copy["id"] = copy["id"].__class__(int=copy["id"].int + 1)
        conn.execute(insert(messages).values(copy))
        rows = conn.execute(
            select(*(c for c in messages.c if c.name not in ("id", "seq", "client_id")))
            .where(messages.c.conversation_id == cid)
            .order_by(messages.c.seq)
        ).all()
    assert rows[0] == rows[1]
    assert db.messages.get(appended.id) == appended


def test_a_driver_error_is_a_domain_error(db: DatabaseManager[Sync]) -> None:
    cid = db.conversations.create(ConversationCreate(user_id="u")).id
    stored = db.messages.append(cid, MessageCreate(role="user", content="hi"))
    with db.service.unit("write") as conn:
        again = prepared(
            insert(messages).from_select(
                [c.name for c in messages.c], select(messages).where(messages.c.id == stored.id)
            ),
            conn.dialect,
        )
        with pytest.raises(ConflictError):
            again.run(conn, {})
