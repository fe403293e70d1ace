"""Persistence of the order service: SQLAlchemy Core on the writer and reader endpoints.

Writes and the reads that must see them (an order right after checkout, the state a consumer
is about to change) use the writer; the history list, read far more often than it changes,
uses the reader endpoint and may trail the writer by the standby's replay lag (milliseconds).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import and_, delete, exists, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.database import Database
from services.common.errors import Conflict
from services.common.events import Event, add_to_outbox, first_delivery
from services.common.topics import ORDER_EVENTS
from services.order.domain.addresses import Address, AddressFields
from services.order.domain.coupons import Coupon, CouponTerms, DiscountType
from services.order.domain.orders import Line, Order, OrderStatus, Pricing
from services.order.models import (
    addresses,
    coupon_redemptions,
    coupons,
    order_lines,
    orders,
    outbox,
    processed_events,
)


def _address(row: RowMapping) -> Address:
    return Address(id=row["id"], user_id=row["user_id"],
                   fields=AddressFields(recipient=row["recipient"], phone=row["phone"],
                                        postal_code=row["postal_code"], line1=row["line1"],
                                        line2=row["line2"]),
                   created_at=row["created_at"], updated_at=row["updated_at"])


def _coupon(row: RowMapping) -> Coupon:
    terms = CouponTerms(code=row["code"], discount_type=DiscountType(row["discount_type"]),
                        discount_value=row["discount_value"], min_amount=row["min_amount"],
                        valid_until=row["valid_until"], max_discount=row["max_discount"],
                        one_per_user=row["one_per_user"], total_limit=row["total_limit"])
    return Coupon(id=row["id"], terms=terms, redeemed_count=row["redeemed_count"],
                  created_at=row["created_at"])


def _order(row: RowMapping, lines: Sequence[RowMapping]) -> Order:
    return Order(
        id=row["id"], user_id=row["user_id"], status=OrderStatus(row["status"]),
        lines=tuple(Line(product_id=line["product_id"], name=line["name"],
                         unit_price=line["unit_price"], quantity=line["quantity"])
                    for line in lines),
        pricing=Pricing(subtotal=row["subtotal"], delivery_fee=row["delivery_fee"],
                        discount=row["discount"]),
        address=row["address"], idempotency_key=row["idempotency_key"],
        fingerprint=row["request_fingerprint"], created_at=row["created_at"],
        updated_at=row["updated_at"], currency=row["currency"],
        coupon_code=row["coupon_code"], payment_id=row["payment_id"],
        failure_reason=row["failure_reason"])


async def _orders_with_lines(session: AsyncSession,
                             rows: Sequence[RowMapping]) -> list[Order]:
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    found = (await session.execute(
        select(order_lines).where(order_lines.c.order_id.in_(ids))
        .order_by(order_lines.c.order_id, order_lines.c.line_no))).mappings().all()
    by_order: dict[str, list[RowMapping]] = {}
    for line in found:
        by_order.setdefault(line["order_id"], []).append(line)
    return [_order(row, by_order.get(row["id"], [])) for row in rows]


async def _one_order(session: AsyncSession, order_id: str, *, lock: bool) -> Order | None:
    query = select(orders).where(orders.c.id == order_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).mappings().first()
    if row is None:
        return None
    return (await _orders_with_lines(session, [row]))[0]


async def _coupon_by_code(session: AsyncSession, code: str) -> Coupon | None:
    row = (await session.execute(select(coupons).where(coupons.c.code == code))
           ).mappings().first()
    return None if row is None else _coupon(row)


async def _redeemed_by(session: AsyncSession, coupon_id: int, user_id: str) -> bool:
    query = select(exists().where(and_(coupon_redemptions.c.coupon_id == coupon_id,
                                       coupon_redemptions.c.user_id == user_id)))
    return bool((await session.execute(query)).scalar())


class CouponReader:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def coupon(self, code: str) -> Coupon | None:
        return await _coupon_by_code(self.session, code)

    async def redeemed_by(self, coupon_id: int, user_id: str) -> bool:
        return await _redeemed_by(self.session, coupon_id, user_id)


class CheckoutTransaction(CouponReader):
    """`CheckoutTx`: one transaction holding the advisory lock of (user, key)."""

    def __init__(self, session: AsyncSession, user_id: str, key: str) -> None:
        super().__init__(session)
        self.user_id = user_id
        self.key = key

    async def existing(self) -> Order | None:
        row = (await self.session.execute(
            select(orders).where(orders.c.user_id == self.user_id,
                                 orders.c.idempotency_key == self.key))).mappings().first()
        if row is None:
            return None
        return (await _orders_with_lines(self.session, [row]))[0]

    async def address(self, address_id: int) -> Address | None:
        row = (await self.session.execute(select(addresses).where(addresses.c.id == address_id))
               ).mappings().first()
        return None if row is None else _address(row)

    async def add(self, order: Order) -> None:
        pricing = order.pricing
        await self.session.execute(insert(orders).values(
            id=order.id, user_id=order.user_id, idempotency_key=order.idempotency_key,
            request_fingerprint=order.fingerprint, status=order.status.value,
            subtotal=pricing.subtotal, delivery_fee=pricing.delivery_fee,
            discount=pricing.discount, total=pricing.total, currency=order.currency,
            coupon_code=order.coupon_code, address=dict(order.address),
            created_at=order.created_at, updated_at=order.updated_at))
        await self.session.execute(insert(order_lines), [
            {"order_id": order.id, "line_no": number, "product_id": line.product_id,
             "name": line.name, "unit_price": line.unit_price, "quantity": line.quantity}
            for number, line in enumerate(order.lines, start=1)])
        await add_to_outbox(self.session, outbox, ORDER_EVENTS, order.id, order.created_event())


class OrderTransaction:
    """`services.order.domain.settlement.OrderTx` on one writer transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def first_delivery(self, event: Event) -> bool:
        return await first_delivery(self.session, processed_events, event)

    async def locked(self, order_id: str) -> Order | None:
        return await _one_order(self.session, order_id, lock=True)

    async def save(self, order: Order) -> None:
        await self.session.execute(update(orders).where(orders.c.id == order.id).values(
            status=order.status.value, payment_id=order.payment_id,
            failure_reason=order.failure_reason, updated_at=order.updated_at))

    async def redeem(self, order: Order) -> None:
        coupon = await _coupon_by_code(self.session, order.coupon_code or "")
        if coupon is None:
            return
        inserted = await self.session.execute(
            pg_insert(coupon_redemptions).values(coupon_id=coupon.id, order_id=order.id,
                                                 user_id=order.user_id)
            .on_conflict_do_nothing())
        if inserted.rowcount:  # type: ignore[attr-defined]
            await self.session.execute(update(coupons).where(coupons.c.id == coupon.id)
                                       .values(redeemed_count=coupons.c.redeemed_count + 1))

    async def add_event(self, order: Order, event: Event) -> None:
        await add_to_outbox(self.session, outbox, ORDER_EVENTS, order.id, event)


class OrderRepository:
    def __init__(self, database: Database) -> None:
        self.database = database

    # -- checkout and settlement (the domain's stores) -------------------------------------

    @asynccontextmanager
    async def checkout(self, user_id: str, key: str) -> AsyncIterator[CheckoutTransaction]:
        async with self.database.writes() as session, session.begin():
            await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                                  {"k": f"order-checkout:{user_id}:{key}"})
            yield CheckoutTransaction(session, user_id, key)

    @asynccontextmanager
    async def coupons(self) -> AsyncIterator[CouponReader]:
        async with self.database.reads() as session:
            yield CouponReader(session)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[OrderTransaction]:
        async with self.database.writes() as session, session.begin():
            yield OrderTransaction(session)

    async def order(self, order_id: str) -> Order | None:
        async with self.database.writes() as session:
            return await _one_order(session, order_id, lock=False)

    async def history(self, user_id: str | None, status: OrderStatus | None, limit: int,
                      offset: int) -> list[Order]:
        query = select(orders).order_by(orders.c.created_at.desc(), orders.c.id)
        if user_id is not None:
            query = query.where(orders.c.user_id == user_id)
        if status is not None:
            query = query.where(orders.c.status == status.value)
        async with self.database.reads() as session:
            rows = (await session.execute(query.limit(limit).offset(offset))).mappings().all()
            return await _orders_with_lines(session, rows)

    # -- addresses --------------------------------------------------------------------------

    async def addresses_of(self, user_id: str) -> list[Address]:
        async with self.database.writes() as session:
            rows = (await session.execute(select(addresses).where(addresses.c.user_id == user_id)
                                          .order_by(addresses.c.id))).mappings().all()
        return [_address(row) for row in rows]

    async def address(self, address_id: int) -> Address | None:
        async with self.database.writes() as session:
            row = (await session.execute(select(addresses).where(addresses.c.id == address_id))
                   ).mappings().first()
        return None if row is None else _address(row)

    async def add_address(self, user_id: str, fields: AddressFields) -> Address:
        async with self.database.writes() as session, session.begin():
            row = (await session.execute(insert(addresses).values(
                user_id=user_id, **_address_values(fields)).returning(addresses))).mappings().one()
        return _address(row)

    async def update_address(self, address_id: int, fields: AddressFields) -> Address:
        async with self.database.writes() as session, session.begin():
            row = (await session.execute(
                update(addresses).where(addresses.c.id == address_id)
                .values(updated_at=func.now(), **_address_values(fields))
                .returning(addresses))).mappings().one()
        return _address(row)

    async def delete_address(self, address_id: int) -> None:
        async with self.database.writes() as session, session.begin():
            await session.execute(delete(addresses).where(addresses.c.id == address_id))

    # -- coupons ----------------------------------------------------------------------------

    async def issue_coupon(self, terms: CouponTerms, issued_by: str) -> Coupon:
        try:
            async with self.database.writes() as session, session.begin():
                row = (await session.execute(insert(coupons).values(
                    code=terms.code, discount_type=terms.discount_type.value,
                    discount_value=terms.discount_value, max_discount=terms.max_discount,
                    min_amount=terms.min_amount, valid_until=terms.valid_until,
                    one_per_user=terms.one_per_user, total_limit=terms.total_limit,
                    issued_by=issued_by).returning(coupons))).mappings().one()
        except IntegrityError as error:
            raise Conflict(f"a coupon with code {terms.code} exists already") from error
        return _coupon(row)

    async def coupon(self, code: str) -> Coupon | None:
        async with self.database.writes() as session:
            return await _coupon_by_code(session, code)

    async def all_coupons(self, limit: int, offset: int) -> list[Coupon]:
        async with self.database.reads() as session:
            rows = (await session.execute(select(coupons).order_by(coupons.c.id)
                                          .limit(limit).offset(offset))).mappings().all()
        return [_coupon(row) for row in rows]


def _address_values(fields: AddressFields) -> dict[str, str]:
    return {"recipient": fields.recipient, "phone": fields.phone,
            "postal_code": fields.postal_code, "line1": fields.line1, "line2": fields.line2}
