"""The seed: the data file is consistent, images are real PNGs, and loading is idempotent."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from stack.local.seed import (
    Catalogue,
    ExistingProduct,
    NotDeployed,
    Seeder,
    SeedStore,
    SeedUser,
    Session,
    product_image,
)


class FakeApi:
    """The platform as the seeder sees it, in memory; counts every write."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.categories_by_path: dict[str, int] = {}
        self.stores: dict[int, tuple[str, str]] = {}  # id -> (owner id, name)
        self.products: dict[int, dict[str, Any]] = {}
        self.images: dict[int, int] = {}
        self.coupons: set[str] = set()
        self.writes: list[str] = []
        self.fail_upload_after: int | None = None
        self.orders_deployed = True
        self._ids = iter(range(1, 1_000_000))

    def _id(self) -> int:
        return next(self._ids)

    def ensure_admin(self, user: SeedUser, password: str) -> None:
        record = self.users.setdefault(user.email, {"id": f"u{self._id()}", "roles": set()})
        record["roles"] |= {"admin", "customer"}

    def sign_up(self, user: SeedUser, password: str) -> bool:
        if user.email in self.users:
            return False
        self.writes.append(f"user {user.email}")
        self.users[user.email] = {"id": f"u{self._id()}", "roles": {"customer"}}
        return True

    def log_in(self, email: str, password: str) -> Session:
        return Session(self.users[email]["id"], f"token-{email}")

    def roles(self, session: Session) -> set[str]:
        return next(set(u["roles"]) for u in self.users.values() if u["id"] == session.user_id)

    def grant(self, admin: Session, user_id: str, role: str) -> None:
        assert "admin" in self.roles(admin)
        self.writes.append(f"grant {user_id}")
        next(u for u in self.users.values() if u["id"] == user_id)["roles"].add(role)

    def categories(self) -> dict[str, int]:
        return dict(self.categories_by_path)

    def create_category(self, admin: Session, name: str, parent_id: int | None) -> int:
        parent = next((p for p, i in self.categories_by_path.items() if i == parent_id), None)
        path = f"{parent}/{name}" if parent else name
        assert path not in self.categories_by_path
        self.writes.append(f"category {path}")
        self.categories_by_path[path] = self._id()
        return self.categories_by_path[path]

    def stores_of(self, owner: Session) -> dict[str, int]:
        return {name: i for i, (o, name) in self.stores.items() if o == owner.user_id}

    def create_store(self, owner: Session, store: SeedStore) -> int:
        assert "seller" in self.roles(owner)
        self.writes.append(f"store {store.name}")
        store_id = self._id()
        self.stores[store_id] = (owner.user_id, store.name)
        return store_id

    def set_delivery(self, owner: Session, store_id: int, store: SeedStore) -> None:
        self.writes.append(f"delivery {store.name}")

    def products_of(self, store_id: int) -> list[ExistingProduct]:
        return [ExistingProduct(i, p["name"], i in self.images)
                for i, p in self.products.items() if p["storeId"] == store_id]

    def create_product(self, owner: Session, body: Mapping[str, Any]) -> int:
        assert owner.user_id == self.stores[body["storeId"]][0]
        self.writes.append(f"product {body['name']}")
        product_id = self._id()
        self.products[product_id] = dict(body)
        return product_id

    def upload_image(self, owner: Session, product_id: int, png: bytes) -> None:
        if self.fail_upload_after is not None and len(self.images) >= self.fail_upload_after:
            raise RuntimeError("the connection dropped")
        assert png.startswith(b"\x89PNG")
        self.writes.append(f"image {product_id}")
        self.images[product_id] = len(png)

    def coupon_codes(self, admin: Session) -> set[str]:
        if not self.orders_deployed:
            raise NotDeployed("GET /api/coupons: 404 no route")
        return set(self.coupons)

    def create_coupon(self, admin: Session, body: Mapping[str, Any]) -> None:
        self.writes.append(f"coupon {body['code']}")
        self.coupons.add(body["code"])


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load()


def seeder(api: FakeApi, catalogue: Catalogue) -> Seeder:
    return Seeder(api, catalogue, workers=1, now=lambda: datetime(2026, 11, 25, tzinfo=UTC))


def test_the_catalogue_is_realistic_and_consistent(catalogue: Catalogue) -> None:
    assert len(catalogue.products) >= 200
    running = catalogue.products_under("Shoes/Running Shoes")
    assert len(running) >= 5
    assert all(p.description and p.price > 0 for p in catalogue.products)
    assert len({p.category.split("/")[0] for p in catalogue.products}) >= 8  # unrelated kinds
    assert set(catalogue.products_under("Shoes")) >= set(running)


def test_a_broken_reference_in_the_file_is_named() -> None:
    raw = {"password": "p", "admin": {"email": "a@x", "display-name": "A"},
           "sellers": [], "customers": [],
           "stores": [{"name": "S", "owner": "nobody@x", "description": "",
                       "delivery": {"fee": 0, "lead-days": 1}}],
           "categories": [{"name": "Top"}], "coupons": [],
           "products": [{"category": "Top/Missing", "store": "S",
                         "items": [{"name": "P", "description": "", "price": 1, "stock": 1}]}]}
    with pytest.raises(ValueError, match=r"nobody@x is not a seller.*unknown category"):
        Catalogue.parse(raw)


def test_product_images_are_valid_deterministic_pngs(catalogue: Catalogue) -> None:
    product = catalogue.products[0]
    png = product_image(product)
    assert png == product_image(product)
    assert png != product_image(catalogue.products[1])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) < 2_000
    kind = struct.unpack(">I4s", png[8:16])[1]
    width, height, depth, colour = struct.unpack(">IIBB", png[16:26])
    assert (kind, width, height, depth, colour) == (b"IHDR", 48, 48, 8, 2)
    idat_length = struct.unpack(">I", png[33:37])[0]
    pixels = zlib.decompress(png[41:41 + idat_length])
    assert len(pixels) == 48 * (1 + 48 * 3)


def test_a_second_run_creates_nothing(catalogue: Catalogue) -> None:
    api = FakeApi()
    first = seeder(api, catalogue).run()
    assert first.created["products"] == len(catalogue.products)
    assert first.created["images"] == len(catalogue.products)
    assert first.created["categories"] == len(catalogue.categories)
    assert first.created["seller roles"] == len(catalogue.sellers)
    writes = len(api.writes)
    second = seeder(api, catalogue).run()
    assert len(api.writes) == writes
    assert second.created_total == 0
    assert second.existing["products"] == len(catalogue.products)
    assert second.existing["coupons"] == len(catalogue.coupons)


def test_a_run_cut_short_is_finished_by_the_next(catalogue: Catalogue) -> None:
    api = FakeApi()
    api.fail_upload_after = 10
    with pytest.raises(RuntimeError):
        seeder(api, catalogue).run()
    api.fail_upload_after = None
    report = seeder(api, catalogue).run()
    assert len(api.products) == len(catalogue.products)
    assert len(api.images) == len(catalogue.products)
    assert report.existing["products"] >= 1  # the product whose image failed is kept …
    assert report.created["images"] == len(catalogue.products) - 10  # … and gets its image
    names = [p["name"] for p in api.products.values()]
    assert len(names) == len(set(names))


def test_without_the_order_service_the_rest_is_seeded_and_coupons_reported_skipped(
        catalogue: Catalogue) -> None:
    api = FakeApi()
    api.orders_deployed = False
    report = seeder(api, catalogue).run()
    assert report.created["products"] == len(catalogue.products)
    assert "coupons" in report.skipped and not api.coupons
    assert report.lines()[-1].startswith("coupons: skipped (GET /api/coupons: 404")
