"""The Memory page: what agents remember, searched, listed, added, re-weighed and forgotten.

``/memory`` without words lists the memories newest first, a page at a time, filtered by user,
agent and type; with words (``q``) it ranks them as an agent's recall would (``db.memory.recall``)
and shows each hit's score with its parts: similarity, keyword share, importance and recency.
A person looking is not an agent using a memory, so a search here counts no access.

The page changes nothing itself: its forms call the JSON API (``POST /api/v1/memories``,
``PATCH`` for importance, ``DELETE`` after a confirmation) through ``static/app.js``, with the
session's CSRF token as every page does (``web/access.py``).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from agentkeep.errors import ValidationError
from agentkeep.memory.embedders import EmbedderError, describe
from agentkeep.models.common import Name, Text, reason, to_uuid
from agentkeep.models.memory import MemoryHit
from agentkeep.repositories.base import Async
from agentkeep.repositories.facade import DatabaseManager
from agentkeep.web.site import Context, page, store

PAGE_SIZE = 50
RESULTS = 50
"""A search shows at most this many memories, best first."""

Filter = Annotated[str | None, Query(max_length=500)]
_NAME: TypeAdapter[str] = TypeAdapter(Name)
_TEXT: TypeAdapter[str] = TypeAdapter(Text)


@page("/memory", "memory.html", nav="Memory", order=38)
async def memory_page(
    request: Request,
    q: Filter = None,
    user_id: Filter = None,
    agent_id: Filter = None,
    memory_type: Filter = None,
    min_score: Filter = None,
    cursor: Annotated[str | None, Query(max_length=16_384)] = None,
) -> Context:
    db = store(request)
    filters: dict[str, Any] = {
        "user_id": _checked(_NAME, user_id, "user_id"),
        "agent_id": None if _given(agent_id) is None else to_uuid(agent_id, "agent_id"),
        "memory_type": _checked(_NAME, memory_type, "memory_type"),
    }
    query = _checked(_TEXT, q, "q")
    floor = _score(min_score)
    hits: list[MemoryHit] | None = None
    listed, next_cursor = [], None
    if query is not None:
        hits = await db.memory.recall(
            query, k=RESULTS, min_score=floor or 0.0, count_access=False, **filters
        )
    else:
        found = await db.memory.list(limit=PAGE_SIZE, cursor=cursor, **filters)
        listed, next_cursor = found.items, found.next_cursor
    agents = (await db.agents.list(limit=db.settings.max_page_size)).items
    return {
        "title": "Memory",
        "hits": hits,
        "memories": listed,
        "filters": {**filters, "q": query, "min_score": floor},
        "agents": agents,
        "agent_names": {a.id: a.name for a in agents},
        "embedder": embedder_line(db),
        "next_page": None if next_cursor is None else _next_page(request, next_cursor),
    }


def embedder_line(db: DatabaseManager[Async]) -> str:
    """The store's embedder in a few words, or why there is none (memories then cannot be
    added or searched until it is fixed)."""
    try:
        return describe(db.memory.embedder)
    except EmbedderError as exc:
        return f"unavailable: {exc.message}"


def _given(value: str | None) -> str | None:
    """A filter's value, ``None`` when the form left it blank."""
    return value.strip() or None if value is not None else None


def _checked(adapter: TypeAdapter[str], value: str | None, field: str) -> str | None:
    given = _given(value)
    if given is None:
        return None
    try:
        return adapter.validate_python(given)
    except PydanticValidationError as exc:
        raise ValidationError(f"{field}: {reason(exc.errors()[0])}", field=field) from None


def _score(value: str | None) -> float | None:
    given = _given(value)
    if given is None:
        return None
    try:
        score = float(given)
    except ValueError:
        score = -1.0
    if not 0.0 <= score <= 1.0:  # NaN too
        raise ValidationError("min_score must be a number from 0 to 1", field="min_score")
    return score


def _next_page(request: Request, cursor: str) -> str:
    """This page's address with its filters and the next page's cursor."""
    kept = {k: v for k, v in request.query_params.items() if k != "cursor" and v.strip()}
    return f"/memory?{urlencode({**kept, 'cursor': cursor})}"
