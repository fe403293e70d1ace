"""Steps of features/ordering.feature: one call each on the order, product and provider clients."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from services.common.topics import ORDER_EVENTS
from stack.local.order_client import (
    OrderClient,
    PaymentProvider,
    Placed,
    consumer_lag,
    order_event,
    publish_order_event,
)
from stack.local.product_client import ProductClient
from stack.local.session import CloudSession
from stack.local.token_forge import good_token
from stack.local.user_client import UserClient
from stack.waiting import wait_for
from steps.common import Scene

PRICE = 50_000
STOCK_SETTLES_S = 5.0  # a product page is invalidated after the stock changed
ROUTED_S = 30.0  # registration, the gateway's next registry fetch, a loaded machine


@dataclass
class Shop:
    """Who takes part in a scenario, each through the gateway with their own token."""

    admin: OrderClient
    seller: ProductClient
    shopper_cart: ProductClient
    shopper: OrderClient
    product: int = 0
    address: int = 0
    coupon: str | None = None
    orders: list[Placed] = field(default_factory=list)

    @property
    def order(self) -> dict[str, Any]:
        return self.orders[-1].order


def signed_up_shopper(scene: Scene) -> str:
    """A new member, signed up and logged in through the gateway: their access token."""
    email, password = f"shopper-{uuid.uuid4().hex[:10]}@example.com", uuid.uuid4().hex
    with UserClient(scene.model) as users:
        users.signup(email, password, "Feature shopper")
        return users.login(email, password).access_token


@pytest.fixture
def shop(cloud: CloudSession, scene: Scene) -> Iterator[Shop]:
    """The shopper is a real member; the admin and the seller hold tokens forged with the
    workspace's key (nobody can sign up as either)."""
    workspace = cloud.workspace
    with OrderClient.through_gateway(scene.model) as orders, \
            ProductClient.through_gateway(scene.model) as products:
        yield Shop(
            admin=orders.as_token(good_token(workspace, roles=("admin",)).token),
            seller=products.as_token(good_token(workspace, roles=("seller",)).token),
            shopper_cart=products.as_token(None), shopper=orders.as_token(None))


@pytest.fixture
def provider(scene: Scene) -> Iterator[PaymentProvider]:
    """The simulator; whatever a scenario made it do, it behaves again afterwards."""
    with PaymentProvider(scene.model) as simulator:
        yield simulator
        simulator.set_behaviour()


@pytest.fixture
def kafka(cloud: CloudSession, scene: Scene) -> Iterator[str]:
    """The broker's component name; started again after the scenario, whatever happened."""
    name = scene.model.data.kafka.broker.name
    yield name
    cloud.client.component(name, "start")


def payment_consumer_group(scene: Scene) -> str:
    """The group the AWS model alarms on for lag on order-events (the payment service)."""
    watch = next(w for w in scene.model.cloud.observability.lag_watches
                 if w.topic == ORDER_EVENTS)
    return watch.consumer_group


def product_stock(shop: Shop) -> int:
    page = shop.seller.product(shop.product)
    assert page.status == 200, page.body
    return int(page.body["stock"])


@given("the user, product, order and payment services answer through the gateway")
def services_routed(shop: Shop) -> None:
    """Each answers for itself (an error of its own is an answer); the gateway's 502/503 is
    not (no instance known yet)."""
    def answering() -> tuple[bool | None, str]:
        statuses = {"user-service": shop.admin.request("GET", "/users/me").status_code,
                    "product-service": shop.seller.request("GET", "/categories").status_code,
                    "order-service": shop.admin.request("GET", "/addresses").status_code,
                    "payment-service": shop.admin.request("GET", "/payments").status_code}
        routed = not {502, 503} & set(statuses.values())
        return (True if routed else None), str(statuses)

    wait_for(answering, timeout=ROUTED_S, what="the services routed by the gateway")


@given(parsers.parse("a product with {stock:d} in stock is on sale"))
def product_on_sale(shop: Shop, stock: int) -> None:
    suffix = uuid.uuid4().hex[:8]
    admin = shop.seller.as_token(shop.admin.token)
    category = admin.create_category(f"Ordering {suffix}")
    store = shop.seller.create_store(f"Ordering store {suffix}")
    shop.product = shop.seller.create_product(store["id"], category["id"],
                                              f"Road runner {suffix}", PRICE, stock=stock)


@given(parsers.parse("a shopper who just signed up has a delivery address and {quantity:d} of "
                     "the product in the cart"))
def shopper_with_cart(shop: Shop, scene: Scene, quantity: int) -> None:
    token = signed_up_shopper(scene)
    shop.shopper_cart, shop.shopper = shop.shopper_cart.as_token(token), \
        shop.shopper.as_token(token)
    shop.address = int(shop.shopper.add_address()["id"])
    shop.shopper_cart.add_to_cart(shop.product, quantity)


@given(parsers.parse("an admin has issued a one-per-user coupon worth {amount:d} KRW"))
def coupon_issued(shop: Shop, amount: int) -> None:
    code = f"FEATURE-{uuid.uuid4().hex[:10].upper()}"
    shop.admin.issue_coupon(code, discount_value=amount, one_per_user=True)
    shop.coupon = code


@given("the payment provider declines every charge")
def provider_declines(provider: PaymentProvider) -> None:
    provider.set_behaviour(failure_rate=1.0)


@when("the payment provider approves charges again")
def provider_approves(provider: PaymentProvider) -> None:
    provider.set_behaviour(failure_rate=0.0)


@when("the shopper places an order")
def place_order(shop: Shop) -> None:
    shop.orders.append(shop.shopper.place(shop.address))


@when("the shopper places an order with the coupon")
def place_order_with_coupon(shop: Shop) -> None:
    shop.orders.append(shop.shopper.place(shop.address, coupon=shop.coupon))


@when(parsers.parse("the shopper puts {quantity:d} of the product in the cart and orders "
                    "again with the same coupon"))
def order_again(shop: Shop, quantity: int) -> None:
    shop.shopper_cart.add_to_cart(shop.product, quantity)
    shop.orders.append(shop.shopper.place(shop.address, coupon=shop.coupon))


@then(parsers.parse("the order is {status} within {seconds:d} seconds"))
def order_reaches(shop: Shop, status: str, seconds: int) -> None:
    order = shop.shopper.wait_for_status(shop.order["id"], {status}, timeout=seconds)
    shop.orders[-1] = replace(shop.orders[-1], order=order)


@then("the payment provider charged the order's total once")
def charged_once(shop: Shop, provider: PaymentProvider) -> None:
    charges = provider.charges(reference=shop.order["id"])
    assert [(c["amount"], c["status"]) for c in charges] == [(shop.order["total"],
                                                              "approved")], charges


@then(parsers.parse("the product has {stock:d} in stock"))
def stock_is(shop: Shop, stock: int) -> None:
    def settled() -> tuple[int | None, str]:
        found = product_stock(shop)
        return (found if found == stock else None), f"stock {found}"

    wait_for(settled, timeout=STOCK_SETTLES_S, what=f"the product with {stock} in stock")


@then(parsers.parse("the order's total is {amount:d} KRW less than its items and delivery"))
def discounted(shop: Shop, amount: int) -> None:
    order = shop.order
    assert order["couponCode"] == shop.coupon
    assert order["discount"] == amount
    assert order["total"] == order["subtotal"] + order["deliveryFee"] - amount, order


@given("the shopper's order has been paid")
def order_paid(shop: Shop) -> None:
    place_order(shop)
    order_reaches(shop, "PAID", 20)


@when("the order's order.created event is published again, as it was and with a new event id")
def duplicate_event(shop: Shop, scene: Scene) -> None:
    event, key = order_event(scene.model, shop.order["id"])
    publish_order_event(scene.model, event, key)
    publish_order_event(scene.model, replace(event, id=uuid.uuid4().hex), key)


@then(parsers.parse("within {seconds:d} seconds the payment service has consumed every order "
                    "event"))
def consumed(scene: Scene, seconds: int) -> None:
    group = payment_consumer_group(scene)

    def caught_up() -> tuple[bool | None, str]:
        lag = consumer_lag(scene.model, group)
        return (True if lag == 0 else None), f"lag {lag}"

    wait_for(caught_up, timeout=seconds, what=f"consumer group {group} caught up")


@when("the shopper asks for a refund of the order")
def ask_refund(shop: Shop) -> None:
    asked = shop.shopper.request_refund(shop.order["id"])
    assert asked["status"] == "REFUND_REQUESTED", asked


@then("the payment provider refunded the order's total")
def refunded(shop: Shop, provider: PaymentProvider) -> None:
    [charge] = provider.charges(reference=shop.order["id"])
    assert charge["refunded"] == shop.order["total"], charge


@then("the payment service holds one payment for the order")
def one_payment(shop: Shop) -> None:
    payments = shop.shopper.payments(shop.order["id"])
    assert [(p["status"], p["amount"]) for p in payments] == [("COMPLETED",
                                                               shop.order["total"])], payments


@given("Kafka is stopped")
def kafka_stopped(cloud: CloudSession, kafka: str) -> None:
    cloud.client.component(kafka, "stop")


@when("Kafka is started again")
def kafka_started(cloud: CloudSession, kafka: str) -> None:
    cloud.client.component(kafka, "start")


@then("the order is accepted and PENDING_PAYMENT")
def accepted(shop: Shop) -> None:
    placed = shop.orders[-1]
    assert placed.status == 201, placed
    assert shop.shopper.order(placed.order["id"])["status"] == "PENDING_PAYMENT"
