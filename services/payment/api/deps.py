"""What routes are given: the service's state, set on the app by `services.payment.app`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.common.errors import Invalid
from services.payment.repository import PaymentRepository
from services.payment.settings import PaymentOptions


@dataclass
class PaymentState:
    repository: PaymentRepository
    options: Callable[[], PaymentOptions]

    def limit(self, asked: int | None) -> int:
        options = self.options()
        if asked is None:
            return options.default_limit
        if not 1 <= asked <= options.max_limit:
            raise Invalid("limit", "range", f"limit must be 1..{options.max_limit}")
        return asked


def payment_state(request: Request) -> PaymentState:
    state: PaymentState = request.app.state.payment
    return state


State = Annotated[PaymentState, Depends(payment_state)]
