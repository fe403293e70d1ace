"""The payment service's settings: ``payment.*`` in config-repo/payment-service.yml.

The provider's address is not configuration but topology: locally the runtime serves the
simulator's URL as ``come2us.payment-provider.url`` in the platform property source; on AWS the
real PG's URL would be set in payment-service.yml for the environment (it overrides the
platform source).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.common.runtime import PlatformSettings, ServiceSettings
from services.payment.domain.breaker import BreakerPolicy


class ProviderAddress(BaseModel):
    url: str = ""


class PaymentPlatform(PlatformSettings):
    payment_provider: ProviderAddress = ProviderAddress()


class ProviderOptions(BaseModel):
    connect_timeout_ms: int = Field(default=500, gt=0)
    # A PG answers a charge in a second or two; longer means it is in trouble, and every
    # second waited is a second the consumer falls behind on order-events.
    read_timeout_ms: int = Field(default=3000, gt=0)
    attempts: int = Field(default=3, ge=1, le=10)  # same idempotency key on every attempt
    retry_backoff_ms: int = Field(default=200, ge=0)  # doubled after each attempt


class BreakerOptions(BaseModel):
    failure_threshold: int = Field(default=5, ge=1)
    open_seconds: float = Field(default=10.0, ge=0)
    half_open_calls: int = Field(default=1, ge=1)

    def policy(self) -> BreakerPolicy:
        return BreakerPolicy(self.failure_threshold, self.open_seconds, self.half_open_calls)


class RecoveryOptions(BaseModel):
    # A payment still PENDING this long after its last change was interrupted (a crash between
    # recording the intent and the result): settle it again, with the same idempotency key.
    resume_payments_after_seconds: float = Field(default=60.0, gt=0)
    retry_refunds_after_seconds: float = Field(default=10.0, gt=0)
    sweep_interval_seconds: float = Field(default=5.0, gt=0)


class PaymentOptions(BaseModel):
    provider: ProviderOptions = ProviderOptions()
    breaker: BreakerOptions = BreakerOptions()
    recovery: RecoveryOptions = RecoveryOptions()
    default_limit: int = Field(default=20, ge=1)
    max_limit: int = Field(default=100, ge=1)


class PaymentSettings(ServiceSettings):
    come2us: PaymentPlatform = PaymentPlatform()
    payment: PaymentOptions = PaymentOptions()
