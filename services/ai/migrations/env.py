"""Alembic environment of the AI service (see services/common/migrations.py)."""

from services.ai.models import metadata
from services.common.migrations import run

run(metadata)
