"""A lean request path for the hottest routes: FastAPI routes that answer without FastAPI's
per-request dependency solving.

FastAPI answers a request by solving the route's dependency tree anew each time: for every
dependency it asks whether an override applies, whether the result is cached, whether the call is a
generator, a coroutine or a plain function; it builds a sub-response, an error list and an endpoint
context; it reads a JSON body with ``json.loads`` and validates the resulting dict a second time.
Measured in process on appending a message, it was half of what the HTTP layers add to the
store's own work: 0.26 of 0.49 ms of CPU a request (the store's work: 0.55 ms).

:class:`LeanRoute` keeps the route a FastAPI route (its OpenAPI entry, its template for the
metrics, its place among the routes are FastAPI's) and works out once, when FastAPI builds the
route's handler, what a request needs: which dependencies to call in which order (they must be
coroutines that take only the request and other such dependencies, as the API-key check and the
store are: :func:`~agentkeep.api.auth.guard` and :func:`~agentkeep.api.deps.get_db` are called
themselves, nothing of them is copied), the path and query parameters with the route's own fields
(so their limits are the route's), and the body's model. A request then costs: the body validated
from its bytes in one pass (``model_validate_json``), each parameter validated by its field, the
dependencies awaited, the endpoint awaited.

**Every refusal is FastAPI's own.** The lean path only accepts: a request it would not accept
exactly as FastAPI does is handed, untouched, to the handler FastAPI built for the route, which
answers it as it always has (the same exceptions, so ``api/errors.py`` renders the same bodies).
That is the case for a body that is empty, not sent as ``application/json`` (FastAPI decides by
parsing the media type), or that fails to parse or validate (``json.loads`` reads some documents
the one-pass parser refuses: UTF-16, a byte-order mark, a lone surrogate escape, nesting beyond
its limit), for a path or query parameter that fails its field, and for a request made while
dependency overrides are set or while FastAPI's telemetry records the request. The lean path
checks the input before it calls any dependency, and checking changes nothing, so a request it
hands over has not met the API-key check yet: FastAPI's handler refuses it in FastAPI's own order
(a body it cannot parse before the key, the key before a bad parameter).

A route whose dependencies or parameters are of another kind (a header, a cookie, a dependency
with parameters of its own or that yields) gets FastAPI's handler alone.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import params
from fastapi import routing as fastapi_routing
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_typed_return_annotation
from fastapi.routing import APIRoute

try:  # FastAPI's internals the plan reads: without them, FastAPI's handler serves every request
    from fastapi._compat import field_annotation_is_sequence
    from fastapi.telemetry import get_telemetry_data
except ImportError:  # pragma: no cover (another FastAPI release)
    field_annotation_is_sequence = None  # type: ignore[assignment]
    get_telemetry_data = None  # type: ignore[assignment]
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticUndefined
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
Resolve = Callable[[Request], Awaitable[Any]]

JSON_TYPES = frozenset(
    {
        b"application/json",
        b"application/json; charset=utf-8",
        b"application/json;charset=utf-8",
        b"application/json; charset=UTF-8",
        b"application/json;charset=UTF-8",
    }
)
"""``Content-Type`` values taken as JSON without parsing them (what clients send); FastAPI's
handler decides for any other."""


class _Refer(Exception):  # noqa: N818 (not an error: the request goes to FastAPI's handler)
    """The request is one the lean path does not answer."""


class LeanRoute(APIRoute):
    """An ``APIRoute`` whose requests skip FastAPI's dependency solving when the route allows it
    (see the module's documentation); FastAPI's handler answers the others."""

    def get_route_handler(self) -> Handler:
        standard = super().get_route_handler()
        effective = _effective(self) if get_telemetry_data is not None else None
        plan = None if effective is None else _Plan.of(effective)
        if plan is None:
            return standard

        async def handle(request: Request) -> Response:
            try:
                return await plan.answer(request)
            except _Refer:
                return await standard(request)

        handle.standard = standard  # type: ignore[attr-defined]  # what tests compare against
        handle.plan = plan  # type: ignore[attr-defined]
        return handle


def _effective(route: APIRoute) -> Any:
    """The route as FastAPI builds its handler, with the dependencies of any router it is included
    in, or ``None`` when that cannot be told (then FastAPI's handler alone serves it).

    FastAPI passes an included route's view in a context variable while it calls
    ``get_route_handler``; a route added to the app's own router (as the hot routes are) is its
    own view. Should a FastAPI release pass it otherwise, the lean path steps aside rather than
    miss an inclusion's dependencies (the API-key check among them)."""
    current = getattr(fastapi_routing, "_effective_route_context_var", None)
    if current is None:
        return None
    context = current.get()
    if context is None:
        return route
    return context if getattr(context, "original_route", None) is route else None


@dataclass(frozen=True)
class _Param:
    """A path or query parameter: where it is read and the route's field that validates it."""

    name: str
    alias: str
    loc: tuple[str, str]
    field: Any  # fastapi's ModelField
    required: bool
    default: Any

    @classmethod
    def of(cls, field: Any, where: str) -> _Param | None:
        info = field.field_info
        annotation = info.annotation
        if (
            info.validation_alias is not None
            or info.validate_default
            or _is_model(annotation)
            or field_annotation_is_sequence(annotation)
        ):
            return None
        alias = field.alias or field.name
        default = info.default
        if default is not PydanticUndefined and not isinstance(
            default, (int, str, float, bool, type(None))
        ):
            return None  # FastAPI would deepcopy a mutable default; none of ours is one
        return cls(field.name, alias, (where, alias), field, info.is_required(), default)

    def value(self, source: Mapping[str, Any], values: dict[str, Any]) -> Any:
        raw = source.get(self.alias)
        if raw is None:
            if self.required:
                raise _Refer
            return self.default
        value, errors = self.field.validate(raw, values, loc=self.loc)
        if errors:
            raise _Refer
        return value


@dataclass(frozen=True)
class _Plan:
    """What answering one route's request takes, worked out once."""

    dependencies: tuple[tuple[str | None, Resolve], ...]
    path: tuple[_Param, ...]
    query: tuple[_Param, ...]
    body: tuple[str, type[BaseModel]] | None
    endpoint: Callable[..., Awaitable[Any]]
    overrides: Any

    @classmethod
    def of(cls, route: Any) -> _Plan | None:
        dependant: Dependant = route.dependant
        call = dependant.call
        if (
            call is None
            or not inspect.iscoroutinefunction(call)
            or not _returns_response(call)
            or dependant.header_params
            or dependant.cookie_params
            or _needs_more_than_the_request(dependant)
            or (dependant.request_param_name or dependant.http_connection_param_name)
            or not _unique_calls(dependant)
        ):
            return None
        dependencies = _resolvers(dependant)
        path = _params(dependant.path_params, "path")
        query = _params(dependant.query_params, "query")
        body = _body(route, dependant)
        if dependencies is None or path is None or query is None or body is _UNREAD:
            return None
        return cls(
            dependencies=dependencies,
            path=path,
            query=query,
            body=body if isinstance(body, tuple) else None,
            endpoint=call,
            overrides=route.dependency_overrides_provider,
        )

    async def answer(self, request: Request) -> Response:
        if (
            self.overrides is not None and getattr(self.overrides, "dependency_overrides", None)
        ) or get_telemetry_data() is not None:
            raise _Refer
        values: dict[str, Any] = {}
        if self.body is not None:
            name, model = self.body
            values[name] = await _read_body(request, model)
        if self.path:
            source = request.scope["path_params"]
            for param in self.path:
                values[param.name] = param.value(source, values)
        if self.query:
            query = request.query_params
            for param in self.query:
                values[param.name] = param.value(query, values)
        for dependency_name, resolve in self.dependencies:
            solved = await resolve(request)
            if dependency_name is not None:
                values[dependency_name] = solved
        response = await self.endpoint(**values)
        assert isinstance(response, Response)  # checked from the signature
        return response


async def _read_body(request: Request, model: type[BaseModel]) -> BaseModel:
    """The body as ``model``, read and validated as FastAPI would accept it, or :class:`_Refer`.

    The body is kept on the request, so FastAPI's handler reads the same bytes when it takes
    over."""
    kind = request.headers.get("content-type")
    if kind is None or kind.encode() not in JSON_TYPES or MAX_BODY_SIZE_SCOPE_KEY in request.scope:
        raise _Refer
    try:
        body = await request.body()
    except HTTPException:
        raise
    except Exception as exc:  # as FastAPI answers a body it could not read
        raise HTTPException(400, "There was an error parsing the body") from exc
    if not body:
        raise _Refer
    try:
        return model.model_validate_json(body)
    except PydanticValidationError:
        raise _Refer from None


def _resolver(dependant: Dependant) -> Resolve | None:
    """How to call a dependency that needs nothing but the request (and other such
    dependencies), or ``None``."""
    call = dependant.call
    if (
        call is None
        or not _is_coroutine(call)
        or dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or _needs_more_than_the_request(dependant)
        or dependant.own_oauth_scopes
        or dependant.parent_oauth_scopes
    ):
        return None
    subs = _resolvers(dependant)
    if subs is None:
        return None
    request_name = dependant.request_param_name or dependant.http_connection_param_name

    async def resolve(request: Request) -> Any:
        kwargs: dict[str, Any] = {}
        for name, sub in subs:
            solved = await sub(request)
            if name is not None:
                kwargs[name] = solved
        if request_name is not None:
            kwargs[request_name] = request
        return await call(**kwargs)

    return resolve


def _resolvers(dependant: Dependant) -> tuple[tuple[str | None, Resolve], ...] | None:
    """Each dependency of ``dependant`` with its resolver, in order; ``None`` if one has none."""
    found = []
    for sub in dependant.dependencies:
        resolve = _resolver(sub)
        if resolve is None:
            return None
        found.append((sub.name, resolve))
    return tuple(found)


def _params(fields: list[Any], where: str) -> tuple[_Param, ...] | None:
    found = []
    for field in fields:
        param = _Param.of(field, where)
        if param is None:
            return None
        found.append(param)
    return tuple(found)


def _needs_more_than_the_request(dependant: Dependant) -> bool:
    return bool(
        dependant.websocket_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or getattr(dependant, "concurrency", None) is not None
        or dependant.scope == "request"
    )


def _unique_calls(dependant: Dependant) -> bool:
    """Whether no dependency appears twice (FastAPI would call it once per request)."""
    seen: list[Any] = []

    def walk(node: Dependant) -> bool:
        for sub in node.dependencies:
            if any(sub.call is call for call in seen):
                return False
            seen.append(sub.call)
            if not walk(sub):
                return False
        return True

    return walk(dependant)


_UNREAD = object()
"""A body the lean path does not read."""


def _body(route: Any, dependant: Dependant) -> tuple[str, type[BaseModel]] | object | None:
    """The body's parameter name and model; ``None`` without a body; :data:`_UNREAD` for a body
    the lean path does not read (embedded, a form, a model with constraints of the
    parameter's)."""
    if not dependant.body_params:
        return None
    if len(dependant.body_params) != 1 or getattr(route, "_embed_body_fields", True):
        return _UNREAD
    field = dependant.body_params[0]
    info = field.field_info
    model = info.annotation
    if not _is_model(model) or info.metadata or type(info) is not params.Body:
        return _UNREAD
    return field.name, model


def _is_coroutine(call: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
        getattr(call, "__call__", None)  # noqa: B004 (an instance with an async __call__)
    )


def _returns_response(call: Callable[..., Any]) -> bool:
    annotation = get_typed_return_annotation(call)
    return isinstance(annotation, type) and issubclass(annotation, Response)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
