"""A LangGraph thread shown as an agentkeep conversation: the mirror of its messages.

The conversation of a thread (user ``"langchain"``, chat id = thread id, made when first needed,
as ``integrations.langchain`` finds a session's) shows the LangChain messages of the root
graph's ``messages`` channel as agentkeep messages (``to_message_create``: role, text, tool
calls, token usage, the whole LangChain message in ``metadata["langchain"]``), each once,
appended as the thread adds them: the messages a put holds that the list it extends did not (by
LangChain message id), so a rewound thread's new branch is appended after what the thread showed
before. Without such a list (a put that no read preceded in this saver) the conversation's own
messages tell which are shown.

A put's new messages are checked and made into rows before its unit of work opens
(:meth:`Mirror.plan`: the same limits as any append), and stored in the put's own transaction
(``graphs.put_checkpoint``): one counter update and one multi-row insert for all of them, on
PostgreSQL inside the checkpoint's own statement. Nothing is read back. The conversation's id is
remembered per thread, so the usual put looks nothing up; a conversation deleted since is found
or made anew in the same transaction.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from langchain_core.messages import BaseMessage, RemoveMessage
from langgraph.checkpoint.base import ChannelVersions

from agentkeep.config import Settings
from agentkeep.db.types import new_id, utcnow
from agentkeep.integrations.langchain import LANGCHAIN_KEY, session_conversation, to_message_create
from agentkeep.integrations.langgraph.lists import (
    REMEMBERED_LISTS,
    Lists,
    all_messages,
    holds,
)
from agentkeep.models.common import check_json, check_text_size
from agentkeep.repositories import graphs
from agentkeep.repositories.facade import Unit


class Mirror:
    """The messages of a channel of a saver's threads shown in the threads' conversations.

    Args:
        settings: The store's settings (the limits a message is checked against).
        channel: The channel shown (``None``: none).
        lists: The saver's remembered lists (what a put's list extends).
    """

    def __init__(self, settings: Settings, channel: str | None, lists: Lists) -> None:
        self.settings = settings
        self.channel = channel
        self._lists = lists
        self._conversations: dict[str, uuid.UUID] = {}  # thread -> the conversation showing it
        self._lock = threading.Lock()

    def plan(
        self, thread_id: str, ns: str, values: dict[str, Any], new_versions: ChannelVersions
    ) -> NewMessages | None:
        """The thread's new messages in a put, checked and made into rows (``None``: none).

        Call before the put's lists are planned: what is found out about the list it extends
        (the message ids in it), the list's next version carries on.

        Raises:
            ValidationError: a message that cannot be stored (see ``messages.append``).
            TooLargeError: a message larger than the store's limits.
        """
        channel = self.channel
        if ns != "" or channel is None or channel not in new_versions:
            return None
        value = values.get(channel)
        if not isinstance(value, list) or not value:
            return None
        last = self._lists.recall((thread_id, ns, channel))
        extends = last is not None and last.extended_by(value)
        if extends and last is not None:
            if not last.all_messages() or not all_messages(value[len(last.items) :]):
                return None
        elif not all_messages(value):
            return None
        candidates: list[BaseMessage] = value
        known: set[str] | None = None
        if last is not None:
            known = last.ids()
            if extends:  # the usual step: only what it appended is new
                candidates = [
                    m
                    for m in value[len(last.items) :]
                    if m.id not in known and not (not m.id and holds(last.items, m))
                ]
            else:
                held = {id(item) for item in last.items}
                candidates = [m for m in value if id(m) not in held and m.id not in known]
        rows = [(m.id, self._row(m)) for m in candidates if not isinstance(m, RemoveMessage)]
        return NewMessages(self, thread_id, rows, known) if rows else None

    def _row(self, message: BaseMessage) -> dict[str, Any]:
        """The message's row (``graphs.Shown``: a complete message without thinking text or
        platform ids, as a LangChain message makes one), checked as an append checks it."""
        data = to_message_create(message)
        limits = self.settings
        check_text_size(data.content, limits.max_content_bytes, "content")
        check_json(data.metadata, limits.max_metadata_bytes, "metadata")
        calls = None if data.tool_calls is None else [call.model_dump() for call in data.tool_calls]
        check_json(calls, limits.max_content_bytes, "tool_calls")
        now = utcnow()
        return {
            "id": new_id(),
            "role": data.role,
            "content": data.content,
            "tool_calls": calls,
            "metadata": data.metadata,
            "input_tokens": data.input_tokens,
            "output_tokens": data.output_tokens,
            "created_at": now,
        }

    def known_conversation(self, thread_id: str) -> uuid.UUID | None:
        """The thread's conversation, if remembered."""
        with self._lock:
            return self._conversations.get(thread_id)

    def conversation(self, uow: Unit, thread_id: str) -> uuid.UUID:
        """The thread's conversation (made when it has none), remembered."""
        known = self.known_conversation(thread_id)
        if known is not None:
            return known
        found = session_conversation(uow, thread_id, platform=graphs.THREADS)
        assert found is not None  # made when missing
        with self._lock:
            self._conversations[thread_id] = found
            while len(self._conversations) > REMEMBERED_LISTS:
                self._conversations.pop(next(iter(self._conversations)))
        return found

    def forget(self, thread_id: str) -> None:
        """Forget the thread's conversation (deleted, or to be looked up again)."""
        with self._lock:
            self._conversations.pop(thread_id, None)


class NewMessages:
    """A put's new messages: rows made before its unit of work opens, stored in it."""

    __slots__ = ("_known", "_mirror", "_rows", "_thread_id")

    def __init__(
        self,
        mirror: Mirror,
        thread_id: str,
        rows: list[tuple[str | None, dict[str, Any]]],
        known: set[str] | None,
    ) -> None:
        self._mirror = mirror
        self._thread_id = thread_id
        self._rows = rows  # (LangChain message id, row)
        self._known = known

    def ready(self) -> graphs.Shown | None:
        """What to append, if known without a look at the database (the conversation's id
        remembered, the messages it shows told by the list the put extends); else ``None``."""
        if self._known is None:
            return None
        conversation = self._mirror.known_conversation(self._thread_id)
        if conversation is None:
            return None
        return graphs.Shown(conversation, [row for _, row in self._rows])

    def shown(self, uow: Unit) -> graphs.Shown | None:
        """What to append to the thread's conversation (found or made): the rows whose
        LangChain ids it does not show yet (``None``: none)."""
        conversation = self._mirror.conversation(uow, self._thread_id)
        rows = self._rows
        if self._known is None:  # no list to tell: the conversation's own messages do
            shown = graphs.langchain_ids(uow.connection, conversation, LANGCHAIN_KEY)
            rows = [(key, row) for key, row in rows if key is None or key not in shown]
        return graphs.Shown(conversation, [row for _, row in rows]) if rows else None

    def stored(self, uow: Unit, shown: graphs.Shown, count: int) -> None:
        """Called with how many of ``shown`` were stored: fewer when the conversation was
        deleted since this saver found it, and then the conversation is found or made anew and
        they are appended to it."""
        if count >= len(shown.rows):
            return
        self._mirror.forget(self._thread_id)
        again = graphs.Shown(self._mirror.conversation(uow, self._thread_id), shown.rows)
        appended = graphs.show_messages(uow.connection, again)
        assert appended == len(again.rows)  # the conversation exists: found or made just now
