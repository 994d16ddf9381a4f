"""Replies: the service that puts them in the outbox and the worker that sends them.

``queue_reply`` (inside the caller's transaction: the pipeline's batch for auto-replies) and
``send_reply`` (its own transaction: the reply API, the router's hub replies) decide who the
reply goes to and through which business address, refuse what the channel would refuse (a
free-form reply outside the reply window, a template the channel or campaign cannot send) and
write the outbound ``message`` row as ``queued``: that row is the outbox.  After the commit its
id is published to the ``outbound`` queue, but only as a nudge: a lost nudge, a broker outage
or a crash right after the commit delays the send by at most ``outbound_poll_s``, never drops it.

``OutboundWorker`` claims due queued rows from the database (every ``outbound_poll_s``, and at
once when nudged), committing ``sending`` before it calls ``adapter.send`` (adapters retry
transient failures themselves, with backoff).  Then:

* accepted → ``external_id`` and ``delivery_state="sent"``; the conversation's
  ``first_response_at`` is set on its first human reply;
* ``PermanentChannelError`` (or any other non-transient error) → ``failed`` with
  ``error = {code, provider_code, message}``, never retried;
* ``TransientChannelError`` after the adapter's own retries → ``queued`` again, due after
  ``outbound_retry_s * 2^(attempt-1)``, up to ``settings.outbound_attempts`` attempts, then
  ``failed``;
* the worker gone in between (killed, or the database lost after the provider answered) → the row
  stays ``sending`` until its lease (``claimed_at``, renewed while the call lasts) is older than
  ``outbound_lease_s``; then any worker marks it ``unknown`` — never sent again by itself.  The
  agent sees "could not confirm delivery — resend?" and may resend it (``resend_reply``: a new
  row pointing back at it), or a delivery status of the provider settles it.

Delivery statuses arriving later by webhook move the row on (the pipeline's ``apply_status``; a
WhatsApp status carries our row id back as ``biz_opaque_callback_data``, which reconciles a row
whose provider id was never recorded).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from centralita.runtime import Runtime
from centralita.uploads import take_uploads, with_content
from core.channel import Capabilities, ChannelAccount
from core.delivery import RESENDABLE, DeliveryState
from core.errors import (
    BrokerUnavailable,
    CentralitaError,
    Conflict,
    DatabaseConflict,
    DatabaseUnavailable,
    Forbidden,
    InvalidInput,
    NotFound,
    PermanentChannelError,
    ServiceUnavailable,
    TransientChannelError,
)
from core.events import Address, AddressKind, Attachment, Interactive, OutboundMessage, Template
from core.ids import AgentId, ChannelAccountId, ConversationId, IdentityId, MessageId, WorkspaceId, new_id
from core.logging import get_logger
from core.reply_window import WindowState, decide_reply, templates_from_manifest, window_state
from core.states import ConversationStatus, MessageDirection
from core.supervise import supervise
from core.transport.protocol import Consumer, Delivery, Message
from core.transport.topology import OUTBOUND_QUEUE
from storage.media import MediaRows
from storage.outbound import Claimed, ConversationFacts, IdentifierFacts, OutboundRecord, OutboundStore

__all__ = [
    "OutboundWorker",
    "Queued",
    "QueuedReply",
    "SendOutcome",
    "nudge_outbound",
    "queue_auto_reply",
    "queue_reply",
    "resend_reply",
    "send_reply",
]

log = get_logger("centralita.outbound")


# ---------------------------------------------------------------------------------- the service


@dataclass(frozen=True, slots=True)
class QueuedReply:
    record: OutboundRecord
    window: WindowState


def _addressable(capabilities: Capabilities, account: ChannelAccount, ident: IdentifierFacts) -> bool:
    """Can this business address write to this identity without it having written first?"""
    return ident.kind == capabilities.address_kind.value and (ident.scope in (None, account.address))


async def _pick_route(
    runtime: Runtime,
    store: OutboundStore,
    conversation: ConversationFacts,
    account_id: ChannelAccountId | None,
    identifier_id: IdentityId | None,
) -> tuple[ChannelAccount, IdentifierFacts]:
    """The business address and the customer identity a reply goes through."""
    ws = conversation.workspace_id
    identities = await store.identifiers_of(ws, conversation.customer_id)
    by_id = {i.id: i for i in identities}
    ids = list(by_id)

    ident: IdentifierFacts | None = None
    if identifier_id is not None:
        ident = by_id.get(identifier_id)
        if ident is None:
            raise NotFound("this identity is not one of the conversation's customer", field="identifier_id")

    account: ChannelAccount | None = None
    if account_id is not None:
        account = runtime.directory.by_id(account_id)
        if account is None or account.workspace_id != ws:
            raise NotFound(
                "no active channel account with that id in this workspace", field="channel_account_id"
            )
    elif ident is not None:
        last = await store.last_account_of(ids, ident.id)
        account = runtime.directory.by_id(last) if last is not None else None
        if account is None:
            account = _account_for_kind(runtime, conversation, ident)
    else:
        account = (
            runtime.directory.by_id(conversation.channel_account_id)
            if conversation.channel_account_id
            else None
        )
        if account is None:
            raise Conflict(
                "the conversation's channel account is no longer active; choose channel_account_id",
                field="channel_account_id",
            )

    if ident is None:
        wrote = await store.last_identifier_on(account.id, ids)
        if wrote is not None:
            ident = by_id[wrote]
        elif conversation.identifier_id is not None and conversation.identifier_id in by_id:
            ident = by_id[conversation.identifier_id]
        capabilities = runtime.adapters.get(account.channel).capabilities
        if ident is None or not (
            await store.last_customer_message(account.id, [ident.id])
            or _addressable(capabilities, account, ident)
        ):
            ident = next((i for i in identities if _addressable(capabilities, account, i)), None)
        if ident is None:
            raise InvalidInput(
                f"El cliente no tiene una dirección en {capabilities.display_name or account.channel} / "
                f"the customer has no address on {account.channel}",
                field="channel_account_id",
            )
        return account, ident

    capabilities = runtime.adapters.get(account.channel).capabilities
    if not (
        await store.last_customer_message(account.id, [ident.id])
        or _addressable(capabilities, account, ident)
    ):
        raise InvalidInput(
            f"no se puede escribir a esa identidad ({ident.kind}) desde {account.channel} / "
            f"a {ident.kind} identity cannot be written to from {account.channel}",
            field="identifier_id",
        )
    return account, ident


def _account_for_kind(
    runtime: Runtime, conversation: ConversationFacts, ident: IdentifierFacts
) -> ChannelAccount:
    candidates = [
        account
        for account in runtime.directory.all()
        if account.workspace_id == conversation.workspace_id
        and account.channel in runtime.adapters.names()
        and _addressable(runtime.adapters.get(account.channel).capabilities, account, ident)
    ]
    same_campaign = [a for a in candidates if a.campaign_id == conversation.campaign_id]
    pool = same_campaign or candidates
    if not pool:
        raise InvalidInput(
            f"ningún canal configurado puede escribir a esa identidad ({ident.kind}) / "
            f"no configured channel account can write to a {ident.kind} identity",
            field="identifier_id",
        )
    return pool[0]


def _check_content(
    capabilities: Capabilities,
    channel: str,
    text: str | None,
    template: Template | None,
    attachments: Sequence[Attachment],
) -> None:
    if template is not None and (text or attachments):
        raise InvalidInput("send either a template or text/attachments, not both", field="template")
    if template is None and not (text and text.strip()) and not attachments:
        raise InvalidInput("the reply needs text, a template or an attachment", field="text")
    if text is not None and len(text) > capabilities.max_text_length:
        raise InvalidInput(
            f"the text exceeds {capabilities.max_text_length} characters, the most {channel} carries",
            field="text",
        )
    for index, attachment in enumerate(attachments):
        if attachment.kind not in capabilities.attachments:
            raise InvalidInput(
                f"{channel} cannot send a {attachment.kind.value} attachment",
                field=f"attachments[{index}].kind",
            )


@dataclass(frozen=True, slots=True)
class Queued:
    """A reply written to the outbox (not yet committed when ``queue_reply`` returns)."""

    message_id: MessageId
    window: WindowState
    tag: str | None


async def queue_reply(
    runtime: Runtime,
    store: OutboundStore,
    *,
    workspace_id: WorkspaceId,
    conversation_id: ConversationId,
    agent_id: AgentId | None,
    text: str | None = None,
    template: Template | None = None,
    attachments: Sequence[Attachment] = (),
    channel_account_id: ChannelAccountId | None = None,
    identifier_id: IdentityId | None = None,
    reply_to_message_id: MessageId | None = None,
    auto_reply: bool = False,
    require_assigned: bool = False,
    message_id: MessageId | None = None,
    actor: str | None = None,
) -> Queued:
    """Check one reply and write its outbox row in ``store``'s transaction; raise before anything
    is written otherwise.

    ``require_assigned``: the caller is an agent and may only reply in a conversation assigned to
    ``agent_id`` (``Forbidden`` otherwise).  ``actor``: who replies, for the audit trail's
    ``message.replied`` (default ``agent:<agent_id>``); an auto-reply records no such fact.
    Another workspace's conversation is ``NotFound``.
    ``ReplyWindowClosed`` (HTTP 422, details: the approved templates) for free-form text outside
    the window; ``Conflict`` (409) when the conversation is closed.
    """
    now = runtime.clock()
    message_id = message_id or MessageId(new_id())
    conversation = await store.conversation(workspace_id, conversation_id)
    if conversation is None:
        raise NotFound("no such conversation in this workspace", field="conversation_id")
    if conversation.status is ConversationStatus.CLOSED:
        raise Conflict(
            "the conversation is closed; the customer's next message opens a new one", field="conversation_id"
        )
    if require_assigned and (agent_id is None or conversation.agent_id != agent_id):
        raise Forbidden("an agent may only reply in conversations assigned to them")
    account, ident = await _pick_route(runtime, store, conversation, channel_account_id, identifier_id)
    adapter = runtime.adapters.get(account.channel)
    capabilities = adapter.capabilities
    taken = await take_uploads(
        MediaRows(store.session),
        workspace_id=workspace_id,
        conversation_id=conversation.id,
        attachments=attachments,
        capabilities=capabilities,
        channel=account.channel,
        max_bytes=runtime.settings.media_upload_max_bytes,
    )
    attachments = taken.attachments
    _check_content(capabilities, account.channel, text, template, attachments)
    last = await store.last_customer_message(account.id, [ident.id])
    state = window_state(capabilities, last.created_at if last else None, now)
    manifest = await store.campaign_manifest(account.campaign_id or conversation.campaign_id)
    approved = templates_from_manifest(manifest, await store.account_name(account.id))
    decision = decide_reply(
        capabilities,
        state,
        template=template,
        human=not auto_reply,
        approved_templates=approved,
        channel_name=capabilities.display_name or account.channel,
    )
    payload: dict[str, Any] = {"auto_reply": auto_reply}
    if template is not None:
        payload["template"] = template.model_dump(mode="json")
    if attachments:
        payload["attachments"] = [a.model_dump(mode="json", exclude_none=True) for a in attachments]
    if decision.tag:
        payload["tag"] = decision.tag
    if reply_to_message_id is not None:
        quoted = await store.inbound_message(conversation.id, reply_to_message_id)
        if quoted is None or not quoted.external_id:
            raise NotFound("no such customer message in this conversation", field="reply_to_message_id")
        payload["reply_to"] = quoted.external_id
    elif capabilities.threading and last is not None and last.external_id:
        payload["reply_to"] = last.external_id  # email: thread under the customer's last mail
    if capabilities.threading and last is not None:
        references = last.payload.get("references") or []
        payload["references"] = [str(r) for r in references if isinstance(r, str)]
        if isinstance(last.payload.get("subject"), str):
            payload["subject"] = last.payload["subject"]
    await store.add_outbound(
        message_id=message_id,
        workspace_id=workspace_id,
        conversation_id=conversation.id,
        customer_id=conversation.customer_id,
        identifier_id=ident.id,
        channel=account.channel,
        account_id=account.id,
        agent_id=agent_id,
        text=text if template is None else None,
        payload=payload,
        at=now,
        campaign_id=conversation.campaign_id,
        replied_by=None if auto_reply else (actor or (f"agent:{agent_id}" if agent_id else "system")),
    )
    await taken.attach(MediaRows(store.session), message_id)
    log.info(
        "reply_queued",
        message_id=str(message_id),
        conversation_id=str(conversation_id),
        channel=account.channel,
        template=template is not None,
        tag=decision.tag,
        auto_reply=auto_reply,
    )
    return Queued(message_id, state, decision.tag)


async def queue_auto_reply(
    runtime: Runtime,
    store: OutboundStore,
    *,
    workspace_id: WorkspaceId,
    conversation_id: ConversationId,
    text: str,
    reason: str,
    channel_account_id: ChannelAccountId | None = None,
    identifier_id: IdentityId | None = None,
    message_id: MessageId | None = None,
) -> MessageId | None:
    """An auto-reply's outbox row in the caller's transaction, or None (logged) when the channel
    refuses it — ``queue_reply`` raises before it writes anything, so the caller's transaction
    goes on (the customer's next message is answered again)."""
    try:
        queued = await queue_reply(
            runtime,
            store,
            workspace_id=workspace_id,
            conversation_id=conversation_id,
            agent_id=None,
            text=text,
            channel_account_id=channel_account_id,
            identifier_id=identifier_id,
            auto_reply=True,
            message_id=message_id,
        )
    except CentralitaError as exc:
        log.warning(
            "auto_reply_not_sent", conversation_id=str(conversation_id), reason=reason, error=exc.code
        )
        return None
    return queued.message_id


async def send_reply(
    runtime: Runtime,
    *,
    workspace_id: WorkspaceId,
    conversation_id: ConversationId,
    agent_id: AgentId | None,
    text: str | None = None,
    template: Template | None = None,
    attachments: Sequence[Attachment] = (),
    channel_account_id: ChannelAccountId | None = None,
    identifier_id: IdentityId | None = None,
    reply_to_message_id: MessageId | None = None,
    auto_reply: bool = False,
    require_assigned: bool = False,
    actor: str | None = None,
) -> QueuedReply:
    """``queue_reply`` in its own transaction, then a nudge to the outbound workers.

    ``DatabaseUnavailable`` or ``DatabaseConflict`` when the reply could not be stored (nothing
    was queued).  A broker that cannot take the nudge is not an error: the committed row is sent
    by the workers' poll.
    """
    async with runtime.database.transaction() as session:
        queued = await queue_reply(
            runtime,
            OutboundStore(session),
            workspace_id=workspace_id,
            conversation_id=conversation_id,
            agent_id=agent_id,
            text=text,
            template=template,
            attachments=attachments,
            channel_account_id=channel_account_id,
            identifier_id=identifier_id,
            reply_to_message_id=reply_to_message_id,
            auto_reply=auto_reply,
            require_assigned=require_assigned,
            actor=actor,
        )
        # Read in the transaction that wrote it: the answer says "queued", whichever worker
        # claims the row the moment it is committed.
        record = await _read_record(session, queued.message_id)
    await nudge_outbound(runtime, [queued.message_id])
    return QueuedReply(record, queued.window)


async def _read_record(session: AsyncSession, message_id: MessageId) -> OutboundRecord:
    record = await OutboundStore(session).message(message_id)
    assert record is not None  # written by the caller
    return record


async def nudge_outbound(runtime: Runtime, message_ids: Sequence[MessageId]) -> None:
    """Tell the outbound workers that these committed rows are due (after the commit)."""
    if not message_ids:
        return
    try:
        await runtime.transport.publish([_job(m, 1) for m in message_ids])
    except BrokerUnavailable as exc:
        # The rows are committed: the workers' poll sends them within outbound_poll_s.
        log.warning("outbound_nudge_lost", messages=len(message_ids), reason=exc.message)


async def resend_reply(
    runtime: Runtime,
    *,
    workspace_id: WorkspaceId,
    conversation_id: ConversationId,
    message_id: MessageId,
    agent_id: AgentId | None,
    require_assigned: bool = False,
) -> OutboundRecord:
    """Send an ``unknown`` or ``failed`` reply again, on an agent's explicit request: a new
    outbox row with the same content and route, pointing back at the old one (``resend_of``).

    ``Conflict`` when the row is in any other state, or was already resent; ``NotFound`` for a
    message that is not an outbound one of this conversation."""
    new_message_id = MessageId(new_id())
    now = runtime.clock()
    try:
        async with runtime.database.transaction() as session:
            store = OutboundStore(session)
            conversation = await store.conversation(workspace_id, conversation_id)
            old = await store.message(message_id, workspace_id=workspace_id)
            if conversation is None or old is None or old.conversation_id != conversation_id:
                raise NotFound("no such message in this conversation", field="message_id")
            if (
                old.direction != MessageDirection.OUT
                or old.identifier_id is None
                or old.channel_account_id is None
            ):
                raise Conflict("only a reply can be resent", field="message_id")
            if require_assigned and (agent_id is None or conversation.agent_id != agent_id):
                raise Forbidden("an agent may only resend in conversations assigned to them")
            if old.delivery_state not in RESENDABLE:
                raise Conflict(
                    f"the message is {old.delivery_state}: only an unknown or failed message can be resent",
                    field="message_id",
                )
            if await store.resent(message_id) is not None:
                raise Conflict("the message was already resent", field="message_id")
            await store.add_outbound(
                message_id=new_message_id,
                workspace_id=workspace_id,
                conversation_id=conversation_id,
                customer_id=conversation.customer_id,
                identifier_id=old.identifier_id,
                channel=old.channel,
                account_id=old.channel_account_id,
                agent_id=agent_id if agent_id is not None else old.agent_id,
                text=old.text,
                payload=old.payload,
                at=now,
                resend_of=message_id,
                campaign_id=conversation.campaign_id,
            )
            await MediaRows(session).copy_to(message_id, new_message_id, now=now)
            record = await _read_record(session, new_message_id)
    except IntegrityError as exc:  # a concurrent resend of the same message won
        raise Conflict("the message was already resent", field="message_id") from exc
    log.info(
        "reply_resent",
        message_id=str(new_message_id),
        resend_of=str(message_id),
        conversation_id=str(conversation_id),
        previous_state=old.delivery_state,
    )
    await nudge_outbound(runtime, [new_message_id])
    return record


def _job(message_id: MessageId, attempt: int) -> Message:
    return Message(
        body=json.dumps({"message_id": str(message_id), "attempt": attempt}).encode(),
        routing_key=OUTBOUND_QUEUE,
        message_id=f"{message_id}:{attempt}",
    )


# ---------------------------------------------------------------------------------- the worker


@dataclass(frozen=True, slots=True)
class SendOutcome:
    message_id: MessageId
    state: Literal["sent", "failed", "retry", "skipped"]
    attempt: int
    external_id: str | None = None
    error: Mapping[str, Any] | None = None


def _error_dict(exc: CentralitaError, attempt: int) -> dict[str, Any]:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message, "attempts": attempt}
    provider_code = getattr(exc, "provider_code", None)
    if provider_code is not None:
        error["provider_code"] = provider_code
    if exc.field is not None:
        error["field"] = exc.field
    return error


def _outbound_message(
    record: OutboundRecord, account: ChannelAccount, ident: IdentifierFacts
) -> OutboundMessage:
    payload = record.payload
    try:
        kind = AddressKind(ident.kind)
    except ValueError:
        kind = AddressKind.EXTERNAL
    template = payload.get("template")
    return OutboundMessage(
        message_id=record.id,
        workspace_id=record.workspace_id,
        conversation_id=record.conversation_id,
        channel=record.channel,
        business_address=account.address,
        recipient=Address(kind=kind, value=ident.value, scope=ident.scope, display_name=ident.display_name),
        text=record.text,
        attachments=tuple(Attachment.model_validate(a) for a in payload.get("attachments") or []),
        template=Template.model_validate(template) if template else None,
        reply_to=payload.get("reply_to"),
        references=tuple(payload.get("references") or ()),
        subject=payload.get("subject"),
        tag=payload.get("tag"),
        created_at=record.created_at,
        auto_reply=bool(payload.get("auto_reply")),
        interactive=Interactive.model_validate(payload["interactive"])
        if payload.get("interactive")
        else None,
    )


class OutboundWorker:
    """Claims due outbox rows and sends them, up to ``prefetch`` in flight; the ``outbound``
    queue only wakes it."""

    def __init__(self, runtime: Runtime, *, prefetch: int = 16):
        self.runtime = runtime
        self.prefetch = prefetch
        self.observers: list[Callable[[SendOutcome], None]] = []
        self._consumer: Consumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._sending: dict[MessageId, asyncio.Task[None]] = {}
        self._leased: dict[MessageId, datetime] = {}  # when each in-flight lease was last written

    @property
    def max_attempts(self) -> int:
        return self.runtime.settings.outbound_attempts

    async def start(self) -> None:
        self._consumer = await self.runtime.transport.consume(
            OUTBOUND_QUEUE, self.handle, prefetch=self.prefetch
        )
        self._task = supervise(self.runtime.workers, "outbound", self._loop)
        log.info(
            "outbound_started",
            poll_s=self.runtime.settings.outbound_poll_s,
            lease_s=self.runtime.settings.outbound_lease_s,
        )

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.cancel()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        # Sends in flight finish (their rows would otherwise end "unknown"), within a bound.
        sending = list(self._sending.values())
        if sending:
            _done, pending = await asyncio.wait(sending, timeout=10.0)
            for t in pending:
                t.cancel()
            await asyncio.gather(*sending, return_exceptions=True)

    def poke(self) -> None:
        """Look for due rows now."""
        self._wake.set()

    async def handle(self, delivery: Delivery) -> None:
        """A nudge: the row is in the database already, whatever the body says."""
        await delivery.ack()
        self.poke()

    async def _loop(self) -> None:
        settings = self.runtime.settings
        wait_s = min(settings.outbound_poll_s, settings.outbound_lease_s / 3)
        while True:
            self._wake.clear()
            try:
                await self.run_due()
            except ServiceUnavailable as exc:
                log.warning("outbound_round_failed", code=exc.code, reason=exc.message)
            try:
                async with asyncio.timeout(wait_s):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def run_due(self) -> int:
        """One round: renew this worker's leases, mark abandoned ``sending`` rows ``unknown``, then
        claim what is due (as many as free slots) and start sending it.  Returns how many."""
        now = self.runtime.clock()
        lease = timedelta(seconds=self.runtime.settings.outbound_lease_s)
        free = self.prefetch - len(self._sending)
        stale = [m for m, at in self._leased.items() if at <= now - lease / 3]
        async with self.runtime.database.transaction() as session:
            store = OutboundStore(session)
            await store.renew(stale, now)
            abandoned = await store.expire_leases(now - lease)
        self._leased.update({m: now for m in stale if m in self._sending})
        claimed: list[Claimed] = []
        if free > 0:
            async with self.runtime.database.transaction() as session:
                claimed = await OutboundStore(session).claim_due(now, free)
        for record in abandoned:
            log.warning(
                "reply_unconfirmed",
                message_id=str(record.id),
                conversation_id=str(record.conversation_id),
                channel=record.channel,
                attempts=record.attempts,
            )
        for item in claimed:
            task = asyncio.create_task(self._send(item), name=f"outbound-send-{item.id}")
            self._sending[item.id] = task
            self._leased[item.id] = now
            task.add_done_callback(functools.partial(self._sent, item.id))
        return len(claimed)

    def _sent(self, message_id: MessageId, task: asyncio.Task[None]) -> None:
        self._sending.pop(message_id, None)
        self._leased.pop(message_id, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # Whether the provider has it is not known: the row stays "sending" until its lease
            # ends and becomes "unknown" then.
            log.error("outbound_send_crashed", message_id=str(message_id), error=type(exc).__name__)
        self.poke()  # a slot is free

    async def _send(self, claimed: Claimed) -> None:
        outcome = await self.deliver(claimed)
        for observer in self.observers:
            observer(outcome)

    async def deliver(self, claimed: Claimed) -> SendOutcome:
        """Send one claimed (``sending``) row."""
        message_id, attempt = claimed.id, claimed.attempt
        async with self.runtime.database.session() as session:
            store = OutboundStore(session)
            record = await store.message(message_id)
            ident = (
                await store.identifier(record.workspace_id, record.identifier_id)
                if record is not None and record.identifier_id is not None
                else None
            )
        if record is None or record.delivery_state != DeliveryState.SENDING:
            return SendOutcome(message_id, "skipped", attempt)  # settled meanwhile
        account = (
            self.runtime.directory.by_id(record.channel_account_id) if record.channel_account_id else None
        )
        if account is None or ident is None:
            error = {
                "code": "channel_account_missing" if account is None else "recipient_missing",
                "message": "the channel account or the customer's identity is gone",
                "attempts": attempt,
            }
            await self._fail(record, error)
            return SendOutcome(message_id, "failed", attempt, error=error)
        try:  # an agent's files, from the media store (read like the row above: before the send)
            message = await with_content(self.runtime, _outbound_message(record, account, ident))
        except PermanentChannelError as exc:
            error = _error_dict(exc, attempt)
            await self._fail(record, error)
            return SendOutcome(message_id, "failed", attempt, error=error)
        try:
            adapter = self.runtime.adapters.get(record.channel)
            receipt = await adapter.send(message, account)
        except TransientChannelError as exc:
            error = _error_dict(exc, attempt)
            if attempt < self.max_attempts:
                delay = self.runtime.settings.outbound_retry_s * 2 ** (attempt - 1)
                log.warning(
                    "outbound_transient",
                    message_id=str(message_id),
                    attempt=attempt,
                    code=exc.code,
                    retry_in_s=delay,
                )
                await self._write(
                    lambda store: store.retry_later(
                        message_id, self.runtime.clock() + timedelta(seconds=delay), error
                    )
                )
                self.runtime.metrics.outbound_send(
                    record.channel, "retry", code=exc.code, provider_code=exc.provider_code
                )
                return SendOutcome(message_id, "retry", attempt, error=error)
            await self._fail(record, error)
            return SendOutcome(message_id, "failed", attempt, error=error)
        except CentralitaError as exc:  # permanent: window closed, undeliverable, bad token, bad input
            error = _error_dict(exc, attempt)
            await self._fail(record, error)
            return SendOutcome(message_id, "failed", attempt, error=error)
        await self._settle(record, receipt.external_id, receipt.accepted_at)
        log.info("reply_sent", message_id=str(message_id), channel=record.channel, attempt=attempt)
        self.runtime.metrics.outbound_send(record.channel, "sent")
        return SendOutcome(message_id, "sent", attempt, external_id=receipt.external_id)

    async def _write(self, step: Callable[[OutboundStore], Any]) -> None:
        async with self.runtime.database.transaction() as session:
            await step(OutboundStore(session))

    async def _fail(self, record: OutboundRecord, error: Mapping[str, Any]) -> None:
        log.warning(
            "reply_failed",
            message_id=str(record.id),
            channel=record.channel,
            code=error.get("code"),
            provider_code=error.get("provider_code"),
        )
        await self._write(lambda store: store.mark_failed(record.id, error))
        self.runtime.metrics.outbound_send(
            record.channel, "failed", code=error.get("code"), provider_code=error.get("provider_code")
        )

    async def _settle(self, record: OutboundRecord, external_id: str, accepted_at: datetime) -> None:
        for attempt in range(3):
            try:
                async with self.runtime.database.transaction() as session:
                    store = OutboundStore(session)
                    await store.mark_sent(record.id, external_id)
                    if record.conversation_id is not None and not record.payload.get("auto_reply"):
                        await store.first_response(record.conversation_id, accepted_at)
                return
            except (DatabaseUnavailable, DatabaseConflict) as exc:
                # The provider has it: sending it again would send it twice.  Try a little
                # longer; then the row stays "sending" and its lease makes it "unknown".
                if attempt == 2:
                    log.error("outbound_unrecorded_send", message_id=str(record.id))
                    raise DatabaseUnavailable("a sent reply could not be recorded") from exc
                await asyncio.sleep(0.5 * (attempt + 1))
