"""The product service's HTTP API over fakes: statuses, error bodies, cache headers, the internal
fence, uploads, carts, and the OpenAPI document.

The routes and the catalogue are the real ones (`services.product.app.install`); the
repository, Redis and S3 behind them are in-memory fakes. What only the real database can show
(locking, constraints, the reader's freshness) is in tests/integration/test_product_repository.py.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from test_product_cache import Clock, FakeStore

from services.common.errors import NotFound, Unavailable, install_error_handlers
from services.product.app import install
from services.product.cache import CacheHealth, PageCache
from services.product.catalogue import Catalogue
from services.product.domain.cart import DeliveryPolicy, PricedProduct
from services.product.domain.catalogue import ProductStatus, status_after_stock
from services.product.domain.stock import ReservationStatus, StockShortage, Wanted
from services.product.repository import Authorise, Changed, Reconcile, Reservation, Row
from services.product.settings import ProductOptions

NOW = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
SELLER = {"X-User-Id": "seller-1", "X-User-Roles": "seller"}
OTHER_SELLER = {"X-User-Id": "seller-2", "X-User-Roles": "seller"}
CUSTOMER = {"X-User-Id": "buyer-1", "X-User-Roles": "customer"}
ADMIN = {"X-User-Id": "admin-1", "X-User-Roles": "admin"}


def png(width: int = 1) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", width, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" + b"\xff\x00\x00" * width))
            + chunk(b"IEND", b""))


class FakeRepository:
    """Just enough of `Repository` for the routes under test, in memory."""

    def __init__(self) -> None:
        self.stores: dict[int, dict[str, Any]] = {}
        self.products: dict[int, dict[str, Any]] = {}
        self.images: dict[str, dict[str, Any]] = {}
        self.reservations: dict[str, Reservation] = {}
        self.lsn = 100
        self.detail_reads = 0

    async def writer_lsn(self) -> int:
        self.lsn += 1
        return self.lsn

    async def create_store(self, owner_id: str, name: str, description: str) -> Row:
        store_id = len(self.stores) + 1
        self.stores[store_id] = {"id": store_id, "owner_id": owner_id, "name": name,
                                 "description": description, "created_at": NOW,
                                 "updated_at": NOW}
        return self.stores[store_id]

    async def create_product(self, values: Mapping[str, Any], authorise: Authorise
                             ) -> tuple[int, Changed]:
        authorise(self.stores[int(values["store_id"])]["owner_id"])
        product_id = len(self.products) + 1
        self.products[product_id] = {**values, "id": product_id, "rating_count": 0,
                                     "rating_sum": 0, "version": 1, "created_at": NOW,
                                     "updated_at": NOW}
        return product_id, Changed((product_id,), events=1)

    def _owner(self, product_id: int) -> str:
        if product_id not in self.products:
            raise NotFound(f"product {product_id} does not exist")
        return str(self.stores[self.products[product_id]["store_id"]]["owner_id"])

    async def product_owner(self, product_id: int) -> str:
        return self._owner(product_id)

    async def update_product(self, product_id: int, changes: Mapping[str, Any],
                             authorise: Authorise, reconcile: Reconcile) -> Changed:
        authorise(self._owner(product_id))
        current = self.products[product_id]
        current.update(reconcile(current, changes))
        current["version"] += 1
        return Changed((product_id,), events=1)

    async def product_detail(self, product_id: int, floor: int
                             ) -> tuple[Row, list[Row]] | None:
        self.detail_reads += 1
        if product_id not in self.products:
            return None
        row = self.products[product_id]
        store = self.stores[row["store_id"]]
        images = [i for i in self.images.values() if i["product_id"] == product_id]
        return ({**row, "store_name": store["name"], "owner_id": store["owner_id"]}, images)

    async def products_page(self, query: Any, floor: int
                            ) -> tuple[list[Row], int, dict[int, Row]]:
        rows = [p for p in self.products.values() if p["status"] != "HIDDEN"]
        return rows, len(rows), {}

    async def add_image(self, product_id: int, image_id: str, key: str, content_type: str,
                        size: int, authorise: Authorise, max_images: int
                        ) -> tuple[Row, Changed]:
        authorise(self._owner(product_id))
        self.images[image_id] = {"id": image_id, "product_id": product_id, "object_key": key,
                                 "content_type": content_type, "size_bytes": size}
        return self.images[image_id], Changed((product_id,))

    async def image(self, product_id: int, image_id: str) -> Row | None:
        image = self.images.get(image_id)
        if image is None or image["product_id"] != product_id:
            return None
        return {**image, "status": self.products[product_id]["status"],
                "owner_id": self._owner(product_id)}

    async def priced_products(self, product_ids: Sequence[int]) -> dict[int, PricedProduct]:
        return {pid: PricedProduct(pid, int(p["store_id"]), p["name"], int(p["price"]),
                                   int(p["stock"]), ProductStatus(p["status"]))
                for pid, p in self.products.items() if pid in product_ids}

    async def delivery_policies_of(self, store_ids: Sequence[int]) -> dict[int, DeliveryPolicy]:
        return {sid: DeliveryPolicy(3_000, 50_000, 2) for sid in store_ids}

    async def reserve(self, order_id: str, user_id: str | None, wanted: tuple[Wanted, ...]
                      ) -> tuple[Reservation, Changed]:
        if order_id in self.reservations:
            held = self.reservations[order_id]
            return Reservation(order_id, user_id, held.status, held.lines, True), Changed()
        for item in wanted:
            stock = int(self.products[item.product_id]["stock"])
            if stock < item.quantity:
                raise StockShortage(item.product_id, item.quantity, stock, "not enough stock")
        lines = []
        for item in wanted:
            product = self.products[item.product_id]
            product["stock"] -= item.quantity
            product["status"] = status_after_stock(ProductStatus(product["status"]),
                                                   product["stock"]).value
            lines.append({"product_id": item.product_id, "quantity": item.quantity,
                          "unit_price": product["price"], "store_id": product["store_id"],
                          "name": product["name"]})
        self.reservations[order_id] = Reservation(order_id, user_id, ReservationStatus.HELD,
                                                  tuple(lines))
        return self.reservations[order_id], Changed(tuple(w.product_id for w in wanted))


@dataclass
class FakeCarts:
    carts: dict[str, dict[int, int]] = field(default_factory=dict)
    down: bool = False

    def _check(self) -> None:
        if self.down:
            raise Unavailable("the cart store cannot be reached (ConnectionError)")

    async def read(self, user_id: str) -> tuple[dict[int, int], int | None]:
        self._check()
        cart = self.carts.get(user_id, {})
        return dict(cart), (600 if cart else None)

    async def set_quantity(self, user_id: str, product_id: int, quantity: int,
                           ttl_s: int) -> None:
        self._check()
        self.carts.setdefault(user_id, {})[product_id] = quantity

    async def remove(self, user_id: str, product_ids: list[int], ttl_s: int) -> None:
        self._check()
        for product_id in product_ids:
            self.carts.get(user_id, {}).pop(product_id, None)

    async def clear(self, user_id: str) -> None:
        self._check()
        self.carts.pop(user_id, None)


class FakeBody:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, size: int) -> bytes:
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk

    def close(self) -> None:
        pass


@dataclass
class FakeImages:
    objects: dict[str, tuple[bytes, str]] = field(default_factory=dict)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self.objects[key] = (data, content_type)

    async def open(self, key: str) -> Any:
        from services.product.images import StoredObject
        data, content_type = self.objects[key]
        return StoredObject(content_type, len(data), '"etag"', FakeBody(data))

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)


@dataclass
class Fixture:
    client: TestClient
    repository: FakeRepository
    carts: FakeCarts
    images: FakeImages
    cache: FakeStore
    options: ProductOptions


@pytest.fixture
def api() -> Iterator[Fixture]:
    clock = Clock()
    store = FakeStore(clock)
    repository, carts, images = FakeRepository(), FakeCarts(), FakeImages()
    options = ProductOptions()
    catalogue = Catalogue(repository=repository,  # type: ignore[arg-type]
                          cache=PageCache(store, clock=clock, sleep=clock.sleep,
                                          health=CacheHealth(clock)),
                          carts=carts, images=images,  # type: ignore[arg-type]
                          options=lambda: options)
    app = FastAPI()
    install_error_handlers(app)
    install(app, catalogue)
    with TestClient(app) as client:
        yield Fixture(client, repository, carts, images, store, options)


def a_product(api: Fixture, *, stock: int = 5, status: str = "ACTIVE") -> int:
    store = api.client.post("/stores", json={"name": "Hanbit"}, headers=SELLER)
    assert store.status_code == 201, store.text
    created = api.client.post("/products", headers=SELLER, json={
        "storeId": store.json()["id"], "categoryId": 1, "name": "Trail runner",
        "price": 89_000, "stock": stock, "status": status})
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def test_a_product_page_is_cached_and_says_so(api: Fixture) -> None:
    product = a_product(api)
    first = api.client.get(f"/products/{product}")
    second = api.client.get(f"/products/{product}")
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert second.headers["X-Cache-TTL"] == "60" and second.headers["ETag"] == '"1"'
    assert first.json() == second.json() and second.json()["price"] == 89_000
    assert api.repository.detail_reads == 1


def test_a_change_by_the_owner_is_visible_on_the_next_read(api: Fixture) -> None:
    product = a_product(api)
    api.client.get(f"/products/{product}")
    changed = api.client.patch(f"/products/{product}", json={"price": 79_000}, headers=SELLER)
    assert changed.status_code == 204
    page = api.client.get(f"/products/{product}")
    assert page.headers["X-Cache"] == "MISS" and page.json()["price"] == 79_000


def test_only_the_owner_or_an_admin_changes_a_product(api: Fixture) -> None:
    product = a_product(api)
    refused = api.client.patch(f"/products/{product}", json={"price": 1}, headers=OTHER_SELLER)
    assert refused.status_code == 403
    assert refused.json()["status"] == 403 and "another user" in refused.json()["message"]
    assert api.client.patch(f"/products/{product}", json={"price": 1},
                            headers=ADMIN).status_code == 204
    assert api.client.patch(f"/products/{product}", json={"price": 1}).status_code == 401


def test_only_sellers_open_stores(api: Fixture) -> None:
    assert api.client.post("/stores", json={"name": "x"}, headers=CUSTOMER).status_code == 403
    assert api.client.post("/stores", json={"name": "x"}, headers=ADMIN).status_code == 201


def test_a_hidden_product_is_shown_only_to_its_owner(api: Fixture) -> None:
    product = a_product(api, status="HIDDEN")
    assert api.client.get(f"/products/{product}").status_code == 404
    assert api.client.get(f"/products/{product}", headers=OTHER_SELLER).status_code == 404
    assert api.client.get(f"/products/{product}", headers=SELLER).status_code == 200


@pytest.mark.parametrize(("body", "field", "rule"), [
    ({"price": -1}, "price", "greater_than_equal"),
    ({"name": ""}, "name", "string_too_short"),
    ({"status": "SOLD_OUT"}, "status", "literal_error"),
    ({"colour": "red"}, "colour", "extra_forbidden"),
])
def test_an_invalid_product_is_refused_naming_field_and_rule(api: Fixture, body: dict[str, Any],
                                                             field: str, rule: str) -> None:
    valid = {"storeId": 1, "categoryId": 1, "name": "Shoe", "price": 1_000, "stock": 1}
    answer = api.client.post("/products", json={**valid, **body}, headers=SELLER)
    assert answer.status_code == 422
    assert {"field": field, "rule": rule} in [
        {"field": e["field"], "rule": e["rule"]} for e in answer.json()["errors"]]


def test_a_patch_may_not_null_a_required_field(api: Fixture) -> None:
    product = a_product(api)
    answer = api.client.patch(f"/products/{product}", json={"name": None}, headers=SELLER)
    assert answer.status_code == 422
    assert answer.json()["errors"][0] == {"field": "name", "rule": "not_null",
                                          "message": "name cannot be null"}


def test_pages_answer_from_the_database_when_the_cache_is_down(api: Fixture) -> None:
    product = a_product(api)
    api.cache.down = True
    for path in (f"/products/{product}", "/products"):
        answer = api.client.get(path)
        assert answer.status_code == 200 and answer.headers["X-Cache"] == "BYPASS"


def test_an_image_is_checked_stored_and_served(api: Fixture) -> None:
    product = a_product(api)
    refused = api.client.post(f"/products/{product}/images", headers=SELLER,
                              files={"file": ("x.png", b"GIF89a....", "image/png")})
    assert refused.status_code == 422 and refused.json()["errors"][0]["rule"] == \
        "content_matches_type"
    api.options.images.max_bytes = 50
    too_big = api.client.post(f"/products/{product}/images", headers=SELLER,
                              files={"file": ("x.png", png(width=64), "image/png")})
    assert too_big.status_code == 422 and too_big.json()["errors"][0]["rule"] == "max_size"
    api.options.images.max_bytes = 5_000_000
    assert api.client.post(f"/products/{product}/images", headers=OTHER_SELLER,
                           files={"file": ("x.png", png(), "image/png")}).status_code == 403
    stored = api.client.post(f"/products/{product}/images", headers=SELLER,
                             files={"file": ("x.png", png(), "image/png")})
    assert stored.status_code == 201, stored.text
    url = stored.json()["url"]
    assert url.startswith(f"/api/products/{product}/images/")
    served = api.client.get(url.removeprefix("/api"))
    assert served.status_code == 200 and served.content == png()
    assert served.headers["content-type"] == "image/png"
    page = api.client.get(f"/products/{product}").json()
    assert [image["url"] for image in page["images"]] == [url]


def test_a_cart_is_priced_with_todays_prices(api: Fixture) -> None:
    product = a_product(api, stock=5)
    cart = api.client.post("/cart/items", json={"productId": product, "quantity": 2},
                           headers=CUSTOMER)
    assert cart.status_code == 200
    body = cart.json()
    assert body["lines"][0] | {"lineTotal": 178_000, "available": True} == body["lines"][0]
    assert (body["itemsTotal"], body["deliveryTotal"], body["total"]) == (178_000, 0, 178_000)
    api.client.patch(f"/products/{product}", json={"price": 10_000}, headers=SELLER)
    body = api.client.get("/cart", headers=CUSTOMER).json()
    assert (body["itemsTotal"], body["deliveryTotal"]) == (20_000, 3_000)  # under free-over
    short = api.client.post("/cart/items", json={"productId": product, "quantity": 4},
                            headers=CUSTOMER)
    assert short.status_code == 409 and "only 5 in stock" in short.json()["message"]
    assert api.client.put(f"/cart/items/{product}", json={"quantity": 0},
                          headers=CUSTOMER).json()["lines"] == []


def test_a_lost_cart_store_shows_an_empty_cart_and_refuses_changes(api: Fixture) -> None:
    product = a_product(api)
    api.carts.down = True
    shown = api.client.get("/cart", headers=CUSTOMER)
    assert shown.status_code == 200 and shown.json()["lines"] == []
    assert shown.headers["X-Cart-Unavailable"] == "1"
    assert api.client.post("/cart/items", json={"productId": product},
                           headers=CUSTOMER).status_code == 503


def test_internal_routes_refuse_what_came_through_the_gateway(api: Fixture) -> None:
    refused = api.client.get("/internal/carts/buyer-1", headers={"X-Forwarded-For": "10.0.0.1"})
    assert refused.status_code == 403
    assert api.client.get("/internal/carts/buyer-1").status_code == 200


def test_a_reservation_is_all_or_nothing_and_idempotent(api: Fixture) -> None:
    first, second = a_product(api, stock=5), a_product(api, stock=1)
    short = api.client.post("/internal/stock/reservations", json={
        "orderId": "o-1", "items": [{"productId": first, "quantity": 2},
                                    {"productId": second, "quantity": 2}]})
    assert short.status_code == 409
    assert short.json() | {"productId": second, "requested": 2, "available": 1} == short.json()
    assert api.repository.products[first]["stock"] == 5  # nothing reserved
    body = {"orderId": "o-2", "userId": "buyer-1",
            "items": [{"productId": first, "quantity": 2}, {"productId": second, "quantity": 1}]}
    held = api.client.post("/internal/stock/reservations", json=body)
    assert held.status_code == 201
    assert (held.json()["itemsTotal"], held.json()["status"]) == (267_000, "HELD")
    again = api.client.post("/internal/stock/reservations", json=body)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert api.client.get(f"/products/{second}").json()["status"] == "SOLD_OUT"


def test_every_route_is_documented_with_its_responses(api: Fixture) -> None:
    document = api.client.get("/openapi.json").json()
    paths = document["paths"]
    expected = {"/stores", "/stores/{store_id}", "/delivery-policies/{store_id}", "/categories",
                "/categories/{category_id}", "/products", "/products/{product_id}",
                "/products/{product_id}/images", "/products/{product_id}/images/{image_id}",
                "/reviews", "/reviews/{review_id}", "/cart", "/cart/items",
                "/cart/items/{product_id}", "/internal/carts/{user_id}",
                "/internal/stock/reservations", "/internal/stock/reservations/{order_id}",
                "/internal/stock/reservations/{order_id}/release"}
    assert expected <= set(paths)
    for path, operations in paths.items():
        for method, operation in operations.items():
            ok = [code for code in operation["responses"] if code.startswith("2")]
            assert ok, f"{method} {path} documents no success"
            if method != "delete" and operation["responses"][ok[0]].get("content"):
                assert operation["summary"], f"{method} {path} has no summary"
    upload = paths["/products/{product_id}/images"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert "X-Cache" in paths["/products/{product_id}"]["get"]["responses"]["200"]["headers"]


def test_an_unknown_product_is_404_in_the_shared_error_shape(api: Fixture) -> None:
    answer = api.client.get("/products/999")
    assert answer.status_code == 404
    assert set(answer.json()) >= {"status", "error", "message", "requestId", "path"}

