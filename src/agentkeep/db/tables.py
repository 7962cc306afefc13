"""The schema's tables as SQLAlchemy Core ``Table`` objects, for the repositories' SQL.

The ORM classes in ``db.rows`` declare them (and drive migrations); repositories write Core
statements against these.
"""

from __future__ import annotations

from sqlalchemy import Table

from agentkeep.db.rows import Base

_tables = Base.metadata.tables

personas: Table = _tables["personas"]
modules: Table = _tables["modules"]
agents: Table = _tables["agents"]
tools: Table = _tables["tools"]
agent_tools: Table = _tables["agent_tools"]
agent_modules: Table = _tables["agent_modules"]
workflows: Table = _tables["workflows"]
conversations: Table = _tables["conversations"]
messages: Table = _tables["messages"]
conversation_data: Table = _tables["conversation_data"]
agent_questions: Table = _tables["agent_questions"]
conversation_states: Table = _tables["conversation_states"]
memories: Table = _tables["memories"]
embedding_models: Table = _tables["embedding_models"]
user_sessions: Table = _tables["user_sessions"]
operation_templates: Table = _tables["operation_templates"]
api_keys: Table = _tables["api_keys"]
graph_checkpoints: Table = _tables["graph_checkpoints"]
graph_blobs: Table = _tables["graph_blobs"]
graph_writes: Table = _tables["graph_writes"]
store_items: Table = _tables["store_items"]
store_changes: Table = _tables["store_changes"]
