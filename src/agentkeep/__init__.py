"""agentkeep: the persistence and memory backbone for AI-agent applications.

import agentkeep

db = agentkeep.connect()                      # async API; agentkeep.connect_sync() for scripts
conversation = await db.conversations.create(agentkeep.ConversationCreate(user_id="u1"))
await db.messages.append(conversation.id, agentkeep.MessageCreate(role="user", content="hi"))
history = await db.messages.last(conversation.id, 50)
"""

from importlib.metadata import version as _version

from agentkeep.config import Settings
from agentkeep.errors import (
    AgentkeepError,
    ConflictError,
    IdempotencyConflictError,
    NotFoundError,
    StorageError,
    StorageFullError,
    TooLargeError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
)
from agentkeep.memory.embedders import Embedder, EmbedderError, embedder_from
from agentkeep.memory.manager import MemoryManager
from agentkeep.models.api_keys import ApiKey
from agentkeep.models.common import Page
from agentkeep.models.config import (
    Agent,
    AgentCreate,
    AgentUpdate,
    Module,
    ModuleCreate,
    ModuleUpdate,
    Persona,
    PersonaCreate,
    PersonaUpdate,
    Tool,
    ToolCreate,
    ToolUpdate,
    Workflow,
    WorkflowCreate,
    WorkflowUpdate,
)
from agentkeep.models.conversation import (
    Conversation,
    ConversationCreate,
    ConversationUpdate,
    Message,
    MessageCreate,
    MessageUpdate,
    ToolCallRecord,
)
from agentkeep.models.conversation_flow import (
    AgentQuestion,
    ConversationContext,
    ConversationData,
    ConversationState,
    OperationTemplate,
    OperationTemplateCreate,
    OperationTemplateUpdate,
    UserSession,
)
from agentkeep.models.enums import (
    ConversationStatus,
    DataType,
    ExecutionContext,
    MessageStatus,
    Role,
)
from agentkeep.models.memory import EmbeddingModel, Memory, MemoryCreate, MemoryHit, MemoryUpdate
from agentkeep.repositories.base import Async, Sync
from agentkeep.repositories.facade import DatabaseManager, Unit, connect, connect_sync

__version__ = _version("agentkeep")

__all__ = [
    "Agent",
    "AgentCreate",
    "AgentQuestion",
    "AgentUpdate",
    "AgentkeepError",
    "ApiKey",
    "Async",
    "ConflictError",
    "Conversation",
    "ConversationContext",
    "ConversationCreate",
    "ConversationData",
    "ConversationState",
    "ConversationStatus",
    "ConversationUpdate",
    "DataType",
    "DatabaseManager",
    "Embedder",
    "EmbedderError",
    "EmbeddingModel",
    "ExecutionContext",
    "IdempotencyConflictError",
    "Memory",
    "MemoryCreate",
    "MemoryHit",
    "MemoryManager",
    "MemoryUpdate",
    "Message",
    "MessageCreate",
    "MessageStatus",
    "MessageUpdate",
    "Module",
    "ModuleCreate",
    "ModuleUpdate",
    "NotFoundError",
    "OperationTemplate",
    "OperationTemplateCreate",
    "OperationTemplateUpdate",
    "Page",
    "Persona",
    "PersonaCreate",
    "PersonaUpdate",
    "Role",
    "Settings",
    "StorageError",
    "StorageFullError",
    "Sync",
    "TooLargeError",
    "Tool",
    "ToolCallRecord",
    "ToolCreate",
    "ToolUpdate",
    "UnauthorizedError",
    "UnavailableError",
    "Unit",
    "UserSession",
    "ValidationError",
    "Workflow",
    "WorkflowCreate",
    "WorkflowUpdate",
    "connect",
    "connect_sync",
    "embedder_from",
]
