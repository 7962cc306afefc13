"""Contract: full-text search over messages behaves the same on every backend."""

from __future__ import annotations

import uuid

import pytest

from agentkeep import (
    Async,
    ConversationCreate,
    DatabaseManager,
    MessageCreate,
    MessageUpdate,
    Role,
    Sync,
    Unit,
    ValidationError,
)


def _conversation(db: DatabaseManager[Sync], user: str = "u1", chat: str = "c1") -> uuid.UUID:
    return db.conversations.create(ConversationCreate(user_id=user, chat_id=chat)).id


def _say(db: DatabaseManager[Sync], cid: uuid.UUID, content: str, role: str = "user") -> uuid.UUID:
    return db.messages.append(cid, MessageCreate(role=role, content=content)).id


def _found(db: DatabaseManager[Sync], text: str, **filters: object) -> list[str]:
    return [m.content for m in db.messages.search(text, **filters)]  # type: ignore[arg-type]


class TestMatching:
    def test_a_word_is_found_in_any_position(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        texts = ["coffee first", "then coffee in the middle", "and last comes coffee", "tea"]
        for text in texts:
            _say(db, cid, text)
        assert sorted(_found(db, "coffee")) == sorted(texts[:3])

    def test_matching_ignores_case(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        _say(db, cid, "Bought COFFEE at the Station")
        assert _found(db, "coffee") == ["Bought COFFEE at the Station"]
        assert _found(db, "station BOUGHT") == ["Bought COFFEE at the Station"]

    def test_cyrillic_words_are_found(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        _say(db, cid, "Куплю кофе за 300 рублей ☕")
        _say(db, cid, "Чай без лимона")
        assert _found(db, "кофе") == ["Куплю кофе за 300 рублей ☕"]
        assert _found(db, "Кофе") == ["Куплю кофе за 300 рублей ☕"]
        assert _found(db, "рублей 300") == ["Куплю кофе за 300 рублей ☕"]
        assert _found(db, "молоко") == []

    def test_a_word_inside_text_written_without_spaces_is_found(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = _conversation(db)
        texts = ["我买了咖啡 300 元", "日本語のテキスト", "커피를 마셨다", "ซื้อกาแฟที่สถานี", "tea"]
        for text in texts:
            _say(db, cid, text)
        assert _found(db, "咖啡") == [texts[0]]
        assert _found(db, "テキスト") == [texts[1]]
        assert _found(db, "日本語") == [texts[1]]
        assert _found(db, "커피") == [texts[2]]
        assert _found(db, "กาแฟ") == [texts[3]]
        assert _found(db, "茶") == []

    def test_such_words_and_spaced_words_are_all_required(self, db: DatabaseManager[Sync]) -> None:
        first, second = _conversation(db, "u1", "c1"), _conversation(db, "u2", "c2")
        _say(db, first, "我买了咖啡 300 元")
        _say(db, first, "我买了咖啡 500 元")
        _say(db, second, "咖啡 300")
        _say(db, first, "300 元", role="assistant")
        assert sorted(_found(db, "咖啡 300")) == ["咖啡 300", "我买了咖啡 300 元"]
        assert _found(db, "300 咖啡", user_id="u1") == ["我买了咖啡 300 元"]
        assert _found(db, "咖啡", role="assistant") == []
        assert _found(db, "咖啡 300 sugar") == []
        newest_first = _found(db, "咖啡 我买了")
        assert newest_first == ["我买了咖啡 500 元", "我买了咖啡 300 元"]

    def test_every_word_is_required(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        _say(db, cid, "coffee with milk")
        _say(db, cid, "coffee without anything")
        _say(db, cid, "milk alone")
        assert _found(db, "coffee milk") == ["coffee with milk"]
        assert _found(db, "coffee milk sugar") == []

    def test_query_words_are_never_operators(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        _say(db, cid, "coffee")
        _say(db, cid, "tea")
        _say(db, cid, "coffee or tea")
        assert _found(db, "coffee OR tea") == ["coffee or tea"]
        assert _found(db, "-tea coffee") == ["coffee or tea"]

    def test_whole_words_match_not_fragments(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        _say(db, cid, "coffeehouse")
        assert _found(db, "coffee") == []

    def test_better_matches_come_first_and_ties_newest_first(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = _conversation(db)
        _say(db, cid, "tea and then some coffee, though mostly tea and more tea and water")
        _say(db, cid, "coffee coffee coffee")
        older = _say(db, cid, "same coffee words")
        newer = _say(db, cid, "same coffee words")
        found = db.messages.search("coffee")
        assert found[0].content == "coffee coffee coffee"
        assert found[-1].content.startswith("tea")
        assert [m.id for m in found[1:3]] == [newer, older]

    def test_a_found_message_is_the_whole_stored_message(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        stored = db.messages.append(
            cid, MessageCreate(role="assistant", content="the answer", metadata={"k": 1})
        )
        assert db.messages.search("answer") == [stored]


class TestFilters:
    def test_by_conversation_user_chat_and_role(self, db: DatabaseManager[Sync]) -> None:
        first = _conversation(db, "u1", "c1")
        second = _conversation(db, "u1", "c2")
        third = _conversation(db, "u2", "c1")
        _say(db, first, "coffee one")
        _say(db, first, "coffee two", role="assistant")
        _say(db, second, "coffee three")
        _say(db, third, "coffee four")
        assert sorted(_found(db, "coffee", conversation_id=first)) == ["coffee one", "coffee two"]
        assert sorted(_found(db, "coffee", conversation_id=str(second))) == ["coffee three"]
        assert sorted(_found(db, "coffee", user_id="u1")) == [
            "coffee one",
            "coffee three",
            "coffee two",
        ]
        assert sorted(_found(db, "coffee", chat_id="c1")) == [
            "coffee four",
            "coffee one",
            "coffee two",
        ]
        assert _found(db, "coffee", user_id="u1", chat_id="c1", role=Role.ASSISTANT) == [
            "coffee two"
        ]
        assert _found(db, "coffee", role="user", conversation_id=first) == ["coffee one"]
        assert _found(db, "coffee", user_id="nobody") == []

    def test_limit_caps_the_results(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        for i in range(5):
            _say(db, cid, f"coffee {i}")
        assert len(db.messages.search("coffee", limit=2)) == 2
        assert len(db.messages.search("coffee", limit=1)) == 1
        assert len(db.messages.search("coffee")) == 5


class TestValidation:
    @pytest.mark.parametrize("text", ["", "   ", "\t\n"])
    def test_blank_text_is_a_validation_error(self, db: DatabaseManager[Sync], text: str) -> None:
        with pytest.raises(ValidationError) as caught:
            db.messages.search(text)
        assert caught.value.field == "text"

    def test_a_nul_character_is_a_validation_error(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(ValidationError) as caught:
            db.messages.search("coffee\x00")
        assert caught.value.field == "text"

    @pytest.mark.parametrize("limit", [0, -1, 10_000])
    def test_a_limit_out_of_range_is_a_validation_error(
        self, db: DatabaseManager[Sync], limit: int
    ) -> None:
        with pytest.raises(ValidationError) as caught:
            db.messages.search("coffee", limit=limit)
        assert caught.value.field == "limit"

    def test_malformed_filters_are_validation_errors(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(ValidationError) as caught:
            db.messages.search("coffee", conversation_id="not-a-uuid")
        assert caught.value.field == "conversation_id"
        with pytest.raises(ValidationError) as caught:
            db.messages.search("coffee", role="robot")
        assert caught.value.field == "role"

    @pytest.mark.parametrize(
        "text",
        [
            '"',
            '"coffee',
            'coffee"',
            "coffee*",
            "*",
            "content:coffee",
            ":",
            "(coffee",
            "coffee)",
            "-coffee",
            "-",
            "coffee OR tea",
            "OR",
            "NEAR(coffee tea)",
            "NEAR",
            "coffee AND NOT tea",
            "^coffee",
            "coffee & tea | !milk <-> sugar",
            "'coffee'",
            "{coffee}",
            "+coffee",
            "кофе:*",
        ],
    )
    def test_query_syntax_in_the_text_never_fails(
        self, db: DatabaseManager[Sync], text: str
    ) -> None:
        cid = _conversation(db)
        _say(db, cid, "coffee and tea")
        result = db.messages.search(text)
        assert isinstance(result, list)

    def test_punctuation_around_a_word_still_finds_it(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        _say(db, cid, "coffee, please!")
        assert _found(db, "coffee!") == ["coffee, please!"]
        assert _found(db, '"coffee"') == ["coffee, please!"]


class TestChanges:
    def test_updated_content_is_found_by_its_new_words_only(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = _conversation(db)
        mid = _say(db, cid, "draft about coffee")
        db.messages.update(mid, MessageUpdate(content="final answer about tea"))
        assert _found(db, "coffee") == []
        assert _found(db, "tea") == ["final answer about tea"]
        db.messages.update(mid, MessageUpdate(status="complete"))  # content untouched
        assert _found(db, "tea") == ["final answer about tea"]

    def test_deleted_messages_are_not_found(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        gone = _say(db, cid, "coffee to forget")
        _say(db, cid, "coffee to keep")
        assert db.messages.delete(gone) is True
        assert _found(db, "coffee") == ["coffee to keep"]

    def test_a_deleted_conversations_messages_are_not_found(
        self, db: DatabaseManager[Sync]
    ) -> None:
        gone = _conversation(db)
        kept = _conversation(db, chat="c2")
        _say(db, gone, "coffee in a deleted conversation")
        _say(db, kept, "coffee that stays")
        assert db.conversations.delete(gone) is True
        assert _found(db, "coffee") == ["coffee that stays"]

    def test_a_rolled_back_append_is_not_found(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)

        def append_then_fail(uow: Unit) -> None:
            uow.messages.append(cid, MessageCreate(role="user", content="coffee never stored"))
            raise RuntimeError("abort")

        with pytest.raises(RuntimeError):
            db.run(append_then_fail)
        assert _found(db, "coffee") == []


@pytest.mark.anyio
async def test_search_is_awaitable(adb: DatabaseManager[Async]) -> None:
    cid = (await adb.conversations.create(ConversationCreate(user_id="u1"))).id
    stored = await adb.messages.append(cid, MessageCreate(role="user", content="async coffee"))
    assert await adb.messages.search("coffee", conversation_id=cid) == [stored]
