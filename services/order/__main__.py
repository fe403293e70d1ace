"""``python -m services.order --host H --port P --config-url URL --discovery-url URL …``."""

from __future__ import annotations

from pathlib import Path

from services.common.runtime import serve
from services.order.app import build
from services.order.settings import OrderSettings

if __name__ == "__main__":
    serve("order-service", OrderSettings, build, schema="order_service",
          migrations=Path(__file__).parent / "migrations")
