"""Response bodies of the AI service (camelCase on the wire, as in every service).

Product ids are strings here: the AI service treats them as opaque keys from the events.
"""

from __future__ import annotations

from pydantic import Field

from services.ai.domain.index import Match
from services.ai.domain.recommend import Basis
from services.common.schemas import ApiModel


class ProductMatch(ApiModel):
    product_id: str
    name: str
    description: str
    price: int = Field(description="KRW")
    status: str
    store_id: str | None
    category_id: str | None
    score: float = Field(description="cosine similarity to the query (0 for best sellers)")

    @classmethod
    def of(cls, match: Match) -> ProductMatch:
        p = match.product
        return cls(product_id=p.product_id, name=p.name, description=p.description,
                   price=p.price, status=p.status, store_id=p.store_id,
                   category_id=p.category_id, score=round(match.score, 4))


class SearchResults(ApiModel):
    query: str
    model: str = Field(description="the embedding model that ranked the results")
    took_ms: float = Field(description="time spent embedding the query and ranking")
    results: list[ProductMatch]


class SimilarProducts(ApiModel):
    product_id: str
    results: list[ProductMatch]


class Recommendations(ApiModel):
    user_id: str
    basis: Basis = Field(description="purchases: near what the user bought; best-sellers: "
                                     "the user has bought nothing indexed yet")
    results: list[ProductMatch]


class IndexStatus(ApiModel):
    model: str
    dimensions: int
    products: int = Field(description="products in this instance's search index")
