"""Reviews: one per order line, by the buyer; public to read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from services.common.errors import Invalid, NotFound
from services.common.identity import CurrentCaller
from services.common.schemas import error_responses
from services.product.api.deps import Service
from services.product.api.schemas import ReviewIn, ReviewOut, ReviewPage, ReviewPatch, changes
from services.product.domain.catalogue import MAX_PAGE_SIZE

router = APIRouter(prefix="/reviews", tags=["reviews"])


@router.post("", response_model=ReviewOut, status_code=status.HTTP_201_CREATED,
             responses=error_responses(401, 404, 409, 422, 503),
             summary="Review a product of one of your orders (409 on a second review)")
async def create_review(body: ReviewIn, caller: CurrentCaller, service: Service) -> ReviewOut:
    row = await service.create_review(caller, body.product_id, body.order_id, body.rating,
                                      body.body)
    return ReviewOut.model_validate(row)


@router.get("", response_model=ReviewPage, responses=error_responses(422),
            summary="Reviews of a product, newest first (public)")
async def list_reviews(
    service: Service,
    product_id: Annotated[int | None, Query(alias="productId")] = None,
    user_id: Annotated[str | None, Query(alias="userId")] = None,
    page: Annotated[int, Query(ge=0)] = 0,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
) -> ReviewPage:
    if product_id is None and user_id is None:
        raise Invalid("productId", "required", "give productId (or userId)")
    if not service.options().reviews_enabled:
        return ReviewPage(items=[], page=page, size=size, total=0)
    rows, total = await service.repository.reviews_page(product_id, user_id, page, size)
    return ReviewPage(items=[ReviewOut.model_validate(r) for r in rows], page=page, size=size,
                      total=total)


@router.get("/{review_id}", response_model=ReviewOut, responses=error_responses(404),
            summary="A review (public)")
async def get_review(review_id: int, service: Service) -> ReviewOut:
    row = await service.repository.review(review_id) if service.options().reviews_enabled \
        else None
    if row is None:
        raise NotFound(f"review {review_id} does not exist")
    return ReviewOut.model_validate(row)


@router.patch("/{review_id}", response_model=ReviewOut,
              responses=error_responses(401, 403, 404, 422, 503), summary="Change your review")
async def update_review(review_id: int, body: ReviewPatch, caller: CurrentCaller,
                        service: Service) -> ReviewOut:
    row = await service.update_review(caller, review_id, changes(body))
    return ReviewOut.model_validate(row)


@router.delete("/{review_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               responses=error_responses(401, 403, 404, 503),
               summary="Delete your review (or any, as an admin)")
async def delete_review(review_id: int, caller: CurrentCaller, service: Service) -> Response:
    await service.delete_review(caller, review_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
