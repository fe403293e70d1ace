"""What routes are given: the service's state, from the app (set by `services.order.app.build`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from services.common.paging import page_limit
from services.order.domain.checkout import Checkout
from services.order.domain.settlement import Settlement
from services.order.repository import OrderRepository
from services.order.settings import OrderOptions


@dataclass
class OrderState:
    repository: OrderRepository
    checkout: Checkout
    settlement: Settlement
    options: Callable[[], OrderOptions]  # the current settings (they refresh at run time)
    published: Callable[[], None]  # a commit added events: the outbox relay sends them now
    clock: Callable[[], datetime]

    def limit(self, asked: int | None) -> int:
        history = self.options().history
        return page_limit(asked, history.default_limit, history.max_limit)


def order_state(request: Request) -> OrderState:
    state: OrderState = request.app.state.order
    return state


State = Annotated[OrderState, Depends(order_state)]
