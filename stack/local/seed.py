"""Seed data: the catalogue of `seed_catalogue.yaml`, loaded the way a real client would.

`Catalogue` is the data file as typed values (features read it too: which products are running
shoes, which are shoes at all). `Seeder` loads it through a `SeedApi` (the gateway's public API,
`stack.local.seed_api.GatewayApi`; a fake in the unit tests) and is idempotent: for each kind of
thing it reads what exists, keyed by its natural key (email, store name, category path, product
name within its store, coupon code), and creates only what is missing, so a second run creates
nothing and a run cut short is finished by the next. Only the first admin is made by the
operator command of the user service (`services.user.manage create-admin`): nobody can sign up
as an admin.

Product images are small PNGs drawn here (`product_image`): a colour per category and a stripe
per product, so a page has something to show and the image path (upload, S3, URL) is exercised.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml

log = logging.getLogger("come2us.seed")

CATALOGUE_FILE = Path(__file__).with_name("seed_catalogue.yaml")
SELLER = "seller"
IMAGE_SIZE = 48
PATH_SEPARATOR = "/"


# --- the data file ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SeedUser:
    email: str
    display_name: str


@dataclass(frozen=True)
class SeedStore:
    name: str
    owner: str  # a seller's email
    description: str
    fee: int
    free_over: int | None
    lead_days: int


@dataclass(frozen=True)
class SeedProduct:
    category: str  # the leaf's path, "Shoes/Running Shoes"
    store: str
    name: str
    description: str
    price: int
    stock: int

    def under(self, path: str) -> bool:
        """Whether its category is ``path`` or below it."""
        return self.category == path or self.category.startswith(path + PATH_SEPARATOR)


@dataclass(frozen=True)
class SeedCoupon:
    code: str
    discount_type: str
    discount_value: int
    min_amount: int
    valid_days: int
    one_per_user: bool
    max_discount: int | None = None
    total_limit: int | None = None

    def body(self, now: datetime) -> dict[str, Any]:
        """The order service's CouponIn; validity counts from the first run (never re-issued)."""
        return {"code": self.code, "discountType": self.discount_type,
                "discountValue": self.discount_value, "maxDiscount": self.max_discount,
                "minAmount": self.min_amount, "onePerUser": self.one_per_user,
                "totalLimit": self.total_limit,
                "validUntil": (now + timedelta(days=self.valid_days)).isoformat()}


@dataclass(frozen=True)
class Catalogue:
    password: str
    admin: SeedUser
    sellers: tuple[SeedUser, ...]
    customers: tuple[SeedUser, ...]
    stores: tuple[SeedStore, ...]
    categories: tuple[str, ...]  # every path, parents before children, in file order
    products: tuple[SeedProduct, ...]
    coupons: tuple[SeedCoupon, ...]

    @classmethod
    def load(cls, path: Path = CATALOGUE_FILE) -> Catalogue:
        raw = yaml.safe_load(path.read_text())
        return cls.parse(raw)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Catalogue:
        def user(item: Mapping[str, Any]) -> SeedUser:
            return SeedUser(str(item["email"]), str(item["display-name"]))

        def paths(nodes: Iterable[Mapping[str, Any]], parent: str = "") -> list[str]:
            out: list[str] = []
            for node in nodes:
                path = f"{parent}{PATH_SEPARATOR}{node['name']}" if parent else str(node["name"])
                out += [path, *paths(node.get("children") or (), path)]
            return out

        stores = tuple(SeedStore(str(s["name"]), str(s["owner"]), str(s["description"]),
                                 int(s["delivery"]["fee"]), s["delivery"].get("free-over"),
                                 int(s["delivery"]["lead-days"])) for s in raw["stores"])
        products = tuple(SeedProduct(str(group["category"]), str(group["store"]),
                                     str(item["name"]), str(item["description"]),
                                     int(item["price"]), int(item["stock"]))
                         for group in raw["products"] for item in group["items"])
        coupons = tuple(SeedCoupon(str(c["code"]), str(c["discount-type"]),
                                   int(c["discount-value"]), int(c.get("min-amount", 0)),
                                   int(c["valid-days"]), bool(c.get("one-per-user", True)),
                                   c.get("max-discount"), c.get("total-limit"))
                        for c in raw["coupons"])
        catalogue = cls(str(raw["password"]), user(raw["admin"]),
                        tuple(user(u) for u in raw["sellers"]),
                        tuple(user(u) for u in raw["customers"]), stores,
                        tuple(paths(raw["categories"])), products, coupons)
        catalogue.check()
        return catalogue

    def check(self) -> None:
        """The file's own consistency: every reference resolves, every key is unique."""
        sellers = {s.email for s in self.sellers}
        stores = {s.name for s in self.stores}
        problems = [f"store {s.name!r}: owner {s.owner} is not a seller" for s in self.stores
                    if s.owner not in sellers]
        problems += [f"product {p.name!r}: unknown store {p.store!r}" for p in self.products
                     if p.store not in stores]
        problems += [f"product {p.name!r}: unknown category {p.category!r}"
                     for p in self.products if p.category not in self.categories]
        for kind, keys in (("store", [s.name for s in self.stores]),
                           ("product", [(p.store, p.name) for p in self.products]),
                           ("coupon", [c.code for c in self.coupons]),
                           ("user", [u.email for u in self.users])):
            problems += [f"{kind} {key!r} appears twice" for key in _duplicates(keys)]
        if problems:
            raise ValueError("seed catalogue: " + "; ".join(problems))

    @property
    def users(self) -> tuple[SeedUser, ...]:
        return (self.admin, *self.sellers, *self.customers)

    def products_under(self, path: str) -> list[SeedProduct]:
        return [p for p in self.products if p.under(path)]


def _duplicates(keys: Sequence[object]) -> list[object]:
    seen: set[object] = set()
    twice: list[object] = []
    for key in keys:
        if key in seen:
            twice.append(key)
        seen.add(key)
    return twice


# --- images ----------------------------------------------------------------------------------

def product_image(product: SeedProduct, size: int = IMAGE_SIZE) -> bytes:
    """A PNG (RGB, 8 bits) in the category's colour with a stripe placed by the product's name:
    deterministic, a few hundred bytes, and a real image to the product service's checks."""
    base = hashlib.sha256(product.category.encode()).digest()
    mark = hashlib.sha256(product.name.encode()).digest()
    background = bytes(96 + b % 128 for b in base[:3])
    stripe = bytes(255 - b for b in background)
    band = mark[0] % (size // 2)
    rows = b"".join(
        b"\x00" + b"".join(stripe if band <= (x + y) // 2 < band + size // 6 else background
                           for x in range(size))
        for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


# --- loading ---------------------------------------------------------------------------------

class NotDeployed(RuntimeError):
    """The service behind a call is not part of the running cloud (no route, no instance)."""


@dataclass(frozen=True)
class Session:
    """A signed-in seed user: what `SeedApi` calls that need an identity take."""

    user_id: str
    access_token: str


@dataclass(frozen=True)
class ExistingProduct:
    id: int
    name: str
    has_image: bool


class SeedApi(Protocol):
    """The calls the seeder makes; `stack.local.seed_api.GatewayApi` makes them over HTTP."""

    def ensure_admin(self, user: SeedUser, password: str) -> None: ...

    def sign_up(self, user: SeedUser, password: str) -> bool:
        """True if created, False if the email was taken already."""
        ...

    def log_in(self, email: str, password: str) -> Session: ...

    def roles(self, session: Session) -> set[str]: ...

    def grant(self, admin: Session, user_id: str, role: str) -> None: ...

    def categories(self) -> dict[str, int]:
        """Every category's path -> id."""
        ...

    def create_category(self, admin: Session, name: str, parent_id: int | None) -> int: ...

    def stores_of(self, owner: Session) -> dict[str, int]:
        """The owner's stores, name -> id."""
        ...

    def create_store(self, owner: Session, store: SeedStore) -> int: ...

    def set_delivery(self, owner: Session, store_id: int, store: SeedStore) -> None: ...

    def products_of(self, store_id: int) -> list[ExistingProduct]: ...

    def create_product(self, owner: Session, body: Mapping[str, Any]) -> int: ...

    def upload_image(self, owner: Session, product_id: int, png: bytes) -> None: ...

    def coupon_codes(self, admin: Session) -> set[str]: ...

    def create_coupon(self, admin: Session, body: Mapping[str, Any]) -> None: ...


@dataclass
class SeedReport:
    """How many of each kind were created by this run, and how many already existed."""

    created: dict[str, int] = field(default_factory=dict)
    existing: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # kind -> why

    def count(self, kind: str, created: bool, n: int = 1) -> None:
        target = self.created if created else self.existing
        target[kind] = target.get(kind, 0) + n

    @property
    def created_total(self) -> int:
        return sum(self.created.values())

    def lines(self) -> list[str]:
        kinds = list(dict.fromkeys([*self.created, *self.existing]))
        return [*(f"{kind}: {self.created.get(kind, 0)} created, "
                  f"{self.existing.get(kind, 0)} already there" for kind in kinds),
                *(f"{kind}: skipped ({why})" for kind, why in self.skipped.items())]


class Seeder:
    """Adds what of ``catalogue`` is missing, through ``api``; see the module docstring."""

    def __init__(self, api: SeedApi, catalogue: Catalogue, *, workers: int = 4,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.api = api
        self.catalogue = catalogue
        self.workers = workers
        self.now = now
        self.report = SeedReport()

    def run(self) -> SeedReport:
        admin, sessions = self.users()
        category_ids = self.categories(admin)
        store_ids = self.stores(sessions)
        self.products(sessions, store_ids, category_ids)
        self.coupons(admin)
        return self.report

    def users(self) -> tuple[Session, dict[str, Session]]:
        """Every seed user exists and sellers have the seller role; the admin's session and
        each seller's (signed in after any grant: a role counts from the next login)."""
        password = self.catalogue.password
        self.api.ensure_admin(self.catalogue.admin, password)
        admin = self.api.log_in(self.catalogue.admin.email, password)
        for user in (*self.catalogue.sellers, *self.catalogue.customers):
            self.report.count("users", self.api.sign_up(user, password))
        sellers: dict[str, Session] = {}
        for seller in self.catalogue.sellers:
            session = self.api.log_in(seller.email, password)
            if SELLER not in self.api.roles(session):
                self.api.grant(admin, session.user_id, SELLER)
                self.report.count("seller roles", True)
                session = self.api.log_in(seller.email, password)
            sellers[seller.email] = session
        return admin, sellers

    def categories(self, admin: Session) -> dict[str, int]:
        ids = self.api.categories()
        for path in self.catalogue.categories:
            if path in ids:
                self.report.count("categories", False)
                continue
            parent, _, name = path.rpartition(PATH_SEPARATOR)
            ids[path] = self.api.create_category(admin, name, ids[parent] if parent else None)
            self.report.count("categories", True)
        return ids

    def stores(self, sessions: Mapping[str, Session]) -> dict[str, int]:
        ids: dict[str, int] = {}
        for email, session in sessions.items():
            owned = self.api.stores_of(session)
            for store in (s for s in self.catalogue.stores if s.owner == email):
                created = store.name not in owned
                if created:
                    owned[store.name] = self.api.create_store(session, store)
                    self.api.set_delivery(session, owned[store.name], store)
                ids[store.name] = owned[store.name]
                self.report.count("stores", created)
        return ids

    def products(self, sessions: Mapping[str, Session], store_ids: Mapping[str, int],
                 category_ids: Mapping[str, int]) -> None:
        """Each store's products, stores in parallel (each seller has their own rate limit)."""
        owners = {s.name: sessions[s.owner] for s in self.catalogue.stores}

        def one_store(store: str) -> tuple[int, int, int]:
            session, store_id = owners[store], store_ids[store]
            existing = {p.name: p for p in self.api.products_of(store_id)}
            created = kept = images = 0
            for product in (p for p in self.catalogue.products if p.store == store):
                found = existing.get(product.name)
                if found is None:
                    product_id = self.api.create_product(session, {
                        "storeId": store_id, "categoryId": category_ids[product.category],
                        "name": product.name, "description": product.description,
                        "price": product.price, "stock": product.stock})
                    created += 1
                else:
                    product_id = found.id
                    kept += 1
                if found is None or not found.has_image:  # also finishes an interrupted run
                    self.api.upload_image(session, product_id, product_image(product))
                    images += 1
            return created, kept, images

        stores = list(dict.fromkeys(p.store for p in self.catalogue.products))
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="seed") as pool:
            for created, kept, images in pool.map(one_store, stores):
                self.report.count("products", True, created)
                self.report.count("products", False, kept)
                self.report.count("images", True, images)

    def coupons(self, admin: Session) -> None:
        """Coupons belong to the order service: a cloud without it gets the rest of the seed,
        and the report says what was skipped."""
        try:
            existing = self.api.coupon_codes(admin)
        except NotDeployed as missing:
            log.warning("coupons skipped: %s", missing)
            self.report.skipped["coupons"] = str(missing)
            return
        for coupon in self.catalogue.coupons:
            created = coupon.code not in existing
            if created:
                self.api.create_coupon(admin, coupon.body(self.now()))
            self.report.count("coupons", created)
