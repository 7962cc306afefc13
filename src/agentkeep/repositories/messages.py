"""Messages: the hot path. Append, read the tail, page through history, finalise a streamed reply.

An append assigns the next per-conversation sequence number and bumps the conversation's and its
agent's counters in the same unit of work:

- on PostgreSQL as **one statement** (data-modifying CTEs), sent in autocommit when the append is
  its own unit of work, so an append is one round trip;
- on SQLite as three statements in one write transaction: the process's writer lock, then
  ``BEGIN IMMEDIATE`` (statements are in-process and cheap; the commit's fsync is the cost).
  Appends from several threads at once share one commit (``db.group_commit``); each is
  acknowledged only once that commit has returned. The metadata and tool calls are stored as
  the JSON text their check made (compact), not encoded a second time.

What an append costs besides the database's own work (the checks, the statements' parameters,
the unit of work) is measured by ``python -m bench.profile append``; the returned message is
built from the values written without validating them again (they come from a validated
``MessageCreate`` or are made here).

A user message that replies (``reply_to_message_id``) to the message that carried an agent's
question answers that question in the same statement (on PostgreSQL, one more data-modifying CTE;
on SQLite, one more statement in the transaction): its content becomes the answer, its time the
``answered_at``. Only the question's own conversation is searched, and only an unanswered
question is answered, so of two replies to one question the first stored wins.

A ``client_id`` makes retries idempotent: the second append with the same id returns the stored
message and changes nothing; the same id with another role or content is an
``IdempotencyConflictError`` (HTTP 409 ``idempotency_conflict``). On PostgreSQL such an append
locks the conversation's row, then inserts ``ON CONFLICT DO NOTHING`` and bumps the counters only
if it stored the message: racing retries wait for each other and none raises, so inside a larger
unit of work it needs no savepoint (two round trips fewer).

An agent's history with a user (:meth:`MessageRepository.history`) is one statement: the user's
conversations with the agent, most recently active first (the conversations' ``(user_id,
updated_at)`` index), each one's messages newest first (the ``(conversation_id, seq)`` key), cut
at the limit, so it reads about as many rows as it returns however long the user's past.

Full-text ``search`` comes from :class:`~agentkeep.repositories.message_search.MessageSearch`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import (
    Connection,
    Insert,
    Integer,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)

from agentkeep.db.prepared import Prepared, one_of, param, prepared
from agentkeep.db.tables import agent_questions, agents, conversations, messages
from agentkeep.db.types import new_id, utcnow
from agentkeep.errors import (
    IdempotencyConflictError,
    NotFoundError,
    ValidationError,
)
from agentkeep.models.common import (
    INT32_MAX,
    IdLike,
    Page,
    PlatformId,
    as_input,
    check_json,
    check_limit,
    check_text_size,
    platform_id,
    reason,
    to_uuid,
)
from agentkeep.models.conversation import Message, MessageCreate, MessageUpdate, ToolCallRecord
from agentkeep.models.enums import MessageStatus, Role
from agentkeep.repositories.base import ModeT, changes_of, dialect_insert, load, operation
from agentkeep.repositories.decode import decoder
from agentkeep.repositories.keyed import IdRepository, changed
from agentkeep.repositories.message_search import MessageSearch

_INSERTED = [c.name for c in messages.c if c.name != "seq"]
TOKENS = ("input_tokens", "output_tokens")
FINISHED = (MessageStatus.COMPLETE, MessageStatus.CANCELLED)
"""The statuses of the messages that make up an agent's history: a reply still streaming, or one
that failed, is not a turn (a cancelled reply's partial text is)."""
_USER_ID: TypeAdapter[str] = TypeAdapter(PlatformId)


class MessageRepository(MessageSearch[ModeT], IdRepository[ModeT, Message]):
    """SQL for the ``messages`` table."""

    _table = messages
    _item = Message
    _noun = "message"

    @operation("write", single=True)
    def append(
        self,
        conversation_id: IdLike,
        data: MessageCreate | Mapping[str, Any],
        *,
        conversation_updated_at: datetime | None = None,
    ) -> Message:
        """Store a message at the end of a conversation and return it with its sequence number.

        Args:
            conversation_id: The conversation.
            data: The message.
            conversation_updated_at: The time the conversation's ``updated_at`` takes (now unless
                given): an integration whose sessions keep the time of their last event sets it
                in the same statement instead of a second one.

        Raises:
            NotFoundError: the conversation does not exist.
            TooLargeError: content or metadata exceed the configured limits.
        """
        cid = to_uuid(conversation_id, "conversation_id")
        data = as_input(MessageCreate, data)
        values, params, documents = self._row(cid, data, conversation_updated_at)
        if self.dialect == "postgresql":
            seq = _seq(prepared(_pg_statement(values), self.conn.dialect).run(self.conn, params))
        else:
            # SQLite keeps JSON as text: the text the check made is stored, not made again
            params["p_metadata"], params["p_tool_calls"] = documents
            seq = self._append_statements(values, params)
        if seq is None:
            return self._existing_or_missing(cid, data)
        return _written(values, data.tool_calls, seq)

    def pipelined_append(
        self,
        conversation_id: IdLike,
        data: MessageCreate,
        *,
        conversation_updated_at: datetime | None = None,
    ) -> tuple[Prepared, dict[str, Any], uuid.UUID]:
        """PostgreSQL: the one statement that appends ``data`` (checked as :meth:`append` checks
        it), its parameters and the new message's id, for a caller that sends it together with
        other statements before any answer is back (a libpq pipeline). Run, the statement
        returns a row if it stored the message, none if it did not (the conversation does not
        exist, or a message with the same ``client_id`` is stored): :meth:`append` then tells
        which.

        Raises:
            TooLargeError: content or metadata exceed the configured limits.
        """
        if self.dialect != "postgresql":
            raise RuntimeError("a pipelined append is PostgreSQL's")
        cid = to_uuid(conversation_id, "conversation_id")
        values, params, _ = self._row(cid, data, conversation_updated_at)
        return prepared(_pg_statement(values), self.conn.dialect), params, values["id"]

    def _row(
        self, cid: uuid.UUID, data: MessageCreate, touched_at: datetime | None
    ) -> tuple[dict[str, Any], dict[str, Any], tuple[str | None, str | None]]:
        """An append's checked values, its statement parameters and (SQLite) its JSON texts."""
        calls = _stored_calls(data.tool_calls)
        documents = self._check(data.content, data.thinking, data.metadata, calls)
        now = utcnow()
        values: dict[str, Any] = {
            "id": new_id(),
            "conversation_id": cid,
            "role": data.role,
            "content": data.content,
            "thinking": data.thinking,
            "tool_calls": calls,
            "metadata": data.metadata,
            "input_tokens": data.input_tokens,
            "output_tokens": data.output_tokens,
            "status": data.status,
            "message_id": data.message_id,
            "reply_to_message_id": data.reply_to_message_id,
            "client_id": data.client_id,
            "created_at": now,
            "updated_at": now,
        }
        params = _params(values)
        params["p_touched_at"] = now if touched_at is None else touched_at
        return values, params, documents

    def _append_statements(self, values: dict[str, Any], params: dict[str, Any]) -> int | None:
        conn = self.conn
        dialect = conn.dialect
        bump = _BUMP_NEW_CLIENT if values["client_id"] is not None else _BUMP
        bumped = prepared(bump, dialect).first(conn, params)
        if bumped is None:
            return None
        seq, agent_id = bumped
        if agent_id is not None:  # as the driver returned it: straight into the next statement
            use = prepared(_AGENT_USE, dialect, raw=("p_agent_id",))
            use.run(conn, {**params, "p_agent_id": agent_id})
        prepared(_INSERT, dialect, raw=_JSON_TEXT).run(conn, {**params, "p_seq": seq})
        if _answers(values):
            prepared(_ANSWER, dialect).run(conn, params)
        return int(seq)

    def _existing_or_missing(self, cid: uuid.UUID, data: MessageCreate) -> Message:
        """The message a retry stored before (same ``client_id``), if it says the same thing."""
        client_id = data.client_id
        if client_id is not None:
            row = self.conn.execute(select(messages).where(_client_id_is(cid, client_id))).first()
            if row is not None:
                stored = load(Message, row)
                if (stored.role, stored.content) != (data.role, data.content):
                    raise IdempotencyConflictError(
                        f"client_id {client_id!r} was used for another message in this "
                        "conversation (its role or content differs): a retry must send the "
                        "same message, a new message needs a new client_id",
                        field="client_id",
                    )
                return stored
        raise NotFoundError(f"conversation {cid} not found", field="conversation_id")

    @operation("read", single=True, bounded=True)
    def get(self, message_id: IdLike) -> Message:
        """The message with this id (agentkeep's id, not the chat platform's)."""
        return self._get(message_id)

    @operation("read", single=True, bounded=True)
    def last(self, conversation_id: IdLike, n: int = 50) -> list[Message]:
        """The last ``n`` messages of a conversation, oldest first (what a prompt needs)."""
        return self._page(to_uuid(conversation_id, "conversation_id"), n, None, None).items

    @operation("read", single=True)
    def all(self, conversation_id: IdLike) -> list[Message]:
        """A conversation's whole history, oldest first, in one read: for an export, or a
        framework that loads the whole thread at once. To show a long conversation, page through
        it with :meth:`list` instead. An unknown conversation has no messages."""
        conn = self.conn
        cid = to_uuid(conversation_id, "conversation_id")
        rows = prepared(_ALL, conn.dialect).rows(conn, {"cid": cid})
        return decoder(Message, messages, conn.dialect).all(rows)

    @operation("read", single=True, bounded=True)
    def history(
        self,
        agent_id: IdLike,
        user_id: str | int | None,
        *,
        limit: int,
        conversation_id: IdLike | None = None,
        before: int | None = None,
    ) -> list[Message]:
        """An agent's earlier turns with a user: the latest ``limit`` finished messages (complete
        or cancelled), oldest first, across all the user's conversations with the agent.

        Latest counts back from the user's most recently active conversation with the agent
        (conversations by last activity, messages by sequence number within each), so each
        conversation's turns stay together and in order; the conversation being answered, just
        written to, comes last. One statement, however many conversations it spans.

        Args:
            agent_id: The agent.
            user_id: The user, as conversations record them (a chat platform's id; an integer is
                the same as its text). ``None``: only ``conversation_id``'s messages.
            limit: At most this many messages (1 to the store's page-size limit).
            conversation_id: The conversation being answered.
            before: Leave out ``conversation_id``'s messages from this sequence number on (the
                message being answered and anything after it).

        Raises:
            ValidationError: a bad ``limit``, ``user_id``, ``conversation_id`` or ``before``, or
                neither ``user_id`` nor ``conversation_id`` given.
        """
        check_limit(limit, self.settings.max_page_size)
        aid = to_uuid(agent_id, "agent_id")
        cid = None if conversation_id is None else to_uuid(conversation_id, "conversation_id")
        if before is not None:
            if cid is None:
                raise ValidationError("before needs conversation_id", field="before")
            if not 0 <= before <= INT32_MAX:
                raise ValidationError(f"before must be between 0 and {INT32_MAX}", field="before")
        if user_id is None and cid is None:
            raise ValidationError("give user_id or conversation_id", field="user_id")
        user = None if user_id is None else _user_id(user_id)
        query = _HISTORY[user is not None, before is not None]
        conn = self.conn
        values = {"cid": cid, "user": user, "aid": aid, "before": before, "limit": limit}
        rows = prepared(query, conn.dialect).rows(conn, values)
        items = decoder(Message, messages, conn.dialect).all(rows)
        items.reverse()
        return items

    @operation("read", single=True, bounded=True)
    def list(
        self,
        conversation_id: IdLike,
        *,
        limit: int = 50,
        before: int | None = None,
        after: int | None = None,
    ) -> Page[Message]:
        """A page of history, oldest first within the page.

        With neither cursor: the newest ``limit`` messages. ``before=seq``: the ``limit`` messages
        just older than ``seq``; ``after=seq``: the ``limit`` messages just newer. ``next_cursor``
        is the sequence number to pass as the same argument for the following page, or ``None``.
        """
        if before is not None and after is not None:
            raise ValidationError("give before or after, not both", field="before")
        for field, seq in (("before", before), ("after", after)):
            if seq is not None and not 0 <= seq <= INT32_MAX:
                raise ValidationError(f"{field} must be between 0 and {INT32_MAX}", field=field)
        return self._page(to_uuid(conversation_id, "conversation_id"), limit, before, after)

    def _page(
        self, cid: uuid.UUID, limit: int, before: int | None, after: int | None
    ) -> Page[Message]:
        check_limit(limit, self.settings.max_page_size)
        query = _PAGES["after" if after is not None else "before" if before is not None else ""]
        conn = self.conn
        seq = after if after is not None else before
        rows = prepared(query, conn.dialect).rows(
            conn, {"cid": cid, "seq": seq, "limit": limit + 1}
        )
        more = len(rows) > limit
        items = decoder(Message, messages, conn.dialect).all(rows[:limit])
        if after is None:
            items.reverse()
            cursor = str(items[0].seq) if more else None
        else:
            cursor = str(items[-1].seq) if more else None
        return Page(items=items, next_cursor=cursor)

    @operation("write")
    def update(self, message_id: IdLike, data: MessageUpdate | Mapping[str, Any]) -> Message:
        """Change a stored message: finalise a streamed reply, set token counts, fix content.

        Token counts that change move the conversation's and the agent's totals by as much.
        """
        mid = self._key(message_id)
        changes = changes_of(as_input(MessageUpdate, data), messages)
        self._check(
            changes.get("content"),
            changes.get("thinking"),
            changes.get("metadata"),
            changes.get("tool_calls"),
        )
        if not changes.keys() & set(TOKENS):
            return self._update_row(mid, changed(changes), given=message_id)
        before = self.conn.execute(
            select(*(messages.c[name] for name in TOKENS)).where(messages.c.id == mid)
        ).first()
        updated = self._update_row(mid, changed(changes), given=message_id)
        assert before is not None  # the update found the row
        add_tokens(
            self.conn,
            updated.conversation_id,
            {
                name: (getattr(updated, name) or 0) - (old or 0)
                for name, old in zip(TOKENS, before, strict=True)
            },
        )
        return updated

    @operation("write")
    def delete(self, message_id: IdLike) -> bool:
        """Delete one message (its conversation's count drops; sequence numbers are not reused)."""
        mid = self._key(message_id)
        conn = self.conn
        gone = conn.execute(
            delete(messages)
            .where(messages.c.id == mid)
            .returning(messages.c.conversation_id, *(messages.c[name] for name in TOKENS))
        ).first()
        if gone is None:
            return False
        cid, *tokens = gone
        conn.execute(
            update(conversations)
            .where(conversations.c.id == cid)
            .values(
                changed(
                    {
                        "message_count": conversations.c.message_count - 1,
                        **{
                            name: conversations.c[name] - (n or 0)
                            for name, n in zip(TOKENS, tokens, strict=True)
                        },
                    }
                )
            )
        )
        return True

    @operation("read", single=True)
    def find_by_platform_id(
        self, message_id: str | int, *, chat_id: str | int | None = None
    ) -> Message | None:
        """The message a chat platform knows by ``message_id`` (reply threading).

        Platform ids are unique per chat, so pass ``chat_id`` where several chats share a store.

        Raises:
            ValidationError: ``message_id`` or ``chat_id`` is not a platform id (text or an
                integer).
        """
        wanted = platform_id(message_id, "message_id")
        query = select(messages).where(messages.c.message_id == wanted)
        if chat_id is not None:
            query = query.join(
                conversations, conversations.c.id == messages.c.conversation_id
            ).where(conversations.c.chat_id == platform_id(chat_id, "chat_id"))
        conn = self.conn
        row = conn.execute(query.order_by(messages.c.created_at.desc()).limit(1)).first()
        return None if row is None else load(Message, row)

    @operation("read", single=True)
    def count(self, conversation_id: IdLike | None = None) -> int:
        query = select(func.count()).select_from(messages)
        if conversation_id is not None:
            query = query.where(
                messages.c.conversation_id == to_uuid(conversation_id, "conversation_id")
            )
        conn = self.conn
        return int(conn.scalar(query) or 0)

    def _check(
        self, content: str | None, thinking: str | None, metadata: Any, calls: Any
    ) -> tuple[str | None, str | None]:
        """Refuse what cannot be stored; the JSON texts of ``metadata`` and ``calls``."""
        settings = self.settings
        check_text_size(content, settings.max_content_bytes, "content")
        check_text_size(thinking, settings.max_content_bytes, "thinking")
        return (
            check_json(metadata, settings.max_metadata_bytes, "metadata"),
            check_json(calls, settings.max_content_bytes, "tool_calls"),
        )


def _user_id(value: object) -> str:
    try:
        return _USER_ID.validate_python(value, strict=True)
    except PydanticValidationError as exc:
        raise ValidationError(f"user_id: {reason(exc.errors()[0])}", field="user_id") from None


_FIELDS = tuple(Message.__pydantic_fields__)
_new = object.__new__
_set = object.__setattr__


def _written(values: dict[str, Any], calls: list[ToolCallRecord] | None, seq: int) -> Message:
    """The appended message as ``Message.model_validate`` builds it from the values written,
    without validating them again: each comes from a validated ``MessageCreate`` (its JSON
    checked by the store besides) or was made here (ids, times, the sequence number), so
    validation would only copy them. Equal to the validated model field for field (the tests
    compare the two), with containers of its own as validation gives it: the metadata a new
    dict, the tool calls a new list of the same records."""
    fields = {**values, "seq": seq, "tool_calls": None if calls is None else list(calls)}
    fields["metadata"] = dict(values["metadata"])
    message = _new(Message)
    _set(message, "__dict__", {name: fields[name] for name in _FIELDS})
    _set(message, "__pydantic_fields_set__", set(_FIELDS))
    _set(message, "__pydantic_extra__", None)
    _set(message, "__pydantic_private__", None)
    return message


def _stored_calls(calls: list[ToolCallRecord] | None) -> list[dict[str, Any]] | None:
    """Tool-call records as the JSON column keeps them (each with the keys it was given)."""
    return None if calls is None else [call.model_dump() for call in calls]


def _pg_statement(values: dict[str, Any]) -> Insert | Select[Any]:
    """The one PostgreSQL statement that appends a message of these values."""
    answers = _answers(values)
    if values["client_id"] is None:
        return _PG_APPEND_ANSWER if answers else _PG_APPEND
    return _PG_APPEND_NEW_CLIENT_ANSWER if answers else _PG_APPEND_NEW_CLIENT


def _seq(cursor: Any) -> int | None:
    """The sequence number a PostgreSQL append returned; ``None`` when it stored nothing."""
    row = cursor.fetchone()
    return None if row is None else int(row[0])


def _answers(values: dict[str, Any]) -> bool:
    """Whether the message may answer a question: a user's reply to a platform message."""
    return values["role"] == Role.USER and values["reply_to_message_id"] is not None


def _client_id_is(cid: uuid.UUID, client_id: str) -> Any:
    return and_(messages.c.conversation_id == cid, messages.c.client_id == client_id)


def _agent_use(now: Any) -> dict[str, Any]:
    # usage, not a change of the agent's configuration: not changed(), so updated_at stays
    return {
        "message_count": agents.c.message_count + 1,
        "last_used_at": now,
        **_tokens_added(agents),
    }


def _conversation_bump(now: Any, touched: Any) -> dict[str, Any]:
    return changed(
        {
            "message_count": conversations.c.message_count + 1,
            "last_sequence": conversations.c.last_sequence + 1,
            "last_message_at": now,
            **_tokens_added(conversations),
        },
        at=touched,
    )


def _tokens_added(table: Table) -> dict[str, Any]:
    """The appended message's tokens added to ``table``'s totals (none given: nothing added)."""
    return {name: table.c[name] + func.coalesce(_param(name), 0) for name in TOKENS}


def add_tokens(conn: Connection, cid: uuid.UUID, added: dict[str, int]) -> None:
    """Add token counts (``added``, possibly negative) to a conversation's totals and to its
    agent's: the one place besides the append where token totals move."""
    if not any(added.values()):
        return
    agent_id = conn.execute(
        update(conversations)
        .where(conversations.c.id == cid)
        .values({name: conversations.c[name] + added[name] for name in TOKENS})
        .returning(conversations.c.agent_id)
    ).scalar()
    if agent_id is not None:
        conn.execute(
            update(agents)
            .where(agents.c.id == agent_id)
            .values({name: agents.c[name] + added[name] for name in TOKENS})
        )


# The append's statements, built once (SQLAlchemy then reuses their compiled form).


def _param(name: str) -> Any:
    return bindparam(f"p_{name}", type_=messages.c[name].type)


def _params(values: dict[str, Any]) -> dict[str, Any]:
    return {f"p_{key}": value for key, value in values.items()}


_NOW = _param("created_at")
_TOUCHED = bindparam("p_touched_at", type_=conversations.c.updated_at.type)
"""The conversation's new ``updated_at``: the append's time unless the caller gives one."""
_BUMP = (
    update(conversations)
    .where(conversations.c.id == _param("conversation_id"))
    .values(_conversation_bump(_NOW, _TOUCHED))
    .returning(conversations.c.last_sequence, conversations.c.agent_id)
)
_BUMP_NEW_CLIENT = _BUMP.where(
    ~exists().where(
        messages.c.conversation_id == _param("conversation_id"),
        messages.c.client_id == _param("client_id"),
    )
)
_AGENT_USE = (
    update(agents)
    .where(agents.c.id == bindparam("p_agent_id", type_=agents.c.id.type))
    .values(_agent_use(_NOW))
)
_INSERT = insert(messages).values({name: _param(name) for name in [*_INSERTED, "seq"]})
"""SQLite's insert; its JSON columns take the text the append's check made (``_JSON_TEXT``)."""
_JSON_TEXT = ("p_metadata", "p_tool_calls")
_ANSWER = (
    update(agent_questions)
    .where(
        agent_questions.c.conversation_id == _param("conversation_id"),
        agent_questions.c.message_id == _param("reply_to_message_id"),
        agent_questions.c.answered_at.is_(None),
    )
    .values(answer=_param("content"), answered_at=_NOW)
)


def _pg_append(bump: Update, *, answer: bool = False) -> Insert:
    """PostgreSQL: bump the counters and insert at the new sequence number in one statement
    (``answer``: and answer the question the message replies to, if it was stored)."""
    bumped = bump.cte("bump")
    agent_use = (
        update(agents)
        .where(agents.c.id == bumped.c.agent_id)
        .values(_agent_use(_NOW))
        .cte("agent_use")
    )
    row = select(*(_param(name) for name in _INSERTED), bumped.c.last_sequence)
    statement = insert(messages).from_select([*_INSERTED, "seq"], row).add_cte(agent_use)
    if answer:
        stored = select(bumped.c.last_sequence).exists()
        statement = statement.add_cte(_ANSWER.where(stored).cte("answer"))
    return statement.returning(messages.c.seq)


def _pg_append_new_client(*, answer: bool = False) -> Select[Any]:
    """PostgreSQL, a message with a ``client_id``: one statement that cannot fail on a retry.

    The conversation's row is locked first (``FOR UPDATE``: a concurrent append of the same
    conversation, a retry of this message included, commits before this one reads the sequence
    number), then the message is inserted ``ON CONFLICT DO NOTHING`` on the ``(conversation_id,
    client_id)`` key, and the counters move only if it was: a retry stores nothing, bumps
    nothing and returns no row (the caller then reads the stored message). No unique violation
    is raised, so inside a larger unit of work the append needs no savepoint around it.
    """
    c = conversations.c
    locked = (
        select(c.last_sequence)
        .where(c.id == _param("conversation_id"))
        .with_for_update()
        .cte("locked")
    )
    row = select(*(_param(name) for name in _INSERTED), locked.c.last_sequence + 1)
    stored = (
        dialect_insert("postgresql", messages)
        .from_select([*_INSERTED, "seq"], row)
        .on_conflict_do_nothing(index_elements=[messages.c.conversation_id, messages.c.client_id])
        .returning(messages.c.seq)
        .cte("stored")
    )
    was_stored = select(stored.c.seq).exists()
    bumped = _BUMP.where(was_stored).cte("bump")
    agent_use = (
        update(agents)
        .where(agents.c.id == bumped.c.agent_id)
        .values(_agent_use(_NOW))
        .cte("agent_use")
    )
    statement = select(stored.c.seq).add_cte(bumped, agent_use)
    if answer:
        statement = statement.add_cte(_ANSWER.where(was_stored).cte("answer"))
    return statement


_PG_APPEND = _pg_append(_BUMP)
_PG_APPEND_NEW_CLIENT = _pg_append_new_client()
_PG_APPEND_ANSWER = _pg_append(_BUMP, answer=True)
_PG_APPEND_NEW_CLIENT_ANSWER = _pg_append_new_client(answer=True)


# The hot reads' statements, each compiled once per backend and run on the driver
# (db.prepared); their rows decoded by repositories.decode.


def _page_query(kind: str) -> Select[Any]:
    """A page of a conversation's messages: the newest (``""``), those just older than a
    sequence number (``"before"``) or just newer (``"after"``), one more than the page."""
    query = select(messages).where(messages.c.conversation_id == param("cid"))
    if kind == "after":
        query = query.where(messages.c.seq > param("seq")).order_by(messages.c.seq.asc())
    else:
        if kind == "before":
            query = query.where(messages.c.seq < param("seq"))
        query = query.order_by(messages.c.seq.desc())
    return query.limit(param("limit", Integer))


_PAGES = {kind: _page_query(kind) for kind in ("", "before", "after")}
_ALL = select(messages).where(messages.c.conversation_id == param("cid")).order_by(messages.c.seq)


def _history_query(by_user: bool, before: bool) -> Select[Any]:
    """An agent's history with a user (``by_user``) or in one conversation, newest first;
    ``before``: without the conversation's messages from a sequence number on."""
    query = select(messages).where(one_of(messages.c.status, FINISHED, name="finished"))
    if not by_user:
        query = query.where(messages.c.conversation_id == param("cid")).order_by(
            messages.c.seq.desc()
        )
    else:
        query = (
            query.join(conversations, conversations.c.id == messages.c.conversation_id)
            .where(
                conversations.c.user_id == param("user"),
                conversations.c.agent_id == param("aid"),
            )
            .order_by(
                conversations.c.updated_at.desc(),
                conversations.c.id.desc(),
                messages.c.seq.desc(),
            )
        )
    if before:
        query = query.where(
            ~and_(
                messages.c.conversation_id == param("cid"),
                messages.c.seq >= param("before"),
            )
        )
    return query.limit(param("limit", Integer))


_HISTORY = {(u, b): _history_query(u, b) for u in (False, True) for b in (False, True)}
