"""The HTTP benchmark's floor answers what agentkeep's server answers: the bytes of a real append's
answer and of a real last-50 page, with the same headers (the date and the server's name aside),
so the difference between the two servers' CPU per request is agentkeep's work alone."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest
from bench import http as bench_http
from bench.http_clients import TEXT
from fastapi import FastAPI

from agentkeep import ConversationCreate, MessageCreate

pytestmark = pytest.mark.anyio

TRANSPORT = {"date", "server"}
"""Headers uvicorn writes itself, different from one answer to the next."""


def headers(response: httpx.Response) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in response.headers.multi_items() if k not in TRANSPORT)


async def test_the_floor_answers_the_bytes_and_headers_agentkeep_answers(
    live_app: tuple[FastAPI, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, url = live_app
    db = app.state.db
    target = (await db.conversations.create(ConversationCreate(user_id="appends"))).id
    long = (await db.conversations.create(ConversationCreate(user_id="reader"))).id
    for i in range(60):
        await db.messages.append(long, MessageCreate(role="user", content=f"{i} é \n"))
    folder = await anyio.to_thread.run_sync(bench_http.capture, url, target, long, tmp_path)

    async with httpx.AsyncClient(base_url=url, trust_env=False) as real:
        page = await real.get(f"/api/v1/conversations/{long}/messages?limit=50")
        appended = await real.post(
            f"/api/v1/conversations/{target}/message", json={"role": "user", "content": "x"}
        )
    assert len(page.json()["items"]) == 50

    monkeypatch.setenv(bench_http.FLOOR_ANSWERS, str(folder))
    transport = httpx.ASGITransport(app=bench_http.floor_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://floor") as floor:
        floor_page = await floor.get(f"/api/v1/conversations/{long}/messages?limit=50")
        floor_append = await floor.post(
            f"/api/v1/conversations/{target}/message", json={"role": "user", "content": "x"}
        )
    assert (floor_page.status_code, floor_page.content) == (200, page.content)
    assert headers(floor_page) == headers(page)
    assert floor_append.status_code == appended.status_code == 201
    assert floor_append.content == (folder / "append.json").read_bytes()
    assert floor_append.json()["content"] == f"0 {TEXT}"
    assert [k for k, _ in headers(floor_append)] == [k for k, _ in headers(appended)]


def test_agentkeep_s_share_is_what_its_server_spends_over_the_floor() -> None:
    result = bench_http.Result("SQLite")
    for subject, cpu in ((bench_http.http_subject(1), 0.8), (bench_http.floor_subject(1), 0.2)):
        result.runs[("last 50", subject)] = bench_http.Run(1000, 1, 2, cpu_ms=cpu)
    assert bench_http.agentkeep_share(result, "last 50", 1) == pytest.approx(0.75)
    assert bench_http.agentkeep_share(result, "last 50", 2) is None
    assert bench_http.agentkeep_share(result, "append", 1) is None
