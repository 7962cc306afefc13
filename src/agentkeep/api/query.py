"""Unknown query parameters on list routes are refused, not ignored.

A list that ignored a misspelt or unsupported filter (``GET /conversations?reply_to_message_id=…``)
would answer with everything, which a client cannot tell from a filtered answer. So every route
answering a :class:`~agentkeep.models.common.Page` refuses a query parameter it does not declare
with a 422 naming it. The parameters a route declares are read once from its signature (its
dependencies' included), as FastAPI itself reads them, when a request has a query at all.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from agentkeep.errors import ValidationError
from agentkeep.models.common import Page


async def known_query_only(request: Request) -> None:
    """Refuse a list request with a query parameter its route does not take."""
    route = request.scope.get("route")
    if not request.scope.get("query_string") or not isinstance(route, APIRoute):
        return
    known = _known_query(route)
    if known is None:
        return
    for name in request.query_params:
        if name not in known:
            takes = ", ".join(sorted(known)) or "none"
            raise ValidationError(
                f"unknown query parameter {name!r} (this list takes: {takes})", field=name
            )


def _known_query(route: APIRoute) -> frozenset[str] | None:
    """The query parameters of a list route; ``None`` for a route that is not a list."""
    model = route.response_model
    if not (isinstance(model, type) and issubclass(model, Page)):
        return None
    return frozenset(_query_names(route.dependant))


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for inner in dependant.dependencies:
        names |= _query_names(inner)
    return names
