"""Chat turns over the WebSocket (``/api/v1/streaming/ws/{id}``), on every backend."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.testclient import TestClient

from agentkeep import Settings
from agentkeep.api import create_app

API = "/api/v1"
Events = list[tuple[str, dict[str, Any]]]


def text_of(events: Events) -> str:
    return "".join(data["text"] for event, data in events if event == "token")


class TestWebSocket:
    def _conversation(self, client: TestClient, **settings: Any) -> str:
        agent = client.post(
            f"{API}/agents", json={"name": "ws", "provider": "echo", "model_settings": settings}
        ).json()
        started = client.post(
            f"{API}/conversations/start", json={"agent_id": agent["id"], "user_id": "u"}
        )
        cid: str = started.json()["conversation"]["id"]
        return cid

    def _frames(self, socket: Any) -> Events:
        frames: Events = []
        while not frames or frames[-1][0] not in ("message_end", "error"):
            frame = socket.receive_json()
            frames.append((frame["event"], frame["data"]))
        return frames

    def test_turns_stream_over_one_connection(self, settings: Settings) -> None:
        app = create_app(settings)
        with TestClient(app) as client:
            cid = self._conversation(client)
            with client.websocket_connect(f"{API}/streaming/ws/{cid}") as socket:
                for content in ("first message", "second message"):
                    socket.send_json({"type": "message", "content": content})
                    frames = self._frames(socket)
                    assert frames[0][0] == "message_start"
                    assert frames[-1][0] == "message_end"
                    assert content in text_of(frames)
                socket.send_text("not json")
                assert socket.receive_json()["data"]["code"] == "invalid_json"
                socket.send_json({"type": "message"})
                assert socket.receive_json()["data"]["field"] == "content"
            stored = client.get(f"{API}/conversations/{cid}/messages").json()["items"]
            assert [m["role"] for m in stored] == ["user", "assistant"] * 2

    def test_cancel_stops_the_turn_and_keeps_the_partial_reply(self, settings: Settings) -> None:
        app = create_app(settings)
        with TestClient(app) as client:
            cid = self._conversation(client, token_delay_ms=50)
            with client.websocket_connect(f"{API}/streaming/ws/{cid}") as socket:
                words = " ".join(f"w{i}" for i in range(60))
                socket.send_json({"type": "message", "content": words})
                frames: Events = []
                while [e for e, _ in frames].count("token") < 3:
                    frame = socket.receive_json()
                    frames.append((frame["event"], frame["data"]))
                socket.send_json({"type": "cancel"})
                frames += self._frames(socket)
            assert frames[-1] == (
                "message_end",
                {"message_id": frames[0][1]["message_id"], "status": "cancelled"},
            )
            stored = client.get(f"{API}/conversations/{cid}/messages").json()["items"]
            assert stored[-1]["status"] == "cancelled"
            assert 0 < len(stored[-1]["content"]) < len(words)

    def test_an_unknown_conversation_is_closed_with_4404_naming_the_field(
        self, settings: Settings
    ) -> None:
        with (
            TestClient(create_app(settings)) as client,
            client.websocket_connect(f"{API}/streaming/ws/{uuid.uuid4()}") as socket,
        ):
            closed = socket.receive()
        assert closed == {
            "type": "websocket.close",
            "code": 4404,
            "reason": "conversation_id: no such conversation",
        }

    def test_a_malformed_conversation_id_is_closed_with_4422_naming_the_field(
        self, settings: Settings
    ) -> None:
        with (
            TestClient(create_app(settings)) as client,
            client.websocket_connect(f"{API}/streaming/ws/not-a-uuid") as socket,
        ):
            closed = socket.receive()
        assert closed == {
            "type": "websocket.close",
            "code": 4422,
            "reason": "conversation_id: not a valid UUID",
        }

    def test_a_conversation_deleted_while_open_answers_an_error_frame(
        self, settings: Settings
    ) -> None:
        with TestClient(create_app(settings)) as client:
            cid = self._conversation(client)
            with client.websocket_connect(f"{API}/streaming/ws/{cid}") as socket:
                assert client.delete(f"{API}/conversations/{cid}").status_code == 204
                socket.send_json({"type": "message", "content": "hi"})
                frame = socket.receive_json()
                assert frame["event"] == "error"
                assert frame["data"]["code"] == "not_found"
