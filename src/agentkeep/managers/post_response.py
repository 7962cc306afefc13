"""POST_RESPONSE modules: what runs after a reply is stored and ``message_end`` was sent.

Each module whose trigger matches the exchange runs once: one that needs the model gets one call
(its content as instructions, the exchange as input) whose answer is kept in the conversation's
state (key ``output``, scoped to the module); the others are recorded as triggered (key
``triggered``: the reply's id). A module whose trigger times out is left out and logged (the
reply is already stored). A failure here never changes the stored reply.
"""

from __future__ import annotations

import logging

from agentkeep.config import Settings
from agentkeep.errors import AgentkeepError
from agentkeep.managers.agents import AgentInstance
from agentkeep.managers.prompt import triggered
from agentkeep.managers.turn_store import TurnStore
from agentkeep.models.config import Module
from agentkeep.models.conversation import Message
from agentkeep.providers import get_provider
from agentkeep.providers.base import ChatMessage, CompletionRequest, Token

log = logging.getLogger("agentkeep.chat")


async def run_post_response(
    instance: AgentInstance,
    settings: Settings,
    store: TurnStore,
    modules: list[Module],
    *,
    asked: str,
    reply: Message,
) -> None:
    """Run the ``modules`` (POST_RESPONSE, active) whose trigger matches the exchange."""
    exchange = f"User: {asked}\nAssistant: {reply.content}"
    for module in (await triggered(modules, exchange)).modules:
        key, value = "triggered", str(reply.id)
        if module.requires_ai_inference:
            key, value = "output", await ask(instance, settings, module, exchange)
        try:
            await store.put_state(reply.conversation_id, key, value, module_id=module.id)
        except AgentkeepError:  # the module or conversation went away meanwhile
            log.info("post-response module %s: its state was not kept", module.id)


async def ask(instance: AgentInstance, settings: Settings, module: Module, exchange: str) -> str:
    """The model's answer to a module's instructions about the exchange."""
    provider = get_provider(instance.provider, settings)
    request = CompletionRequest(
        instance.model,
        (ChatMessage("system", module.content or ""), ChatMessage("user", exchange)),
        settings=dict(instance.agent.model_settings),
    )
    try:
        return "".join([e.text async for e in provider.stream(request) if isinstance(e, Token)])
    except AgentkeepError as exc:
        return f"error: {exc.message}"
