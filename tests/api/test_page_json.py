"""A page of messages is written by orjson where it writes the same bytes as pydantic, and by
pydantic otherwise: either way the answer is the bytes pydantic's ``dump_json`` gives, on every
backend and for any content a message may hold."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic_core import PydanticSerializationError

from agentkeep import ConversationCreate, MessageCreate
from agentkeep.api.encoding import adapter
from agentkeep.api.routers.conversations import _page_json, page_json
from agentkeep.models.common import Page
from agentkeep.models.conversation import Message
from agentkeep.models.enums import MessageStatus, Role

pytestmark = pytest.mark.anyio

PAGE = adapter(Page[Message])


def pydantic_bytes(page: Page[Message]) -> bytes:
    return PAGE.dump_json(page, by_alias=True)


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # every code point, lone surrogates and control characters included
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
times = st.datetimes(
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(0))])
)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    return Message(
        id=uuid.UUID(int=draw(st.integers(0, 2**128 - 1))),
        conversation_id=uuid.uuid4(),
        seq=draw(st.integers(0, 2**31 - 1)),
        role=draw(st.sampled_from(list(Role))),
        content=draw(st.text()),
        thinking=draw(st.none() | st.text()),
        tool_calls=draw(st.none() | st.lists(st.dictionaries(st.text(), json_values), max_size=2)),
        metadata=draw(st.dictionaries(st.text(), json_values, max_size=5)),
        input_tokens=draw(st.none() | st.integers(0, 2**31)),
        status=draw(st.sampled_from(list(MessageStatus))),
        client_id=draw(st.none() | st.text(max_size=20)),
        created_at=draw(times),
        updated_at=draw(times),
    )


class TestPageJson:
    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
    @given(st.lists(messages(), max_size=5), st.none() | st.text(max_size=10))
    def test_writes_pydantic_s_bytes_for_any_messages(
        self, items: list[Message], cursor: str | None
    ) -> None:
        page = Page[Message](items=items, next_cursor=cursor)
        assert page_json(page) == pydantic_bytes(page)

    def test_values_orjson_cannot_write_alike_go_to_pydantic(self) -> None:
        now = datetime.now(UTC)

        def page(**values: Any) -> Page[Message]:
            fields = {"id": uuid.uuid4(), "conversation_id": uuid.uuid4(), "seq": 1}
            fields |= {"role": "user", "content": "a", "created_at": now, "updated_at": now}
            return Page[Message](items=[Message(**(fields | values))])

        assert _page_json(page()) is not None
        for refused in (
            page(metadata={"n": 2**64}),
            page(tool_calls=[{"id": "c1", "name": "f", "arguments": {}}]),
            page(created_at=now.astimezone(timezone(timedelta(seconds=30)))),
        ):
            assert _page_json(refused) is None
            assert page_json(refused) == pydantic_bytes(refused)
        surrogate = page(metadata={"k": "\ud800"})  # neither writes it: pydantic refuses
        assert _page_json(surrogate) is None
        with pytest.raises(PydanticSerializationError):
            page_json(surrogate)


async def test_a_page_read_from_the_store_takes_the_fast_path_and_is_answered_as_written(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = served
    db = app.state.db
    cid = (await db.conversations.create(ConversationCreate(user_id="u"))).id
    for i, content in enumerate(["plain", 'é 😀 \u2028 \x01 \t "quoted" \\ /', "x" * 3000]):
        metadata = {"i": i, "f": 0.1 * i, "big": 2**63 - 1, "deep": {"l": [None, True, "s"]}}
        await db.messages.append(
            cid, MessageCreate(role="user", content=content, metadata=metadata)
        )
    page = await db.messages.list(cid, limit=50)
    assert _page_json(page) == pydantic_bytes(page)  # the store's messages: orjson writes them

    answered = await client.get(f"/api/v1/conversations/{cid}/messages?limit=50")
    assert answered.status_code == 200
    assert answered.content == pydantic_bytes(page)
    assert answered.headers["content-type"] == "application/json"
