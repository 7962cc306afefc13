"""Statements compiled once and run on the driver: values stored as SQLAlchemy stores them,
driver errors as domain errors."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import ColumnElement, bindparam, cast, func, insert, select
from sqlalchemy.dialects.postgresql import JSONB

from agentkeep import ConversationCreate, DatabaseManager, MessageCreate, Sync
from agentkeep.db.prepared import one_of, param, prepared
from agentkeep.db.tables import messages
from agentkeep.errors import AgentkeepError, ConflictError
from agentkeep.models.enums import MessageStatus


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


def _statuses(db: DatabaseManager[Sync]) -> uuid.UUID:
    """A conversation with a message of each status, in the order of ``MessageStatus``."""
    cid = db.conversations.create(ConversationCreate(user_id="u")).id
    for status in MessageStatus:
        db.messages.append(
            cid, MessageCreate(role="assistant", content=status.value, status=status)
        )
    return cid


def test_an_in_list_is_bound_through_the_columns_type(db: DatabaseManager[Sync]) -> None:
    cid = _statuses(db)
    wanted = (MessageStatus.CANCELLED, MessageStatus.COMPLETE)
    query = (
        select(messages.c.content)
        .where(messages.c.conversation_id == param("cid"))
        .where(one_of(messages.c.status, wanted, name="wanted"))
        .order_by(messages.c.seq)
    )
    with db.service.unit("read") as conn:
        statement = prepared(query, conn.dialect)
        got = statement.rows(conn, {"cid": cid})
        # the same statement through SQLAlchemy's execution, with an expanding IN
        expected = conn.execute(
            select(messages.c.content)
            .where(messages.c.conversation_id == cid, messages.c.status.in_(wanted))
            .order_by(messages.c.seq)
        ).all()
    assert [tuple(row) for row in got] == [tuple(row) for row in expected]
    assert sorted(row[0] for row in got) == ["cancelled", "complete"]
    assert "IN (" in statement.sql


def test_an_in_list_value_can_be_given_at_each_run(db: DatabaseManager[Sync]) -> None:
    cid = _statuses(db)
    query = select(messages.c.content).where(
        messages.c.conversation_id == param("cid"),
        one_of(messages.c.status, [MessageStatus.ERROR], name="status"),
    )
    with db.service.unit("read") as conn:
        statement = prepared(query, conn.dialect)
        assert [r[0] for r in statement.rows(conn, {"cid": cid})] == ["error"]
        given = {"cid": cid, "status_0": MessageStatus.STREAMING}
        assert [r[0] for r in statement.rows(conn, given)] == ["streaming"]


@pytest.mark.parametrize(
    "condition",
    [
        pytest.param(messages.c.status.in_([MessageStatus.COMPLETE]), id="expanding IN"),
        pytest.param(messages.c.status.in_(bindparam("statuses", expanding=True)), id="IN list"),
        pytest.param(
            messages.c.seq == bindparam("seq", 1, literal_execute=True), id="literal execute"
        ),
    ],
)
def test_a_statement_with_values_rendered_at_execution_is_refused_when_built(
    db: DatabaseManager[Sync], condition: ColumnElement[bool]
) -> None:
    with pytest.raises(ValueError, match="rendered at execution") as refused:
        prepared(select(messages.c.id).where(condition), db.service.engine.dialect)
    assert "one_of()" in str(refused.value)


def test_a_bind_name_the_dialect_escapes_is_refused(db: DatabaseManager[Sync]) -> None:
    query = select(messages.c.id).where(messages.c.seq == bindparam("a%b"))
    with pytest.raises(ValueError, match="escapes"):
        prepared(query, db.service.engine.dialect)


def test_one_of_needs_a_value() -> None:
    with pytest.raises(ValueError, match="at least one"):
        one_of(messages.c.status, [], name="none")


@pytest.mark.parametrize("fetch", ["rows", "first"])
def test_an_error_raised_while_fetching_rows_is_a_domain_error(
    db: DatabaseManager[Sync], fetch: str
) -> None:
    cid = db.conversations.create(ConversationCreate(user_id="u")).id
    for content in ('{"a": 1}', "not JSON") if fetch == "rows" else ("not JSON",):
        db.messages.append(cid, MessageCreate(role="user", content=content))
    dialect = db.service.engine.dialect
    # the bad row fails: SQLite steps to it only when the rows are fetched
    document = (
        func.json_extract(messages.c.content, "$")
        if dialect.name == "sqlite"
        else cast(messages.c.content, JSONB)
    )
    query = select(document).where(messages.c.conversation_id == param("cid"))
    with db.service.unit("read") as conn:
        statement = prepared(query.order_by(messages.c.seq), conn.dialect)
        with pytest.raises(AgentkeepError, match=r"(?i)json") as failed:
            getattr(statement, fetch)(conn, {"cid": cid})
    assert isinstance(failed.value.__cause__, dialect.loaded_dbapi.Error)


def test_the_first_row_or_none(db: DatabaseManager[Sync]) -> None:
    cid = db.conversations.create(ConversationCreate(user_id="u")).id
    db.messages.append(cid, MessageCreate(role="user", content="hello"))
    query = select(messages.c.content).where(messages.c.conversation_id == param("cid"))
    with db.service.unit("read") as conn:
        statement = prepared(query, conn.dialect)
        assert tuple(statement.first(conn, {"cid": cid})) == ("hello",)
        assert statement.first(conn, {"cid": uuid.uuid4()}) is None
