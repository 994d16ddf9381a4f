"""``POST /api/conversations/{conversation_id}/attachments``: an agent's file, kept for a reply.

``multipart/form-data`` with one part named ``file`` (its filename and Content-Type as the
browser sends them).  Authorized like the reply API — an agent only in a conversation assigned
to them (403), another workspace's conversation 404, a closed one 409 — before the body is read.
The file is checked against the conversation's channel (``centralita.uploads``): 413 past
``CENTRALITA_MEDIA_UPLOAD_MAX_BYTES`` or the channel's limit for its type, 415 for a type the
channel does not send (or bytes that are not the type they claim), 400 without a file; each
error names ``file``.  201 with the upload: ``attachments: [{"upload_id": id}]`` in a reply sends it.
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import BodyPartReader, web
from aiohttp.web_protocol import RequestPayloadError

from centralita.schemas.replies import UploadedFile
from centralita.uploads import keep_upload, upload_target
from centralita.web.api._json import path_uuid, respond
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import documented
from core.errors import (
    ClientDisconnected,
    InvalidInput,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from core.ids import ConversationId

__all__ = ["routes"]

routes = web.RouteTableDef()

_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "description": "One file."}},
}
_SLACK = 64 * 1024  # the multipart envelope around the file: boundaries, part headers
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/]')


def _filename(raw: str | None) -> str | None:
    """The file's name without any path, control characters or quotes (at most 255 characters)."""
    if not raw:
        return None
    name = _UNSAFE.sub("_", raw.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")
    return name[:255] or None


async def _read_file(
    request: web.Request, *, limit: int, timeout_s: float
) -> tuple[bytes, str | None, str | None]:
    """The ``file`` part's bytes, declared type and name, within ``limit`` bytes and ``timeout_s``."""
    if not request.content_type.startswith("multipart/form-data"):
        raise UnsupportedMediaType(
            "send the file as multipart/form-data, in a part named file", field="Content-Type"
        )
    if request.content_length is not None and request.content_length > limit + _SLACK:
        raise PayloadTooLarge(f"the file exceeds {limit} bytes", field="file")
    found: tuple[bytes, str | None, str | None] | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or part.name != "file":
                    raise InvalidInput("the form has one part, named file", field="file")
                if found is not None:
                    raise InvalidInput("one file per upload", field="file")
                chunks: list[bytes] = []
                size = 0
                while chunk := await part.read_chunk(65536):
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge(f"the file exceeds {limit} bytes", field="file")
                    chunks.append(chunk)
                found = (b"".join(chunks), part.headers.get("Content-Type"), _filename(part.filename))
    except TimeoutError:
        raise RequestTimeout(f"the file did not arrive within {timeout_s:g} s", field="file") from None
    except (ConnectionError, RequestPayloadError) as exc:
        raise ClientDisconnected("the client went away during the upload") from exc
    except ValueError as exc:  # aiohttp: a malformed multipart body
        raise InvalidInput(f"the multipart body is malformed: {exc}", field="file") from None
    if found is None:
        raise InvalidInput("no file: send it in a part named file", field="file")
    return found


@routes.post("/api/conversations/{conversation_id}/attachments")
@documented(
    "agent",
    {201: ("Kept; send it with attachments: [{upload_id}] in a reply.", UploadedFile)},
    body=_FORM,
    body_types=("multipart/form-data",),
    authorization="Supervisors and admins: any conversation of the workspace; agents: theirs (else 403).",
    extra_errors={
        409: "The conversation is closed.",
        415: "A type the conversation's channel does not send, or a body that is not multipart/form-data.",
    },
)
async def upload_file(request: web.Request) -> web.Response:
    """Upload a file to send in a reply."""
    principal = await require(request, "agent")
    runtime = request.app[RUNTIME]
    target = await upload_target(
        runtime,
        workspace_id=principal.workspace_id,
        conversation_id=ConversationId(path_uuid(request, "conversation_id")),
        agent_id=principal.agent_id,
        require_assigned=principal.role == "agent",
    )
    data, declared, filename = await _read_file(
        request, limit=runtime.settings.media_upload_max_bytes, timeout_s=runtime.settings.http_body_timeout_s
    )
    record = await keep_upload(runtime, target, data=data, declared_type=declared, filename=filename)
    return respond(UploadedFile.of(record), status=201)
