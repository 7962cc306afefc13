"""LangGraph threads' conversations apart from LangChain chat histories

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 12:00:00.000000

A LangChain chat history's session and a LangGraph thread were both the conversation of user
``langchain`` with that id as its chat id, so a history and a thread given the same id shared
one conversation: the history's messages showed among the thread's, and clearing the history
deleted what the thread showed. Threads are now the conversations of user ``langgraph``; the
conversation of each thread stored so far (a ``langchain`` conversation whose chat id is a
thread id of ``graph_checkpoints``) moves there. Downgrading moves them back.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _move(old: str, new: str) -> None:
    op.execute(
        f"UPDATE conversations SET user_id = '{new}' WHERE user_id = '{old}' "
        "AND chat_id IN (SELECT DISTINCT thread_id FROM graph_checkpoints)"
    )


def upgrade() -> None:
    _move("langchain", "langgraph")


def downgrade() -> None:
    _move("langgraph", "langchain")
