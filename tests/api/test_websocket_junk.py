"""Frames the chat WebSocket cannot use: an error event and the socket stays open, or a close
code with a reason; never a dropped connection or a traceback in the log. On every backend."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from agentkeep import Settings
from agentkeep.api import create_app
from servers import serve_app

API = "/api/v1"
LIMIT = 4096
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    small = settings.model_copy(update={"max_request_bytes": LIMIT})
    with TestClient(create_app(small)) as client:
        yield client


def start_conversation(client: TestClient, **model_settings: Any) -> str:
    agent = client.post(
        f"{API}/agents",
        json={"name": "ws", "provider": "echo", "model_settings": model_settings},
    ).json()
    started = client.post(f"{API}/conversations/start", json={"agent_id": agent["id"]})
    cid: str = started.json()["conversation"]["id"]
    return cid


@pytest.fixture
def conversation(client: TestClient) -> str:
    return start_conversation(client)


@pytest.fixture(autouse=True)
def no_traceback(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.INFO):
        yield
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def finish_turn(socket: Any) -> list[dict[str, Any]]:
    frames = [socket.receive_json()]
    while frames[-1]["event"] not in ("message_end", "error"):
        frames.append(socket.receive_json())
    return frames


def closed_with(socket: Any) -> tuple[int, str]:
    with pytest.raises(WebSocketDisconnect) as closed:
        socket.receive_json()
    return closed.value.code, closed.value.reason


class TestBadFramesAreAnsweredAndTheSocketStaysOpen:
    @pytest.mark.parametrize(
        ("frame", "code", "field"),
        [
            ("not json", "invalid_json", None),
            ("", "invalid_json", None),
            (DEEP[:2000] + DEEP[-2000:], "invalid_json", None),  # deeper than Python recurses
            ("[1, 2]", "validation_error", None),
            ('"message"', "validation_error", None),
            ("null", "validation_error", None),
            ('{"type": 5}', "validation_error", None),
            ('{"type": ["message"]}', "validation_error", None),
            ('{"content": "no type"}', "validation_error", None),
            ('{"type": "message"}', "validation_error", "content"),
            ('{"type": "message", "content": 5}', "validation_error", "content"),
            ('{"type": "message", "content": "x", "extra": 1}', "validation_error", "extra"),
            ('{"type": "message", "content": "x", "metadata": []}', "validation_error", "metadata"),
            ('{"type": "message", "content": "x\\ud800"}', "validation_error", "content"),
            ('{"type": "message", "content": "\\udc00x"}', "validation_error", "content"),
            (
                '{"type": "message", "content": "x", "metadata": {"k": ["\\ud83d"]}}',
                "validation_error",
                "metadata",
            ),
        ],
    )
    def test_the_frame_gets_an_error_event_and_the_next_message_works(
        self, client: TestClient, conversation: str, frame: str, code: str, field: str | None
    ) -> None:
        with client.websocket_connect(f"{API}/streaming/ws/{conversation}") as socket:
            socket.send_text(frame)
            answer = socket.receive_json()
            assert answer["event"] == "error"
            assert answer["data"]["code"] == code
            assert answer["data"]["message"]
            assert answer["data"].get("field") == field
            socket.send_json({"type": "message", "content": "still here"})
            assert finish_turn(socket)[-1]["event"] == "message_end"
        stored = client.get(f"{API}/conversations/{conversation}/messages").json()["items"]
        assert [m["content"] for m in stored if m["role"] == "user"] == ["still here"]

    def test_a_deeply_nested_frame_within_the_size_limit_is_invalid_json(
        self, settings: Settings
    ) -> None:
        roomy = settings.model_copy(update={"max_request_bytes": 1_000_000})
        with TestClient(create_app(roomy)) as client:
            cid = start_conversation(client)
            with client.websocket_connect(f"{API}/streaming/ws/{cid}") as socket:
                socket.send_text(DEEP)  # 100,000 deep
                assert socket.receive_json()["data"]["code"] == "invalid_json"
                frame = '{"type": "message", "content": "x", "metadata": {"a": %s}}'
                socket.send_text(frame % DEEP)
                assert socket.receive_json()["data"]["code"] == "invalid_json"
                for depth in (200, 900, 990):  # readable: a turn, or an error saying why not
                    socket.send_text(frame % ("[" * depth + "]" * depth))
                    assert finish_turn(socket)[-1]["event"] in ("message_end", "error")
                socket.send_json({"type": "message", "content": "still here"})
                assert finish_turn(socket)[-1]["event"] == "message_end"

    def test_a_message_sent_during_a_turn_is_answered_not_dropped(self, client: TestClient) -> None:
        cid = start_conversation(client, token_delay_ms=20)
        with client.websocket_connect(f"{API}/streaming/ws/{cid}") as socket:
            socket.send_json({"type": "message", "content": " ".join(["word"] * 20)})
            assert socket.receive_json()["event"] == "message_start"
            socket.send_json({"type": "message", "content": "another"})
            socket.send_text("not json")
            frames = [socket.receive_json()]
            while frames[-1]["event"] != "message_end":  # the errors come while it streams
                frames.append(socket.receive_json())
            errors = [f["data"]["code"] for f in frames if f["event"] == "error"]
            assert frames[-1]["event"] == "message_end"
            assert errors == ["conflict", "invalid_json"]


class TestFramesThatCloseTheSocket:
    def test_a_binary_frame_closes_with_1003(self, client: TestClient, conversation: str) -> None:
        with client.websocket_connect(f"{API}/streaming/ws/{conversation}") as socket:
            socket.send_bytes(b'{"type": "message", "content": "hi"}')
            code, reason = closed_with(socket)
        assert code == 1003
        assert "binary" in reason

    def test_a_frame_over_the_size_limit_closes_with_1009(
        self, client: TestClient, conversation: str
    ) -> None:
        with client.websocket_connect(f"{API}/streaming/ws/{conversation}") as socket:
            socket.send_json({"type": "message", "content": "é" * LIMIT})
            code, reason = closed_with(socket)
        assert code == 1009
        assert str(LIMIT) in reason
        assert client.get(f"{API}/conversations/{conversation}/messages").json()["items"] == []

    def test_a_binary_frame_during_a_turn_closes_and_the_reply_is_kept_cancelled(
        self, client: TestClient
    ) -> None:
        cid = start_conversation(client, token_delay_ms=50)
        with client.websocket_connect(f"{API}/streaming/ws/{cid}") as socket:
            socket.send_json({"type": "message", "content": " ".join(["word"] * 60)})
            assert socket.receive_json()["event"] == "message_start"
            socket.send_bytes(b"\x00\x01")
            message = socket.receive()
            while message["type"] == "websocket.send":  # the tokens already on their way
                message = socket.receive()
            assert message["type"] == "websocket.close"
            assert message["code"] == 1003
        stored = client.get(f"{API}/conversations/{cid}/messages").json()["items"]
        assert stored[-1]["status"] == "cancelled"


class TestOverARealSocket:
    """Through uvicorn and a WebSocket client library, as a browser would see it."""

    async def _conversation(self, base: str) -> str:
        async with httpx.AsyncClient(base_url=base) as http:
            agent = await http.post(f"{API}/agents", json={"name": "ws", "provider": "echo"})
            started = await http.post(
                f"{API}/conversations/start", json={"agent_id": agent.json()["id"]}
            )
            cid: str = started.json()["conversation"]["id"]
            return cid

    @pytest.mark.anyio
    async def test_close_codes_reach_the_client(self, settings: Settings) -> None:
        small = settings.model_copy(update={"max_request_bytes": LIMIT})
        with serve_app(create_app(small)) as base:
            cid = await self._conversation(base)
            url = base.replace("http", "ws", 1) + f"{API}/streaming/ws/{cid}"
            async with connect(url) as socket:
                await socket.send(DEEP[:2000] + DEEP[-2000:])
                assert json.loads(await socket.recv())["data"]["code"] == "invalid_json"
                await socket.send(b"\x00binary")
                with pytest.raises(ConnectionClosedError) as closed:
                    await socket.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1003
            async with connect(url) as socket:
                await socket.send(json.dumps({"type": "message", "content": "x" * LIMIT}))
                with pytest.raises(ConnectionClosedError) as closed:
                    await socket.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1009

    @pytest.mark.anyio
    async def test_a_bad_conversation_id_is_a_close_code_not_a_refused_handshake(
        self, settings: Settings
    ) -> None:
        with serve_app(create_app(settings)) as base:
            socket_base = base.replace("http", "ws", 1) + f"{API}/streaming/ws/"
            for path, code, reason in (
                ("not-a-uuid", 4422, "conversation_id: not a valid UUID"),
                (str(uuid.uuid4()), 4404, "conversation_id: no such conversation"),
            ):
                async with connect(socket_base + path) as socket:  # the handshake succeeds
                    with pytest.raises(ConnectionClosedError) as closed:
                        await socket.recv()
                assert closed.value.rcvd is not None
                assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (code, reason)
