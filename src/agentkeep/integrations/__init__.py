"""Adapters that let agent frameworks keep their sessions, state and memory in agentkeep."""
