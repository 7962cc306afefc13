"""LangGraph persistence over agentkeep: :class:`AgentkeepSaver` (checkpoints) and
:class:`AgentkeepStore` (the long-term key/value store, with semantic search through
``db.memory``).

Requires the ``langgraph`` extra (``pip install agentkeep[langgraph]``).
"""

from agentkeep.integrations.langgraph.saver import AgentkeepSaver
from agentkeep.integrations.langgraph.store import AgentkeepStore

__all__ = ["AgentkeepSaver", "AgentkeepStore"]
