"""Addresses, coupons and their redemptions, orders and their lines, outbox, processed events.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column[object]]:
    return [sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                      server_default=sa.func.now()),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                      server_default=sa.func.now())]


def upgrade() -> None:
    op.create_table(
        "addresses",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(60), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("postal_code", sa.String(10), nullable=False),
        sa.Column("line1", sa.String(200), nullable=False),
        sa.Column("line2", sa.String(200), nullable=False, server_default=""),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_addresses"),
    )
    op.create_index("ix_addresses_user_id", "addresses", ["user_id"])
    op.create_table(
        "coupons",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("discount_type", sa.String(8), nullable=False),
        sa.Column("discount_value", sa.BigInteger, nullable=False),
        sa.Column("max_discount", sa.BigInteger, nullable=True),
        sa.Column("min_amount", sa.BigInteger, nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("one_per_user", sa.Boolean, nullable=False),
        sa.Column("total_limit", sa.Integer, nullable=True),
        sa.Column("redeemed_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("issued_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_coupons"),
        sa.UniqueConstraint("code", name="uq_coupons_code"),
        sa.CheckConstraint("discount_type IN ('FIXED', 'PERCENT')",
                           name="ck_coupons_discount_type"),
        sa.CheckConstraint("discount_value > 0", name="ck_coupons_discount_value"),
        sa.CheckConstraint("discount_type = 'FIXED' OR discount_value <= 100",
                           name="ck_coupons_percent"),
        sa.CheckConstraint("min_amount >= 0", name="ck_coupons_min_amount"),
        sa.CheckConstraint("total_limit IS NULL OR total_limit > 0",
                           name="ck_coupons_total_limit"),
        sa.CheckConstraint("redeemed_count >= 0", name="ck_coupons_redeemed_count"),
    )
    op.create_table(
        "coupon_redemptions",
        sa.Column("coupon_id", sa.BigInteger, nullable=False),
        sa.Column("order_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("coupon_id", "order_id", name="pk_coupon_redemptions"),
        sa.ForeignKeyConstraint(["coupon_id"], ["coupons.id"],
                                name="fk_coupon_redemptions_coupon_id_coupons"),
    )
    op.create_index("ix_coupon_redemptions_coupon_user", "coupon_redemptions",
                    ["coupon_id", "user_id"])
    op.create_table(
        "orders",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(100), nullable=False),
        sa.Column("request_fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("subtotal", sa.BigInteger, nullable=False),
        sa.Column("delivery_fee", sa.BigInteger, nullable=False),
        sa.Column("discount", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("coupon_code", sa.String(32), nullable=True),
        sa.Column("address", JSONB, nullable=False),
        sa.Column("payment_id", sa.String(64), nullable=True),
        sa.Column("failure_reason", sa.Text, nullable=True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_orders_user_id_idempotency_key"),
        sa.CheckConstraint("status IN ('PENDING_PAYMENT', 'PAID', 'PAYMENT_FAILED', "
                           "'REFUND_REQUESTED', 'REFUNDED')", name="ck_orders_status"),
        sa.CheckConstraint("total = subtotal - discount + delivery_fee AND total >= 0",
                           name="ck_orders_total"),
    )
    op.create_index("ix_orders_user_created", "orders", ["user_id", "created_at"])
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.String(32), nullable=False),
        sa.Column("line_no", sa.Integer, nullable=False),
        sa.Column("product_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("unit_price", sa.BigInteger, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("order_id", "line_no", name="pk_order_lines"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE",
                                name="fk_order_lines_order_id_orders"),
        sa.CheckConstraint("unit_price >= 0", name="ck_order_lines_unit_price"),
        sa.CheckConstraint("quantity > 0", name="ck_order_lines_quantity"),
    )
    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
    )
    op.create_index("ix_outbox_published_at", "outbox", ["published_at"])
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("event_id", name="pk_processed_events"),
    )


def downgrade() -> None:
    for table in ("processed_events", "outbox", "order_lines", "orders", "coupon_redemptions",
                  "coupons", "addresses"):
        op.drop_table(table)
