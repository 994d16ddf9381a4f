"""Reading a request body at the edge: bounded in size and in time, foreign errors translated.

- more than ``limit`` bytes → ``PayloadTooLarge`` (413);
- not all of it within ``timeout_s`` (a stalled or trickling client) → ``RequestTimeout`` (408);
- the client went away mid-body → ``ClientDisconnected`` (logged at INFO by the error
  middleware: nobody is left to answer, and it is not our failure).
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from core.errors import ClientDisconnected, PayloadTooLarge, RequestTimeout

__all__ = ["read_body"]


async def read_body(request: web.Request, *, limit: int, timeout_s: float) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body exceeds {limit} bytes", field="body")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.content.iter_chunked(65536):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the body exceeds {limit} bytes", field="body")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {timeout_s:g} s", field="body") from None
    except (ConnectionError, RequestPayloadError) as exc:
        raise ClientDisconnected(f"the client went away after {size} bytes of the body") from exc
    return b"".join(chunks)
