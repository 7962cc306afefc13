"""``agentkeep memory prune|reindex|models|search``, run in-process on SQLite and PostgreSQL
(``AGENTKEEP_DATABASE_URL``), on memories written through the Python API first; and one reindex
interrupted by Ctrl-C in a real process, then finished by running it again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner, Result

from agentkeep import connect_sync
from agentkeep.cli import app
from agentkeep.db.tables import memories
from agentkeep.models.memory import MemoryCreate
from agentkeep.repositories.base import Sync
from agentkeep.repositories.facade import DatabaseManager
from cli_support import run, said

pytestmark = pytest.mark.usefixtures("clean_environment")

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def db(database_url: str) -> Iterator[DatabaseManager[Sync]]:
    with connect_sync(database_url) as store:
        yield store


def run_with_input(answer: str, *args: str) -> Result:
    """Run the command with ``answer`` typed at its prompt."""
    return CliRunner().invoke(app, list(args), input=answer)


def made_ago(db: DatabaseManager[Sync], memory_id: object, age: timedelta) -> None:
    """Back-date a memory (nothing in the API makes an old memory)."""
    moment = datetime.now(UTC) - age
    with db.service.unit("write") as conn:
        conn.execute(
            update(memories)
            .where(memories.c.id == memory_id)
            .values(created_at=moment, updated_at=moment)
        )


def legacy(db: DatabaseManager[Sync], count: int) -> None:
    """Memories the configured embedder did not embed: another model's, and bare ones."""
    db.memories.add_many(
        [
            MemoryCreate(content=f"old fact {i}", embedding=[1.0, float(i), 0.5],
                         embedding_model="old-3")
            if i % 2
            else MemoryCreate(content=f"bare fact {i}")
            for i in range(count)
        ]
    )  # fmt: skip


class TestPrune:
    def test_dry_run_counts_and_deletes_nothing(self, db: DatabaseManager[Sync]) -> None:
        old = db.memory.remember("the old flat in Riga")
        db.memory.remember("the new flat in Tallinn")
        made_ago(db, old.id, timedelta(days=40))
        result = run("memory", "prune", "--older-than", "30d", "--dry-run")
        assert result.exit_code == 0, result.output
        assert "seen 2 memories; would delete 1 (dry run: nothing deleted)" in said(result)
        assert len(db.memory.list().items) == 2

    def test_older_than_with_yes_deletes_only_the_old_ones(self, db: DatabaseManager[Sync]) -> None:
        ancient = [db.memory.remember(f"ancient {i}").id for i in range(3)]
        recent = db.memory.remember("made an hour ago")
        fresh = db.memory.remember("made just now")
        for memory_id in ancient:
            made_ago(db, memory_id, timedelta(hours=30))
        made_ago(db, recent.id, timedelta(minutes=61))
        result = run("memory", "prune", "--older-than", "2d", "--yes")
        assert result.exit_code == 0, result.output
        assert "seen 5 memories; deleted 0" in said(result)  # none older than two days
        result = run("memory", "prune", "--older-than", "90m", "--yes")
        assert result.exit_code == 0, result.output
        assert "seen 5 memories; deleted 3" in said(result)
        assert "5/5" in said(result)  # the progress bar reached the end
        assert {m.id for m in db.memory.list().items} == {recent.id, fresh.id}

    def test_expired_deletes_the_memories_whose_expiry_has_passed(
        self, db: DatabaseManager[Sync]
    ) -> None:
        lapsing = db.memory.remember(
            "the gate code is 4411", expires_at=datetime.now(UTC) + timedelta(seconds=0.3)
        )
        later = db.memory.remember(
            "back on Friday", expires_at=datetime.now(UTC) + timedelta(days=1)
        )
        lasting = db.memory.remember("likes jazz")
        time.sleep(0.4)
        counted = run("memory", "prune", "--expired", "--dry-run")
        assert "seen 3 memories; would delete 1 (dry run: nothing deleted)" in said(counted)
        assert db.memories.get(lapsing.id).content == "the gate code is 4411"  # still there
        result = run("memory", "prune", "--expired", "--yes")
        assert result.exit_code == 0, result.output
        assert "seen 3 memories; deleted 1" in said(result)
        assert db.memories.find(lapsing.id) is None
        assert {m.id for m in db.memory.list().items} == {later.id, lasting.id}

    def test_below_a_score_asks_first_and_a_no_keeps_everything(
        self, db: DatabaseManager[Sync]
    ) -> None:
        low = db.memory.remember("trivial", importance=0.0)
        high = db.memory.remember("vital", importance=1.0)
        made_ago(db, low.id, timedelta(days=365))  # recency ~0: its lasting score is ~0
        refused = run_with_input("n\n", "memory", "prune", "--below", "0.5")
        assert refused.exit_code == 1
        assert "delete 1 of 2 memories?" in said(refused)
        assert len(db.memory.list().items) == 2
        agreed = run_with_input("y\n", "memory", "prune", "--below", "0.5")
        assert agreed.exit_code == 0, agreed.output
        assert "seen 2 memories; deleted 1" in said(agreed)
        assert [m.id for m in db.memory.list().items] == [high.id]

    def test_nothing_to_prune_asks_nothing(self, db: DatabaseManager[Sync]) -> None:
        db.memory.remember("vital", importance=1.0)
        result = run("memory", "prune", "--below", "0.1")
        assert result.exit_code == 0, result.output
        assert "seen 1 memories; none to delete" in said(result)

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            ((), "say what to prune"),
            (("--older-than", "30 days"), "must be an age like 30d"),
            (("--older-than", "0d"), "must be a positive age"),
            (("--older-than", "-3h"), "must be an age like 30d"),
            (("--older-than", "99999999999d"), "too long an age"),
            (("--below", "3"), "below must be a score between 0 and 1"),
        ],
    )
    def test_bad_input_is_refused_with_exit_code_2(
        self, db: DatabaseManager[Sync], args: tuple[str, ...], message: str
    ) -> None:
        db.memory.remember("kept")
        result = run("memory", "prune", *args, "--yes")
        assert result.exit_code == 2, result.output
        assert message in said(result)
        assert len(db.memory.list().items) == 1

    @pytest.mark.parametrize("below", ["2", "-0.5", "nan"])
    def test_a_bad_score_is_refused_before_anything_is_counted(
        self, db: DatabaseManager[Sync], below: str
    ) -> None:
        db.memory.remember("kept")
        result = run("memory", "prune", "--below", below)
        assert result.exit_code == 2, result.output
        assert said(result) == "error: --below must be a score between 0 and 1"
        assert len(db.memory.list().items) == 1


class TestReindex:
    def test_re_embeds_what_the_embedder_did_not_embed_in_batches(
        self, db: DatabaseManager[Sync]
    ) -> None:
        legacy(db, 7)
        kept = db.memory.remember("already embedded by the configured embedder")
        result = run("memory", "reindex", "--batch-size", "2")
        assert result.exit_code == 0, result.output
        assert "re-embedded 7 memories with hash-384" in said(result)
        assert "7/7" in said(result)
        assert db.memory.remaining_to_reindex() == 0
        assert {m.embedding_model for m in db.memory.list().items} == {"hash-384"}
        assert db.memory.get(kept.id).embedding == kept.embedding
        again = run("memory", "reindex")
        assert again.exit_code == 0, again.output
        assert "nothing to do" in said(again)

    def test_a_stopped_reindex_is_finished_by_the_next_run(self, db: DatabaseManager[Sync]) -> None:
        legacy(db, 10)

        def stop(done: int) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            db.memory.reindex(batch_size=3, on_batch=stop)
        assert db.memory.remaining_to_reindex() == 7  # the first batch was kept
        result = run("memory", "reindex", "--batch-size", "3")
        assert result.exit_code == 0, result.output
        assert "re-embedded 7 memories" in said(result)
        assert db.memory.remaining_to_reindex() == 0

    def test_an_unusable_embedder_or_batch_size_is_refused(
        self, db: DatabaseManager[Sync], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        legacy(db, 2)
        assert run("memory", "reindex", "--batch-size", "0").exit_code == 2
        monkeypatch.setenv("AGENTKEEP_EMBEDDER", "nonsense")
        result = run("memory", "reindex")
        assert result.exit_code == 2
        assert "AGENTKEEP_EMBEDDER" in said(result)
        assert db.memory.remaining_to_reindex() == 2


@pytest.mark.slow
@pytest.mark.sqlite
def test_ctrl_c_stops_a_reindex_that_a_second_run_finishes(
    tmp_path: Path, clean_environment: None
) -> None:
    url = f"sqlite:///{tmp_path / 'memories.db'}"
    with connect_sync(url) as store:
        legacy(store, 3000)
    env = {**os.environ, "AGENTKEEP_DATABASE_URL": url, "PYTHONPATH": str(SRC)}
    command = [sys.executable, "-m", "agentkeep", "memory", "reindex", "--batch-size", "1"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    with connect_sync(url) as store:
        deadline = time.monotonic() + 60
        while store.memories.count_not_embedded_with("hash-384") == 3000:
            assert time.monotonic() < deadline, "the reindex never started"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0].decode()
        assert process.returncode == 130, output
        assert "interrupted:" in output
        assert "run it again to finish" in output
        left = store.memories.count_not_embedded_with("hash-384")
        assert 0 < left < 3000
    finished = subprocess.run(
        command, check=False, env=env, capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert f"re-embedded {left} memories" in " ".join(finished.stdout.split())
    with connect_sync(url) as store:
        assert store.memories.count_not_embedded_with("hash-384") == 0


class TestModels:
    def test_lists_models_with_counts_and_the_configured_embedder(
        self, db: DatabaseManager[Sync]
    ) -> None:
        legacy(db, 4)  # two of model old-3, two bare
        db.memory.remember("one of the embedder's")
        result = run("memory", "models")
        assert result.exit_code == 0, result.output
        text = said(result)
        assert "old-3 3 2" in text
        assert "hash-384 384 1 yes" in text
        assert "configured embedder: hash-384" in text
        assert "4 memories are not embedded by hash-384" in text

    def test_an_empty_store_says_so(self, db: DatabaseManager[Sync]) -> None:
        result = run("memory", "models")
        assert result.exit_code == 0, result.output
        assert "no embedding model yet" in said(result)


class TestSearch:
    def test_prints_the_hits_with_their_score_parts_and_counts_no_access(
        self, db: DatabaseManager[Sync]
    ) -> None:
        mine = db.memory.remember("Alice likes green tea", user_id="u1", memory_type="fact")
        db.memory.remember("Alice likes green tea too", user_id="u2")
        db.memory.remember("the weather in Oslo", user_id="u1")
        result = run("memory", "search", "green tea", "--user", "u1", "-k", "1")
        assert result.exit_code == 0, result.output
        text = said(result)
        for column in ("score", "rel", "sim", "kw", "imp", "rec", "relevance", "recency"):
            assert column in text
        assert str(mine.id) in text
        assert "1 memories" in text
        assert "too" not in text  # the other user's
        assert db.memory.get(mine.id).access_count == 0

    def test_a_store_of_only_another_models_vectors_is_searched_by_words(
        self, db: DatabaseManager[Sync]
    ) -> None:
        tea = db.memory.remember(
            "likes tea", user_id="u", embedding=[0.1, 0.2, 0.3], embedding_model="my-model"
        )
        result = run("memory", "search", "tea", "--user", "u")
        assert result.exit_code == 0, result.output
        assert str(tea.id) in said(result)
        assert "1 memories" in said(result)

    def test_no_match_and_bad_input(self, db: DatabaseManager[Sync]) -> None:
        db.memory.remember("Alice likes green tea", user_id="u1")
        result = run("memory", "search", "tea", "--user", "nobody")
        assert result.exit_code == 0, result.output
        assert "no memory matches" in said(result)
        blank = run("memory", "search", "   ")
        assert blank.exit_code == 2
        assert "query must have some text" in said(blank)
        too_many = run("memory", "search", "tea", "-k", "0")
        assert too_many.exit_code == 2
        assert "k must be between" in said(too_many)
