"""Product vectors, purchases, processed events.

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


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("product_vector_revision")))
    op.create_table(
        "product_vectors",
        sa.Column("product_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("store_id", sa.String(64), nullable=True),
        sa.Column("category_id", sa.String(64), nullable=True),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(100), nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=True),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
    )
    op.create_index("product_vectors_updated_at", "product_vectors", ["updated_at"])
    op.create_table(
        "purchases",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("product_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("purchased_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
    )
    op.create_index("purchases_user", "purchases", ["user_id", "purchased_at"])
    op.create_index("purchases_product", "purchases", ["product_id"])
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(32), primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("processed_events")
    op.drop_table("purchases")
    op.drop_table("product_vectors")
    op.execute(sa.schema.DropSequence(sa.Sequence("product_vector_revision")))
