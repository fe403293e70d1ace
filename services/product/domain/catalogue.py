"""Rules of the catalogue: product status and stock, the category tree, list queries."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from services.common.errors import Invalid


class ProductStatus(StrEnum):
    ACTIVE = "ACTIVE"      # listed and purchasable
    HIDDEN = "HIDDEN"      # withdrawn by the seller: only the owner (and admins) see it
    SOLD_OUT = "SOLD_OUT"  # listed, not purchasable; set and cleared by stock movements


PUBLIC_STATUSES = (ProductStatus.ACTIVE, ProductStatus.SOLD_OUT)


def status_after_stock(status: ProductStatus, stock: int) -> ProductStatus:
    """What a product's status becomes when its stock changes to ``stock``.

    Running out makes an active product SOLD_OUT, and stock coming back (a release, a restock)
    makes a sold-out one ACTIVE again; a HIDDEN product stays hidden: hiding is the seller's
    decision, never the stock's.
    """
    if status is ProductStatus.ACTIVE and stock == 0:
        return ProductStatus.SOLD_OUT
    if status is ProductStatus.SOLD_OUT and stock > 0:
        return ProductStatus.ACTIVE
    return status


def requested_status(requested: ProductStatus, stock: int) -> ProductStatus:
    """The status a seller asks for, reconciled with the stock (ACTIVE with none is SOLD_OUT)."""
    if requested is ProductStatus.SOLD_OUT and stock > 0:
        raise Invalid("status", "stock_consistent",
                      "SOLD_OUT is set by stock running out; set stock to 0 instead")
    return status_after_stock(requested, stock)


# --- the category tree --------------------------------------------------------------------

@dataclass
class CategoryNode:
    id: int
    name: str
    parent_id: int | None
    position: int = 0
    children: list[CategoryNode] = field(default_factory=list)


def build_tree(rows: Iterable[Mapping[str, Any]]) -> list[CategoryNode]:
    """Rows (id, name, parent_id, position) into roots with nested, ordered children."""
    nodes = {int(r["id"]): CategoryNode(int(r["id"]), str(r["name"]),
                                        None if r["parent_id"] is None else int(r["parent_id"]),
                                        int(r.get("position") or 0))
             for r in rows}
    roots: list[CategoryNode] = []
    for node in nodes.values():
        parent = nodes.get(node.parent_id) if node.parent_id is not None else None
        (parent.children if parent is not None else roots).append(node)

    def order(level: list[CategoryNode]) -> None:
        level.sort(key=lambda n: (n.position, n.name, n.id))
        for node in level:
            order(node.children)

    order(roots)
    return roots


def find(nodes: Iterable[CategoryNode], category_id: int) -> CategoryNode | None:
    """The node ``category_id`` anywhere in the trees ``nodes``."""
    for node in nodes:
        if node.id == category_id:
            return node
        below = find(node.children, category_id)
        if below is not None:
            return below
    return None


def ancestors(parents: Mapping[int, int | None], category_id: int) -> list[int]:
    """The ids from ``category_id``'s parent up to its root (nearest first)."""
    path: list[int] = []
    current = parents.get(category_id)
    while current is not None:
        if current in path or current == category_id:
            raise ValueError(f"category {category_id} is part of a cycle")
        path.append(current)
        current = parents.get(current)
    return path


def check_new_parent(parents: Mapping[int, int | None], category_id: int,
                     new_parent: int | None) -> None:
    """A move that would put a category under itself or its own descendant is refused."""
    if new_parent is None:
        return
    if new_parent not in parents:
        raise Invalid("parentId", "exists", f"category {new_parent} does not exist")
    if new_parent == category_id or category_id in ancestors(parents, new_parent):
        raise Invalid("parentId", "acyclic",
                      f"category {new_parent} is {category_id} itself or one of its "
                      f"descendants: the tree would get a cycle")


def descendants(parents: Mapping[int, int | None], category_id: int) -> set[int]:
    """``category_id`` and every category below it (a list filtered by it includes them)."""
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(child)
    found = {category_id}
    pending = [category_id]
    while pending:
        for child in children.get(pending.pop(), ()):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


# --- list pages -----------------------------------------------------------------------------

class Sort(StrEnum):
    NEWEST = "newest"
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"
    RATING = "rating"


MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class ListQuery:
    """One public list page; equal queries share one cache entry (`cache_key`)."""

    store_id: int | None = None
    category_id: int | None = None
    q: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    sort: Sort = Sort.NEWEST
    page: int = 0
    size: int = 20

    def __post_init__(self) -> None:
        if self.size < 1 or self.size > MAX_PAGE_SIZE:
            raise Invalid("size", "range", f"size must be 1..{MAX_PAGE_SIZE}")
        if self.page < 0:
            raise Invalid("page", "range", "page starts at 0")
        if (self.min_price is not None and self.max_price is not None
                and self.min_price > self.max_price):
            raise Invalid("minPrice", "ordered", "minPrice is above maxPrice")

    def normalised(self) -> ListQuery:
        """Blank or padded search text is no search: one cache entry, not many."""
        text = " ".join((self.q or "").split()).lower() or None
        return ListQuery(self.store_id, self.category_id, text, self.min_price, self.max_price,
                         self.sort, self.page, self.size)

    def cache_key(self) -> str:
        """A short digest of the normalised query (keys stay bounded whatever clients send)."""
        canonical = json.dumps(asdict(self.normalised()), sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]
