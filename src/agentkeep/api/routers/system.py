"""Health, metrics and totals: ``GET /health`` and ``GET /metrics`` (open, for load balancers and
Prometheus) and ``GET /api/v1/stats`` (behind the API key, like every ``/api`` route).

``/health`` tells anyone whether the database answers and how fast; where the database is and
which versions run are details for a caller the API would let in (``api/auth.py``): one with a
valid key, or anyone while the server has no keys. A missing or wrong key is not refused there:
the caller gets the short answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from agentkeep import __version__
from agentkeep.api.auth import ApiKeys, bearer
from agentkeep.api.deps import API_PREFIX, Db
from agentkeep.api.errors import responses
from agentkeep.api.metrics import Metrics
from agentkeep.api.schemas import Health
from agentkeep.errors import AgentkeepError
from agentkeep.models.stats import Stats

open_router = APIRouter(tags=["system"])
router = APIRouter(prefix=API_PREFIX, tags=["system"])


_HEALTH: dict[str, Any] = {
    "response_model": Health,
    "response_model_exclude_none": True,
    "summary": "Database status and round-trip latency; versions and location with an API key",
    "description": "Open to all, for load balancers: `status` and `latency_ms`. A caller with a "
    "valid API key (anyone, while the server has no keys) also gets `version` and `database` "
    "(backend, location with the password masked, database version). A missing or wrong key is "
    "not refused: it gets the short answer. `HEAD` (what many load balancers send) answers the "
    "same without the body.",
    "responses": {503: {"model": Health, "description": "The database cannot be reached"}},
}


@open_router.head("/health", operation_id="health_health_head", **_HEALTH)
@open_router.get("/health", **_HEALTH)
async def health(request: Request, db: Db) -> Any:
    report = await db.health()
    ok = report["status"] == "success"
    body = Health(status="ok" if ok else "unavailable", latency_ms=report["latency_ms"])
    if await _may_see_details(request):
        body = body.model_copy(update={"version": __version__, "database": report})
    if ok:
        return body
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=503)


async def _may_see_details(request: Request) -> bool:
    """Whether the API would let this caller in (without refusing the ones it would not).

    The key is read here, not declared as a dependency: the route does not require one, and the
    OpenAPI schema would otherwise say it does.
    """
    keys: ApiKeys = request.app.state.api_keys
    credentials = await bearer(request)
    try:
        if not await keys.required():
            return True
        return credentials is not None and await keys.accepts(credentials.credentials)
    except AgentkeepError:  # the stored keys cannot be read: nothing proves the caller may see more
        return False


@open_router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    return registry.response()


@router.get(
    "/stats",
    response_model=Stats,
    summary="Counts and usage: agents, conversations, messages, memories, tokens, busiest agents "
    "and tools",
    responses=responses(503),
)
async def stats(db: Db) -> Stats:
    return await db.stats()
