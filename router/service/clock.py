"""A clock a test (or a replay) moves by hand, and that wakes the router's timer when it moves.

``RouterDeps.clock`` is any ``() -> datetime``.  A clock that also offers ``listen``/``unlisten``
(``AdvancingClock``) tells the router service when time jumped, so offer timeouts, bullseye
steps, grace periods and opening hours fire at once instead of after a real wait.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["AdvancingClock", "ManualClock"]


@runtime_checkable
class AdvancingClock(Protocol):
    def __call__(self) -> datetime: ...

    def listen(self, callback: Callable[[], None]) -> None: ...

    def unlisten(self, callback: Callable[[], None]) -> None: ...


class ManualClock:
    """Stands still until ``advance``d; every listener is called after each move."""

    def __init__(self, start: datetime | None = None) -> None:
        moment = start or datetime.now(UTC)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        self._now = moment
        self._listeners: list[Callable[[], None]] = []

    def __call__(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        return self.set(self._now + timedelta(seconds=seconds))

    def set(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if moment < self._now:
            raise ValueError("a clock does not go backwards")
        self._now = moment
        for callback in list(self._listeners):
            callback()
        return moment

    def listen(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def unlisten(self, callback: Callable[[], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)
