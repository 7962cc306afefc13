"""``create_app(settings)``: the HTTP API over one store.

Routes live under ``/api/v1`` (behind API keys when any are configured); ``/health`` and
``/metrics`` stay open; ``/docs`` and ``/redoc`` serve the OpenAPI documentation, with their
scripts from this server (they work offline). The store is opened when the
app starts, migrated first unless ``AGENTKEEP_AUTO_MIGRATE=false``, filled from the project file
``AGENTKEEP_CONFIG_FILE`` names (if any), and closed when it stops; meanwhile the server deletes
expired memories (``api.housekeeping``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi_offline import FastAPIOffline

from agentkeep import __version__
from agentkeep.api.auth import ApiKeys, guard
from agentkeep.api.errors import install_error_handlers, responses
from agentkeep.api.headers import SecurityHeaders
from agentkeep.api.housekeeping import expired_memories_swept
from agentkeep.api.limits import BodyLimits
from agentkeep.api.metrics import Metrics, MetricsMiddleware
from agentkeep.api.paths import PathChecks, TrailingSlash
from agentkeep.api.routers import (
    agents,
    chat_users,
    config,
    conversations,
    flow_data,
    flows,
    memories,
    module_runs,
    modules,
    personas,
    streaming,
    system,
    tools,
    workflows,
)
from agentkeep.config import Settings
from agentkeep.managers.agents import AgentManager
from agentkeep.managers.chat import ChatRuntime
from agentkeep.project import sync_file
from agentkeep.providers import close_providers
from agentkeep.repositories.base import in_worker_thread
from agentkeep.repositories.facade import connect
from agentkeep.web import mount_web

DESCRIPTION = """\
The persistence and memory backbone for AI-agent applications: agents, personas, modules, tools,
workflows, conversations, messages, conversation state and long-term memories, on SQLite or
PostgreSQL.

Every failure answers `{"error": {"code", "message", "field"?}}`. Lists are keyset-paginated:
pass a page's `next_cursor` back as `cursor`. When the server has API keys, send
`Authorization: Bearer <key>` to every `/api` route.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for ``settings`` (read from the environment when not given)."""
    settings = settings or Settings()
    backend = "memory" if settings.url is None else settings.url.get_backend_name()
    metrics = Metrics(__version__, backend)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = await in_worker_thread(connect, settings)
        if settings.config_file is not None:  # e.g. the in-memory store's only content
            try:
                await sync_file(db, settings.config_file)
            except BaseException:
                await db.aclose()
                raise
        metrics.watch_pool(db.service)
        app.state.db = db
        app.state.api_keys = ApiKeys(settings, db)
        app.state.agents = manager = AgentManager(db, settings)
        app.state.chat = chat = ChatRuntime(db, manager, settings)
        try:
            # replies a stopped server left streaming are marked error now, then periodically;
            # so are expired memories deleted
            async with (
                chat.running(),
                expired_memories_swept(db, settings.memory_sweep_seconds),
            ):
                yield
        finally:
            chat.close()
            manager.close()
            await close_providers(settings)
            await db.aclose()

    # the API docs' pages (/docs, /redoc) load their scripts from this server, not a CDN: they
    # work offline and behind a firewall
    app = FastAPIOffline(
        title="agentkeep",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_error_handlers(app)
    routers: list[APIRouter] = [app.router]  # the API's own routers are added below
    app.add_middleware(PathChecks, routers=routers)
    app.add_middleware(BodyLimits, limit=settings.max_request_bytes, timeout=settings.body_timeout)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(TrailingSlash)
    app.add_middleware(SecurityHeaders)  # outermost: refusals get them too

    keyed = [Depends(guard)]
    failures = responses(401, 503)
    # the hot paths first: FastAPI tries routes in order, so matching them checks fewer routes;
    # flows before conversations, whose /conversations/{id} would take /conversations/by-reply
    conversations.add_message_routes(app.router, dependencies=keyed, responses=failures)
    resources = (
        flows,
        flow_data,
        conversations,
        streaming,
        memories,
        agents,
        personas,
        modules,
        module_runs,
        tools,
        workflows,
        chat_users,
        config,
        system,
    )
    included = [module.router for module in resources]
    for router in included:
        app.include_router(router, dependencies=keyed, responses=failures)
    app.include_router(streaming.socket_router)
    app.include_router(system.open_router)
    routers += [*included, system.open_router]
    mount_web(app)  # the web UI: pages at /, /agents, /chat, /tools; files at /static
    document_limits(app, settings)
    return app


def document_limits(app: FastAPI, settings: Settings) -> None:
    """State this server's page-size limit in the OpenAPI schema (it is a setting, so the
    routers, made once per process, cannot spell it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()  # FastAPI keeps it in app.openapi_schema: this runs once
        for operation in (op for path in schema["paths"].values() for op in path.values()):
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "limit" and parameter["in"] == "query":
                    parameter["schema"]["maximum"] = settings.max_page_size
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
