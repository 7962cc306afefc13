"""A LangChain chat history kept in agentkeep (no model: replies are echoed).

python examples/langchain/chat_history.py [DATABASE]     # default: an in-memory store
"""

from __future__ import annotations

import sys

from langchain_core.messages import AIMessage, HumanMessage

import agentkeep
from agentkeep.integrations.langchain import AgentkeepChatMessageHistory


def main(database: str = "memory") -> None:
    db = agentkeep.connect_sync(database)
    history = AgentkeepChatMessageHistory(db, "telegram-chat-42")
    for text in ("bought coffee for 300 roubles", "and a cake"):
        history.add_messages([HumanMessage(text), AIMessage(f"echo: {text}")])
    for message in history.messages:
        print(f"{message.type}: {message.content}")
    conversation = db.conversations.list().items[0]
    print("conversation", conversation.id, "holds", conversation.message_count, "messages")
    db.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
