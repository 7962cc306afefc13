"""``/api/v1/conversations``: start, read, list, change and delete conversations; append and
page through their messages; keep per-conversation state.

Message history pages by sequence number both ways: with neither cursor the newest ``limit``
messages; ``before=<seq>`` the older ones, ``after=<seq>`` the newer ones (each page oldest first).

A page of messages is the hottest answer the API encodes (50 messages, ~34 KB): pydantic's
``dump_json`` of it cost about 0.11 ms of CPU, a sixth of what the server spends on the request.
:func:`page_json` writes the same bytes with orjson from the messages' own field dictionaries in
about a third of that, for the pages whose every value orjson writes exactly as pydantic does:
messages as the store builds them (every field, in the model's order), times in UTC, no tool-call
records; orjson refuses what it cannot write the same (an integer beyond 64 bits, a lone
surrogate, a model), and then the page is pydantic's. Both write UUIDs, enumerations, strings
(escapes and UTF-8), floats (the shortest repr, ``1e+16``), ``NaN`` and infinities as ``null``
and UTC times (``Z``) alike, which the tests check value by value.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC
from typing import Annotated, Any, TypedDict

import orjson
from fastapi import APIRouter, Body, Depends, Path, Query, Response, params, status
from fastapi.routing import APIRoute

from agentkeep.api import errors
from agentkeep.api.deps import API_PREFIX, Cursor, Db, Limit, example
from agentkeep.api.encoding import JSONBytes, adapter, json_response
from agentkeep.api.errors import responses
from agentkeep.api.lean import LeanRoute
from agentkeep.api.schemas import ConversationStart, ConversationStarted, StateValue
from agentkeep.errors import NotFoundError
from agentkeep.models.common import INT32_MAX, Page
from agentkeep.models.conversation import (
    Conversation,
    ConversationCreate,
    ConversationUpdate,
    Message,
    MessageCreate,
)
from agentkeep.models.conversation_flow import ConversationState
from agentkeep.models.enums import ConversationStatus
from agentkeep.repositories.conversation_flow import touch_session
from agentkeep.repositories.facade import Unit

router = APIRouter(prefix=f"{API_PREFIX}/conversations", tags=["conversations"])

ConversationId = Annotated[uuid.UUID, Path(description="the conversation's id")]
StateKey = Annotated[str, Path(min_length=1, max_length=255, description="the state's key")]
ScopeId = Annotated[uuid.UUID | None, Query(description="scope the state to a persona or a module")]


class StateScopeArgs(TypedDict):
    persona_id: uuid.UUID | None
    module_id: uuid.UUID | None


async def state_scope(persona_id: ScopeId = None, module_id: ScopeId = None) -> StateScopeArgs:
    return {"persona_id": persona_id, "module_id": module_id}


StateScope = Annotated[StateScopeArgs, Depends(state_scope)]
"""The persona / module a state key belongs to (query parameters shared by the state routes)."""
Seq = Annotated[int | None, Query(ge=0, le=INT32_MAX, description="a message sequence number")]

_START_EXAMPLE = {
    "user_id": "telegram:4242",
    "chat_id": "4242",
    "title": "Lunch expenses",
    "message": {"role": "user", "content": "bought coffee for 300 roubles"},
}
_MESSAGE_EXAMPLE = {
    "role": "user",
    "content": "And a sandwich for 250.",
    "metadata": {"source": "telegram"},
    "client_id": "tg-4242-1001",
}


@router.post(
    "/start",
    response_model=ConversationStarted,
    status_code=status.HTTP_201_CREATED,
    summary="Start a conversation, optionally with its first message (with a user and a chat, "
    "their session records it)",
    responses=responses(400, 404, 413, 422),
)
async def start_conversation(
    db: Db,
    data: Annotated[
        ConversationStart,
        Body(openapi_examples=example("with a first message", _START_EXAMPLE)),
    ],
) -> ConversationStarted:
    created = ConversationCreate.model_validate(data.model_dump(exclude={"message"}))

    def start(uow: Unit) -> ConversationStarted:
        conversation = uow.conversations.create(created)
        touch_session(uow, conversation)
        if data.message is None:
            return ConversationStarted(conversation=conversation)
        message = uow.messages.append(conversation.id, data.message)
        conversation = uow.conversations.get(conversation.id)  # with its counters moved
        return ConversationStarted(conversation=conversation, message=message)

    return await db.run(start)


@router.get(
    "",
    response_model=Page[Conversation],
    summary="List conversations, most recently active first",
    responses=responses(422),
)
async def list_conversations(
    db: Db,
    user_id: Annotated[str | None, Query(max_length=255)] = None,
    chat_id: Annotated[str | None, Query(max_length=255)] = None,
    agent_id: uuid.UUID | None = None,
    status: ConversationStatus | None = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    page = await db.conversations.list(
        user_id=user_id,
        chat_id=chat_id,
        agent_id=agent_id,
        status=status,
        limit=limit,
        cursor=cursor,
    )
    return json_response(page, Page[Conversation])


@router.get(
    "/{conversation_id}",
    response_model=Conversation,
    summary="Get a conversation",
    responses=responses(404, 422),
)
async def get_conversation(db: Db, conversation_id: ConversationId) -> Response:
    return json_response(await db.conversations.get(conversation_id), Conversation)


@router.patch(
    "/{conversation_id}",
    response_model=Conversation,
    summary="Change a conversation's title, status, metadata, agent state or operation type",
    responses=responses(400, 404, 413, 422),
)
async def update_conversation(
    db: Db, conversation_id: ConversationId, data: ConversationUpdate
) -> Conversation:
    return await db.conversations.update(conversation_id, data)


@router.delete(
    "/{conversation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a conversation with its messages, data, questions, state and memories",
    responses=responses(404, 422),
)
async def delete_conversation(db: Db, conversation_id: ConversationId) -> Response:
    deleted = await db.conversations.delete(conversation_id)
    if not deleted:
        raise NotFoundError(f"conversation {conversation_id} not found", field="conversation_id")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def append_message(
    db: Db,
    conversation_id: ConversationId,
    data: Annotated[
        MessageCreate,
        Body(openapi_examples=example("a user message", _MESSAGE_EXAMPLE)),
    ],
) -> Response:
    message = await db.messages.append(conversation_id, data)
    return json_response(message, Message, status.HTTP_201_CREATED)


async def list_messages(
    db: Db,
    conversation_id: ConversationId,
    limit: Limit = 50,
    before: Seq = None,
    after: Seq = None,
) -> Response:
    page = await db.messages.list(conversation_id, limit=limit, before=before, after=after)
    if not page.items:  # only an empty page can hide a conversation that does not exist
        await db.conversations.get(conversation_id)
    return JSONBytes(page_json(page))


_FIELDS = tuple(Message.model_fields)
"""A message's fields in the model's order, the order pydantic writes them."""
_FAST = tuple(Page[Message].model_fields) == ("items", "next_cursor") and not any(
    f.alias or f.serialization_alias
    for model in (Message, Page[Message])
    for f in model.model_fields.values()
)
"""Whether orjson may write pages: the page and message write their fields under their own names
(as the fast path does)."""


def page_json(page: Page[Message]) -> bytes:
    """``page`` as pydantic's ``dump_json`` writes it (by alias), byte for byte; see the module's
    documentation."""
    fast = _page_json(page) if _FAST else None
    return fast if fast is not None else adapter(Page[Message]).dump_json(page, by_alias=True)


def _page_json(page: Page[Message]) -> bytes | None:
    """``page`` written by orjson, or ``None`` where its bytes could differ from pydantic's."""
    fields = []
    for message in page.items:
        values = message.__dict__
        if (
            type(message) is not Message
            or tuple(values) != _FIELDS
            or values["tool_calls"] is not None
            or values["created_at"].tzinfo is not UTC
            or values["updated_at"].tzinfo is not UTC
        ):
            return None
        fields.append(values)
    try:
        return orjson.dumps(
            {"items": fields, "next_cursor": page.next_cursor}, option=orjson.OPT_UTC_Z
        )
    except orjson.JSONEncodeError:  # a value orjson does not write (pydantic may)
        return None


def add_message_routes(
    router: APIRouter,
    *,
    dependencies: Sequence[params.Depends] = (),
    responses: dict[int | str, dict[str, Any]] | None = None,
    route_class: type[APIRoute] = LeanRoute,
) -> None:
    """Add the routes that append a message and read a page of them to ``router`` (the app's
    own), with ``dependencies`` and ``responses`` as an inclusion would add them.

    They are the hottest routes: the app adds them before every other route, so matching a request
    to them tries two routes, not thirty (no other route's path can match theirs,
    ``/{id}/message`` and ``/{id}/messages``, so the order changes no answer), and adds them
    itself rather than including a router, which FastAPI would match twice per request. They are
    ``route_class`` routes: on the lean request path (``api/lean.py``) by default, FastAPI's own
    with ``APIRoute``."""
    prefix = f"{API_PREFIX}/conversations"
    shared: dict[str, Any] = {
        "tags": ["conversations"],
        "dependencies": list(dependencies),
        "route_class_override": route_class,
    }
    router.add_api_route(
        f"{prefix}/{{conversation_id}}/message",
        append_message,
        methods=["POST"],
        response_model=Message,
        status_code=status.HTTP_201_CREATED,
        summary="Append a message (the same client_id twice stores it once and returns it "
        "both times)",
        responses={**(responses or {}), **errors.responses(400, 404, 413, 422)},
        **shared,
    )
    router.add_api_route(
        f"{prefix}/{{conversation_id}}/messages",
        list_messages,
        methods=["GET"],
        response_model=Page[Message],
        summary="A page of messages, oldest first within the page",
        responses={**(responses or {}), **errors.responses(404, 422)},
        **shared,
    )


@router.get(
    "/{conversation_id}/state",
    response_model=Page[ConversationState],
    summary="A conversation's state values, by scope and key",
    responses=responses(404, 422),
)
async def list_state(
    db: Db,
    conversation_id: ConversationId,
    scope: StateScope,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ConversationState]:
    found = await db.states.list(conversation_id, **scope, limit=limit, cursor=cursor)
    if not found.items:
        await db.conversations.get(conversation_id)
    return found


@router.get(
    "/{conversation_id}/state/{key}",
    response_model=ConversationState,
    summary="One state value",
    responses=responses(404, 422),
)
async def get_state(
    db: Db,
    conversation_id: ConversationId,
    key: StateKey,
    scope: StateScope,
) -> ConversationState:
    return await db.states.get(conversation_id, key, **scope)


@router.put(
    "/{conversation_id}/state/{key}",
    response_model=ConversationState,
    summary="Set a state value (created or replaced)",
    responses=responses(400, 404, 413, 422),
)
async def put_state(
    db: Db,
    conversation_id: ConversationId,
    key: StateKey,
    data: Annotated[
        StateValue,
        Body(openapi_examples=example("a JSON value", {"value": {"step": 2}})),
    ],
    scope: StateScope,
) -> ConversationState:
    value: Any = data.value
    return await db.states.put(conversation_id, key, value, **scope)


@router.delete(
    "/{conversation_id}/state/{key}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove a state value",
    responses=responses(404, 422),
)
async def delete_state(
    db: Db,
    conversation_id: ConversationId,
    key: StateKey,
    scope: StateScope,
) -> Response:
    if not await db.states.delete(conversation_id, key, **scope):
        raise NotFoundError(f"no state {key!r} in this scope", field="state_key")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
