"""Answers serialised once, straight to JSON bytes, on the hot routes.

FastAPI answers a route that returns a model by validating the value against the route's
``response_model`` again and then serialising it. The store already returns validated domain
models, so the hot routes (append a message, a page of messages, a user's conversations) return
:func:`json_response` instead: one ``dump_json`` by a ``TypeAdapter`` made once per type. The
route keeps ``response_model=`` in its decorator, so the OpenAPI schema is unchanged, and the
bytes are the ones FastAPI would have sent (by alias, every field).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import TypeAdapter
from starlette.responses import Response


class JSONBytes(Response):
    """A body already encoded as JSON."""

    media_type = "application/json"


@cache
def adapter(kind: Any) -> TypeAdapter[Any]:
    """The one adapter for ``kind`` (types are few and made at import: the cache stays small)."""
    return TypeAdapter(kind)


def json_response(value: Any, kind: Any, status_code: int = 200) -> Response:
    """``value`` (a ``kind``) as a JSON response, serialised once."""
    return JSONBytes(adapter(kind).dump_json(value, by_alias=True), status_code=status_code)
