"""Alembic's entry point for the user service's schema (see services.common.migrations)."""

from services.common.migrations import run
from services.user.models import metadata

run(metadata)
