"""agentkeep: the persistence and memory backbone for AI-agent applications.

import agentkeep

db = agentkeep.connect()                      # async API; agentkeep.connect_sync() for scripts
conversation = await db.conversations.create(agentkeep.ConversationCreate(user_id="u1"))
await db.messages.append(conversation.id, agentkeep.MessageCreate(role="user", content="hi"))
history = await db.messages.last(conversation.id, 50)
"""

from agentkeep.config import Settings
from agentkeep.errors import (
    AgentkeepError,
    ConflictError,
    NotFoundError,
    StorageError,
    TooLargeError,
    UnavailableError,
    ValidationError,
)
from agentkeep.models.common import Page
from agentkeep.models.conversation import (
    Conversation,
    ConversationCreate,
    ConversationUpdate,
    Message,
    MessageCreate,
    MessageUpdate,
)
from agentkeep.models.enums import (
    ConversationStatus,
    DataType,
    ExecutionContext,
    MessageStatus,
    Role,
)
from agentkeep.repositories.base import Async, Sync
from agentkeep.repositories.facade import DatabaseManager, connect, connect_sync

__all__ = [
    "AgentkeepError",
    "Async",
    "ConflictError",
    "Conversation",
    "ConversationCreate",
    "ConversationStatus",
    "ConversationUpdate",
    "DataType",
    "DatabaseManager",
    "ExecutionContext",
    "Message",
    "MessageCreate",
    "MessageStatus",
    "MessageUpdate",
    "NotFoundError",
    "Page",
    "Role",
    "Settings",
    "StorageError",
    "Sync",
    "TooLargeError",
    "UnavailableError",
    "ValidationError",
    "connect",
    "connect_sync",
]
