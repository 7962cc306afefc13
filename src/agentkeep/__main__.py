"""``python -m agentkeep``: the ``agentkeep`` command without its console script."""

from agentkeep.cli import app

app(prog_name="agentkeep")
