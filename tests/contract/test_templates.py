"""Contract: operation templates behave the same on every backend."""

from __future__ import annotations

import uuid

import pytest

from agentkeep import (
    ConflictError,
    DatabaseManager,
    NotFoundError,
    OperationTemplateCreate,
    OperationTemplateUpdate,
    Sync,
    TooLargeError,
    ValidationError,
)


def _template(name: str, operation_type: str = "expense") -> OperationTemplateCreate:
    return OperationTemplateCreate(
        operation_type=operation_type,
        template_name=name,
        sample_input="купил кофе за 300 рублей",
        expected_output={"amount": 300, "item": "coffee", "currency": "RUB"},
    )


class TestOperationTemplates:
    def test_create_round_trips(self, db: DatabaseManager[Sync]) -> None:
        created = db.templates.create(_template("coffee"))
        assert db.templates.get(created.id) == created
        assert created.usage_count == 0
        assert created.expected_output == {"amount": 300, "item": "coffee", "currency": "RUB"}
        assert db.templates.find_by_name("expense", "coffee") == created
        assert db.templates.find_by_name("income", "coffee") is None

    def test_same_name_under_one_type_is_a_conflict(self, db: DatabaseManager[Sync]) -> None:
        db.templates.create(_template("coffee"))
        db.templates.create(_template("coffee", operation_type="income"))
        with pytest.raises(ConflictError) as conflict:
            db.templates.create(_template("coffee"))
        assert conflict.value.field == "template_name"
        other = db.templates.create(_template("tea"))
        with pytest.raises(ConflictError) as conflict:
            db.templates.update(other.id, OperationTemplateUpdate(template_name="coffee"))
        assert conflict.value.field == "template_name"
        assert db.templates.get(other.id).template_name == "tea"

    def test_list_by_type_in_name_order_with_keyset_pages(self, db: DatabaseManager[Sync]) -> None:
        for name in ("c", "a", "b", "d"):
            db.templates.create(_template(name))
        db.templates.create(_template("z", operation_type="income"))
        first = db.templates.list(operation_type="expense", limit=3)
        assert [t.template_name for t in first.items] == ["a", "b", "c"]
        rest = db.templates.list(operation_type="expense", limit=3, cursor=first.next_cursor)
        assert [t.template_name for t in rest.items] == ["d"]
        assert rest.next_cursor is None
        everything = db.templates.list()
        assert [(t.operation_type, t.template_name) for t in everything.items][-1] == (
            "income",
            "z",
        )

    def test_record_use_counts_without_touching_updated_at(self, db: DatabaseManager[Sync]) -> None:
        created = db.templates.create(_template("coffee"))
        db.templates.record_use(created.id)
        used = db.templates.record_use(str(created.id))
        assert used.usage_count == 2
        assert used.updated_at == created.updated_at

    def test_update_and_delete(self, db: DatabaseManager[Sync]) -> None:
        created = db.templates.create(_template("coffee"))
        changed = db.templates.update(
            created.id, OperationTemplateUpdate(sample_input="tea 100", expected_output={"a": 1})
        )
        assert (changed.sample_input, changed.expected_output) == ("tea 100", {"a": 1})
        assert changed.template_name == "coffee"
        with pytest.raises(ValidationError) as caught:
            db.templates.update(created.id, OperationTemplateUpdate(sample_input=None))
        assert caught.value.field == "sample_input"
        assert db.templates.delete(created.id) is True
        assert db.templates.delete(created.id) is False
        with pytest.raises(NotFoundError) as missing:
            db.templates.record_use(created.id)
        assert missing.value.field == "template_id"

    def test_bad_input_is_rejected_and_nothing_is_written(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(TooLargeError) as too_big:
            db.templates.create(
                OperationTemplateCreate(
                    operation_type="expense",
                    template_name="big",
                    sample_input="x" * (db.settings.max_content_bytes + 1),
                )
            )
        assert too_big.value.field == "sample_input"
        with pytest.raises(ValidationError) as caught:
            db.templates.create(
                OperationTemplateCreate(
                    operation_type="expense",
                    template_name="nan",
                    sample_input="x",
                    expected_output={"amount": float("nan")},
                )
            )
        assert caught.value.field == "expected_output"
        with pytest.raises(ValueError, match="template_name"):
            OperationTemplateCreate(
                operation_type="expense", template_name="a\x00", sample_input=""
            )
        with pytest.raises(ValidationError) as caught:
            db.templates.get(12)  # type: ignore[arg-type]
        assert caught.value.field == "template_id"
        with pytest.raises(NotFoundError):
            db.templates.get(uuid.uuid4())
        assert db.templates.list().items == []
