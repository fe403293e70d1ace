"""Tables of the ``ai_service`` schema.

Vectors are stored as ``bytea`` (384 little-endian float32 = 1,536 bytes): PostgreSQL here has
no pgvector (no package for it on this machine), and the service searches an in-memory matrix
anyway, so the database only has to keep vectors, not search them. ``revision`` comes from one
sequence and grows with every change, so an instance can tell a newer row from one it applied.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    String,
    Table,
    Text,
    func,
)

from services.common.events import processed_events_table

metadata = MetaData()

revisions = Sequence("product_vector_revision", metadata=metadata)

product_vectors = Table(
    "product_vectors", metadata,
    Column("product_id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("status", String(32), nullable=False),
    Column("store_id", String(64), nullable=True),
    Column("category_id", String(64), nullable=True),
    Column("text_hash", String(64), nullable=False),
    Column("model_id", String(100), nullable=False),
    Column("vector", LargeBinary, nullable=True),  # null once the product is deleted
    Column("deleted", Boolean, nullable=False, server_default="false"),
    Column("revision", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("product_vectors_updated_at", "updated_at"),
)

purchases = Table(
    "purchases", metadata,
    Column("order_id", String(64), primary_key=True),
    Column("product_id", String(64), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("purchased_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("purchases_user", "user_id", "purchased_at"),
    Index("purchases_product", "product_id"),
)

processed_events = processed_events_table(metadata)
