"""Health, metrics and totals: ``GET /health`` and ``GET /metrics`` (open, for load balancers and
Prometheus) and ``GET /api/v1/stats`` (behind the API key, like every ``/api`` route)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from agentkeep import __version__
from agentkeep.api.deps import API_PREFIX, Db
from agentkeep.api.errors import responses
from agentkeep.api.metrics import Metrics
from agentkeep.api.schemas import Health
from agentkeep.models.stats import Stats

open_router = APIRouter(tags=["system"])
router = APIRouter(prefix=API_PREFIX, tags=["system"])


@open_router.get(
    "/health",
    response_model=Health,
    summary="Database status, server version and the database's round-trip latency",
    responses={503: {"model": Health, "description": "The database cannot be reached"}},
)
async def health(db: Db) -> Any:
    report = await db.health()
    ok = report["status"] == "success"
    body = Health(status="ok" if ok else "unavailable", version=__version__, database=report)
    return body if ok else JSONResponse(body.model_dump(mode="json"), status_code=503)


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
    summary="Counts and usage: agents, conversations, messages, tokens, busiest agents and tools",
    responses=responses(503),
)
async def stats(db: Db) -> Stats:
    return await db.stats()
