"""Unknown query parameters on reads are refused, not ignored.

A list that ignored a misspelt or unsupported filter (``GET /conversations?reply_to_message_id=…``)
would answer with everything, which a client cannot tell from a filtered answer; a lookup that
ignored one would answer another question than the one asked. So every ``GET`` route refuses a
query parameter it does not declare with a 422 naming it. What a route declares is read from its
signature (its dependencies' included), as FastAPI reads it, once per route, and only when a
request has a query.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from agentkeep.errors import ValidationError


async def known_query_only(request: Request) -> None:
    """Refuse a read with a query parameter its route does not take."""
    route = request.scope.get("route")
    if not request.scope.get("query_string") or not isinstance(route, APIRoute):
        return
    if _KNOWN in route.__dict__:
        known: frozenset[str] | None = route.__dict__[_KNOWN]
    else:
        known = _known_query(route)
        setattr(route, _KNOWN, known)  # routes do not change once the app is built
    if known is None:
        return
    for name in request.query_params:
        if name not in known:
            takes = ", ".join(sorted(known)) or "none"
            raise ValidationError(
                f"unknown query parameter {name!r} (this route takes: {takes})", field=name
            )


_KNOWN = "_agentkeep_known_query"
"""The route attribute keeping what :func:`_known_query` says of it."""


def _known_query(route: APIRoute) -> frozenset[str] | None:
    """The query parameters of a read; ``None`` for a write (its body says what it does)."""
    if not route.methods or "GET" not in route.methods:
        return None
    return frozenset(_query_names(route.dependant))


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for inner in dependant.dependencies:
        names |= _query_names(inner)
    return names
