"""``/api/v1/config``: configuration as code over HTTP.

``POST /sync`` takes a project document (the file ``agentkeep config sync`` reads, as JSON) and
makes the store declare what it declares, by name, in one transaction; ``dry_run`` reports the
same without writing, ``prune`` also deletes what the document leaves out. ``GET /export`` answers
the store as a project document. Both need an API key as every ``/api/v1`` route does (all keys
have the same rights).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query

from agentkeep.api.auth import require_admin
from agentkeep.api.deps import API_PREFIX, Db, example
from agentkeep.api.errors import responses
from agentkeep.project import Project, SyncReport, export_project, sync_project
from agentkeep.project.model import check_project

router = APIRouter(prefix=f"{API_PREFIX}/config", tags=["config"])

SOURCE = "body"
"""How a validation error names the document (``body: agents[0].tools[1]: …``)."""

EXAMPLE = {
    "tools": [{"name": "lookup_rate", "parameters": {"type": "object"}}],
    "agents": [{"name": "bookkeeper", "provider": "echo", "tools": ["lookup_rate"]}],
}


@router.post(
    "/sync",
    response_model=SyncReport,
    summary="Sync a project document into the store (an admin key, when keys are on)",
    responses=responses(400, 403, 413, 422, 507),
    dependencies=[Depends(require_admin)],
)
async def sync(
    db: Db,
    project: Annotated[
        Project, Body(openapi_examples=example("a tool and an agent that calls it", EXAMPLE))
    ],
    dry_run: Annotated[bool, Query(description="report what would change, write nothing")] = False,
    prune: Annotated[bool, Query(description="delete what the document leaves out")] = False,
) -> SyncReport:
    """Create, update or (with `prune`) delete personas, modules, tools, agents and workflows so
    the store declares what the document does, by name, in one transaction: the report says
    what was created, updated, unchanged and deleted per kind. A bad entry or an unknown
    reference is a 422 naming its path (`agents[0].tools[1]`), and nothing is written."""
    check_project(project, SOURCE)
    return await db.run(
        lambda uow: sync_project(uow, project, prune=prune, dry_run=dry_run, source=SOURCE),
        "read" if dry_run else "write",
    )


@router.get(
    "/export",
    response_model=Project,
    response_model_exclude_defaults=True,
    response_model_by_alias=True,
    summary="Export the store as a project document (an admin key, when keys are on)",
    responses=responses(403),
    dependencies=[Depends(require_admin)],
)
async def export(db: Db) -> Project:
    """Every persona, module, tool, agent and workflow, by name, as a project document that
    `POST /api/v1/config/sync` (or `agentkeep config sync`) takes back unchanged."""
    return await db.run(export_project, "read")
