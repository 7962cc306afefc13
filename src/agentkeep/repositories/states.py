"""Conversation state: one JSON value per (conversation, persona, module, key).

Persona and module are optional, and SQL treats NULLs as distinct, so a unique constraint on the
four columns would let ``(conversation, NULL, NULL, key)`` repeat. The repository therefore
stores a ``scope`` string made from both ids (``"<persona>/<module>"``, ``-`` for none) and the
table is unique on ``(conversation_id, scope, state_key)``; :meth:`put` is one
``INSERT … ON CONFLICT DO UPDATE`` on that key.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import JSON, ColumnElement, Insert, Row, bindparam, delete, select

from agentkeep.db.prepared import prepared
from agentkeep.db.tables import conversation_states as states
from agentkeep.db.tables import conversations, modules, personas
from agentkeep.db.types import new_id, utcnow
from agentkeep.errors import NotFoundError, ValidationError
from agentkeep.models.common import (
    IdLike,
    Name,
    Page,
    check_json,
    optional_uuid,
    reason,
    to_uuid,
)
from agentkeep.models.conversation_flow import ConversationState
from agentkeep.repositories.base import ModeT, Repository, dialect_insert, load, operation, require
from agentkeep.repositories.decode import decoder
from agentkeep.repositories.keyed import changed
from agentkeep.repositories.keyset import in_order

_KEY: TypeAdapter[str] = TypeAdapter(Name)


def scope_of(persona_id: uuid.UUID | None, module_id: uuid.UUID | None) -> str:
    """The ``scope`` column's value for a persona and a module, either of which may be absent."""
    return f"{persona_id or '-'}/{module_id or '-'}"


class ConversationStateRepository(Repository[ModeT]):
    """SQL for the ``conversation_states`` table."""

    @operation("write")
    def put(
        self,
        conversation_id: IdLike,
        key: str,
        value: Any,
        *,
        persona_id: IdLike | None = None,
        module_id: IdLike | None = None,
    ) -> ConversationState:
        """Set ``key`` to ``value`` (any JSON value), creating or replacing it in one statement
        (after checking that the conversation, persona and module exist, in one transaction).

        Raises:
            NotFoundError: The conversation, persona or module does not exist.
            ValidationError: A malformed id or key, or a value that is not storable JSON.
            TooLargeError: The value exceeds ``settings.max_metadata_bytes`` as JSON.
        """
        cid = to_uuid(conversation_id, "conversation_id")
        pid = optional_uuid(persona_id, "persona_id")
        mid = optional_uuid(module_id, "module_id")
        checked_key = state_key(key)
        check_json(value, self.settings.max_metadata_bytes, "state_value")
        conn = self.conn
        require(conn, conversations, cid, "conversation_id")
        if pid is not None:
            require(conn, personas, pid, "persona_id")
        if mid is not None:
            require(conn, modules, mid, "module_id")
        return self._upsert(cid, pid, mid, checked_key, value)

    @operation("write")
    def put_many(
        self,
        conversation_id: IdLike,
        values: Mapping[str, Any],
        *,
        conversation_checked: bool = False,
    ) -> list[ConversationState]:
        """Set each key of ``values`` as :meth:`put` does (the conversation's own state, no
        persona or module), in key order so that concurrent writers lock rows in one order;
        the conversation is checked once.

        Args:
            conversation_id: The conversation.
            values: The keys and their values.
            conversation_checked: The caller has found the conversation in this unit of work
                already (and, writing to it, holds its row): the check is left out. A
                conversation gone all the same is refused by the foreign key, as the same
                ``NotFoundError``.

        Raises:
            NotFoundError: The conversation does not exist.
            ValidationError: A malformed id or key, or a value that is not storable JSON.
            TooLargeError: A value exceeds ``settings.max_metadata_bytes`` as JSON.
        """
        cid = to_uuid(conversation_id, "conversation_id")
        checked = []
        for key in sorted(values):
            check_json(values[key], self.settings.max_metadata_bytes, "state_value")
            checked.append((state_key(key), values[key]))
        if checked and not conversation_checked:
            require(self.conn, conversations, cid, "conversation_id")
        try:
            return [self._upsert(cid, None, None, key, value) for key, value in checked]
        except NotFoundError as exc:  # no persona or module here: the conversation's key
            raise NotFoundError(f"conversation {cid} not found", field="conversation_id") from exc

    def _upsert(
        self,
        cid: uuid.UUID,
        pid: uuid.UUID | None,
        mid: uuid.UUID | None,
        state_key: str,
        value: Any,
    ) -> ConversationState:
        """One key's row written (its owners checked already): one prepared statement."""
        conn = self.conn
        now = utcnow()
        values = {
            "id": new_id(),
            "conversation_id": cid,
            "persona_id": pid,
            "module_id": mid,
            "scope": scope_of(pid, mid),
            "state_key": state_key,
            "state_value": JSON.NULL if value is None else value,  # JSON null, not SQL NULL
            "created_at": now,
            "updated_at": now,
        }
        upsert = prepared(_upsert_statement(self.dialect), conn.dialect)
        rows = upsert.rows(conn, {f"v_{name}": given for name, given in values.items()})
        return decoder(ConversationState, states, conn.dialect).all(rows)[0]

    @operation("read", single=True)
    def get(
        self,
        conversation_id: IdLike,
        key: str,
        *,
        persona_id: IdLike | None = None,
        module_id: IdLike | None = None,
    ) -> ConversationState:
        """The state stored under ``key``; ``NotFoundError`` if there is none (naming the
        scopes that do hold ``key``, if any: a persona's or a module's key is read with its
        ``persona_id`` / ``module_id``)."""
        found = self._find(conversation_id, key, persona_id, module_id)
        if found is None:
            raise self._missing(conversation_id, key)
        return found

    def _missing(self, conversation_id: IdLike, key: str) -> NotFoundError:
        query = select(states.c.persona_id, states.c.module_id).where(
            states.c.conversation_id == to_uuid(conversation_id, "conversation_id"),
            states.c.state_key == state_key(key),
        )
        elsewhere = [
            " and ".join(
                f"{name}={value}"
                for name, value in (("persona_id", persona), ("module_id", module))
                if value is not None
            )
            or "the conversation's own scope (no persona_id or module_id)"
            for persona, module in self.conn.execute(query.order_by(states.c.scope)).all()
        ]
        held = f"; it is held with {'; with '.join(elsewhere)}" if elsewhere else ""
        return NotFoundError(f"no state {key!r} in this scope{held}", field="state_key")

    @operation("read", single=True)
    def find(
        self,
        conversation_id: IdLike,
        key: str,
        *,
        persona_id: IdLike | None = None,
        module_id: IdLike | None = None,
    ) -> ConversationState | None:
        """The state stored under ``key``, or ``None``."""
        return self._find(conversation_id, key, persona_id, module_id)

    def _find(
        self, conversation_id: IdLike, key: str, persona_id: object, module_id: object
    ) -> ConversationState | None:
        where = _where(conversation_id, key, persona_id, module_id)
        conn = self.conn
        row = conn.execute(select(states).where(where)).first()
        return None if row is None else _state(row)

    @operation("write", single=True)
    def delete(
        self,
        conversation_id: IdLike,
        key: str,
        *,
        persona_id: IdLike | None = None,
        module_id: IdLike | None = None,
    ) -> bool:
        """Remove the state stored under ``key``; ``False`` if there was none."""
        where = _where(conversation_id, key, persona_id, module_id)
        conn = self.conn
        result = conn.execute(delete(states).where(where))
        return result.rowcount > 0

    @operation("read", single=True)
    def list(
        self,
        conversation_id: IdLike,
        *,
        persona_id: IdLike | None = None,
        module_id: IdLike | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[ConversationState]:
        """A conversation's states ordered by scope and key; only one persona's or module's when
        ``persona_id`` or ``module_id`` is given. A page of ``limit`` (all when ``None``); pass
        ``next_cursor`` back as ``cursor`` for the next one."""
        query = select(states).where(
            states.c.conversation_id == to_uuid(conversation_id, "conversation_id")
        )
        pid = optional_uuid(persona_id, "persona_id")
        if pid is not None:
            query = query.where(states.c.persona_id == pid)
        mid = optional_uuid(module_id, "module_id")
        if mid is not None:
            query = query.where(states.c.module_id == mid)
        return in_order(
            self.conn,
            query,
            [states.c.scope, states.c.state_key],
            lambda rows: [_state(row) for row in rows],
            limit=limit,
            cursor=cursor,
            max_page_size=self.settings.max_page_size,
        )


def _where(
    conversation_id: IdLike, key: str, persona_id: object, module_id: object
) -> ColumnElement[bool]:
    scope = scope_of(optional_uuid(persona_id, "persona_id"), optional_uuid(module_id, "module_id"))
    return (
        (states.c.conversation_id == to_uuid(conversation_id, "conversation_id"))
        & (states.c.scope == scope)
        & (states.c.state_key == state_key(key))
    )


def state_key(value: object) -> str:
    """``value`` as a state key, or :class:`ValidationError` (field ``state_key``)."""
    try:
        return _KEY.validate_python(value, strict=True)
    except PydanticValidationError as exc:
        raise ValidationError(f"state_key: {reason(exc.errors()[0])}", field="state_key") from None


@functools.cache
def _upsert_statement(dialect: str) -> Insert:
    """:meth:`ConversationStateRepository.put`'s statement, built once per backend: insert the
    key, or replace its value (and ``updated_at``) where it exists; the row, either way."""
    statement = dialect_insert(dialect, states).values(
        {column.name: bindparam(f"v_{column.name}", type_=column.type) for column in states.c}
    )
    return statement.on_conflict_do_update(
        index_elements=[states.c.conversation_id, states.c.scope, states.c.state_key],
        set_=changed(
            {"state_value": statement.excluded.state_value},
            at=bindparam("v_updated_at", type_=states.c.updated_at.type),
        ),
    ).returning(*states.c)


def _state(row: Row[Any]) -> ConversationState:
    return load(ConversationState, row)
