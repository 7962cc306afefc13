"""What every table keyed by an id shares: read one row by id, update one by id, say it is missing.

A subclass names its table (``_table``), its domain model (``_item``) and what one row is called
(``_noun``); ``_id_field`` (``{noun}_id`` unless overridden) names the id in errors, so a missing or
malformed id is ``NotFoundError`` / ``ValidationError`` with ``field`` set to it.

``updated_at`` says when a row last really changed. It has no column default for updates: a
change that counts writes it through :func:`changed`, the one place it is set, and a counter (a
use, an access) leaves it alone simply by not calling it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Table, update

from agentkeep.db.types import utcnow
from agentkeep.errors import NotFoundError
from agentkeep.models.common import IdLike, Model, to_uuid
from agentkeep.repositories.base import ModeT, Repository, find_by_id, load, operation

ItemT = TypeVar("ItemT", bound=Model)


def changed(
    values: Mapping[str, Any], *, at: datetime | ColumnElement[Any] | None = None
) -> dict[str, Any]:
    """``values`` with ``updated_at`` set: what every real change of a row writes.

    ``at`` is the time (now unless given; a bound parameter in statements compiled once).
    """
    return {**values, "updated_at": utcnow() if at is None else at}


class IdRepository(Repository[ModeT], Generic[ModeT, ItemT]):
    """SQL shared by the tables whose rows are found by their id."""

    _table: Table
    _item: type[ItemT]
    _noun: str
    """What one row is called in messages."""

    @property
    def _id_field(self) -> str:
        """The name of the id in errors: ``{noun}_id`` unless a subclass says otherwise."""
        return f"{self._noun}_id"

    @operation("read", single=True, bounded=True)
    def get(self, item_id: IdLike) -> ItemT:
        """The one with this id; ``NotFoundError`` if there is none."""
        return self._get(item_id)

    @operation("read", single=True, bounded=True)
    def find(self, item_id: IdLike) -> ItemT | None:
        """The one with this id, or ``None``."""
        return self._find(self._key(item_id))

    def _key(self, item_id: IdLike) -> uuid.UUID:
        """The id as a UUID; ``ValidationError`` naming ``_id_field`` if it is not one."""
        return to_uuid(item_id, self._id_field)

    def _get(self, item_id: IdLike) -> ItemT:
        found = self._find(self._key(item_id))
        if found is None:
            raise self._not_found(item_id)
        return found

    def _find(self, key: uuid.UUID) -> ItemT | None:
        return find_by_id(self.conn, self._table, self._item, key)

    def _update_row(
        self, key: uuid.UUID, values: Mapping[str, Any], *, given: object = None
    ) -> ItemT:
        """Set ``values`` on the row with id ``key`` and return it as stored now.

        ``values`` are written as they are: pass them through :func:`changed` when the update is
        a change. ``given`` is the id as the caller passed it, for the error.

        Raises:
            NotFoundError: there is no such row.
        """
        table = self._table
        statement = update(table).where(table.c.id == key).values(dict(values))
        row = self.conn.execute(statement.returning(*table.c)).first()
        if row is None:
            raise self._not_found(key if given is None else given)
        return load(self._item, row)

    def _not_found(self, item_id: object) -> NotFoundError:
        return NotFoundError(f"{self._noun} {item_id} not found", field=self._id_field)
