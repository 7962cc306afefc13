"""Long-term memory support: the embedders that turn memories into vectors."""

from agentkeep.memory.embedders import Embedder, EmbedderError, describe, embedder_from

__all__ = ["Embedder", "EmbedderError", "describe", "embedder_from"]
