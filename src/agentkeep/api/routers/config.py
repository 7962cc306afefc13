"""``/api/v1/config``: configuration as code over HTTP.

``POST /sync`` takes a project document (the file ``agentkeep config sync`` reads, as JSON) and
makes the store declare what it declares, by name, in one transaction; ``dry_run`` reports the
same without writing, ``prune`` also deletes what the document leaves out. ``GET /export`` answers
the store as a project document. Both change or reveal the whole store at once: while API keys
are on, both need an admin key (403 with any other).

The document is refused as ``agentkeep config sync`` refuses a file, a key given twice in one
object included (JSON parsers keep the last silently, so the body is read a second time for it).
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request

from agentkeep.api.auth import require_admin
from agentkeep.api.deps import API_PREFIX, Db, example
from agentkeep.api.errors import responses
from agentkeep.errors import ValidationError
from agentkeep.project import Project, SyncReport, export_project, sync_project
from agentkeep.project.model import (
    KeyGivenTwiceError,
    unique_keys,
    validate_project,
)

router = APIRouter(prefix=f"{API_PREFIX}/config", tags=["config"])

SOURCE = "body"
"""How a validation error names the document (``body: agents[0].tools[1]: …``)."""

EXAMPLE = {
    "tools": [{"name": "lookup_rate", "parameters": {"type": "object"}}],
    "agents": [{"name": "bookkeeper", "provider": "echo", "tools": ["lookup_rate"]}],
}


async def checked_as_a_file(request: Request) -> None:
    """Refuse a document as a project file is refused: a key given twice in one object, and a
    bad entry named by its path as the CLI names it (``body: agents[0].name: …``, field
    ``agents[0].name``).

    Runs before the body is validated; a body that is not JSON at all is left to that."""
    try:
        document = json.loads(await request.body(), object_pairs_hook=unique_keys)
    except KeyGivenTwiceError as exc:
        raise ValidationError(f"{SOURCE}: {exc}", field=SOURCE) from None
    except (ValueError, RecursionError):
        return  # not JSON: the body's validation answers it
    validate_project(document, SOURCE)


@router.post(
    "/sync",
    response_model=SyncReport,
    summary="Sync a project document into the store (an admin key, when keys are on)",
    responses=responses(400, 403, 413, 422, 507),
    dependencies=[Depends(require_admin), Depends(checked_as_a_file)],
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
    reference is a 422 naming its path (`agents[0].tools[1]`), as is a key given twice in one
    object; nothing is written."""
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
