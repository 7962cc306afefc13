"""The lists a LangGraph thread grows by appending, stored as what each version appended.

A list channel (the ``messages`` channel of a chat graph, or any channel whose reducer appends)
is stored once per version in ``graph_blobs`` (``repositories.graphs``): whole, or as the items
appended since a version this saver stored or read, with a reference to that version
(``base_version``) and how many of its items it keeps (``base_length``). A saver remembers, per
thread, namespace and channel, the last version it stored or read (:class:`Last`: the items, by
identity, as LangGraph's reducers carry the same objects from step to step), so that a put
serialises only the new items, and carries what it learnt of them (their LangChain message ids,
whether all are messages) from version to version: the work of a put does not grow with the
thread.

A list that does not start with exactly the remembered items (a message replaced or removed, a
rewound thread, a list read back from the database as new objects) is stored whole, as is every
:data:`MAX_APPEND_DEPTH`-th version, which bounds the rows a read walks. :class:`Values` rebuilds
the values of a read from the rows one recursive query returns.
"""

from __future__ import annotations

import operator
import threading
from collections import OrderedDict
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.base import ChannelVersions
from langgraph.checkpoint.serde.base import SerializerProtocol

MAX_APPEND_DEPTH = 1000
"""At most this many appended parts make up one stored list; the next version is stored whole
(bounds the rows one read walks)."""

REMEMBERED_LISTS = 1024
"""Lists (per thread, namespace and channel) whose last stored version a saver remembers."""

EMPTY = "empty"
"""The type of a version that holds no value (a channel emptied)."""

ListKey = tuple[str, str, str]
"""(thread, namespace, channel) of a list channel."""


class Last:
    """The last version of a list channel this saver stored or read: its items (by identity)
    and, once asked for, what a put needs to know of them (the LangChain message ids among
    them, whether all are messages), carried to the versions that extend it."""

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
        extends = starts_with(value, self.items)
        self._checked = (value, extends)  # one assignment: a concurrent reader sees a pair
        return extends

    def ids(self) -> set[str]:
        """The ids of the LangChain messages among the items."""
        if self._ids is None:
            self._ids = message_ids(self.items)
        return self._ids

    def all_messages(self) -> bool:
        """Whether every item is a LangChain message."""
        if self._messages is None:
            self._messages = all_messages(self.items)
        return self._messages

    def extended(self, version: str, value: list[Any], depth: int) -> Last:
        """The version ``value`` makes, which extends these items by appending."""
        added = value[len(self.items) :]
        ids = None if self._ids is None else self._ids | message_ids(added)
        messages = None if self._messages is None else self._messages and all_messages(added)
        return Last(version, list(value), depth, ids, messages)

    def read_again(self, items: list[Any], depth: int) -> Last:
        """The same version read back as other objects (``items``): what was learnt of its
        items holds for them too (the same version is the same value)."""
        return Last(self.version, list(items), depth, self._ids, self._messages)


class Planned:
    """The channel versions of a put: the rows stored whole; those stored as appended items
    (each with the whole value, should the version it extends be gone); the lists to remember
    once the put is stored."""

    __slots__ = ("appended", "remembered", "whole")

    def __init__(self) -> None:
        self.whole: list[dict[str, Any]] = []
        self.appended: list[tuple[dict[str, Any], list[Any]]] = []
        self.remembered: list[tuple[ListKey, Last]] = []

    def rows(self) -> list[dict[str, Any]]:
        """Every version's row, as the put first tries to store them."""
        return [*self.whole, *(blob for blob, _ in self.appended)]


class Lists:
    """The last version of each list channel a saver stored or read (at most
    :data:`REMEMBERED_LISTS`, least recently used forgotten first), shared by its threads."""

    def __init__(self) -> None:
        self._last: OrderedDict[ListKey, Last] = OrderedDict()
        self._lock = threading.Lock()

    def recall(self, key: ListKey) -> Last | None:
        with self._lock:
            return self._last.get(key)

    def remember(self, key: ListKey, last: Last) -> None:
        with self._lock:
            self._last[key] = last
            self._last.move_to_end(key)
            while len(self._last) > REMEMBERED_LISTS:
                self._last.popitem(last=False)

    def forget_thread(self, thread_id: str) -> None:
        with self._lock:
            for key in [key for key in self._last if key[0] == thread_id]:
                del self._last[key]

    def plan(
        self,
        serde: SerializerProtocol,
        thread_id: str,
        ns: str,
        values: dict[str, Any],
        new_versions: ChannelVersions,
    ) -> Planned:
        """The blob rows of a checkpoint's new versions, serialised by ``serde``: whole, or (a
        list that extends the last one this saver stored or read) as the items appended."""
        planned = Planned()
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
                planned.whole.append({**blob, "type": EMPTY, "value": None})
                continue
            value = values[channel]
            if not isinstance(value, list):
                kind, payload = serde.dumps_typed(value)
                planned.whole.append({**blob, "type": kind, "value": payload})
                continue
            key = (thread_id, ns, channel)
            last = self.recall(key)
            if (
                last is not None
                and last.items
                and last.depth < MAX_APPEND_DEPTH
                and last.extended_by(value)
            ):
                kind, payload = serde.dumps_typed(value[len(last.items) :])
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
                kind, payload = serde.dumps_typed(value)
                planned.whole.append({**blob, "type": kind, "value": payload})
                planned.remembered.append((key, Last(version, list(value), 0)))
        return planned

    @staticmethod
    def whole(serde: SerializerProtocol, blob: dict[str, Any], value: Any) -> dict[str, Any]:
        """The row of ``blob``'s version stored whole (``value``: the whole list)."""
        kind, payload = serde.dumps_typed(value)
        return {
            **blob,
            "type": kind,
            "value": payload,
            "base_version": None,
            "base_length": None,
            "depth": 0,
        }

    def read(
        self,
        thread_id: str,
        ns: str,
        channel: str,
        version: str,
        value: list[Any],
        depth: int | None,
    ) -> None:
        """Remember a list a graph is about to continue from (so its next step stores only
        what it appends); ``depth``: how many appended parts its stored version is made of."""
        key = (thread_id, ns, channel)
        last = self.recall(key)
        if last is not None and last.version == version and starts_with(value, last.items):
            return  # these very objects: nothing new
        depth = MAX_APPEND_DEPTH if depth is None else depth
        if last is not None and last.version == version:
            self.remember(key, last.read_again(value, depth))
        else:
            self.remember(key, Last(version, list(value), depth))


def message_ids(items: list[Any]) -> set[str]:
    """The ids of the LangChain messages among ``items``."""
    return {item.id for item in items if isinstance(item, BaseMessage) and item.id}


def holds(items: list[Any], item: Any) -> bool:
    """Whether ``items`` holds this very object."""
    return any(x is item for x in items)


def all_messages(items: list[Any]) -> bool:
    """Whether every item is a LangChain message."""
    return all(isinstance(item, BaseMessage) for item in items)


def starts_with(value: list[Any], items: list[Any]) -> bool:
    """Whether ``value`` starts with exactly the objects ``items`` holds."""
    if len(value) < len(items):
        return False
    return all(map(operator.is_, value, items))  # map stops at the shorter: ``items``


class Values:
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
            if row is None or row.type == EMPTY:
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
