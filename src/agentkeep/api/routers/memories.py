"""``/api/v1/memories``: long-term memory: remember, list, search, change and forget.

Every route goes through ``db.memory`` (the memory manager), which computes embeddings with the
server's embedder (``AGENTKEEP_EMBEDDER``) before its unit of work, both in one worker-thread hop.
A search ranks memories by meaning and by words, weighed with importance and recency; each hit
carries its score and the parts of it, and counts an access to the memory (unless
``count_access=false``). Answers leave the vectors out unless ``include_embedding=true``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response, status

from agentkeep.api.deps import API_PREFIX, Cursor, Db, Limit, example
from agentkeep.api.errors import responses
from agentkeep.api.memory_schemas import (
    MAX_QUERY_CHARS,
    EmbedderInfo,
    MemoryHits,
    MemoryModels,
    MemoryOut,
    MemorySearch,
    hit_out,
    memory_out,
)
from agentkeep.errors import NotFoundError
from agentkeep.memory.embedders import EmbedderError, describe
from agentkeep.models.common import Name, Name50, Page, Text, UTCDatetime
from agentkeep.models.memory import MemoryCreate, MemoryUpdate
from agentkeep.repositories.base import Async, in_worker_thread
from agentkeep.repositories.facade import DatabaseManager

router = APIRouter(prefix=f"{API_PREFIX}/memories", tags=["memories"])

MemoryId = Annotated[uuid.UUID, Path(description="the memory's id")]
IncludeEmbedding = Annotated[
    bool, Query(description="answer with each memory's embedding (hundreds of numbers)")
]
UserFilter = Annotated[Name | None, Query(description="only this user's memories")]
TypeFilter = Annotated[Name50 | None, Query(description="only memories of this type")]
After = Annotated[UTCDatetime | None, Query(description="made at or after (with a time zone)")]
Before = Annotated[UTCDatetime | None, Query(description="made before (with a time zone)")]

_CREATE_EXAMPLE = {
    "content": "The user's daughter is called Alice",
    "user_id": "u1",
    "memory_type": "fact",
    "importance": 0.8,
    "metadata": {"source": "chat"},
}
_SEARCH_EXAMPLE = {"q": "what is my kid's name", "user_id": "u1", "k": 5}
_WRITE_ERRORS = responses(400, 404, 413, 422, 503)


@router.post(
    "",
    response_model=MemoryOut,
    response_model_exclude_unset=True,
    status_code=status.HTTP_201_CREATED,
    summary="Remember: store a memory, its embedding computed unless one is given",
    responses=_WRITE_ERRORS,
)
async def create_memory(
    db: Db,
    data: Annotated[MemoryCreate, Body(openapi_examples=example("a fact", _CREATE_EXAMPLE))],
    include_embedding: IncludeEmbedding = False,
) -> MemoryOut:
    (memory,) = await db.memory.remember_many([data])
    return memory_out(memory, include_embedding=include_embedding)


@router.get(
    "",
    response_model=Page[MemoryOut],
    response_model_exclude_unset=True,
    summary="List memories, newest first, filtered",
    responses=responses(422),
)
async def list_memories(
    db: Db,
    user_id: UserFilter = None,
    agent_id: uuid.UUID | None = None,
    persona_id: uuid.UUID | None = None,
    conversation_id: uuid.UUID | None = None,
    memory_type: TypeFilter = None,
    created_after: After = None,
    created_before: Before = None,
    limit: Limit = 20,
    cursor: Cursor = None,
    include_embedding: IncludeEmbedding = False,
) -> Page[MemoryOut]:
    page = await db.memory.list(
        user_id=user_id,
        agent_id=agent_id,
        persona_id=persona_id,
        conversation_id=conversation_id,
        memory_type=memory_type,
        created_after=created_after,
        created_before=created_before,
        limit=limit,
        cursor=cursor,
    )
    items = [memory_out(m, include_embedding=include_embedding) for m in page.items]
    return Page[MemoryOut](items=items, next_cursor=page.next_cursor)


@router.get(
    "/search",
    response_model=MemoryHits,
    response_model_exclude_unset=True,
    summary="Search memories by text: ranked by meaning, words, importance and recency",
    responses=responses(422, 503),
)
async def search_memories(
    db: Db,
    q: Annotated[
        Text,
        Query(min_length=1, max_length=MAX_QUERY_CHARS, description="what to look for"),
    ],
    k: Annotated[int, Query(description="how many memories, at most")] = 10,
    min_score: Annotated[float, Query(description="leave out scores below (0 to 1)")] = 0.0,
    user_id: UserFilter = None,
    agent_id: uuid.UUID | None = None,
    persona_id: uuid.UUID | None = None,
    conversation_id: uuid.UUID | None = None,
    memory_type: TypeFilter = None,
    created_after: After = None,
    created_before: Before = None,
    count_access: Annotated[
        bool, Query(description="count an access to each memory returned")
    ] = True,
    include_embedding: IncludeEmbedding = False,
) -> MemoryHits:
    return await _search(
        db,
        {
            "query": q,
            "k": k,
            "min_score": min_score,
            "user_id": user_id,
            "agent_id": agent_id,
            "persona_id": persona_id,
            "conversation_id": conversation_id,
            "memory_type": memory_type,
            "created_after": created_after,
            "created_before": created_before,
            "count_access": count_access,
        },
        include_embedding=include_embedding,
    )


@router.post(
    "/search",
    response_model=MemoryHits,
    response_model_exclude_unset=True,
    summary="Search memories by an embedding, text, or both",
    responses=responses(400, 422, 503),
)
async def search_memories_by_body(
    db: Db,
    data: Annotated[MemorySearch, Body(openapi_examples=example("by text", _SEARCH_EXAMPLE))],
) -> MemoryHits:
    arguments = data.model_dump(exclude={"q", "include_embedding"})
    arguments["query"] = data.q
    return await _search(db, arguments, include_embedding=data.include_embedding)


@router.get(
    "/models",
    response_model=MemoryModels,
    summary="The embedding models the store holds vectors of, and this server's embedder",
    responses=responses(503),
)
async def embedding_models(db: Db) -> MemoryModels:
    embedder = await in_worker_thread(_embedder, db)
    models = await db.memories.models()
    remaining = await db.memory.remaining_to_reindex()
    return MemoryModels(embedder=embedder, models=models, not_embedded_by_embedder=remaining)


@router.get(
    "/{memory_id}",
    response_model=MemoryOut,
    response_model_exclude_unset=True,
    summary="Get a memory (reading it is not an access)",
    responses=responses(404, 422),
)
async def get_memory(
    db: Db, memory_id: MemoryId, include_embedding: IncludeEmbedding = False
) -> MemoryOut:
    memory = await db.memory.get(memory_id)
    return memory_out(memory, include_embedding=include_embedding)


@router.patch(
    "/{memory_id}",
    response_model=MemoryOut,
    response_model_exclude_unset=True,
    summary="Change a memory's fields (new content is embedded again)",
    responses=_WRITE_ERRORS,
)
async def update_memory(
    db: Db,
    memory_id: MemoryId,
    data: Annotated[
        MemoryUpdate, Body(openapi_examples=example("more important", {"importance": 0.9}))
    ],
    include_embedding: IncludeEmbedding = False,
) -> MemoryOut:
    memory = await db.memory.update(memory_id, data)
    return memory_out(memory, include_embedding=include_embedding)


@router.delete(
    "/{memory_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Forget a memory",
    responses=responses(404, 422),
)
async def delete_memory(db: Db, memory_id: MemoryId) -> Response:
    if not await db.memory.forget(memory_id):
        raise NotFoundError(f"memory {memory_id} not found", field="memory_id")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _search(
    db: DatabaseManager[Async], arguments: dict[str, Any], *, include_embedding: bool
) -> MemoryHits:
    hits = await db.memory.recall(**arguments, include_embedding=include_embedding)
    return MemoryHits(items=[hit_out(hit, include_embedding=include_embedding) for hit in hits])


def _embedder(db: DatabaseManager[Async]) -> EmbedderInfo:
    """Blocking: an endpoint's embedder asks its endpoint for its dimension (once)."""
    embedder = db.memory.embedder
    dimension, problem = None, None
    try:
        dimension = embedder.dimension
    except EmbedderError as exc:  # the store's models are still worth listing
        problem = exc.message
    return EmbedderInfo(
        name=embedder.name, dimension=dimension, description=describe(embedder), problem=problem
    )
