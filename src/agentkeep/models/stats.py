"""How much the store holds and what is used most (the Home page's numbers)."""

from __future__ import annotations

from agentkeep.models.common import Model


class UsageCount(Model):
    id: str
    name: str
    count: int


class Stats(Model):
    agents: int
    personas: int
    modules: int
    tools: int
    workflows: int
    conversations: int
    conversations_by_status: dict[str, int]
    messages: int
    memories: int = 0
    """Long-term memories stored."""
    input_tokens: int
    output_tokens: int
    busiest_agents: list[UsageCount]
    """Agents by messages stored in their conversations, most first (at most five)."""
    most_used_tools: list[UsageCount]
    """Tools by calls recorded, most first (at most five)."""
