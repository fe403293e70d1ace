"""Alembic environment of the order service (see services/common/migrations.py)."""

from services.common.migrations import run
from services.order.models import metadata

run(metadata)
