"""The product service's use cases: what each route does, in one place, over its parts.

Routes call these methods; each write is one repository transaction, then — only after it
committed — the outbox relay is nudged (events) and the cache floors of the changed products are
raised (invalidation). Reads of product pages go through the page cache.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from services.common.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from services.common.identity import Caller
from services.product.api.schemas import (
    CartLineOut,
    CartOut,
    DeliveryPolicyOut,
    ImageOut,
    ProductOut,
    ProductPage,
    ProductSummary,
    RatingOut,
    ReservationLineOut,
    ReservationOut,
    StoreOut,
    StoreTotalOut,
)
from services.product.cache import (
    CachePolicy,
    Page,
    PageCache,
    Served,
    detail_keys,
    floors_of,
    list_keys,
)
from services.product.carts import CartStore
from services.product.domain import cart as cart_rules
from services.product.domain.catalogue import (
    ListQuery,
    ProductStatus,
    requested_status,
    status_after_stock,
)
from services.product.domain.images import EXTENSIONS, check_image
from services.product.domain.reviews import RatingAggregate
from services.product.domain.stock import Wanted, plan
from services.product.images import ImageStore
from services.product.repository import Changed, Repository, Reservation, Row
from services.product.settings import ProductOptions

log = logging.getLogger("services.product")


def may_change(caller: Caller, owner_id: str, what: str) -> None:
    """Only the owner (or an admin) changes a store, its products, a review: else 403."""
    if caller.user_id != owner_id and "admin" not in caller.roles:
        raise Forbidden(f"{what} belongs to another user")


def rating_of(row: Row) -> RatingOut:
    aggregate = RatingAggregate(int(row["rating_count"]), int(row["rating_sum"]))
    return RatingOut(count=aggregate.count, average=aggregate.average)


@dataclass
class Catalogue:
    repository: Repository
    cache: PageCache
    carts: CartStore
    images: ImageStore
    options: Callable[[], ProductOptions]  # the current settings (they refresh at run time)
    published: Callable[[], None] = lambda: None  # events committed: the relay publishes now

    async def _after(self, changed: Changed) -> None:
        """After a commit: publish its events soon, and make cached pages of it unreachable."""
        if changed.events:
            self.published()
        if changed.product_ids:
            try:
                lsn = await self.repository.writer_lsn()
            except Exception:  # the write committed; the page TTL bounds what is missed here
                log.exception("cannot read the writer LSN; cached pages of products %s stay "
                              "until their TTL", changed.product_ids)
                return
            await self.cache.invalidate(floors_of(changed.product_ids), lsn,
                                        self.options().cache.backoff_seconds)

    # --- stores -----------------------------------------------------------------------------

    async def create_store(self, caller: Caller, name: str, description: str) -> StoreOut:
        row = await self.repository.create_store(caller.user_id, name, description)
        return self.store_out({**row, "fee": None})

    async def store(self, store_id: int) -> StoreOut:
        row = await self.repository.store(store_id)
        if row is None:
            raise NotFound(f"store {store_id} does not exist")
        return self.store_out(row)

    async def update_store(self, caller: Caller, store_id: int,
                           changes: Mapping[str, Any]) -> StoreOut:
        row = await self.repository.update_store(
            store_id, changes, lambda owner: may_change(caller, owner, f"store {store_id}"))
        return self.store_out(row)

    @staticmethod
    def store_out(row: Row) -> StoreOut:
        policy = None if row.get("fee") is None else DeliveryPolicyOut(
            store_id=row["id"], fee=row["fee"], free_over=row["free_over"],
            lead_days=row["lead_days"])
        return StoreOut(id=row["id"], owner_id=row["owner_id"], name=row["name"],
                        description=row["description"], delivery_policy=policy,
                        created_at=row["created_at"], updated_at=row["updated_at"])

    async def put_delivery_policy(self, caller: Caller, store_id: int,
                                  policy: cart_rules.DeliveryPolicy) -> DeliveryPolicyOut:
        await self.repository.put_delivery_policy(
            store_id, policy, lambda owner: may_change(caller, owner, f"store {store_id}"))
        return DeliveryPolicyOut(store_id=store_id, fee=policy.fee, free_over=policy.free_over,
                                 lead_days=policy.lead_days)

    async def delivery_policy(self, store_id: int) -> DeliveryPolicyOut:
        row = await self.repository.delivery_policy(store_id)
        if row is None:
            raise NotFound(f"store {store_id} has no delivery policy (delivery is free)")
        return DeliveryPolicyOut(store_id=store_id, fee=row["fee"], free_over=row["free_over"],
                                 lead_days=row["lead_days"])

    # --- products: writes -------------------------------------------------------------------

    async def create_product(self, caller: Caller, values: Mapping[str, Any]) -> int:
        status = requested_status(ProductStatus(values["status"]), int(values["stock"]))
        product_id, changed = await self.repository.create_product(
            {**values, "status": status.value},
            lambda owner: may_change(caller, owner, f"store {values['store_id']}"))
        await self._after(changed)
        return product_id

    async def update_product(self, caller: Caller, product_id: int,
                             changes: Mapping[str, Any]) -> None:
        def reconcile(current: Row, asked: Mapping[str, Any]) -> dict[str, Any]:
            values = {k: v for k, v in asked.items() if current[k] != v}
            stock = int(values.get("stock", current["stock"]) or 0)
            if "status" in values:
                status = requested_status(ProductStatus(values["status"]), stock)
            else:
                status = status_after_stock(ProductStatus(current["status"]), stock)
            if status.value != current["status"]:
                values["status"] = status.value
            else:
                values.pop("status", None)
            return values

        changed = await self.repository.update_product(
            product_id, changes, lambda owner: may_change(caller, owner,
                                                          f"product {product_id}"),
            reconcile)
        await self._after(changed)

    async def delete_product(self, caller: Caller, product_id: int) -> None:
        changed = await self.repository.delete_product(
            product_id, lambda owner: may_change(caller, owner, f"product {product_id}"))
        await self._after(changed)

    # --- products: cached pages -------------------------------------------------------------

    def _policy(self, ttl_s: float) -> CachePolicy:
        cache = self.options().cache
        return CachePolicy(ttl_s=ttl_s, stale_s=cache.stale_seconds, lock_ms=cache.lock_ms,
                           wait_ms=cache.wait_ms, backoff_s=cache.backoff_seconds)

    async def product_page(self, product_id: int, caller: Caller | None) -> Served:
        """The detail page; a HIDDEN product only for its owner and admins (404 for others)."""
        async def load(floor: int) -> Page | None:
            found = await self.repository.product_detail(product_id, floor)
            if found is None:
                return None
            row, images = found
            body = ProductOut(
                id=row["id"], store_id=row["store_id"], store_name=row["store_name"],
                category_id=row["category_id"], name=row["name"],
                description=row["description"], price=row["price"], stock=row["stock"],
                status=row["status"], rating=rating_of(row),
                images=[self.image_out(product_id, image) for image in images],
                version=row["version"], created_at=row["created_at"],
                updated_at=row["updated_at"])
            return Page(body.model_dump_json(by_alias=True),
                        {"owner": row["owner_id"], "status": row["status"],
                         "version": row["version"]})

        served = await self.cache.fetch("detail", *detail_keys(product_id),
                                        self._policy(self.options().cache.detail_ttl_seconds),
                                        load)
        if served is None:
            raise NotFound(f"product {product_id} does not exist")
        meta = served.page.meta
        if meta.get("status") == ProductStatus.HIDDEN.value and not (
                caller is not None and (caller.user_id == meta.get("owner")
                                        or "admin" in caller.roles)):
            raise NotFound(f"product {product_id} does not exist")
        return served

    async def product_list(self, query: ListQuery) -> Served:
        query = query.normalised()

        async def load(floor: int) -> Page:
            rows, total, first_images = await self.repository.products_page(query, floor)
            items = [ProductSummary(
                id=r["id"], store_id=r["store_id"], category_id=r["category_id"],
                name=r["name"], price=r["price"], status=r["status"], rating=rating_of(r),
                thumbnail_url=(self.image_out(int(r["id"]), first_images[int(r["id"])]).url
                               if int(r["id"]) in first_images else None))
                for r in rows]
            body = ProductPage(items=items, page=query.page, size=query.size, total=total)
            return Page(body.model_dump_json(by_alias=True))

        served = await self.cache.fetch("list", *list_keys(query.cache_key()),
                                        self._policy(self.options().cache.list_ttl_seconds),
                                        load)
        assert served is not None  # a list page always exists (maybe empty)
        return served

    # --- images -----------------------------------------------------------------------------

    def image_out(self, product_id: int, image: Row) -> ImageOut:
        images = self.options().images
        if images.public_base_url:
            url = f"{images.public_base_url.rstrip('/')}/{image['object_key']}"
        else:
            url = f"{images.route_prefix.rstrip('/')}/products/{product_id}/images/{image['id']}"
        return ImageOut(id=image["id"], url=url, content_type=image["content_type"],
                        size_bytes=image["size_bytes"])

    async def add_image(self, caller: Caller, product_id: int, declared_type: str | None,
                        data: bytes, size: int) -> ImageOut:
        """Check, store in S3, then record; a failed record leaves an orphan object, never a
        row pointing at nothing."""
        options = self.options().images
        content_type = check_image(declared_type, data[:16], size, options.content_types,
                                   options.max_bytes)
        may_change(caller, await self.repository.product_owner(product_id),
                   f"product {product_id}")
        image_id = uuid.uuid4().hex
        key = f"{options.key_prefix}/{product_id}/{image_id}.{EXTENSIONS[content_type]}"
        await self.images.put(key, data, content_type)
        try:
            row, changed = await self.repository.add_image(
                product_id, image_id, key, content_type, size,
                lambda owner: may_change(caller, owner, f"product {product_id}"),
                options.max_per_product)
        except Exception:
            await self._forget_object(key)
            raise
        await self._after(changed)
        return self.image_out(product_id, row)

    async def remove_image(self, caller: Caller, product_id: int, image_id: str) -> None:
        key, changed = await self.repository.remove_image(
            product_id, image_id, lambda owner: may_change(caller, owner,
                                                           f"product {product_id}"))
        await self._after(changed)
        await self._forget_object(key)

    async def _forget_object(self, key: str) -> None:
        """Deleting the object is tidying: the bucket is versioned and has a lifecycle rule."""
        try:
            await self.images.delete(key)
        except Unavailable:
            log.warning("image object %s was left in the bucket", key)

    async def image_object(self, product_id: int, image_id: str, caller: Caller | None) -> Row:
        row = await self.repository.image(product_id, image_id)
        hidden = row is not None and row["status"] == ProductStatus.HIDDEN.value and not (
            caller is not None and (caller.user_id == row["owner_id"]
                                    or "admin" in caller.roles))
        if row is None or hidden:
            raise NotFound(f"product {product_id} has no image {image_id}")
        return row

    # --- reviews ----------------------------------------------------------------------------

    def _reviews_on(self) -> None:
        if not self.options().reviews_enabled:
            raise Unavailable("reviews are switched off (product.reviews-enabled)")

    async def create_review(self, caller: Caller, product_id: int, order_id: str,
                            rating: int, body: str) -> Row:
        self._reviews_on()
        row, changed = await self.repository.create_review(caller.user_id, product_id,
                                                           order_id, rating, body)
        await self._after(changed)
        return row

    async def update_review(self, caller: Caller, review_id: int,
                            changes: Mapping[str, Any]) -> Row:
        self._reviews_on()
        row, changed = await self.repository.update_review(
            review_id, changes, lambda author: may_change(caller, author, f"review {review_id}"))
        await self._after(changed)
        return row

    async def delete_review(self, caller: Caller, review_id: int) -> None:
        self._reviews_on()
        changed = await self.repository.delete_review(
            review_id, lambda author: may_change(caller, author, f"review {review_id}"))
        await self._after(changed)

    # --- cart -------------------------------------------------------------------------------

    async def cart(self, user_id: str) -> CartOut:
        """The cart at today's prices; lines of products deleted since are dropped."""
        quantities, ttl = await self.carts.read(user_id)
        products = await self.repository.priced_products(sorted(quantities))
        store_ids = sorted({p.store_id for p in products.values()})
        policies = await self.repository.delivery_policies_of(store_ids)
        priced = cart_rules.price_cart(quantities, products, policies)
        if priced.missing:  # tidying only: the lines are not shown either way
            with contextlib.suppress(Unavailable):
                await self.carts.remove(user_id, list(priced.missing),
                                        self.options().cart.ttl_seconds)
        return self.cart_out(user_id, priced, ttl)

    @staticmethod
    def cart_out(user_id: str, priced: cart_rules.PricedCart, ttl: int | None) -> CartOut:
        return CartOut(
            user_id=user_id,
            lines=[CartLineOut(product_id=line.product_id, store_id=line.store_id,
                               name=line.name, unit_price=line.unit_price,
                               quantity=line.quantity, line_total=line.line_total,
                               status=line.status.value, available=line.available)
                   for line in priced.lines],
            stores=[StoreTotalOut(store_id=s.store_id, subtotal=s.subtotal,
                                  delivery_fee=s.delivery_fee, lead_days=s.lead_days)
                    for s in priced.stores],
            items_total=priced.items_total, delivery_total=priced.delivery_total,
            total=priced.total, item_count=priced.item_count, expires_in_seconds=ttl)

    async def _purchasable(self, product_id: int, quantity: int) -> None:
        product = (await self.repository.priced_products([product_id])).get(product_id)
        if product is None:
            raise Invalid("productId", "exists", f"product {product_id} does not exist")
        if product.status is not ProductStatus.ACTIVE:
            raise Conflict(f"product {product_id} is not for sale ({product.status.value})")
        if product.stock < quantity:
            raise Conflict(f"product {product_id}: only {product.stock} in stock")

    async def add_to_cart(self, user_id: str, product_id: int, quantity: int) -> CartOut:
        options = self.options().cart
        quantities, _ = await self.carts.read(user_id)
        cart_rules.check_room(len(quantities), product_id in quantities, options.max_lines)
        total = cart_rules.added(quantities.get(product_id, 0), quantity, options.max_quantity)
        await self._purchasable(product_id, total)
        await self.carts.set_quantity(user_id, product_id, total, options.ttl_seconds)
        return await self.cart(user_id)

    async def set_cart_quantity(self, user_id: str, product_id: int, quantity: int) -> CartOut:
        options = self.options().cart
        if quantity == 0:
            await self.carts.remove(user_id, [product_id], options.ttl_seconds)
            return await self.cart(user_id)
        cart_rules.check_quantity(quantity, options.max_quantity)
        quantities, _ = await self.carts.read(user_id)
        cart_rules.check_room(len(quantities), product_id in quantities, options.max_lines)
        await self._purchasable(product_id, quantity)
        await self.carts.set_quantity(user_id, product_id, quantity, options.ttl_seconds)
        return await self.cart(user_id)

    async def remove_from_cart(self, user_id: str, product_id: int) -> CartOut:
        await self.carts.remove(user_id, [product_id], self.options().cart.ttl_seconds)
        return await self.cart(user_id)

    async def clear_cart(self, user_id: str) -> None:
        await self.carts.clear(user_id)

    # --- stock reservations -----------------------------------------------------------------

    async def reserve(self, order_id: str, user_id: str | None,
                      items: list[Wanted]) -> ReservationOut:
        reservation, changed = await self.repository.reserve(order_id, user_id, plan(items))
        await self._after(changed)
        return await self.reservation_out(reservation)

    async def release(self, order_id: str) -> ReservationOut:
        reservation, changed = await self.repository.release(order_id)
        await self._after(changed)
        return await self.reservation_out(reservation)

    async def reservation(self, order_id: str) -> ReservationOut:
        found = await self.repository.reservation(order_id)
        if found is None:
            raise NotFound(f"order {order_id} has no reservation")
        return await self.reservation_out(found)

    async def reservation_out(self, reservation: Reservation) -> ReservationOut:
        lines = reservation.lines
        policies = await self.repository.delivery_policies_of(
            sorted({int(line["store_id"]) for line in lines}))
        stores = cart_rules.store_totals(
            ((int(line["store_id"]), int(line["unit_price"]) * int(line["quantity"]))
             for line in lines), policies)
        items_total = sum(s.subtotal for s in stores)
        delivery_total = sum(s.delivery_fee for s in stores)
        return ReservationOut(
            order_id=reservation.order_id, user_id=reservation.user_id,
            status=reservation.status.value,
            items=[ReservationLineOut(product_id=line["product_id"], store_id=line["store_id"],
                                      name=line["name"], quantity=line["quantity"],
                                      unit_price=line["unit_price"],
                                      line_total=int(line["unit_price"]) * int(line["quantity"]))
                   for line in lines],
            stores=[StoreTotalOut(store_id=s.store_id, subtotal=s.subtotal,
                                  delivery_fee=s.delivery_fee, lead_days=s.lead_days)
                    for s in stores],
            items_total=items_total, delivery_total=delivery_total,
            total=items_total + delivery_total, replayed=reservation.replayed)
