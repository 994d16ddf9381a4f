"""Replies: ``POST /api/conversations/{id}/messages``, ``GET …/messages/{message_id}`` and
``POST …/messages/{message_id}/resend``.

POST body: ``{"text": "..."}`` or ``{"template": {"name", "language", "parameters"}}``, plus
optional ``"attachments"`` (``[{"upload_id", "caption"?}]`` for a file uploaded with ``POST
…/attachments``, or ``[{"kind", "url"|"media_id", "filename"?, "caption"?}]``),
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

from aiohttp import web

from centralita.outbound import resend_reply, send_reply
from centralita.schemas.replies import Message, QueuedMessage, ReplyRequest
from centralita.web.api._json import parse_body, path_uuid, respond
from centralita.web.api.conversations import actor_of
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import documented
from core.errors import NotFound
from core.ids import ChannelAccountId, ConversationId, IdentityId, MessageId
from storage.outbound import OutboundStore

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.post("/api/conversations/{conversation_id}/messages")
@documented(
    "agent",
    {202: ("Queued for sending.", QueuedMessage)},
    body=ReplyRequest,
    extra_errors={
        409: "The conversation is closed.",
        422: "The reply window is closed: details list the approved templates.",
    },
)
async def post_reply(request: web.Request) -> web.Response:
    """Reply to the customer through the conversation's channel."""
    principal = await require(request, "agent")
    conversation_id = ConversationId(path_uuid(request, "conversation_id"))
    body = await parse_body(request, ReplyRequest)
    account_id, identifier_id, reply_to = (
        body.channel_account_id,
        body.identifier_id,
        body.reply_to_message_id,
    )
    queued = await send_reply(
        request.app[RUNTIME],
        workspace_id=principal.workspace_id,
        conversation_id=conversation_id,
        agent_id=principal.agent_id,
        text=body.text,
        template=body.template.template() if body.template is not None else None,
        attachments=[a.attachment() for a in body.attachments or ()],
        channel_account_id=ChannelAccountId(account_id) if account_id else None,
        identifier_id=IdentityId(identifier_id) if identifier_id else None,
        reply_to_message_id=MessageId(reply_to) if reply_to else None,
        require_assigned=principal.role == "agent",
        actor=actor_of(principal),
    )
    return respond(QueuedMessage.of_reply(queued), status=202)


@routes.get("/api/conversations/{conversation_id}/messages/{message_id}")
@documented(
    "agent",
    {200: ("The message's delivery state and, when it failed, the provider's error.", Message)},
)
async def get_message(request: web.Request) -> web.Response:
    """A sent message's delivery state."""
    principal = await require(request, "agent")
    conversation_id = path_uuid(request, "conversation_id")
    message_id = MessageId(path_uuid(request, "message_id"))
    async with request.app[RUNTIME].database.session() as session:
        record = await OutboundStore(session).message(message_id, workspace_id=principal.workspace_id)
    if record is None or record.conversation_id != conversation_id:
        raise NotFound("no such message in this conversation", field="message_id")
    return respond(Message.of(record))


@routes.post("/api/conversations/{conversation_id}/messages/{message_id}/resend")
@documented(
    "agent",
    {202: ("A new queued message, same content; resend_of: the old one.", Message)},
    extra_errors={409: "The message is neither unknown nor failed, or was already resent."},
)
async def resend_message(request: web.Request) -> web.Response:
    """Send an unknown or failed reply again, on the agent's explicit request."""
    principal = await require(request, "agent")
    record = await resend_reply(
        request.app[RUNTIME],
        workspace_id=principal.workspace_id,
        conversation_id=ConversationId(path_uuid(request, "conversation_id")),
        message_id=MessageId(path_uuid(request, "message_id")),
        agent_id=principal.agent_id,
        require_assigned=principal.role == "agent",
    )
    return respond(Message.of(record), status=202)
