"""Assembles the AI service: model and index at start, event consumer, sync loop, routes.

Readiness waits for the model and the index (``model``) besides the database: an instance that
cannot rank yet takes no traffic. A model file that is missing or not the pinned one stops the
start with the reason, instead of serving an empty index.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from fastapi import FastAPI
from prometheus_client import Gauge

from services.ai.api.deps import AiState
from services.ai.api.routes import router
from services.ai.domain.embedding import load_encoder
from services.ai.domain.index import VectorIndex
from services.ai.indexing import Indexer, SyncLoop
from services.ai.repository import AiRepository
from services.ai.settings import AiSettings
from services.common.events import Consumer
from services.common.runtime import ServiceRuntime, create_app
from services.common.topics import ORDER_EVENTS, PRODUCT_EVENTS

log = logging.getLogger("come2us.ai")

INDEXED = Gauge("ai_index_products", "Products in this instance's search index")
MODEL_LOAD = Gauge("ai_model_load_seconds", "Time this instance took to load the model")
CONSUMER_GROUP = "ai-service"


def build(runtime: ServiceRuntime[AiSettings]) -> FastAPI:
    assert runtime.database is not None, "serve() opens the database (schema ai_service)"
    repository = AiRepository(runtime.database)
    state = AiState(config=lambda: runtime.settings.value.ai, repository=repository)
    workers: list[Consumer | SyncLoop] = []

    async def model_ready() -> str | None:
        if state.indexer is None:
            return "model: loading"
        if not state.indexer.loaded:
            return "model: building the index"
        INDEXED.set(len(state.indexer.index))
        return None

    async def start() -> None:
        config = runtime.settings.value.ai
        started = time.perf_counter()
        encoder = await asyncio.to_thread(
            load_encoder, threads=config.model.threads, max_tokens=config.model.max_tokens,
            batch_size=config.model.batch_size)
        MODEL_LOAD.set(time.perf_counter() - started)
        log.info("model %s loaded in %.2f s", encoder.model_id, time.perf_counter() - started)
        indexer = Indexer(repository, VectorIndex(encoder.dimensions), encoder,
                          sync_window=timedelta(seconds=config.index.sync_window_seconds))
        state.indexer = indexer
        await indexer.load()
        consumer = Consumer(runtime.platform.kafka.bootstrap_servers, CONSUMER_GROUP,
                            [PRODUCT_EVENTS, ORDER_EVENTS], indexer.handlers())
        sync = SyncLoop(indexer, config.index.sync_interval_seconds)
        consumer.start()
        sync.start()
        workers.extend((consumer, sync))

    async def stop() -> None:
        for worker in reversed(workers):
            await worker.stop()

    runtime.checks["model"] = model_ready
    runtime.starting.append(start)
    runtime.stopping.append(stop)
    app = create_app(runtime, "COME2US AI service")
    app.state.ai = state
    app.include_router(router)
    return app
