"""Persistence of the product service: SQLAlchemy Core statements on the writer and reader.

Each write method is one transaction: the rows, the rating aggregate, the stock and the outbox
event commit together or not at all. Reads that feed the cache take the reader endpoint and say
how fresh the replica was (`Freshness`), so the cache layer can insist on a floor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.database import Database
from services.common.errors import Conflict, Invalid, NotFound
from services.common.events import Event, add_to_outbox
from services.common.topics import PRODUCT_DELETED, PRODUCT_EVENTS, PRODUCT_UPSERTED
from services.product.domain.cart import DeliveryPolicy, PricedProduct
from services.product.domain.catalogue import (
    PUBLIC_STATUSES,
    ListQuery,
    ProductStatus,
    Sort,
    check_new_parent,
    descendants,
    status_after_stock,
)
from services.product.domain.reviews import RatingDelta
from services.product.domain.stock import (
    ReservationStatus,
    StockShortage,
    Wanted,
    check_replay,
)
from services.product.models import (
    categories,
    delivery_policies,
    outbox,
    product_images,
    product_versions,
    products,
    reservation_lines,
    reservations,
    reviews,
    stores,
)

Row = Mapping[str, Any]
Authorise = Callable[[str], None]
"""Decides whether the caller may change something owned by the given user id (raises 403)."""
Reconcile = Callable[[Row, Mapping[str, Any]], dict[str, Any]]
"""Turns the current row and a seller's changes into the values to write."""

# Fields of a product that the product.upserted event carries: a change to any of them is news
# for the consumers (the AI service's index); a stock change alone is not.
EVENT_FIELDS = ("store_id", "category_id", "name", "description", "price", "status")
CATEGORY_TREE_LOCK = 0x70726F64  # advisory lock serialising moves in the category tree


@dataclass(frozen=True)
class Changed:
    """What a write changed that caches and consumers must hear about."""

    product_ids: tuple[int, ...] = ()
    events: int = 0


@dataclass(frozen=True)
class Reservation:
    order_id: str
    user_id: str | None
    status: ReservationStatus
    lines: tuple[Row, ...]  # product_id, quantity, unit_price, store_id, name
    replayed: bool = False


def product_event(row: Row) -> Event:
    return Event.new(PRODUCT_UPSERTED, {
        "productId": int(row["id"]), "storeId": int(row["store_id"]),
        "categoryId": int(row["category_id"]), "name": row["name"],
        "description": row["description"], "price": int(row["price"]),
        "status": row["status"]})


def _not_deleted() -> ColumnElement[bool]:
    return products.c.deleted_at.is_(None)


def _unique_violation(error: IntegrityError) -> bool:
    return getattr(error.orig, "sqlstate", None) == "23505"


class Repository:
    def __init__(self, database: Database) -> None:
        self.database = database

    # --- freshness (for the cache layer) ------------------------------------------------------

    async def writer_lsn(self) -> int:
        """The writer's current WAL position: every commit so far is at or before it."""
        async with self.database.writer.connect() as conn:
            value = (await conn.execute(text(
                "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"))).scalar_one()
        return int(value)

    @staticmethod
    async def replay_lsn(session: AsyncSession) -> int | None:
        """How far this reader connection's server has replayed; None on a primary (current).

        Asked before the data is read: in READ COMMITTED the next statement's snapshot then
        includes everything up to this position.
        """
        recovering, lsn = (await session.execute(text(
            "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() - '0/0'::pg_lsn"))).one()
        return int(lsn) if recovering and lsn is not None else None

    async def _reading(self, floor: int) -> tuple[AsyncSession, bool]:
        """A reader session if its replica has reached ``floor``, else a writer session."""
        session = self.database.reads()
        try:
            lsn = await self.replay_lsn(session)
        except Exception:
            await session.close()
            raise
        if lsn is None or lsn >= floor:
            return session, False
        await session.close()
        return self.database.writes(), True

    # --- stores and delivery policies ---------------------------------------------------------

    async def create_store(self, owner_id: str, name: str, description: str) -> Row:
        async with self.database.writes() as session, session.begin():
            row = (await session.execute(insert(stores).values(
                owner_id=owner_id, name=name, description=description)
                .returning(*stores.c))).mappings().one()
        return dict(row)

    async def store(self, store_id: int) -> Row | None:
        async with self.database.reads() as session:
            row = (await session.execute(
                select(stores, delivery_policies.c.fee, delivery_policies.c.free_over,
                       delivery_policies.c.lead_days)
                .outerjoin(delivery_policies, delivery_policies.c.store_id == stores.c.id)
                .where(stores.c.id == store_id))).mappings().one_or_none()
        return None if row is None else dict(row)

    async def stores_page(self, owner_id: str | None, page: int, size: int
                          ) -> tuple[list[Row], int]:
        condition = stores.c.owner_id == owner_id if owner_id else None
        query = select(stores).order_by(stores.c.id).offset(page * size).limit(size)
        count = select(func.count()).select_from(stores)
        if condition is not None:
            query, count = query.where(condition), count.where(condition)
        async with self.database.reads() as session:
            rows = (await session.execute(query)).mappings().all()
            total = (await session.execute(count)).scalar_one()
        return [dict(r) for r in rows], int(total)

    async def store_owner(self, session: AsyncSession, store_id: int, *,
                          lock: bool = False) -> str:
        query = select(stores.c.owner_id).where(stores.c.id == store_id)
        owner = (await session.execute(query.with_for_update() if lock else query)
                 ).scalar_one_or_none()
        if owner is None:
            raise NotFound(f"store {store_id} does not exist")
        return str(owner)

    async def update_store(self, store_id: int, changes: Mapping[str, Any],
                           authorise: Authorise) -> Row:
        async with self.database.writes() as session, session.begin():
            authorise(await self.store_owner(session, store_id, lock=True))
            if changes:
                await session.execute(update(stores).where(stores.c.id == store_id)
                                      .values(**changes, updated_at=func.now()))
        found = await self.store(store_id)
        assert found is not None
        return found

    async def put_delivery_policy(self, store_id: int, policy: DeliveryPolicy,
                                  authorise: Authorise) -> Changed:
        """Create or replace a store's policy; its products' pages show cart totals, not this,
        so no page changes — but carts priced after this see it at once."""
        values = {"fee": policy.fee, "free_over": policy.free_over,
                  "lead_days": policy.lead_days}
        async with self.database.writes() as session, session.begin():
            authorise(await self.store_owner(session, store_id, lock=True))
            await session.execute(
                pg_insert(delivery_policies).values(store_id=store_id, **values)
                .on_conflict_do_update(index_elements=["store_id"],
                                       set_={**values, "updated_at": func.now()}))
        return Changed()

    async def delivery_policy(self, store_id: int) -> Row | None:
        async with self.database.reads() as session:
            if (await session.execute(select(stores.c.id).where(stores.c.id == store_id))
                    ).scalar_one_or_none() is None:
                raise NotFound(f"store {store_id} does not exist")
            row = (await session.execute(select(delivery_policies).where(
                delivery_policies.c.store_id == store_id))).mappings().one_or_none()
        return None if row is None else dict(row)

    async def delivery_policies_of(self, store_ids: Sequence[int]) -> dict[int, DeliveryPolicy]:
        if not store_ids:
            return {}
        async with self.database.reads() as session:
            rows = (await session.execute(select(delivery_policies).where(
                delivery_policies.c.store_id.in_(store_ids)))).mappings().all()
        return {int(r["store_id"]): DeliveryPolicy(int(r["fee"]),
                                                   None if r["free_over"] is None
                                                   else int(r["free_over"]),
                                                   int(r["lead_days"])) for r in rows}

    # --- categories ---------------------------------------------------------------------------

    async def categories(self) -> list[Row]:
        async with self.database.reads() as session:
            rows = (await session.execute(select(categories).order_by(categories.c.id))
                    ).mappings().all()
        return [dict(r) for r in rows]

    async def create_category(self, name: str, parent_id: int | None, position: int) -> Row:
        try:
            async with self.database.writes() as session, session.begin():
                if parent_id is not None and (await session.execute(
                        select(categories.c.id).where(categories.c.id == parent_id))
                        ).scalar_one_or_none() is None:
                    raise Invalid("parentId", "exists", f"category {parent_id} does not exist")
                row = (await session.execute(insert(categories).values(
                    name=name, parent_id=parent_id, position=position)
                    .returning(*categories.c))).mappings().one()
        except IntegrityError as error:
            if _unique_violation(error):
                raise Conflict(f"a category named {name!r} already exists there") from error
            raise
        return dict(row)

    async def update_category(self, category_id: int, changes: Mapping[str, Any]) -> Row:
        try:
            async with self.database.writes() as session, session.begin():
                await session.execute(select(func.pg_advisory_xact_lock(CATEGORY_TREE_LOCK)))
                parents = {int(r.id): (None if r.parent_id is None else int(r.parent_id))
                           for r in await session.execute(
                               select(categories.c.id, categories.c.parent_id))}
                if category_id not in parents:
                    raise NotFound(f"category {category_id} does not exist")
                if "parent_id" in changes:
                    check_new_parent(parents, category_id, changes["parent_id"])
                row = (await session.execute(
                    update(categories).where(categories.c.id == category_id)
                    .values(**changes).returning(*categories.c))).mappings().one()
        except IntegrityError as error:
            if _unique_violation(error):
                raise Conflict("a category of that name already exists there") from error
            raise
        return dict(row)

    async def delete_category(self, category_id: int) -> None:
        async with self.database.writes() as session, session.begin():
            await session.execute(select(func.pg_advisory_xact_lock(CATEGORY_TREE_LOCK)))
            if (await session.execute(select(categories.c.id).where(
                    categories.c.id == category_id))).scalar_one_or_none() is None:
                raise NotFound(f"category {category_id} does not exist")
            if (await session.execute(select(exists().where(
                    categories.c.parent_id == category_id)))).scalar_one():
                raise Conflict(f"category {category_id} has subcategories; move or delete "
                               f"them first")
            if (await session.execute(select(exists().where(
                    products.c.category_id == category_id)))).scalar_one():
                raise Conflict(f"category {category_id} still has products (some may be "
                               f"deleted ones, kept for their reviews and orders)")
            await session.execute(delete(categories).where(categories.c.id == category_id))

    async def _category_exists(self, session: AsyncSession, category_id: int) -> None:
        if (await session.execute(select(categories.c.id).where(
                categories.c.id == category_id))).scalar_one_or_none() is None:
            raise Invalid("categoryId", "exists", f"category {category_id} does not exist")

    # --- products -----------------------------------------------------------------------------

    async def create_product(self, values: Mapping[str, Any], authorise: Authorise
                             ) -> tuple[int, Changed]:
        async with self.database.writes() as session, session.begin():
            authorise(await self.store_owner(session, int(values["store_id"])))
            await self._category_exists(session, int(values["category_id"]))
            row = (await session.execute(insert(products).values(**values)
                                         .returning(*products.c))).mappings().one()
            await add_to_outbox(session, outbox, PRODUCT_EVENTS, str(row["id"]),
                                product_event(dict(row)))
        return int(row["id"]), Changed((int(row["id"]),), events=1)

    async def _product_for_update(self, session: AsyncSession, product_id: int) -> Row:
        row = (await session.execute(
            select(products, stores.c.owner_id)
            .join(stores, stores.c.id == products.c.store_id)
            .where(products.c.id == product_id, _not_deleted())
            .with_for_update(of=products))).mappings().one_or_none()
        if row is None:
            raise NotFound(f"product {product_id} does not exist")
        return dict(row)

    async def update_product(self, product_id: int, changes: Mapping[str, Any],
                             authorise: Authorise, reconcile: Reconcile) -> Changed:
        """Apply a seller's changes; ``reconcile(current, changes)`` gives the final values."""
        async with self.database.writes() as session, session.begin():
            current = await self._product_for_update(session, product_id)
            authorise(str(current["owner_id"]))
            if "store_id" in changes:
                authorise(await self.store_owner(session, int(changes["store_id"])))
            if "category_id" in changes:
                await self._category_exists(session, int(changes["category_id"]))
            values = reconcile(current, changes)
            if not values:
                return Changed()
            row: Row = dict((await session.execute(
                update(products).where(products.c.id == product_id)
                .values(**values, version=product_versions.next_value(),
                        updated_at=func.now())
                .returning(*products.c))).mappings().one())
            newsworthy = any(row[f] != current[f] for f in EVENT_FIELDS)
            if newsworthy:
                await add_to_outbox(session, outbox, PRODUCT_EVENTS, str(product_id),
                                    product_event(row))
        return Changed((product_id,), events=int(newsworthy))

    async def delete_product(self, product_id: int, authorise: Authorise) -> Changed:
        """Soft delete: reviews and reservations keep pointing at the row; it is never shown."""
        async with self.database.writes() as session, session.begin():
            current = await self._product_for_update(session, product_id)
            authorise(str(current["owner_id"]))
            await session.execute(update(products).where(products.c.id == product_id).values(
                deleted_at=func.now(), version=product_versions.next_value(),
                updated_at=func.now()))
            await add_to_outbox(session, outbox, PRODUCT_EVENTS, str(product_id),
                                Event.new(PRODUCT_DELETED, {"productId": product_id}))
        return Changed((product_id,), events=1)

    async def product_owner(self, product_id: int) -> str:
        """Read on the writer: it guards a write, often right after the product was created,
        and the reader endpoint's standby may not have replayed that yet."""
        async with self.database.writes() as session:
            owner = (await session.execute(
                select(stores.c.owner_id).join(products, products.c.store_id == stores.c.id)
                .where(products.c.id == product_id, _not_deleted()))).scalar_one_or_none()
        if owner is None:
            raise NotFound(f"product {product_id} does not exist")
        return str(owner)

    async def product_detail(self, product_id: int, floor: int) -> tuple[Row, list[Row]] | None:
        """The product (with its store's name and owner) and its images, at least as fresh as
        ``floor``; None if it does not exist."""
        session, _ = await self._reading(floor)
        async with session:
            row = (await session.execute(
                select(products, stores.c.name.label("store_name"), stores.c.owner_id)
                .join(stores, stores.c.id == products.c.store_id)
                .where(products.c.id == product_id, _not_deleted()))).mappings().one_or_none()
            if row is None:
                return None
            images = (await session.execute(
                select(product_images).where(product_images.c.product_id == product_id)
                .order_by(product_images.c.position))).mappings().all()
        return dict(row), [dict(i) for i in images]

    async def products_page(self, query: ListQuery, floor: int
                            ) -> tuple[list[Row], int, dict[int, Row]]:
        """One public list page, its total, and each listed product's first image."""
        session, _ = await self._reading(floor)
        async with session:
            conditions: list[ColumnElement[bool]] = [
                _not_deleted(), products.c.status.in_([s.value for s in PUBLIC_STATUSES])]
            if query.store_id is not None:
                conditions.append(products.c.store_id == query.store_id)
            if query.category_id is not None:
                parents = {int(r.id): (None if r.parent_id is None else int(r.parent_id))
                           for r in await session.execute(
                               select(categories.c.id, categories.c.parent_id))}
                conditions.append(products.c.category_id.in_(
                    sorted(descendants(parents, query.category_id))))
            if query.q:
                pattern = "%" + query.q.replace("\\", "\\\\").replace("%", "\\%").replace(
                    "_", "\\_") + "%"
                conditions.append(or_(products.c.name.ilike(pattern),
                                      products.c.description.ilike(pattern)))
            if query.min_price is not None:
                conditions.append(products.c.price >= query.min_price)
            if query.max_price is not None:
                conditions.append(products.c.price <= query.max_price)
            where = and_(*conditions)
            listing: Select[Any] = select(products).where(where).order_by(
                *_ORDERS[query.sort], products.c.id.desc()
            ).offset(query.page * query.size).limit(query.size)
            rows: list[Row] = [dict(r) for r in (await session.execute(listing)).mappings()]
            total = int((await session.execute(
                select(func.count()).select_from(products).where(where))).scalar_one())
            first: dict[int, Row] = {}
            if rows:
                images = (await session.execute(
                    select(product_images)
                    .where(product_images.c.product_id.in_([r["id"] for r in rows]))
                    .order_by(product_images.c.product_id, product_images.c.position)
                )).mappings().all()
                for image in images:
                    first.setdefault(int(image["product_id"]), dict(image))
        return rows, total, first

    async def priced_products(self, product_ids: Sequence[int]) -> dict[int, PricedProduct]:
        """Today's price, stock and status of products (for carts); deleted ones are absent."""
        if not product_ids:
            return {}
        async with self.database.reads() as session:
            rows = (await session.execute(
                select(products.c.id, products.c.store_id, products.c.name, products.c.price,
                       products.c.stock, products.c.status)
                .where(products.c.id.in_(product_ids), _not_deleted()))).all()
        return {int(r.id): PricedProduct(int(r.id), int(r.store_id), str(r.name),
                                         int(r.price), int(r.stock), ProductStatus(r.status))
                for r in rows}

    # --- images -------------------------------------------------------------------------------

    async def add_image(self, product_id: int, image_id: str, key: str, content_type: str,
                        size: int, authorise: Authorise, max_images: int) -> tuple[Row, Changed]:
        async with self.database.writes() as session, session.begin():
            current = await self._product_for_update(session, product_id)
            authorise(str(current["owner_id"]))
            count, last = (await session.execute(
                select(func.count(), func.coalesce(func.max(product_images.c.position), -1))
                .where(product_images.c.product_id == product_id))).one()
            if count >= max_images:
                raise Invalid("file", "max_images",
                              f"a product has at most {max_images} images")
            row = (await session.execute(insert(product_images).values(
                id=image_id, product_id=product_id, object_key=key, content_type=content_type,
                size_bytes=size, position=int(last) + 1).returning(*product_images.c)
            )).mappings().one()
            await self._touch(session, product_id)
        return dict(row), Changed((product_id,))

    async def image(self, product_id: int, image_id: str) -> Row | None:
        async with self.database.reads() as session:
            row = (await session.execute(
                select(product_images, products.c.status, stores.c.owner_id)
                .join(products, products.c.id == product_images.c.product_id)
                .join(stores, stores.c.id == products.c.store_id)
                .where(product_images.c.id == image_id,
                       product_images.c.product_id == product_id, _not_deleted())
            )).mappings().one_or_none()
        return None if row is None else dict(row)

    async def remove_image(self, product_id: int, image_id: str,
                           authorise: Authorise) -> tuple[str, Changed]:
        async with self.database.writes() as session, session.begin():
            current = await self._product_for_update(session, product_id)
            authorise(str(current["owner_id"]))
            key = (await session.execute(
                delete(product_images).where(product_images.c.id == image_id,
                                             product_images.c.product_id == product_id)
                .returning(product_images.c.object_key))).scalar_one_or_none()
            if key is None:
                raise NotFound(f"product {product_id} has no image {image_id}")
            await self._touch(session, product_id)
        return str(key), Changed((product_id,))

    @staticmethod
    async def _touch(session: AsyncSession, product_id: int) -> None:
        """A new version for a product whose page changed without its own columns changing."""
        await session.execute(update(products).where(products.c.id == product_id).values(
            version=product_versions.next_value(), updated_at=func.now()))

    # --- reviews ------------------------------------------------------------------------------

    async def create_review(self, user_id: str, product_id: int, order_id: str, rating: int,
                            body: str) -> tuple[Row, Changed]:
        delta = RatingDelta.added(rating)
        try:
            async with self.database.writes() as session, session.begin():
                await self._product_for_update(session, product_id)
                bought = (await session.execute(select(exists().where(
                    reservations.c.order_id == order_id,
                    reservations.c.user_id == user_id,
                    reservations.c.status == ReservationStatus.HELD.value,
                    reservation_lines.c.order_id == reservations.c.order_id,
                    reservation_lines.c.product_id == product_id)))).scalar_one()
                if not bought:
                    raise Invalid("orderId", "ordered_product",
                                  f"order {order_id} of yours has no line for product "
                                  f"{product_id} (or it was cancelled)")
                row = (await session.execute(insert(reviews).values(
                    product_id=product_id, order_id=order_id, user_id=user_id, rating=rating,
                    body=body).returning(*reviews.c))).mappings().one()
                await self._rate(session, product_id, delta)
        except IntegrityError as error:
            if _unique_violation(error):
                raise Conflict(f"you already reviewed product {product_id} of order "
                               f"{order_id}") from error
            raise
        return dict(row), Changed((product_id,))

    async def update_review(self, review_id: int, changes: Mapping[str, Any],
                            authorise: Authorise) -> tuple[Row, Changed]:
        async with self.database.writes() as session, session.begin():
            current = await self._review_for_update(session, review_id)
            authorise(str(current["user_id"]))
            if not changes:
                return dict(current), Changed()
            row = (await session.execute(
                update(reviews).where(reviews.c.id == review_id)
                .values(**changes, updated_at=func.now()).returning(*reviews.c)
            )).mappings().one()
            if "rating" in changes:
                await self._rate(session, int(current["product_id"]),
                                 RatingDelta.changed(int(current["rating"]),
                                                     int(changes["rating"])))
        return dict(row), Changed((int(current["product_id"]),))

    async def delete_review(self, review_id: int, authorise: Authorise) -> Changed:
        async with self.database.writes() as session, session.begin():
            current = await self._review_for_update(session, review_id)
            authorise(str(current["user_id"]))
            await session.execute(delete(reviews).where(reviews.c.id == review_id))
            await self._rate(session, int(current["product_id"]),
                             RatingDelta.removed(int(current["rating"])))
        return Changed((int(current["product_id"]),))

    @staticmethod
    async def _review_for_update(session: AsyncSession, review_id: int) -> Row:
        row = (await session.execute(select(reviews).where(reviews.c.id == review_id)
                                     .with_for_update())).mappings().one_or_none()
        if row is None:
            raise NotFound(f"review {review_id} does not exist")
        return dict(row)

    @staticmethod
    async def _rate(session: AsyncSession, product_id: int, delta: RatingDelta) -> None:
        """Apply a rating delta in place (the row lock orders concurrent reviews)."""
        await session.execute(update(products).where(products.c.id == product_id).values(
            rating_count=products.c.rating_count + delta.count,
            rating_sum=products.c.rating_sum + delta.sum,
            version=product_versions.next_value(), updated_at=func.now()))

    async def review(self, review_id: int) -> Row | None:
        async with self.database.reads() as session:
            row = (await session.execute(select(reviews).where(reviews.c.id == review_id))
                   ).mappings().one_or_none()
        return None if row is None else dict(row)

    async def reviews_page(self, product_id: int | None, user_id: str | None, page: int,
                           size: int) -> tuple[list[Row], int]:
        conditions: list[ColumnElement[bool]] = []
        if product_id is not None:
            conditions.append(reviews.c.product_id == product_id)
        if user_id is not None:
            conditions.append(reviews.c.user_id == user_id)
        where = and_(true(), *conditions)
        async with self.database.reads() as session:
            rows = (await session.execute(
                select(reviews).where(where)
                .order_by(reviews.c.created_at.desc(), reviews.c.id.desc())
                .offset(page * size).limit(size))).mappings().all()
            total = (await session.execute(select(func.count()).select_from(reviews)
                                           .where(where))).scalar_one()
        return [dict(r) for r in rows], int(total)

    # --- stock reservations -------------------------------------------------------------------

    async def reserve(self, order_id: str, user_id: str | None, wanted: tuple[Wanted, ...]
                      ) -> tuple[Reservation, Changed]:
        """Take every line's quantity or none (StockShortage names the first short product)."""
        async with self.database.writes() as session, session.begin():
            created = (await session.execute(
                pg_insert(reservations).values(order_id=order_id, user_id=user_id,
                                               status=ReservationStatus.HELD.value)
                .on_conflict_do_nothing(index_elements=["order_id"])
                .returning(reservations.c.order_id))).scalar_one_or_none()
            if created is None:
                existing = await self._reservation(session, order_id, lock=True)
                assert existing is not None
                check_replay(order_id, existing.status,
                             {int(line["product_id"]): int(line["quantity"])
                              for line in existing.lines}, wanted)
                return Reservation(existing.order_id, existing.user_id, existing.status,
                                   existing.lines, replayed=True), Changed()
            changed: list[int] = []
            events = 0
            for item in wanted:  # sorted by product id: the lock order
                row = (await session.execute(
                    select(products).where(products.c.id == item.product_id, _not_deleted())
                    .with_for_update())).mappings().one_or_none()
                if row is None:
                    raise StockShortage(item.product_id, item.quantity, 0, "no such product")
                status = ProductStatus(row["status"])
                if status is not ProductStatus.ACTIVE:
                    raise StockShortage(item.product_id, item.quantity, 0,
                                        f"not for sale ({status.value})")
                if row["stock"] < item.quantity:
                    raise StockShortage(item.product_id, item.quantity, int(row["stock"]),
                                        "not enough stock")
                stock = int(row["stock"]) - item.quantity
                new_status = status_after_stock(status, stock)
                await session.execute(update(products).where(products.c.id == item.product_id)
                                      .values(stock=stock, status=new_status.value,
                                              version=product_versions.next_value(),
                                              updated_at=func.now()))
                await session.execute(insert(reservation_lines).values(
                    order_id=order_id, product_id=item.product_id, quantity=item.quantity,
                    unit_price=row["price"]))
                changed.append(item.product_id)
                if new_status is not status:
                    events += 1
                    await add_to_outbox(session, outbox, PRODUCT_EVENTS, str(item.product_id),
                                        product_event({**dict(row), "status": new_status.value}))
            reservation = await self._reservation(session, order_id)
            assert reservation is not None
        return reservation, Changed(tuple(changed), events)

    async def release(self, order_id: str) -> tuple[Reservation, Changed]:
        """Give a reservation's stock back, once; an unknown order id is recorded as released,
        so that a late reserve for it (a retry that lost the race) cannot take stock."""
        async with self.database.writes() as session, session.begin():
            tombstone = (await session.execute(
                pg_insert(reservations).values(order_id=order_id, user_id=None,
                                               status=ReservationStatus.RELEASED.value,
                                               released_at=func.now())
                .on_conflict_do_nothing(index_elements=["order_id"])
                .returning(reservations.c.order_id))).scalar_one_or_none()
            existing = await self._reservation(session, order_id, lock=True)
            assert existing is not None
            if existing.status is ReservationStatus.RELEASED:
                return replace(existing, replayed=tombstone is None), Changed()
            changed: list[int] = []
            events = 0
            for line in sorted(existing.lines, key=lambda item: int(item["product_id"])):
                product_id = int(line["product_id"])
                row = (await session.execute(select(products).where(products.c.id == product_id)
                                             .with_for_update())).mappings().one()
                stock = int(row["stock"]) + int(line["quantity"])
                status = ProductStatus(row["status"])
                new_status = status_after_stock(status, stock)
                await session.execute(update(products).where(products.c.id == product_id)
                                      .values(stock=stock, status=new_status.value,
                                              version=product_versions.next_value(),
                                              updated_at=func.now()))
                changed.append(product_id)
                if new_status is not status and row["deleted_at"] is None:
                    events += 1
                    await add_to_outbox(session, outbox, PRODUCT_EVENTS, str(product_id),
                                        product_event({**dict(row), "status": new_status.value}))
            await session.execute(update(reservations).where(reservations.c.order_id == order_id)
                                  .values(status=ReservationStatus.RELEASED.value,
                                          released_at=func.now()))
            released = await self._reservation(session, order_id)
            assert released is not None
        return released, Changed(tuple(changed), events)

    async def reservation(self, order_id: str) -> Reservation | None:
        async with self.database.writes() as session:
            return await self._reservation(session, order_id)

    @staticmethod
    async def _reservation(session: AsyncSession, order_id: str, *,
                           lock: bool = False) -> Reservation | None:
        query = select(reservations).where(reservations.c.order_id == order_id)
        head = (await session.execute(query.with_for_update() if lock else query)
                ).mappings().one_or_none()
        if head is None:
            return None
        lines = (await session.execute(
            select(reservation_lines.c.product_id, reservation_lines.c.quantity,
                   reservation_lines.c.unit_price, products.c.store_id, products.c.name)
            .join(products, products.c.id == reservation_lines.c.product_id)
            .where(reservation_lines.c.order_id == order_id)
            .order_by(reservation_lines.c.product_id))).mappings().all()
        return Reservation(str(head["order_id"]), head["user_id"],
                           ReservationStatus(head["status"]), tuple(dict(r) for r in lines))


_ORDERS: dict[Sort, tuple[ColumnElement[Any], ...]] = {
    Sort.NEWEST: (products.c.created_at.desc(),),
    Sort.PRICE_ASC: (products.c.price.asc(),),
    Sort.PRICE_DESC: (products.c.price.desc(),),
    Sort.RATING: ((products.c.rating_sum * 1.0 / func.nullif(products.c.rating_count, 0))
                  .desc().nulls_last(), products.c.rating_count.desc()),
}

