"""``/orders``: place one from the cart (idempotent), read my history, ask for a refund."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from services.common.errors import Forbidden, NotFound
from services.common.identity import CurrentCaller
from services.common.schemas import error_responses
from services.order.api.deps import State
from services.order.api.schemas import OrderIn, OrderOut, OrderPage
from services.order.domain.checkout import PlaceOrder, check_idempotency_key
from services.order.domain.orders import OrderStatus

router = APIRouter(prefix="/orders", tags=["orders"])

REPLAYED_HEADER = "Idempotent-Replayed"


@router.post("", status_code=201, response_model=OrderOut,
             responses={200: {"model": OrderOut,
                              "description": "a retry: the order this key placed before"},
                        **error_responses(401, 409, 503)},
             summary="Place an order from my cart")
async def place(body: OrderIn, caller: CurrentCaller, state: State, response: Response,
                idempotency_key: Annotated[str | None, Header()] = None) -> OrderOut:
    """Reads the cart, holds the coupon, reserves stock, and records the order with
    ``order.created`` in one transaction. Send the same ``Idempotency-Key`` when retrying:
    the answer is the same order (200, ``Idempotent-Replayed: true``), never a second one."""
    key = check_idempotency_key(idempotency_key)
    placed = await state.checkout.place(caller, key, PlaceOrder(body.address_id,
                                                                body.coupon_code))
    if placed.replayed:
        response.status_code = 200
        response.headers[REPLAYED_HEADER] = "true"
    else:
        state.published()
    return OrderOut.of(placed.order)


@router.get("", response_model=OrderPage, responses=error_responses(401, 403),
            summary="My orders, newest first (an admin may ask for anyone's, or all)")
async def history(caller: CurrentCaller, state: State,
                  user_id: Annotated[str | None, Query(alias="userId")] = None,
                  status: OrderStatus | None = None,
                  limit: Annotated[int | None, Query()] = None,
                  offset: Annotated[int, Query(ge=0)] = 0) -> OrderPage:
    whose: str | None = caller.user_id
    if caller.has("admin"):
        whose = user_id
    elif user_id is not None and user_id != caller.user_id:
        raise Forbidden("only an admin may read another user's orders")
    size = state.limit(limit)
    found = await state.repository.history(whose, status, size, offset)
    return OrderPage(items=[OrderOut.of(o) for o in found], limit=size, offset=offset)


@router.get("/{order_id}", response_model=OrderOut, responses=error_responses(401, 403, 404),
            summary="One order (mine, or any for an admin)")
async def get_order(order_id: str, caller: CurrentCaller, state: State) -> OrderOut:
    order = await state.repository.order(order_id)
    if order is None:
        raise NotFound(f"no order {order_id}")
    order.check_visible_to(caller)
    return OrderOut.of(order)


@router.post("/{order_id}/refund", status_code=202, response_model=OrderOut,
             responses=error_responses(401, 403, 404, 409),
             summary="Ask for a refund of my paid order")
async def refund(order_id: str, caller: CurrentCaller, state: State) -> OrderOut:
    """The order becomes REFUND_REQUESTED at once; REFUNDED when the payment service has
    returned the money (``payment.refunded``) and the stock is back."""
    order = await state.settlement.request_refund(caller, order_id)
    state.published()
    return OrderOut.of(order)
