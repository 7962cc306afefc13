"""A refused body says what is wrong in the validator's own words: never pydantic's "Value
error, " or "Assertion failed, " before them, on any route or through the Python
API (one place renders them: ``models.common.reason``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from agentkeep import ConversationCreate, DatabaseManager, Sync, ValidationError
from api.shapes import error_of

pytestmark = pytest.mark.anyio

API = "/api/v1"
PYDANTIC_PREFIXES = ("Value error", "Assertion failed")


async def _conversation(client: httpx.AsyncClient) -> str:
    started = await client.post(f"{API}/conversations/start", json={"user_id": "u1"})
    assert started.status_code == 201, started.text
    cid: str = started.json()["conversation"]["id"]
    return cid


def _said_plainly(error: dict[str, Any]) -> str:
    message: str = error["message"]
    assert not any(prefix in message for prefix in PYDANTIC_PREFIXES), message
    return message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"data_type": "partial", "content": ["coffee"]},
            "content: partial content must be a JSON object",
        ),
        (
            {"data_type": "complete", "content": "300 roubles"},
            "content: complete content must be a JSON object",
        ),
        (
            {"data_type": "missing_fields", "content": {"amount": None}},
            "content: missing_fields content must be a list of field names",
        ),
    ],
)
async def test_data_of_the_wrong_shape_is_refused_in_the_validators_words(
    client: httpx.AsyncClient, body: dict[str, Any], message: str
) -> None:
    cid = await _conversation(client)
    error = error_of(await client.post(f"{API}/conversations/{cid}/data", json=body), 422)
    assert _said_plainly(error) == message
    assert error["field"] == "content"


async def test_an_unknown_time_zone_is_refused_in_the_validators_words(
    client: httpx.AsyncClient,
) -> None:
    response = await client.put(
        f"{API}/users/u1/sessions/c1", json={"timezone": "Mars/Olympus_Mons"}
    )
    error = error_of(response, 422)
    assert _said_plainly(error) == "timezone: is not a known IANA time zone: 'Mars/Olympus_Mons'"
    assert error["field"] == "timezone"


def test_the_python_api_refuses_in_the_same_words(db: DatabaseManager[Sync]) -> None:
    cid = db.conversations.create(ConversationCreate(user_id="u1")).id
    with pytest.raises(ValidationError) as refused:
        db.conversation_data.add(cid, "partial", ["coffee"])
    assert refused.value.message == "content: partial content must be a JSON object"
    assert refused.value.field == "content"
