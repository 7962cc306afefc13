"""Configuration as code: a project file of personas, modules, tools, agents and workflows,
declared by name, synced into a store and exported from one.

- :mod:`agentkeep.project.model`: the file, its JSON Schema, reading and validating it;
- :mod:`agentkeep.project.sync`: sync, export and the difference, over one unit of work.
"""

from agentkeep.project.model import (
    AgentEntry,
    Project,
    parse_project,
    project_schema,
    read_project,
    validate_project,
)
from agentkeep.project.sync import (
    KindReport,
    SyncReport,
    export_project,
    sync_file,
    sync_project,
)

__all__ = [
    "AgentEntry",
    "KindReport",
    "Project",
    "SyncReport",
    "export_project",
    "parse_project",
    "project_schema",
    "read_project",
    "sync_file",
    "sync_project",
    "validate_project",
]
