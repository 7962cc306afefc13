"""Who may see the pages and act through them: the same rule as the API, without the key.

When the server has no API keys (the default on loopback) every page is open, as every ``/api``
route is. When it has keys, the pages read the store on the server, so they must not show it to
anyone the API would refuse: a visitor signs in once with an API key at ``/login`` (checked with
:meth:`ApiKeys.accepts`).

The key is then forgotten. The browser keeps a session cookie (``HttpOnly``, ``SameSite=Strict``,
``Secure`` over HTTPS) that names the key by its digest and is signed with a secret that never
leaves the server process (:class:`agentkeep.api.auth.Sessions`). Every page and every API call
checks that the session is genuine, younger than ``SESSION_LIFETIME``, and that its key still
opens the API, so revoking the key with the CLI ends the session within the key cache's TTL. No
page ever holds the key: a script on the page (or anything that reads the page) cannot learn it,
and the cookie is out of script's reach. A server restart ends every session.

The API takes the cookie as a credential so that the page's script can call it; three defences
keep another site from using a visitor's session (cross-site request forgery):

- ``SameSite=Strict``: the browser sends the cookie on no request another site starts, including
  a WebSocket handshake;
- for every API request made with the cookie, ``Sec-Fetch-Site`` (when sent) must be
  ``same-origin`` and ``Origin`` (when sent) must be this server. This also covers other ports
  and sub-domains of the same host, which ``SameSite`` counts as the same site;
- every change (a method other than ``GET``/``HEAD``/``OPTIONS``) made with the cookie must carry
  ``X-CSRF-Token``: an HMAC of the session under the server's secret, handed to the page's script
  in ``<meta name="agentkeep-csrf">``. Another site can neither read it nor compute it, and it is
  worth nothing without the cookie.

A WebSocket opened with the cookie must send an ``Origin`` naming this server (browsers always
send one there; it cannot be forged by page script), which stops cross-site WebSocket hijacking.
The sign-in and sign-out forms refuse a foreign ``Origin`` too, so no site can sign a visitor
in with its own key or out of theirs. Requests with ``Authorization: Bearer`` are checked as
before, whatever cookie they carry: a browser never adds that header by itself.

"This server" is the one the ``Host`` header names: behind a reverse proxy, pass the visitor's
``Host`` on (nginx: ``proxy_set_header Host $host``), or the pages' changes are refused (403).
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from fastapi import Request, Response

from agentkeep.api.auth import SESSION_COOKIE, ApiKeys, same_origin

COOKIE = SESSION_COOKIE


class SignInRequiredError(Exception):
    """The server has API keys and the visitor has no valid session."""


async def page_token(request: Request) -> str | None:
    """The CSRF token the page's script sends with each change (``None`` when the server needs
    no key).

    Raises:
        SignInRequiredError: the server needs a key and the visitor's session is missing, expired,
            or its key no longer valid.
    """
    keys: ApiKeys = request.app.state.api_keys
    if not await keys.required():
        return None
    session = request.cookies.get(COOKIE, "")
    if session and await keys.accepts_session(session):
        return keys.sessions.csrf_token(session)
    raise SignInRequiredError


async def check_key(request: Request, key: str) -> bool:
    keys: ApiKeys = request.app.state.api_keys
    return bool(key) and await keys.accepts(key)


def from_this_site(request: Request) -> bool:
    """Whether a form was posted from this server's own pages (as far as the browser says)."""
    return same_origin(request.headers)


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
    """Open a session for ``key`` (already checked): the cookie holds the session, not the key."""
    keys: ApiKeys = request.app.state.api_keys
    response.set_cookie(
        COOKIE,
        keys.sessions.issue(key),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def forget(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")
