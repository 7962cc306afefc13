"""``/api/v1/users/{user_id}/sessions/{chat_id}`` and ``/api/v1/templates``: a chat bot's user
sessions (where each user left off in each chat, and their time zone) and its operation
templates (worked examples of an operation, counted as they are used).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response, status

from agentkeep.api.deps import API_PREFIX, Cursor, Db, Limit, example
from agentkeep.api.errors import responses
from agentkeep.api.flow_schemas import SessionPut
from agentkeep.errors import NotFoundError
from agentkeep.models.common import Page
from agentkeep.models.conversation_flow import (
    OperationTemplate,
    OperationTemplateCreate,
    OperationTemplateUpdate,
    UserSession,
)

router = APIRouter(prefix=API_PREFIX, tags=["chat users"])

UserId = Annotated[str, Path(min_length=1, max_length=255, description="the platform's user id")]
ChatId = Annotated[str, Path(min_length=1, max_length=255, description="the platform's chat id")]
TemplateId = Annotated[uuid.UUID, Path(description="the template's id")]

_TEMPLATE_EXAMPLE = {
    "operation_type": "expense",
    "template_name": "coffee",
    "sample_input": "bought coffee for 300",
    "expected_output": {"amount": 300, "item": "coffee"},
}


# -- user sessions ------------------------------------------------------------------------------


@router.get(
    "/users/{user_id}/sessions/{chat_id}",
    response_model=UserSession,
    summary="A user's session in a chat: last conversation, last activity, time zone",
    responses=responses(404, 422),
)
async def get_session(db: Db, user_id: UserId, chat_id: ChatId) -> UserSession:
    return await db.user_sessions.get(user_id, chat_id)


@router.put(
    "/users/{user_id}/sessions/{chat_id}",
    response_model=UserSession,
    summary="Record a user's activity in a chat now (created on the first; fields sent replace)",
    responses=responses(400, 404, 413, 422),
)
async def put_session(
    db: Db,
    user_id: UserId,
    chat_id: ChatId,
    data: Annotated[
        SessionPut,
        Body(openapi_examples=example("a time zone", {"timezone": "Europe/Moscow"})),
    ],
) -> UserSession:
    return await db.user_sessions.touch(
        user_id,
        chat_id,
        last_conversation_id=data.last_conversation_id,
        timezone=data.timezone,
        metadata=data.metadata,
    )


# -- operation templates ------------------------------------------------------------------------


@router.get(
    "/templates",
    response_model=Page[OperationTemplate],
    summary="Operation templates by operation type and name",
    responses=responses(422),
)
async def list_templates(
    db: Db,
    operation_type: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[OperationTemplate]:
    if operation_type is not None and "\x00" in operation_type:  # cannot be stored
        return Page(items=[])
    return await db.templates.list(operation_type=operation_type, limit=limit, cursor=cursor)


@router.post(
    "/templates",
    response_model=OperationTemplate,
    status_code=status.HTTP_201_CREATED,
    summary="Store an operation template (unique by operation type and name)",
    responses=responses(400, 409, 413, 422),
)
async def create_template(
    db: Db,
    data: Annotated[
        OperationTemplateCreate,
        Body(openapi_examples=example("an expense", _TEMPLATE_EXAMPLE)),
    ],
) -> OperationTemplate:
    return await db.templates.create(data)


@router.get(
    "/templates/{template_id}",
    response_model=OperationTemplate,
    summary="Get an operation template",
    responses=responses(404, 422),
)
async def get_template(db: Db, template_id: TemplateId) -> OperationTemplate:
    return await db.templates.get(template_id)


@router.patch(
    "/templates/{template_id}",
    response_model=OperationTemplate,
    summary="Change an operation template's fields sent",
    responses=responses(400, 404, 409, 413, 422),
)
async def update_template(
    db: Db,
    template_id: TemplateId,
    data: Annotated[
        OperationTemplateUpdate,
        Body(openapi_examples=example("a new sample", {"sample_input": "coffee, 300"})),
    ],
) -> OperationTemplate:
    return await db.templates.update(template_id, data)


@router.delete(
    "/templates/{template_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an operation template",
    responses=responses(404, 422),
)
async def delete_template(db: Db, template_id: TemplateId) -> Response:
    if not await db.templates.delete(template_id):
        raise NotFoundError(f"operation template {template_id} not found", field="template_id")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/templates/{template_id}/use",
    response_model=OperationTemplate,
    summary="Count one use of an operation template",
    responses=responses(404, 422),
)
async def use_template(db: Db, template_id: TemplateId) -> OperationTemplate:
    return await db.templates.record_use(template_id)
