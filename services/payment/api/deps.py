"""What routes are given: the service's state, set on the app by `services.payment.app`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.common.paging import page_limit
from services.payment.repository import PaymentRepository
from services.payment.settings import PaymentOptions


@dataclass
class PaymentState:
    repository: PaymentRepository
    options: Callable[[], PaymentOptions]

    def limit(self, asked: int | None) -> int:
        options = self.options()
        return page_limit(asked, options.default_limit, options.max_limit)


def payment_state(request: Request) -> PaymentState:
    state: PaymentState = request.app.state.payment
    return state


State = Annotated[PaymentState, Depends(payment_state)]
