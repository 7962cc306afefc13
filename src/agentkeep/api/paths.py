"""Collections answer with and without a trailing slash: ``POST /api/v1/agents/`` is
``POST /api/v1/agents``.

Starlette would answer the slashed spelling with a 307 redirect, which many clients do not
follow for a POST (and which costs a round trip when they do). Every route is declared without
the slash, so the slash is dropped before routing; the path a client sent stays in ``raw_path``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class TrailingSlash:
    def __init__(self, app: ASGIApp, prefix: str = "/api/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path: str = scope["path"]
            if len(path) > len(self.prefix) and path.endswith("/") and path.startswith(self.prefix):
                scope = {**scope, "path": path.rstrip("/")}
        await self.app(scope, receive, send)
