"""Paths before routing.

Collections answer with and without a trailing slash: ``POST /api/v1/agents/`` is
``POST /api/v1/agents``.

Starlette would answer the slashed spelling with a 307 redirect, which many clients do not
follow for a POST (and which costs a round trip when they do). Every route is declared without
the slash, so the slash is dropped before routing; the path a client sent stays in ``raw_path``.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qsl, unquote_to_bytes

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from agentkeep.api.errors import error_response


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


class PathChecks:
    """Three answers given before routing, for requests the router would misread.

    - A path whose percent-decoding is not UTF-8 (``/users/%ED%A0%80``) is a 422 naming
      ``path``: the server decodes it with U+FFFD in place of each bad byte, so two different
      ids would become one.
    - A method sent to an action's own path that it does not take (``GET
      /api/v1/conversations/start``) is a 405 with ``Allow``: otherwise a route with a
      parameter at that place (``GET /api/v1/conversations/{id}``) would take it and refuse
      ``start`` as an id.
    - A query parameter given twice (``?user_id=a&user_id=b``) is a 422 naming it: every
      parameter of the API takes one value, and the router would silently keep the last.
    """

    def __init__(self, app: ASGIApp, routers: Sequence[APIRouter]) -> None:
        self.app = app
        self.routers = routers
        self._methods: dict[str, frozenset[str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        raw: bytes | None = scope.get("raw_path")
        if raw is not None and not _utf8_path(raw):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            response = error_response(
                422, "validation_error", "path: the path is not UTF-8 once percent-decoded", "path"
            )
            await response(scope, receive, send)
            return
        if scope["type"] == "http":
            twice = _repeated_parameter(scope)
            if twice is not None:
                response = error_response(
                    422,
                    "validation_error",
                    f"{twice}: given more than once; send it once",
                    twice,
                )
                await response(scope, receive, send)
                return
            allowed = self._literal_paths().get(scope["path"])
            if allowed is not None and scope["method"] not in allowed:
                methods = ", ".join(sorted(allowed))
                response = error_response(
                    405, "method_not_allowed", "Method Not Allowed", Allow=methods
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _literal_paths(self) -> dict[str, frozenset[str]]:
        """Each documented path without a parameter and the methods it takes, read once from
        the routers' routes (each holds its whole path; all are added before the first
        request)."""
        if self._methods is None:
            methods: dict[str, set[str]] = {}
            for router in self.routers:
                for route in router.routes:
                    if (
                        isinstance(route, APIRoute)
                        and route.include_in_schema
                        and "{" not in route.path
                    ):
                        methods.setdefault(route.path, set()).update(route.methods or ())
            self._methods = {path: frozenset(taken) for path, taken in methods.items()}
        return self._methods


def _utf8_path(raw: bytes) -> bool:
    """Whether a raw path (its query string left out) is UTF-8 once percent-decoded; a plain
    ASCII path with no escape, as most are, is at once."""
    path = raw.split(b"?", 1)[0]
    if b"%" not in path and path.isascii():
        return True
    try:
        unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _repeated_parameter(scope: Scope) -> str | None:
    """The first query parameter of an API request named more than once, if any (most queries
    have a single parameter, or none, and are passed at once)."""
    query: bytes = scope.get("query_string", b"")
    if b"&" not in query or not scope["path"].startswith("/api/"):
        return None
    seen: set[str] = set()
    for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return name
        seen.add(name)
    return None
