"""Stores (sellers create them, owners change them) and their delivery policies."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from services.common.identity import Caller, CurrentCaller, require_role
from services.common.schemas import error_responses
from services.product.api.deps import Service
from services.product.api.schemas import (
    DeliveryPolicyIn,
    DeliveryPolicyOut,
    StoreIn,
    StoreOut,
    StorePage,
    StorePatch,
    changes,
)
from services.product.domain.cart import DeliveryPolicy
from services.product.domain.catalogue import MAX_PAGE_SIZE

router = APIRouter(tags=["stores"])
Seller = Annotated[Caller, Depends(require_role("seller"))]


@router.post("/stores", response_model=StoreOut, status_code=status.HTTP_201_CREATED,
             responses=error_responses(401, 403, 422), summary="Open a store (sellers)")
async def create_store(body: StoreIn, caller: Seller, service: Service) -> StoreOut:
    return await service.create_store(caller, body.name, body.description)


@router.get("/stores", response_model=StorePage, responses=error_responses(422),
            summary="List stores (public)")
async def list_stores(service: Service,
                      owner_id: Annotated[str | None, Query(alias="ownerId")] = None,
                      page: Annotated[int, Query(ge=0)] = 0,
                      size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20) -> StorePage:
    rows, total = await service.repository.stores_page(owner_id, page, size)
    return StorePage(items=[service.store_out(row) for row in rows], page=page, size=size,
                     total=total)


@router.get("/stores/{store_id}", response_model=StoreOut, responses=error_responses(404),
            summary="A store (public)")
async def get_store(store_id: int, service: Service) -> StoreOut:
    return await service.store(store_id)


@router.patch("/stores/{store_id}", response_model=StoreOut,
              responses=error_responses(401, 403, 404, 422),
              summary="Change a store (its owner or an admin)")
async def update_store(store_id: int, body: StorePatch, caller: CurrentCaller,
                       service: Service) -> StoreOut:
    return await service.update_store(caller, store_id, changes(body))


@router.put("/delivery-policies/{store_id}", response_model=DeliveryPolicyOut,
            responses=error_responses(401, 403, 404, 422),
            tags=["delivery policies"],
            summary="Set a store's delivery policy (its owner or an admin)")
async def put_delivery_policy(store_id: int, body: DeliveryPolicyIn, caller: CurrentCaller,
                              service: Service) -> DeliveryPolicyOut:
    return await service.put_delivery_policy(
        caller, store_id, DeliveryPolicy(body.fee, body.free_over, body.lead_days))


@router.get("/delivery-policies/{store_id}", response_model=DeliveryPolicyOut,
            responses=error_responses(401, 404),
            tags=["delivery policies"], summary="A store's delivery policy")
async def get_delivery_policy(store_id: int, caller: CurrentCaller,
                              service: Service) -> DeliveryPolicyOut:
    return await service.delivery_policy(store_id)
