"""Full-text search over messages' content (find a message by its words; migration 0002).

The backends differ only in ``_full_text``: PostgreSQL matches ``to_tsvector('simple', content)``
(its GIN index) against ``plainto_tsquery`` and ranks by ``ts_rank``; SQLite matches the FTS5
table ``messages_fts`` (kept by triggers) against the text's words, each quoted so no FTS5 syntax
reaches the parser, and ranks by ``bm25``. Both require every word; ``'simple'`` and
``unicode61`` tokenise any language the same way, without stemming.

Both tokenisers split words at spaces and punctuation, so in a script written without spaces
between words (Chinese, Japanese, Thai, …) a whole run of text is one token and a word inside
it is never found. A search word written in such a script is therefore matched as a substring
of the content (``instr`` / ``strpos``) instead: among the messages the other words' full-text
match leaves, or, when every word is such a word, over the messages the filters select (a scan
of them, newest first).
"""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    column,
    func,
    literal_column,
    select,
    table,
)

from agentkeep.db.rows import MESSAGES_FTS
from agentkeep.db.tables import conversations, messages
from agentkeep.errors import ValidationError
from agentkeep.models.common import IdLike, check_limit, check_text, to_enum, to_uuid, unspaced
from agentkeep.models.conversation import Message
from agentkeep.models.enums import Role
from agentkeep.repositories.base import ModeT, Repository, load_all, operation


class MessageSearch(Repository[ModeT]):
    """The ``search`` operation of the message repository."""

    @operation("read", single=True)
    def search(
        self,
        text: str,
        *,
        conversation_id: IdLike | None = None,
        user_id: str | None = None,
        chat_id: str | None = None,
        role: Role | str | None = None,
        limit: int = 50,
    ) -> builtins.list[Message]:
        """Messages whose content contains every word of ``text``, best matches first.

        Words match whole and case-insensitively, in any language, without stemming; a word in
        a script written without spaces (Chinese, Japanese, Thai, …) matches anywhere in the
        text. Every word is required, on both backends (no query syntax: ``OR``, ``-`` and
        quotes are just text, and punctuation never makes the query fail). Ties in rank come
        newest first.

        Args:
            text: The words to look for.
            conversation_id: Only messages of this conversation.
            user_id: Only messages of this user's conversations.
            chat_id: Only messages of conversations in this chat.
            role: Only messages with this role.
            limit: At most this many messages (1 to ``max_page_size``).

        Returns:
            The matching messages, best match first.

        Raises:
            ValidationError: ``text`` is empty, blank or contains a NUL character, ``limit`` is
                out of range, or a filter is malformed.
        """
        words = _search_text(text).split()
        check_limit(limit, self.settings.max_page_size)
        source, conditions = _search_filters(conversation_id, user_id, chat_id, role)
        spaced = [word for word in words if not unspaced(word)]
        order: builtins.list[ColumnElement[Any]] = []
        if spaced:
            source, match, rank = _full_text(self.dialect, source, " ".join(spaced))
            conditions.append(match)
            order.append(rank)
        find = func.strpos if self.dialect == "postgresql" else func.instr
        conditions += [find(messages.c.content, word) > 0 for word in words if word not in spaced]
        query = (
            select(messages)
            .select_from(source)
            .where(*conditions)
            .order_by(*order, messages.c.created_at.desc(), messages.c.id.desc())
            .limit(limit)
        )
        conn = self.conn
        return load_all(Message, conn.execute(query).all())


def _search_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("text must contain at least one word", field="text")
    check_text(text, "text")  # no NUL character, no lone surrogate
    return text


# a literal, not a parameter, so that the planner matches the GIN index
_SIMPLE: ColumnElement[Any] = literal_column("'simple'")
_FTS = table(MESSAGES_FTS, column("rowid"), column(MESSAGES_FTS))


def _search_filters(
    conversation_id: IdLike | None,
    user_id: str | None,
    chat_id: str | None,
    role: Role | str | None,
) -> tuple[FromClause, builtins.list[ColumnElement[bool]]]:
    """What ``search`` reads from (messages, joined to conversations when a filter needs it) and
    the filters' conditions."""
    source: FromClause = messages
    conditions: builtins.list[ColumnElement[bool]] = []
    if conversation_id is not None:
        conditions.append(messages.c.conversation_id == to_uuid(conversation_id, "conversation_id"))
    if role is not None:
        conditions.append(messages.c.role == to_enum(Role, role, "role"))
    if user_id is not None or chat_id is not None:
        source = messages.join(conversations, conversations.c.id == messages.c.conversation_id)
        if user_id is not None:
            conditions.append(conversations.c.user_id == user_id)
        if chat_id is not None:
            conditions.append(conversations.c.chat_id == chat_id)
    return source, conditions


def _full_text(
    dialect: str, source: FromClause, text: str
) -> tuple[FromClause, ColumnElement[bool], ColumnElement[Any]]:
    """The source to read, the match condition and the best-first ordering for ``text``: the one
    place where the backends' full-text search differs."""
    if dialect == "postgresql":
        vector = func.to_tsvector(_SIMPLE, messages.c.content)
        wanted = func.plainto_tsquery(_SIMPLE, text)
        return source, vector.bool_op("@@")(wanted), func.ts_rank(vector, wanted).desc()
    joined = source.join(_FTS, _FTS.c.rowid == literal_column(f"{messages.name}.rowid"))
    match = _FTS.c[MESSAGES_FTS].bool_op("MATCH")(_fts5_words(text))
    return joined, match, func.bm25(literal_column(MESSAGES_FTS)).asc()


def _fts5_words(text: str) -> str:
    """An FTS5 query requiring every whitespace-separated word of ``text``, each quoted (so it is
    a string to tokenize, never syntax)."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in text.split())
