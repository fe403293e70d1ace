"""Clients for ordering: the order and payment APIs through the gateway, the payment provider
simulator (its admin knob and its books), and the order events on Kafka.

Steps, the seed command and benchmarks use them instead of building URLs and bodies::

    with OrderClient.through_gateway(model, token=shopper.token) as orders:
        address = orders.add_address(recipient="Kim Minji", ...)["id"]
        order = orders.place(address, coupon="WELCOME10")          # a fresh Idempotency-Key
        paid = orders.wait_for_status(order["id"], {"PAID"}, timeout=20)

    provider = PaymentProvider(model)
    provider.set_behaviour(failure_rate=1.0)                    # every charge is declined
    provider.charges(reference=order["id"])                     # what it charged

An answer other than the expected one raises `OrderApiError` with the status and the service's
error body, so a failing step says what the service said.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
from confluent_kafka import Consumer, TopicPartition

from services.common.events import Event
from services.common.topics import ORDER_CREATED, ORDER_EVENTS
from stack.come2us import PAYMENT_PROVIDER
from stack.local.api_client import ApiClient, ApiError
from stack.local.clients import kafka_producer
from stack.model import Platform
from stack.waiting import wait_for

IDEMPOTENCY_HEADER = "Idempotency-Key"
KAFKA_TIMEOUT_S = 5.0


class OrderApiError(ApiError):
    """An unexpected answer of the order service's API."""


@dataclass(frozen=True)
class Placed:
    status: int  # 201 new, 200 the same order again (a retry with the same key)
    order: dict[str, Any]
    key: str


class OrderClient(ApiClient):
    """The order service's (and the payment service's) public API, as one caller."""

    error = OrderApiError
    default_timeout_s = 15.0

    # --- addresses --------------------------------------------------------------------------

    def add_address(self, recipient: str = "Kim Minji", phone: str = "010-1234-5678",
                    postal_code: str = "04524", line1: str = "110 Sejong-daero, Jung-gu, Seoul",
                    line2: str = "") -> dict[str, Any]:
        found: dict[str, Any] = self._expect(self.request("POST", "/addresses", json={
            "recipient": recipient, "phone": phone, "postalCode": postal_code,
            "line1": line1, "line2": line2}), 201)
        return found

    def addresses(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._expect(self.request("GET", "/addresses"), 200)
        return found

    # --- coupons ----------------------------------------------------------------------------

    def issue_coupon(self, code: str, *, discount_type: str = "FIXED", discount_value: int,
                     min_amount: int = 0, valid_days: int = 30, one_per_user: bool = True,
                     max_discount: int | None = None,
                     total_limit: int | None = None) -> dict[str, Any]:
        """As an admin: a coupon valid for ``valid_days`` from now."""
        valid_until = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                    time.gmtime(time.time() + valid_days * 86_400))
        found: dict[str, Any] = self._expect(self.request("POST", "/coupons", json={
            "code": code, "discountType": discount_type, "discountValue": discount_value,
            "maxDiscount": max_discount, "minAmount": min_amount, "validUntil": valid_until,
            "onePerUser": one_per_user, "totalLimit": total_limit}), 201)
        return found

    def coupon(self, code: str) -> dict[str, Any]:
        found: dict[str, Any] = self._expect(self.request("GET", f"/coupons/{code}"), 200)
        return found

    def apply_coupon(self, code: str) -> dict[str, Any]:
        """Hold the coupon for this caller's cart while they check out."""
        found: dict[str, Any] = self._expect(self.request("POST", f"/coupons/{code}/hold"),
                                             200)
        return found

    # --- orders -----------------------------------------------------------------------------

    def place(self, address_id: int, coupon: str | None = None,
              key: str | None = None) -> Placed:
        """Place an order from this caller's cart; ``key`` repeats an earlier request."""
        key = key or uuid.uuid4().hex
        response = self.request("POST", "/orders",
                                json={"addressId": address_id, "couponCode": coupon},
                                headers={IDEMPOTENCY_HEADER: key})
        return Placed(response.status_code, self._expect(response, 200, 201), key)

    def order(self, order_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self._expect(self.request("GET", f"/orders/{order_id}"), 200)
        return found

    def orders(self, **query: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._expect(
            self.request("GET", "/orders", params=query), 200)["items"]
        return found

    def request_refund(self, order_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self._expect(
            self.request("POST", f"/orders/{order_id}/refund"), 202)
        return found

    def wait_for_status(self, order_id: str, statuses: Iterable[str],
                        timeout: float) -> dict[str, Any]:
        """The order once it is in one of ``statuses``; fails naming the last status seen."""
        wanted = set(statuses)

        def reached() -> tuple[dict[str, Any] | None, str]:
            response = self.request("GET", f"/orders/{order_id}")
            if response.status_code != 200:
                return None, f"HTTP {response.status_code}"
            order: dict[str, Any] = response.json()
            return (order if order["status"] in wanted else None), order["status"]

        found: dict[str, Any] = wait_for(reached, timeout=timeout,
                                         what=f"order {order_id} {' or '.join(sorted(wanted))}")
        return found

    # --- payments ---------------------------------------------------------------------------

    def payments(self, order_id: str | None = None) -> list[dict[str, Any]]:
        params = {"orderId": order_id} if order_id else {}
        found: list[dict[str, Any]] = self._expect(
            self.request("GET", "/payments", params=params), 200)["items"]
        return found


class PaymentProvider:
    """The simulator, reached directly as the payment service reaches it (it is not behind
    the gateway: it plays an external company)."""

    def __init__(self, model: Platform, timeout: float = 5.0) -> None:
        [instance] = model.compute.instances_of(PAYMENT_PROVIDER.name)
        self.http = httpx.Client(base_url=f"http://{instance.node.address}", timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> PaymentProvider:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def behaviour(self) -> dict[str, Any]:
        response = self.http.get("/admin/behaviour")
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    def set_behaviour(self, latency_ms: int = 0, failure_rate: float = 0.0,
                      error_rate: float = 0.0) -> None:
        self.http.put("/admin/behaviour", json={
            "latencyMs": latency_ms, "failureRate": failure_rate, "errorRate": error_rate,
        }).raise_for_status()

    def charges(self, reference: str) -> list[dict[str, Any]]:
        """Every charge recorded for a merchant reference (the order id)."""
        response = self.http.get("/charges", params={"reference": reference})
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found


# --- order events on Kafka ---------------------------------------------------------------

def _consumer(model: Platform, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": model.data.kafka.bootstrap_servers, "group.id": group,
                     "enable.auto.commit": False, "auto.offset.reset": "earliest"})


def _partitions(consumer: Consumer, topic: str) -> list[TopicPartition]:
    metadata = consumer.list_topics(topic, timeout=KAFKA_TIMEOUT_S)
    return [TopicPartition(topic, p) for p in sorted(metadata.topics[topic].partitions)]


def order_event(model: Platform, order_id: str, type_: str = ORDER_CREATED,
                timeout: float = 15.0) -> tuple[Event, bytes | None]:
    """An order's event as it is on ``order-events`` (envelope and key), read from the start."""
    consumer = _consumer(model, f"feature-reader-{uuid.uuid4().hex}")
    try:
        partitions = _partitions(consumer, ORDER_EVENTS)
        for partition in partitions:
            partition.offset = 0
        consumer.assign(partitions)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            value = message.value()
            if value is None:
                continue
            raw = json.loads(value)
            if raw.get("type") == type_ and raw.get("data", {}).get("orderId") == order_id:
                return Event.from_json(raw), message.key()
        raise TimeoutError(f"no {type_} for order {order_id} on {ORDER_EVENTS} "
                           f"within {timeout} s")
    finally:
        consumer.close()


def publish_order_event(model: Platform, event: Event, key: bytes | None) -> None:
    """Put an event on ``order-events`` as the order service's relay would (a duplicate)."""
    producer = kafka_producer(model)
    producer.produce(ORDER_EVENTS, json.dumps(event.to_json()).encode(), key=key)
    if producer.flush(KAFKA_TIMEOUT_S):
        raise TimeoutError(f"the event {event.id} was not acknowledged by Kafka")


def consumer_lag(model: Platform, group: str, topic: str = ORDER_EVENTS) -> int:
    """Messages on ``topic`` that ``group`` has not committed yet (what the AWS alarm watches).

    Reading committed offsets does not join the group, so the service's consumer is not
    disturbed by a rebalance.
    """
    consumer = _consumer(model, group)
    try:
        partitions = _partitions(consumer, topic)
        committed = consumer.committed(partitions, timeout=KAFKA_TIMEOUT_S)
        lag = 0
        for partition in committed:
            _, high = consumer.get_watermark_offsets(partition, timeout=KAFKA_TIMEOUT_S)
            done = partition.offset if partition.offset >= 0 else 0
            lag += max(0, high - done)
        return lag
    finally:
        consumer.close()
