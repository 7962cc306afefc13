"""The store's totals, read from one snapshot.

Message counts and token totals come from the conversations' own counters (kept by every message
write), so they cost a scan of conversations, never of messages.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, func, select

from agentkeep.db.tables import (
    agents,
    conversations,
    memories,
    modules,
    personas,
    tools,
    workflows,
)
from agentkeep.models.stats import Stats, UsageCount


def read_stats(conn: Connection) -> Stats:
    """The totals, read on ``conn`` (a read unit: one snapshot)."""
    counts = {
        t.name: _count(conn, t) for t in (agents, personas, modules, tools, workflows, memories)
    }
    by_status = {
        str(status): int(n)
        for status, n in conn.execute(
            select(conversations.c.status, func.count()).group_by(conversations.c.status)
        )
    }
    stored = conn.scalar(select(func.coalesce(func.sum(conversations.c.message_count), 0)))
    tokens = conn.execute(
        select(
            func.coalesce(func.sum(conversations.c.input_tokens), 0),
            func.coalesce(func.sum(conversations.c.output_tokens), 0),
        )
    ).one()
    busiest = _top(conn, agents, agents.c.message_count)
    most_used = _top(conn, tools, tools.c.usage_count)
    return Stats(
        **counts,
        conversations=sum(by_status.values()),
        conversations_by_status=by_status,
        messages=int(stored or 0),
        input_tokens=int(tokens[0]),
        output_tokens=int(tokens[1]),
        busiest_agents=busiest,
        most_used_tools=most_used,
    )


def _count(conn: Connection, table: Table) -> int:
    return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def _top(
    conn: Connection, table: Table, measure: ColumnElement[Any], n: int = 5
) -> list[UsageCount]:
    rows = conn.execute(
        select(table.c.id, table.c.name, measure)
        .where(measure > 0)
        .order_by(measure.desc(), table.c.name)
        .limit(n)
    )
    return [UsageCount(id=str(i), name=name, count=int(c)) for i, name, c in rows]
