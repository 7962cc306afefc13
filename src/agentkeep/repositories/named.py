"""What the configuration tables share: each row has a unique ``name`` besides its id.

Personas, modules, agents, tools and workflows are declared by name (a project file
declares them and is synced into the store at start), so each repository gets, from here: create,
get / find by id, find by name, update, delete, count, a keyset page ordered by name, and
``upsert_by_name``, which inserts or updates in one ``INSERT … ON CONFLICT (name) DO UPDATE``
statement and leaves a row that already matches its declaration untouched (``updated_at`` means
the configuration changed, not that the file was synced again).

Subclasses name their table, domain model, the id fields that must refer to existing rows, and
which columns are size-limited JSON documents or long text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    delete,
    func,
    insert,
    or_,
    select,
)

from agentkeep.db.types import new_id, utcnow
from agentkeep.errors import ConflictError
from agentkeep.models.common import (
    IdLike,
    Input,
    Model,
    Page,
    as_input,
    check_json,
    check_text_size,
)
from agentkeep.repositories.base import (
    ModeT,
    changes_of,
    dialect_insert,
    load,
    load_all,
    operation,
    require,
)
from agentkeep.repositories.keyed import IdRepository, changed
from agentkeep.repositories.keyset import in_order

ItemT = TypeVar("ItemT", bound=Model)
CreateT = TypeVar("CreateT", bound=Input)
UpdateT = TypeVar("UpdateT", bound=Input)


class NamedRepository(IdRepository[ModeT, ItemT], Generic[ModeT, ItemT, CreateT, UpdateT]):
    """SQL shared by the tables whose rows have a unique ``name`` (besides their id: get, find
    and the not-found error come from :class:`~agentkeep.repositories.keyed.IdRepository`)."""

    _create: type[Input]
    """What :meth:`create` and :meth:`upsert_by_name` take (or a dict of its fields)."""
    _update: type[Input]
    """What :meth:`update` takes (or a dict of its fields)."""
    _references: tuple[tuple[str, Table], ...] = ()
    """Id fields checked to exist before a write, so a bad one is ``NotFoundError(field)``."""
    _documents: tuple[str, ...] = ()
    """JSON columns: portable JSON, limited to ``settings.max_metadata_bytes``."""
    _texts: tuple[str, ...] = ()
    """Text columns limited to ``settings.max_content_bytes``."""

    @operation("write")
    def create(self, data: CreateT | Mapping[str, Any]) -> ItemT:
        """Store a new one.

        Raises:
            ConflictError: the name is taken (``field="name"``).
            NotFoundError: a referenced row (such as an agent's persona) does not exist.
            TooLargeError: a JSON document or text exceeds the configured limits.
        """
        values = as_input(self._create, data).model_dump()
        self._check(values)
        now = utcnow()
        row_values = {**values, "id": new_id(), "created_at": now, "updated_at": now}
        conn = self.conn
        self._require_references(conn, values)
        with self._name_is_free(values["name"]):
            statement = insert(self._table).values(row_values).returning(*self._table.c)
            row = conn.execute(statement).one()
        return self._changed(load(self._item, row), created=True)

    @contextmanager
    def _name_is_free(self, name: str) -> Iterator[None]:
        """Say which name is taken, in words a user reads (not the database's)."""
        try:
            yield
        except ConflictError as exc:
            if exc.field != "name":
                raise
            article = "an" if self._noun[0] in "aeiou" else "a"
            raise ConflictError(
                f"{article} {self._noun} named {json.dumps(name, ensure_ascii=False)} already "
                "exists",
                field="name",
            ) from exc

    @operation("read", single=True, bounded=True)
    def find_by_name(self, name: str) -> ItemT | None:
        """The one with this name, or ``None``."""
        if "\x00" in name:  # cannot be stored, so cannot be found (and PostgreSQL rejects it)
            return None
        return self._select_one(self._table.c.name == name)

    def _select_one(self, condition: ColumnElement[bool]) -> ItemT | None:
        conn = self.conn
        row = conn.execute(select(self._table).where(condition)).first()
        return None if row is None else load(self._item, row)

    @operation("write")
    def update(self, item_id: IdLike, data: UpdateT | Mapping[str, Any]) -> ItemT:
        """Change the fields set in ``data``; the others stay as they are.

        Raises:
            NotFoundError: there is no such row, or a referenced one does not exist.
            ConflictError: the new name is taken (``field="name"``).
            ValidationError: a required field was set to ``None``.
        """
        key = self._key(item_id)
        changes = changes_of(as_input(self._update, data), self._table)
        self._check(changes)
        if not changes:
            return self._get(item_id)
        self._require_references(self.conn, changes)
        with self._name_is_free(changes.get("name", "")):
            return self._changed(self._update_row(key, changed(changes), given=item_id))

    @operation("write")
    def upsert_by_name(self, data: CreateT | Mapping[str, Any]) -> ItemT:
        """Make the stored one named ``data.name`` match ``data``, creating it if needed.

        ``data`` is a complete declaration: every field it has is written (a field left out
        takes its default). The id, ``created_at`` and usage statistics of an existing row are
        kept, and a row that already matches is not written at all.
        """
        values = as_input(self._create, data).model_dump()
        self._check(values)
        table = self._table
        now = utcnow()
        statement = dialect_insert(self.dialect, table).values(
            {**values, "id": new_id(), "created_at": now, "updated_at": now}
        )
        declared = [field for field in values if field != "name"]
        proposed = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.name],
            set_=changed({field: proposed[field] for field in declared}, at=now),
            where=or_(*(table.c[field].is_distinct_from(proposed[field]) for field in declared)),
        )
        # a transaction: when nothing changed, the row read back is the one the upsert matched
        # (PostgreSQL's ON CONFLICT locks it, even when the WHERE skips it, until the commit)
        conn = self.conn
        self._require_references(conn, values)
        row = conn.execute(statement.returning(*table.c)).first()
        if row is None:  # stored exactly as declared: nothing to change
            row = conn.execute(select(table).where(table.c.name == values["name"])).one()
            return load(self._item, row)
        return self._changed(load(self._item, row))

    @operation("write")  # with the change log's entry: a transaction
    def delete(self, item_id: IdLike) -> bool:
        """Delete it; ``False`` if there was nothing to delete."""
        key = self._key(item_id)
        result = self.conn.execute(delete(self._table).where(self._table.c.id == key))
        if result.rowcount == 0:
            return False
        self.uow.changed(self._noun, key)
        return True

    @operation("read", single=True)
    def count(self) -> int:
        """How many are stored."""
        conn = self.conn
        return int(conn.scalar(select(func.count()).select_from(self._table)) or 0)

    def _page(
        self, limit: int, cursor: str | None, conditions: list[ColumnElement[bool]]
    ) -> Page[ItemT]:
        """One page ordered by name; the cursor is the last name of the previous page."""
        return in_order(
            self.conn,
            select(self._table).where(*conditions),
            [self._table.c.name],
            lambda rows: load_all(self._item, rows),
            limit=limit,
            cursor=cursor,
            max_page_size=self.settings.max_page_size,
        )

    def _changed(self, item: ItemT, *, created: bool = False) -> ItemT:
        """Record the change for the caches that keep a copy (``db.changes``); return ``item``."""
        self.uow.changed(self._noun, item.id, item, created=created)  # type: ignore[attr-defined]
        return item

    def _require_references(self, conn: Connection, values: Mapping[str, Any]) -> None:
        for field, table in self._references:
            if values.get(field) is not None:
                require(conn, table, values[field], field)

    def _check(self, values: Mapping[str, Any]) -> None:
        settings = self.settings
        for field in self._documents:
            check_json(values.get(field), settings.max_metadata_bytes, field)
        for field in self._texts:
            check_text_size(values.get(field), settings.max_content_bytes, field)
