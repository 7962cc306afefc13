"""The web UI, served by the API's own process: Home, Agents, Chat, Conversations, Memory,
Tools, Personas, Modules, Workflows, Config and Conversation.

Pages are rendered on the server (Jinja2, autoescaped) from the store facade, exactly as the API
routers read it; one small hand-written script (``static/app.js``) makes every change through
the JSON API and streams chat replies. There is no build step and no third-party front-end code.

- ``site.py``: the router, the :func:`~agentkeep.web.site.page` registry (a page and its
  navigation entry are one decorated loader), rendering and error pages;
- ``access.py``: with API keys configured, pages need a sign-in with a key, as the API does,
  kept as a signed session (never the key in a page) that resists cross-site requests;
- ``pages.py``, ``chat.py``, ``catalog.py`` (Personas, Modules, Workflows), ``project.py``
  (Config: export and import a project file): the pages;
  ``panels.py``: the Conversation page and its panel registry (a panel is one decorated loader
  and one template); ``conversations.py``: the Conversations page and the chat-bot workflow's
  panels (data, questions, the user's session, complete / resume / abandon); ``memory.py``:
  the Memory page (search, list, add, re-weigh and forget long-term memories).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from agentkeep.web import catalog, chat, conversations, memory, pages, panels, project
from agentkeep.web.site import NAV, STATIC, router

__all__ = ["NAV", "mount_web", "router"]

# importing them registers their routes
_PAGES = (pages, chat, catalog, panels, conversations, memory, project)


def mount_web(app: FastAPI) -> None:
    """Serve the UI's pages and its static files (``/static``) from ``app``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
