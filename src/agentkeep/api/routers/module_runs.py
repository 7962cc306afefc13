"""``/api/v1/conversations/{id}/modules/{module}/run``: run an ON_DEMAND module when asked."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from agentkeep.api.deps import API_PREFIX, Chat, Db
from agentkeep.api.errors import ErrorResponse, error_response, responses
from agentkeep.errors import ValidationError
from agentkeep.managers.modules import (
    ModuleRun,
    check_runnable,
    find_module,
    run_module,
    transcript,
)
from agentkeep.managers.prompt import from_history, history_limits, trim
from agentkeep.providers.base import ProviderError

router = APIRouter(prefix=f"{API_PREFIX}/conversations", tags=["modules"])

ModuleRef = Annotated[
    str, Path(min_length=1, max_length=255, description="the module's id or name")
]


@router.post(
    "/{conversation_id}/modules/{module}/run",
    response_model=ModuleRun,
    summary="Run an ON_DEMAND module for a conversation",
    responses={
        **responses(404, 409, 422),
        502: {"model": ErrorResponse, "description": "The model provider failed"},
    },
)
async def run_conversation_module(
    conversation_id: uuid.UUID, module: ModuleRef, db: Db, chat: Chat
) -> ModuleRun | JSONResponse:
    """Run an active ON_DEMAND module with the conversation so far as its input.

    A module that requires AI inference gets one call to the conversation's agent's model (the
    module's content as instructions, the conversation's last messages as a transcript); the
    answer is returned and kept in the conversation's state under ``output``, scoped to the
    module. Any other module returns its content, and the run is recorded in the state under
    ``triggered`` (the latest message's id). 404 for an unknown conversation or module; 409 for a
    module that is not ON_DEMAND or not active; 422 when the module needs a model and the
    conversation has no agent; 502 when the model provider fails (nothing is kept).
    """
    conversation = await db.conversations.get(conversation_id)
    found = check_runnable(await find_module(db, module))
    instance, messages = None, 20
    if found.requires_ai_inference:
        if conversation.agent_id is None:
            raise ValidationError(
                f"module {found.name!r} asks the model, and this conversation has no agent; "
                "set its agent_id first",
                field="conversation_id",
            )
        instance = await chat.agents.ensure_agent_instance(conversation.agent_id)
        messages, _ = history_limits(instance.agent.model_settings)
    limit = min(max(messages, 1), chat.settings.max_page_size)
    page = await db.messages.list(conversation.id, limit=limit)
    history = trim(page.items, messages, None)
    try:
        return await run_module(
            db,
            chat.settings,
            found,
            conversation_id=conversation.id,
            instance=instance,
            conversation=transcript(from_history(history)),
            latest=page.items[-1].id if page.items else None,
        )
    except ProviderError as exc:  # the provider's fault, not the server's
        return error_response(502, exc.code, exc.message)
