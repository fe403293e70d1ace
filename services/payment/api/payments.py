"""``/payments``: read-only. Payments are made by ``order.created``, never by a client call,
which is also why the gateway never retries this route (config-repo/gateway.yml)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.common.errors import Forbidden, NotFound
from services.common.identity import CurrentCaller
from services.common.schemas import error_responses
from services.payment.api.deps import State
from services.payment.api.schemas import PaymentOut, PaymentPage

router = APIRouter(prefix="/payments", tags=["payments"])


@router.get("", response_model=PaymentPage, responses=error_responses(401, 403),
            summary="My payments, newest first (an admin sees anyone's)")
async def list_payments(caller: CurrentCaller, state: State,
                        order_id: Annotated[str | None, Query(alias="orderId")] = None,
                        user_id: Annotated[str | None, Query(alias="userId")] = None,
                        limit: Annotated[int | None, Query()] = None,
                        offset: Annotated[int, Query(ge=0)] = 0) -> PaymentPage:
    whose: str | None = caller.user_id
    if caller.has("admin"):
        whose = user_id
    elif user_id is not None and user_id != caller.user_id:
        raise Forbidden("only an admin may read another user's payments")
    size = state.limit(limit)
    found = await state.repository.payments_of(whose, order_id, size, offset)
    return PaymentPage(items=[PaymentOut.of(p) for p in found], limit=size, offset=offset)


@router.get("/{payment_id}", response_model=PaymentOut, responses=error_responses(401, 403, 404),
            summary="One payment (mine, or any for an admin)")
async def get_payment(payment_id: str, caller: CurrentCaller, state: State) -> PaymentOut:
    payment = await state.repository.payment(payment_id)
    if payment is None:
        raise NotFound(f"no payment {payment_id}")
    payment.check_visible_to(caller)
    return PaymentOut.of(payment)
