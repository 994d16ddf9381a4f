"""``GET /api/media/{media_id}``: a customer's attachment, from the media store.

Within the caller's workspace (another workspace's id is a 404).  A supervisor or admin reads any;
an agent reads the media of a customer one of whose conversations is theirs (403 otherwise) —
the same customers whose timeline the agent sees.  Media still being fetched, or that could not
be kept, is a 404 naming its status.  Images, audio and video are served ``inline``; anything
else as an attachment to download, always with ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

from aiohttp import web

from centralita.web.api._json import path_uuid
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import documented
from core.errors import Forbidden, NotFound
from core.states import MediaStatus
from storage.media import MediaRows

__all__ = ["routes"]

routes = web.RouteTableDef()

_INLINE = ("image/", "audio/", "video/")


@routes.get("/api/media/{media_id}")
@documented(
    "agent",
    {200: ("The file's bytes, with its stored Content-Type.", {"type": "string", "format": "binary"})},
    response_type="application/octet-stream",
    authorization="Supervisors and admins: any of the workspace's; agents: their customers' (else 403).",
)
async def get_media(request: web.Request) -> web.StreamResponse:
    """A customer's attachment."""
    principal = await require(request, "agent")
    media_id = path_uuid(request, "media_id")
    runtime = request.app[RUNTIME]
    async with runtime.database.session() as session:
        rows = MediaRows(session)
        media = await rows.get(media_id, principal.workspace_id)
        if media is None:
            raise NotFound("no such media in this workspace", field="media_id")
        if principal.role == "agent" and (
            principal.agent_id is None or not await rows.agent_may_see(media, principal.agent_id)
        ):
            raise Forbidden("an agent sees the media of their own customers' conversations")
    if media.status != MediaStatus.STORED or media.storage_key is None:
        raise NotFound(
            f"the media is {media.status}" + (f": {media.error}" if media.error else ""), field="media_id"
        )
    data = await runtime.media.get(media.storage_key)
    if data is None:
        raise NotFound("the media's file is missing from the media store", field="media_id")
    kind = media.mime_type or "application/octet-stream"
    disposition = "inline" if kind.startswith(_INLINE) else "attachment"
    return web.Response(
        body=data,
        content_type=kind,
        headers={
            "Content-Disposition": f'{disposition}; filename="{media.id}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=3600",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )
