"""Agents' files: uploaded to a conversation, then sent by a reply that names them.

``upload_target`` decides who may upload — who may reply: the workspace's supervisors and
admins, and the agent the conversation is assigned to — before the bytes are read;
``keep_upload`` checks the file against what the conversation's channel sends (its adapter's
``Capabilities.outbound_media``: types, each with the provider's size limit) and the engine's
own ``media_upload_max_bytes``, puts the bytes in the media store and writes a ``stored`` media
row that no message names yet.

A reply names uploads (``Attachment.upload_id``); ``take_uploads`` (inside ``queue_reply``'s
transaction) checks each against the reply's route, fills in what the row knows (kind, type,
name, size, SHA-256) and makes the row the message's attachment at its position, so the
timeline shows it like a customer's.  An upload is sent once: a second reply naming it is a
409.  When the outbound worker sends the reply, ``with_content`` reads the bytes back into
``Attachment.content`` for the adapter (which uploads them to the provider first — WhatsApp —
or puts them in the mail); nothing of the provider's upload is kept, so a retried send uploads
again and never depends on what a failed attempt left behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from centralita.runtime import Runtime
from core.channel import Capabilities
from core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermanentChannelError,
    UnsupportedMediaType,
)
from core.events import Attachment, AttachmentKind, OutboundMessage
from core.ids import AgentId, ConversationId, MessageId, WorkspaceId, new_id
from core.logging import get_logger
from core.media import MediaRefused, MediaTooLarge, MediaTypeRefused, check_upload
from core.states import ConversationStatus, MediaStatus
from storage.media import MediaRecord, MediaRows
from storage.outbound import ConversationFacts, OutboundStore

__all__ = ["TakenUploads", "UploadTarget", "keep_upload", "take_uploads", "upload_target", "with_content"]

log = get_logger("centralita.uploads")


def _refused(exc: MediaRefused, field: str) -> InvalidInput:
    if isinstance(exc, MediaTooLarge):
        return PayloadTooLarge(str(exc), field=field)
    if isinstance(exc, MediaTypeRefused):
        return UnsupportedMediaType(str(exc), field=field)
    return InvalidInput(str(exc), field=field)


@dataclass(frozen=True, slots=True)
class UploadTarget:
    """Where an upload goes: the conversation, and the channel it is checked for."""

    workspace_id: WorkspaceId
    conversation: ConversationFacts
    agent_id: AgentId | None
    channel: str
    capabilities: Capabilities


async def upload_target(
    runtime: Runtime,
    *,
    workspace_id: WorkspaceId,
    conversation_id: ConversationId,
    agent_id: AgentId | None,
    require_assigned: bool,
) -> UploadTarget:
    """Who may upload to the conversation, decided before its bytes are read: ``NotFound`` for
    another workspace's conversation, ``Forbidden`` for an agent it is not assigned to (the
    reply's rule), ``Conflict`` when it is closed.  The channel is the conversation's account's
    (where a reply goes unless it names another)."""
    async with runtime.database.session() as session:
        conversation = await OutboundStore(session).conversation(workspace_id, conversation_id)
    if conversation is None:
        raise NotFound("no such conversation in this workspace", field="conversation_id")
    if require_assigned and (agent_id is None or conversation.agent_id != agent_id):
        raise Forbidden("an agent may only send files in conversations assigned to them")
    if conversation.status is ConversationStatus.CLOSED:
        raise Conflict("the conversation is closed", field="conversation_id")
    account = (
        runtime.directory.by_id(conversation.channel_account_id) if conversation.channel_account_id else None
    )
    channel = account.channel if account is not None else conversation.channel
    return UploadTarget(
        workspace_id, conversation, agent_id, channel, runtime.adapters.get(channel).capabilities
    )


async def keep_upload(
    runtime: Runtime, target: UploadTarget, *, data: bytes, declared_type: str | None, filename: str | None
) -> MediaRecord:
    """Check the file for the target's channel and keep it: ``PayloadTooLarge`` (413),
    ``UnsupportedMediaType`` (415) or ``InvalidInput`` (empty), each naming ``file``."""
    capabilities = target.capabilities
    try:
        accepted = check_upload(
            data,
            declared=declared_type,
            filename=filename,
            accepted=capabilities.outbound_media,
            max_bytes=runtime.settings.media_upload_max_bytes,
            channel_name=capabilities.display_name or target.channel,
            refusal=capabilities.outbound_media_refusal,
        )
    except MediaRefused as exc:
        raise _refused(exc, "file") from None
    media_id = new_id()
    await runtime.media.put(media_id.hex, data)  # the bytes first: a row never points at nothing
    async with runtime.database.transaction() as session:
        record = await MediaRows(session).add_upload(
            media_id,
            workspace_id=target.workspace_id,
            conversation_id=target.conversation.id,
            customer_id=target.conversation.customer_id,
            uploaded_by=target.agent_id,
            kind=accepted.kind.value,
            mime_type=accepted.mime_type,
            size=accepted.size,
            sha256=accepted.sha256,
            filename=filename,
            now=runtime.clock(),
        )
    log.info(
        "upload_stored",
        media_id=str(media_id),
        conversation_id=str(target.conversation.id),
        channel=target.channel,
        bytes=accepted.size,
        type=accepted.mime_type,
    )
    return record


@dataclass(frozen=True, slots=True)
class TakenUploads:
    """A reply's attachments with what their uploads' rows know filled in."""

    attachments: tuple[Attachment, ...]
    uploads: tuple[tuple[int, MediaRecord], ...]  # (position, row)

    async def attach(self, rows: MediaRows, message_id: MessageId) -> None:
        """The rows become the message's attachments; ``Conflict`` when a reply took one first."""
        for position, record in self.uploads:
            if not await rows.take_upload(record.id, message_id=message_id, position=position):
                raise Conflict(
                    "the file was already sent in another reply; upload it again",
                    field=f"attachments[{position}].upload_id",
                )


async def take_uploads(
    rows: MediaRows,
    *,
    workspace_id: WorkspaceId,
    conversation_id: ConversationId,
    attachments: Sequence[Attachment],
    capabilities: Capabilities,
    channel: str,
    max_bytes: int,
) -> TakenUploads:
    """Check the uploads a reply names against its route (``capabilities``: the channel it
    goes out on) and fill them in; raise naming ``attachments[i].upload_id`` otherwise."""
    out: list[Attachment] = []
    uploads: list[tuple[int, MediaRecord]] = []
    for position, attachment in enumerate(attachments):
        if attachment.upload_id is None:
            out.append(attachment)
            continue
        field = f"attachments[{position}].upload_id"
        try:
            media_id = uuid.UUID(attachment.upload_id)
        except ValueError:
            raise InvalidInput("not an upload id", field=field) from None
        record = await rows.get(media_id, workspace_id)
        if record is None or record.conversation_id != conversation_id:
            raise NotFound("no such upload in this conversation", field=field)
        if record.message_id is not None:
            raise Conflict("the file was already sent in another reply; upload it again", field=field)
        if record.status != MediaStatus.STORED or record.mime_type is None or record.size is None:
            raise Conflict(f"the upload is {record.status}", field=field)
        rule = next((r for r in capabilities.outbound_media if record.mime_type in r.mime_types), None)
        name = capabilities.display_name or channel
        # The route may be another channel than the one the file was checked for at upload.
        if rule is None:
            raise InvalidInput(
                capabilities.outbound_media_refusal or f"{name} does not send {record.mime_type}", field=field
            )
        limit = min(max_bytes, rule.max_bytes)
        if record.size > limit:
            raise InvalidInput(
                f"the file has {record.size} bytes; {name} takes a {record.mime_type} "
                f"of at most {limit} bytes",
                field=field,
            )
        out.append(
            attachment.model_copy(
                update={
                    "kind": AttachmentKind(rule.kind),
                    "mime_type": record.mime_type,
                    "filename": record.filename,
                    "size": record.size,
                    "sha256": record.sha256,
                    "media_id": None,
                    "url": None,
                }
            )
        )
        uploads.append((position, record))
    return TakenUploads(tuple(out), tuple(uploads))


async def with_content(runtime: Runtime, message: OutboundMessage) -> OutboundMessage:
    """The message with its uploads' bytes in ``Attachment.content`` (read from the media
    store, through the message's own media rows); ``PermanentChannelError`` when one is gone
    (erased, or its file lost)."""
    if not any(a.upload_id for a in message.attachments):
        return message
    async with runtime.database.session() as session:
        rows = (await MediaRows(session).of_messages([message.message_id])).get(message.message_id, [])
    by_position = {r.position: r for r in rows}
    attachments = []
    for position, attachment in enumerate(message.attachments):
        if attachment.upload_id is None:
            attachments.append(attachment)
            continue
        record = by_position.get(position)
        data = (
            await runtime.media.get(record.storage_key)
            if record is not None and record.status == MediaStatus.STORED and record.storage_key
            else None
        )
        if data is None:
            raise PermanentChannelError(
                "the file to send is no longer in the media store", field=f"attachments[{position}]"
            )
        attachments.append(attachment.model_copy(update={"content": data}))
    return message.model_copy(update={"attachments": tuple(attachments)})
