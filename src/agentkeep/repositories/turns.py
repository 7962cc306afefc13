"""SQL for chat turns that outlive the process running them.

A reply is stored as ``streaming`` when its turn starts and finalised when it ends. A process
that dies mid-turn cannot finalise it, so while a turn streams its process touches the reply's
``updated_at`` every heartbeat (:func:`touch_streaming`: one ``UPDATE`` for all of the process's
in-flight replies), and any instance may mark ``streaming`` replies whose ``updated_at`` is
older than a few heartbeats as ``error`` (:func:`fail_stale`). Both compare the application's
UTC clock, so instances must keep their clocks within a heartbeat of each other.

:func:`find_started` finds the conversation that a ``/streaming/start`` with a ``client_id``
created the first time, so a retried start does not create a second one.

Plain functions over a ``Connection`` (a unit of work the caller opens); no locks, no commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select, update

from agentkeep.db.tables import conversations, messages
from agentkeep.db.types import utcnow
from agentkeep.models.enums import MessageStatus, Role


def touch_streaming(conn: Connection, reply_ids: Collection[uuid.UUID]) -> int:
    """Mark these replies as still being written (those still ``streaming``); how many were."""
    if not reply_ids:
        return 0
    result = conn.execute(
        update(messages)
        .where(messages.c.id.in_(list(reply_ids)), messages.c.status == MessageStatus.STREAMING)
        .values(updated_at=utcnow())
    )
    return result.rowcount


def fail_stale(conn: Connection, *, before: datetime, metadata: dict[str, Any]) -> list[uuid.UUID]:
    """Mark ``streaming`` replies untouched since ``before`` as ``error``, ``metadata`` merged
    into theirs; the ids of those marked. Each is re-checked as it is updated, so a reply that
    its process touched meanwhile is left alone."""
    stale = and_(messages.c.status == MessageStatus.STREAMING, messages.c.updated_at < before)
    found = conn.execute(select(messages.c.id, messages.c["metadata"]).where(stale)).all()
    marked: list[uuid.UUID] = []
    now = utcnow()
    for reply_id, extra in found:
        result = conn.execute(
            update(messages)
            .where(messages.c.id == reply_id, stale)
            .values(
                {
                    "status": MessageStatus.ERROR,
                    "metadata": {**extra, **metadata},
                    "updated_at": now,
                }
            )
        )
        if result.rowcount:
            marked.append(reply_id)
    return marked


def find_started(
    conn: Connection, *, agent_id: uuid.UUID, user_id: str | None, client_id: str
) -> uuid.UUID | None:
    """The conversation with this agent and user whose user message has ``client_id``."""
    user = (
        conversations.c.user_id.is_(None) if user_id is None else conversations.c.user_id == user_id
    )
    query = (
        select(conversations.c.id)
        .join(messages, messages.c.conversation_id == conversations.c.id)
        .where(
            conversations.c.agent_id == agent_id,
            user,
            messages.c.client_id == client_id,
            messages.c.role == Role.USER,
        )
        .order_by(messages.c.created_at.desc())
        .limit(1)
    )
    found: uuid.UUID | None = conn.execute(query).scalar()
    return found
