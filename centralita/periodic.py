"""The scaffold of the engine's periodic jobs (follow-ups, surveys, retention).

A ``PeriodicJob`` runs ``run_round`` every ``interval_s`` in its own task, and at once when
``poke()``d — or whenever an ``AdvancingClock`` (tests, replays) moves.  A round that fails with
a ``CentralitaError`` is logged (``failed_event``) and the next one runs on schedule: every job
commits its work in its own transactions, so a failed round leaves nothing half done.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from centralita.runtime import Runtime
from core.errors import CentralitaError
from router.service.clock import AdvancingClock

__all__ = ["PeriodicJob"]


class PeriodicJob:
    task_name: ClassVar[str]
    started_event: ClassVar[str]
    failed_event: ClassVar[str]

    def __init__(self, runtime: Runtime, *, interval_s: float, log: Any) -> None:
        self.runtime = runtime
        self.interval_s = interval_s
        self._log = log
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one round at a time, whoever asks for it

    def started_fields(self) -> dict[str, Any]:
        """What the start is logged with, besides ``interval_s``."""
        return {}

    async def run_round(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        if isinstance(self.runtime.clock, AdvancingClock):
            self.runtime.clock.listen(self.poke)
        self._task = asyncio.create_task(self._loop(), name=self.task_name)
        self._log.info(self.started_event, interval_s=self.interval_s, **self.started_fields())

    async def stop(self) -> None:
        if isinstance(self.runtime.clock, AdvancingClock):
            self.runtime.clock.unlisten(self.poke)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def poke(self) -> None:
        """Run a round now (the clock moved, or something became due sooner)."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_round()
            except CentralitaError as exc:
                self._log.warning(self.failed_event, code=exc.code, reason=exc.message)
            try:
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
