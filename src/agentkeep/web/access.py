"""Who may see the pages: the same rule as the API.

When the server has no API keys (the default on loopback) every page is open, as every ``/api``
route is. When it has keys, the pages read the store on the server, so they must not show it to
anyone the API would refuse: a visitor signs in once with an API key (the form at ``/login``,
checked with :meth:`ApiKeys.accepts`, so a key revoked with the CLI stops working here too), which
is kept in an ``HttpOnly``, ``SameSite=Strict`` cookie. Pages hand the key to their script in a
``<meta>`` tag, and the script sends it as ``Authorization: Bearer`` on the API calls that make
every change; the API itself never reads the cookie, so no other site can make it act for the
visitor.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from fastapi import Request, Response

from agentkeep.api.auth import ApiKeys

COOKIE = "agentkeep_key"


class SignInRequiredError(Exception):
    """The server has API keys and the visitor has not signed in with a valid one."""


async def page_key(request: Request) -> str | None:
    """The API key the page's script should send (``None`` when the server needs none).

    Raises:
        SignInRequiredError: the server needs a key and the visitor's is missing or no longer valid.
    """
    keys: ApiKeys = request.app.state.api_keys
    if not await keys.required():
        return None
    key = request.cookies.get(COOKIE, "")
    if key and await keys.accepts(key):
        return key
    raise SignInRequiredError


async def check_key(request: Request, key: str) -> bool:
    keys: ApiKeys = request.app.state.api_keys
    return bool(key) and await keys.accepts(key)


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(target, safe='')}"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return "/"
    return target


def remember(response: Response, request: Request, key: str) -> None:
    response.set_cookie(
        COOKIE,
        key,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def forget(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")
