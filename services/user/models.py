"""The user service's tables, in its own schema (``user_service``; see the migrations)."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    # Stored normalised (lower-case); the unique constraint is what makes sign-up race-free.
    Column("email", Text, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("display_name", Text),
    Column("phone", Text),
    Column("roles", ARRAY(Text), nullable=False, server_default=text("'{customer}'")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("roles <@ ARRAY['customer', 'seller', 'admin']::text[] "
                    "AND cardinality(roles) > 0", name="users_roles_known"),
)
