"""Security headers on every response: what a browser may do with what this server sends.

Every response gets ``X-Content-Type-Options: nosniff``: a JSON body or a user's text is never
taken for a script or a page because of what it looks like.

The web UI's pages and files (everything outside ``/api`` and the documentation) also get a
Content-Security-Policy under which only the server's own files run and style the page: no inline
script, no inline style, no ``eval``, nothing from another site (``default-src 'none'``), fetch,
Server-Sent Events and WebSockets to this server only (``connect-src 'self'``, which covers
``ws:``/``wss:`` to the same host and port), and no framing by any site (``frame-ancestors
'none'``, and ``X-Frame-Options: DENY`` for browsers older than CSP 2). ``Referrer-Policy:
same-origin`` keeps page addresses, which carry ids, from other sites.

The OpenAPI pages (``/docs``, ``/redoc``) are FastAPI's: they load Swagger UI and ReDoc from this
server and start them with an inline script (and Swagger UI styles with inline styles), so they
get a policy of their own that allows exactly that, still nothing from another site, and no
framing.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NOSNIFF = ("X-Content-Type-Options", "nosniff")

UI_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)

DOCS_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "font-src 'self'",
        "img-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)

_FRAMING = [("X-Frame-Options", "DENY"), ("Referrer-Policy", "same-origin")]
API_HEADERS = [NOSNIFF]
UI_HEADERS = [NOSNIFF, ("Content-Security-Policy", UI_POLICY), *_FRAMING]
DOCS_HEADERS = [NOSNIFF, ("Content-Security-Policy", DOCS_POLICY), *_FRAMING]

API_PATHS = ("/api/",)
DOCS_PATHS = ("/docs", "/redoc")
"""FastAPI's documentation pages (``/docs/oauth2-redirect`` too)."""


def headers_for(path: str) -> list[tuple[str, str]]:
    """The headers a response to ``path`` carries."""
    if path.startswith(API_PATHS):
        return API_HEADERS
    if path.startswith(DOCS_PATHS):
        return DOCS_HEADERS
    return UI_HEADERS


class SecurityHeaders:
    """ASGI middleware adding :func:`headers_for` the path to every HTTP response (a header the
    response already has is left as it is). Streamed responses pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = headers_for(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
