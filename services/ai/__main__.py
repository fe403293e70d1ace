"""``python -m services.ai --host H --port P --config-url URL --discovery-url URL …``."""

from __future__ import annotations

from pathlib import Path

from services.ai.app import build
from services.ai.settings import AiSettings
from services.common.runtime import serve

if __name__ == "__main__":
    serve("ai-service", AiSettings, build, schema="ai_service",
          migrations=Path(__file__).parent / "migrations")
