"""Routes for other services (the order service), reached through discovery, never the gateway.

See the README's "Internal contract" for what the order service may rely on.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from services.common.schemas import ErrorResponse, error_responses
from services.product.api.deps import Internal, Service
from services.product.api.schemas import CartOut, ReservationIn, ReservationOut
from services.product.domain.stock import Wanted

router = APIRouter(prefix="/internal", tags=["internal"], dependencies=[Internal])


@router.get("/carts/{user_id}", response_model=CartOut, responses=error_responses(403, 503),
            summary="A user's cart at today's prices (503 if the cart store is unreachable)")
async def get_cart(user_id: str, service: Service) -> CartOut:
    return await service.cart(user_id)


@router.delete("/carts/{user_id}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response, responses=error_responses(403, 503),
               summary="Empty a user's cart (after an order)")
async def clear_cart(user_id: str, service: Service) -> Response:
    await service.clear_cart(user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/stock/reservations", response_model=ReservationOut,
             status_code=status.HTTP_201_CREATED,
             responses={200: {"model": ReservationOut,
                              "description": "this order id had already reserved these lines"},
                        **error_responses(403, 422),
                        409: {"model": ErrorResponse,
                              "description": "a product is short (named in the body: "
                                             "productId, requested, available), or the order "
                                             "id was released or reserved other lines"}},
             summary="Reserve an order's quantities: all or nothing, once per order id")
async def reserve(body: ReservationIn, service: Service, response: Response) -> ReservationOut:
    out = await service.reserve(body.order_id, body.user_id,
                                [Wanted(i.product_id, i.quantity) for i in body.items])
    if out.replayed:
        response.status_code = status.HTTP_200_OK
    return out


@router.post("/stock/reservations/{order_id}/release", response_model=ReservationOut,
             responses=error_responses(403),
             summary="Give an order's stock back (idempotent; an unknown order id is recorded "
                     "as released so a late reserve for it fails)")
async def release(order_id: str, service: Service) -> ReservationOut:
    return await service.release(order_id)


@router.get("/stock/reservations/{order_id}", response_model=ReservationOut,
            responses=error_responses(403, 404),
            summary="An order's reservation")
async def reservation(order_id: str, service: Service) -> ReservationOut:
    return await service.reservation(order_id)
