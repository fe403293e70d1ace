"""Members: email, argon2 password hash, profile, roles.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(as_uuid=False), primary_key=True),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text()),
        sa.Column("phone", sa.Text()),
        sa.Column("roles", postgresql.ARRAY(sa.Text()), nullable=False,
                  server_default=sa.text("'{customer}'")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.UniqueConstraint("email", name="users_email_key"),
        sa.CheckConstraint("roles <@ ARRAY['customer', 'seller', 'admin']::text[] "
                           "AND cardinality(roles) > 0", name="users_roles_known"),
    )


def downgrade() -> None:
    op.drop_table("users")
