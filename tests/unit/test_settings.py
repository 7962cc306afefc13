"""Settings: where the database is, how the pool and SQLite are tuned; no password ever leaks."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool, StaticPool

from agentkeep import Settings, ValidationError
from agentkeep.config import mask_url
from agentkeep.db.service import DatabaseService

PASSWORD = "p@ss:w/rd%"
UNREACHABLE = "postgresql://agent:s3cret-pw@127.0.0.1:1/agentkeep"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``AGENTKEEP_*`` variable or ``.env`` file from the developer's shell leaks in."""
    for name in list(os.environ):
        if name.startswith("AGENTKEEP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def service_factory() -> Iterator[list[DatabaseService]]:
    """Services made by a test, disposed of at its end."""
    made: list[DatabaseService] = []
    yield made
    for service in made:
        service.dispose()


def _service(made: list[DatabaseService], settings: Settings) -> DatabaseService:
    service = DatabaseService(settings)
    made.append(service)
    return service


class TestWhereTheDatabaseIs:
    def test_default_is_a_sqlite_file_in_the_data_directory(self) -> None:
        url = Settings().url
        assert url is not None
        assert url.get_backend_name() == "sqlite"
        assert url.database == str(Path(".agentkeep") / "agentkeep.db")

    def test_opening_the_default_store_creates_its_data_directory(
        self, tmp_path: Path, service_factory: list[DatabaseService]
    ) -> None:
        service = _service(service_factory, Settings())
        with service.unit("read", single=True) as conn:
            conn.exec_driver_sql("SELECT 1")
        assert (tmp_path / ".agentkeep" / "agentkeep.db").is_file()

    def test_data_dir_moves_the_sqlite_file(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_DATA_DIR", str(tmp_path / "elsewhere"))
        url = Settings().url
        assert url is not None
        assert url.database == str(tmp_path / "elsewhere" / "agentkeep.db")

    def test_database_url_wins_over_everything_else(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AGENTKEEP_DATABASE_URL", "postgresql://u@db.example/app")
        monkeypatch.setenv("AGENTKEEP_DB_HOST", "other.example")
        monkeypatch.setenv("AGENTKEEP_DATA_DIR", "/nowhere")
        url = Settings().url
        assert url is not None
        assert (url.host, url.database) == ("db.example", "app")

    @pytest.mark.parametrize("value", ["memory", "MEMORY", "  memory\n"])
    def test_memory_gives_the_in_memory_store(
        self, monkeypatch: pytest.MonkeyPatch, value: str, service_factory: list[DatabaseService]
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_DATABASE_URL", value)
        settings = Settings()
        assert settings.url is None
        assert settings.masked_url == "memory"
        service = _service(service_factory, settings)
        assert service.is_memory
        assert isinstance(service.engine.pool, StaticPool)

    def test_enable_db_false_gives_the_in_memory_store(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_ENABLE_DB", "false")
        monkeypatch.setenv("AGENTKEEP_DB_HOST", "db.example")
        assert Settings().url is None

    def test_an_empty_database_url_means_unset(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AGENTKEEP_DATABASE_URL", "")
        url = Settings().url
        assert url is not None
        assert url.get_backend_name() == "sqlite"

    def test_a_dotenv_file_in_the_working_directory_is_read(self, tmp_path: Path) -> None:
        (tmp_path / ".env").write_text("AGENTKEEP_DATABASE_URL=memory\n")
        assert Settings().url is None


class TestComposedPostgresUrl:
    @pytest.fixture
    def parts(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AGENTKEEP_DB_HOST", "db.internal")
        monkeypatch.setenv("AGENTKEEP_DB_PORT", "6543")
        monkeypatch.setenv("AGENTKEEP_DB_USER", "agent@corp")
        monkeypatch.setenv("AGENTKEEP_DB_PASSWORD", PASSWORD)
        monkeypatch.setenv("AGENTKEEP_DB_NAME", "memories")

    @pytest.mark.usefixtures("parts")
    def test_host_port_user_password_and_name_compose_a_psycopg_url(self) -> None:
        url = Settings().url
        assert url is not None
        assert url.drivername == "postgresql+psycopg"
        assert (url.host, url.port, url.username, url.database) == (
            "db.internal",
            6543,
            "agent@corp",
            "memories",
        )
        assert url.password == PASSWORD

    @pytest.mark.usefixtures("parts")
    def test_special_characters_are_escaped_and_round_trip_exactly(self) -> None:
        url = Settings().url
        assert url is not None
        rendered = url.render_as_string(hide_password=False)
        assert PASSWORD not in rendered  # escaped, so "@", ":" and "/" cannot end a part early
        parsed = make_url(rendered)
        assert parsed.password == PASSWORD
        assert parsed.username == "agent@corp"
        assert (parsed.host, parsed.port) == ("db.internal", 6543)

    @pytest.mark.usefixtures("parts")
    def test_the_masked_url_shows_everything_but_the_password(self) -> None:
        masked = Settings().masked_url
        assert "***" in masked
        assert "db.internal:6543/memories" in masked
        assert PASSWORD not in masked
        assert "p%40ss" not in masked

    def test_defaults_are_port_5432_and_database_agentkeep(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_DB_HOST", "db.internal")
        url = Settings().url
        assert url is not None
        assert (url.port, url.database) == (5432, "agentkeep")


class TestPasswordsNeverShow:
    def _secret_settings(self, monkeypatch: pytest.MonkeyPatch) -> Settings:
        monkeypatch.setenv("AGENTKEEP_DATABASE_URL", UNREACHABLE)
        monkeypatch.setenv("AGENTKEEP_DB_PASSWORD", "another-s3cret")
        return Settings()

    def test_settings_repr_and_str_hide_the_url_and_password(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        settings = self._secret_settings(monkeypatch)
        for shown in (repr(settings), str(settings), settings.masked_url):
            assert "s3cret-pw" not in shown
            assert "another-s3cret" not in shown

    def test_service_repr_and_engine_repr_hide_the_password(
        self, monkeypatch: pytest.MonkeyPatch, service_factory: list[DatabaseService]
    ) -> None:
        service = _service(service_factory, self._secret_settings(monkeypatch))
        assert "s3cret-pw" not in repr(service)
        assert "s3cret-pw" not in repr(service.engine)
        assert "agent:***@127.0.0.1:1" in repr(service)

    def test_a_password_in_the_query_string_is_masked_too(self) -> None:
        masked = mask_url("postgresql://agent@db/app?sslmode=require&password=s3cret-pw")
        assert "s3cret-pw" not in masked
        assert "sslmode=require" in masked


class TestInvalidUrls:
    @pytest.mark.parametrize("value", ["not a url", "   ", "://nothing"])
    def test_a_malformed_url_is_a_clear_error_naming_the_variable(self, value: str) -> None:
        settings = Settings(database_url=value)
        with pytest.raises(ValueError, match="AGENTKEEP_DATABASE_URL is not a database URL"):
            _ = settings.url

    def test_a_malformed_url_error_does_not_repeat_the_password(self) -> None:
        settings = Settings(database_url="postgresql://agent:s3cret-pw@db:notaport/app")
        with pytest.raises(ValueError, match="AGENTKEEP_DATABASE_URL") as caught:
            DatabaseService(settings)
        assert "s3cret-pw" not in str(caught.value)

    def test_an_unsupported_database_is_a_validation_error(self) -> None:
        with pytest.raises(ValidationError) as caught:
            DatabaseService(Settings(database_url="mysql://agent:s3cret-pw@db/app"))
        assert caught.value.field == "database_url"
        assert "sqlite or postgresql" in caught.value.message
        assert "s3cret-pw" not in caught.value.message


class TestPostgresPool:
    """The pool is built without connecting: port 1 on loopback has nothing listening."""

    def test_defaults_are_twenty_plus_twenty_overflow_pre_ping_and_recycle_300(
        self, service_factory: list[DatabaseService]
    ) -> None:
        service = _service(service_factory, Settings(database_url=UNREACHABLE))
        pool = service.engine.pool
        assert isinstance(pool, QueuePool)
        assert pool.size() == 20
        assert pool._max_overflow == 20
        assert pool._recycle == 300
        # pre-ping is on: connections idle for more than a second are pinged at checkout
        assert len(pool.dispatch.checkout) == 1
        assert service.engine.dialect.driver == "psycopg"

    def test_pre_ping_on_every_checkout_when_the_idle_threshold_is_zero(
        self, service_factory: list[DatabaseService]
    ) -> None:
        settings = Settings(database_url=UNREACHABLE, pool_pre_ping_idle=0)
        pool = _service(service_factory, settings).engine.pool
        assert pool._pre_ping is True
        assert len(pool.dispatch.checkout) == 0

    def test_every_pool_setting_is_overridable_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch, service_factory: list[DatabaseService]
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_DATABASE_URL", UNREACHABLE)
        monkeypatch.setenv("AGENTKEEP_POOL_SIZE", "3")
        monkeypatch.setenv("AGENTKEEP_POOL_MAX_OVERFLOW", "0")
        monkeypatch.setenv("AGENTKEEP_POOL_RECYCLE", "60")
        monkeypatch.setenv("AGENTKEEP_POOL_TIMEOUT", "2.5")
        monkeypatch.setenv("AGENTKEEP_POOL_PRE_PING", "false")
        pool = _service(service_factory, Settings()).engine.pool
        assert isinstance(pool, QueuePool)
        assert (pool.size(), pool._max_overflow, pool._recycle) == (3, 0, 60)
        assert pool.timeout() == 2.5
        assert pool._pre_ping is False
        assert len(pool.dispatch.checkout) == 0

    @pytest.mark.parametrize(
        ("variable", "value"),
        [("AGENTKEEP_POOL_SIZE", "0"), ("AGENTKEEP_POOL_MAX_OVERFLOW", "-1")],
    )
    def test_a_nonsensical_pool_setting_is_refused_at_start_up(
        self, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
    ) -> None:
        monkeypatch.setenv(variable, value)
        with pytest.raises(ValueError, match=variable.removeprefix("AGENTKEEP_").lower()):
            Settings()

    def test_a_plain_postgresql_url_uses_psycopg_3(
        self, service_factory: list[DatabaseService]
    ) -> None:
        settings = Settings(database_url="postgresql://agent@127.0.0.1:1/app")
        assert _service(service_factory, settings).engine.dialect.driver == "psycopg"


class TestHealthWhenUnreachable:
    def test_health_reports_an_error_quickly_and_masks_the_password(
        self, service_factory: list[DatabaseService]
    ) -> None:
        service = _service(service_factory, Settings(database_url=UNREACHABLE))
        started = time.perf_counter()
        report = service.health()
        assert time.perf_counter() - started < 2
        assert report["status"] == "error"
        assert report["version"] is None
        assert (report["host"], report["port"], report["database"]) == ("127.0.0.1", 1, "agentkeep")
        assert report["message"].startswith("Database connection failed")
        assert "s3cret-pw" not in repr(report)
        assert report["url"] == "postgresql://agent:***@127.0.0.1:1/agentkeep"


class TestSqlitePragmas:
    def _pragmas(self, service: DatabaseService) -> dict[str, object]:
        with service.unit("read", single=True) as conn:
            return {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }

    def test_a_file_store_uses_wal_full_sync_foreign_keys_and_a_busy_timeout(
        self, tmp_path: Path, service_factory: list[DatabaseService]
    ) -> None:
        settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}")
        service = _service(service_factory, settings)
        assert self._pragmas(service) == {
            "journal_mode": "wal",
            "synchronous": 2,  # FULL
            "foreign_keys": 1,
            "busy_timeout": 5000,
        }
        assert isinstance(service.engine.pool, QueuePool)

    def test_synchronous_and_busy_timeout_are_configurable(
        self,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        service_factory: list[DatabaseService],
    ) -> None:
        monkeypatch.setenv("AGENTKEEP_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
        monkeypatch.setenv("AGENTKEEP_SQLITE_SYNCHRONOUS", "NORMAL")
        monkeypatch.setenv("AGENTKEEP_SQLITE_BUSY_TIMEOUT_MS", "750")
        pragmas = self._pragmas(_service(service_factory, Settings()))
        assert pragmas["synchronous"] == 1  # NORMAL
        assert pragmas["busy_timeout"] == 750

    def test_an_unknown_synchronous_mode_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AGENTKEEP_SQLITE_SYNCHRONOUS", "SOMETIMES")
        with pytest.raises(ValueError, match="sqlite_synchronous"):
            Settings()

    def test_the_in_memory_store_enforces_foreign_keys_too(
        self, service_factory: list[DatabaseService]
    ) -> None:
        service = _service(service_factory, Settings(database_url="memory"))
        assert self._pragmas(service)["foreign_keys"] == 1
