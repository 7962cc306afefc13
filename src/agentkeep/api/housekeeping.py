"""What a server does on its own while it runs: delete the memories whose expiry has passed.

Expired memories are never recalled, searched or listed; the sweep frees their rows. It runs
when the server starts, then every ``AGENTKEEP_MEMORY_SWEEP_SECONDS`` (0: never). Several
servers on one store may all sweep: deleting what has expired twice deletes nothing the second
time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from agentkeep.repositories.base import Async
from agentkeep.repositories.facade import DatabaseManager

log = logging.getLogger(__name__)


@asynccontextmanager
async def expired_memories_swept(db: DatabaseManager[Async], every: float) -> AsyncIterator[None]:
    """Until the block ends, delete the expired memories at once and then every ``every``
    seconds (``0``: never). A failed sweep is logged, and the next one tries again."""
    if every <= 0:
        yield
        return
    async with anyio.create_task_group() as group:
        group.start_soon(_sweep_every, db, every)
        try:
            yield
        finally:
            group.cancel_scope.cancel()


async def _sweep_every(db: DatabaseManager[Async], every: float) -> None:
    while True:
        await sweep_logged(db)
        await anyio.sleep(every)


async def sweep_logged(db: DatabaseManager[Async]) -> int:
    """Delete the expired memories; how many (0 when the sweep failed: it is logged)."""
    try:
        swept = await db.memory.sweep_expired()
    except Exception:  # the store is away for a moment: the next sweep may pass
        log.warning("deleting expired memories failed", exc_info=True)
        return 0
    if swept:
        log.info("%d expired memories deleted", swept)
    return swept
