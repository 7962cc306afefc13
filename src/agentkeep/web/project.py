"""Config: the store as a project file, exported and imported from the browser.

The page itself only counts what the store declares; its script does the rest through the JSON
API, as every change the UI makes: **Export** downloads ``GET /api/v1/config/export``, and
**Import** reads a project file (JSON) the visitor picks, previews it with
``POST /api/v1/config/sync?dry_run=true`` (a table of what would be created, updated or deleted,
with the fields that differ), and syncs it only once the visitor confirms that preview. The API's
rules apply unchanged: a bad file is refused whole, with the path inside it named.
"""

from __future__ import annotations

from fastapi import Request

from agentkeep.project.model import KINDS
from agentkeep.repositories.facade import Unit
from agentkeep.web.site import Context, page, store


@page("/config", "config.html", nav="Config", order=80)
async def config_page(request: Request) -> Context:
    def count(uow: Unit) -> dict[str, int]:
        return {kind: getattr(uow, kind).count() for kind in KINDS}  # one snapshot

    return {"title": "Config", "counts": await store(request).run(count, "read")}
