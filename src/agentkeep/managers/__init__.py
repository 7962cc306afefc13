"""Domain rules above the store: the agent cache, tool running, prompts and chat turns."""
