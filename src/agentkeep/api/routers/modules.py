"""``/api/v1/modules``: prompt modules, run when their trigger matches or, ON_DEMAND, when asked.

An ON_DEMAND module runs through ``POST /api/v1/conversations/{id}/modules/{module}/run`` or the
model's ``run_module`` tool (see ``managers.modules``). A module's ``script`` is refused: modules
never run code.
"""

from __future__ import annotations

from fastapi import APIRouter, Query

from agentkeep.api.deps import API_PREFIX, Cursor, Db, Limit
from agentkeep.api.errors import responses
from agentkeep.api.routers.named import Resource, add_crud_routes
from agentkeep.models.common import Page
from agentkeep.models.config import Module, ModuleCreate, ModuleUpdate
from agentkeep.models.enums import ExecutionContext

router = APIRouter(prefix=f"{API_PREFIX}/modules", tags=["modules"])


@router.get("", response_model=Page[Module], summary="List modules", responses=responses(422))
async def list_modules(
    db: Db,
    execution_context: ExecutionContext | None = None,
    type: str | None = Query(None, max_length=50, description="only modules of this type"),
    active: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Module]:
    return await db.modules.list(
        execution_context=execution_context, type=type, active=active, limit=limit, cursor=cursor
    )


add_crud_routes(
    router,
    Resource(
        noun="module",
        repository=lambda db: db.modules,
        item=Module,
        create=ModuleCreate,
        update=ModuleUpdate,
        example={
            "name": "refunds",
            "type": "instructions",
            "content": "Refunds are possible within 30 days of purchase.",
            "trigger_pattern": "(?i)refund|money back",
            "execution_context": "IMMEDIATE",
            "stage_priority": 10,
        },
    ),
)
