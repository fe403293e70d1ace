"""The product service's tables (schema ``product_service``; the search path puts them there).

Money is an integer number of KRW everywhere (no fractions exist in the currency). Every change
to a product takes a new ``version`` from one sequence, so versions grow across all products:
the cache layer compares them to tell a fresh database read from a lagging replica's.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Sequence,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from services.common.events import outbox_table
from services.common.migrations import schema_metadata, timestamp_column

metadata = schema_metadata()

product_versions = Sequence("product_versions", metadata=metadata)



stores = Table(
    "stores", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("owner_id", String(64), nullable=False, index=True),
    Column("name", String(120), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    timestamp_column("created_at"), timestamp_column("updated_at"),
)

delivery_policies = Table(
    "delivery_policies", metadata,
    Column("store_id", BigInteger, ForeignKey("stores.id", ondelete="CASCADE"),
           primary_key=True),
    Column("fee", BigInteger, nullable=False),
    Column("free_over", BigInteger, nullable=True),  # order subtotal from which delivery is free
    Column("lead_days", Integer, nullable=False),
    timestamp_column("updated_at"),
    CheckConstraint("fee >= 0", name="fee"),
    CheckConstraint("free_over IS NULL OR free_over > 0", name="free_over"),
    CheckConstraint("lead_days BETWEEN 0 AND 60", name="lead_days"),
)

categories = Table(
    "categories", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("parent_id", BigInteger, ForeignKey("categories.id"), nullable=True, index=True),
    Column("name", String(80), nullable=False),
    Column("position", Integer, nullable=False, server_default="0"),
    timestamp_column("created_at"),
    # Two roots may not share a name either: NULLS NOT DISTINCT (PostgreSQL 15).
    UniqueConstraint("parent_id", "name", postgresql_nulls_not_distinct=True),
)

products = Table(
    "products", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("store_id", BigInteger, ForeignKey("stores.id"), nullable=False, index=True),
    Column("category_id", BigInteger, ForeignKey("categories.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("price", BigInteger, nullable=False),
    Column("stock", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("rating_count", Integer, nullable=False, server_default="0"),
    Column("rating_sum", BigInteger, nullable=False, server_default="0"),
    Column("version", BigInteger, product_versions, nullable=False,
           server_default=product_versions.next_value()),
    timestamp_column("created_at"), timestamp_column("updated_at"),
    Column("deleted_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("price >= 0", name="price"),
    CheckConstraint("stock >= 0", name="stock"),
    CheckConstraint("status IN ('ACTIVE', 'HIDDEN', 'SOLD_OUT')", name="status"),
    CheckConstraint("rating_count >= 0 AND rating_sum BETWEEN rating_count AND 5 * rating_count",
                    name="rating"),
    Index("ix_products_listing", "status", "created_at"),
)

product_images = Table(
    "product_images", metadata,
    Column("id", String(32), primary_key=True),
    Column("product_id", BigInteger, ForeignKey("products.id"), nullable=False, index=True),
    Column("object_key", String(300), nullable=False, unique=True),
    Column("content_type", String(64), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    timestamp_column("created_at"),
)

reviews = Table(
    "reviews", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("product_id", BigInteger, ForeignKey("products.id"), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False, index=True),
    Column("rating", SmallInteger, nullable=False),
    Column("body", Text, nullable=False, server_default=""),
    timestamp_column("created_at"), timestamp_column("updated_at"),
    # One review per order line: the same user cannot review the same order's product twice.
    UniqueConstraint("order_id", "product_id", "user_id"),
    CheckConstraint("rating BETWEEN 1 AND 5", name="rating"),
    Index("ix_reviews_product_created", "product_id", "created_at"),
)

reservations = Table(
    "reservations", metadata,
    Column("order_id", String(64), primary_key=True),
    Column("user_id", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    timestamp_column("created_at"),
    Column("released_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("status IN ('HELD', 'RELEASED')", name="status"),
)

reservation_lines = Table(
    "reservation_lines", metadata,
    Column("order_id", String(64), ForeignKey("reservations.order_id"), primary_key=True),
    Column("product_id", BigInteger, ForeignKey("products.id"), primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", BigInteger, nullable=False),  # the price when the stock was reserved
    CheckConstraint("quantity > 0", name="quantity"),
)

outbox = outbox_table(metadata)
