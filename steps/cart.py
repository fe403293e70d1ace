"""Steps of features/cart.feature (the product on sale comes from steps/catalogue.py)."""

from __future__ import annotations

import time
from typing import Any

from pytest_bdd import given, parsers, then, when

from stack.local.config_repo import ConfigRepository
from stack.local.product_client import ProductClient, applied_cart_ttl
from stack.local.session import CloudSession
from stack.local.token_forge import good_token
from stack.waiting import wait_for
from steps.catalogue import MARGIN_S, REFRESH_S, change_product_settings
from steps.common import Scene, serving_tasks
from steps.discovery import routing_bound_s

PRODUCT_SERVICE = "product-service"


def shopper(cloud: CloudSession, catalogue: ProductClient, scene: Scene) -> ProductClient:
    if "shopper" not in scene.values:
        scene.values["shopper"] = catalogue.as_token(good_token(cloud.workspace).token)
    client: ProductClient = scene.values["shopper"]
    return client


def lines(cart: dict[str, Any]) -> dict[int, int]:
    return {line["productId"]: line["quantity"] for line in cart["lines"]}


@given(parsers.parse("a shopper has added {quantity:d} of the product to the cart"))
def added(cloud: CloudSession, catalogue: ProductClient, scene: Scene, quantity: int) -> None:
    cart = shopper(cloud, catalogue, scene).add_to_cart(scene.values["product"], quantity)
    assert lines(cart) == {scene.values["product"]: quantity}, cart


@when("the product service is restarted")
def restart_product_service(cloud: CloudSession, scene: Scene) -> None:
    before = {task["pid"] for task in serving_tasks(cloud, PRODUCT_SERVICE)}
    cloud.client.replace(PRODUCT_SERVICE)  # returns once the new tasks are healthy, routable
    after = {task["pid"] for task in serving_tasks(cloud, PRODUCT_SERVICE)}
    assert after and not after & before, f"the product service kept a process: {before}"


@then(parsers.parse("the shopper's cart still holds {quantity:d} of the product, at today's "
                    "price"))
def still_holds(cloud: CloudSession, catalogue: ProductClient, scene: Scene,
                quantity: int) -> None:
    client = shopper(cloud, catalogue, scene)

    def answered() -> tuple[dict[str, Any] | None, str]:
        response = client.request("GET", "/cart")
        return (response.json() if response.status_code == 200 else None), \
            f"HTTP {response.status_code}"

    cart = wait_for(answered, timeout=routing_bound_s(scene),
                    what="the restarted product service answering through the gateway")
    assert lines(cart) == {scene.values["product"]: quantity}, cart
    price = catalogue.product(scene.values["product"]).body["price"]
    assert cart["lines"][0]["unitPrice"] == price and cart["itemsTotal"] == price * quantity


@given(parsers.parse("carts are kept {seconds:d} seconds after their last change"))
def cart_ttl(cloud: CloudSession, product_settings: ConfigRepository, catalogue: ProductClient,
             scene: Scene, seconds: int) -> None:
    change_product_settings(product_settings, scene, "cart", {"ttl-seconds": seconds})
    probe = catalogue.as_token(good_token(cloud.workspace).token)  # not the shopper's cart

    def applied() -> tuple[bool | None, str]:
        ttl = applied_cart_ttl(probe, scene.values["product"])
        return (True if ttl is not None and ttl <= seconds else None), f"cart TTL {ttl} s"

    wait_for(applied, timeout=REFRESH_S, what=f"a cart TTL of {seconds} s in force")
    scene.values["cart ttl"] = seconds


@when(parsers.parse("a shopper puts {quantity:d} of the product in the cart"))
def put_in_cart(cloud: CloudSession, catalogue: ProductClient, scene: Scene,
                quantity: int) -> None:
    scene.values["changed at or before"] = time.monotonic()
    cart = shopper(cloud, catalogue, scene).set_cart_quantity(scene.values["product"], quantity)
    assert lines(cart) == {scene.values["product"]: quantity}, cart
    assert cart["expiresInSeconds"] <= scene.values["cart ttl"], cart


@then(parsers.parse("the cart holds it until {seconds:d} seconds have passed"))
def holds_until(cloud: CloudSession, catalogue: ProductClient, scene: Scene,
                seconds: int) -> None:
    client = shopper(cloud, catalogue, scene)
    began = scene.values["changed at or before"]
    seen: list[tuple[float, dict[int, int]]] = []

    def emptied() -> tuple[bool | None, str]:
        cart = client.cart()  # a 200 every time: a forgotten cart is an empty one
        seen.append((round(time.monotonic() - began, 2), lines(cart)))
        return (True if not cart["lines"] else None), f"(s, lines): {seen[-4:]}"

    wait_for(emptied, timeout=seconds + MARGIN_S, what="the cart being forgotten", interval=0.2)
    gone_at = seen[-1][0]
    assert gone_at >= seconds, f"the cart was forgotten after {gone_at} s: {seen}"
    assert len(seen) > 1 and seen[0][1], f"the cart was never seen holding the item: {seen}"


@then("after that the cart is empty, without an error")
def empty_without_error(cloud: CloudSession, catalogue: ProductClient, scene: Scene) -> None:
    response = shopper(cloud, catalogue, scene).request("GET", "/cart")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["lines"] == [] and body["total"] == 0 and body["expiresInSeconds"] is None
