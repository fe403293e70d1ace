"""What every service's ``migrations/env.py`` does: upgrade its own schema, online only.

Each service keeps Alembic revisions in ``services/<name>/migrations/versions`` and an
``env.py`` of two lines that calls :func:`run` with its metadata. The connection and the schema
come from `services.common.database.Database.migrate`, so the version table lives in the
service's schema and two services never share one.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData


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
