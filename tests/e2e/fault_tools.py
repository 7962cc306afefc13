"""What the fault tests share: clients that append until stopped, streams held open, and checks
that what was acknowledged is stored, sequences have no gap and counters match the rows."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from test_serve import Server

REQUEST_BOUND = 5.0
"""No request may take longer than this, fault or not (seconds)."""


@dataclass
class Outcome:
    """One append: its status (0: no answer), how long it took, what it stored."""

    status: int
    seconds: float
    retry_after: str | None = None
    stored: dict[str, Any] | None = None


@dataclass
class Appenders:
    """Client threads appending to conversations until told to stop (or the server is gone)."""

    base: str
    conversations: list[str]
    clients: int
    stop_on_failure: bool = True
    outcomes: list[Outcome] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Appenders:
        for number in range(self.clients):
            thread = threading.Thread(target=self._client, args=(number,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def finish(self) -> list[Outcome]:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=REQUEST_BOUND * 2)
        return self.outcomes

    def acknowledged(self) -> list[dict[str, Any]]:
        return [o.stored for o in self.outcomes if o.stored is not None]

    def _client(self, number: int) -> None:
        # two clients per conversation: sequence numbers are contended
        conversation = self.conversations[number % len(self.conversations)]
        path = f"/api/v1/conversations/{conversation}/message"
        with httpx.Client(base_url=self.base, timeout=REQUEST_BOUND, trust_env=False) as client:
            i = 0
            while not self.stop.is_set():
                i += 1
                body = {
                    "role": "user",
                    "content": f"client {number} message {i}",
                    "input_tokens": i % 7,
                    "output_tokens": number,
                }
                started = time.monotonic()
                try:
                    response = client.post(path, json=body)
                except httpx.TransportError:
                    self.outcomes.append(Outcome(0, time.monotonic() - started))
                    if self.stop_on_failure:
                        return
                    time.sleep(0.05)
                    continue
                outcome = Outcome(
                    response.status_code,
                    time.monotonic() - started,
                    response.headers.get("Retry-After"),
                    response.json() if response.status_code == 201 else None,
                )
                self.outcomes.append(outcome)
                if response.status_code != 201:
                    time.sleep(0.05)  # a client backing off, as Retry-After asks


def new_conversations(server: Server, count: int) -> list[str]:
    with server.client() as client:
        started = [
            client.post("/api/v1/conversations/start", json={"user_id": f"u{n}"})
            for n in range(count)
        ]
    return [response.json()["conversation"]["id"] for response in started]


def assert_all_kept(
    server: Server, acknowledged: list[dict[str, Any]], conversations: list[str]
) -> None:
    """Every acknowledged append is stored as it was acknowledged; sequences have no gap."""
    stored: dict[str, dict[str, Any]] = {}
    with server.client() as client:
        for conversation in conversations:
            messages = read_all(client, conversation)
            assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
            info = client.get(f"/api/v1/conversations/{conversation}").json()
            assert info["message_count"] == len(messages)
            assert info["input_tokens"] == sum(m["input_tokens"] or 0 for m in messages)
            assert info["output_tokens"] == sum(m["output_tokens"] or 0 for m in messages)
            stored.update({m["id"]: m for m in messages})
    for ack in acknowledged:
        kept = stored.get(ack["id"])
        assert kept is not None, f"acknowledged message {ack['seq']} was lost"
        assert (kept["seq"], kept["content"]) == (ack["seq"], ack["content"])


def read_all(client: httpx.Client, conversation: str) -> list[dict[str, Any]]:
    """A conversation's messages, oldest first, page by page."""
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {"limit": 200}
    while True:
        page = client.get(f"/api/v1/conversations/{conversation}/messages", params=params)
        assert page.status_code == 200, page.text
        pages.insert(0, page.json()["items"])
        if page.json()["next_cursor"] is None:
            return [m for items in pages for m in items]
        params["before"] = page.json()["next_cursor"]


def assert_consistent(url: str) -> None:
    """The database's own integrity check (SQLite) and counters matching rows (both)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            drift = conn.execute(
                text(
                    "SELECT c.id FROM conversations c LEFT JOIN messages m "
                    "ON m.conversation_id = c.id GROUP BY c.id, c.message_count, c.last_sequence "
                    "HAVING c.message_count <> count(m.id) "
                    "OR c.last_sequence <> coalesce(max(m.seq), 0)"
                )
            ).all()
            assert drift == []
    finally:
        engine.dispose()


def wait_for_an_append(load: Appenders, since: int, *, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if any(o.status == 201 for o in load.outcomes[since:]):
            return True
        time.sleep(0.05)
    return False


@contextmanager
def held_streams(server: Server, body: dict[str, Any], count: int) -> Iterator[list[str]]:
    """``count`` streamed turns, each read up to its ``message_start`` and then held open (so
    the turns run on) until the block ends; yields their replies' ids."""
    started: list[str] = []
    release = threading.Event()

    def stream() -> None:
        with (
            server.client() as client,
            client.stream("POST", "/api/v1/streaming/start", json=body) as response,
        ):
            # kept referenced: closing the generator (as a bare ``for … break`` would) hangs up
            lines = response.iter_lines()
            for line in lines:
                if line.startswith("data:"):
                    started.append(json.loads(line.removeprefix("data:"))["message_id"])
                    break
            release.wait(timeout=REQUEST_BOUND * 2)
            del lines

    threads = [threading.Thread(target=stream, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + REQUEST_BOUND
    while len(started) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(started) == count, "the turns did not start"
    try:
        yield started
    finally:
        release.set()
        for thread in threads:
            thread.join(timeout=REQUEST_BOUND)


def reply_statuses(url: str) -> list[tuple[str, str]]:
    """(status, content) of every assistant reply."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT status, content FROM messages WHERE role = 'assistant'")
            ).all()
            return [(str(status).lower(), content) for status, content in rows]
    finally:
        engine.dispose()


def streaming_replies(url: str) -> int:
    return sum(1 for status, _ in reply_statuses(url) if status == "streaming")


def fill(disk: Path) -> Path:
    """Write a file until the filesystem has no room left; return it (delete it to make room)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (65_536, 1):  # big pieces, then the last few bytes
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError:
                pass
    return filler
