"""``/addresses``: the signed-in user's delivery addresses; nobody else's (403)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.common.errors import NotFound
from services.common.identity import Caller, CurrentCaller
from services.common.schemas import error_responses
from services.order.api.deps import OrderState, State
from services.order.api.schemas import AddressIn, AddressOut
from services.order.domain.addresses import Address

router = APIRouter(prefix="/addresses", tags=["addresses"])


async def owned(state: OrderState, caller: Caller, address_id: int) -> Address:
    address = await state.repository.address(address_id)
    if address is None:
        raise NotFound(f"no address {address_id}")
    address.check_owner(caller)
    return address


@router.get("", response_model=list[AddressOut], responses=error_responses(401),
            summary="My delivery addresses")
async def list_addresses(caller: CurrentCaller, state: State) -> list[AddressOut]:
    return [AddressOut.of(a) for a in await state.repository.addresses_of(caller.user_id)]


@router.post("", status_code=201, response_model=AddressOut, responses=error_responses(401),
             summary="Add a delivery address")
async def add_address(body: AddressIn, caller: CurrentCaller, state: State) -> AddressOut:
    return AddressOut.of(await state.repository.add_address(caller.user_id, body.fields()))


@router.get("/{address_id}", response_model=AddressOut, responses=error_responses(401, 403, 404),
            summary="One of my delivery addresses")
async def get_address(address_id: int, caller: CurrentCaller, state: State) -> AddressOut:
    return AddressOut.of(await owned(state, caller, address_id))


@router.put("/{address_id}", response_model=AddressOut, responses=error_responses(401, 403, 404),
            summary="Change a delivery address (orders keep the copy they were placed with)")
async def update_address(address_id: int, body: AddressIn, caller: CurrentCaller,
                         state: State) -> AddressOut:
    await owned(state, caller, address_id)
    return AddressOut.of(await state.repository.update_address(address_id, body.fields()))


@router.delete("/{address_id}", status_code=204, response_class=Response,
               responses=error_responses(401, 403, 404), summary="Remove a delivery address")
async def delete_address(address_id: int, caller: CurrentCaller, state: State) -> Response:
    await owned(state, caller, address_id)
    await state.repository.delete_address(address_id)
    return Response(status_code=204)
