"""``agentkeep conversations abandon-idle|purge``, run in-process on SQLite and PostgreSQL
(``AGENTKEEP_DATABASE_URL``), on conversations written through the Python API first."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from agentkeep import connect_sync
from agentkeep.models.conversation import ConversationCreate, MessageCreate
from agentkeep.repositories.base import Sync
from agentkeep.repositories.facade import DatabaseManager
from cli_support import run, said

pytestmark = pytest.mark.usefixtures("clean_environment")


@pytest.fixture
def db(database_url: str) -> Iterator[DatabaseManager[Sync]]:
    with connect_sync(database_url) as store:
        yield store


def started(db: DatabaseManager[Sync], count: int, *, user: str = "u1") -> list[str]:
    ids = []
    for n in range(count):
        conversation = db.conversations.create(
            ConversationCreate(user_id=user, chat_id="c1", title=f"expense {n}")
        )
        db.messages.append(conversation.id, MessageCreate(role="user", content="coffee 300"))
        ids.append(str(conversation.id))
    return ids


class TestAbandonIdle:
    def test_abandons_the_idle_active_conversations_and_lists_them(
        self, db: DatabaseManager[Sync]
    ) -> None:
        ids = started(db, 2)
        result = run("conversations", "abandon-idle", "--idle-seconds", "0")
        assert result.exit_code == 0, result.output
        assert "abandoned 2 conversation(s)" in said(result)
        for cid in ids:
            assert cid in said(result)
            assert db.conversations.get(cid).status == "abandoned"

    def test_leaves_recent_conversations_alone(self, db: DatabaseManager[Sync]) -> None:
        (cid,) = started(db, 1)
        result = run("conversations", "abandon-idle", "--idle-seconds", "3600")
        assert result.exit_code == 0, result.output
        assert "no active conversation has been idle" in said(result)
        assert db.conversations.get(cid).status == "active"

    def test_a_negative_idle_time_is_refused_with_exit_code_2(
        self, db: DatabaseManager[Sync]
    ) -> None:
        result = run("conversations", "abandon-idle", "--idle-seconds", "-5")
        assert result.exit_code == 2
        assert "--idle-seconds must be a number of seconds from 0 to" in said(result)

    @pytest.mark.parametrize("seconds", ["99999999999999999999", "1e300", "inf", "nan"])
    def test_an_idle_time_beyond_a_century_is_refused_with_exit_code_2(
        self, db: DatabaseManager[Sync], seconds: str
    ) -> None:
        (cid,) = started(db, 1)
        result = run("conversations", "abandon-idle", "--idle-seconds", seconds)
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "Traceback" not in result.output
        assert "--idle-seconds must be a number of seconds from 0 to" in said(result)
        assert db.conversations.get(cid).status == "active"


class TestPurge:
    def test_dry_run_counts_then_the_real_purge_deletes_in_batches(
        self, db: DatabaseManager[Sync]
    ) -> None:
        ids = started(db, 5)
        kept = started(db, 1, user="u2")
        db.abandon_idle_conversations(timedelta(0))
        db.resume_conversation(kept[0])

        dry = run(
            "conversations", "purge", "--status", "abandoned", "--older-than-seconds", "0",
            "--dry-run",
        )  # fmt: skip
        assert dry.exit_code == 0, dry.output
        assert "would delete 5 abandoned conversation(s)" in said(dry)
        assert all(db.conversations.find(cid) is not None for cid in ids)

        real = run(
            "conversations", "purge", "--status", "abandoned", "--older-than-seconds", "0",
            "--batch-size", "2",
        )  # fmt: skip
        assert real.exit_code == 0, real.output
        assert "5/5" in said(real)  # the progress bar reached the end
        assert "deleted 5 abandoned conversation(s)" in said(real)
        assert all(db.conversations.find(cid) is None for cid in ids)
        assert db.conversations.get(kept[0]).status == "active"
        assert db.messages.list(kept[0]).items

    def test_nothing_old_enough_deletes_nothing(self, db: DatabaseManager[Sync]) -> None:
        (cid,) = started(db, 1)
        db.abandon_idle_conversations(timedelta(0))
        result = run(
            "conversations", "purge", "--status", "abandoned", "--older-than-seconds", "3600"
        )
        assert result.exit_code == 0, result.output
        assert "deleted 0 abandoned" in said(result)
        assert db.conversations.find(cid) is not None

    def test_an_unknown_status_is_refused_with_exit_code_2(self, db: DatabaseManager[Sync]) -> None:
        result = run("conversations", "purge", "--status", "gone", "--older-than-seconds", "0")
        assert result.exit_code == 2
        message = " ".join(said(result).split())
        assert "--status must be one of active, completed, abandoned, not 'gone'" in message
        assert "Value error" not in message

    @pytest.mark.parametrize("dry_run", [["--dry-run"], []])
    @pytest.mark.parametrize("seconds", ["99999999999999999999", "1e300", "inf", "nan"])
    def test_an_age_beyond_a_century_is_refused_with_exit_code_2(
        self, db: DatabaseManager[Sync], seconds: str, dry_run: list[str]
    ) -> None:
        started(db, 1)
        result = run(
            "conversations", "purge", "--status", "active", "--older-than-seconds", seconds,
            *dry_run,
        )  # fmt: skip
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "--older-than-seconds" in said(result)
        assert db.conversations.count() == 1
