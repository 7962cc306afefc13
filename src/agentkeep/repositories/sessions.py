"""User sessions of a chat bot: one row per (user, chat) with the user's last activity, the
conversation they were last in, their time zone and free-form metadata.

:meth:`UserSessionRepository.touch` is an ``INSERT … ON CONFLICT (user_id, chat_id) DO UPDATE``:
one statement whether or not the session exists. Deleting the last conversation leaves the
session with ``last_conversation_id = None`` (the foreign key is ``ON DELETE SET NULL``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert, Row, select

from agentkeep.db.tables import conversations
from agentkeep.db.tables import user_sessions as sessions
from agentkeep.db.types import new_id, utcnow
from agentkeep.errors import NotFoundError
from agentkeep.models.common import IdLike, JSONObject, check_json, validate_input
from agentkeep.models.conversation_flow import UserSession, UserSessionTouch
from agentkeep.repositories.base import ModeT, Repository, dialect_insert, load, operation, require

_KEPT_UNLESS_GIVEN = ("last_conversation_id", "timezone", "metadata")


class UserSessionRepository(Repository[ModeT]):
    """SQL for the ``user_sessions`` table."""

    @operation("write")
    def touch(
        self,
        user_id: str,
        chat_id: str,
        *,
        last_conversation_id: IdLike | None = None,
        timezone: str | None = None,
        metadata: JSONObject | None = None,
    ) -> UserSession:
        """Record activity now, creating the session if it is the first.

        ``last_conversation_id``, ``timezone`` and ``metadata`` replace the stored values when
        given and keep them when ``None`` (a new session starts in ``UTC``).

        Raises:
            NotFoundError: ``last_conversation_id`` names no conversation.
            ValidationError: An empty or NUL-containing id, or an unknown time zone.
        """
        data = validate_input(
            UserSessionTouch,
            {
                "user_id": user_id,
                "chat_id": chat_id,
                "last_conversation_id": last_conversation_id,
                "timezone": timezone,
                "metadata": metadata,
            },
        )
        check_json(data.metadata, self.settings.max_metadata_bytes, "metadata")
        statement = _upsert(self.dialect, data)
        conn = self.conn
        if data.last_conversation_id is not None:
            require(conn, conversations, data.last_conversation_id, "last_conversation_id")
        row = conn.execute(statement).one()
        return _session(row)

    @operation("read", single=True)
    def get(self, user_id: str, chat_id: str) -> UserSession:
        """The session of ``user_id`` in ``chat_id``; ``NotFoundError`` if there is none."""
        found = self._find(user_id, chat_id)
        if found is None:
            raise NotFoundError(
                f"no session for user {user_id!r} in chat {chat_id!r}", field="user_id"
            )
        return found

    @operation("read", single=True)
    def find(self, user_id: str, chat_id: str) -> UserSession | None:
        """The session of ``user_id`` in ``chat_id``, or ``None``."""
        return self._find(user_id, chat_id)

    def _find(self, user_id: str, chat_id: str) -> UserSession | None:
        if "\x00" in user_id or "\x00" in chat_id:  # cannot be stored, so cannot be found
            return None
        query = select(sessions).where(sessions.c.user_id == user_id, sessions.c.chat_id == chat_id)
        conn = self.conn
        row = conn.execute(query).first()
        return None if row is None else _session(row)


def _upsert(dialect: str, data: UserSessionTouch) -> Insert:
    now = utcnow()
    statement = dialect_insert(dialect, sessions).values(
        id=new_id(),
        user_id=data.user_id,
        chat_id=data.chat_id,
        last_conversation_id=data.last_conversation_id,
        timezone=data.timezone or "UTC",
        metadata=data.metadata or {},
        last_activity_at=now,
        created_at=now,
    )
    changes: dict[str, Any] = {"last_activity_at": now}
    for field in _KEPT_UNLESS_GIVEN:
        if getattr(data, field) is not None:
            changes[field] = statement.excluded[field]
    return statement.on_conflict_do_update(
        index_elements=[sessions.c.user_id, sessions.c.chat_id], set_=changes
    ).returning(*sessions.c)


def _session(row: Row[Any]) -> UserSession:
    return load(UserSession, row)
