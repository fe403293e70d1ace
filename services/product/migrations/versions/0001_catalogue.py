"""Stores, delivery policies, categories, products, images, reviews, reservations, outbox.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _created() -> sa.Column[object]:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                     server_default=sa.func.now())


def _updated() -> sa.Column[object]:
    return sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                     server_default=sa.func.now())


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("product_versions")))
    op.create_table(
        "stores",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        _created(), _updated(),
        sa.PrimaryKeyConstraint("id", name="pk_stores"),
    )
    op.create_index("ix_stores_owner_id", "stores", ["owner_id"])
    op.create_table(
        "delivery_policies",
        sa.Column("store_id", sa.BigInteger, nullable=False),
        sa.Column("fee", sa.BigInteger, nullable=False),
        sa.Column("free_over", sa.BigInteger, nullable=True),
        sa.Column("lead_days", sa.Integer, nullable=False),
        _updated(),
        sa.PrimaryKeyConstraint("store_id", name="pk_delivery_policies"),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], ondelete="CASCADE",
                                name="fk_delivery_policies_store_id_stores"),
        sa.CheckConstraint("fee >= 0", name="ck_delivery_policies_fee"),
        sa.CheckConstraint("free_over IS NULL OR free_over > 0",
                           name="ck_delivery_policies_free_over"),
        sa.CheckConstraint("lead_days BETWEEN 0 AND 60", name="ck_delivery_policies_lead_days"),
    )
    op.create_table(
        "categories",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("parent_id", sa.BigInteger, nullable=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        _created(),
        sa.PrimaryKeyConstraint("id", name="pk_categories"),
        sa.ForeignKeyConstraint(["parent_id"], ["categories.id"],
                                name="fk_categories_parent_id_categories"),
        sa.UniqueConstraint("parent_id", "name", name="uq_categories_parent_id_name",
                            postgresql_nulls_not_distinct=True),
    )
    op.create_index("ix_categories_parent_id", "categories", ["parent_id"])
    op.create_table(
        "products",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("store_id", sa.BigInteger, nullable=False),
        sa.Column("category_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("stock", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rating_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rating_sum", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("version", sa.BigInteger, nullable=False,
                  server_default=sa.text("nextval('product_versions')")),
        _created(), _updated(),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
        sa.ForeignKeyConstraint(["store_id"], ["stores.id"], name="fk_products_store_id_stores"),
        sa.ForeignKeyConstraint(["category_id"], ["categories.id"],
                                name="fk_products_category_id_categories"),
        sa.CheckConstraint("price >= 0", name="ck_products_price"),
        sa.CheckConstraint("stock >= 0", name="ck_products_stock"),
        sa.CheckConstraint("status IN ('ACTIVE', 'HIDDEN', 'SOLD_OUT')",
                           name="ck_products_status"),
        sa.CheckConstraint(
            "rating_count >= 0 AND rating_sum BETWEEN rating_count AND 5 * rating_count",
            name="ck_products_rating"),
    )
    op.create_index("ix_products_store_id", "products", ["store_id"])
    op.create_index("ix_products_category_id", "products", ["category_id"])
    op.create_index("ix_products_listing", "products", ["status", "created_at"])
    op.create_table(
        "product_images",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("product_id", sa.BigInteger, nullable=False),
        sa.Column("object_key", sa.String(300), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        _created(),
        sa.PrimaryKeyConstraint("id", name="pk_product_images"),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"],
                                name="fk_product_images_product_id_products"),
        sa.UniqueConstraint("object_key", name="uq_product_images_object_key"),
    )
    op.create_index("ix_product_images_product_id", "product_images", ["product_id"])
    op.create_table(
        "reviews",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("product_id", sa.BigInteger, nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("rating", sa.SmallInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False, server_default=""),
        _created(), _updated(),
        sa.PrimaryKeyConstraint("id", name="pk_reviews"),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"],
                                name="fk_reviews_product_id_products"),
        sa.UniqueConstraint("order_id", "product_id", "user_id",
                            name="uq_reviews_order_id_product_id_user_id"),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="ck_reviews_rating"),
    )
    op.create_index("ix_reviews_product_created", "reviews", ["product_id", "created_at"])
    op.create_index("ix_reviews_user_id", "reviews", ["user_id"])
    op.create_table(
        "reservations",
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        _created(),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("order_id", name="pk_reservations"),
        sa.CheckConstraint("status IN ('HELD', 'RELEASED')", name="ck_reservations_status"),
    )
    op.create_table(
        "reservation_lines",
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("product_id", sa.BigInteger, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("order_id", "product_id", name="pk_reservation_lines"),
        sa.ForeignKeyConstraint(["order_id"], ["reservations.order_id"],
                                name="fk_reservation_lines_order_id_reservations"),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"],
                                name="fk_reservation_lines_product_id_products"),
        sa.CheckConstraint("quantity > 0", name="ck_reservation_lines_quantity"),
    )
    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("payload", sa.dialects.postgresql.JSONB, nullable=False),
        _created(),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
    )
    op.create_index("ix_outbox_published_at", "outbox", ["published_at"])


def downgrade() -> None:
    for table in ("outbox", "reservation_lines", "reservations", "reviews", "product_images",
                  "products", "categories", "delivery_policies", "stores"):
        op.drop_table(table)
    op.execute(sa.schema.DropSequence(sa.Sequence("product_versions")))
