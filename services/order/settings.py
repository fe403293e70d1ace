"""The order service's settings: ``order.*`` in config-repo/order-service.yml.

Values are read through ``runtime.settings.value`` when used, so a commit to the config
repository plus ``POST /actuator/busrefresh`` changes them without a restart.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.common.runtime import ServiceSettings


class CouponOptions(BaseModel):
    # How long a coupon stays held for a checkout before it is free again: long enough for a
    # payment to finish (the provider's timeout plus Kafka's round trip), short enough that an
    # abandoned checkout does not lock a limited coupon away for long.
    hold_ttl_seconds: int = Field(default=300, ge=10, le=3600)


class CatalogueOptions(BaseModel):
    service: str = "product-service"  # the application name in discovery
    timeout_seconds: float = Field(default=3.0, gt=0)


class HistoryOptions(BaseModel):
    default_limit: int = Field(default=20, ge=1)
    max_limit: int = Field(default=100, ge=1)


class OrderOptions(BaseModel):
    coupons: CouponOptions = CouponOptions()
    catalogue: CatalogueOptions = CatalogueOptions()
    history: HistoryOptions = HistoryOptions()


class OrderSettings(ServiceSettings):
    order: OrderOptions = OrderOptions()
