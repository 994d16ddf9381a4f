"""Retrying sends that failed transiently, with exponential backoff (tenacity).

``context.send_retries`` is the number of attempts.  The backoff starts at
``context.extra["retry_initial_s"]`` (default 0.5 s) and doubles up to ``retry_max_s`` (default
8 s); tests and benchmarks set both tiny.  Only ``TransientChannelError`` is retried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from core.channel import AdapterContext
from core.errors import TransientChannelError
from core.logging import get_logger

__all__ = ["send_with_retries"]

T = TypeVar("T")
_log = get_logger(__name__)


async def send_with_retries(context: AdapterContext, call: Callable[[], Awaitable[T]], *, channel: str) -> T:
    initial = float(context.extra.get("retry_initial_s", 0.5))
    ceiling = float(context.extra.get("retry_max_s", 8.0))
    attempts = max(1, context.send_retries)
    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=initial, min=initial, max=ceiling),
        retry=retry_if_exception_type(TransientChannelError),
        before_sleep=lambda state: _log.info(
            "send_retry",
            channel=channel,
            attempt=state.attempt_number,
            error=type(state.outcome.exception()).__name__ if state.outcome else None,
        ),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover
