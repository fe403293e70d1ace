"""Assembles the product service: repository, page cache, carts, images, outbox relay, routes.

Readiness checks the database only: a dead cache Redis makes pages slower, a lost session Redis
empties carts, neither is a reason to take the instance out of rotation.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.common.errors import error_body
from services.common.events import Messaging
from services.common.runtime import ServiceRuntime, create_app
from services.product.api import cart, categories, internal, products, reviews, stores
from services.product.cache import PageCache, RedisCacheStore, cache_client
from services.product.carts import CartStore
from services.product.catalogue import Catalogue
from services.product.domain.stock import StockShortage
from services.product.images import ImageStore
from services.product.models import outbox
from services.product.repository import Repository
from services.product.settings import ProductSettings

NAME = "product-service"  # in discovery, at the config server, in logs and metrics
SCHEMA = "product_service"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
TITLE = "COME2US product service"


def build(runtime: ServiceRuntime[ProductSettings]) -> FastAPI:
    assert runtime.database is not None, "serve() opens the database (schema product_service)"
    platform = runtime.platform
    options = runtime.settings.value.product
    cache_redis = cache_client(platform.cache_redis.url, options.cache.timeout_ms)
    database = runtime.database
    service = Catalogue(
        repository=Repository(runtime.database),
        cache=PageCache(RedisCacheStore(cache_redis)),
        carts=CartStore(runtime.session_redis()),
        images=ImageStore(platform.image_bucket, platform.aws_endpoint, platform.region),
        options=lambda: runtime.settings.value.product)
    messaging = Messaging(platform.kafka.bootstrap_servers,
                          f"{runtime.name}-{runtime.launch.instance_id}", database.writes, outbox)
    service.published = messaging.nudge

    async def stop() -> None:
        await messaging.stop()
        await cache_redis.aclose()

    runtime.starting.append(messaging.start)
    runtime.stopping.append(stop)
    return install(create_app(runtime, TITLE), service)


def install(app: FastAPI, service: Catalogue) -> FastAPI:
    """The routes over ``service``; the API tests install them over fakes the same way."""
    app.state.catalogue = service

    @app.exception_handler(StockShortage)
    async def short(request: Request, error: StockShortage) -> JSONResponse:
        return JSONResponse(error_body(409, error.message, request.url.path,
                                       productId=error.product_id, requested=error.requested,
                                       available=error.available), status_code=409)

    for module in (stores, categories, products, reviews, cart, internal):
        app.include_router(module.router)
    return app
