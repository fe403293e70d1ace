"""The AI service's settings (``ai.*`` in config-repo/ai-service.yml)."""

from __future__ import annotations

from pydantic import BaseModel

from services.common.runtime import ServiceSettings


class ModelSettings(BaseModel):
    # One inference thread: the service shares 2 cores with the rest of the platform locally;
    # on its own Fargate task (1 vCPU) more threads would not help either.
    threads: int = 1
    max_tokens: int = 256  # sentence-transformers' max_seq_length for this model
    batch_size: int = 32


class SearchSettings(BaseModel):
    default_limit: int = 10
    max_limit: int = 50
    # Product statuses that may appear in results (search, similar, for you).
    statuses: list[str] = ["ACTIVE", "SOLD_OUT"]  # the product service's public statuses


class RecommendationSettings(BaseModel):
    history: int = 20  # the most recent purchases that make up a user's taste


class IndexSettings(BaseModel):
    # Another instance may have applied an event: every instance reads the rows changed in the
    # last `window` seconds every `interval` seconds, and reloads everything after a longer gap.
    sync_interval_seconds: float = 1.0
    sync_window_seconds: float = 60.0


class AiConfig(BaseModel):
    model: ModelSettings = ModelSettings()
    search: SearchSettings = SearchSettings()
    recommendations: RecommendationSettings = RecommendationSettings()
    index: IndexSettings = IndexSettings()


class AiSettings(ServiceSettings):
    ai: AiConfig = AiConfig()
