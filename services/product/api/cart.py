"""The caller's cart (session Redis, transient): add, change, remove, see it priced today."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response, status

from services.common.errors import Unavailable
from services.common.identity import CurrentCaller
from services.common.schemas import error_responses
from services.product.api.deps import Service
from services.product.api.schemas import CartItemIn, CartOut, CartQuantityIn
from services.product.domain.cart import PricedCart

router = APIRouter(prefix="/cart", tags=["cart"])
log = logging.getLogger("services.product.api.cart")
UNAVAILABLE_HEADER = "X-Cart-Unavailable"


@router.get("", response_model=CartOut, responses=error_responses(401),
            summary="Your cart at today's prices (empty, not an error, if it was lost)")
async def get_cart(caller: CurrentCaller, service: Service, response: Response) -> CartOut:
    try:
        return await service.cart(caller.user_id)
    except Unavailable as error:  # the transient layer may be lost: show an empty cart
        log.warning("showing an empty cart: %s", error)
        response.headers[UNAVAILABLE_HEADER] = "1"
        return service.cart_out(caller.user_id, PricedCart((), (), ()), None)


@router.post("/items", response_model=CartOut,
             responses=error_responses(401, 409, 422, 503), summary="Add a quantity of a product")
async def add_item(body: CartItemIn, caller: CurrentCaller, service: Service) -> CartOut:
    return await service.add_to_cart(caller.user_id, body.product_id, body.quantity)


@router.put("/items/{product_id}", response_model=CartOut,
            responses=error_responses(401, 409, 422, 503),
            summary="Set a line's quantity (0 removes it)")
async def set_quantity(product_id: int, body: CartQuantityIn, caller: CurrentCaller,
                       service: Service) -> CartOut:
    return await service.set_cart_quantity(caller.user_id, product_id, body.quantity)


@router.delete("/items/{product_id}", response_model=CartOut,
               responses=error_responses(401, 503), summary="Remove a line")
async def remove_item(product_id: int, caller: CurrentCaller, service: Service) -> CartOut:
    return await service.remove_from_cart(caller.user_id, product_id)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               responses=error_responses(401, 503), summary="Empty your cart")
async def clear(caller: CurrentCaller, service: Service) -> Response:
    await service.clear_cart(caller.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
