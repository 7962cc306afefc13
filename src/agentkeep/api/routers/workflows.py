"""``/api/v1/workflows``: named sequences of steps."""

from __future__ import annotations

from fastapi import APIRouter

from agentkeep.api.deps import API_PREFIX, Cursor, Db, Limit
from agentkeep.api.errors import responses
from agentkeep.api.routers.named import Resource, add_crud_routes
from agentkeep.models.common import Page
from agentkeep.models.config import Workflow, WorkflowCreate, WorkflowUpdate

router = APIRouter(prefix=f"{API_PREFIX}/workflows", tags=["workflows"])


@router.get("", response_model=Page[Workflow], summary="List workflows", responses=responses(422))
async def list_workflows(db: Db, limit: Limit = 50, cursor: Cursor = None) -> Page[Workflow]:
    return await db.workflows.list(limit=limit, cursor=cursor)


add_crud_routes(
    router,
    Resource(
        noun="workflow",
        repository=lambda db: db.workflows,
        item=Workflow,
        create=WorkflowCreate,
        update=WorkflowUpdate,
        example={
            "name": "triage-then-answer",
            "description": "Classify the request, then hand it to the right agent",
            "steps": ["triage", "support"],
        },
    ),
)
