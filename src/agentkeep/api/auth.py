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
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections.abc import Callable, Collection
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from agentkeep.config import Settings
from agentkeep.errors import AgentkeepError, UnauthorizedError
from agentkeep.repositories.api_keys import CACHE_TTL, digest
from agentkeep.repositories.base import Async
from agentkeep.repositories.facade import DatabaseManager

log = logging.getLogger("agentkeep.api")

bearer = HTTPBearer(auto_error=False, description="an API key made with `agentkeep keys create`")

TOUCH_INTERVAL = 60.0
"""Seconds between two records of the same key's ``last_used_at`` by one server."""


def _matches(given: str, known: Collection[str]) -> bool:
    found = False
    for candidate in known:  # no early exit: the time taken does not say which one matched
        found |= hmac.compare_digest(given, candidate)
    return found


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
        self._stored: frozenset[str] = frozenset()
        self._expires = -math.inf
        self._refreshing = anyio.Lock()
        self._touched: dict[str, float] = {}
        self._to_touch: set[str] = set()

    async def required(self) -> bool:
        """Whether a request without a valid key is refused: any key exists, or the server was
        told to insist (then revoking the last key closes the API instead of opening it)."""
        return self._always or bool(self._configured) or bool(await self._stored_hashes())

    async def accepts(self, key: str) -> bool:
        given = digest(key)
        if _matches(given, self._configured):
            return True
        if not _matches(given, await self._stored_hashes()):
            return False
        now = self._clock()
        if now - self._touched.get(given, -math.inf) >= TOUCH_INTERVAL:
            self._touched[given] = now
            self._to_touch.add(given)
        return True

    async def _stored_hashes(self) -> frozenset[str]:
        if self._db is None or self._clock() < self._expires:
            return self._stored
        async with self._refreshing:  # one refresh at a time; the others use its result
            if self._clock() >= self._expires:
                await self._record_use(self._db)
                self._stored = frozenset(await self._db.api_keys.active_hashes())
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
    keys: ApiKeys = request.app.state.api_keys
    if not await keys.required():
        return
    if credentials is None:
        raise UnauthorizedError("this server needs an API key: Authorization: Bearer <key>")
    if not await keys.accepts(credentials.credentials):
        raise UnauthorizedError("the API key is not valid")
