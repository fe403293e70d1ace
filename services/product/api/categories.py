"""The category tree: public to read, admins change it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from services.common.errors import NotFound
from services.common.identity import Caller, require_role
from services.common.schemas import error_responses
from services.product.api.deps import Service
from services.product.api.schemas import (
    CategoryDetail,
    CategoryIn,
    CategoryOut,
    CategoryPatch,
    CategoryRef,
    changes,
)
from services.product.domain.catalogue import ancestors, build_tree, find

router = APIRouter(prefix="/categories", tags=["categories"])
Admin = Annotated[Caller, Depends(require_role("admin"))]


@router.get("", response_model=list[CategoryOut], summary="The whole tree (public)")
async def tree(service: Service) -> list[CategoryOut]:
    return [CategoryOut.of(root) for root in build_tree(await service.repository.categories())]


@router.get("/{category_id}", response_model=CategoryDetail, responses=error_responses(404),
            summary="A category with its path from the root and its subtree (public)")
async def category(category_id: int, service: Service) -> CategoryDetail:
    rows = await service.repository.categories()
    by_id = {int(r["id"]): r for r in rows}
    if category_id not in by_id:
        raise NotFound(f"category {category_id} does not exist")
    parents = {cid: (None if r["parent_id"] is None else int(r["parent_id"]))
               for cid, r in by_id.items()}
    path = [CategoryRef(id=cid, name=by_id[cid]["name"])
            for cid in reversed(ancestors(parents, category_id))]
    node = find(build_tree(rows), category_id)
    assert node is not None
    return CategoryDetail(**CategoryOut.of(node).model_dump(), path=path)


@router.post("", response_model=CategoryOut, status_code=status.HTTP_201_CREATED,
             responses=error_responses(401, 403, 409, 422), summary="Add a category (admins)")
async def create(body: CategoryIn, caller: Admin, service: Service) -> CategoryOut:
    row = await service.repository.create_category(body.name, body.parent_id, body.position)
    return CategoryOut(id=row["id"], name=row["name"], parent_id=row["parent_id"],
                       position=row["position"], children=[])


@router.patch("/{category_id}", response_model=CategoryOut,
              responses=error_responses(401, 403, 404, 409, 422),
              summary="Rename, reorder or move a category (admins)")
async def update(category_id: int, body: CategoryPatch, caller: Admin,
                 service: Service) -> CategoryOut:
    row = await service.repository.update_category(category_id,
                                                   changes(body, nullable=("parent_id",)))
    return CategoryOut(id=row["id"], name=row["name"], parent_id=row["parent_id"],
                       position=row["position"], children=[])


@router.delete("/{category_id}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response, responses=error_responses(401, 403, 404, 409),
               summary="Remove an empty leaf category (admins)")
async def remove(category_id: int, caller: Admin, service: Service) -> Response:
    await service.repository.delete_category(category_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
