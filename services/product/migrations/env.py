"""Alembic environment of the product service (see services/common/migrations.py)."""

from services.common.migrations import run
from services.product.models import metadata

run(metadata)
