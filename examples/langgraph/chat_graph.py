"""A LangGraph chat graph whose checkpoints and messages live in agentkeep (no model: it echoes).

    python examples/langgraph/chat_graph.py [DATABASE]     # default: an in-memory store

Runs three turns on one thread, rewinds to the first turn and forks from there, then prints the
thread's conversation as agentkeep stores it (what the HTTP API and the web UI show).
"""

import sys
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph, add_messages

import agentkeep
from agentkeep.integrations.langgraph import AgentkeepSaver


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def echo(state: Chat) -> dict[str, Any]:
    return {"messages": [AIMessage(f"echo: {state['messages'][-1].content}")]}


def main(database: str = "memory") -> None:
    db = agentkeep.connect_sync(database)
    builder = StateGraph(Chat)
    builder.add_node("echo", echo)
    builder.add_edge(START, "echo")
    builder.add_edge("echo", END)
    graph = builder.compile(checkpointer=AgentkeepSaver(db))
    config: Any = {"configurable": {"thread_id": "demo"}}
    for text in ("bought coffee for 300 roubles", "and a cake", "what did I buy?"):
        graph.invoke({"messages": [HumanMessage(text)]}, config)
    print("now:", [m.content for m in graph.get_state(config).values["messages"]])
    first = [s for s in graph.get_state_history(config) if s.metadata and s.metadata["step"] == 1]
    forked = graph.invoke({"messages": [HumanMessage("no cake after all")]}, first[0].config)
    print("forked:", [m.content for m in forked["messages"]])
    # the thread's conversation: user "langgraph", the thread id as its chat id
    (conversation,) = db.conversations.list(user_id="langgraph", chat_id="demo").items
    print("conversation:", conversation.message_count, "messages")
    db.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
