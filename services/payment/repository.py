"""Persistence of the payment service: SQLAlchemy Core on the writer and reader endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.database import Database
from services.common.events import Event, add_to_outbox, first_delivery
from services.common.topics import PAYMENT_EVENTS
from services.payment.domain.payments import Payment, PaymentStatus, Refund, RefundStatus
from services.payment.models import outbox, payments, processed_events, refunds


def _refund(row: RowMapping) -> Refund:
    return Refund(id=row["id"], payment_id=row["payment_id"], order_id=row["order_id"],
                  amount=row["amount"], status=RefundStatus(row["status"]),
                  created_at=row["created_at"], updated_at=row["updated_at"],
                  provider_refund_id=row["provider_refund_id"],
                  failure_reason=row["failure_reason"])


def _payment(row: RowMapping, refund: Refund | None) -> Payment:
    return Payment(id=row["id"], order_id=row["order_id"], user_id=row["user_id"],
                   amount=row["amount"], currency=row["currency"],
                   status=PaymentStatus(row["status"]), created_at=row["created_at"],
                   updated_at=row["updated_at"], provider_charge_id=row["provider_charge_id"],
                   failure_reason=row["failure_reason"], refund=refund)


async def _with_refunds(session: AsyncSession, rows: Sequence[RowMapping]) -> list[Payment]:
    if not rows:
        return []
    found = (await session.execute(
        select(refunds).where(refunds.c.payment_id.in_([r["id"] for r in rows])))
             ).mappings().all()
    by_payment = {row["payment_id"]: _refund(row) for row in found}
    return [_payment(row, by_payment.get(row["id"])) for row in rows]


class PaymentTransaction:
    """`services.payment.domain.processing.PaymentTx` on one writer transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def first_delivery(self, event: Event) -> bool:
        return await first_delivery(self.session, processed_events, event)

    async def payment_of_order(self, order_id: str) -> Payment | None:
        row = (await self.session.execute(
            select(payments).where(payments.c.order_id == order_id).with_for_update())
               ).mappings().first()
        return None if row is None else (await _with_refunds(self.session, [row]))[0]

    async def add_payment(self, payment: Payment) -> Payment:
        await self.session.execute(pg_insert(payments).values(
            id=payment.id, order_id=payment.order_id, user_id=payment.user_id,
            amount=payment.amount, currency=payment.currency, status=payment.status.value,
            created_at=payment.created_at, updated_at=payment.updated_at,
        ).on_conflict_do_nothing(index_elements=["order_id"]))
        stored = await self.payment_of_order(payment.order_id)
        assert stored is not None
        return stored

    async def settle_payment(self, payment: Payment) -> bool:
        result = await self.session.execute(
            update(payments).where(payments.c.id == payment.id,
                                   payments.c.status == PaymentStatus.PENDING.value)
            .values(status=payment.status.value, provider_charge_id=payment.provider_charge_id,
                    failure_reason=payment.failure_reason, updated_at=payment.updated_at))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def mark_refunded(self, payment: Payment) -> None:
        await self.session.execute(
            update(payments).where(payments.c.id == payment.id)
            .values(status=payment.status.value, updated_at=payment.updated_at))

    async def add_refund(self, refund: Refund) -> Refund:
        await self.session.execute(pg_insert(refunds).values(
            id=refund.id, payment_id=refund.payment_id, order_id=refund.order_id,
            amount=refund.amount, status=refund.status.value, created_at=refund.created_at,
            updated_at=refund.updated_at,
        ).on_conflict_do_nothing(index_elements=["payment_id"]))
        row = (await self.session.execute(
            select(refunds).where(refunds.c.payment_id == refund.payment_id))).mappings().one()
        return _refund(row)

    async def settle_refund(self, refund: Refund) -> bool:
        result = await self.session.execute(
            update(refunds).where(refunds.c.id == refund.id,
                                  refunds.c.status == RefundStatus.PENDING.value)
            .values(status=refund.status.value, provider_refund_id=refund.provider_refund_id,
                    failure_reason=refund.failure_reason, updated_at=refund.updated_at))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def add_event(self, key: str, event: Event) -> None:
        await add_to_outbox(self.session, outbox, PAYMENT_EVENTS, key, event)


class PaymentRepository:
    def __init__(self, database: Database) -> None:
        self.database = database

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PaymentTransaction]:
        async with self.database.writes() as session, session.begin():
            yield PaymentTransaction(session)

    async def stale_payments(self, before: datetime) -> list[Payment]:
        async with self.database.writes() as session:
            rows = (await session.execute(
                select(payments).where(payments.c.status == PaymentStatus.PENDING.value,
                                       payments.c.updated_at < before)
                .order_by(payments.c.updated_at).limit(100))).mappings().all()
            return await _with_refunds(session, rows)

    async def stale_refunds(self, before: datetime) -> list[tuple[Refund, Payment]]:
        async with self.database.writes() as session:
            rows = (await session.execute(
                select(refunds).where(refunds.c.status == RefundStatus.PENDING.value,
                                      refunds.c.updated_at < before)
                .order_by(refunds.c.updated_at).limit(100))).mappings().all()
            if not rows:
                return []
            owners = (await session.execute(select(payments).where(
                payments.c.id.in_([r["payment_id"] for r in rows])))).mappings().all()
            by_id = {row["id"]: _payment(row, None) for row in owners}
            return [(_refund(row), by_id[row["payment_id"]]) for row in rows]

    async def payment(self, payment_id: str) -> Payment | None:
        async with self.database.writes() as session:
            row = (await session.execute(select(payments).where(payments.c.id == payment_id))
                   ).mappings().first()
            return None if row is None else (await _with_refunds(session, [row]))[0]

    async def payments_of(self, user_id: str | None, order_id: str | None, limit: int,
                          offset: int) -> list[Payment]:
        query = select(payments).order_by(payments.c.created_at.desc(), payments.c.id)
        if user_id is not None:
            query = query.where(payments.c.user_id == user_id)
        if order_id is not None:
            query = query.where(payments.c.order_id == order_id)
        async with self.database.reads() as session:
            rows = (await session.execute(query.limit(limit).offset(offset))).mappings().all()
            return await _with_refunds(session, rows)
