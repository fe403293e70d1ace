"""PostgreSQL for a service: its own schema, writes on the writer, reads on the reader endpoint.

Both endpoints are libpq multi-host URLs (``host=writer,standby``): the writer one asks for
``target_session_attrs=read-write``, so after a failover a new connection finds the promoted
standby by itself; the reader one prefers a standby. Pools ping connections before use, so a
connection to a dead writer is replaced instead of failing a request.

Each service owns one schema of the shared database (its tables, its Alembic version table)
and migrates it at start, under an advisory lock so that two instances starting together do
not both run the same migration.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg import sql
from sqlalchemy import Connection, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

log = logging.getLogger("come2us.database")
T = TypeVar("T")

# A lost connection, raised by psycopg itself or wrapped by SQLAlchemy (engines wrap every
# DBAPI error, so work done through an engine raises the second).
FAILOVER_ERRORS = (psycopg.OperationalError, sqlalchemy.exc.OperationalError)


async def _connect(url: str, schema: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, options=f"-c search_path={schema},public")


def _connect_sync(url: str, schema: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, options=f"-c search_path={schema},public")


class Database:
    def __init__(self, writer_url: str, reader_url: str, schema: str, *,
                 pool_size: int = 5) -> None:
        self.writer_url = writer_url
        self.reader_url = reader_url
        self.schema = schema
        options = {"pool_pre_ping": True, "pool_size": pool_size, "max_overflow": pool_size,
                   "pool_recycle": 300}
        self.writer: AsyncEngine = create_async_engine(
            "postgresql+psycopg://", async_creator=partial(_connect, writer_url, schema),
            **options)
        self.reader: AsyncEngine = create_async_engine(
            "postgresql+psycopg://", async_creator=partial(_connect, reader_url, schema),
            **options)
        self.writes = async_sessionmaker(self.writer, expire_on_commit=False)
        self.reads = async_sessionmaker(self.reader, expire_on_commit=False)

    def migrate(self, script_location: Path) -> None:
        """Create the schema if needed and upgrade it to the newest Alembic revision."""
        lock_id = zlib.crc32(self.schema.encode())  # one advisory lock per schema
        with psycopg.connect(self.writer_url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (lock_id,))
            try:
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(self.schema)))
                engine = create_engine("postgresql+psycopg://",
                                       creator=partial(_connect_sync, self.writer_url, self.schema))
                try:
                    config = Config()
                    config.set_main_option("script_location", str(script_location))
                    with engine.begin() as connection:
                        ahead = self._revisions_ahead(connection, config)
                        if ahead:
                            log.warning(
                                "schema %s is at revision %s, which this release does not "
                                "know: a newer release expanded it; this one runs on it "
                                "unchanged (expand/contract keeps that safe)",
                                self.schema, ", ".join(ahead))
                            return
                        config.attributes["connection"] = connection
                        config.attributes["schema"] = self.schema
                        command.upgrade(config, "head")
                finally:
                    engine.dispose()
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (lock_id,))
        log.info("schema %s migrated", self.schema)

    def _revisions_ahead(self, connection: Connection, config: Config) -> list[str]:
        """The schema's revisions this release's migrations do not contain.

        Colours share the database, so while a new colour's release is deployed (and after a
        rollback) the old colour's tasks still start, and find the schema a newer release
        migrated. Alembic would refuse ("Can't locate revision"), so a replaced task could
        never come back; like Flyway's ignored future migrations, the older release runs on
        the newer schema instead, which the rule expand → switch → retire → contract makes safe.
        """
        script = ScriptDirectory.from_config(config)
        known = {revision.revision for revision in script.walk_revisions()}
        current = MigrationContext.configure(
            connection, opts={"version_table_schema": self.schema}).get_current_heads()
        return sorted(set(current) - known)

    async def check(self) -> str | None:
        """None when the writer answers; else what went wrong (for readiness)."""
        try:
            async with self.writer.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except Exception as error:  # readiness reports a failure, it never raises one
            return f"database: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
        return None

    async def close(self) -> None:
        await self.writer.dispose()
        await self.reader.dispose()


async def retry_on_failover(work: Callable[[], Awaitable[T]], *, attempts: int = 5,
                            delay_s: float = 0.5) -> T:
    """Run ``work`` again when the connection was lost mid-way (a writer failover).

    Only for idempotent work: a commit whose acknowledgement was lost may have happened, so
    ``work`` must be safe to repeat (e.g. guarded by an idempotency key or a unique row).
    """
    for attempt in range(1, attempts + 1):
        try:
            return await work()
        except FAILOVER_ERRORS:
            if attempt == attempts:
                raise
            log.warning("database connection lost; retrying (%d/%d)", attempt, attempts)
            await asyncio.sleep(delay_s * attempt)
    raise AssertionError("unreachable")
