"""What routes are given: the service's state, from the app (set by `services.ai.app.build`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.ai.indexing import Indexer
from services.ai.repository import AiRepository
from services.ai.settings import AiConfig
from services.common.errors import Invalid, Unavailable


@dataclass
class AiState:
    config: Callable[[], AiConfig]  # the current settings (they refresh at run time)
    repository: AiRepository
    indexer: Indexer | None = None  # set once the model is loaded and the index built

    def ready_indexer(self) -> Indexer:
        if self.indexer is None or not self.indexer.loaded:
            raise Unavailable("the embedding model is still loading; retry in a moment")
        return self.indexer

    def limit(self, asked: int | None) -> int:
        search = self.config().search
        if asked is None:
            return search.default_limit
        if asked > search.max_limit:
            raise Invalid("limit", "max", f"limit must be at most {search.max_limit}")
        return asked


def ai_state(request: Request) -> AiState:
    state: AiState = request.app.state.ai
    return state


State = Annotated[AiState, Depends(ai_state)]
