"""Stock reservations for orders: all of an order's lines or none, once per order id.

The order service reserves an order's quantities before it records the order, and releases
them when the order fails or is refunded. Both are keyed by the order id so that a retried
call (a timeout, a redelivered event) never takes or returns stock twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from services.common.errors import Conflict, Invalid

MAX_LINES = 100


class ReservationStatus(StrEnum):
    HELD = "HELD"
    RELEASED = "RELEASED"


@dataclass(frozen=True)
class Wanted:
    product_id: int
    quantity: int


class StockShortage(Conflict):
    """Not enough stock for one line: nothing of the order was reserved."""

    def __init__(self, product_id: int, requested: int, available: int, reason: str) -> None:
        super().__init__(f"product {product_id}: {reason} ({requested} requested, "
                         f"{available} available); nothing was reserved")
        self.product_id = product_id
        self.requested = requested
        self.available = available


def plan(items: Iterable[Wanted]) -> tuple[Wanted, ...]:
    """Lines merged by product and sorted by id.

    The sort is the lock order: two orders that share products take the products' row locks
    in the same order, so they queue instead of deadlocking.
    """
    merged: dict[int, int] = {}
    for item in items:
        if item.quantity < 1:
            raise Invalid("items.quantity", "positive", "every quantity must be at least 1")
        merged[item.product_id] = merged.get(item.product_id, 0) + item.quantity
    if not merged:
        raise Invalid("items", "not_empty", "a reservation needs at least one line")
    if len(merged) > MAX_LINES:
        raise Invalid("items", "max_lines", f"at most {MAX_LINES} products per reservation")
    return tuple(Wanted(pid, merged[pid]) for pid in sorted(merged))


def check_replay(order_id: str, status: ReservationStatus, held: Mapping[int, int],
                 wanted: tuple[Wanted, ...]) -> None:
    """A second reserve for an order id is a replay of the first, or a mistake (409)."""
    if status is ReservationStatus.RELEASED:
        raise Conflict(f"the reservation of order {order_id} was released; an order id "
                       f"cannot reserve again")
    if dict(held) != {w.product_id: w.quantity for w in wanted}:
        raise Conflict(f"order {order_id} already reserved different lines: {dict(held)}")
