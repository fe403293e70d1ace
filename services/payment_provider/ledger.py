"""The simulator's books: charges and refunds, each recorded once per idempotency key.

A real PG stores the first answer to an idempotency key and returns it to every retry with the
same key; a retry with different parameters is refused, because it is a client bug that would
otherwise charge the wrong amount silently. The ledger does exactly that, in memory: the
simulator is an external system whose state the platform never relies on surviving a restart.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum


class ChargeStatus(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"


class RefundStatus(StrEnum):
    REFUNDED = "refunded"


class KeyReused(Exception):
    """An idempotency key came back with other parameters than its first use."""


class UnknownCharge(Exception):
    pass


class NotRefundable(Exception):
    pass


@dataclass(frozen=True)
class Behaviour:
    """How the provider misbehaves: applied to every request unless a request overrides it.

    ``failure_rate``: share of new charges declined (402), as a card company does.
    ``error_rate``: share of requests answered 503 without recording anything (an outage).
    ``latency_ms``: added before answering, after recording (a slow PG whose answer arrives
    after the caller's timeout has still charged: the retry gets the recorded answer).
    """

    latency_ms: int = 0
    failure_rate: float = 0.0
    error_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        for name in ("failure_rate", "error_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")

    def overridden(self, latency_ms: int | None, failure_rate: float | None,
                   error_rate: float | None) -> Behaviour:
        return replace(
            self,
            latency_ms=self.latency_ms if latency_ms is None else latency_ms,
            failure_rate=self.failure_rate if failure_rate is None else failure_rate,
            error_rate=self.error_rate if error_rate is None else error_rate,
        )


@dataclass(frozen=True)
class Charge:
    id: str
    idempotency_key: str
    reference: str
    amount: int
    currency: str
    status: ChargeStatus
    reason: str | None
    created_at: datetime
    refunded: int = 0


@dataclass(frozen=True)
class Refund:
    id: str
    idempotency_key: str
    charge_id: str
    amount: int
    status: RefundStatus
    created_at: datetime


@dataclass(frozen=True)
class Recorded:
    """The answer to a request: what it recorded, and whether it was a replay of a key."""

    value: Charge | Refund
    replayed: bool


@dataclass
class Ledger:
    chance: Callable[[], float] = field(default_factory=lambda: random.random)
    charges: dict[str, Charge] = field(default_factory=dict)  # by id
    refunds: dict[str, Refund] = field(default_factory=dict)  # by id
    _charge_keys: dict[str, str] = field(default_factory=dict)  # idempotency key -> charge id
    _refund_keys: dict[str, str] = field(default_factory=dict)

    def outage(self, behaviour: Behaviour) -> bool:
        """Whether this request falls in the simulated outage (nothing is recorded then)."""
        return behaviour.error_rate > 0 and self.chance() < behaviour.error_rate

    def charge(self, *, key: str, reference: str, amount: int, currency: str,
               behaviour: Behaviour) -> Recorded:
        existing = self._charge_keys.get(key)
        if existing is not None:
            charge = self.charges[existing]
            if (charge.reference, charge.amount, charge.currency) != (reference, amount,
                                                                       currency):
                raise KeyReused(f"idempotency key {key!r} was first used for {charge.amount} "
                                f"{charge.currency}, reference {charge.reference!r}")
            return Recorded(charge, replayed=True)
        declined = behaviour.failure_rate > 0 and self.chance() < behaviour.failure_rate
        charge = Charge(
            id=f"ch_{uuid.uuid4().hex[:24]}", idempotency_key=key, reference=reference,
            amount=amount, currency=currency,
            status=ChargeStatus.DECLINED if declined else ChargeStatus.APPROVED,
            reason="card declined (simulated)" if declined else None,
            created_at=datetime.now(UTC))
        self.charges[charge.id] = charge
        self._charge_keys[key] = charge.id
        return Recorded(charge, replayed=False)

    def refund(self, *, key: str, charge_id: str, amount: int) -> Recorded:
        existing = self._refund_keys.get(key)
        if existing is not None:
            refund = self.refunds[existing]
            if (refund.charge_id, refund.amount) != (charge_id, amount):
                raise KeyReused(f"idempotency key {key!r} was first used to refund "
                                f"{refund.amount} of {refund.charge_id}")
            return Recorded(refund, replayed=True)
        charge = self.charges.get(charge_id)
        if charge is None:
            raise UnknownCharge(f"no charge {charge_id}")
        if charge.status is not ChargeStatus.APPROVED:
            raise NotRefundable(f"charge {charge_id} was {charge.status}, nothing to refund")
        if charge.refunded + amount > charge.amount:
            raise NotRefundable(f"charge {charge_id}: {charge.refunded} of {charge.amount} "
                                f"already refunded, {amount} more is too much")
        refund = Refund(id=f"re_{uuid.uuid4().hex[:24]}", idempotency_key=key,
                        charge_id=charge_id, amount=amount, status=RefundStatus.REFUNDED,
                        created_at=datetime.now(UTC))
        self.charges[charge_id] = replace(charge, refunded=charge.refunded + amount)
        self.refunds[refund.id] = refund
        self._refund_keys[key] = refund.id
        return Recorded(refund, replayed=False)

    def find_charges(self, reference: str | None = None,
                     idempotency_key: str | None = None) -> list[Charge]:
        return [c for c in self.charges.values()
                if (reference is None or c.reference == reference)
                and (idempotency_key is None or c.idempotency_key == idempotency_key)]
