"""agentkeep against the libraries people use instead (Google ADK, LangChain, LangGraph) and the
raw drivers, on one workload, in one run: ``python -m bench.compare`` (see ``__main__``).

How it fits together: ``plan`` lists the subjects; ``orchestrate`` runs each (twice, fresh
databases) as a ``child`` process with the right interpreter; ``measure`` is the workload driver
every subject shares, ``workload`` the data; ``raw``, ``agentkeep_runner`` and ``anchors/*`` adapt
each library to it; ``results``, ``render``, ``targets`` and ``plots`` turn the records into the
"comparison" section of docs/benchmarks.md and its PNGs.
"""
