"""What every service's ``migrations/env.py`` does: upgrade its own schema, online only.

Each service keeps Alembic revisions in ``services/<name>/migrations/versions`` and an
``env.py`` of two lines that calls :func:`run` with its metadata. The connection and the schema
come from `services.common.database.Database.migrate`, so the version table lives in the
service's schema and two services never share one.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Column, DateTime, MetaData, func

# Constraint and index names every service's tables get, so a migration can name what it
# alters and two services' schemas read alike.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def schema_metadata() -> MetaData:
    """The metadata of one service's tables, with the shared naming convention."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def timestamp_column(name: str) -> Column[object]:
    """``created_at``-style column: timestamptz, set by the database when the row is written
    (the writer's clock, the same for every task of every colour)."""
    return Column(name, DateTime(timezone=True), nullable=False, server_default=func.now())


def run(metadata: MetaData) -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("migrations run through Database.migrate(), which passes the "
                           "connection; offline (SQL script) mode is not supported")
    schema = config.attributes["schema"]
    context.configure(connection=connection, target_metadata=metadata,
                      version_table_schema=schema, include_schemas=False)
    with context.begin_transaction():
        context.run_migrations()
