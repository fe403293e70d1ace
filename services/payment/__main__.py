"""``python -m services.payment --host H --port P --config-url URL --discovery-url URL …``."""

from __future__ import annotations

from pathlib import Path

from services.common.runtime import serve
from services.payment.app import build
from services.payment.settings import PaymentSettings

if __name__ == "__main__":
    serve("payment-service", PaymentSettings, build, schema="payment_service",
          migrations=Path(__file__).parent / "migrations")
