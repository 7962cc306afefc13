"""``/api/v1/conversations/{id}/data`` and ``/questions``: what a chat bot's agent collects.

The structured data an agent gathers (``partial`` / ``complete`` / ``missing_fields`` snapshots,
newest first) and the questions it asks (a user's reply to the question's message answers it;
one can also be answered here, once). Each write is one unit of work. The conversation's
lifecycle and context are in ``flows``.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Body, Path, status

from agentkeep.api.deps import Cursor, Db, Limit, example
from agentkeep.api.errors import responses
from agentkeep.api.routers.flows import ConversationId, router_for
from agentkeep.errors import NotFoundError
from agentkeep.models.common import Page
from agentkeep.models.conversation_flow import (
    AgentAnswer,
    AgentQuestion,
    AgentQuestionCreate,
    ConversationData,
    ConversationDataCreate,
)
from agentkeep.models.enums import DataType
from agentkeep.repositories.facade import Unit

router = router_for()

QuestionId = Annotated[uuid.UUID, Path(description="the question's id")]


# -- structured data ----------------------------------------------------------------------------


@router.post(
    "/{conversation_id}/data",
    response_model=ConversationData,
    status_code=status.HTTP_201_CREATED,
    summary="Store a snapshot of the data collected: partial, complete or missing_fields",
    responses=responses(400, 404, 413, 422),
)
async def add_data(
    db: Db,
    conversation_id: ConversationId,
    data: Annotated[
        ConversationDataCreate,
        Body(
            openapi_examples=example(
                "what the agent understood so far",
                {"data_type": "partial", "content": {"amount": 300, "item": "coffee"}},
            )
        ),
    ],
) -> ConversationData:
    return await db.conversation_data.add(conversation_id, data.data_type, data.content)


@router.get(
    "/{conversation_id}/data",
    response_model=Page[ConversationData],
    summary="The conversation's data snapshots, newest first",
    responses=responses(404, 422),
)
async def list_data(
    db: Db,
    conversation_id: ConversationId,
    data_type: DataType | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ConversationData]:
    page = await db.conversation_data.list(
        conversation_id, data_type=data_type, limit=limit, cursor=cursor
    )
    if not page.items:
        await db.conversations.get(conversation_id)
    return page


@router.get(
    "/{conversation_id}/data/{data_type}",
    response_model=ConversationData,
    summary="The latest snapshot of one data type",
    responses=responses(404, 422),
)
async def latest_data(
    db: Db, conversation_id: ConversationId, data_type: DataType
) -> ConversationData:
    found = await db.conversation_data.latest(conversation_id, data_type)
    if found is None:
        await db.conversations.get(conversation_id)
        raise NotFoundError(f"the conversation has no {data_type.value} data", field="data_type")
    return found


# -- questions ----------------------------------------------------------------------------------


@router.post(
    "/{conversation_id}/questions",
    response_model=AgentQuestion,
    status_code=status.HTTP_201_CREATED,
    summary="Record a question an agent asked (a user's reply to its message answers it)",
    responses=responses(400, 404, 413, 422),
)
async def ask(
    db: Db,
    conversation_id: ConversationId,
    data: Annotated[
        AgentQuestionCreate,
        Body(
            openapi_examples=example(
                "which account?",
                {
                    "agent_name": "ExpenseAgent",
                    "question": "From which account?",
                    "missing_fields": ["account", "category"],
                    "message_id": 102,
                },
            )
        ),
    ],
) -> AgentQuestion:
    return await db.questions.ask(
        conversation_id,
        data.agent_name,
        data.question,
        missing_fields=data.missing_fields,
        message_id=data.message_id,
    )


@router.post(
    "/{conversation_id}/questions/{question_id}/answer",
    response_model=AgentQuestion,
    summary="Record the answer to a question (once: a second answer is a conflict)",
    responses=responses(400, 404, 409, 413, 422),
)
async def answer(
    db: Db,
    conversation_id: ConversationId,
    question_id: QuestionId,
    data: Annotated[AgentAnswer, Body(openapi_examples=example("an answer", {"answer": "cash"}))],
) -> AgentQuestion:
    def work(uow: Unit) -> AgentQuestion:
        question = uow.questions.get(question_id)
        if question.conversation_id != conversation_id:
            raise NotFoundError(
                f"question {question_id} is not one of this conversation's", field="question_id"
            )
        return uow.questions.answer(question_id, data.answer, answered_at=data.answered_at)

    return await db.run(work)


@router.get(
    "/{conversation_id}/questions",
    response_model=Page[AgentQuestion],
    summary="The conversation's questions, newest first (pending=true: the unanswered ones)",
    responses=responses(404, 422),
)
async def list_questions(
    db: Db,
    conversation_id: ConversationId,
    pending: bool = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[AgentQuestion]:
    page = await db.questions.list(conversation_id, pending=pending, limit=limit, cursor=cursor)
    if not page.items:
        await db.conversations.get(conversation_id)
    return page
