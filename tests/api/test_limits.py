"""Request bodies over the size limit (413) or too slow to arrive (408), on every route.

In process through httpx, and on a real uvicorn over raw sockets: a chunked body has no
``Content-Length`` to refuse up front, and a stalled body only shows on a real connection.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from agentkeep import Settings
from agentkeep.api import create_app
from api.shapes import error_of
from servers import serve_app

LIMIT = 4096
TIMEOUT = 0.5  # seconds, the body timeout of these tests
SLACK = 20.0  # how much later than the timeout the answer may come on a busy machine (CI
# once took 14.8 s, with a browser suite and a stress run beside it): well under the 60 s a
# stalled body would otherwise hold the request
BODY_ROUTES = ["/api/v1/agents", "/api/v1/conversations/start", "/api/v1/streaming/start", "/login"]


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_request_bytes": LIMIT, "body_timeout": TIMEOUT})


def oversized_agent() -> bytes:
    return json.dumps({"name": "big", "description": "x" * (2 * LIMIT)}).encode()


# -- in process ---------------------------------------------------------------------------------


@pytest.fixture
async def client(limited: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(limited)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as c,
    ):
        yield c


async def in_pieces(body: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.anyio
class TestInProcess:
    @pytest.mark.parametrize("path", BODY_ROUTES)
    async def test_a_chunked_body_over_the_limit_is_413(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        response = await client.post(
            path, content=in_pieces(oversized_agent()), headers={"content-type": "application/json"}
        )
        assert "content-length" not in response.request.headers
        error = error_of(response, 413)
        assert error["code"] == "too_large"
        assert f"{LIMIT} bytes" in error["message"]
        assert response.headers["connection"] == "close"

    async def test_a_declared_length_over_the_limit_is_413(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/v1/agents", content=oversized_agent())
        assert error_of(response, 413)["code"] == "too_large"

    async def test_nothing_is_written(self, client: httpx.AsyncClient) -> None:
        await client.post("/api/v1/agents", content=in_pieces(oversized_agent()))
        assert (await client.get("/api/v1/agents")).json()["items"] == []

    async def test_a_chunked_body_within_the_limit_is_read(self, client: httpx.AsyncClient) -> None:
        body = json.dumps({"name": "small", "description": "x" * (LIMIT // 2)}).encode()
        response = await client.post(
            "/api/v1/agents", content=in_pieces(body), headers={"content-type": "application/json"}
        )
        assert response.status_code == 201, response.text

    @pytest.mark.parametrize("path", ["/api/v1/agents", "/login"])
    async def test_a_stalled_body_is_408(self, client: httpx.AsyncClient, path: str) -> None:
        async def stalled() -> AsyncIterator[bytes]:
            yield b'{"name": '
            await anyio.sleep(60)

        started = time.monotonic()
        response = await client.post(path, content=stalled())
        error = error_of(response, 408)
        assert error["code"] == "request_timeout"
        assert "AGENTKEEP_BODY_TIMEOUT" in error["message"]
        assert TIMEOUT <= time.monotonic() - started < TIMEOUT + SLACK


# -- on a real server ---------------------------------------------------------------------------


@pytest.fixture
def live(limited: Settings) -> Iterator[tuple[FastAPI, str]]:
    app = create_app(limited)
    with serve_app(app) as url:
        yield app, url


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    # generous: a test that times the answer checks that itself; this only stops a hang
    sock = socket.create_connection((host, int(port)), timeout=30)
    return sock


def head(path: str, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: test", "Content-Type: application/json", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked(body: bytes, size: int = 1000) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def answer(sock: socket.socket) -> tuple[int, dict[str, str], Any]:
    """The response on ``sock``, read until the server closes the connection (it must)."""
    raw = b""
    while chunk := sock.recv(65536):  # a timeout here: the server kept the connection open
        raw += chunk
    status_line, _, rest = raw.partition(b"\r\n")
    header_block, _, body = rest.partition(b"\r\n\r\n")
    lines = (line.decode().partition(":") for line in header_block.split(b"\r\n"))
    headers = {name.strip().lower(): value.strip() for name, _, value in lines}
    return int(status_line.split()[1]), headers, json.loads(body)


class TestOnAServer:
    @pytest.mark.parametrize("path", BODY_ROUTES)
    def test_a_chunked_body_over_the_limit_is_413_and_closes(
        self, live: tuple[FastAPI, str], path: str
    ) -> None:
        with connect(live[1]) as sock:
            sock.sendall(head(path, "Transfer-Encoding: chunked") + chunked(oversized_agent()))
            status, headers, body = answer(sock)
        assert status == 413
        assert body["error"]["code"] == "too_large"
        assert headers["connection"] == "close"
        assert httpx.get(f"{live[1]}/api/v1/agents", trust_env=False).json()["items"] == []

    def test_a_stalled_body_is_408_and_others_are_served_meanwhile(
        self, live: tuple[FastAPI, str]
    ) -> None:
        with connect(live[1]) as sock:
            started = time.monotonic()
            sock.sendall(head("/api/v1/agents", "Content-Length: 100"))
            meanwhile = httpx.get(f"{live[1]}/health", trust_env=False)
            assert meanwhile.status_code == 200
            status, headers, body = answer(sock)
            waited = time.monotonic() - started
        assert status == 408
        assert body["error"]["code"] == "request_timeout"
        assert headers["connection"] == "close"
        assert TIMEOUT <= waited < TIMEOUT + SLACK

    def test_a_trickled_body_is_408(self, live: tuple[FastAPI, str]) -> None:
        with connect(live[1]) as sock:
            started = time.monotonic()
            sock.sendall(head("/api/v1/agents", "Content-Length: 100"))
            for _ in range(100):  # a byte every 50 ms until the server answers
                sock.sendall(b" ")
                if select.select([sock], [], [], 0.05)[0]:
                    break
            status, _, body = answer(sock)
        assert status == 408
        assert "got " in body["error"]["message"]
        assert TIMEOUT <= time.monotonic() - started < TIMEOUT + SLACK

    def test_an_unread_stalled_body_does_not_keep_the_connection(
        self, live: tuple[FastAPI, str]
    ) -> None:
        """A route that answers without reading the body closes the connection after it."""
        with connect(live[1]) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n")
            status, headers, body = answer(sock)
        assert status == 200
        assert body["status"] == "ok"
        assert headers["connection"] == "close"

    def test_a_chunked_body_within_the_limit_keeps_the_connection(
        self, live: tuple[FastAPI, str]
    ) -> None:
        body = json.dumps({"name": "small"}).encode()
        with connect(live[1]) as sock:
            sock.sendall(head("/api/v1/agents", "Transfer-Encoding: chunked") + chunked(body))
            first = sock.recv(65536)
            assert first.startswith(b"HTTP/1.1 201")
            assert b"connection: close" not in first.lower()
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            status, _, _ = answer(sock)
        assert status == 200
