"""The order service's tables (schema ``order_service``; the search path puts them there).

Money is an integer number of KRW. An order keeps copies of what may change later — each
line's name and price, the delivery address — so its history never moves under it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from services.common.events import outbox_table, processed_events_table
from services.common.migrations import schema_metadata, timestamp_column

metadata = schema_metadata()

ORDER_STATUSES = "('PENDING_PAYMENT', 'PAID', 'PAYMENT_FAILED', 'REFUND_REQUESTED', 'REFUNDED')"



addresses = Table(
    "addresses", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("user_id", String(64), nullable=False, index=True),
    Column("recipient", String(60), nullable=False),
    Column("phone", String(20), nullable=False),
    Column("postal_code", String(10), nullable=False),
    Column("line1", String(200), nullable=False),
    Column("line2", String(200), nullable=False, server_default=""),
    timestamp_column("created_at"), timestamp_column("updated_at"),
)

coupons = Table(
    "coupons", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("code", String(32), nullable=False, unique=True),
    Column("discount_type", String(8), nullable=False),
    Column("discount_value", BigInteger, nullable=False),
    Column("max_discount", BigInteger, nullable=True),
    Column("min_amount", BigInteger, nullable=False),
    Column("valid_until", DateTime(timezone=True), nullable=False),
    Column("one_per_user", Boolean, nullable=False),
    Column("total_limit", Integer, nullable=True),
    Column("redeemed_count", Integer, nullable=False, server_default="0"),
    Column("issued_by", String(64), nullable=False),
    timestamp_column("created_at"),
    CheckConstraint("discount_type IN ('FIXED', 'PERCENT')", name="discount_type"),
    CheckConstraint("discount_value > 0", name="discount_value"),
    CheckConstraint("discount_type = 'FIXED' OR discount_value <= 100", name="percent"),
    CheckConstraint("min_amount >= 0", name="min_amount"),
    CheckConstraint("total_limit IS NULL OR total_limit > 0", name="total_limit"),
    CheckConstraint("redeemed_count >= 0", name="redeemed_count"),
)

coupon_redemptions = Table(
    "coupon_redemptions", metadata,
    Column("coupon_id", BigInteger, ForeignKey("coupons.id"), primary_key=True),
    Column("order_id", String(32), primary_key=True),  # one redemption per order
    Column("user_id", String(64), nullable=False),
    Column("redeemed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_coupon_redemptions_coupon_user", "coupon_id", "user_id"),
)

orders = Table(
    "orders", metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("idempotency_key", String(100), nullable=False),
    Column("request_fingerprint", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("subtotal", BigInteger, nullable=False),
    Column("delivery_fee", BigInteger, nullable=False),
    Column("discount", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("coupon_code", String(32), nullable=True),
    Column("address", JSONB, nullable=False),
    Column("payment_id", String(64), nullable=True),
    Column("failure_reason", Text, nullable=True),
    timestamp_column("created_at"), timestamp_column("updated_at"),
    # A retried request finds its order; two requests with one key can never make two orders.
    UniqueConstraint("user_id", "idempotency_key"),
    CheckConstraint(f"status IN {ORDER_STATUSES}", name="status"),
    CheckConstraint("total = subtotal - discount + delivery_fee AND total >= 0", name="total"),
    Index("ix_orders_user_created", "user_id", "created_at"),
)

order_lines = Table(
    "order_lines", metadata,
    Column("order_id", String(32), ForeignKey("orders.id", ondelete="CASCADE"),
           primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("product_id", BigInteger, nullable=False),
    Column("name", String(200), nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    Column("quantity", Integer, nullable=False),
    CheckConstraint("unit_price >= 0", name="unit_price"),
    CheckConstraint("quantity > 0", name="quantity"),
)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
