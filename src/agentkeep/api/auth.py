"""API keys: when any exist, every ``/api`` route needs ``Authorization: Bearer <key>``.

Keys come from two places, and either opens the API:

- ``AGENTKEEP_API_KEYS`` (comma-separated), fixed for the life of the process;
- the store's ``api_keys`` table, managed with ``agentkeep keys create|list|revoke`` (only
  SHA-256 digests are stored: ``repositories/api_keys.py``).

Stored keys are read through the store and cached in memory for ``ttl`` seconds (5 by default), so
a request does not pay a query each time; a key created or revoked with the CLI while the server
runs takes effect within that time. Every instance re-reads the table on its own, so several API
processes over one PostgreSQL agree within the same bound, with no message passing between them.
If the store cannot be read when the cache is due, the request fails (503 when the database is
unreachable) rather than letting anyone in on a stale or empty list.

Keys are compared by their digest with ``hmac.compare_digest`` against every known digest, so how
long a check takes does not depend on where (or whether) a key matches. When a stored key is
accepted its ``last_used_at`` is recorded, but at most once a minute per key, in one batched
``UPDATE`` made with the next cache refresh: requests do not write, only the one that refreshes the
cache may wait for that single statement (and a failure there is logged, not answered).

The web UI does not hold a key: signing in at ``/login`` gives the browser a session cookie
(:class:`Sessions`) that names the key by its digest and is signed with a secret of this server.
The API takes that cookie in place of ``Authorization`` only under the rules that keep another
site from using it (:func:`require_api_key`, :func:`socket_authorised`); ``web/access.py`` says
why each rule is there. A Bearer key is checked exactly as before, cookie or not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import secrets
import time
from collections.abc import Callable, Collection
from typing import Annotated
from urllib.parse import urlsplit

import anyio
from fastapi import Depends, HTTPException, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers

from agentkeep.api.query import known_query_only
from agentkeep.config import Settings
from agentkeep.errors import AgentkeepError, ForbiddenError, UnauthorizedError
from agentkeep.repositories.api_keys import CACHE_TTL, digest
from agentkeep.repositories.base import Async
from agentkeep.repositories.facade import DatabaseManager

log = logging.getLogger("agentkeep.api")

bearer = HTTPBearer(auto_error=False, description="an API key made with `agentkeep keys create`")

TOUCH_INTERVAL = 60.0
"""Seconds between two records of the same key's ``last_used_at`` by one server."""

SESSION_COOKIE = "agentkeep_session"
SESSION_LIFETIME = 12 * 3600.0
"""Seconds a sign-in lasts; then the visitor signs in again."""
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _matches(given: str, known: Collection[str]) -> bool:
    found = False
    for candidate in known:  # no early exit: the time taken does not say which one matched
        found |= hmac.compare_digest(given, candidate)
    return found


class Sessions:
    """Sign-in sessions of the web UI: ``issued.digest.signature``, never the key itself.

    The value names the key it was opened with by its SHA-256 digest, so every request can ask
    :meth:`ApiKeys.accepts_session` whether that key still opens the API (a revoked key ends its
    sessions). The signing secret is made when the server starts and never leaves the process:
    a restart ends every session (visitors sign in again), and nobody can make a session without
    it, not even with a key's digest (which the store holds).
    """

    def __init__(
        self,
        *,
        secret: bytes | None = None,
        lifetime: float = SESSION_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self.lifetime = lifetime
        self._clock = clock

    def issue(self, key: str) -> str:
        """A session for ``key`` (which the caller has checked), as the cookie's value."""
        body = f"{int(self._clock())}.{digest(key)}"
        return f"{body}.{self._sign('session', body)}"

    def key_digest(self, session: str) -> str | None:
        """The digest of the key ``session`` was opened with; ``None`` if it is not one this
        server signed or it has expired."""
        body, _, signature = session.rpartition(".")
        if not hmac.compare_digest(signature.encode(), self._sign("session", body).encode()):
            return None
        issued, _, key_digest = body.partition(".")  # signed by us: well formed
        return key_digest if self._clock() - int(issued) < self.lifetime else None

    def csrf_token(self, session: str) -> str:
        """The token a page's script sends with each change it makes (``X-CSRF-Token``)."""
        return self._sign("csrf", session)

    def csrf_matches(self, session: str, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.csrf_token(session).encode())

    def _sign(self, purpose: str, value: str) -> str:
        mac = hmac.new(self._secret, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


class ApiKeys:
    """Which keys open the API: the configured ones and the store's active ones."""

    def __init__(
        self,
        settings: Settings,
        db: DatabaseManager[Async] | None = None,
        *,
        ttl: float = CACHE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._configured = frozenset(digest(k.get_secret_value()) for k in settings.api_keys)
        self._always = settings.require_api_keys
        self._db = db
        self.ttl = ttl
        self._clock = clock
        self._stored: dict[str, bool] = {}
        """Each stored active key's digest, and whether it is an admin key."""
        self._expires = -math.inf
        self._refreshing = anyio.Lock()
        self._touched: dict[str, float] = {}
        self._to_touch: set[str] = set()
        self.sessions = Sessions()

    async def required(self) -> bool:
        """Whether a request without a valid key is refused: any key exists, or the server was
        told to insist (then revoking the last key closes the API instead of opening it)."""
        return self._always or bool(self._configured) or bool(await self._stored_keys())

    async def accepts(self, key: str) -> bool:
        return await self._accepts_digest(digest(key))

    async def accepts_session(self, session: str) -> bool:
        """Whether a sign-in session is genuine, current, and its key still opens the API."""
        key_digest = self.sessions.key_digest(session)
        return key_digest is not None and await self._accepts_digest(key_digest)

    async def is_admin(self, given: str) -> bool:
        """Whether the key with digest ``given`` is an admin key (a configured key is)."""
        if _matches(given, self._configured):
            return True
        stored = await self._stored_keys()
        return _matches(given, frozenset(key for key, admin in stored.items() if admin))

    async def _accepts_digest(self, given: str) -> bool:
        if _matches(given, self._configured):
            return True
        if not _matches(given, frozenset(await self._stored_keys())):
            return False
        now = self._clock()
        if now - self._touched.get(given, -math.inf) >= TOUCH_INTERVAL:
            self._touched[given] = now
            self._to_touch.add(given)
        return True

    async def _stored_keys(self) -> dict[str, bool]:
        if self._db is None or self._clock() < self._expires:
            return self._stored
        async with self._refreshing:  # one refresh at a time; the others use its result
            if self._clock() >= self._expires:
                await self._record_use(self._db)
                self._stored = await self._db.api_keys.active()
                self._expires = self._clock() + self.ttl
        return self._stored

    async def _record_use(self, db: DatabaseManager[Async]) -> None:
        used, self._to_touch = self._to_touch, set()
        if not used:
            return
        try:
            await db.api_keys.touch(used)
        except AgentkeepError as exc:  # bookkeeping: never the reason a request fails
            log.warning("could not record when API keys were last used: %s", exc.message)


async def require_api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Let a request through with a valid Bearer key, or with the web UI's sign-in cookie sent
    from this server's own pages (and, for a change, the page's CSRF token)."""
    keys: ApiKeys = request.app.state.api_keys
    if not await keys.required():
        return
    if credentials is not None:
        if not await keys.accepts(credentials.credentials):
            raise UnauthorizedError("the API key is not valid")
        request.state.api_key_digest = digest(credentials.credentials)
        return
    session = request.cookies.get(SESSION_COOKIE)
    if session is None:
        raise UnauthorizedError("this server needs an API key: Authorization: Bearer <key>")
    if not await keys.accepts_session(session):
        raise UnauthorizedError("the sign-in has expired or its API key was revoked: sign in again")
    request.state.api_key_digest = keys.sessions.key_digest(session)
    if not same_origin(request.headers):
        raise HTTPException(403, "a request with the sign-in cookie must come from this server")
    if request.method in SAFE_METHODS:
        return
    token = request.headers.get(CSRF_HEADER, "")
    if not token or not keys.sessions.csrf_matches(session, token):
        raise HTTPException(403, f"a change made with the sign-in cookie needs {CSRF_HEADER}")


async def guard(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Every ``/api`` route's one dependency: :func:`require_api_key`, then
    :func:`~agentkeep.api.query.known_query_only` (one dependency for FastAPI to solve per
    request, not two)."""
    await require_api_key(request, credentials)
    await known_query_only(request)


MAKE_ADMIN_KEY = "agentkeep keys create --name NAME --admin"
"""The command that makes an admin key, as the 403 suggests it."""
ADMIN_KEY_NEEDED = f"this needs an admin API key (make one with: {MAKE_ADMIN_KEY})"


async def require_admin(request: Request) -> None:
    """Let a request through only with an admin key, when keys are on (after
    :func:`require_api_key`): what changes the whole store at once needs one."""
    keys: ApiKeys = request.app.state.api_keys
    if not await keys.required():
        return
    given: str | None = getattr(request.state, "api_key_digest", None)
    if given is None or not await keys.is_admin(given):
        raise ForbiddenError(ADMIN_KEY_NEEDED)


async def socket_authorised(socket: WebSocket) -> bool:
    """Whether a WebSocket may open: with a key, as an ``/api`` request (a browser cannot set
    headers on a WebSocket, so ``?api_key=`` is taken too), or with the sign-in cookie when its
    ``Origin`` is this server (a browser always sends it there: another site cannot open one in
    the visitor's name)."""
    keys: ApiKeys = socket.app.state.api_keys
    if not await keys.required():
        return True
    header = socket.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    key = credential if scheme.lower() == "bearer" else socket.query_params.get("api_key")
    if key:
        return await keys.accepts(key)
    session = socket.cookies.get(SESSION_COOKIE)
    if session is None or not same_origin(socket.headers, origin_required=True):
        return False
    return await keys.accepts_session(session)


def same_origin(headers: Headers, *, origin_required: bool = False) -> bool:
    """Whether what the browser says of a request's source (``Sec-Fetch-Site``, ``Origin``)
    names this server; a header the client did not send says nothing, unless required."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in {"same-origin", "none"}:
        return False
    origin = headers.get("origin")
    if origin is None:
        return not origin_required
    return _is_host(origin, headers.get("host", ""))


def _is_host(origin: str, host: str) -> bool:
    """Whether ``origin`` (``scheme://host[:port]``) is the server the ``Host`` header names.

    The scheme is not compared: behind a TLS proxy the page is ``https`` and the server ``http``.
    """
    try:
        source, target = urlsplit(origin), urlsplit(f"//{host}")
        default = _DEFAULT_PORTS.get(source.scheme)
        if default is None or not source.hostname or source.path or source.query:
            return False
        return (source.hostname, source.port or default) == (
            target.hostname,
            target.port or default,
        )
    except ValueError:  # a port that is no number
        return False
