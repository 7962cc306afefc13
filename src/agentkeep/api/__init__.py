"""The HTTP API: ``create_app(settings)`` builds it; ``agentkeep serve`` runs it."""

from agentkeep.api.app import create_app

__all__ = ["create_app"]
