"""How long ordering takes through the gateway: placing an order, and until it is PAID.

Runs against a local cloud that is already up (`come2us up`; COME2US_HOME and
COME2US_LOOPBACK_BLOCK as for it). It creates a product with enough stock, then, one after the
other, fills a shopper's cart, places an order (POST /api/orders) and polls the order until it
is PAID: the order service's outbox relay, Kafka, the payment service, the provider simulator,
Kafka again and the order service's consumer. Then it makes the provider fail outright and
measures how fast orders fail once the payment service's breaker is open. Prints every figure;
exits 1 when a median misses its target.

    .venv/bin/python bench/ordering.py [--orders 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid

from stack.come2us import come2us
from stack.local.order_client import OrderClient, PaymentProvider
from stack.local.product_client import ProductClient
from stack.local.token_forge import good_token
from stack.local.workspace import Workspace

PLACE_TARGET_S = 0.5  # median POST /api/orders (cart read, stock reserved, order committed)
PAID_TARGET_S = 2.0  # median from the order's 201 to reading it PAID
POLL_S = 0.02
BOUND_S = 30.0


def until(orders: OrderClient, order_id: str, status: str) -> float:
    began = time.monotonic()
    while time.monotonic() - began < BOUND_S:
        if orders.order(order_id)["status"] == status:
            return time.monotonic() - began
        time.sleep(POLL_S)
    raise SystemExit(f"order {order_id} not {status} within {BOUND_S} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20)
    args = parser.parse_args()
    model, workspace = come2us(), Workspace.default()
    suffix = uuid.uuid4().hex[:8]
    shopper = good_token(workspace, ttl_s=900).token
    with ProductClient.through_gateway(model) as products, \
            OrderClient.through_gateway(model, token=shopper) as orders, \
            PaymentProvider(model) as provider:
        admin = products.as_token(good_token(workspace, roles=("admin",)).token)
        seller = products.as_token(good_token(workspace, roles=("seller",)).token)
        cart = products.as_token(shopper)
        category = admin.create_category(f"Bench {suffix}")["id"]
        store = seller.create_store(f"Bench store {suffix}")["id"]
        product = seller.create_product(store, category, f"Bench shoe {suffix}", 10_000,
                                        stock=10 * args.orders)
        address = orders.add_address()["id"]

        placing, paying = [], []
        for _ in range(args.orders):
            cart.add_to_cart(product, 1)
            began = time.monotonic()
            placed = orders.place(address)
            placing.append(time.monotonic() - began)
            paying.append(until(orders, placed.order["id"], "PAID"))

        provider.set_behaviour(error_rate=1.0)
        failing = []
        try:
            for _ in range(8):  # the first ones open the breaker; later ones fail fast
                cart.add_to_cart(product, 1)
                placed = orders.place(address)
                failing.append(until(orders, placed.order["id"], "PAYMENT_FAILED"))
        finally:
            provider.set_behaviour()

    def line(what: str, values: list[float]) -> str:
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        return (f"{what}: median {statistics.median(values) * 1000:7.1f} ms, p95 "
                f"{p95 * 1000:7.1f} ms, max {max(values) * 1000:7.1f} ms (n={len(values)})")

    print(line("place order (POST /api/orders)   ", placing))
    print(line("201 -> PAID (Kafka round trip)    ", paying))
    print(line("provider down: first 3 -> FAILED  ", failing[:3]))
    print(line("provider down: breaker open       ", failing[5:]))
    ok = statistics.median(placing) <= PLACE_TARGET_S and statistics.median(paying) <= \
        PAID_TARGET_S
    print(f"targets: place <= {PLACE_TARGET_S * 1000:g} ms, paid <= {PAID_TARGET_S * 1000:g} ms "
          f"(medians): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
