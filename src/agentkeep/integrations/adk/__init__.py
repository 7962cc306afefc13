"""Google ADK over agentkeep: ``AgentkeepSessionService`` and ``AgentkeepMemoryService``.

Needs the ``adk`` extra (``pip install 'agentkeep[adk]'``)::

    from agentkeep.integrations.adk import AgentkeepSessionService

    sessions = AgentkeepSessionService.from_url("sqlite:///agent.db")
    runner = Runner(app_name="support", agent=agent, session_service=sessions)
"""

from agentkeep.integrations.adk.memory import AgentkeepMemoryService
from agentkeep.integrations.adk.sessions import AgentkeepSessionService

__all__ = ["AgentkeepMemoryService", "AgentkeepSessionService"]
