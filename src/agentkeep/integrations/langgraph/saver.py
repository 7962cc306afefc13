"""LangGraph checkpoints in agentkeep: :class:`AgentkeepSaver`.

Storage (``repositories.graphs``): a checkpoint row without its channel values; each channel's
value once per version in ``graph_blobs``, so a step stores only the channels it changed; and a
list that grew by appending (the ``messages`` channel of a chat graph) as the items appended
since the version this saver last stored or read, with a reference to that version. A 200-turn
conversation therefore stores each message once instead of the whole history every step, and a
read rebuilds the list in one recursive query. Items are recognised as already stored by
identity (LangGraph's reducers carry the same objects from step to step); a list that does not
extend the last one by appending (a message replaced or removed, a rewound thread) is stored
whole. State must be updated by returning new values, as LangGraph requires: an item changed in
place after it was checkpointed is not stored again.

The conversation of a thread (user ``"langchain"``, chat id = thread id, made when first needed,
as ``integrations.langchain`` finds a session's) shows the LangChain messages of the root graph's
``messages`` channel as agentkeep messages, each once, appended as the thread adds them: the
messages a put holds that the list it extends did not (by LangChain message id), so a rewound
thread's new branch is appended after what the thread showed before.

A put is one transaction whose values are all serialised before it opens (checkpoint, channel
versions, messages), and whose statements run on the driver, compiled once
(``repositories.graphs``): every channel version in one ``INSERT … SELECT`` (an appended one
stored only while the version it extends is), the checkpoint in one upsert (on PostgreSQL both in
one statement, which runs without ``BEGIN``/``COMMIT`` when there is nothing else to do), then
the thread's new messages. Its commit may be shared with other threads' writes (group commit on
a SQLite file), such as the pending writes of the next task while LangGraph stores a checkpoint
in the background; a task's pending writes are one statement too. What a put learns of the
list it extends (the message ids in it, say) is carried to the next version, so the work of a
put does not grow with the thread.

Semantics follow LangGraph's ``InMemorySaver`` and ``SqliteSaver``: thread id, checkpoint
namespace and checkpoint id address a checkpoint; without a checkpoint id the newest one (by id)
is read; ``list`` is newest first with ``filter`` (metadata equality), ``before`` and ``limit``.
"""

from __future__ import annotations

import operator
import os
import random
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, TypeVar, cast

from langchain_core.messages import BaseMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from sqlalchemy import Connection

from agentkeep.config import Settings
from agentkeep.errors import NotFoundError
from agentkeep.integrations.langchain import (
    LANGCHAIN_KEY,
    async_store,
    session_conversation,
    sync_store,
    to_message_create,
)
from agentkeep.repositories import graphs
from agentkeep.repositories.base import in_worker_thread
from agentkeep.repositories.facade import DatabaseManager, Unit, connect_sync

MAX_APPEND_DEPTH = 1000
"""At most this many appended parts make up one stored list; the next version is stored whole
(bounds the rows one read walks)."""

REMEMBERED_LISTS = 1024
"""Lists (per thread, namespace and channel) whose last stored version a saver remembers."""

LIST_PAGE = 100
"""Checkpoints read at a time by ``list`` with a metadata filter."""

_EMPTY = "empty"

T = TypeVar("T")

ListKey = tuple[str, str, str]
"""(thread, namespace, channel) of a list channel."""


class _Last:
    """The last version of a list channel this saver stored or read: its items (by identity)
    and, once asked for, what a put needs to know of them (the LangChain message ids among
    them, whether all are messages), carried to the versions that extend it, so that the work
    of a put does not grow with the thread."""

    __slots__ = ("_checked", "_ids", "_messages", "depth", "items", "version")

    def __init__(
        self,
        version: str,
        items: list[Any],
        depth: int,
        ids: set[str] | None = None,
        messages: bool | None = None,
    ) -> None:
        self.version = version
        self.items = items
        self.depth = depth
        self._ids = ids
        self._messages = messages
        self._checked: tuple[list[Any], bool] | None = None  # the last list checked, extends?

    def extended_by(self, value: list[Any]) -> bool:
        """Whether ``value`` starts with exactly these items (checked once per list)."""
        checked = self._checked
        if checked is not None and checked[0] is value:
            return checked[1]
        extends = _extends(value, self.items)
        self._checked = (value, extends)  # one assignment: a concurrent reader sees a pair
        return extends

    def ids(self) -> set[str]:
        """The ids of the LangChain messages among the items."""
        if self._ids is None:
            self._ids = _message_ids(self.items)
        return self._ids

    def all_messages(self) -> bool:
        """Whether every item is a LangChain message."""
        if self._messages is None:
            self._messages = _all_messages(self.items)
        return self._messages

    def extended(self, version: str, value: list[Any], depth: int) -> _Last:
        """The version ``value`` makes, which extends these items by appending."""
        added = value[len(self.items) :]
        ids = None if self._ids is None else self._ids | _message_ids(added)
        messages = None if self._messages is None else self._messages and _all_messages(added)
        return _Last(version, list(value), depth, ids, messages)


class _Planned:
    """The channel versions of a put: stored whole; stored as appended items (with the whole
    value, should the version they extend be gone); the lists to remember once stored."""

    __slots__ = ("appended", "remembered", "whole")

    def __init__(self) -> None:
        self.whole: list[dict[str, Any]] = []
        self.appended: list[tuple[dict[str, Any], list[Any]]] = []
        self.remembered: list[tuple[ListKey, _Last]] = []


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
        self.messages_channel = messages_channel
        self._last: OrderedDict[ListKey, _Last] = OrderedDict()
        self._conversations: dict[str, uuid.UUID] = {}  # thread -> the conversation showing it
        self._lock = threading.Lock()

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

    # -- the list items already stored ----------------------------------------------------------

    def _recall(self, key: ListKey) -> _Last | None:
        with self._lock:
            return self._last.get(key)

    def _remember(self, key: ListKey, last: _Last) -> None:
        with self._lock:
            self._last[key] = last
            self._last.move_to_end(key)
            while len(self._last) > REMEMBERED_LISTS:
                self._last.popitem(last=False)

    def _forget_thread(self, thread_id: str) -> None:
        with self._lock:
            for key in [key for key in self._last if key[0] == thread_id]:
                del self._last[key]
            self._conversations.pop(thread_id, None)

    # -- writes ---------------------------------------------------------------------------------

    def _write(self, work: Callable[[Unit], T], single: bool = False) -> T:
        """``work`` in a write unit that may share its commit with other threads' writes (a
        background checkpoint and the next task's writes, say): one fsync for both.
        ``single``: ``work`` is one statement, atomic by itself (on PostgreSQL it then runs
        without ``BEGIN``/``COMMIT``: one round trip)."""
        service = self._sync.service
        ran: list[Unit] = []  # the unit of the run that committed (a batch may rerun it)

        def in_unit(connection: Connection) -> T:
            uow = self._sync.open_unit(connection, "write", False)
            ran[:] = (uow,)
            return work(uow)

        result = service.run("write", in_unit, grouped=True, single=single)
        ran[0].publish()
        return result

    async def _awrite(self, work: Callable[[Unit], T], single: bool = False) -> T:
        return await in_worker_thread(self._write, work, single)

    # -- put ------------------------------------------------------------------------------------

    def _prepare_put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> tuple[Callable[[Unit], None], bool, RunnableConfig, list[tuple[ListKey, _Last]]]:
        """Everything a put stores, serialised before its unit of work opens (which then only
        runs statements: the checkpoint, the channel versions, the thread's new messages)."""
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
        # the messages first: what they find out about the remembered list, the list's next
        # version (made by _blobs) carries on
        show = self._shown(thread_id, ns, values, new_versions)
        planned = self._blobs(thread_id, ns, values, new_versions)

        blobs = [*planned.whole, *(blob for blob, _ in planned.appended)]

        def work(uow: Unit) -> None:
            conn = uow.connection
            if graphs.put_checkpoint(conn, row, blobs) < len(blobs) and planned.appended:
                # a version stored as appended items was not stored: the version it extends is
                # gone (another process deleted the thread), or it was stored already (then
                # this changes nothing): store it whole
                whole = [self._whole(blob, value) for blob, value in planned.appended]
                graphs.put_blobs(conn, whole)
            if show is not None:
                show(uow)

        # one statement (PostgreSQL, nothing appended, no message to show): atomic by itself
        single = (
            show is None
            and not planned.appended
            and graphs.one_statement(self._sync.service.dialect, len(blobs))
        )
        next_config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint["id"],
            }
        }
        return work, single, next_config, planned.remembered

    def _whole(self, blob: dict[str, Any], value: Any) -> dict[str, Any]:
        """The row of ``blob``'s version stored whole (``value``: the whole list)."""
        kind, payload = self.serde.dumps_typed(value)
        return {
            **blob,
            "type": kind,
            "value": payload,
            "base_version": None,
            "base_length": None,
            "depth": 0,
        }

    def _blobs(
        self, thread_id: str, ns: str, values: dict[str, Any], new_versions: ChannelVersions
    ) -> _Planned:
        """The blob rows of a checkpoint's new versions: whole, or (a list that extends the last
        one this saver stored or read) as the items appended."""
        planned = _Planned()
        for channel, given_version in new_versions.items():
            version = str(given_version)
            blob: dict[str, Any] = {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "channel": channel,
                "version": version,
                "base_version": None,
                "base_length": None,
                "depth": 0,
            }
            if channel not in values:
                planned.whole.append({**blob, "type": _EMPTY, "value": None})
                continue
            value = values[channel]
            if not isinstance(value, list):
                kind, payload = self.serde.dumps_typed(value)
                planned.whole.append({**blob, "type": kind, "value": payload})
                continue
            key = (thread_id, ns, channel)
            last = self._recall(key)
            if (
                last is not None
                and last.items
                and last.depth < MAX_APPEND_DEPTH
                and last.extended_by(value)
            ):
                kind, payload = self.serde.dumps_typed(value[len(last.items) :])
                blob.update(
                    type=kind,
                    value=payload,
                    base_version=last.version,
                    base_length=len(last.items),
                    depth=last.depth + 1,
                )
                planned.appended.append((blob, value))
                planned.remembered.append((key, last.extended(version, value, blob["depth"])))
            else:
                kind, payload = self.serde.dumps_typed(value)
                planned.whole.append({**blob, "type": kind, "value": payload})
                planned.remembered.append((key, _Last(version, list(value), 0)))
        return planned

    def _shown(
        self, thread_id: str, ns: str, values: dict[str, Any], new_versions: ChannelVersions
    ) -> Callable[[Unit], None] | None:
        """What shows the thread's new messages in its conversation (``None``: nothing to).

        New are the messages that the list this saver last stored or read for the thread does
        not hold (by LangChain message id, or by identity for a message without one): after a
        thread is rewound, the messages of the new branch. Without such a list (a put that no
        read preceded in this saver), the conversation's own messages tell which are shown.
        """
        channel = self.messages_channel
        if ns != "" or channel is None or channel not in new_versions:
            return None
        value = values.get(channel)
        if not isinstance(value, list) or not value:
            return None
        last = self._recall((thread_id, ns, channel))
        extends = last is not None and last.extended_by(value)
        if extends and last is not None:
            if not last.all_messages() or not _all_messages(value[len(last.items) :]):
                return None
        elif not _all_messages(value):
            return None
        candidates: list[BaseMessage] = value
        known: set[str] | None = None
        if last is not None:
            known = last.ids()
            if extends:  # the usual step: only what it appended is new
                candidates = [
                    m
                    for m in value[len(last.items) :]
                    if m.id not in known and not (not m.id and _holds(last.items, m))
                ]
            else:
                held = {id(item) for item in last.items}
                candidates = [m for m in value if id(m) not in held and m.id not in known]
        rows = [
            (m.id, to_message_create(m)) for m in candidates if not isinstance(m, RemoveMessage)
        ]
        if not rows:
            return None

        def show(uow: Unit) -> None:
            conversation = self._conversation(uow, thread_id)
            shown = known
            if shown is None:
                shown = graphs.langchain_ids(uow.connection, conversation, LANGCHAIN_KEY)
            for message_id, message in rows:
                if message_id is not None and message_id in shown:
                    continue
                try:
                    uow.messages.append(conversation, message)
                except NotFoundError:  # deleted since this saver found it: find or make it anew
                    self._forget_conversation(thread_id)
                    conversation = self._conversation(uow, thread_id)
                    uow.messages.append(conversation, message)

        return show

    def _conversation(self, uow: Unit, thread_id: str) -> uuid.UUID:
        """The thread's conversation (made when it has none), remembered by this saver."""
        with self._lock:
            known = self._conversations.get(thread_id)
        if known is not None:
            return known
        found = session_conversation(uow, thread_id)
        assert found is not None  # made when missing
        with self._lock:
            self._conversations[thread_id] = found
            while len(self._conversations) > REMEMBERED_LISTS:
                self._conversations.pop(next(iter(self._conversations)))
        return found

    def _forget_conversation(self, thread_id: str) -> None:
        with self._lock:
            self._conversations.pop(thread_id, None)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint with the channel values of its new versions; return its config."""
        work, single, next_config, remembered = self._prepare_put(
            config, checkpoint, metadata, new_versions
        )
        self._write(work, single)
        for key, last in remembered:
            self._remember(key, last)
        return next_config

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint (one worker-thread hop); return its config."""
        work, single, next_config, remembered = self._prepare_put(
            config, checkpoint, metadata, new_versions
        )
        await self._awrite(work, single)
        for key, last in remembered:
            self._remember(key, last)
        return next_config

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

    def _tuples(
        self, uow: Unit, rows: Sequence[Any], depths: dict[str, int] | None = None
    ) -> list[CheckpointTuple]:
        """Checkpoint tuples from checkpoint rows: their blobs and writes read in a few
        queries (``depths``: filled with the append depth of each channel's stored value)."""
        conn = uow.connection
        writes = graphs.pending_writes(
            conn, [(row.thread_id, row.checkpoint_ns, row.checkpoint_id) for row in rows]
        )
        loaded: list[tuple[graphs.AnyRow, Checkpoint, CheckpointMetadata]] = []
        wanted: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for row in rows:
            # stored without its channel values, which are put back below
            checkpoint = cast("Checkpoint", self.serde.loads_typed((row.type, row.checkpoint)))
            metadata = cast(
                "CheckpointMetadata", self.serde.loads_typed((row.metadata_type, row.metadata))
            )
            loaded.append((row, checkpoint, metadata))
            pairs = wanted.setdefault((row.thread_id, row.checkpoint_ns), set())
            pairs.update(
                (channel, str(version))
                for channel, version in checkpoint.get("channel_versions", {}).items()
            )
        values_by_place: dict[tuple[str, str], _Values] = {}
        for (thread_id, ns), pairs in wanted.items():
            values_by_place[(thread_id, ns)] = _Values(
                self.serde, graphs.blob_chains(conn, thread_id, ns, pairs)
            )
        tuples = []
        for row, checkpoint, metadata in loaded:
            values = values_by_place[(row.thread_id, row.checkpoint_ns)]
            channel_values = {}
            for channel, version in checkpoint.get("channel_versions", {}).items():
                found, value = values.get(channel, str(version))
                if found:
                    channel_values[channel] = value
                    if depths is not None:
                        depths[channel] = values.depth(channel, str(version))
            pending: list[PendingWrite] = [
                (w.task_id, w.channel, self.serde.loads_typed((w.type, w.value)))
                for w in writes[(row.thread_id, row.checkpoint_ns, row.checkpoint_id)]
            ]
            place = {"thread_id": row.thread_id, "checkpoint_ns": row.checkpoint_ns}
            tuples.append(
                CheckpointTuple(
                    config={"configurable": {**place, "checkpoint_id": row.checkpoint_id}},
                    checkpoint={**checkpoint, "channel_values": channel_values},
                    metadata=metadata,
                    parent_config=(
                        {"configurable": {**place, "checkpoint_id": row.parent_checkpoint_id}}
                        if row.parent_checkpoint_id
                        else None
                    ),
                    pending_writes=pending,
                )
            )
        return tuples

    def _get_work(self, config: RunnableConfig) -> Any:
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = str(configurable.get("checkpoint_ns", ""))
        checkpoint_id = get_checkpoint_id(config)

        def work(uow: Unit) -> tuple[CheckpointTuple | None, dict[str, int]]:
            row = graphs.get_checkpoint(uow.connection, thread_id, ns, checkpoint_id)
            if row is None:
                return None, {}
            depths: dict[str, int] = {}
            return self._tuples(uow, [row], depths)[0], depths

        return work

    def _read_back(
        self, read: tuple[CheckpointTuple | None, dict[str, int]]
    ) -> CheckpointTuple | None:
        """Remember the lists a graph is about to continue from (so its next step stores only
        what it appends)."""
        found, depths = read
        if found is None:
            return None
        configurable = found.config["configurable"]
        versions = found.checkpoint.get("channel_versions", {})
        for channel, value in found.checkpoint["channel_values"].items():
            if isinstance(value, list) and channel in versions:
                key = (configurable["thread_id"], configurable["checkpoint_ns"], channel)
                last = self._recall(key)
                version = str(versions[channel])
                if last is None or last.version != version or not _extends(value, last.items):
                    depth = depths.get(channel, MAX_APPEND_DEPTH)
                    self._remember(key, _Last(version, list(value), depth))
        return found

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names (the newest of its thread and namespace without a
        checkpoint id), or ``None``."""
        return self._read_back(self._sync.run(self._get_work(config), "read"))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """As :meth:`get_tuple` (one worker-thread hop)."""
        return self._read_back(await self._async.run(self._get_work(config), "read"))

    def _list_work(
        self,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> Any:
        configurable = config["configurable"] if config else {}
        thread_id = configurable.get("thread_id")
        ns = configurable.get("checkpoint_ns")
        checkpoint_id = get_checkpoint_id(config) if config else None
        before_id = get_checkpoint_id(before) if before else None

        def work(uow: Unit) -> list[CheckpointTuple]:
            found: list[CheckpointTuple] = []
            offset = 0
            page = limit if not filter else LIST_PAGE
            while limit is None or len(found) < limit:
                rows = graphs.list_checkpoints(
                    uow.connection,
                    thread_id=None if thread_id is None else str(thread_id),
                    ns=None if ns is None else str(ns),
                    checkpoint_id=checkpoint_id,
                    before=before_id,
                    limit=page,
                    offset=offset,
                )
                for item in self._tuples(uow, rows):
                    if filter and not all(item.metadata.get(k) == v for k, v in filter.items()):
                        continue
                    found.append(item)
                    if limit is not None and len(found) >= limit:
                        break
                if page is None or len(rows) < page:
                    break
                offset += page
            return found

        return work

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
        return iter(self._sync.run(self._list_work(config, filter, before, limit), "read"))

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
        found = await self._async.run(self._list_work(config, filter, before, limit), "read")
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


def _message_ids(items: list[Any]) -> set[str]:
    return {item.id for item in items if isinstance(item, BaseMessage) and item.id}


def _holds(items: list[Any], item: Any) -> bool:
    """Whether ``items`` holds this very object."""
    return any(x is item for x in items)


def _all_messages(items: list[Any]) -> bool:
    return all(isinstance(item, BaseMessage) for item in items)


def _extends(value: list[Any], items: list[Any]) -> bool:
    """Whether ``value`` starts with exactly the objects ``items`` holds."""
    if len(value) < len(items):
        return False
    return all(map(operator.is_, value, items))  # map stops at the shorter: ``items``


class _Values:
    """Channel values rebuilt from blob rows: a list stored by appends is its base's first
    ``base_length`` items followed by its own."""

    def __init__(self, serde: SerializerProtocol, rows: dict[tuple[str, str], Any]) -> None:
        self._serde = serde
        self._rows = rows
        self._done: dict[tuple[str, str], tuple[bool, Any]] = {}

    def depth(self, channel: str, version: str) -> int:
        """How many appended parts the stored version is made of."""
        row = self._rows.get((channel, version))
        return MAX_APPEND_DEPTH if row is None else int(row.depth)

    def get(self, channel: str, version: str) -> tuple[bool, Any]:
        """(whether the version holds a value, the value)."""
        key = (channel, version)
        if key in self._done:
            found, value = self._done[key]
            return found, (list(value) if isinstance(value, list) else value)
        # walk down to a whole value, then build back up (no recursion: chains may be long)
        chain = []
        while key not in self._done:
            row = self._rows.get(key)
            if row is None or row.base_version is None:
                break
            chain.append(row)
            key = (channel, row.base_version)
        if key not in self._done:
            row = self._rows.get(key)
            if row is None or row.type == _EMPTY:
                self._done[key] = (False, None)
            else:
                self._done[key] = (True, self._serde.loads_typed((row.type, row.value)))
        found, value = self._done[key]
        for row in reversed(chain):
            if not found or not isinstance(value, list):
                raise LookupError(
                    f"the stored value of channel {channel!r} version {row.version} is "
                    "incomplete: the version it extends is missing"
                )
            value = value[: row.base_length] + self._serde.loads_typed((row.type, row.value))
            self._done[(channel, row.version)] = (True, value)
        return self.get(channel, version) if (channel, version) in self._done else (False, None)
