"""``/coupons``: admins issue them; a signed-in user reads one and applies it to the cart."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from services.common.errors import NotFound
from services.common.identity import Caller, CurrentCaller, require_role
from services.common.schemas import error_responses
from services.order.api.deps import State
from services.order.api.schemas import AppliedCouponOut, CouponIn, CouponOut
from services.order.domain.coupons import normalise_code

router = APIRouter(prefix="/coupons", tags=["coupons"])

Admin = Annotated[Caller, Depends(require_role("admin"))]


@router.post("", status_code=201, response_model=CouponOut,
             responses=error_responses(401, 403, 409), summary="Issue a coupon (admin)")
async def issue(body: CouponIn, admin: Admin, state: State) -> CouponOut:
    terms = body.terms()
    terms.check(state.clock())
    return CouponOut.of(await state.repository.issue_coupon(terms, admin.user_id))


@router.get("", response_model=list[CouponOut], responses=error_responses(401, 403),
            summary="Every coupon (admin)")
async def list_coupons(admin: Admin, state: State,
                       limit: Annotated[int | None, Query()] = None,
                       offset: Annotated[int, Query(ge=0)] = 0) -> list[CouponOut]:
    return [CouponOut.of(c)
            for c in await state.repository.all_coupons(state.limit(limit), offset)]


@router.get("/{code}", response_model=CouponOut, responses=error_responses(401, 404),
            summary="A coupon's terms")
async def get_coupon(code: str, caller: CurrentCaller, state: State) -> CouponOut:
    coupon = await state.repository.coupon(normalise_code(code))
    if coupon is None:
        raise NotFound(f"there is no coupon {code}")
    return CouponOut.of(coupon)


@router.post("/{code}/hold", response_model=AppliedCouponOut,
             responses=error_responses(401, 409, 503),
             summary="Apply a coupon to my cart: it is held for me while I check out")
async def apply(code: str, caller: CurrentCaller, state: State) -> AppliedCouponOut:
    return AppliedCouponOut.of(await state.checkout.apply_coupon(caller, code))


@router.delete("/{code}/hold", status_code=204, response_class=Response,
               responses=error_responses(401, 404), summary="Take a coupon off my cart")
async def unapply(code: str, caller: CurrentCaller, state: State) -> Response:
    await state.checkout.unapply_coupon(caller, code)
    return Response(status_code=204)
