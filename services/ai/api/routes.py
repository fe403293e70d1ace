"""Routes: semantic search, similar products, recommendations for the caller."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query

from services.ai.api.deps import State
from services.ai.api.schemas import (
    IndexStatus,
    ProductMatch,
    Recommendations,
    SearchResults,
    SimilarProducts,
)
from services.ai.domain import recommend
from services.common.errors import Invalid, NotFound
from services.common.identity import CurrentCaller
from services.common.schemas import error_responses

router = APIRouter(prefix="/ai", tags=["ai"])

Limit = Annotated[int | None, Query(ge=1, description="how many results (default and maximum "
                                                      "from the settings)")]


@router.get("/search", response_model=SearchResults, summary="Semantic product search",
            responses=error_responses(422, 503))
async def search(state: State, q: Annotated[str, Query(min_length=1, max_length=200)],
                 limit: Limit = None) -> SearchResults:
    started = time.perf_counter()
    if not q.strip():
        raise Invalid("q", "not_blank", "the query must contain words")
    indexer = state.ready_indexer()
    count = state.limit(limit)
    query = (await indexer.embed([q]))[0]
    matches = indexer.index.nearest(query, count, statuses=state.config().search.statuses)
    return SearchResults(query=q, model=indexer.model_id,
                         took_ms=round((time.perf_counter() - started) * 1000, 2),
                         results=[ProductMatch.of(m) for m in matches])


@router.get("/products/{product_id}/similar", response_model=SimilarProducts,
            summary="Products similar to one product", responses=error_responses(404, 422, 503))
async def similar(state: State, product_id: str, limit: Limit = None) -> SimilarProducts:
    indexer = state.ready_indexer()
    matches = recommend.similar(indexer.index, product_id, state.limit(limit),
                                statuses=state.config().search.statuses)
    if matches is None:
        raise NotFound(f"product {product_id} is not in the search index")
    return SimilarProducts(product_id=product_id, results=[ProductMatch.of(m) for m in matches])


@router.get("/recommendations/me", response_model=Recommendations,
            summary="Products for the signed-in user, from what they bought",
            responses=error_responses(401, 422, 503))
async def for_me(state: State, caller: CurrentCaller, limit: Limit = None) -> Recommendations:
    indexer = state.ready_indexer()
    config = state.config()
    count = state.limit(limit)
    purchases = await state.repository.recent_purchases(caller.user_id,
                                                        config.recommendations.history)
    best_sellers = await state.repository.best_sellers(count + len(purchases))
    result = recommend.for_user(indexer.index, purchases, best_sellers, count,
                                statuses=config.search.statuses)
    return Recommendations(user_id=caller.user_id, basis=result.basis,
                           results=[ProductMatch.of(m) for m in result.matches])


@router.get("/index", response_model=IndexStatus, responses=error_responses(503),
            summary="The answering instance's search index: model and size")
async def index_status(state: State) -> IndexStatus:
    indexer = state.ready_indexer()
    return IndexStatus(model=indexer.model_id, dimensions=indexer.index.dimensions,
                       products=len(indexer.index))
