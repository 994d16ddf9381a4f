"""Replies: ``POST /api/conversations/{id}/messages``, ``GET …/messages/{message_id}`` and
``POST …/messages/{message_id}/resend``.

POST body: ``{"text": "..."}`` or ``{"template": {"name", "language", "parameters"}}``, plus
optional ``"attachments"`` (``[{"kind", "url"|"media_id", "filename"?, "caption"?}]``),
``"channel_account_id"`` / ``"identifier_id"`` (write through another of the customer's
identities) and ``"reply_to_message_id"`` (quote a customer message).  Answers 202 with the
queued message and its reply window; 422 ``reply_window_closed`` with the approved templates
when free-form text cannot go out; 403 when an agent replies in a conversation not assigned to
them; 404 for another workspace's conversation.  The GET shows a message's delivery state
(``queued``, ``sending``, ``sent``, ``delivered``, ``read``, ``failed``, ``unknown``) and, when it
failed or is unknown, why.  ``unknown``: the provider may have it but its answer was never
recorded (the sender was gone in between); it is never sent again by itself.  The resend answers
202 with a new queued message whose ``resend_of`` is the old one, and 409 unless the old one is
``unknown`` or ``failed`` and was not resent yet.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from centralita.outbound import attachment_from_dict, resend_reply, send_reply, template_from_dict
from centralita.web.api._json import json_body, path_uuid
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from core.errors import InvalidInput, NotFound
from core.ids import ChannelAccountId, ConversationId, IdentityId, MessageId
from storage.outbound import OutboundStore

__all__ = ["routes"]

routes = web.RouteTableDef()

_FIELDS = frozenset(
    {"text", "template", "attachments", "channel_account_id", "identifier_id", "reply_to_message_id"}
)


def _optional_uuid(body: dict[str, Any], name: str) -> uuid.UUID | None:
    raw = body.get(name)
    if raw is None:
        return None
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise InvalidInput(f"{name} must be a UUID", field=name) from None


@routes.post("/api/conversations/{conversation_id}/messages")
async def post_reply(request: web.Request) -> web.Response:
    principal = await require(request, "agent")
    conversation_id = ConversationId(path_uuid(request, "conversation_id"))
    body = await json_body(request)
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", field=unknown[0])
    text = body.get("text")
    if text is not None and not isinstance(text, str):
        raise InvalidInput("text must be a string", field="text")
    template = template_from_dict(body["template"]) if body.get("template") is not None else None
    raw_attachments = body.get("attachments") or []
    if not isinstance(raw_attachments, list):
        raise InvalidInput("attachments must be a list", field="attachments")
    attachments = [attachment_from_dict(a, i) for i, a in enumerate(raw_attachments)]
    account_id = _optional_uuid(body, "channel_account_id")
    identifier_id = _optional_uuid(body, "identifier_id")
    reply_to = _optional_uuid(body, "reply_to_message_id")
    queued = await send_reply(
        request.app[RUNTIME],
        workspace_id=principal.workspace_id,
        conversation_id=conversation_id,
        agent_id=principal.agent_id,
        text=text,
        template=template,
        attachments=attachments,
        channel_account_id=ChannelAccountId(account_id) if account_id else None,
        identifier_id=IdentityId(identifier_id) if identifier_id else None,
        reply_to_message_id=MessageId(reply_to) if reply_to else None,
        require_assigned=principal.role == "agent",
    )
    return web.json_response(queued.to_dict(), status=202)


@routes.get("/api/conversations/{conversation_id}/messages/{message_id}")
async def get_message(request: web.Request) -> web.Response:
    principal = await require(request, "agent")
    conversation_id = path_uuid(request, "conversation_id")
    message_id = MessageId(path_uuid(request, "message_id"))
    async with request.app[RUNTIME].database.session() as session:
        record = await OutboundStore(session).message(message_id, workspace_id=principal.workspace_id)
    if record is None or record.conversation_id != conversation_id:
        raise NotFound("no such message in this conversation", field="message_id")
    return web.json_response(record.to_dict())


@routes.post("/api/conversations/{conversation_id}/messages/{message_id}/resend")
async def resend_message(request: web.Request) -> web.Response:
    principal = await require(request, "agent")
    record = await resend_reply(
        request.app[RUNTIME],
        workspace_id=principal.workspace_id,
        conversation_id=ConversationId(path_uuid(request, "conversation_id")),
        message_id=MessageId(path_uuid(request, "message_id")),
        agent_id=principal.agent_id,
        require_assigned=principal.role == "agent",
    )
    return web.json_response(record.to_dict(), status=202)
