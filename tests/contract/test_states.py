"""Contract: conversation state (one value per conversation, persona, module and key)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from agentkeep import (
    ConversationCreate,
    DatabaseManager,
    ModuleCreate,
    NotFoundError,
    PersonaCreate,
    Sync,
    TooLargeError,
    ValidationError,
)

JSON_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -7,
    3.25,
    "строка ✓",
    "",
    [],
    [1, "two", None, {"three": 3}],
    {},
    {"stage": 2, "seen": ["a", "b"], "nested": {"ok": True, "none": None}},
]


def _conversation(db: DatabaseManager[Sync]) -> uuid.UUID:
    return db.conversations.create(ConversationCreate(user_id="u1", chat_id="c1")).id


def _persona_and_module(db: DatabaseManager[Sync]) -> tuple[uuid.UUID, uuid.UUID]:
    persona = db.personas.create(PersonaCreate(name="Ava", template="You are Ava."))
    module = db.modules.create(ModuleCreate(name="mood", type="advanced"))
    return persona.id, module.id


class TestConversationStates:
    def test_every_json_value_round_trips(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        for i, value in enumerate(JSON_VALUES):
            stored = db.states.put(cid, f"key{i}", value)
            assert stored.state_value == value
            assert db.states.get(cid, f"key{i}").state_value == value

    def test_put_upserts_one_row_per_scope_and_key(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        pid, mid = _persona_and_module(db)
        scopes: list[dict[str, uuid.UUID | None]] = [
            {"persona_id": None, "module_id": None},
            {"persona_id": pid, "module_id": None},
            {"persona_id": None, "module_id": mid},
            {"persona_id": pid, "module_id": mid},
        ]
        for scope in scopes:
            first = db.states.put(cid, "stage", 1, **scope)
            second = db.states.put(cid, "stage", {"n": 2}, **scope)
            assert second.id == first.id
            assert second.created_at == first.created_at
            assert second.updated_at >= first.updated_at
            assert db.states.get(cid, "stage", **scope).state_value == {"n": 2}
        states = db.states.list(cid).items
        assert len(states) == 4
        assert {(s.persona_id, s.module_id) for s in states} == {
            (scope["persona_id"], scope["module_id"]) for scope in scopes
        }
        assert len(db.states.list(cid, persona_id=pid).items) == 2
        assert len(db.states.list(cid, persona_id=pid, module_id=mid).items) == 1

    def test_scopes_are_separate(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        pid, _ = _persona_and_module(db)
        db.states.put(cid, "k", "global")
        db.states.put(cid, "k", "persona", persona_id=pid)
        assert db.states.get(cid, "k").state_value == "global"
        assert db.states.get(cid, "k", persona_id=str(pid)).state_value == "persona"

    def test_delete_and_find(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        db.states.put(cid, "k", 1)
        assert db.states.delete(cid, "k") is True
        assert db.states.delete(cid, "k") is False
        assert db.states.find(cid, "k") is None
        with pytest.raises(NotFoundError) as missing:
            db.states.get(cid, "k")
        assert missing.value.field == "state_key"

    def test_unknown_references_are_not_found_naming_the_field(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = _conversation(db)
        for field in ("persona_id", "module_id"):
            with pytest.raises(NotFoundError) as missing:
                db.states.put(cid, "k", 1, **{field: uuid.uuid4()})
            assert missing.value.field == field
        with pytest.raises(NotFoundError) as missing:
            db.states.put(uuid.uuid4(), "k", 1)
        assert missing.value.field == "conversation_id"
        assert db.states.list(cid).items == []

    def test_bad_input_is_rejected_and_nothing_is_written(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        cycle: list[Any] = []
        cycle.append(cycle)
        cases: list[tuple[dict[str, Any], str]] = [
            ({"key": "k", "value": cycle}, "state_value"),
            ({"key": "k", "value": {1: "int key"}}, "state_value"),
            ({"key": "", "value": 1}, "state_key"),
            ({"key": "a\x00b", "value": 1}, "state_key"),
            ({"key": 5, "value": 1}, "state_key"),
            ({"key": "k", "value": {"x": "nul\x00"}}, "state_value"),
            ({"key": "k", "value": float("inf")}, "state_value"),
            ({"key": "k", "value": object()}, "state_value"),
            ({"key": "k", "value": 1, "persona_id": "nope"}, "persona_id"),
            ({"key": "k", "value": 1, "module_id": 42}, "module_id"),
        ]
        for kwargs, field in cases:
            with pytest.raises(ValidationError) as caught:
                db.states.put(cid, **kwargs)
            assert caught.value.field == field, kwargs
        with pytest.raises(TooLargeError) as too_big:
            db.states.put(cid, "k", "x" * db.settings.max_metadata_bytes)
        assert too_big.value.field == "state_value"
        assert db.states.list(cid).items == []


class TestPagesAndWhereAKeyIs:
    def test_states_come_in_pages_by_scope_and_key(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        for key in ["d", "a", "c", "b", "e"]:
            db.states.put(cid, key, key)
        first = db.states.list(cid, limit=2)
        assert [s.state_key for s in first.items] == ["a", "b"]
        second = db.states.list(cid, limit=2, cursor=first.next_cursor)
        third = db.states.list(cid, limit=2, cursor=second.next_cursor)
        assert [s.state_key for s in second.items + third.items] == ["c", "d", "e"]
        assert third.next_cursor is None
        assert db.states.list(cid).next_cursor is None

    def test_a_key_missing_from_one_scope_names_the_scopes_that_hold_it(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = _conversation(db)
        pid = db.personas.create(PersonaCreate(name="p", template="t")).id
        db.states.put(cid, "mood", "calm", persona_id=pid)
        with pytest.raises(NotFoundError) as caught:
            db.states.get(cid, "mood")
        assert caught.value.field == "state_key"
        assert f"persona_id={pid}" in caught.value.message
        db.states.put(cid, "mood", "plain")
        assert db.states.get(cid, "mood").state_value == "plain"
        with pytest.raises(NotFoundError) as caught:
            db.states.get(cid, "never")
        assert caught.value.message == "no state 'never' in this scope"
