"""The payment provider simulator: idempotent charges and refunds, and the failures it can fake."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.payment_provider.app import REPLAYED_HEADER, create_app
from services.payment_provider.ledger import Behaviour, Ledger


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(chance=lambda: 0.5)  # a coin that always lands in the middle


@pytest.fixture
def provider(ledger: Ledger) -> Iterator[TestClient]:
    with TestClient(create_app(ledger)) as client:
        yield client


def charge(key: str = "k1", amount: int = 10_000, reference: str = "order-1") -> dict[str, Any]:
    return {"amount": amount, "currency": "KRW", "reference": reference, "idempotencyKey": key}


def test_a_charge_is_approved_and_recorded(provider: TestClient) -> None:
    response = provider.post("/charges", json=charge())

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "approved"
    assert body["amount"] == 10_000
    assert REPLAYED_HEADER not in response.headers
    assert [c["id"] for c in provider.get("/charges", params={"reference": "order-1"}).json()] \
        == [body["id"]]


def test_the_same_key_charges_once_and_replays_the_first_answer(provider: TestClient) -> None:
    first = provider.post("/charges", json=charge())
    again = provider.post("/charges", json=charge())

    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers[REPLAYED_HEADER] == "true"
    assert len(provider.get("/charges", params={"reference": "order-1"}).json()) == 1


def test_a_key_reused_with_another_amount_is_refused(provider: TestClient) -> None:
    provider.post("/charges", json=charge())

    response = provider.post("/charges", json=charge(amount=1))

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"


def test_a_failure_rate_declines_and_the_decline_is_replayed(provider: TestClient) -> None:
    provider.put("/admin/behaviour", json={"failureRate": 1.0})

    declined = provider.post("/charges", json=charge())
    provider.put("/admin/behaviour", json={"failureRate": 0.0})
    again = provider.post("/charges", json=charge())

    assert declined.status_code == 402
    assert declined.json()["status"] == "declined"
    assert again.status_code == 402  # the key's first answer, not a new attempt
    assert again.json()["id"] == declined.json()["id"]


def test_headers_override_the_behaviour_for_one_request(provider: TestClient) -> None:
    declined = provider.post("/charges", json=charge("a"),
                             headers={"X-Simulate-Failure-Rate": "1"})
    approved = provider.post("/charges", json=charge("b"))

    assert (declined.status_code, approved.status_code) == (402, 201)


def test_an_outage_records_nothing(provider: TestClient) -> None:
    response = provider.post("/charges", json=charge(), headers={"X-Simulate-Error-Rate": "1"})

    assert response.status_code == 503
    assert provider.get("/charges").json() == []


def test_latency_delays_the_answer_after_recording(provider: TestClient) -> None:
    began = time.monotonic()
    provider.post("/charges", json=charge(), headers={"X-Simulate-Latency-Ms": "200"})

    assert time.monotonic() - began >= 0.2
    assert len(provider.get("/charges").json()) == 1


def test_refunds_are_idempotent_and_bounded_by_the_charge(provider: TestClient) -> None:
    charge_id = provider.post("/charges", json=charge()).json()["id"]
    refund = {"chargeId": charge_id, "amount": 10_000, "idempotencyKey": "r1"}

    first = provider.post("/refunds", json=refund)
    again = provider.post("/refunds", json=refund)
    more = provider.post("/refunds", json={**refund, "idempotencyKey": "r2", "amount": 1})

    assert first.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers[REPLAYED_HEADER] == "true"
    assert more.status_code == 409
    assert provider.get(f"/charges/{charge_id}").json()["refunded"] == 10_000


def test_refunding_an_unknown_or_declined_charge_is_refused(provider: TestClient) -> None:
    declined = provider.post("/charges", json=charge(),
                             headers={"X-Simulate-Failure-Rate": "1"}).json()["id"]

    unknown = provider.post("/refunds", json={"chargeId": "ch_x", "amount": 1,
                                              "idempotencyKey": "r1"})
    of_declined = provider.post("/refunds", json={"chargeId": declined, "amount": 1,
                                                  "idempotencyKey": "r2"})

    assert (unknown.status_code, of_declined.status_code) == (404, 409)


def test_invalid_requests_and_behaviour_are_refused(provider: TestClient) -> None:
    assert provider.post("/charges", json={"amount": 0}).status_code == 422
    assert provider.put("/admin/behaviour", json={"failureRate": 2}).status_code == 422
    with pytest.raises(ValueError):
        Behaviour(latency_ms=-1)


def test_behaviour_is_readable(provider: TestClient) -> None:
    provider.put("/admin/behaviour", json={"latencyMs": 5, "failureRate": 0.25})

    assert provider.get("/admin/behaviour").json() == {
        "latencyMs": 5, "failureRate": 0.25, "errorRate": 0.0}
