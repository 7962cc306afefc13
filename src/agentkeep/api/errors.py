"""One error shape for every failure: ``{"error": {"code", "message", "field"?}}``.

Managers and repositories raise domain errors (``agentkeep.errors``); the handlers here are the one
place they become HTTP statuses. FastAPI's own request validation, unknown routes and unexpected
exceptions are answered in the same shape, so a client parses every failure one way.

A body that cannot be read as JSON at all (bytes that are not UTF-8, nesting beyond what the
parser follows, an integer longer than Python reads) is a 400 ``invalid_json``; a body whose
text or JSON documents cannot be stored (a lone surrogate, a NUL, nesting beyond
``MAX_JSON_DEPTH``) is a 422 naming the field, refused by the input models' types. Messages
and field names are made sendable before they are sent: a parser may quote the offending input,
and an unencodable character must not fail the answer.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from agentkeep.errors import (
    AgentkeepError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    StorageError,
    StorageFullError,
    TooLargeError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
)
from agentkeep.memory.base import EmbedderError
from agentkeep.models.common import printable, reason

log = logging.getLogger("agentkeep.api")

STATUS: list[tuple[type[AgentkeepError], int]] = [  # most specific first
    (TooLargeError, 413),
    (ValidationError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (UnauthorizedError, 401),
    (ForbiddenError, 403),
    (UnavailableError, 503),
    (EmbedderError, 503),
    (StorageFullError, 507),
    (StorageError, 500),
]

RETRY_AFTER_SECONDS = 2
"""What a 503 (the database unavailable) tells the client to wait before retrying."""

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
}


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    """What every failed request returns."""

    error: ErrorBody


def status_of(exc: AgentkeepError) -> int:
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 500)


def error_response(
    status: int, code: str, message: str, field: str | None = None, **headers: str
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": printable(message)}
    if field is not None:
        body["field"] = printable(field)
    return JSONResponse({"error": body}, status_code=status, headers=headers or None)


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AgentkeepError)
    status = status_of(exc)
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, UnauthorizedError) else {}
    if status == 503:  # the database or the embedder is down or restarting: worth asking again
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return error_response(status, exc.code, exc.message, exc.field, **headers)


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return error_response(400, "invalid_json", f"the body is not valid JSON: {first['msg']}")
    location = [str(part) for part in first.get("loc", ())]
    # ("body", "content") -> "content"; a missing body altogether stays "body"
    field = ".".join(location[1:] if len(location) > 1 else location) or None
    message = f"{field}: {reason(first)}" if field else reason(first)
    return error_response(422, "validation_error", message, field)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    unreadable = _unreadable_body(exc)
    if unreadable is not None:
        return error_response(400, "invalid_json", f"the body is not valid JSON: {unreadable}")
    code = _HTTP_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, str(exc.detail), **(exc.headers or {}))


def _unreadable_body(exc: StarletteHTTPException) -> str | None:
    """Why FastAPI could not parse the body, when it says only "error parsing the body"."""
    if exc.status_code != 400:
        return None
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return f"it is not UTF-8 (byte {cause.start})"
    if isinstance(cause, RecursionError):
        return "it nests too deeply"
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        # valid JSON, but Python reads integers of at most this many digits
        return f"a number in it has more than {sys.get_int_max_str_digits()} digits"
    return None


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AgentkeepError, _domain)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer, all in the one error shape."""
    described = {
        400: "The body is not valid JSON",
        401: "A valid API key is required",
        403: "The API key may not do this: it needs an admin key",
        404: "Not found",
        409: "Conflicts with what is stored (a name or key already taken)",
        413: "Larger than a configured limit",
        422: "Invalid input; `field` names what is wrong",
        503: "The database, or for memories the embedder, is unavailable (retry after "
        "`Retry-After` seconds)",
        507: "The database has no space left for the write",
    }
    return {s: {"model": ErrorResponse, "description": described[s]} for s in statuses}
