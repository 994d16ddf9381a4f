"""Replies to the customer: the request, and a message as the reply API shows it.

A request's template and attachments are read into the domain's ``Template`` and ``Attachment``
(``core.events``), the types the outbox stores and the adapters send.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Self
from uuid import UUID

from pydantic import BeforeValidator, Field, field_validator, model_validator

from centralita.schemas.common import IsoDateTime, RequestBody, ResponseBody
from centralita.schemas.conversations import ReplyWindow
from core.delivery import RESENDABLE
from core.events import Attachment, AttachmentKind, Template
from core.states import MessageDirection
from storage.media import MediaRecord
from storage.outbound import OutboundRecord, shown_error

if TYPE_CHECKING:  # the service module is not needed to read or write the shapes
    from centralita.outbound import QueuedReply

__all__ = [
    "AttachmentRequest",
    "Message",
    "QueuedMessage",
    "ReplyRequest",
    "TemplateParameters",
    "TemplateRequest",
    "UploadedFile",
]


def _as_text(value: Any) -> Any:
    """A template parameter may be written as a number: it is sent as its text."""
    return str(value) if isinstance(value, int | float) else value


TemplateValue = Annotated[str, BeforeValidator(_as_text, json_schema_input_type=str | int | float)]


class TemplateParameters(RequestBody):
    """The values of the template's placeholders, per component."""

    body: list[TemplateValue] | None = Field(default=None, description="{{1}}, {{2}}, … of the body.")
    header: list[TemplateValue] | None = None
    buttons: list[TemplateValue] | None = None


class TemplateRequest(RequestBody):
    """An approved template; ``parameters`` a list (the body's) or per component."""

    name: str = Field(examples=["recordatorio_entrevista"])
    language: str = Field(default="es", examples=["es_MX"])
    parameters: TemplateParameters = Field(default_factory=TemplateParameters)

    @field_validator("name", "language")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator(
        "parameters", mode="before", json_schema_input_type=list[TemplateValue] | TemplateParameters | None
    )
    @classmethod
    def _body_list(cls, value: Any) -> Any:
        if value is None:
            return {}
        return {"body": value} if isinstance(value, list) else value

    def template(self) -> Template:
        return Template(
            name=self.name,
            language=self.language,
            body_parameters=tuple(self.parameters.body or ()),
            header_parameters=tuple(self.parameters.header or ()),
            button_parameters=tuple(self.parameters.buttons or ()),
        )


class AttachmentRequest(RequestBody):
    """A file to send: an upload of this conversation (``upload_id``), or by its URL or the
    provider's media id (then ``kind`` is required)."""

    upload_id: UUID | None = Field(
        default=None,
        description="The id POST /api/conversations/{id}/attachments answered ; kind and type from it.",
    )
    kind: AttachmentKind | None = None
    url: str | None = None
    media_id: str | None = Field(default=None, description="The provider's media id (WhatsApp).")
    filename: str | None = None
    caption: str | None = None
    mime_type: str | None = None

    @model_validator(mode="after")
    def _somewhere(self) -> Self:
        if self.upload_id is not None:
            if self.url or self.media_id:
                raise ValueError("an upload_id goes without url or media_id")
            return self
        if not self.url and not self.media_id:
            raise ValueError("needs an upload_id, a url or a media_id")
        if self.kind is None:
            raise ValueError("kind is required with a url or a media_id")
        return self

    def attachment(self) -> Attachment:
        if self.upload_id is not None:  # the rest is filled in from the upload's row
            return Attachment(
                kind=self.kind or AttachmentKind.FILE, upload_id=str(self.upload_id), caption=self.caption
            )
        return Attachment(
            kind=self.kind or AttachmentKind.FILE,
            url=self.url,
            media_id=self.media_id,
            filename=self.filename,
            caption=self.caption,
            mime_type=self.mime_type,
        )


class UploadedFile(ResponseBody):
    """An agent's file, kept for a reply: name its ``id`` as ``attachments[].upload_id``."""

    id: UUID = Field(description="The upload's media id; GET url serves it.")
    conversation_id: UUID
    kind: AttachmentKind = Field(description="How the channel will send it: image, video, audio, document.")
    mime_type: str = Field(description="The type its bytes carry (sniffed), not only the one declared.")
    size: int
    sha256: str
    filename: str | None
    url: str = Field(examples=["/api/media/01a1fccc-bc55-72e1-8259-a26d585c88f7"])

    @classmethod
    def of(cls, record: MediaRecord) -> UploadedFile:
        assert record.conversation_id is not None and record.mime_type and record.sha256
        return cls(
            id=record.id,
            conversation_id=record.conversation_id,
            kind=AttachmentKind(record.kind),
            mime_type=record.mime_type,
            size=record.size or 0,
            sha256=record.sha256,
            filename=record.filename,
            url=f"/api/media/{record.id}",
        )


class ReplyRequest(RequestBody):
    """Free-form text (with attachments), or an approved template when the window is closed."""

    text: str | None = None
    template: TemplateRequest | None = None
    attachments: list[AttachmentRequest] | None = None
    channel_account_id: UUID | None = Field(
        default=None, description="Write through another of the campaign's business addresses."
    )
    identifier_id: UUID | None = Field(
        default=None, description="Write to another of the customer's identities."
    )
    reply_to_message_id: UUID | None = Field(default=None, description="Quote this customer message.")


class Message(ResponseBody):
    """A message of the conversation as the reply API shows it: a reply's delivery state and why it
    failed or is unknown."""

    id: UUID
    conversation_id: UUID | None
    direction: MessageDirection
    kind: str
    channel: str
    channel_account_id: UUID | None
    identifier_id: UUID | None
    agent_id: UUID | None
    text: str | None
    template: dict[str, Any] | str | None = Field(
        description="A reply's template (name, language, parameters); a follow-up note's template name."
    )
    attachments: list[dict[str, Any]]
    tag: str | None = Field(description="The tag the reply went out with (extended window).")
    external_id: str | None = Field(description="The provider's message id.")
    delivery_state: str | None = Field(
        description="queued, sending, sent, delivered, read, failed, unknown; or a provider's own (played)."
    )
    error: dict[str, Any] | None = Field(description="Why it failed or is unknown: {code, message, …}.")
    attempts: int
    resend_of: UUID | None = Field(description="The reply this one sends again.")
    resendable: bool = Field(description="A reply that is unknown or failed: the agent may resend it.")
    created_at: IsoDateTime

    @classmethod
    def of(cls, record: OutboundRecord) -> Message:
        return cls(
            id=record.id,
            conversation_id=record.conversation_id,
            direction=record.direction,
            kind=record.kind,
            channel=record.channel,
            channel_account_id=record.channel_account_id,
            identifier_id=record.identifier_id,
            agent_id=record.agent_id,
            text=record.text,
            template=record.payload.get("template"),
            attachments=list(record.payload.get("attachments") or []),
            tag=record.payload.get("tag"),
            external_id=record.external_id,
            delivery_state=record.delivery_state,
            error=shown_error(record.error),
            attempts=record.attempts,
            resend_of=record.resend_of,
            resendable=record.direction == MessageDirection.OUT and record.delivery_state in RESENDABLE,
            created_at=record.created_at,
        )


class QueuedMessage(Message):
    """A reply just queued, with the reply window it goes out in."""

    window: ReplyWindow

    @classmethod
    def of_reply(cls, queued: QueuedReply) -> QueuedMessage:
        return cls(**dict(Message.of(queued.record)), window=ReplyWindow.of(queued.window))
