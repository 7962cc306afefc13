"""Properties every store keeps, checked with generated data on every backend.

Hypothesis runs many examples against one store per test, so each example works in a conversation
(or under user ids) of its own and never sees another example's data.
"""

from __future__ import annotations

import uuid
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from agentkeep import (
    ConversationCreate,
    DatabaseManager,
    MessageCreate,
    Role,
    Sync,
    ValidationError,
)

examples = hypothesis.settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    max_examples=25,
    deadline=None,
)

# Everything both backends store: no NUL (PostgreSQL refuses it), no lone surrogates (not UTF-8).
storable_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=200
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | storable_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(storable_text, inner, max_size=4),
    max_leaves=20,
)
json_objects = st.dictionaries(storable_text, json_values, max_size=6)
tool_calls = st.fixed_dictionaries(
    {"name": storable_text},
    optional={
        "id": storable_text,
        "arguments": json_objects,
        "is_error": st.booleans(),
        "type": storable_text,  # a provider's own key, kept as given
    },
)
roles = st.sampled_from(list(Role))


def _conversation(db: DatabaseManager[Sync], user_id: str = "prop") -> uuid.UUID:
    return db.conversations.create(ConversationCreate(user_id=user_id)).id


class TestMessageRoundTrips:
    @given(
        role=roles,
        content=storable_text,
        thinking=st.none() | storable_text,
        metadata=json_objects,
        tool_calls=st.none() | st.lists(tool_calls, max_size=3),
    )
    @examples
    def test_any_message_reads_back_as_it_was_written(
        self,
        db: DatabaseManager[Sync],
        role: Role,
        content: str,
        thinking: str | None,
        metadata: dict[str, Any],
        tool_calls: list[dict[str, Any]] | None,
    ) -> None:
        cid = _conversation(db)
        sent = MessageCreate(
            role=role, content=content, thinking=thinking, metadata=metadata, tool_calls=tool_calls
        )
        appended = db.messages.append(cid, sent)
        loaded = db.messages.get(appended.id)
        assert loaded.content == content
        assert loaded.thinking == thinking
        assert loaded.metadata == metadata
        calls = loaded.tool_calls
        dumped = (
            None if calls is None else [c if isinstance(c, dict) else c.model_dump() for c in calls]
        )
        assert dumped == tool_calls
        assert loaded.role is role
        assert loaded == appended
        assert db.messages.last(cid, 1) == [loaded]

    @given(contents=st.lists(storable_text, min_size=1, max_size=15), n=st.integers(1, 20))
    @examples
    def test_order_is_kept_and_last_n_are_the_newest_in_order(
        self, db: DatabaseManager[Sync], contents: list[str], n: int
    ) -> None:
        cid = _conversation(db)
        stored = [
            db.messages.append(cid, MessageCreate(role="user", content=text)) for text in contents
        ]
        assert [m.seq for m in stored] == list(range(1, len(contents) + 1))
        tail = db.messages.last(cid, n)
        assert [m.content for m in tail] == contents[-n:]
        assert [m.id for m in tail] == [m.id for m in stored[-n:]]
        assert db.conversations.get(cid).message_count == len(contents)

    @given(
        before=storable_text,
        after=storable_text,
        field=st.sampled_from(["content", "thinking"]),
    )
    @examples
    def test_a_nul_anywhere_in_text_is_rejected_and_nothing_is_written(
        self, db: DatabaseManager[Sync], before: str, after: str, field: str
    ) -> None:
        poisoned = before + "\x00" + after
        fields: dict[str, Any] = {"role": "user", "content": "ok", field: poisoned}
        with pytest.raises(ValidationError) as refused:
            MessageCreate.model_validate(fields)
        assert refused.value.field == field
        cid = _conversation(db)
        with pytest.raises(ValidationError) as caught:
            db.add_message(session_id=cid, **fields)
        assert caught.value.field == field
        assert db.messages.count(cid) == 0

    @pytest.mark.parametrize(
        "number", [6.153697404032787e16, 1e300, -1e16, 2.0**60, 5e-324, 1.5e-7, 0.1, 1e15]
    )
    def test_a_float_reads_back_as_the_same_float(
        self, db: DatabaseManager[Sync], number: float
    ) -> None:
        # JSONB keeps numbers as numeric, which prints 6.15e16 as an integer unless told otherwise
        cid = _conversation(db)
        stored = db.messages.append(
            cid, MessageCreate(role="user", content="n", metadata={"n": number, "l": [number]})
        )
        loaded = db.messages.get(stored.id).metadata
        assert isinstance(loaded["n"], float)
        assert loaded == {"n": number, "l": [number]}

    @given(
        document=json_objects,
        path=st.lists(storable_text, min_size=1, max_size=3),
        in_key=st.booleans(),
    )
    @examples
    def test_a_nul_anywhere_in_metadata_is_rejected_on_every_backend(
        self, db: DatabaseManager[Sync], document: dict[str, Any], path: list[str], in_key: bool
    ) -> None:
        poisoned: Any = {"k\x00" if in_key else "k": "v" if in_key else "v\x00"}
        for key in reversed(path):
            poisoned = {key: poisoned}
        cid = _conversation(db)
        with pytest.raises(ValidationError) as caught:
            db.messages.append(
                cid, MessageCreate(role="user", content="x", metadata={**document, **poisoned})
            )
        assert caught.value.field == "metadata"
        assert db.messages.count(cid) == 0
        assert db.conversations.get(cid).message_count == 0


class TestHistoryPaging:
    @given(
        count=st.integers(0, 30),
        sizes=st.lists(st.integers(1, 8), min_size=1, max_size=10),
    )
    @examples
    def test_paging_back_with_before_visits_every_message_once(
        self, db: DatabaseManager[Sync], count: int, sizes: list[int]
    ) -> None:
        cid = _conversation(db)
        for i in range(count):
            db.messages.append(cid, MessageCreate(role="user", content=str(i)))
        seen: list[int] = []
        before: int | None = None
        for page_number in range(count + 2):
            size = sizes[page_number % len(sizes)]
            page = db.messages.list(cid, limit=size, before=before)
            seqs = [m.seq for m in page.items]
            assert seqs == sorted(seqs)  # oldest first within a page
            assert len(seqs) <= size
            seen = seqs + seen
            if page.next_cursor is None:
                break
            before = int(page.next_cursor)
        assert seen == list(range(1, count + 1))

    @given(
        count=st.integers(0, 30),
        sizes=st.lists(st.integers(1, 8), min_size=1, max_size=10),
    )
    @examples
    def test_paging_forward_with_after_visits_every_message_once(
        self, db: DatabaseManager[Sync], count: int, sizes: list[int]
    ) -> None:
        cid = _conversation(db)
        for i in range(count):
            db.messages.append(cid, MessageCreate(role="user", content=str(i)))
        seen: list[int] = []
        after = 0
        for page_number in range(count + 2):
            page = db.messages.list(cid, limit=sizes[page_number % len(sizes)], after=after)
            seen += [m.seq for m in page.items]
            if page.next_cursor is None:
                break
            after = int(page.next_cursor)
        assert seen == list(range(1, count + 1))


class TestConversationPaging:
    @given(
        owners=st.lists(st.integers(0, 2), max_size=20),
        touched=st.lists(st.integers(0, 19), max_size=10),
        user=st.integers(0, 2),
        limit=st.integers(1, 6),
    )
    @examples
    def test_listing_a_users_conversations_visits_each_once_newest_first(
        self,
        db: DatabaseManager[Sync],
        owners: list[int],
        touched: list[int],
        user: int,
        limit: int,
    ) -> None:
        run = uuid.uuid4().hex[:12]  # user ids of this example only
        created = [_conversation(db, f"{run}-{owner}") for owner in owners]
        for index in touched:  # a new message moves a conversation to the top
            if index < len(created):
                db.messages.append(created[index], MessageCreate(role="user", content="bump"))
        user_id = f"{run}-{user}"
        mine = [db.conversations.get(cid) for cid in created if owners[created.index(cid)] == user]
        expected = sorted(mine, key=lambda c: (c.updated_at, c.id), reverse=True)

        visited = []
        cursor: str | None = None
        for _ in range(len(owners) + 2):
            page = db.conversations.list(user_id=user_id, limit=limit, cursor=cursor)
            assert len(page.items) <= limit
            visited += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        assert [c.id for c in visited] == [c.id for c in expected]
        assert all(c.user_id == user_id for c in visited)
