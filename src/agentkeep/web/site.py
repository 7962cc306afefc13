"""The web UI's frame: the router, the page registry, rendering, and error pages.

A page is one loader function registered with :func:`page`: it gets the request's path and
query parameters, reads what it shows through the store facade, and returns the template's
context (or a ``Response``, such as a redirect). The decorator adds the route, the access check
and, when the page names a ``nav`` label, its entry in the navigation that ``base.html`` draws:
adding a page is one function in one place.

Errors become pages, not JSON: an unknown or malformed id in the path is a 404 page, any other
``AgentkeepError`` the page for its status (422, 503, …), and a visitor without a valid API key
(when the server has keys) is sent to the sign-in form.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from pydantic import BaseModel

from agentkeep import __version__
from agentkeep.api.errors import status_of
from agentkeep.errors import AgentkeepError
from agentkeep.models.common import reason
from agentkeep.repositories.base import Async
from agentkeep.repositories.facade import DatabaseManager
from agentkeep.web.access import SignInRequiredError, login_url, page_token

HERE = Path(__file__).parent
STATIC = HERE / "static"

Context = dict[str, Any]
P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    href: str
    order: int


NAV: list[NavItem] = []
"""The main navigation, by each page's ``order``."""

UNTITLED = "Untitled conversation"
"""What every page calls a conversation without a title."""


def _pretty(value: Any) -> str:
    """JSON for people: indented, non-ASCII kept (escaped for HTML by the template)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    """What JSON cannot say by itself: a model as its fields, anything else as text."""
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else str(value)


def _when(value: datetime | None) -> Markup:
    """A moment as ``<time>``: the ISO timestamp in ``datetime`` and, until the page's script
    writes it in the reader's locale and time zone, a readable UTC fallback (the full timestamp
    on hover)."""
    if value is None:
        return Markup("—")
    moment = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(
        moment.isoformat(timespec="milliseconds"), moment.strftime("%Y-%m-%d %H:%M UTC")
    )


def _number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every {{ value }} is HTML-escaped: user and model text shows as text
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pretty=_pretty, when=_when, number=_number)
    env.globals.update(
        nav=NAV,
        untitled=UNTITLED,
        version=__version__,
        static=lambda path: f"/static/{path}?v={__version__}",
    )
    return env


templates = Jinja2Templates(env=_environment())


def render(
    request: Request,
    template: str,
    context: Context,
    *,
    status_code: int = 200,
    csrf_token: str | None = None,
    section: str | None = None,
) -> HTMLResponse:
    context = {"csrf_token": csrf_token, "section": section, **context}
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"  # pages carry the visitor's session token
    return response


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    titles = {
        401: "Sign in",
        403: "Forbidden",
        404: "Not found",
        422: "Invalid request",
        503: "Unavailable",
    }
    title = titles.get(status_code, "Something went wrong")
    context = {"title": title, "message": message, "status_code": status_code}
    return render(request, "error.html", context, status_code=status_code)


class PageRoute(APIRoute):
    """A route that answers failures with HTML pages (the API's routes answer JSON)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequiredError:
                return RedirectResponse(login_url(request), status_code=303)
            except RequestValidationError as exc:
                first = exc.errors()[0]
                where = first.get("loc", ("",))[0]
                if where == "path":  # a malformed id names nothing that exists
                    return error_page(request, 404, "There is no such page.")
                name = ".".join(str(part) for part in first.get("loc", ())[1:])
                return error_page(request, 422, f"{name}: {reason(first)}")
            except AgentkeepError as exc:
                return error_page(request, status_of(exc), exc.message)

        return page_handler


router = APIRouter(route_class=PageRoute, include_in_schema=False)


def page(
    path: str,
    template: str,
    *,
    nav: str | None = None,
    order: int = 100,
    section: str | None = None,
    public: bool = False,
) -> Callable[
    [Callable[P, Awaitable[Context | Response]]], Callable[P, Awaitable[Context | Response]]
]:
    """Register a page: ``GET path`` renders ``template`` with what the loader returns.

    Args:
        path: the route, with FastAPI path parameters.
        template: the template under ``web/templates/``.
        nav: a label to list the page in the main navigation under.
        order: where in the navigation (lower first).
        section: which navigation entry the page belongs to (default: ``nav``).
        public: whether the page opens without an API key (the sign-in form).

    The loader must take ``request: Request``; its other parameters are read from the path and
    the query string as in any FastAPI route.
    """
    if nav is not None:
        NAV.append(NavItem(nav, path, order))
        NAV.sort(key=lambda item: item.order)

    def register(
        load: Callable[P, Awaitable[Context | Response]],
    ) -> Callable[P, Awaitable[Context | Response]]:
        @functools.wraps(load)
        async def endpoint(*args: P.args, **kwargs: P.kwargs) -> Response:
            request = kwargs["request"]
            assert isinstance(request, Request)
            token = None if public else await page_token(request)
            result = await load(*args, **kwargs)
            if isinstance(result, Response):
                return result
            return render(request, template, result, csrf_token=token, section=section or nav)

        router.add_api_route(
            path,
            endpoint,
            methods=["GET"],
            response_class=HTMLResponse,
            response_model=None,
            name=load.__name__,
        )
        return load

    return register


def store(request: Request) -> DatabaseManager[Async]:
    """The store, as the API's routers get it."""
    db: DatabaseManager[Async] = request.app.state.db
    return db
