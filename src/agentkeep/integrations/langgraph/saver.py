"""LangGraph checkpoints in agentkeep: :class:`AgentkeepSaver`.

Storage (``repositories.graphs``): a checkpoint row without its channel values; each channel's
value once per version in ``graph_blobs``, so a step stores only the channels it changed; and a
list that grew by appending (the ``messages`` channel of a chat graph) as the items appended
since the version this saver last stored or read (``lists``). A 200-turn conversation therefore
stores each message once instead of the whole history every step, and a read rebuilds the list
in one recursive query. State must be updated by returning new values, as LangGraph requires: an
item changed in place after it was checkpointed is not stored again. The thread's messages are
shown as the messages of its conversation (``mirror``).

A put's values are all serialised and checked before its unit of work opens (checkpoint,
channel versions, messages); its statements run on the driver, compiled once
(``repositories.graphs``): every channel version in one ``INSERT … SELECT`` (an appended one
stored only while the version it extends is), the checkpoint in one upsert, the thread's new
messages in one counter update and one insert, all in one transaction. On PostgreSQL, once the
saver knows the thread's conversation, a put is one statement sent without ``BEGIN``/``COMMIT``
(one round trip) that stores everything only if every version it extends and the conversation
are still there; if not (another process deleted the thread or the conversation), the put runs
in a transaction as above, which stores the version whole and finds or makes the conversation.
A SQLite put's commit may be shared with other threads' writes (group commit), such as the
pending writes of the next task while LangGraph stores a checkpoint in the background; a task's
pending writes are one statement too.

Semantics follow LangGraph's ``InMemorySaver`` and ``SqliteSaver``: thread id, checkpoint
namespace and checkpoint id address a checkpoint; without a checkpoint id the newest one (by id)
is read; ``list`` is newest first with ``filter`` (metadata equality), ``before`` and ``limit``.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from agentkeep.config import Settings
from agentkeep.integrations.langchain import async_store, sync_store
from agentkeep.integrations.langgraph import reads
from agentkeep.integrations.langgraph.lists import Last, ListKey, Lists
from agentkeep.integrations.langgraph.mirror import Mirror
from agentkeep.repositories import graphs
from agentkeep.repositories.base import in_worker_thread
from agentkeep.repositories.facade import DatabaseManager, Unit, connect_sync

T = TypeVar("T")


class _Put(NamedTuple):
    """A put prepared: its one statement (``None``: none can store it), the transaction that
    stores it otherwise, its config, the lists to remember once it is stored."""

    at_once: Callable[[Unit], bool] | None
    work: Callable[[Unit], None]
    config: RunnableConfig
    remembered: list[tuple[ListKey, Last]]


class AgentkeepSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpoint saver over an agentkeep store (sync and async).

    Example:
        >>> import agentkeep
        >>> saver = AgentkeepSaver(agentkeep.connect("app.db"))
        >>> graph = builder.compile(checkpointer=saver)
        >>> graph.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "t1"}})

    Args:
        db: A store from ``agentkeep.connect`` or ``agentkeep.connect_sync``.
        serde: LangGraph's serializer (its default if not given).
        messages_channel: The channel shown as the thread's conversation (``None``: none).
    """

    def __init__(
        self,
        db: DatabaseManager[Any],
        *,
        serde: SerializerProtocol | None = None,
        messages_channel: str | None = "messages",
    ) -> None:
        super().__init__(serde=serde)
        self._sync = sync_store(db)
        self._async = async_store(db)
        self._lists = Lists()
        self._mirror = Mirror(self._sync.service.settings, messages_channel, self._lists)

    @property
    def messages_channel(self) -> str | None:
        """The channel shown as the thread's conversation (``None``: none)."""
        return self._mirror.channel

    @classmethod
    def from_url(cls, url: Settings | str | os.PathLike[str], **options: Any) -> AgentkeepSaver:
        """A saver on the store at ``url`` (as ``agentkeep.connect_sync`` takes it)."""
        return cls(connect_sync(url), **options)

    # -- versions -------------------------------------------------------------------------------

    def get_next_version(self, current: str | None, channel: None) -> str:
        """A version after ``current``: an increasing counter and a random part, so versions made
        on two branches of a thread never collide (as ``SqliteSaver`` makes them)."""
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(current.split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    def _forget_thread(self, thread_id: str) -> None:
        self._lists.forget_thread(thread_id)
        self._mirror.forget(thread_id)

    # -- writes ---------------------------------------------------------------------------------

    def _write(self, work: Callable[[Unit], T], single: bool = False) -> T:
        """``work`` in a write unit that may share its commit with other threads' writes (a
        background checkpoint and the next task's writes, say): one fsync for both.
        ``single``: ``work`` is one statement, atomic by itself (on PostgreSQL it then runs
        without ``BEGIN``/``COMMIT``: one round trip)."""
        return self._sync.run_unit("write", work, single=single, grouped=True)

    async def _awrite(self, work: Callable[[Unit], T], single: bool = False) -> T:
        return await in_worker_thread(self._write, work, single)

    # -- put ------------------------------------------------------------------------------------

    def _prepare_put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> _Put:
        """Everything a put stores, serialised and checked before its unit of work opens (which
        then only runs statements: the checkpoint, the channel versions, the thread's new
        messages)."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = str(configurable.get("checkpoint_ns", ""))
        values = checkpoint["channel_values"]
        stored = {key: value for key, value in checkpoint.items() if key != "channel_values"}
        type_, data = self.serde.dumps_typed(stored)
        meta = get_checkpoint_metadata(config, metadata)
        meta_type, meta_data = self.serde.dumps_typed(meta)
        run_id = meta.get("run_id")
        row = {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint["id"],
            "parent_checkpoint_id": configurable.get("checkpoint_id"),
            "type": type_,
            "checkpoint": data,
            "metadata_type": meta_type,
            "metadata": meta_data,
            "run_id": None if run_id is None else str(run_id),
        }
        # the messages first: what they find out about the list the put extends, the list's
        # next version (planned next) carries on
        new_messages = self._mirror.plan(thread_id, ns, values, new_versions)
        planned = self._lists.plan(self.serde, thread_id, ns, values, new_versions)
        blobs = planned.rows()

        def work(uow: Unit) -> None:
            conn = uow.connection
            shown = None if new_messages is None else new_messages.shown(uow)
            stored, appended = graphs.put_checkpoint(conn, row, blobs, shown)
            if stored < len(blobs) and planned.appended:
                # a version stored as appended items was not stored: the version it extends is
                # gone (another process deleted the thread), or it was stored already (then
                # this changes nothing): store it whole
                whole = [Lists.whole(self.serde, blob, value) for blob, value in planned.appended]
                graphs.put_blobs(conn, whole)
            if new_messages is not None and shown is not None:
                new_messages.stored(uow, shown, appended)

        at_once: Callable[[Unit], bool] | None = None
        ready = None if new_messages is None else new_messages.ready()
        if (
            (new_messages is None or ready is not None)
            and graphs.one_statement(self._sync.service.dialect, len(blobs))
            and (ready is None or len(ready.rows) <= graphs.ROWS_PER_STATEMENT)
        ):

            def at_once(uow: Unit) -> bool:
                return graphs.put_checkpoint_at_once(uow.connection, row, blobs, ready)

        next_config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint["id"],
            }
        }
        return _Put(at_once, work, next_config, planned.remembered)

    def _store(self, put: _Put) -> RunnableConfig:
        """Run a prepared put: in one statement if it can (PostgreSQL, the thread's conversation
        known), else (or if that statement could not store it all) in a transaction."""
        if put.at_once is None or not self._write(put.at_once, single=True):
            self._write(put.work)
        for key, last in put.remembered:
            self._lists.remember(key, last)
        return put.config

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint with the channel values of its new versions; return its config."""
        return self._store(self._prepare_put(config, checkpoint, metadata, new_versions))

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint (one worker-thread hop); return its config."""
        put = self._prepare_put(config, checkpoint, metadata, new_versions)
        return await in_worker_thread(self._store, put)

    # -- pending writes -------------------------------------------------------------------------

    def _writes_work(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, path: str
    ) -> tuple[Callable[[Unit], None], bool]:
        """What stores a task's writes, and whether it is one statement."""
        configurable = config["configurable"]
        base = {
            "thread_id": str(configurable["thread_id"]),
            "checkpoint_ns": str(configurable.get("checkpoint_ns", "")),
            "checkpoint_id": str(configurable["checkpoint_id"]),
            "task_id": task_id,
            "task_path": path,
        }
        rows = []
        for idx, (channel, value) in enumerate(writes):
            kind, payload = self.serde.dumps_typed(value)
            rows.append(
                {
                    **base,
                    "idx": WRITES_IDX_MAP.get(channel, idx),
                    "channel": channel,
                    "type": kind,
                    "value": payload,
                }
            )
        replace = all(channel in WRITES_IDX_MAP for channel, _ in writes)

        def work(uow: Unit) -> None:
            graphs.put_writes(uow.connection, rows, replace=replace)

        return work, len(rows) <= graphs.ROWS_PER_STATEMENT

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes for the checkpoint ``config`` names."""
        self._write(*self._writes_work(config, writes, task_id, task_path))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes (one worker-thread hop)."""
        await self._awrite(*self._writes_work(config, writes, task_id, task_path))

    # -- reads ----------------------------------------------------------------------------------

    def _get_work(self, config: RunnableConfig) -> reads.Work[reads.Found]:
        return reads.get_work(self.serde, config)

    def _read_back(self, read: reads.Found) -> CheckpointTuple | None:
        """Remember the lists a graph is about to continue from (so its next step stores only
        what it appends)."""
        found, depths = read
        if found is None:
            return None
        configurable = found.config["configurable"]
        thread_id, ns = configurable["thread_id"], configurable["checkpoint_ns"]
        versions = found.checkpoint.get("channel_versions", {})
        for channel, value in found.checkpoint["channel_values"].items():
            if isinstance(value, list) and channel in versions:
                version = str(versions[channel])
                self._lists.read(thread_id, ns, channel, version, value, depths.get(channel))
        return found

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names (the newest of its thread and namespace without a
        checkpoint id), or ``None``."""
        return self._read_back(self._sync.run(self._get_work(config), "read"))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """As :meth:`get_tuple` (one worker-thread hop)."""
        return self._read_back(await self._async.run(self._get_work(config), "read"))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first: of ``config``'s thread (and namespace, if it names one),
        whose metadata has the items of ``filter``, older than ``before``, at most ``limit``."""
        if limit is not None and limit <= 0:
            return iter(())
        work = reads.list_work(self.serde, config, filter, before, limit)
        return iter(self._sync.run(work, "read"))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """As :meth:`list` (one worker-thread hop)."""
        if limit is not None and limit <= 0:
            return
        work = reads.list_work(self.serde, config, filter, before, limit)
        found = await self._async.run(work, "read")
        for item in found:
            yield item

    # -- deletes and copies ---------------------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of a thread (its conversation stays)."""
        self._forget_thread(str(thread_id))
        self._sync.run(lambda uow: graphs.delete_thread(uow.connection, str(thread_id)))

    async def adelete_thread(self, thread_id: str) -> None:
        """As :meth:`delete_thread` (one worker-thread hop)."""
        self._forget_thread(str(thread_id))
        await self._async.run(lambda uow: graphs.delete_thread(uow.connection, str(thread_id)))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints the runs made, with their pending writes."""
        ids = [str(run) for run in run_ids]
        self._sync.run(lambda uow: graphs.delete_runs(uow.connection, ids))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """As :meth:`delete_for_runs` (one worker-thread hop)."""
        ids = [str(run) for run in run_ids]
        await self._async.run(lambda uow: graphs.delete_runs(uow.connection, ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, blob and write of a thread to another thread id."""
        source, target = str(source_thread_id), str(target_thread_id)
        self._sync.run(lambda uow: graphs.copy_thread(uow.connection, source, target))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """As :meth:`copy_thread` (one worker-thread hop)."""
        source, target = str(source_thread_id), str(target_thread_id)
        await self._async.run(lambda uow: graphs.copy_thread(uow.connection, source, target))

    def _prune_work(self, thread_ids: Sequence[str], strategy: str) -> Any:
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}: keep_latest or delete")
        ids = [str(thread) for thread in thread_ids]
        for thread_id in ids:
            self._forget_thread(thread_id)

        def work(uow: Unit) -> None:
            for thread_id in ids:
                if strategy == "delete":
                    graphs.delete_thread(uow.connection, thread_id)
                else:
                    graphs.keep_latest(uow.connection, thread_id)

        return work

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep only each namespace's newest checkpoint (``"keep_latest"``) or delete the
        threads' checkpoints (``"delete"``); channel values stay (kept checkpoints use them)."""
        self._sync.run(self._prune_work(thread_ids, strategy))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """As :meth:`prune` (one worker-thread hop)."""
        await self._async.run(self._prune_work(thread_ids, strategy))

    def __repr__(self) -> str:
        return f"AgentkeepSaver({self._sync.service.masked_url})"
