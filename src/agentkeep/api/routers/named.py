"""Create, read, replace, change and delete for the named configuration resources.

Personas, modules, agents, tools and workflows share one shape (``NamedRepository``), so their
routes are made here once; each resource's module adds its own list filters and extra routes.
``PUT`` replaces the whole declaration (fields left out take their defaults, as in a project
file); ``PATCH`` changes only the fields sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Body, Path, Response, status

from agentkeep.api.deps import Db, example, with_types
from agentkeep.api.errors import responses
from agentkeep.errors import NotFoundError
from agentkeep.models.common import Input, Model
from agentkeep.repositories.base import Async
from agentkeep.repositories.facade import DatabaseManager
from agentkeep.repositories.named import NamedRepository

ItemT = TypeVar("ItemT", bound=Model)
CreateT = TypeVar("CreateT", bound=Input)
UpdateT = TypeVar("UpdateT", bound=Input)


Repository = NamedRepository[Async, ItemT, CreateT, UpdateT]


class Resource(Generic[ItemT, CreateT, UpdateT]):
    """What the routes of one named resource need to know about it."""

    def __init__(
        self,
        *,
        noun: str,
        repository: Callable[
            [DatabaseManager[Async]], NamedRepository[Async, ItemT, CreateT, UpdateT]
        ],
        item: type[ItemT],
        create: type[CreateT],
        update: type[UpdateT],
        example: dict[str, Any],
    ) -> None:
        self.noun = noun
        self.repository = repository
        self.item = item
        self.create = create
        self.update = update
        self.example = example

    @property
    def id_param(self) -> str:
        return f"{self.noun}_id"


def add_crud_routes(router: APIRouter, resource: Resource[ItemT, CreateT, UpdateT]) -> None:
    """``POST /``, ``GET /{id}``, ``PUT /{id}``, ``PATCH /{id}`` and ``DELETE /{id}``."""
    noun, repo = resource.noun, resource.repository
    one = f"/{{{resource.id_param}}}"

    async def create(db: Db, data: CreateT) -> ItemT:
        return await repo(db).create(data)

    async def get(db: Db, item_id: uuid.UUID) -> ItemT:
        return await repo(db).get(item_id)

    async def replace(db: Db, item_id: uuid.UUID, data: CreateT) -> ItemT:
        # every field of the declaration, defaults included, written as one change
        return await change(db, item_id, resource.update.model_validate(data.model_dump()))

    async def change(db: Db, item_id: uuid.UUID, data: UpdateT) -> ItemT:
        return await repo(db).update(item_id, data)

    async def remove(db: Db, item_id: uuid.UUID) -> Response:
        deleted = await repo(db).delete(item_id)
        if not deleted:
            raise NotFoundError(f"{noun} {item_id} not found", field=resource.id_param)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    created = Body(openapi_examples=example(f"a {noun}", resource.example))
    patched = Body(openapi_examples=example("change one field", {"description": "…"}))
    path_id = {"item_id": _path_id(resource)}
    router.post(
        "",
        response_model=resource.item,
        status_code=status.HTTP_201_CREATED,
        summary=f"Create a {noun}",
        responses=responses(400, 404, 409, 413, 422),
    )(with_types(create, data=_annotated(resource.create, created)))
    router.get(
        one, response_model=resource.item, summary=f"Get a {noun}", responses=responses(404, 422)
    )(with_types(get, **path_id))
    router.put(
        one,
        response_model=resource.item,
        summary=f"Replace a {noun}'s declaration",
        responses=responses(400, 404, 409, 413, 422),
    )(with_types(replace, **path_id, data=_annotated(resource.create, created)))
    router.patch(
        one,
        response_model=resource.item,
        summary=f"Change some of a {noun}'s fields",
        responses=responses(400, 404, 409, 413, 422),
    )(with_types(change, **path_id, data=_annotated(resource.update, patched)))
    router.delete(
        one,
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        summary=f"Delete a {noun}",
        responses=responses(404, 422),
    )(with_types(remove, **path_id))


def _path_id(resource: Resource[Any, Any, Any]) -> Any:
    return Annotated[
        uuid.UUID, Path(alias=resource.id_param, description=f"the {resource.noun}'s id")
    ]


def _annotated(model: type[Input], body: Any) -> Any:
    return Annotated[model, body]
