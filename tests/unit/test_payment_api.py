"""The payment service's read-only API on a fake store: ownership, admins, 404, OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from payment_fakes import FakePaymentStore

from services.common.errors import install_error_handlers
from services.common.events import Event
from services.common.topics import ORDER_CREATED
from services.payment.api.deps import PaymentState
from services.payment.app import mount
from services.payment.domain.payments import Payment
from services.payment.settings import PaymentOptions

BUYER = {"X-User-Id": "buyer", "X-User-Roles": "customer"}
OTHER = {"X-User-Id": "other", "X-User-Roles": "customer"}
ADMIN = {"X-User-Id": "root", "X-User-Roles": "admin"}


@pytest.fixture
def store() -> FakePaymentStore:
    store = FakePaymentStore()
    event = Event.new(ORDER_CREATED, {"orderId": "o1", "userId": "buyer", "amount": 5000})
    payment = Payment.for_order(event, datetime(2026, 5, 1, tzinfo=UTC))
    store.t.payments["o1"] = payment
    return store


@pytest.fixture
def client(store: FakePaymentStore) -> Iterator[TestClient]:
    app = FastAPI()
    install_error_handlers(app)
    mount(app, PaymentState(repository=store, options=PaymentOptions))  # type: ignore[arg-type]
    with TestClient(app) as client:
        yield client


def test_a_payment_is_visible_to_its_payer_and_admins(client: TestClient,
                                                       store: FakePaymentStore) -> None:
    payment_id = store.t.payments["o1"].id

    mine = client.get(f"/payments/{payment_id}", headers=BUYER)

    assert mine.status_code == 200
    assert mine.json()["orderId"] == "o1"
    assert mine.json()["status"] == "PENDING"
    assert client.get(f"/payments/{payment_id}", headers=ADMIN).status_code == 200
    assert client.get(f"/payments/{payment_id}", headers=OTHER).status_code == 403
    assert client.get("/payments/nope", headers=BUYER).status_code == 404
    assert client.get(f"/payments/{payment_id}").status_code == 401


def test_the_list_is_mine_unless_i_am_an_admin(client: TestClient) -> None:
    mine = client.get("/payments", params={"orderId": "o1"}, headers=BUYER).json()
    theirs = client.get("/payments", params={"orderId": "o1"}, headers=OTHER).json()
    snooping = client.get("/payments", params={"userId": "buyer"}, headers=OTHER)
    everyone = client.get("/payments", headers=ADMIN).json()

    assert [p["orderId"] for p in mine["items"]] == ["o1"]
    assert theirs["items"] == []
    assert snooping.status_code == 403
    assert len(everyone["items"]) == 1


def test_every_route_is_documented_with_response_models() -> None:
    app = FastAPI()
    mount(app, None)  # type: ignore[arg-type]
    paths = app.openapi()["paths"]

    assert set(paths) == {"/payments", "/payments/{payment_id}"}
    for item in paths.values():
        assert "$ref" in str(item["get"]["responses"]["200"]["content"])
