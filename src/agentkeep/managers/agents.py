"""The agent manager: agents loaded lazily from the store, kept in a bounded LRU cache.

``ensure_agent_instance(agent_id)`` is the one way in. A hit returns the cached instance (a dict
lookup and a move to the LRU's end: microseconds); a miss reads the agent, its persona and its
tools in one read unit of work (one worker-thread hop) and caches them. The active modules, which
every turn reads, are cached the same way.

The cache follows the store, not the HTTP handlers: it listens to the changes the repositories
record (``db.changes``), so a change made through the API, a script or the CLI in this process
reaches it the moment it commits. A changed agent is written through (its new row replaces the
cached one, keeping its persona and tools when those did not change); a new agent without a
persona is placed in the cache ready to run; a changed tool list evicts that agent; a changed
persona, tool or module clears everything (any agent may use it). A change made in another
process (``agentkeep serve --workers``, another instance, a script) is heard of through the
store's change log, which ``ensure_agent_instance`` follows before it trusts the cache (one read
of an index, usually of nothing); entries also expire after ``ttl`` seconds.

What a provider builds from an agent to run it (the ``adk`` provider's ADK ``LlmAgent``) is kept
on its instance (:meth:`AgentInstance.runtime`): built on first use, and built again after any
change above, since a change always replaces or drops the instance that held it.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from agentkeep.config import Settings
from agentkeep.db.changes import EVERYTHING, Change
from agentkeep.models.common import IdLike, to_uuid
from agentkeep.models.config import Agent, Module, Persona, Tool
from agentkeep.models.enums import ExecutionContext
from agentkeep.repositories.base import Async
from agentkeep.repositories.facade import DatabaseManager, Unit

DEFAULT_MODELS = {"echo": "echo-1"}

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class AgentInstance:
    """An agent ready to run: its configuration, persona and tools, and the model it calls."""

    agent: Agent
    persona: Persona | None
    tools: tuple[Tool, ...]
    provider: str
    model: str
    loaded_at: float
    module_ids: frozenset[uuid.UUID] = frozenset()
    """The modules it runs; empty: every active module."""
    runtimes: dict[str, object] = field(default_factory=dict, compare=False, repr=False)
    """What providers built from this configuration, by provider (see :meth:`runtime`)."""

    def runtime(self, key: str, build: Callable[[AgentInstance], R]) -> R:
        """What ``build`` makes of this agent, made once per instance and kept under ``key``.

        The cache replaces the instance when the agent, its persona, tools or modules change, so
        what was built from the old configuration goes with it."""
        found = self.runtimes.get(key)
        if found is None:
            found = self.runtimes[key] = build(self)
        return found  # type: ignore[return-value]  # only ``build`` stores under its key


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0


class AgentManager:
    """Loads agents on first use and keeps the most recently used ``size`` of them."""

    def __init__(
        self,
        db: DatabaseManager[Async],
        settings: Settings,
        *,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._settings = settings
        self._size = settings.agent_cache_size
        self._ttl = ttl
        self._clock = clock
        self._cache: OrderedDict[uuid.UUID, AgentInstance] = OrderedDict()
        self._modules: tuple[float, list[Module], list[Module], list[Module]] | None = None
        self.stats = CacheStats()
        # changes arrive from the thread that committed them
        self._lock = threading.Lock()
        self._generation = 0  # bumped by every change: a load that raced one is not cached
        self.close = db.service.changes.subscribe(self._on_change)
        """Stop following the store's changes."""

    async def ensure_agent_instance(
        self, agent_id: IdLike, *, follow: bool = True
    ) -> AgentInstance:
        """The agent, ready to run; ``NotFoundError`` (field ``agent_id``) if it does not exist.
        ``follow=False``: the caller has just followed the store's changes (:meth:`follow`)."""
        key = to_uuid(agent_id, "agent_id")
        if follow:
            await self.follow()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and self._clock() - cached.loaded_at < self._ttl:
                self._cache.move_to_end(key)
                self.stats.hits += 1
                return cached
            self.stats.misses += 1
            generation = self._generation
        instance = await self._db.run(functools.partial(self._load, key=key), "read")
        with self._lock:
            if generation == self._generation:  # nothing changed while it was read
                self._put(instance)
        return instance

    async def follow(self) -> None:
        """Hear of what other processes changed since the last call (the store's change log):
        every cache that follows the store's changes drops what they made stale."""
        await self._db.follow_changes()

    def _put(self, instance: AgentInstance) -> None:
        key = instance.agent.id
        self._cache[key] = instance
        self._cache.move_to_end(key)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
            self.stats.evictions += 1

    def _load(self, uow: Unit, *, key: uuid.UUID) -> AgentInstance:
        agent = uow.agents.get(key)
        persona = uow.personas.find(agent.persona_id) if agent.persona_id else None
        tools = tuple(uow.agents.list_tools(key).items)
        module_ids = frozenset(module.id for module in uow.agents.list_modules(key))
        return self._instance(agent, persona, tools, module_ids)

    def _instance(
        self,
        agent: Agent,
        persona: Persona | None,
        tools: tuple[Tool, ...],
        module_ids: frozenset[uuid.UUID] = frozenset(),
    ) -> AgentInstance:
        provider = agent.provider or self._settings.provider
        model = agent.model or DEFAULT_MODELS.get(provider) or self._settings.openai_model
        return AgentInstance(agent, persona, tools, provider, model, self._clock(), module_ids)

    def modules(
        self, uow: Unit, instance: AgentInstance | None = None
    ) -> tuple[list[Module], list[Module], list[Module]]:
        """The active IMMEDIATE, POST_RESPONSE and ON_DEMAND modules, in the order they run
        (of ``instance``'s modules when it names some); cached like the agents (every agent's
        turn reads them), read on ``uow`` when not cached."""
        cached = self._modules
        if cached is None or self._clock() - cached[0] >= self._ttl:
            cached = (
                self._clock(),
                uow.modules.for_context(ExecutionContext.IMMEDIATE),
                uow.modules.for_context(ExecutionContext.POST_RESPONSE),
                uow.modules.for_context(ExecutionContext.ON_DEMAND),
            )
            self._modules = cached
        if instance is None or not instance.module_ids:
            return cached[1], cached[2], cached[3]
        chosen = instance.module_ids
        immediate, after, on_demand = (
            [module for module in modules if module.id in chosen] for modules in cached[1:]
        )
        return immediate, after, on_demand

    def _on_change(self, change: Change) -> None:
        kind = change.kind
        if kind not in {
            "agent", "agent_tools", "agent_modules", "persona", "tool", "module", EVERYTHING
        }:  # fmt: skip
            return
        with self._lock:
            self._generation += 1
            if kind in {"agent_tools", "agent_modules"}:
                self._cache.pop(change.key, None)
            elif kind == "agent":
                self._agent_changed(change)
            else:  # any agent may use it (or anything may have changed)
                self._cache.clear()
                self._modules = None

    def _agent_changed(self, change: Change) -> None:
        """Write-through: the changed agent replaces the cached one (called under the lock)."""
        agent: Agent | None = change.value
        cached = self._cache.pop(change.key, None)
        if agent is None:  # deleted
            return
        if cached is not None and cached.agent.persona_id == agent.persona_id:
            fresh = self._instance(agent, cached.persona, cached.tools, cached.module_ids)
        elif change.created and agent.persona_id is None:  # nothing else to read: no tools yet
            fresh = self._instance(agent, None, ())
        else:
            return  # its persona changed: read on first use
        self._put(fresh)

    def evict(self, agent_id: IdLike) -> None:
        """Forget one agent; the next use reloads it."""
        with self._lock:
            self._generation += 1
            self._cache.pop(to_uuid(agent_id, "agent_id"), None)

    def clear(self) -> None:
        """Forget every agent and the modules."""
        with self._lock:
            self._generation += 1
            self._cache.clear()
            self._modules = None

    def __len__(self) -> int:
        return len(self._cache)
