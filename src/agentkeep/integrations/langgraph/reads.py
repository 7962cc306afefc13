"""Reading LangGraph checkpoints back: rows into ``CheckpointTuple`` objects.

A checkpoint row is stored without its channel values (``repositories.graphs``); a read puts
them back from the versions its ``channel_versions`` name, each list rebuilt from the parts it
was stored as (``lists.Values``: the rows of one recursive query per thread and namespace), with
the checkpoint's pending writes (one query for all the checkpoints read). The work is a function
of a unit of work, run by the saver in a read unit (one worker-thread hop for the async API).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from agentkeep.integrations.langgraph.lists import Values
from agentkeep.repositories import graphs
from agentkeep.repositories.facade import Unit

LIST_PAGE = 100
"""Checkpoints read at a time by ``list`` with a metadata filter."""

T = TypeVar("T")
Work = Callable[[Unit], T]
Found = tuple[CheckpointTuple | None, dict[str, int]]
"""A checkpoint read (or ``None``) and the append depth of each of its channels' values."""


def get_work(serde: SerializerProtocol, config: RunnableConfig) -> Work[Found]:
    """The read of the checkpoint ``config`` names (the newest of its thread and namespace
    without a checkpoint id)."""
    configurable = config["configurable"]
    thread_id = str(configurable["thread_id"])
    ns = str(configurable.get("checkpoint_ns", ""))
    checkpoint_id = get_checkpoint_id(config)

    def work(uow: Unit) -> Found:
        row = graphs.get_checkpoint(uow.connection, thread_id, ns, checkpoint_id)
        if row is None:
            return None, {}
        depths: dict[str, int] = {}
        return tuples(serde, uow, [row], depths)[0], depths

    return work


def list_work(
    serde: SerializerProtocol,
    config: RunnableConfig | None,
    filter: dict[str, Any] | None,
    before: RunnableConfig | None,
    limit: int | None,
) -> Work[list[CheckpointTuple]]:
    """The read of checkpoints newest first, as ``BaseCheckpointSaver.list`` narrows them (a
    metadata filter is applied a page of :data:`LIST_PAGE` at a time)."""
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
            for item in tuples(serde, uow, rows):
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


def tuples(
    serde: SerializerProtocol,
    uow: Unit,
    rows: Sequence[Any],
    depths: dict[str, int] | None = None,
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
        checkpoint = cast("Checkpoint", serde.loads_typed((row.type, row.checkpoint)))
        metadata = cast("CheckpointMetadata", serde.loads_typed((row.metadata_type, row.metadata)))
        loaded.append((row, checkpoint, metadata))
        pairs = wanted.setdefault((row.thread_id, row.checkpoint_ns), set())
        pairs.update(
            (channel, str(version))
            for channel, version in checkpoint.get("channel_versions", {}).items()
        )
    values_by_place: dict[tuple[str, str], Values] = {}
    for (thread_id, ns), pairs in wanted.items():
        values_by_place[(thread_id, ns)] = Values(
            serde, graphs.blob_chains(conn, thread_id, ns, pairs)
        )
    result = []
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
            (w.task_id, w.channel, serde.loads_typed((w.type, w.value)))
            for w in writes[(row.thread_id, row.checkpoint_ns, row.checkpoint_id)]
        ]
        place = {"thread_id": row.thread_id, "checkpoint_ns": row.checkpoint_ns}
        result.append(
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
    return result
