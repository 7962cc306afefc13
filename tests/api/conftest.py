"""API tests: ``create_app(settings)`` driven through ``httpx.AsyncClient`` on every backend.

The app's lifespan runs (the store opens and closes as it does under uvicorn); requests go through
the ASGI interface in process, so a test sees exactly what a client would, without a socket.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from agentkeep import Settings
from agentkeep.api import create_app


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c,
    ):
        yield c


@pytest.fixture
def live_app(settings: Settings) -> Iterator[tuple[FastAPI, str]]:
    """The app served by uvicorn on a free loopback port, in a thread: for what needs a real
    socket (tokens arriving while a reply streams, a client hanging up mid-stream)."""
    app = create_app(settings)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
