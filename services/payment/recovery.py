"""The loop that finishes interrupted work: pending payments after a crash, refunds after an
outage of the provider (`services.payment.domain.processing.Processor.resume`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from services.payment.domain.processing import Processor
from services.payment.settings import RecoveryOptions

log = logging.getLogger("come2us.payment.recovery")


class RecoveryLoop:
    def __init__(self, processor: Processor, options: Callable[[], RecoveryOptions]) -> None:
        self.processor = processor
        self.options = options
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="payment-recovery")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            options = self.options()
            await asyncio.sleep(options.sweep_interval_seconds)
            try:
                await self.processor.resume(
                    timedelta(seconds=options.resume_payments_after_seconds),
                    timedelta(seconds=options.retry_refunds_after_seconds))
            except Exception:
                log.exception("recovery sweep failed; trying again next round")
