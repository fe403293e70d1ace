"""The order service's HTTP API on fakes: status codes, ownership, validation, idempotency."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import fakeredis
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from order_fakes import NOW, Clock, FakeCatalogue, FakeOrderStore

from services.common.errors import install_error_handlers
from services.common.events import Event
from services.common.topics import PAYMENT_COMPLETED
from services.order.api.deps import OrderState
from services.order.app import mount
from services.order.domain.checkout import CartLine, Checkout
from services.order.domain.settlement import Settlement
from services.order.holds import RedisHolds
from services.order.settings import OrderOptions

BUYER = {"X-User-Id": "buyer", "X-User-Roles": "customer"}
OTHER = {"X-User-Id": "other", "X-User-Roles": "customer"}
ADMIN = {"X-User-Id": "root", "X-User-Roles": "admin"}
ADDRESS = {"recipient": "Kim Minji", "phone": "010-1234-5678", "postalCode": "04524",
           "line1": "110 Sejong-daero", "line2": "3F"}
COUPON = {"code": "spring", "discountType": "PERCENT", "discountValue": 10,
          "maxDiscount": 5_000, "minAmount": 10_000,
          "validUntil": (NOW + timedelta(days=30)).isoformat(), "totalLimit": 10}


@dataclass
class Api:
    client: TestClient
    store: FakeOrderStore
    catalogue: FakeCatalogue
    settlement: Settlement
    published: list[int]

    def address(self, headers: dict[str, str] = BUYER) -> int:
        response = self.client.post("/addresses", json=ADDRESS, headers=headers)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def order(self, key: str = "k1", coupon: str | None = None,
              headers: dict[str, str] = BUYER) -> Any:
        address = self.address(headers)
        return self.client.post("/orders", json={"addressId": address, "couponCode": coupon},
                                headers={**headers, "Idempotency-Key": key})


@pytest.fixture
def api() -> Iterator[Api]:
    clock = Clock()
    store = FakeOrderStore(clock)
    catalogue = FakeCatalogue()
    catalogue.put("buyer", CartLine(7, "Trail shoes", 120_000, 1), delivery_fee=3_000)
    holds = RedisHolds(fakeredis.FakeAsyncRedis(decode_responses=True))
    checkout = Checkout(store, catalogue, holds, lambda: 300, clock)
    settlement = Settlement(store, catalogue, holds, clock)
    published: list[int] = []
    app = FastAPI()
    install_error_handlers(app)
    mount(app, OrderState(repository=store, checkout=checkout,  # type: ignore[arg-type]
                          settlement=settlement, options=OrderOptions,
                          published=lambda: published.append(1), clock=clock))
    with TestClient(app) as client:
        yield Api(client, store, catalogue, settlement, published)


def assert_invalid(response: Any, field: str, rule: str | None = None) -> None:
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert any(e["field"] == field and (rule is None or e["rule"] == rule) for e in errors), \
        errors


# -- identity and addresses -----------------------------------------------------------------

def test_every_route_needs_a_signed_in_caller(api: Api) -> None:
    for method, path in (("GET", "/orders"), ("GET", "/addresses"), ("POST", "/orders"),
                         ("GET", "/coupons/SPRING")):
        assert api.client.request(method, path).status_code == 401


def test_addresses_belong_to_their_owner(api: Api) -> None:
    address = api.address()

    assert api.client.get(f"/addresses/{address}", headers=BUYER).status_code == 200
    assert api.client.get(f"/addresses/{address}", headers=OTHER).status_code == 403
    assert api.client.put(f"/addresses/{address}", json=ADDRESS,
                          headers=OTHER).status_code == 403
    assert api.client.delete(f"/addresses/{address}", headers=OTHER).status_code == 403
    assert api.client.get("/addresses", headers=OTHER).json() == []
    assert api.client.get("/addresses/999", headers=BUYER).status_code == 404


def test_an_address_can_be_changed_and_removed(api: Api) -> None:
    address = api.address()

    changed = api.client.put(f"/addresses/{address}", json={**ADDRESS, "line2": "4F"},
                             headers=BUYER)
    removed = api.client.delete(f"/addresses/{address}", headers=BUYER)

    assert changed.json()["line2"] == "4F"
    assert removed.status_code == 204
    assert api.client.get("/addresses", headers=BUYER).json() == []


def test_an_invalid_address_names_the_field_and_rule(api: Api) -> None:
    response = api.client.post("/addresses", json={**ADDRESS, "postalCode": "1234"},
                               headers=BUYER)

    assert_invalid(response, "postalCode", "string_pattern_mismatch")


# -- coupons --------------------------------------------------------------------------------

def test_only_admins_issue_and_list_coupons(api: Api) -> None:
    assert api.client.post("/coupons", json=COUPON, headers=BUYER).status_code == 403
    issued = api.client.post("/coupons", json=COUPON, headers=ADMIN)
    duplicate = api.client.post("/coupons", json=COUPON, headers=ADMIN)

    assert issued.status_code == 201
    assert issued.json()["code"] == "SPRING"
    assert duplicate.status_code == 409
    assert api.client.get("/coupons", headers=BUYER).status_code == 403
    assert [c["code"] for c in api.client.get("/coupons", headers=ADMIN).json()] == ["SPRING"]
    assert api.client.get("/coupons/spring", headers=BUYER).json()["discountValue"] == 10


def test_incoherent_coupon_terms_are_422(api: Api) -> None:
    response = api.client.post("/coupons", json={**COUPON, "discountValue": 150},
                               headers=ADMIN)

    assert_invalid(response, "discountValue", "percent")


def test_applying_a_coupon_holds_it_and_removing_it_frees_it(api: Api) -> None:
    api.client.post("/coupons", json=COUPON, headers=ADMIN)

    applied = api.client.post("/coupons/SPRING/hold", headers=BUYER)
    removed = api.client.delete("/coupons/SPRING/hold", headers=BUYER)
    again = api.client.delete("/coupons/SPRING/hold", headers=BUYER)

    assert applied.json() == {"code": "SPRING", "subtotal": 120_000, "discount": 5_000,
                              "heldForSeconds": 300}
    assert (removed.status_code, again.status_code) == (204, 404)


# -- orders ---------------------------------------------------------------------------------

def test_placing_needs_an_idempotency_key(api: Api) -> None:
    address = api.address()

    response = api.client.post("/orders", json={"addressId": address}, headers=BUYER)

    assert_invalid(response, "Idempotency-Key", "required")


def test_an_order_is_placed_once_per_key(api: Api) -> None:
    first = api.client.post("/orders", json={"addressId": api.address()},
                            headers={**BUYER, "Idempotency-Key": "k1"})
    again = api.client.post("/orders", json={"addressId": first.json()["address"]["addressId"]},
                            headers={**BUYER, "Idempotency-Key": "k1"})

    assert first.status_code == 201
    assert first.json()["status"] == "PENDING_PAYMENT"
    assert first.json()["total"] == 123_000
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert api.published == [1]  # the relay was nudged once, for the one order


def test_the_same_key_with_another_body_is_409(api: Api) -> None:
    api.order("k1")

    assert api.order("k1").status_code == 409  # another address id this time


def test_an_order_is_visible_to_its_owner_and_admins_only(api: Api) -> None:
    order_id = api.order().json()["id"]

    assert api.client.get(f"/orders/{order_id}", headers=BUYER).status_code == 200
    assert api.client.get(f"/orders/{order_id}", headers=ADMIN).status_code == 200
    assert api.client.get(f"/orders/{order_id}", headers=OTHER).status_code == 403
    assert api.client.get("/orders/nope", headers=BUYER).status_code == 404


def test_history_is_mine_unless_i_am_an_admin(api: Api) -> None:
    order_id = api.order().json()["id"]

    mine = api.client.get("/orders", headers=BUYER).json()
    theirs = api.client.get("/orders", headers=OTHER).json()
    snooping = api.client.get("/orders", params={"userId": "buyer"}, headers=OTHER)
    admin = api.client.get("/orders", params={"userId": "buyer"}, headers=ADMIN).json()

    assert [o["id"] for o in mine["items"]] == [order_id]
    assert theirs["items"] == []
    assert snooping.status_code == 403
    assert [o["id"] for o in admin["items"]] == [order_id]
    assert_invalid(api.client.get("/orders", params={"limit": 1000}, headers=BUYER), "limit")


def test_a_refund_is_for_the_buyer_of_a_paid_order(api: Api) -> None:
    order_id = api.order().json()["id"]
    early = api.client.post(f"/orders/{order_id}/refund", headers=BUYER)
    paid = Event.new(PAYMENT_COMPLETED, {"orderId": order_id, "paymentId": "p1"})
    api.client.portal.call(api.settlement.completed, paid)  # type: ignore[union-attr]

    stranger = api.client.post(f"/orders/{order_id}/refund", headers=OTHER)
    asked = api.client.post(f"/orders/{order_id}/refund", headers=BUYER)

    assert early.status_code == 409
    assert stranger.status_code == 403
    assert asked.status_code == 202
    assert asked.json()["status"] == "REFUND_REQUESTED"


def test_out_of_stock_is_409_and_leaves_no_order(api: Api) -> None:
    api.catalogue.stock[7] = 0

    response = api.order()

    assert response.status_code == 409
    assert api.client.get("/orders", headers=BUYER).json()["items"] == []


def test_every_route_is_documented_with_response_models() -> None:
    app = FastAPI()
    mount(app, None)  # type: ignore[arg-type]
    schema = app.openapi()

    expected = {("/addresses", "get"), ("/addresses", "post"), ("/addresses/{address_id}", "get"),
                ("/addresses/{address_id}", "put"), ("/addresses/{address_id}", "delete"),
                ("/coupons", "get"), ("/coupons", "post"), ("/coupons/{code}", "get"),
                ("/coupons/{code}/hold", "post"), ("/coupons/{code}/hold", "delete"),
                ("/orders", "get"), ("/orders", "post"), ("/orders/{order_id}", "get"),
                ("/orders/{order_id}/refund", "post")}
    documented = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert documented == expected
    for path, method in expected - {("/addresses/{address_id}", "delete"),
                                    ("/coupons/{code}/hold", "delete")}:
        responses = schema["paths"][path][method]["responses"]
        success = next(code for code in responses if code.startswith("2"))
        assert "$ref" in str(responses[success]["content"]), (path, method)
