"""Cart math: quantities a cart may hold, and its lines priced with today's prices.

A cart stores only (product id, quantity); prices, names and availability are looked up each
time it is shown, so a cart never shows a price the catalogue no longer has. Delivery is charged
per store by its policy (free from a threshold), only on what can actually be bought.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from services.common.errors import Invalid
from services.product.domain.catalogue import ProductStatus


@dataclass(frozen=True)
class DeliveryPolicy:
    fee: int
    free_over: int | None
    lead_days: int

    def fee_for(self, subtotal: int) -> int:
        """What delivering ``subtotal`` worth of one store's goods costs."""
        if subtotal <= 0:
            return 0
        if self.free_over is not None and subtotal >= self.free_over:
            return 0
        return self.fee


NO_POLICY = DeliveryPolicy(fee=0, free_over=None, lead_days=0)  # a store that set none


@dataclass(frozen=True)
class PricedProduct:
    """What the cart needs to know of a product today."""

    id: int
    store_id: int
    name: str
    price: int
    stock: int
    status: ProductStatus


@dataclass(frozen=True)
class CartLine:
    product_id: int
    store_id: int
    name: str
    unit_price: int
    quantity: int
    status: ProductStatus
    available: bool  # purchasable now in this quantity

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class StoreTotal:
    store_id: int
    subtotal: int
    delivery_fee: int
    lead_days: int


@dataclass(frozen=True)
class PricedCart:
    lines: tuple[CartLine, ...]
    stores: tuple[StoreTotal, ...]
    missing: tuple[int, ...]  # product ids in the cart that no longer exist

    @property
    def items_total(self) -> int:
        return sum(line.line_total for line in self.lines if line.available)

    @property
    def delivery_total(self) -> int:
        return sum(store.delivery_fee for store in self.stores)

    @property
    def total(self) -> int:
        return self.items_total + self.delivery_total

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)


def price_cart(quantities: Mapping[int, int], products: Mapping[int, PricedProduct],
               policies: Mapping[int, DeliveryPolicy]) -> PricedCart:
    """The cart's lines at today's prices, per-store subtotals with delivery, and totals.

    Lines keep the order of the product ids; a line that cannot be bought now (sold out,
    hidden, not enough stock) is shown but counts toward no total.
    """
    lines: list[CartLine] = []
    missing: list[int] = []
    for product_id in sorted(quantities):
        quantity = quantities[product_id]
        product = products.get(product_id)
        if product is None:
            missing.append(product_id)
            continue
        available = product.status is ProductStatus.ACTIVE and product.stock >= quantity
        lines.append(CartLine(product.id, product.store_id, product.name, product.price,
                              quantity, product.status, available))
    stores = store_totals(((line.store_id, line.line_total) for line in lines if line.available),
                          policies)
    return PricedCart(tuple(lines), stores, tuple(missing))


def store_totals(amounts: Iterable[tuple[int, int]],
                 policies: Mapping[int, DeliveryPolicy]) -> tuple[StoreTotal, ...]:
    """(store id, amount) pairs summed per store, each with its delivery fee and lead time."""
    subtotals: dict[int, int] = {}
    for store_id, amount in amounts:
        subtotals[store_id] = subtotals.get(store_id, 0) + amount
    return tuple(
        StoreTotal(store_id, subtotal, policy.fee_for(subtotal), policy.lead_days)
        for store_id, subtotal in sorted(subtotals.items())
        for policy in (policies.get(store_id, NO_POLICY),))


def check_quantity(quantity: int, max_quantity: int, field: str = "quantity") -> None:
    if quantity < 1 or quantity > max_quantity:
        raise Invalid(field, "range", f"{field} must be 1..{max_quantity}")


def added(current: int, quantity: int, max_quantity: int) -> int:
    """The line's quantity after adding ``quantity`` more (refused beyond the per-line cap)."""
    check_quantity(quantity, max_quantity)
    total = current + quantity
    if total > max_quantity:
        raise Invalid("quantity", "range",
                      f"the cart would hold {total} of this product; at most {max_quantity}")
    return total


def check_room(lines: int, has_line: bool, max_lines: int) -> None:
    """A new product may join the cart only while it has fewer than ``max_lines`` lines."""
    if not has_line and lines >= max_lines:
        raise Invalid("productId", "max_lines", f"a cart holds at most {max_lines} products")
