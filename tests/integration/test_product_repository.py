"""The product service's repository on a real PostgreSQL writer and synchronous standby.

What the API tests take from a fake is checked here: the migration, reservations that are all
or nothing under concurrency (never overselling the last items), idempotent reserve and
release, one review per order line with rating aggregates that stay exact under concurrent
reviews, outbox rows in the same transaction, and reads that go to the writer when the standby
has not replayed a change yet. The servers run on the integration block (see conftest.py).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from services.common.database import Database
from services.common.errors import Conflict, Invalid
from services.product.app import MIGRATIONS, SCHEMA
from services.product.domain.catalogue import ListQuery
from services.product.domain.stock import ReservationStatus, StockShortage, Wanted
from services.product.repository import Repository
from stack.come2us import come2us
from stack.local.backend import ProcessBackend
from stack.local.postgres import ADMIN_SECRET, postgres_components
from stack.local.workspace import Workspace

pytestmark = [pytest.mark.cloud, pytest.mark.anyio]


def anyone(owner: str) -> None:
    """An authorisation that lets every caller through (ownership is tested in the API)."""


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def urls(integration_block: int) -> Iterator[tuple[str, str]]:
    model = come2us()
    # Not under pytest's tmp_path: the servers run as the postgres user, who must reach it.
    home = Path(tempfile.mkdtemp(prefix="come2us-product-db-"))
    workspace = Workspace(home)
    workspace.ensure()
    servers = postgres_components(model, workspace, ProcessBackend())
    try:
        for server in servers:
            server.start()
            server.wait_ready()
        password = workspace.secret(ADMIN_SECRET)
        cluster = model.data.postgres
        yield cluster.writer_url(password), cluster.reader_url(password)
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def migrated(urls: tuple[str, str]) -> tuple[str, str]:
    database = Database(*urls, SCHEMA)
    database.migrate(MIGRATIONS)
    database.migrate(MIGRATIONS)  # a second instance starting: nothing left to do
    return urls


@pytest.fixture
async def repository(migrated: tuple[str, str]) -> AsyncIterator[Repository]:
    database = Database(*migrated, SCHEMA, pool_size=10)
    yield Repository(database)
    await database.close()


def sql(urls: tuple[str, str], query: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(urls[0], autocommit=True,
                         options=f"-c search_path={SCHEMA}") as conn:
        return conn.execute(query, args).fetchall()  # type: ignore[arg-type]


async def a_product(repository: Repository, stock: int, price: int = 10_000) -> int:
    store = await repository.create_store(f"seller-{uuid.uuid4().hex[:6]}", "Store", "")
    category = await repository.create_category(f"Category {uuid.uuid4().hex[:8]}", None, 0)
    product_id, _ = await repository.create_product(
        {"store_id": store["id"], "category_id": category["id"], "name": "Shoe",
         "description": "", "price": price, "stock": stock, "status": "ACTIVE"}, anyone)
    return product_id


def stock_of(urls: tuple[str, str], product_id: int) -> tuple[int, str]:
    stock, status = sql(urls, "SELECT stock, status FROM products WHERE id = %s", product_id)[0]
    return int(stock), str(status)


async def test_the_last_items_are_never_oversold(repository: Repository,
                                                 migrated: tuple[str, str]) -> None:
    product = await a_product(repository, stock=3)

    async def order() -> bool:
        try:
            await repository.reserve(uuid.uuid4().hex, "buyer", (Wanted(product, 1),))
        except StockShortage:
            return False
        return True

    results = await asyncio.gather(*(order() for _ in range(8)))
    assert sum(results) == 3
    assert stock_of(migrated, product) == (0, "SOLD_OUT")
    events = sql(migrated, "SELECT payload->'data'->>'status' FROM outbox WHERE key = %s "
                           "ORDER BY seq", str(product))
    assert [e[0] for e in events] == ["ACTIVE", "SOLD_OUT"]  # created, then sold out once


async def test_a_reservation_takes_every_line_or_none(repository: Repository,
                                                      migrated: tuple[str, str]) -> None:
    plenty, scarce = await a_product(repository, stock=10), await a_product(repository, stock=1)
    order = uuid.uuid4().hex
    with pytest.raises(StockShortage) as short:
        await repository.reserve(order, "buyer", (Wanted(plenty, 2), Wanted(scarce, 2)))
    assert (short.value.product_id, short.value.available) == (scarce, 1)
    assert stock_of(migrated, plenty) == (10, "ACTIVE")
    assert sql(migrated, "SELECT count(*) FROM reservations WHERE order_id = %s", order) == [(0,)]


async def test_the_same_order_reserves_once_however_often_it_is_sent(
        repository: Repository, migrated: tuple[str, str]) -> None:
    product = await a_product(repository, stock=10)
    order = uuid.uuid4().hex
    results = await asyncio.gather(*(repository.reserve(order, "buyer", (Wanted(product, 4),))
                                     for _ in range(5)))
    assert sorted(r[0].replayed for r in results) == [False, True, True, True, True]
    assert stock_of(migrated, product) == (6, "ACTIVE")
    with pytest.raises(Conflict, match="different lines"):
        await repository.reserve(order, "buyer", (Wanted(product, 1),))


async def test_a_release_gives_the_stock_back_once(repository: Repository,
                                                   migrated: tuple[str, str]) -> None:
    product = await a_product(repository, stock=2)
    order = uuid.uuid4().hex
    await repository.reserve(order, "buyer", (Wanted(product, 2),))
    assert stock_of(migrated, product) == (0, "SOLD_OUT")
    results = await asyncio.gather(*(repository.release(order) for _ in range(4)))
    assert sorted(r[0].replayed for r in results) == [False, True, True, True]
    assert all(r[0].status is ReservationStatus.RELEASED for r in results)
    assert stock_of(migrated, product) == (2, "ACTIVE")
    with pytest.raises(Conflict, match="released"):
        await repository.reserve(order, "buyer", (Wanted(product, 1),))


async def test_releasing_an_unknown_order_stops_a_late_reserve(repository: Repository) -> None:
    product = await a_product(repository, stock=2)
    order = uuid.uuid4().hex
    released, _ = await repository.release(order)
    assert (released.status, released.replayed, released.lines) == (
        ReservationStatus.RELEASED, False, ())
    with pytest.raises(Conflict):
        await repository.reserve(order, "buyer", (Wanted(product, 1),))


async def test_one_review_per_order_line_and_exact_rating_aggregates(
        repository: Repository, migrated: tuple[str, str]) -> None:
    product = await a_product(repository, stock=50)
    buyers = [f"buyer-{uuid.uuid4().hex[:6]}" for _ in range(6)]
    orders = {buyer: uuid.uuid4().hex for buyer in buyers}
    for buyer in buyers:
        await repository.reserve(orders[buyer], buyer, (Wanted(product, 1),))
    with pytest.raises(Invalid) as not_bought:
        await repository.create_review(buyers[0], product, orders[buyers[1]], 5, "")
    assert not_bought.value.rule == "ordered_product"
    ratings = [5, 4, 3, 5, 2, 1]
    await asyncio.gather(*(repository.create_review(b, product, orders[b], r, "")
                           for b, r in zip(buyers, ratings, strict=True)))
    with pytest.raises(Conflict):
        await repository.create_review(buyers[0], product, orders[buyers[0]], 1, "again")
    rows = sql(migrated, "SELECT id, rating FROM reviews WHERE product_id = %s ORDER BY id",
               product)
    await repository.update_review(rows[0][0], {"rating": 1}, anyone)  # was 5 or whichever
    await repository.delete_review(rows[1][0], anyone)
    count, total = sql(migrated, "SELECT rating_count, rating_sum FROM products WHERE id = %s",
                       product)[0]
    expected = [1] + [int(r) for _, r in rows[2:]]
    assert (count, total) == (len(expected), sum(expected))


async def test_a_read_after_a_change_is_never_older_than_the_change(
        repository: Repository) -> None:
    product = await a_product(repository, stock=1, price=10_000)
    await repository.update_product(product, {"price": 9_000}, anyone,
                                    lambda current, changes: dict(changes))
    floor = await repository.writer_lsn()
    found = await repository.product_detail(product, floor)
    assert found is not None and found[0]["price"] == 9_000
    far_future = floor + 10**12  # no standby has replayed this: the writer must answer
    found = await repository.product_detail(product, far_future)
    assert found is not None and found[0]["price"] == 9_000
    rows, total, _ = await repository.products_page(ListQuery(q="shoe", size=100), far_future)
    assert total >= 1 and product in {r["id"] for r in rows}


async def test_a_category_cannot_be_moved_under_its_own_child(repository: Repository) -> None:
    root = await repository.create_category(f"Root {uuid.uuid4().hex[:6]}", None, 0)
    child = await repository.create_category("Child", root["id"], 0)
    with pytest.raises(Invalid) as cycle:
        await repository.update_category(root["id"], {"parent_id": child["id"]})
    assert cycle.value.rule == "acyclic"
    with pytest.raises(Conflict):
        await repository.create_category("Child", root["id"], 0)
    with pytest.raises(Conflict):
        await repository.delete_category(root["id"])
