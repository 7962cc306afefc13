"""Operation templates: worked examples of an operation type (a sample input and the
structured output expected from it), unique by ``(operation_type, template_name)``, with a count
of how often each was used.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Row, and_, delete, or_, select

from agentkeep.db.tables import operation_templates as templates
from agentkeep.db.types import new_id, utcnow
from agentkeep.errors import ConflictError
from agentkeep.models.common import (
    IdLike,
    Page,
    as_input,
    check_json,
    check_limit,
    check_text_size,
    decode_cursor,
    encode_cursor,
)
from agentkeep.models.conversation_flow import (
    OperationTemplate,
    OperationTemplateCreate,
    OperationTemplateUpdate,
)
from agentkeep.repositories.base import ModeT, changes_of, dialect_insert, load, operation
from agentkeep.repositories.keyed import IdRepository, changed


class OperationTemplateRepository(IdRepository[ModeT, OperationTemplate]):
    """SQL for the ``operation_templates`` table."""

    _table = templates
    _item = OperationTemplate
    _noun = "operation template"

    @property
    def _id_field(self) -> str:
        return "template_id"

    @operation("write", single=True)
    def create(self, data: OperationTemplateCreate | Mapping[str, Any]) -> OperationTemplate:
        """Store a template.

        Raises:
            ConflictError: The operation type already has a template of this name.
            TooLargeError: The sample input or the expected output exceed the configured limits.
        """
        data = as_input(OperationTemplateCreate, data)
        self._check(data.sample_input, data.expected_output)
        now = utcnow()
        statement = (
            dialect_insert(self.dialect, templates)
            .values(**data.model_dump(), id=new_id(), usage_count=0, created_at=now, updated_at=now)
            .on_conflict_do_nothing(
                index_elements=[templates.c.operation_type, templates.c.template_name]
            )
            .returning(*templates.c)
        )
        conn = self.conn
        row = conn.execute(statement).first()
        if row is None:
            raise _taken(data.operation_type, data.template_name)
        return _template(row)

    @operation("read", single=True)
    def get(self, template_id: IdLike) -> OperationTemplate:
        """The template; ``NotFoundError`` if there is none."""
        return self._get(template_id)

    @operation("read", single=True)
    def find_by_name(self, operation_type: str, template_name: str) -> OperationTemplate | None:
        """The template of this operation type and name, or ``None``."""
        if "\x00" in operation_type or "\x00" in template_name:  # cannot be stored
            return None
        query = select(templates).where(
            templates.c.operation_type == operation_type,
            templates.c.template_name == template_name,
        )
        conn = self.conn
        row = conn.execute(query).first()
        return None if row is None else _template(row)

    @operation("read", single=True)
    def list(
        self, *, operation_type: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[OperationTemplate]:
        """Templates ordered by operation type and name, optionally of one type; keyset pages."""
        check_limit(limit, self.settings.max_page_size)
        query = select(templates)
        if operation_type is not None:
            query = query.where(templates.c.operation_type == operation_type)
        if cursor is not None:
            after_type, after_name = decode_cursor(cursor, 2)
            query = query.where(
                or_(
                    templates.c.operation_type > after_type,
                    and_(
                        templates.c.operation_type == after_type,
                        templates.c.template_name > after_name,
                    ),
                )
            )
        query = query.order_by(templates.c.operation_type, templates.c.template_name)
        conn = self.conn
        rows = conn.execute(query.limit(limit + 1)).all()
        items = [_template(row) for row in rows[:limit]]
        more = len(rows) > limit
        last = items[-1] if more else None
        return Page(
            items=items,
            next_cursor=None
            if last is None
            else encode_cursor(last.operation_type, last.template_name),
        )

    @operation("write", single=True)
    def record_use(self, template_id: IdLike) -> OperationTemplate:
        """Count one use of the template (its ``updated_at`` stays: use is not a change)."""
        key = self._key(template_id)
        return self._update(key, {"usage_count": templates.c.usage_count + 1}, template_id)

    @operation("write", single=True)
    def update(
        self, template_id: IdLike, data: OperationTemplateUpdate | Mapping[str, Any]
    ) -> OperationTemplate:
        """Change the fields set in ``data``; the others stay as they are.

        Raises:
            NotFoundError: There is no such template.
            ConflictError: The new type and name are another template's.
            ValidationError: A field was set to ``None``.
        """
        key = self._key(template_id)
        changes = changes_of(as_input(OperationTemplateUpdate, data), templates)
        self._check(changes.get("sample_input"), changes.get("expected_output"))
        return self._update(key, changed(changes), template_id)

    def _update(self, key: uuid.UUID, values: dict[str, Any], given: object) -> OperationTemplate:
        try:
            return self._update_row(key, values, given=given)
        except ConflictError as exc:  # the (operation type, name) key
            raise ConflictError(
                "another template of this operation type has this name", field="template_name"
            ) from exc

    @operation("write", single=True)
    def delete(self, template_id: IdLike) -> bool:
        """Delete the template; ``False`` if there was none."""
        key = self._key(template_id)
        conn = self.conn
        result = conn.execute(delete(templates).where(templates.c.id == key))
        return result.rowcount > 0

    def _check(self, sample_input: str | None, expected_output: Any) -> None:
        check_text_size(sample_input, self.settings.max_content_bytes, "sample_input")
        check_json(expected_output, self.settings.max_metadata_bytes, "expected_output")


def _taken(operation_type: object, template_name: object) -> ConflictError:
    return ConflictError(
        f"operation type {operation_type!r} already has a template named {template_name!r}",
        field="template_name",
    )


def _template(row: Row[Any]) -> OperationTemplate:
    return load(OperationTemplate, row)
