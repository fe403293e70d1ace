"""The payment service's tables (schema ``payment_service``; the search path puts them there).

One payment per order and one refund per payment, enforced by unique keys: the last line of
defence against charging (or refunding) an order twice, after the processed-events record and
before the provider's idempotency key.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
)

from services.common.events import outbox_table, processed_events_table
from services.common.migrations import schema_metadata, timestamp_column

metadata = schema_metadata()



payments = Table(
    "payments", metadata,
    Column("id", String(32), primary_key=True),
    Column("order_id", String(64), nullable=False, unique=True),
    Column("user_id", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("provider_charge_id", String(100), nullable=True),
    Column("failure_reason", Text, nullable=True),
    timestamp_column("created_at"), timestamp_column("updated_at"),
    CheckConstraint("status IN ('PENDING', 'COMPLETED', 'FAILED', 'REFUNDED')", name="status"),
    CheckConstraint("amount >= 0", name="amount"),
    Index("ix_payments_user_created", "user_id", "created_at"),
    Index("ix_payments_pending", "updated_at", postgresql_where="status = 'PENDING'"),
)

refunds = Table(
    "refunds", metadata,
    Column("id", String(32), primary_key=True),
    Column("payment_id", String(32), ForeignKey("payments.id"), nullable=False, unique=True),
    Column("order_id", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("provider_refund_id", String(100), nullable=True),
    Column("failure_reason", Text, nullable=True),
    timestamp_column("created_at"), timestamp_column("updated_at"),
    CheckConstraint("status IN ('PENDING', 'COMPLETED', 'FAILED')", name="status"),
    Index("ix_refunds_pending", "updated_at", postgresql_where="status = 'PENDING'"),
)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
