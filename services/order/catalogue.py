"""The product service, as checkout and settlement need it: cart, stock, and nothing else.

Its internal routes (not routed by the gateway) are called through discovery with the caller's
identity when there is one:

    GET    /internal/carts/{userId}                  the cart at today's prices
    DELETE /internal/carts/{userId}                  empty it (after the order is paid)
    POST   /internal/stock/reservations              {orderId, userId, items: [{productId,
                                                     quantity}]}; all or nothing, idempotent
                                                     by orderId; 409 when stock is short;
                                                     answers the lines at the reserved price
    POST   /internal/stock/reservations/{orderId}/release
                                                     give the stock back; idempotent (an
                                                     unknown id is recorded as released, so
                                                     a reserve arriving late fails)

(services/product/README.md, "Internal contract".)

An answer this side cannot use becomes `Unavailable` (503): checkout fails cleanly and a
consumer retries the event later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import httpx

from services.common.calls import ServiceCalls
from services.common.errors import Conflict, Invalid, NotFound, Unavailable
from services.order.domain.checkout import Cart, CartLine, Reserved
from services.order.domain.orders import Line
from services.order.settings import CatalogueOptions


class ProductCatalogue:
    """`services.order.domain.checkout.Catalogue` over HTTP."""

    def __init__(self, calls: ServiceCalls, options: Callable[[], CatalogueOptions]) -> None:
        self.calls = calls
        self.options = options

    async def _call(self, method: str, path: str, json: Any = None) -> httpx.Response:
        options = self.options()
        try:
            return await self.calls.request(options.service, method, path, json=json,
                                            timeout_s=options.timeout_seconds)
        except httpx.HTTPError as error:
            raise Unavailable(f"{options.service} did not answer {method} {path}: "
                              f"{type(error).__name__}") from error

    async def cart(self, user_id: str) -> Cart:
        response = await self._call("GET", f"/internal/carts/{user_id}")
        body = _expect(response, 200)
        lines = tuple(
            CartLine(product_id=int(line["productId"]), name=str(line["name"]),
                     unit_price=int(line["unitPrice"]), quantity=int(line["quantity"]),
                     available=bool(line.get("available", True)))
            for line in body.get("lines", []))
        return Cart(lines=lines, delivery_fee=int(body.get("deliveryTotal", 0)))

    async def reserve(self, order_id: str, user_id: str, lines: Sequence[Line]) -> Reserved:
        response = await self._call("POST", "/internal/stock/reservations", json={
            "orderId": order_id, "userId": user_id,
            "items": [{"productId": line.product_id, "quantity": line.quantity}
                      for line in lines]})
        if response.status_code == 409:
            raise Conflict(_message(response, "not enough stock for this order"))
        if response.status_code in (404, 422):
            raise Invalid("cart", "products", _message(response, "the cart holds a product "
                                                                 "that cannot be ordered"))
        body = _expect(response, 200, 201)
        return Reserved(
            lines=tuple(Line(product_id=int(item["productId"]), name=str(item["name"]),
                             unit_price=int(item["unitPrice"]), quantity=int(item["quantity"]))
                        for item in body["items"]),
            delivery_fee=int(body.get("deliveryTotal", 0)))

    async def release(self, order_id: str) -> None:
        response = await self._call("POST",
                                    f"/internal/stock/reservations/{order_id}/release")
        _expect(response, 200, 204)

    async def clear_cart(self, user_id: str) -> None:
        response = await self._call("DELETE", f"/internal/carts/{user_id}")
        _expect(response, 200, 204)


def _message(response: httpx.Response, default: str) -> str:
    try:
        return str(response.json().get("message") or default)
    except ValueError:
        return default


def _expect(response: httpx.Response, *statuses: int) -> Any:
    if response.status_code not in statuses:
        if response.status_code == 404:
            raise NotFound(_message(response, "not found in the product service"))
        raise Unavailable(f"the product service answered {response.status_code} to "
                          f"{response.request.method} {response.request.url.path}: "
                          f"{_message(response, response.text[:200])}")
    if response.status_code == 204 or not response.content:
        return {}
    return response.json()
