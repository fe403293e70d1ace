"""Steps of features/cache_expiry.feature, and the catalogue every product feature starts from."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from stack.local.config_repo import ConfigRepository
from stack.local.product_client import Fetched, ProductClient, applied_list_ttl
from stack.local.session import CloudSession
from stack.local.token_forge import good_token
from stack.waiting import wait_for
from steps.common import Scene
from steps.configuration import refresh_bus

PRODUCT_FILE = "product-service.yml"
CACHE_REDIS = "cache-redis"
PRICE = 50_000
# Slack for a refresh to travel the bus and for a loaded 2-core machine.
REFRESH_S = 10.0
MARGIN_S = 2.0


@pytest.fixture
def catalogue(scene: Scene) -> Iterator[ProductClient]:
    """An anonymous client of the product API through the gateway (``as_token`` for others)."""
    with ProductClient.through_gateway(scene.model) as client:
        yield client


@pytest.fixture
def product_settings(config_repository: ConfigRepository, scene: Scene) -> Iterator[
        ConfigRepository]:
    """product-service.yml may be changed by the scenario; put back and refreshed afterwards."""
    original = config_repository.file(PRODUCT_FILE).read_text()
    yield config_repository
    if config_repository.file(PRODUCT_FILE).read_text() != original:
        config_repository.restore(PRODUCT_FILE, original, "restore product-service.yml")
        refresh_bus(scene)


def change_product_settings(repository: ConfigRepository, scene: Scene, section: str,
                            values: dict[str, Any]) -> None:
    def edit(document: dict[str, Any]) -> None:
        document.setdefault("product", {}).setdefault(section, {}).update(values)

    repository.change(PRODUCT_FILE, edit, f"product.{section}: {values}")
    refresh_bus(scene)


@given("a seller's product is on sale")
def product_on_sale(cloud: CloudSession, catalogue: ProductClient, scene: Scene) -> None:
    admin = catalogue.as_token(good_token(cloud.workspace, roles=("admin",)).token)
    seller = catalogue.as_token(good_token(cloud.workspace, roles=("seller",)).token)
    suffix = uuid.uuid4().hex[:8]
    category = admin.create_category(f"Feature shoes {suffix}")
    store = seller.create_store(f"Feature store {suffix}")
    scene.values["seller"] = seller
    scene.values["category"] = category["id"]
    scene.values["product"] = seller.create_product(
        store["id"], category["id"], f"Trail runner {suffix}", PRICE, stock=20,
        description="a light shoe for trails")


def read_product(catalogue: ProductClient, scene: Scene) -> Fetched:
    page = catalogue.product(scene.values["product"])
    assert page.status == 200, page.body
    return page


def read_list(catalogue: ProductClient, scene: Scene) -> Fetched:
    page = catalogue.products(categoryId=scene.values["category"])
    assert page.status == 200, page.body
    return page


@when("a visitor reads the product page twice")
def read_twice(catalogue: ProductClient, scene: Scene) -> None:
    scene.values["reads"] = [read_product(catalogue, scene), read_product(catalogue, scene)]


@then("the first read comes from the database and the second from the cache")
def first_miss_then_hit(scene: Scene) -> None:
    first, second = scene.values["reads"]
    assert (first.cache, second.cache) == ("MISS", "HIT")
    assert first.body == second.body


@given(parsers.parse("product pages are cached for {seconds:d} seconds"))
def pages_cached_for(product_settings: ConfigRepository, catalogue: ProductClient, scene: Scene,
                     seconds: int) -> None:
    change_product_settings(product_settings, scene, "cache",
                            {"detail-ttl-seconds": seconds, "list-ttl-seconds": seconds})

    def applied() -> tuple[bool | None, str]:
        ttl = applied_list_ttl(catalogue)
        return (True if ttl == seconds else None), f"pages cached for {ttl} s"

    wait_for(applied, timeout=REFRESH_S, what=f"a page TTL of {seconds} s in force")
    scene.values["ttl"] = seconds


@when("a visitor reads the product page and it is cached")
def read_and_cache(catalogue: ProductClient, scene: Scene) -> None:
    scene.values["cached at or after"] = time.monotonic()
    page = read_product(catalogue, scene)
    assert page.cache == "MISS" and page.ttl_s == scene.values["ttl"], page


@then(parsers.parse("every read is served from the cache until {seconds:d} seconds have "
                    "passed"))
def hits_until_expiry(catalogue: ProductClient, scene: Scene, seconds: int) -> None:
    began = scene.values["cached at or after"]
    seen: list[tuple[float, str | None]] = []

    def expired() -> tuple[Fetched | None, str]:
        page = read_product(catalogue, scene)
        seen.append((round(time.monotonic() - began, 2), page.cache))
        return (page if page.cache != "HIT" else None), f"reads (s, X-Cache): {seen[-5:]}"

    first = wait_for(expired, timeout=seconds + MARGIN_S, what="the cached page expiring",
                     interval=0.1)
    elapsed = time.monotonic() - began
    assert elapsed >= seconds, f"not served from the cache after {elapsed:.2f} s: {seen}"
    assert len(seen) > 1, "no read happened while the page was cached"
    scene.values["after expiry"] = first


@then("the first read after that comes from the database")
def read_from_database(scene: Scene) -> None:
    assert scene.values["after expiry"].cache == "MISS"


@then("the read after it comes from the cache again")
def cached_again(catalogue: ProductClient, scene: Scene) -> None:
    assert read_product(catalogue, scene).cache == "HIT"


@given("a visitor has read the product page and the product list, and both are cached")
def both_cached(catalogue: ProductClient, scene: Scene) -> None:
    for read in (read_product, read_list):
        read(catalogue, scene)
        assert read(catalogue, scene).cache == "HIT"


@given("a visitor has read the product page, and it is cached")
def page_cached(catalogue: ProductClient, scene: Scene) -> None:
    read_product(catalogue, scene)
    assert read_product(catalogue, scene).cache == "HIT"


@when("the seller lowers the product's price")
def lower_price(scene: Scene) -> None:
    scene.values["new price"] = PRICE - 7_000
    scene.values["seller"].update_product(scene.values["product"],
                                          price=scene.values["new price"])


@then("the next read of the product page shows the new price")
def page_shows_new_price(catalogue: ProductClient, scene: Scene) -> None:
    page = read_product(catalogue, scene)
    assert page.body["price"] == scene.values["new price"], page


@then("the next read of the product list shows it too")
def list_shows_new_price(catalogue: ProductClient, scene: Scene) -> None:
    page = read_list(catalogue, scene)
    prices = {item["id"]: item["price"] for item in page.body["items"]}
    assert prices[scene.values["product"]] == scene.values["new price"], page


@pytest.fixture
def cache_redis_restarted(cloud: CloudSession) -> Iterator[None]:
    """Whatever the scenario does to the cache Redis, it runs again afterwards."""
    yield
    cloud.client.component(CACHE_REDIS, "start")


@when("the cache Redis is stopped")
def stop_cache(cloud: CloudSession, cache_redis_restarted: None) -> None:
    cloud.client.component(CACHE_REDIS, "stop")


@then(parsers.parse("the product page and the product list still answer within {seconds:d} "
                    "second each, read from the database"))
def answered_without_cache(catalogue: ProductClient, scene: Scene, seconds: int) -> None:
    timings: list[tuple[str, str | None, float]] = []
    for _ in range(5):
        for name, read in (("page", read_product), ("list", read_list)):
            began = time.perf_counter()
            page = read(catalogue, scene)
            timings.append((name, page.cache, round(time.perf_counter() - began, 3)))
    assert all(cache == "BYPASS" for _, cache, _ in timings), timings
    assert max(t for _, _, t in timings) < seconds, timings
    scene.values["timings without cache"] = timings


@then("once the cache Redis is started again, pages are cached again within its back-off "
      "period")
def cached_after_restart(cloud: CloudSession, catalogue: ProductClient, scene: Scene,
                         product_settings: ConfigRepository) -> None:
    backoff = float(product_settings.read(PRODUCT_FILE)["product"]["cache"]["backoff-seconds"])
    cloud.client.component(CACHE_REDIS, "start")

    def cached() -> tuple[bool | None, str]:
        page = read_product(catalogue, scene)
        return (True if page.cache == "HIT" else None), f"X-Cache {page.cache}"

    wait_for(cached, timeout=backoff + MARGIN_S, what="pages served from the cache again")
