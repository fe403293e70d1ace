"""Steps of features/ai.feature. Which products are running shoes (and which are shoes at all)
is read from the seed catalogue, never restated here."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest
from pytest_bdd import given, parsers, then, when

from services.common.tokens import AccessToken
from stack.local import clients
from stack.local.ai_client import AiClient, AiError, Hit, ranking_problems
from stack.local.seed import Catalogue, SeedProduct, Session
from stack.local.seed_api import GatewayApi
from stack.local.session import CloudSession
from stack.waiting import wait_for
from steps.common import Scene

RUNNING_SHOES = "Shoes/Running Shoes"
SHOES = "Shoes"
INDEX_TIMEOUT_S = 120.0  # the seed's product events, embedded one by one on a busy machine
SPARE_RESULTS = 10  # results asked for beyond the running shoes, so intruders can show


def names(products: Iterable[SeedProduct]) -> set[str]:
    return {p.name for p in products}


@pytest.fixture
def ai(scene: Scene) -> Iterator[AiClient]:
    """An anonymous shopper: search and similar products are public."""
    with clients.gateway(scene.model) as http:
        yield AiClient(http)


@pytest.fixture
def seller_api(cloud: CloudSession, scene: Scene) -> Iterator[GatewayApi]:
    """The gateway API as a seller uses it; products a scenario adds are deleted after it."""
    api = GatewayApi(scene.model, cloud.workspace)
    yield api
    session: Session | None = scene.values.get("seller")
    for product_id in scene.values.get("added", []):
        if session is not None:
            api.http.delete(f"/api/products/{product_id}",
                            headers={"Authorization": f"Bearer {session.access_token}"})
    api.close()


@given("the AI service has indexed the seed catalogue")
def ai_indexed_the_seed(scene: Scene, caller: AccessToken) -> None:
    catalogue: Catalogue = scene.values["catalogue"]
    wanted = len(catalogue.products)
    with clients.gateway(scene.model) as http:
        ai = AiClient(http, caller.token)

        def indexed() -> tuple[int | None, str]:
            try:
                count = ai.indexed()
            except AiError as error:
                return None, str(error)
            return (count if count >= wanted else None), f"{count} of {wanted} indexed"

        wait_for(indexed, timeout=INDEX_TIMEOUT_S, interval=0.5,
                 what="the AI service indexes the seed catalogue")


# Other features add products of their own (a "Trail runner" for the cache feature); rankings are
# judged among the seed catalogue's products only, asking for enough results to spare them.
FOREIGN_ALLOWANCE = 20


def seed_only(catalogue: Catalogue, hits: list[Hit]) -> list[Hit]:
    seeded = names(catalogue.products)
    return [hit for hit in hits if hit.name in seeded]


@when(parsers.parse('a shopper searches for "{query}"'))
def shopper_searches(scene: Scene, ai: AiClient, query: str) -> None:
    catalogue: Catalogue = scene.values["catalogue"]
    limit = len(catalogue.products_under(RUNNING_SHOES)) + SPARE_RESULTS
    hits = seed_only(catalogue, ai.search(query, limit=limit + FOREIGN_ALLOWANCE))
    scene.values["hits"] = hits[:limit]


@then("every running shoe of the seed catalogue is among the results")
def every_running_shoe_found(scene: Scene) -> None:
    catalogue: Catalogue = scene.values["catalogue"]
    hits: list[Hit] = scene.values["hits"]
    found = {h.name for h in hits}
    missing = names(catalogue.products_under(RUNNING_SHOES)) - found
    assert not missing, f"not found: {sorted(missing)}; results: {[h.name for h in hits]}"


@then("no product outside the shoe department ranks above a running shoe")
def no_intruder_above_a_running_shoe(scene: Scene) -> None:
    catalogue: Catalogue = scene.values["catalogue"]
    hits: list[Hit] = scene.values["hits"]
    problems = ranking_problems(hits, names(catalogue.products_under(RUNNING_SHOES)),
                                names(catalogue.products_under(SHOES)))
    assert not problems, "; ".join(problems)


@when(parsers.parse("a shopper asks for the {count:d} products most similar to a running shoe"))
def similar_to_a_running_shoe(scene: Scene, ai: AiClient, count: int) -> None:
    catalogue: Catalogue = scene.values["catalogue"]
    shoe = catalogue.products_under(RUNNING_SHOES)[0]
    match = next((h for h in ai.search(shoe.name, limit=5) if h.name == shoe.name), None)
    assert match is not None, f"{shoe.name!r} is not found by its own name"
    similar = ai.similar(match.product_id, limit=count + FOREIGN_ALLOWANCE)
    scene.values["hits"] = seed_only(catalogue, similar)[:count]


@then(parsers.parse("all {count:d} are shoes"))
def all_are_shoes(scene: Scene, count: int) -> None:
    catalogue: Catalogue = scene.values["catalogue"]
    hits: list[Hit] = scene.values["hits"]
    assert len(hits) == count, hits
    others = [h.name for h in hits if h.name not in names(catalogue.products_under(SHOES))]
    assert not others, f"not shoes: {others}"


@when(parsers.parse('a seller adds a product "{name}" described as "{description}"'))
def seller_adds_product(scene: Scene, seller_api: GatewayApi, name: str,
                        description: str) -> None:
    catalogue: Catalogue = scene.values["catalogue"]
    store = catalogue.stores[0]
    session = seller_api.log_in(store.owner, catalogue.password)
    scene.values["seller"] = session
    category = next(p.category for p in catalogue.products if p.store == store.name)
    product_id = seller_api.create_product(session, {
        "storeId": seller_api.stores_of(session)[store.name],
        "categoryId": seller_api.categories()[category],
        "name": name, "description": description, "price": 189000, "stock": 5})
    scene.values["added"] = [product_id]


@then(parsers.parse('within {seconds:d} seconds a search for "{query}" ranks that product '
                    'first'))
def new_product_found_first(scene: Scene, ai: AiClient, seconds: int, query: str) -> None:
    product_id = str(scene.values["added"][0])

    def first() -> tuple[Hit | None, str]:
        hits = ai.search(query, limit=3)
        top = hits[0] if hits else None
        return (top if top and top.product_id == product_id else None), \
            f"top results: {[(h.product_id, h.name, h.score) for h in hits]}"

    wait_for(first, timeout=float(seconds), interval=0.2,
             what=f"product {product_id} ranks first for {query!r}")
