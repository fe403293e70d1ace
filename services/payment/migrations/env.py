"""Alembic environment of the payment service (see services/common/migrations.py)."""

from services.common.migrations import run
from services.payment.models import metadata

run(metadata)
