"""The product service's rules: cart math, rating aggregates, stock, statuses, the tree, images."""

from __future__ import annotations

import pytest

from services.common.errors import Conflict, Invalid
from services.product.domain.cart import (
    DeliveryPolicy,
    PricedProduct,
    added,
    check_room,
    price_cart,
    store_totals,
)
from services.product.domain.catalogue import (
    ListQuery,
    ProductStatus,
    ancestors,
    build_tree,
    check_new_parent,
    descendants,
    find,
    requested_status,
    status_after_stock,
)
from services.product.domain.images import check_image, sniff
from services.product.domain.reviews import RatingAggregate, RatingDelta
from services.product.domain.stock import ReservationStatus, Wanted, check_replay, plan

ACTIVE, HIDDEN, SOLD_OUT = ProductStatus.ACTIVE, ProductStatus.HIDDEN, ProductStatus.SOLD_OUT


def product(pid: int, store: int, price: int, stock: int = 10,
            status: ProductStatus = ACTIVE) -> PricedProduct:
    return PricedProduct(pid, store, f"p{pid}", price, stock, status)


# --- cart math ------------------------------------------------------------------------------

def test_a_cart_is_priced_per_store_with_each_stores_delivery_policy() -> None:
    products = {1: product(1, 10, 12_000), 2: product(2, 10, 30_000), 3: product(3, 20, 5_000)}
    policies = {10: DeliveryPolicy(fee=3_000, free_over=50_000, lead_days=2),
                20: DeliveryPolicy(fee=2_500, free_over=None, lead_days=1)}
    cart = price_cart({1: 2, 2: 1, 3: 3}, products, policies)
    assert [line.line_total for line in cart.lines] == [24_000, 30_000, 15_000]
    by_store = {s.store_id: (s.subtotal, s.delivery_fee) for s in cart.stores}
    assert by_store == {10: (54_000, 0), 20: (15_000, 2_500)}  # store 10 is over its threshold
    assert (cart.items_total, cart.delivery_total, cart.total) == (69_000, 2_500, 71_500)
    assert cart.item_count == 6


def test_lines_that_cannot_be_bought_are_shown_but_count_toward_no_total() -> None:
    products = {1: product(1, 10, 10_000, stock=1), 2: product(2, 10, 7_000, status=SOLD_OUT),
                3: product(3, 11, 4_000, status=HIDDEN)}
    cart = price_cart({1: 2, 2: 1, 3: 1, 4: 1}, products, {})
    assert [(line.product_id, line.available) for line in cart.lines] == [
        (1, False), (2, False), (3, False)]
    assert cart.missing == (4,)  # deleted since it was added
    assert (cart.items_total, cart.delivery_total, cart.stores) == (0, 0, ())


def test_a_store_without_a_policy_delivers_free_and_an_empty_subtotal_costs_nothing() -> None:
    assert store_totals([(7, 1_000)], {})[0].delivery_fee == 0
    assert DeliveryPolicy(3_000, None, 1).fee_for(0) == 0
    assert DeliveryPolicy(3_000, 10_000, 1).fee_for(9_999) == 3_000
    assert DeliveryPolicy(3_000, 10_000, 1).fee_for(10_000) == 0


def test_quantities_stay_within_the_per_line_cap_and_the_line_count() -> None:
    assert added(3, 2, max_quantity=5) == 5
    with pytest.raises(Invalid) as over:
        added(4, 2, max_quantity=5)
    assert (over.value.field, over.value.rule) == ("quantity", "range")
    with pytest.raises(Invalid):
        added(0, 0, max_quantity=5)
    check_room(lines=2, has_line=True, max_lines=2)  # changing a line needs no room
    with pytest.raises(Invalid) as full:
        check_room(lines=2, has_line=False, max_lines=2)
    assert full.value.rule == "max_lines"


# --- rating aggregates ----------------------------------------------------------------------

def test_the_rating_aggregate_follows_added_changed_and_removed_reviews() -> None:
    aggregate = RatingAggregate()
    assert aggregate.average is None
    for rating in (5, 4, 3):
        aggregate = aggregate.apply(RatingDelta.added(rating))
    assert (aggregate.count, aggregate.sum, aggregate.average) == (3, 12, 4.0)
    aggregate = aggregate.apply(RatingDelta.changed(old=3, new=1))
    assert (aggregate.count, aggregate.average) == (3, 3.33)
    aggregate = aggregate.apply(RatingDelta.removed(5))
    assert (aggregate.count, aggregate.sum, aggregate.average) == (2, 5, 2.5)


def test_a_rating_outside_one_to_five_is_refused_and_the_aggregate_never_goes_wrong() -> None:
    for rating in (0, 6):
        with pytest.raises(Invalid) as refused:
            RatingDelta.added(rating)
        assert (refused.value.field, refused.value.rule) == ("rating", "range")
    with pytest.raises(ValueError):
        RatingAggregate().apply(RatingDelta.removed(4))


# --- stock and statuses ---------------------------------------------------------------------

def test_stock_moves_the_status_between_active_and_sold_out_but_never_unhides() -> None:
    assert status_after_stock(ACTIVE, 0) is SOLD_OUT
    assert status_after_stock(SOLD_OUT, 3) is ACTIVE
    assert status_after_stock(HIDDEN, 0) is HIDDEN and status_after_stock(HIDDEN, 5) is HIDDEN
    assert requested_status(ACTIVE, 0) is SOLD_OUT
    with pytest.raises(Invalid):
        requested_status(SOLD_OUT, 4)


def test_a_reservation_plan_merges_lines_and_orders_them_by_product() -> None:
    wanted = plan([Wanted(9, 1), Wanted(2, 3), Wanted(9, 2)])
    assert wanted == (Wanted(2, 3), Wanted(9, 3))  # the lock order: by product id
    with pytest.raises(Invalid):
        plan([])
    with pytest.raises(Invalid):
        plan([Wanted(1, 0)])


def test_a_second_reserve_for_an_order_is_a_replay_or_a_conflict() -> None:
    same = (Wanted(1, 2),)
    check_replay("o-1", ReservationStatus.HELD, {1: 2}, same)  # a replay: fine
    with pytest.raises(Conflict, match="different lines"):
        check_replay("o-1", ReservationStatus.HELD, {1: 1}, same)
    with pytest.raises(Conflict, match="released"):
        check_replay("o-1", ReservationStatus.RELEASED, {1: 2}, same)


# --- the category tree ----------------------------------------------------------------------

ROWS = [{"id": 1, "name": "Sports", "parent_id": None, "position": 1},
        {"id": 2, "name": "Shoes", "parent_id": 1, "position": 0},
        {"id": 3, "name": "Running", "parent_id": 2, "position": 0},
        {"id": 4, "name": "Books", "parent_id": None, "position": 0},
        {"id": 5, "name": "Trail", "parent_id": 2, "position": 0}]
PARENTS: dict[int, int | None] = {int(r["id"]): r["parent_id"] for r in ROWS}  # type: ignore[misc]


def test_categories_form_an_ordered_tree() -> None:
    roots = build_tree(ROWS)
    assert [r.name for r in roots] == ["Books", "Sports"]  # by position
    shoes = find(roots, 2)
    assert shoes is not None and [c.name for c in shoes.children] == ["Running", "Trail"]
    assert ancestors(PARENTS, 3) == [2, 1]
    assert descendants(PARENTS, 2) == {2, 3, 5}


def test_a_category_cannot_move_under_itself_or_its_descendants() -> None:
    check_new_parent(PARENTS, 3, 4)
    check_new_parent(PARENTS, 3, None)
    for parent in (2, 3, 5):
        with pytest.raises(Invalid) as refused:
            check_new_parent(PARENTS, 2, parent)
        assert refused.value.rule == "acyclic"
    with pytest.raises(Invalid) as missing:
        check_new_parent(PARENTS, 2, 99)
    assert missing.value.rule == "exists"


def test_equal_list_queries_share_one_cache_key() -> None:
    a = ListQuery(q="  Running   Shoes ", page=0, size=20)
    b = ListQuery(q="running shoes")
    assert a.cache_key() == b.cache_key()
    assert ListQuery(q="   ").cache_key() == ListQuery().cache_key()
    assert ListQuery(page=1).cache_key() != ListQuery().cache_key()
    with pytest.raises(Invalid):
        ListQuery(min_price=10, max_price=5)


# --- images ---------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 12
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 "
ALLOWED = ("image/jpeg", "image/png", "image/webp")


def test_image_types_are_recognised_by_their_bytes() -> None:
    assert (sniff(PNG), sniff(JPEG), sniff(WEBP)) == ("image/png", "image/jpeg", "image/webp")
    assert sniff(b"<svg xmlns=") is None


@pytest.mark.parametrize(("declared", "head", "size", "rule"), [
    ("text/html", PNG, 100, "content_type"),
    (None, PNG, 100, "content_type"),
    ("image/png", PNG, 0, "not_empty"),
    ("image/png", PNG, 1001, "max_size"),
    ("image/png", JPEG, 100, "content_matches_type"),
])
def test_an_upload_is_refused_naming_the_rule_it_breaks(declared: str | None, head: bytes,
                                                        size: int, rule: str) -> None:
    with pytest.raises(Invalid) as refused:
        check_image(declared, head, size, ALLOWED, max_bytes=1000)
    assert (refused.value.field, refused.value.rule) == ("file", rule)


def test_an_image_whose_bytes_match_its_declared_type_is_accepted() -> None:
    assert check_image("image/png; charset=binary", PNG, 1000, ALLOWED, 1000) == "image/png"
