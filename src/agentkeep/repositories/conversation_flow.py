"""Chat-bot conversation workflows across domains: store what the user and the bot say, record
where a conversation stands, resume it with its full context, find it from a reply, complete it,
list a user's active ones, and purge old ones.

Each is a plain function over a unit of work; the store and every unit offer them as operations
(``db.find_conversation_by_reply(...)``, see ``repositories.facade``).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Delete, delete, func, select, update

from agentkeep.db.tables import conversations, messages
from agentkeep.db.types import utcnow
from agentkeep.errors import ValidationError
from agentkeep.models.common import (
    IdLike,
    JSONObject,
    platform_id,
    to_enum,
    to_uuid,
    validate_input,
)
from agentkeep.models.conversation import (
    Conversation,
    ConversationUpdate,
    Message,
    MessageCreate,
)
from agentkeep.models.conversation_flow import (
    AgentQuestion,
    ConversationContext,
    ConversationData,
)
from agentkeep.models.enums import ConversationStatus, DataType, Role

if TYPE_CHECKING:
    from agentkeep.repositories.facade import Unit


def get_conversation_context(
    uow: Unit,
    conversation_id: IdLike,
    *,
    history_limit: int = 50,
    history_after: int | None = None,
) -> ConversationContext:
    """Everything an agent needs to resume a conversation, read from one snapshot.

    Args:
        conversation_id: The conversation.
        history_limit: How many messages and questions to include.
        history_after: Without it, the latest ``history_limit`` messages; with it, the
            ``history_limit`` messages after this sequence number (``0``: from the first), so a
            caller pages through the whole thread.

    Raises:
        NotFoundError: There is no such conversation.
    """
    cid = to_uuid(conversation_id, "conversation_id")
    conversation = uow.conversations.get(cid)
    latest = uow.conversation_data.latest_of_each(cid)
    if history_after is None:
        history = uow.messages.last(cid, history_limit)
    else:
        history = uow.messages.list(cid, limit=history_limit, after=history_after).items
    asked = uow.questions.list(cid, limit=history_limit)
    last_bot = _last_bot_message_id(uow.connection, cid)
    questions = list(reversed(asked.items))
    partial, complete, missing = (
        latest.get(kind) for kind in (DataType.PARTIAL, DataType.COMPLETE, DataType.MISSING_FIELDS)
    )
    return ConversationContext.model_validate(
        {
            **dict(conversation),
            "partial_data": None if partial is None else partial.content,
            "complete_data": None if complete is None else complete.content,
            "missing_fields": _missing_fields(
                None if missing is None else missing.content,
                None if partial is None else partial.content,
                questions,
            ),
            "message_history": history,
            "agent_questions": questions,
            "last_bot_message_id": last_bot,
        }
    )


def _last_bot_message_id(conn: Connection, cid: uuid.UUID) -> str | None:
    query = (
        select(messages.c.message_id)
        .where(
            messages.c.conversation_id == cid,
            messages.c.role == Role.ASSISTANT,
            messages.c.message_id.is_not(None),
        )
        .order_by(messages.c.seq.desc())
        .limit(1)
    )
    found: str | None = conn.execute(query).scalar()
    return found


def find_conversation_by_reply(
    uow: Unit, reply_to_message_id: str | int, chat_id: str | int | None = None
) -> uuid.UUID | None:
    """The conversation holding the message a chat user replied to, or ``None``.

    Args:
        reply_to_message_id: The chat platform's id of the message replied to.
        chat_id: The chat; pass it where platform message ids are unique only per chat.
    """
    reply_to = platform_id(reply_to_message_id, "reply_to_message_id")
    chat = None if chat_id is None else platform_id(chat_id, "chat_id")
    found = uow.messages.find_by_platform_id(reply_to, chat_id=chat)
    return None if found is None else found.conversation_id


def mark_conversation_complete(
    uow: Unit,
    conversation_id: IdLike,
    external_ref: str | int,
    complete_data: JSONObject | None = None,
) -> Conversation:
    """Complete a conversation: status ``completed``, the external reference (such as the
    spreadsheet row the finished record went to) and, when given, the ``complete`` data
    snapshot, together.

    Raises:
        NotFoundError: There is no such conversation.
        ConflictError: It is already completed (field ``status``).
        ValidationError: ``complete_data`` is not a storable JSON object.
    """
    cid = to_uuid(conversation_id, "conversation_id")
    changes = validate_input(
        ConversationUpdate,
        {"status": ConversationStatus.COMPLETED, "external_ref": str(external_ref)},
    )
    open_ = (ConversationStatus.ACTIVE, ConversationStatus.ABANDONED)
    conversation = uow.conversations.update(cid, changes, from_status=open_)
    if complete_data is not None:
        _snapshot(uow, cid, DataType.COMPLETE, complete_data, "complete_data")
    touch_session(uow, conversation)
    return conversation


def store_final_operation_data(
    uow: Unit, conversation_id: IdLike, complete_data: JSONObject
) -> ConversationData:
    """Store the ``complete`` data snapshot of a conversation (after it was written elsewhere).

    Raises:
        NotFoundError: There is no such conversation.
        ValidationError: ``complete_data`` is not a storable JSON object.
    """
    return _snapshot(uow, conversation_id, DataType.COMPLETE, complete_data, "complete_data")


def resume_conversation(
    uow: Unit,
    conversation_id: IdLike,
    *,
    history_limit: int = 50,
    history_after: int | None = None,
) -> ConversationContext:
    """Make an abandoned conversation active again (an active one stays so) and return its
    context (``history_limit``, ``history_after``: as for ``get_conversation_context``).

    Raises:
        NotFoundError: There is no such conversation.
        ConflictError: It is completed (field ``status``): a completed conversation is final.
    """
    cid = to_uuid(conversation_id, "conversation_id")
    active = validate_input(ConversationUpdate, {"status": ConversationStatus.ACTIVE})
    current = uow.conversations.get(cid)
    if current.status is not ConversationStatus.ACTIVE:
        current = uow.conversations.update(cid, active)
    touch_session(uow, current)
    return get_conversation_context(
        uow, cid, history_limit=history_limit, history_after=history_after
    )


MAX_AGE_SECONDS = 100 * 365 * 24 * 3600
"""The longest age a clean-up may name (a century): longer is surely a mistake, and the
oldest cutoff a date can hold is not far beyond."""


def cutoff(now: datetime, age: timedelta, field: str) -> datetime:
    """``now - age``, for an ``age`` from 0 to :data:`MAX_AGE_SECONDS`.

    Raises:
        ValidationError: naming ``field``, for an age that is not a ``timedelta``, a negative
            one or a longer one (whose cutoff a date may not even hold).
    """
    if not isinstance(age, timedelta):  # 3600 could mean seconds or days: say which to give
        raise ValidationError(
            f"{field} must be a timedelta, such as timedelta(days=30), not {type(age).__name__}",
            field=field,
        )
    if age < timedelta(0):
        raise ValidationError(f"{field} must not be negative", field=field)
    if age > timedelta(seconds=MAX_AGE_SECONDS):
        raise ValidationError(
            f"{field} must be at most {MAX_AGE_SECONDS} seconds (a century)", field=field
        )
    return now - age


def abandon_idle_conversations(uow: Unit, idle: timedelta) -> list[uuid.UUID]:
    """Mark ``abandoned`` every active conversation not updated for ``idle``; their ids.

    One conditional ``UPDATE``: a conversation that gets a message meanwhile is not touched.

    Raises:
        ValidationError: ``idle`` is negative or longer than :data:`MAX_AGE_SECONDS`.
    """
    now = utcnow()
    since = cutoff(now, idle, "idle_seconds")
    statement = (
        update(conversations)
        .where(
            conversations.c.status == ConversationStatus.ACTIVE,
            conversations.c.updated_at < since,
        )
        .values(status=ConversationStatus.ABANDONED, updated_at=now)
        .returning(conversations.c.id)
    )
    abandoned = list(uow.connection.execute(statement).scalars())
    for cid in abandoned:
        uow.changed("conversation", cid)
    return abandoned


def count_purgeable(uow: Unit, status: ConversationStatus | str, older_than: timedelta) -> int:
    """How many conversations a purge with these arguments would delete now (a dry run)."""
    query = select(func.count()).select_from(conversations).where(*_stale(status, older_than))
    return int(uow.connection.scalar(query) or 0)


def store_user_response(
    uow: Unit,
    conversation_id: IdLike,
    content: str,
    message_id: str | int | None = None,
    reply_to: str | int | None = None,
) -> Message:
    """Store what the chat user said, with its platform id and the bot message it replies to
    (a reply to a bot message that asked a question answers that question, in the same write).
    """
    data = validate_input(
        MessageCreate,
        {
            "role": Role.USER,
            "content": content,
            "message_id": message_id,
            "reply_to_message_id": reply_to,
        },
    )
    return uow.messages.append(to_uuid(conversation_id, "conversation_id"), data)


def store_bot_message(
    uow: Unit, conversation_id: IdLike, content: str, message_id: str | int | None = None
) -> Message:
    """Store what the bot sent, with the platform's id for it (so a reply finds the
    conversation)."""
    data = validate_input(
        MessageCreate, {"role": Role.ASSISTANT, "content": content, "message_id": message_id}
    )
    return uow.messages.append(to_uuid(conversation_id, "conversation_id"), data)


def update_conversation_state(
    uow: Unit,
    /,
    conversation_id: IdLike,
    *,
    partial_data: JSONObject | None = None,
    missing_fields: list[str] | None = None,
    question: str | None = None,
    agent_name: str = "agent",
    question_message_id: str | int | None = None,
    state: JSONObject | None = None,
    **changes: Any,
) -> Conversation:
    """Record where a conversation stands, all in one unit of work, and return it.

    Args:
        partial_data: The data gathered so far (a ``partial`` snapshot).
        missing_fields: What is still missing (a ``missing_fields`` snapshot; with
            ``question``, also what the question is about).
        question: A question ``agent_name`` asks the user (``question_message_id``: the
            platform id of the bot message carrying it, so the user's reply answers it).
        state: Conversation state values, by key.
        changes: Conversation fields to change, as ``ConversationUpdate`` takes them
            (``status``, ``title``, ``agent_state``, ``metadata``, …).

    Raises:
        NotFoundError: There is no such conversation.
        ValidationError: A value or field that is not valid.
    """
    cid = to_uuid(conversation_id, "conversation_id")
    conversation = uow.conversations.get(cid)
    if partial_data is not None:
        _snapshot(uow, cid, DataType.PARTIAL, partial_data, "partial_data")
    if missing_fields is not None:
        _snapshot(uow, cid, DataType.MISSING_FIELDS, missing_fields, "missing_fields")
    if question is not None:
        uow.questions.ask(
            cid,
            agent_name,
            question,
            missing_fields=missing_fields,
            message_id=question_message_id,
        )
    for key, value in (state or {}).items():
        uow.states.put(cid, key, value)
    if changes:
        conversation = uow.conversations.update(cid, validate_input(ConversationUpdate, changes))
    return conversation


def _snapshot(
    uow: Unit, conversation_id: IdLike, data_type: DataType, content: Any, field: str
) -> ConversationData:
    """Add a data snapshot given as the argument ``field``: an error in it names ``field``
    (``complete_data.amount``), not the snapshot's own ``content``."""
    try:
        return uow.conversation_data.add(conversation_id, data_type, content)
    except ValidationError as exc:
        named = exc.field or ""
        if named != "content" and not named.startswith("content."):
            raise
        renamed = field + named.removeprefix("content")
        message = exc.message.replace(named, renamed, 1) if named in exc.message else exc.message
        raise type(exc)(message, field=renamed) from exc


def touch_session(uow: Unit, conversation: Conversation) -> None:
    """Record activity now in the session of the conversation's user and chat (when it has
    both), with this conversation as the last one."""
    if conversation.user_id is not None and conversation.chat_id is not None:
        uow.user_sessions.touch(
            conversation.user_id, conversation.chat_id, last_conversation_id=conversation.id
        )


def get_user_active_conversations(
    uow: Unit, user_id: str | int, chat_id: str | int
) -> list[Conversation]:
    """Every active conversation of ``user_id`` in ``chat_id``, most recently active first."""
    user_id, chat_id = str(user_id), str(chat_id)
    found: list[Conversation] = []
    cursor: str | None = None
    while True:
        page = uow.conversations.list(
            user_id=user_id,
            chat_id=chat_id,
            status=ConversationStatus.ACTIVE,
            limit=uow.settings.max_page_size,
            cursor=cursor,
        )
        found.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return found


def purge_statement(
    status: ConversationStatus | str, older_than: timedelta, batch_size: int
) -> Delete:
    """The DELETE of one batch of a purge (see ``DatabaseManager.purge_conversations``)."""
    if batch_size < 1:
        raise ValidationError("batch_size must be at least 1", field="batch_size")
    stale = _stale(status, older_than)
    batch = select(conversations.c.id).where(*stale).order_by(conversations.c.updated_at)
    # the conditions again on the outer DELETE: a conversation revived meanwhile is kept
    return delete(conversations).where(
        conversations.c.id.in_(batch.limit(batch_size).scalar_subquery()), *stale
    )


def _stale(status: ConversationStatus | str, older_than: timedelta) -> tuple[Any, Any]:
    """The conditions of a purge: in ``status``, not updated for ``older_than``."""
    chosen = to_enum(ConversationStatus, status, "status")
    return conversations.c.status == chosen, conversations.c.updated_at < cutoff(
        utcnow(), older_than, "older_than"
    )


def purge_batch(conn: Connection, statement: Delete) -> int:
    """Delete one batch; how many conversations went."""
    return int(conn.execute(statement).rowcount)


def _missing_fields(latest: Any, partial: Any, questions: list[AgentQuestion]) -> list[str]:
    """What is still missing after the latest partial data: the fields the latest
    ``missing_fields`` snapshot names (failing that, the latest question asked for) that the
    latest ``partial`` snapshot does not hold."""
    if isinstance(latest, list):
        wanted = [str(name) for name in latest]
    elif questions:
        wanted = list(questions[-1].missing_fields)
    else:
        wanted = []
    have = partial if isinstance(partial, dict) else {}
    return [name for name in wanted if have.get(name) is None]
