"""The product service's settings: ``product.*`` in config-repo/product-service.yml.

Every value here is read through ``runtime.settings.value`` at the moment it is used, so a
commit to the config repository plus ``POST /actuator/busrefresh`` changes it without a restart
(e.g. the cache TTLs: the next page stored gets the new expiry).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.common.runtime import ServiceSettings

JPEG, PNG, WEBP, GIF = "image/jpeg", "image/png", "image/webp", "image/gif"


class CacheSettings(BaseModel):
    """The cache layer: TTLs, the stampede guard, and how quickly a dead cache is given up on."""

    detail_ttl_seconds: float = Field(default=60.0, gt=0)
    list_ttl_seconds: float = Field(default=30.0, gt=0)
    # After its TTL an entry is kept this much longer as a stale copy: while one request
    # recomputes it under the lock, the others answer with the stale copy instead of all
    # hitting the database at once. Invalidation deletes the stale copy too.
    stale_seconds: float = Field(default=10.0, ge=0)
    # The recompute lock outlives any sane database read; a crashed holder frees it by expiry.
    lock_ms: int = Field(default=2000, gt=0)
    # With no stale copy (a cold key), how long others wait for the holder's result.
    wait_ms: int = Field(default=300, ge=0)
    # Each Redis call gives up after this long, and after a failure the cache is not tried
    # again for ``backoff-seconds``: a dead cache costs one timeout per back-off, not one per
    # request.
    timeout_ms: int = Field(default=150, gt=0)
    backoff_seconds: float = Field(default=3.0, ge=0)


class CartSettings(BaseModel):
    ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)  # since the cart's last change
    max_lines: int = Field(default=50, gt=0)
    max_quantity: int = Field(default=99, gt=0)  # per line


class ImageSettings(BaseModel):
    max_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    content_types: list[str] = Field(default_factory=lambda: [JPEG, PNG, WEBP])
    # Where clients fetch images. Empty: this service's own route (through the gateway,
    # streamed from S3). On AWS: the CloudFront distribution in front of the bucket.
    public_base_url: str = ""
    # Where clients reach this service's own image route: the gateway's prefix.
    route_prefix: str = "/api"
    max_per_product: int = Field(default=10, gt=0)
    key_prefix: str = "products"


class ProductOptions(BaseModel):
    cache: CacheSettings = CacheSettings()
    cart: CartSettings = CartSettings()
    images: ImageSettings = ImageSettings()
    reviews_enabled: bool = True


class ProductSettings(ServiceSettings):
    product: ProductOptions = ProductOptions()
