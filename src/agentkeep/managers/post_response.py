"""POST_RESPONSE modules: what runs after a reply is stored and ``message_end`` was sent.

Each module whose trigger matches the exchange runs once: one that needs the model gets one call
(its content as instructions, the exchange as input) whose answer is kept in the conversation's
state (key ``output``, scoped to the module); the others are recorded as triggered (key
``triggered``: the reply's id). A module whose trigger times out is left out and logged (the
reply is already stored). A failure here never changes the stored reply.

Then, for an agent on a real model (not the offline ``echo``), every
``AGENTKEEP_MEMORY_SUMMARY_EVERY`` messages of a conversation (:func:`summarise`): the model is
asked to summarise the last that many messages, and its summary is kept as a ``semantic`` memory
(``managers.turn_memory``). A model or store that fails here is logged; the turn is over.
"""

from __future__ import annotations

import logging

from agentkeep.config import Settings
from agentkeep.errors import AgentkeepError
from agentkeep.managers.agents import AgentInstance
from agentkeep.managers.prompt import triggered
from agentkeep.managers.turn_memory import summary_due
from agentkeep.managers.turn_store import TurnStore
from agentkeep.managers.turn_types import Prepared
from agentkeep.models.config import Module
from agentkeep.models.conversation import Message
from agentkeep.models.enums import MessageStatus, Role
from agentkeep.providers import get_provider
from agentkeep.providers.base import ChatMessage, CompletionRequest, Token

SUMMARY_INSTRUCTIONS = (
    "Summarise the conversation below in a few sentences: what the user said about themselves, "
    "what they want, and what was decided. Write it as notes to remember about the user for "
    "later conversations. Answer with the summary alone."
)
_SPEAKERS = {Role.USER: "User", Role.ASSISTANT: "Assistant", Role.TOOL: "Tool"}

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
    try:
        return await _complete(instance, settings, module.content or "", exchange)
    except AgentkeepError as exc:
        return f"error: {exc.message}"


async def summarise(
    instance: AgentInstance,
    settings: Settings,
    store: TurnStore,
    prepared: Prepared,
    *,
    last: int,
) -> None:
    """Keep a summary of the last ``AGENTKEEP_MEMORY_SUMMARY_EVERY`` messages as a semantic
    memory when the turn (its messages up to sequence number ``last``) completed that many."""
    every = settings.memory_summary_every
    before = prepared.user_message.seq - 1
    if instance.provider == "echo" or not summary_due(every, before=before, last=last):
        return
    conversation = prepared.conversation
    try:
        messages = [
            m
            for m in await store.last_messages(conversation.id, every)
            if m.status is not MessageStatus.ERROR and m.role in _SPEAKERS and m.content.strip()
        ]
        if not messages:
            return
        transcript = "\n".join(f"{_SPEAKERS[m.role]}: {m.content}" for m in messages)
        summary = (await _complete(instance, settings, SUMMARY_INSTRUCTIONS, transcript)).strip()
        if summary:
            await store.memory.keep_summary(conversation, messages, summary)
    except Exception:  # the reply is stored and ended: a summary missed is only logged
        log.warning("conversation %s was not summarised", conversation.id, exc_info=True)


async def _complete(
    instance: AgentInstance, settings: Settings, instructions: str, text: str
) -> str:
    """The model's whole answer to ``instructions`` about ``text``."""
    provider = get_provider(instance.provider, settings)
    request = CompletionRequest(
        instance.model,
        (ChatMessage("system", instructions), ChatMessage("user", text)),
        settings=dict(instance.agent.model_settings),
    )
    return "".join([e.text async for e in provider.stream(request) if isinstance(e, Token)])
