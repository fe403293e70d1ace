"""Request and response bodies of the product service (JSON in camelCase, as every service).

Money is an integer number of KRW. Limits here are the ones a client can read in the OpenAPI
document; breaking one is a 422 naming the field and the rule.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from services.common.errors import Invalid
from services.common.schemas import ApiModel
from services.product.domain.catalogue import CategoryNode

MAX_PRICE = 10_000_000_000  # KRW; keeps totals far inside 64 bits
MAX_STOCK = 1_000_000
Id = int


Body = ApiModel


class StrictBody(ApiModel):
    """A request body: unknown fields are refused (a typo must not be silently ignored)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True,
                              extra="forbid")


def changes(patch: BaseModel, nullable: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields a PATCH body set; ``null`` only where it means something (e.g. parentId)."""
    values = patch.model_dump(exclude_unset=True)
    for name, value in values.items():
        if value is None and name not in nullable:
            raise Invalid(to_camel(name), "not_null", f"{to_camel(name)} cannot be null")
    return values


class Paged(Body):
    page: int
    size: int
    total: int


# --- stores -----------------------------------------------------------------------------------

class StoreIn(StrictBody):
    name: str = Field(min_length=1, max_length=120)
    description: str = Field("", max_length=2000)


class StorePatch(StrictBody):
    name: str | None = Field(None, min_length=1, max_length=120)
    description: str | None = Field(None, max_length=2000)


class DeliveryPolicyIn(StrictBody):
    fee: int = Field(ge=0, le=1_000_000, description="KRW per order and store")
    free_over: int | None = Field(None, gt=0, le=MAX_PRICE,
                                  description="a store subtotal from which delivery is free")
    lead_days: int = Field(ge=0, le=60, description="working days until delivery")


class DeliveryPolicyOut(Body):
    store_id: Id
    fee: int
    free_over: int | None
    lead_days: int


class StoreOut(Body):
    id: Id
    owner_id: str
    name: str
    description: str
    delivery_policy: DeliveryPolicyOut | None
    created_at: datetime
    updated_at: datetime


class StorePage(Paged):
    items: list[StoreOut]


# --- categories -------------------------------------------------------------------------------

class CategoryIn(StrictBody):
    name: str = Field(min_length=1, max_length=80)
    parent_id: Id | None = None
    position: int = Field(0, ge=0, le=10_000)


class CategoryPatch(StrictBody):
    """Fields left out stay as they are; ``parentId: null`` moves the category to the top."""

    name: str | None = Field(None, min_length=1, max_length=80)
    parent_id: Id | None = None
    position: int | None = Field(None, ge=0, le=10_000)


class CategoryRef(Body):
    id: Id
    name: str


class CategoryOut(Body):
    id: Id
    name: str
    parent_id: Id | None
    position: int
    children: list[CategoryOut]

    @classmethod
    def of(cls, node: CategoryNode) -> CategoryOut:
        return cls(id=node.id, name=node.name, parent_id=node.parent_id, position=node.position,
                   children=[cls.of(child) for child in node.children])


class CategoryDetail(CategoryOut):
    path: list[CategoryRef] = Field(description="from the root down to the parent")


# --- products ---------------------------------------------------------------------------------

Settable = Literal["ACTIVE", "HIDDEN"]


class ProductIn(StrictBody):
    store_id: Id
    category_id: Id
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    price: int = Field(ge=0, le=MAX_PRICE, description="KRW")
    stock: int = Field(ge=0, le=MAX_STOCK)
    status: Settable = "ACTIVE"


class ProductPatch(StrictBody):
    store_id: Id | None = None
    category_id: Id | None = None
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    price: int | None = Field(None, ge=0, le=MAX_PRICE)
    stock: int | None = Field(None, ge=0, le=MAX_STOCK)
    status: Settable | None = Field(None, description="SOLD_OUT follows the stock by itself")


class ImageOut(Body):
    id: str
    url: str
    content_type: str
    size_bytes: int


class RatingOut(Body):
    count: int
    average: float | None


class ProductOut(Body):
    id: Id
    store_id: Id
    store_name: str
    category_id: Id
    name: str
    description: str
    price: int
    stock: int
    status: Literal["ACTIVE", "HIDDEN", "SOLD_OUT"]
    rating: RatingOut
    images: list[ImageOut]
    version: int = Field(description="grows with every change (also an ETag)")
    created_at: datetime
    updated_at: datetime


class ProductSummary(Body):
    id: Id
    store_id: Id
    category_id: Id
    name: str
    price: int
    status: Literal["ACTIVE", "SOLD_OUT"]
    rating: RatingOut
    thumbnail_url: str | None


class ProductPage(Paged):
    items: list[ProductSummary]


class Created(Body):
    id: Id


# --- reviews ----------------------------------------------------------------------------------

class ReviewIn(StrictBody):
    product_id: Id
    order_id: str = Field(min_length=1, max_length=64)
    rating: int = Field(ge=1, le=5)
    body: str = Field("", max_length=2000)


class ReviewPatch(StrictBody):
    rating: int | None = Field(None, ge=1, le=5)
    body: str | None = Field(None, max_length=2000)


class ReviewOut(Body):
    id: Id
    product_id: Id
    order_id: str
    user_id: str
    rating: int
    body: str
    created_at: datetime
    updated_at: datetime


class ReviewPage(Paged):
    items: list[ReviewOut]


# --- cart -------------------------------------------------------------------------------------

class CartItemIn(StrictBody):
    product_id: Id
    quantity: int = Field(1, ge=1)


class CartQuantityIn(StrictBody):
    quantity: int = Field(ge=0, description="0 removes the line")


class CartLineOut(Body):
    product_id: Id
    store_id: Id
    name: str
    unit_price: int = Field(description="today's price (KRW)")
    quantity: int
    line_total: int
    status: str
    available: bool = Field(description="for sale now in this quantity; else in no total")


class StoreTotalOut(Body):
    store_id: Id
    subtotal: int
    delivery_fee: int
    lead_days: int


class CartOut(Body):
    user_id: str
    lines: list[CartLineOut]
    stores: list[StoreTotalOut]
    items_total: int
    delivery_total: int
    total: int
    item_count: int
    expires_in_seconds: int | None = Field(
        description="the cart is forgotten this long after its last change")


# --- stock reservations (internal) ------------------------------------------------------------

class ReservationItemIn(StrictBody):
    product_id: Id
    quantity: int = Field(ge=1, le=MAX_STOCK)


class ReservationIn(StrictBody):
    order_id: str = Field(min_length=1, max_length=64)
    user_id: str | None = Field(None, max_length=64)
    items: list[ReservationItemIn] = Field(min_length=1, max_length=100)


class ReservationLineOut(Body):
    product_id: Id
    store_id: Id
    name: str
    quantity: int
    unit_price: int = Field(description="the price when the stock was reserved (KRW)")
    line_total: int


class ReservationOut(Body):
    order_id: str
    user_id: str | None
    status: Literal["HELD", "RELEASED"]
    items: list[ReservationLineOut]
    stores: list[StoreTotalOut]
    items_total: int
    delivery_total: int
    total: int
    replayed: bool = Field(description="true when this order id had already reserved (or "
                                        "released) and nothing changed now")

