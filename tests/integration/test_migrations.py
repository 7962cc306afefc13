"""Migrations: empty -> head -> base -> head on SQLite and PostgreSQL, and the schema they make.

Each test gets a database of its own (a new SQLite file, a new PostgreSQL database) because it
downgrades; the shared, migrated contract-test databases are never touched.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from agentkeep import (
    ConversationCreate,
    MemoryCreate,
    MemoryUpdate,
    MessageCreate,
    Settings,
    StorageError,
    ValidationError,
    connect_sync,
)
from agentkeep.db import migrate
from agentkeep.db.rows import Base
from agentkeep.db.service import DatabaseService
from agentkeep.db.tables import agents, modules
from agentkeep.db.types import UTCDateTime
from conftest import fresh_postgres_database

AGENTKEEP_TABLES = set(Base.metadata.tables)
# LangGraph's checkpoints and store (migration "lang")
LANGGRAPH_TABLES = {"graph_checkpoints", "graph_blobs", "graph_writes", "store_items"}
# SQLite's full-text search over messages (migration 0002) and memories (0007): each FTS5 table
# and its shadow tables
SQLITE_SEARCH_TABLES = {
    f"{table}_fts{part}"
    for table in ("messages", "memories")
    for part in ("", "_config", "_data", "_docsize", "_idx")
} | {"memory_vector_log"}  # and the vector cache's change log (0008)

# (table, kind, name, columns): what the hot paths read by, pinned by name
HOT_PATH_KEYS = [
    ("conversations", "index", "ix_conversations_user_id_updated_at", ["user_id", "updated_at"]),
    ("conversations", "index", "ix_conversations_agent_id_updated_at", ["agent_id", "updated_at"]),
    ("conversations", "index", "ix_conversations_user_id_chat_id", ["user_id", "chat_id"]),
    ("messages", "unique", "uq_messages_conversation_id_seq", ["conversation_id", "seq"]),
    (
        "messages",
        "unique",
        "uq_messages_conversation_id_client_id",
        ["conversation_id", "client_id"],
    ),
    ("messages", "index", "ix_messages_message_id", ["message_id"]),
    ("messages", "index", "ix_messages_reply_to_message_id", ["reply_to_message_id"]),
    (
        "conversation_states",
        "unique",
        "uq_conversation_states_conversation_id_scope_state_key",
        ["conversation_id", "scope", "state_key"],
    ),
    ("user_sessions", "unique", "uq_user_sessions_user_id_chat_id", ["user_id", "chat_id"]),
    ("api_keys", "index", "ix_api_keys_key_hash", ["key_hash"]),
    ("memories", "index", "ix_memories_created_at", ["created_at"]),
]


def _sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'fresh.db'}", auto_migrate=False)


def _postgres_settings(server_url: str, name: str = "agentkeep_migrations") -> Settings:
    url = fresh_postgres_database(server_url, name)
    return Settings(database_url=url, auto_migrate=False, pool_size=2)


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for an empty database of this test's own, never migrated."""
    if request.param == "sqlite":
        return _sqlite_settings(tmp_path)
    return _postgres_settings(request.getfixturevalue("postgres_server_url"))


@pytest.fixture
def service(settings: Settings) -> Iterator[DatabaseService]:
    service = DatabaseService(settings)
    yield service
    service.dispose()


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
def migrated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabaseService]:
    """A database migrated to head, shared by the tests that only inspect it."""
    if request.param == "sqlite":
        settings = _sqlite_settings(tmp_path_factory.mktemp("schema"))
    else:
        server = request.getfixturevalue("postgres_server_url")
        settings = _postgres_settings(server, "agentkeep_schema")
    service = DatabaseService(settings)
    migrate.upgrade(service)
    yield service
    service.dispose()


@pytest.fixture
def sqlite_service(tmp_path: Path) -> Iterator[DatabaseService]:
    service = DatabaseService(_sqlite_settings(tmp_path))
    yield service
    service.dispose()


@pytest.fixture
def postgres_service(postgres_server_url: str) -> Iterator[DatabaseService]:
    service = DatabaseService(_postgres_settings(postgres_server_url))
    yield service
    service.dispose()


def _tables(service: DatabaseService) -> set[str]:
    return set(inspect(service.engine).get_table_names())


def _search_tables(service: DatabaseService) -> set[str]:
    return SQLITE_SEARCH_TABLES if service.dialect == "sqlite" else set()


def _search_objects(service: DatabaseService) -> set[str]:
    """The full-text search objects migration 0002 made: tables and triggers, or the index."""
    with service.unit("read", single=True) as conn:
        if service.dialect == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE name LIKE 'messages_fts%'"
        else:
            query = "SELECT indexname FROM pg_indexes WHERE indexname = 'ix_messages_content_fts'"
        return set(conn.scalars(text(query)).all())


def _keys(service: DatabaseService, table: str, kind: str) -> dict[str | None, list[str | None]]:
    inspector = inspect(service.engine)
    if kind == "index":
        return {ix["name"]: list(ix["column_names"]) for ix in inspector.get_indexes(table)}
    return {uq["name"]: list(uq["column_names"]) for uq in inspector.get_unique_constraints(table)}


class TestUpgrade:
    def test_empty_to_head_creates_every_table(self, service: DatabaseService) -> None:
        assert _tables(service) == set()
        migrate.upgrade(service)
        assert _tables(service) == AGENTKEEP_TABLES | {"alembic_version"} | _search_tables(service)

    def test_current_pending_and_head_follow_the_database(self, service: DatabaseService) -> None:
        assert migrate.head() == "0015"
        assert migrate.current(service) is None
        assert migrate.pending(service) is True
        migrate.upgrade(service)
        assert migrate.current(service) == migrate.head()
        assert migrate.pending(service) is False

    def test_the_models_and_the_migrated_database_do_not_drift(
        self, service: DatabaseService
    ) -> None:
        migrate.upgrade(service)
        assert migrate.check(service) == []

    def test_checking_an_unmigrated_database_says_it_is_behind(
        self, service: DatabaseService
    ) -> None:
        with pytest.raises(StorageError, match="not up to date"):
            migrate.check(service)

    def test_upgrading_an_up_to_date_database_changes_nothing(
        self, service: DatabaseService
    ) -> None:
        migrate.upgrade(service)
        migrate.upgrade(service)
        assert migrate.current(service) == migrate.head()
        with service.unit("read", single=True) as conn:
            assert conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1

    def test_an_unknown_revision_is_a_validation_error(self, service: DatabaseService) -> None:
        with pytest.raises(ValidationError, match="unknown revision 'no-such-revision'") as caught:
            migrate.upgrade(service, "no-such-revision")
        assert caught.value.field == "revision"
        assert _tables(service) <= {"alembic_version"}
        with pytest.raises(ValidationError):
            migrate.downgrade(service, "head-nonsense")


class TestUnmigrated:
    def test_an_unmigrated_store_says_to_upgrade_without_a_traceback(
        self, settings: Settings, caplog: pytest.LogCaptureFixture
    ) -> None:
        with connect_sync(settings, upgrade=False) as db:
            for call in (db.conversations.count, lambda: db.create_conversation(user_id="u")):
                with pytest.raises(StorageError) as caught:
                    call()
                assert "does not have agentkeep's tables" in caught.value.message
                assert "agentkeep db upgrade" in caught.value.message
        assert not [r for r in caplog.records if r.exc_info]  # a set-up step, not a failure


class TestSchema:
    @pytest.mark.parametrize(
        ("table", "kind", "name", "columns"),
        HOT_PATH_KEYS,
        ids=[name for _, _, name, _ in HOT_PATH_KEYS],
    )
    def test_the_hot_paths_have_their_index(
        self, migrated: DatabaseService, table: str, kind: str, name: str, columns: list[str]
    ) -> None:
        assert _keys(migrated, table, kind).get(name) == columns

    def test_messages_go_with_their_conversation(self, migrated: DatabaseService) -> None:
        (fk,) = inspect(migrated.engine).get_foreign_keys("messages")
        assert fk["referred_table"] == "conversations"
        assert fk["constrained_columns"] == ["conversation_id"]
        assert fk["options"].get("ondelete") == "CASCADE"

    def test_enumerations_are_checked_by_the_database(self, migrated: DatabaseService) -> None:
        checks = {c["name"] for c in inspect(migrated.engine).get_check_constraints("messages")}
        assert {"ck_messages_message_role", "ck_messages_message_status"} <= checks

    def test_every_primary_key_is_a_uuid(self, migrated: DatabaseService) -> None:
        # LangGraph's tables are keyed by the framework's own ids (thread, namespace, checkpoint);
        # the change log by the order of its entries
        inspector = inspect(migrated.engine)
        keyed_otherwise = {"agent_tools", "agent_modules", "store_changes", *LANGGRAPH_TABLES}
        for table in AGENTKEEP_TABLES - keyed_otherwise:
            columns = {c["name"]: c for c in inspector.get_columns(table)}
            assert inspector.get_pk_constraint(table)["constrained_columns"] == ["id"]
            kind = str(columns["id"]["type"]).upper()
            assert kind in {"UUID", "CHAR(32)"}, (table, kind)


@pytest.mark.postgres
class TestPostgresSchema:
    def test_head_installs_pgvector(self, postgres_service: DatabaseService) -> None:
        migrate.upgrade(postgres_service)
        with postgres_service.unit("read", single=True) as conn:
            installed = conn.scalar(text("SELECT extname FROM pg_extension WHERE extname='vector'"))
        assert installed == "vector"

    def test_column_types_are_native(self, postgres_service: DatabaseService) -> None:
        migrate.upgrade(postgres_service)
        inspector = inspect(postgres_service.engine)
        messages = {c["name"]: str(c["type"]) for c in inspector.get_columns("messages")}
        memories = {c["name"]: str(c["type"]) for c in inspector.get_columns("memories")}
        assert messages["metadata"] == "JSONB"
        assert messages["tool_calls"] == "JSONB"
        assert messages["id"] == "UUID"
        assert memories["embedding"].upper().startswith("VECTOR")
        with postgres_service.unit("read", single=True) as conn:
            naive = conn.scalars(
                text(
                    "SELECT table_name || '.' || column_name FROM information_schema.columns"
                    " WHERE table_schema = 'public' AND data_type = 'timestamp without time zone'"
                )
            ).all()
        assert naive == []  # every timestamp is timestamptz


class TestDowngrade:
    def test_downgrade_to_base_removes_every_agentkeep_table(
        self, service: DatabaseService
    ) -> None:
        migrate.upgrade(service)
        migrate.downgrade(service, "base")
        assert _tables(service) & (AGENTKEEP_TABLES | SQLITE_SEARCH_TABLES) == set()
        assert _search_objects(service) == set()
        assert migrate.current(service) is None
        assert migrate.pending(service) is True

    def test_upgrade_after_downgrade_gives_a_usable_store(
        self, service: DatabaseService, settings: Settings
    ) -> None:
        migrate.upgrade(service)
        migrate.downgrade(service, "base")
        migrate.upgrade(service)
        assert migrate.check(service) == []
        with connect_sync(settings, upgrade=False) as db:
            cid = db.conversations.create(ConversationCreate(user_id="u1")).id
            stored = db.messages.append(cid, MessageCreate(role="user", content="back again"))
            assert stored.seq == 1
            assert [m.content for m in db.messages.last(cid, 5)] == ["back again"]
            assert [m.content for m in db.messages.search("again")] == ["back again"]

    def test_search_migration_goes_down_and_up_and_indexes_existing_messages(
        self, service: DatabaseService, settings: Settings
    ) -> None:
        migrate.upgrade(service)
        made = _search_objects(service)
        assert made
        with connect_sync(settings, upgrade=False) as db:  # kept while 0002 goes down and up
            cid = db.conversations.create(ConversationCreate(user_id="u1")).id
            db.messages.append(cid, MessageCreate(role="user", content="written before search"))
        migrate.downgrade(service, "0001")
        assert migrate.current(service) == "0001"
        assert _search_objects(service) == set()
        # api_keys comes with migration 0003, the change log with 0013
        later = {"api_keys", "embedding_models", "agent_modules", "store_changes"}
        assert _tables(service) == (AGENTKEEP_TABLES - later - LANGGRAPH_TABLES) | {
            "alembic_version"
        }
        migrate.upgrade(service)
        assert _search_objects(service) == made
        assert migrate.check(service) == []
        with connect_sync(settings, upgrade=False) as db:
            assert [m.content for m in db.messages.search("before")] == ["written before search"]

    def test_the_vector_log_goes_down_and_up_and_logs_embedding_changes(
        self, service: DatabaseService, settings: Settings
    ) -> None:
        def log_objects() -> set[str]:
            with service.unit("read", single=True) as conn:
                query = "SELECT name FROM sqlite_master WHERE name LIKE 'memory_vector_log%'"
                return set(conn.execute(text(query)).scalars())

        migrate.upgrade(service)
        if service.dialect != "sqlite":  # PostgreSQL searches through HNSW: no log
            assert "memory_vector_log" not in _tables(service)
            return
        made = log_objects()
        assert made == {"memory_vector_log"} | {
            f"memory_vector_log_{when}" for when in ("insert", "update", "delete", "trim")
        }
        migrate.downgrade(service, "0010")
        assert log_objects() == set()
        migrate.upgrade(service)
        assert log_objects() == made
        assert migrate.check(service) == []
        with connect_sync(settings, upgrade=False) as db:
            bare = db.memories.add(MemoryCreate(content="no vector"))  # not logged
            one = db.memories.add(MemoryCreate(content="x", embedding=[1.0, 0.0]))
            db.memories.update(one.id, MemoryUpdate(content="y"))  # not its embedding: not logged
            db.memories.update(one.id, MemoryUpdate(embedding=[0.0, 1.0]))
            db.memories.delete(one.id)
            db.memories.delete(bare.id)  # had no vector: not logged
        with service.unit("read", single=True) as conn:
            logged = conn.execute(text("SELECT count(*) FROM memory_vector_log")).scalar()
        assert logged == 3

    def test_the_metadata_rename_goes_down_and_up_in_place(
        self, service: DatabaseService, settings: Settings
    ) -> None:
        migrate.upgrade(service)
        with connect_sync(settings, upgrade=False) as db:
            cid = db.conversations.create(ConversationCreate(user_id="u1")).id
            sent = MessageCreate(role="user", content="renamed in place", metadata={"k": [1]})
            mid = db.messages.append(cid, sent).id
        searchable = _search_objects(service)
        rowid = _message_rowid(service, mid)
        migrate.downgrade(service, "0004")
        assert "extra_data" in _columns(service, "messages")
        assert "metadata" not in _columns(service, "messages")
        migrate.upgrade(service)
        assert migrate.check(service) == []
        assert "extra_data" not in _columns(service, "messages")
        # not rebuilt: the same rows under the same rowids, search objects untouched
        assert _message_rowid(service, mid) == rowid
        assert _search_objects(service) == searchable
        with connect_sync(settings, upgrade=False) as db:
            assert db.messages.get(mid).metadata == {"k": [1]}
            assert [m.id for m in db.messages.search("renamed")] == [mid]

    def test_threads_conversations_move_apart_from_histories_and_back(
        self, service: DatabaseService, settings: Settings
    ) -> None:
        migrate.upgrade(service, "0011")
        with connect_sync(settings, upgrade=False) as db:
            thread = db.conversations.create(ConversationCreate(user_id="langchain", chat_id="t1"))
            session = db.conversations.create(ConversationCreate(user_id="langchain", chat_id="s1"))
        with service.unit("write") as conn:
            conn.execute(
                text(
                    "INSERT INTO graph_checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
                    "type, checkpoint, metadata_type, metadata, created_at) VALUES "
                    "('t1', '', 'c1', 'msgpack', :blob, 'msgpack', :blob, :at)"
                ),
                {"blob": b"\x80", "at": datetime.now(UTC)},
            )

        def users() -> tuple[str | None, str | None]:
            with connect_sync(settings, upgrade=False) as db:
                return (
                    db.conversations.get(thread.id).user_id,
                    db.conversations.get(session.id).user_id,
                )

        migrate.upgrade(service)
        assert users() == ("langgraph", "langchain")
        migrate.downgrade(service, "0011")
        assert users() == ("langchain", "langchain")

    def test_memory_expiry_goes_down_and_up_in_place_and_store_items_lend_theirs(
        self, service: DatabaseService, settings: Settings
    ) -> None:
        migrate.upgrade(service)
        with connect_sync(settings, upgrade=False) as db:
            indexing = db.memories.add(MemoryCreate(content="ephemeral coffee"))
            plain = db.memories.add(MemoryCreate(content="lasting coffee"))
        item_expiry = datetime(2030, 1, 1, tzinfo=UTC)
        with service.unit("write") as conn:
            items = sa.table(
                "store_items",
                sa.column("namespace"),
                sa.column("key"),
                sa.column("value", sa.JSON()),
                sa.column("memory_id", sa.Uuid()),
                sa.column("ttl_minutes", sa.Float()),
                sa.column("expires_at", UTCDateTime(timezone=True)),
                sa.column("created_at", UTCDateTime(timezone=True)),
                sa.column("updated_at", UTCDateTime(timezone=True)),
            )
            now = datetime.now(UTC)
            conn.execute(
                items.insert(),
                [
                    {"namespace": "u", "key": "short", "value": {}, "memory_id": indexing.id,
                     "ttl_minutes": 60.0, "expires_at": item_expiry, "created_at": now,
                     "updated_at": now},
                    {"namespace": "u", "key": "bare", "value": {}, "memory_id": None,
                     "ttl_minutes": 1.0, "expires_at": item_expiry, "created_at": now,
                     "updated_at": now},
                ],
            )  # fmt: skip
        rowid = _memory_rowid(service, plain.id)
        searchable = _search_objects(service)
        migrate.downgrade(service, "0013")
        assert "expires_at" not in _columns(service, "memories")
        assert _memory_rowid(service, plain.id) == rowid
        migrate.upgrade(service)  # memories stored before: the items' expiry is given to theirs
        assert migrate.check(service) == []
        assert _memory_rowid(service, plain.id) == rowid  # not rebuilt
        assert _search_objects(service) == searchable
        with connect_sync(settings, upgrade=False) as db:
            assert db.memories.get(indexing.id).expires_at == item_expiry
            assert db.memories.get(plain.id).expires_at is None
            found = {m.id for m in db.memories.match("coffee")}
            assert found == {indexing.id, plain.id}


def _columns(service: DatabaseService, table: str) -> set[str]:
    return {column["name"] for column in inspect(service.engine).get_columns(table)}


def _memory_rowid(service: DatabaseService, memory_id: uuid.UUID) -> object:
    """SQLite's rowid of a memory (what its search entry and vector log refer to); PostgreSQL's
    ctid."""
    rowid = "rowid" if service.dialect == "sqlite" else "ctid"
    with service.unit("read", single=True) as conn:
        column: sa.ColumnElement[object] = sa.literal_column(rowid)
        table = sa.table("memories", sa.column("id", sa.Uuid()))
        return conn.scalar(sa.select(column).select_from(table).where(table.c.id == memory_id))


def _message_rowid(service: DatabaseService, mid: uuid.UUID) -> object:
    """SQLite's rowid of a message (what its search entry is keyed by); PostgreSQL's ctid."""
    rowid = "rowid" if service.dialect == "sqlite" else "ctid"
    with service.unit("read", single=True) as conn:
        column: sa.ColumnElement[object] = sa.literal_column(rowid)
        table = sa.table("messages", sa.column("id", sa.Uuid()))
        return conn.scalar(sa.select(column).select_from(table).where(table.c.id == mid))


class TestMigrationTransaction:
    def test_a_failing_migration_leaves_nothing_behind(self, service: DatabaseService) -> None:
        migrate.upgrade(service)

        def half_done_migration() -> None:
            with migrate.migration_connection(service) as conn:
                Operations(MigrationContext.configure(conn)).create_table(
                    "half_done", sa.Column("id", sa.Integer, primary_key=True)
                )
                raise RuntimeError("the migration broke half-way")

        with pytest.raises(RuntimeError):
            half_done_migration()
        assert "half_done" not in _tables(service)
        assert migrate.check(service) == []

    @pytest.mark.sqlite
    def test_a_batch_rebuild_on_sqlite_keeps_the_rows_that_refer_to_the_table(
        self, sqlite_service: DatabaseService
    ) -> None:
        service, settings = sqlite_service, sqlite_service.settings
        migrate.upgrade(service)
        with connect_sync(settings, upgrade=False) as db:
            cid = db.conversations.create(ConversationCreate(user_id="u1")).id
            db.messages.append(cid, MessageCreate(role="user", content="keep me"))
        with migrate.migration_connection(service) as conn:
            operations = Operations(MigrationContext.configure(conn))
            with operations.batch_alter_table("conversations", recreate="always") as batch:
                batch.add_column(sa.Column("mood", sa.String(20)))
        with connect_sync(settings, upgrade=False) as db:
            assert [m.content for m in db.messages.last(cid, 5)] == ["keep me"]
        with service.unit("read", single=True) as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1

    @pytest.mark.sqlite
    def test_a_migration_that_breaks_a_foreign_key_on_sqlite_is_rolled_back(
        self, sqlite_service: DatabaseService
    ) -> None:
        service = sqlite_service
        migrate.upgrade(service)
        with (
            pytest.raises(StorageError, match="messages"),
            migrate.migration_connection(service) as conn,
        ):
            conn.exec_driver_sql(
                "INSERT INTO messages (id, conversation_id, seq, role, content, metadata,"
                " status, created_at, updated_at) VALUES ('0' , 'missing', 1, 'user', 'x', '{}',"
                " 'complete', '2025-01-01', '2025-01-01')"
            )
        with service.unit("read", single=True) as conn:
            assert conn.scalar(text("SELECT count(*) FROM messages")) == 0
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


class TestInMemoryStore:
    def test_the_in_memory_store_is_migrated_on_connect(self) -> None:
        with connect_sync(Settings(database_url="memory", auto_migrate=False)) as db:
            assert migrate.current(db.service) == migrate.head()
            expected = AGENTKEEP_TABLES | {"alembic_version"} | SQLITE_SEARCH_TABLES
            assert _tables(db.service) == expected
            cid = db.conversations.create(ConversationCreate(user_id="u1")).id
            assert db.messages.append(cid, MessageCreate(role="user", content="hi")).seq == 1

    def test_each_in_memory_store_starts_empty(self) -> None:
        with connect_sync(Settings(database_url="memory")) as first:
            first.conversations.create(ConversationCreate(user_id="u1"))
            with connect_sync(Settings(database_url="memory")) as second:
                assert second.conversations.count() == 0
            assert first.conversations.count() == 1


class TestAgentTokens:
    def test_existing_agents_start_counting_tokens_at_zero(
        self, service: DatabaseService, settings: Settings
    ) -> None:
        migrate.upgrade(service, "0003")
        before = sa.table(  # the agents table as 0003 left it
            "agents",
            *(sa.column(name) for name in ("name", "model_settings", "metadata")),
            *(sa.column(name) for name in ("conversation_count", "message_count")),
            sa.column("include_history", sa.Boolean()),
            sa.column("id", sa.Uuid()),
            sa.column("created_at", UTCDateTime()),
            sa.column("updated_at", UTCDateTime()),
        )
        now = datetime.now(UTC)
        with service.unit("write") as conn:
            conn.execute(
                sa.insert(before).values(
                    id=uuid.uuid4(), name="old", model_settings="{}", metadata="{}",
                    include_history=True, conversation_count=2, message_count=5,
                    created_at=now, updated_at=now,
                )
            )  # fmt: skip
        migrate.upgrade(service)
        with connect_sync(settings, upgrade=False) as db:
            agent = db.agents.find_by_name("old")
            assert agent is not None
            assert (agent.message_count, agent.input_tokens, agent.output_tokens) == (5, 0, 0)
        migrate.downgrade(service, "0003")
        migrate.upgrade(service)
        assert migrate.check(service) == []

    def test_an_agents_modules_move_from_its_metadata_to_links_and_back(
        self, service: DatabaseService, settings: Settings
    ) -> None:
        migrate.upgrade(service, "0007")
        now = datetime.now(UTC)
        agent_id, tone, brief = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        with service.unit("write") as conn:
            for key, name in ((tone, "tone"), (brief, "brief")):
                conn.execute(
                    sa.insert(modules).values(
                        id=key, name=name, type="style", execution_context="IMMEDIATE",
                        created_at=now, updated_at=now,
                    )
                )  # fmt: skip
            conn.execute(
                sa.insert(agents).values(
                    id=agent_id, name="old", model_settings={}, include_history=True,
                    metadata={"modules": ["brief", "gone", "tone"], "team": "ops"},
                    created_at=now, updated_at=now,
                )
            )  # fmt: skip
        migrate.upgrade(service)
        with connect_sync(settings, upgrade=False) as db:
            assert [m.name for m in db.agents.list_modules(agent_id)] == ["brief", "tone"]
            assert db.agents.get(agent_id).metadata == {"team": "ops"}
        migrate.downgrade(service, "0007")
        with service.unit("read") as conn:
            raw = conn.execute(sa.select(agents.c.metadata)).scalar_one()
        assert raw == {"modules": ["brief", "tone"], "team": "ops"}
        migrate.upgrade(service)
        assert migrate.check(service) == []


class TestInstancesStartingTogether:
    def test_several_instances_migrating_one_new_database_at_once_all_start(
        self, settings: Settings
    ) -> None:
        """As replicas of a deployment do: each its own process's store, at the same moment."""
        instances = 4
        start = threading.Barrier(instances)

        def start_instance() -> str | None:
            service = DatabaseService(settings)
            try:
                start.wait()
                migrate.upgrade(service)
                return migrate.current(service)
            finally:
                service.dispose()

        with ThreadPoolExecutor(max_workers=instances) as pool:
            revisions = list(pool.map(lambda _: start_instance(), range(instances)))
        assert revisions == [migrate.head()] * instances
        service = DatabaseService(settings)
        try:
            assert migrate.check(service) == []
        finally:
            service.dispose()

    def test_a_schema_newer_than_this_version_is_refused_clearly(self, settings: Settings) -> None:
        service = DatabaseService(settings)
        try:
            migrate.upgrade(service)
            with service.unit("write") as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
            with pytest.raises(StorageError, match="newer than this agentkeep") as refused:
                migrate.upgrade(service)
            assert migrate.head() in refused.value.message
        finally:
            service.dispose()
