"""FastAPI dependencies: the store, paging parameters and the API-key check.

``get_db`` is the store dependency. The store needs nothing opened or closed per request:
every operation checks a pooled connection out and returns it before it returns (the pool stays
whole however a request ends, including on errors and client disconnects), so no connection is
held while a handler waits on anything else.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from fastapi.openapi.models import Example

from agentkeep.managers.chat import ChatRuntime
from agentkeep.repositories.base import Async
from agentkeep.repositories.facade import DatabaseManager

API_PREFIX = "/api/v1"
"""Where every resource route lives (each router spells it, so metrics see whole templates)."""


async def get_db(request: Request) -> DatabaseManager[Async]:
    db: DatabaseManager[Async] = request.app.state.db
    return db


async def get_chat(request: Request) -> ChatRuntime:
    chat: ChatRuntime = request.app.state.chat
    return chat


Db = Annotated[DatabaseManager[Async], Depends(get_db)]
Chat = Annotated[ChatRuntime, Depends(get_chat)]

Limit = Annotated[
    int,
    Query(
        ge=1,
        description="page size: 1 to the server's `AGENTKEEP_MAX_PAGE_SIZE` (500 by default)",
    ),
]
Cursor = Annotated[
    str | None,
    Query(max_length=16_384, description="`next_cursor` of the previous page"),
]

F = TypeVar("F", bound=Callable[..., Any])


def with_types(endpoint: F, **annotations: Any) -> F:
    """Give a generic endpoint its concrete parameter types, which FastAPI reads from the
    signature to validate the request and document it (a router factory cannot spell them)."""
    signature = inspect.signature(endpoint, eval_str=True)
    parameters = [
        p.replace(annotation=annotations.get(p.name, p.annotation))
        for p in signature.parameters.values()
    ]
    endpoint.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return endpoint


def example(summary: str, value: Any) -> dict[str, Example]:
    """An OpenAPI request example, as ``Body(openapi_examples=...)`` takes it."""
    return {"default": Example(summary=summary, value=value)}
