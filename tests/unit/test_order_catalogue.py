"""The order service's client of the product service's internal contract
(services/product/README.md, "Internal contract"), over a scripted transport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from services.common.errors import Conflict, Invalid, Unavailable
from services.order.catalogue import ProductCatalogue
from services.order.domain.orders import Line
from services.order.settings import CatalogueOptions

pytestmark = pytest.mark.anyio

CART = {"userId": "u1", "lines": [
    {"productId": 7, "storeId": 2, "name": "Trail runner", "unitPrice": 79000, "quantity": 2,
     "lineTotal": 158000, "status": "ACTIVE", "available": True},
    {"productId": 9, "storeId": 2, "name": "Socks", "unitPrice": 5000, "quantity": 1,
     "lineTotal": 5000, "status": "SOLD_OUT", "available": False}],
    "stores": [{"storeId": 2, "subtotal": 158000, "deliveryFee": 3000, "leadDays": 2}],
    "itemsTotal": 158000, "deliveryTotal": 3000, "total": 161000, "itemCount": 3,
    "expiresInSeconds": 600}
RESERVED = {"orderId": "o1", "userId": "u1", "status": "HELD", "items": [
    {"productId": 7, "storeId": 2, "name": "Trail runner", "quantity": 2, "unitPrice": 75000,
     "lineTotal": 150000}],
    "stores": [{"storeId": 2, "subtotal": 150000, "deliveryFee": 0, "leadDays": 2}],
    "itemsTotal": 150000, "deliveryTotal": 0, "total": 150000, "replayed": False}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Calls:
    """`ServiceCalls` answering from a script, recording what was asked."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, str, str, Any]] = []

    async def request(self, app: str, method: str, path: str, *, json: Any = None,
                      timeout_s: float | None = None, **_: Any) -> httpx.Response:
        self.asked.append((app, method, path, json))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        answer.request = httpx.Request(method, f"http://product{path}")
        return answer


def catalogue(*answers: httpx.Response | Exception) -> tuple[ProductCatalogue, Calls]:
    calls = Calls(*answers)
    return ProductCatalogue(calls, CatalogueOptions), calls  # type: ignore[arg-type]


async def test_the_cart_is_read_with_availability_and_delivery() -> None:
    client, calls = catalogue(httpx.Response(200, json=CART))

    cart = await client.cart("u1")

    assert calls.asked == [("product-service", "GET", "/internal/carts/u1", None)]
    assert [(line.product_id, line.unit_price, line.quantity, line.available)
            for line in cart.lines] == [(7, 79000, 2, True), (9, 5000, 1, False)]
    assert cart.delivery_fee == 3000


async def test_a_reservation_answers_the_price_snapshot() -> None:
    client, calls = catalogue(httpx.Response(201, json=RESERVED))

    reserved = await client.reserve("o1", "u1", [Line(7, "Trail runner", 79000, 2)])

    assert calls.asked[0][2] == "/internal/stock/reservations"
    assert calls.asked[0][3] == {"orderId": "o1", "userId": "u1",
                                 "items": [{"productId": 7, "quantity": 2}]}
    assert reserved.lines == (Line(7, "Trail runner", 75000, 2),)
    assert reserved.delivery_fee == 0


async def test_short_stock_is_a_conflict_and_a_bad_line_invalid() -> None:
    short, _ = catalogue(httpx.Response(409, json={"message": "product 7: not enough stock"}))
    bad, _ = catalogue(httpx.Response(422, json={"message": "items: bad"}))

    with pytest.raises(Conflict, match="not enough stock"):
        await short.reserve("o1", "u1", [Line(7, "x", 1, 2)])
    with pytest.raises(Invalid):
        await bad.reserve("o1", "u1", [Line(7, "x", 1, 2)])


async def test_release_and_clear_use_their_routes() -> None:
    client, calls = catalogue(httpx.Response(200, json={**RESERVED, "status": "RELEASED"}),
                              httpx.Response(204))

    await client.release("o1")
    await client.clear_cart("u1")

    assert [(m, p) for _, m, p, _ in calls.asked] == [
        ("POST", "/internal/stock/reservations/o1/release"), ("DELETE", "/internal/carts/u1")]


async def test_no_answer_or_a_server_error_is_unavailable() -> None:
    down, _ = catalogue(httpx.ReadTimeout("slow"))
    failing, _ = catalogue(httpx.Response(503, content=json.dumps({"message": "redis"})))

    with pytest.raises(Unavailable):
        await down.cart("u1")
    with pytest.raises(Unavailable, match="503"):
        await failing.cart("u1")
