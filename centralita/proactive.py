"""A conversation the business starts: a CRM's collections reminder with an approved template.

``start_proactive`` opens a ``waiting`` conversation for a known customer of the workspace (in
the queue named, else the one the router picks for the channel account: its
``default_queue``), writes the template to the outbox (``centralita.outbound.queue_reply``, as
an automatic message: no ``message.replied`` fact, so it is not the conversation's first
response) and records ``conversation.opened`` with ``proactive: true`` — one transaction, once
per the CRM's ``reference`` (the fact's dedupe key).  After the commit it nudges the outbound
workers and the workspace's router, which offers the conversation to an agent as it offers a
scheduled follow-up; the customer's answer continues it.  A retry with the same reference
writes nothing and nudges the router again (a nudge lost with the first answer is repaired).

Refused before anything is written: a campaign not in the workspace (404 ``campaign``), a
customer id or phone the workspace does not know (404 ``customer_id`` / ``phone``), a template
the campaign's manifest does not approve (422 ``template.name`` / ``.language`` /
``.parameters``: ``core.crm.approved_template``), no active account of the campaign that sends
templates, a customer with no address on it, or an open conversation of the customer in the
campaign (409, its id in ``details``: the reminder would talk over it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from centralita.outbound import nudge_outbound, queue_reply
from centralita.runtime import Runtime
from centralita.web.api._publish import publish_router_inputs
from core.channel import ChannelAccount
from core.crm import approved_template
from core.errors import Conflict, NotFound
from core.events import Template
from core.facts import Fact, WorkAction
from core.ids import ChannelAccountId, ConversationId, CustomerId, IdentityId, MessageId, WorkspaceId, new_id
from core.logging import get_logger
from core.reply_window import templates_from_manifest
from core.states import ConversationStatus, MessageDirection
from identity import phone_identifier
from router.wire import ConversationNudge
from storage.campaigns import CampaignStore
from storage.crm import CrmStore
from storage.facts import FactLog
from storage.identity_store import IdentityStore
from storage.outbound import OutboundStore
from storage.tables import AuditRow, ConversationRow, MessageRow
from storage.work import WorkStore

__all__ = ["ProactiveStart", "Started", "start_proactive"]

log = get_logger("centralita.proactive")

AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
CONV = ConversationRow.__table__  # type: ignore[attr-defined]
MSG = MessageRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ProactiveStart:
    workspace_id: WorkspaceId
    campaign: str
    template: Template
    reference: str
    actor: str
    customer_id: uuid.UUID | None = None
    phone: str | None = None
    queue: str | None = None


@dataclass(frozen=True, slots=True)
class Started:
    conversation_id: ConversationId
    customer_id: CustomerId
    message_id: MessageId
    queue: str | None
    created: bool


def _dedupe(start: ProactiveStart) -> str:
    return f"{start.workspace_id}:proactive:{start.reference}"


async def _earlier(session: AsyncSession, start: ProactiveStart) -> Started | None:
    seen = (await session.execute(sa.select(AUDIT).where(AUDIT.c.dedupe == _dedupe(start)))).first()
    if seen is None:
        return None
    message = (
        await session.execute(
            sa.select(MSG.c.id)
            .where(MSG.c.conversation_id == seen.conversation_id, MSG.c.direction == MessageDirection.OUT)
            .order_by(MSG.c.created_at, MSG.c.id)
            .limit(1)
        )
    ).scalar_one()
    d = dict(seen.details or {})
    return Started(
        ConversationId(seen.conversation_id),
        CustomerId(seen.customer_id),
        MessageId(message),
        d.get("queue"),
        created=False,
    )


def _template_account(runtime: Runtime, ws: WorkspaceId, campaign_id: uuid.UUID) -> ChannelAccount:
    accounts = sorted(
        (
            a
            for a in runtime.directory.all()
            if a.workspace_id == ws
            and a.campaign_id == campaign_id
            and runtime.adapters.get(a.channel).capabilities.templates
        ),
        key=lambda a: (a.name or "", str(a.id)),
    )
    if not accounts:
        raise Conflict("the campaign has no active channel account that sends templates", field="campaign")
    return accounts[0]


async def _nudge_router(runtime: Runtime, ws: WorkspaceId, conversation_id: ConversationId) -> None:
    await publish_router_inputs(
        runtime, ws, [ConversationNudge(conversation_id=conversation_id, reason="opened")]
    )


async def start_proactive(runtime: Runtime, start: ProactiveStart) -> Started:
    ws = start.workspace_id
    now = runtime.clock()
    async with runtime.database.transaction() as session:
        earlier = await _earlier(session, start)
    if earlier is not None:
        # A retry: nothing is written; the router is nudged again (in case the first answer, and
        # its nudge, were lost), which makes it re-read the conversation, nothing more.
        await _nudge_router(runtime, ws, earlier.conversation_id)
        return earlier
    async with runtime.database.transaction() as session:
        try:
            campaign = await CampaignStore(session).stored_in(ws, start.campaign)
        except NotFound:
            raise NotFound(
                f"no campaign named {start.campaign!r} in this workspace", field="campaign"
            ) from None
        if start.phone is not None:
            key = phone_identifier(start.phone, runtime.settings.identity_default_region, strict=False).key
            found = await IdentityStore(session).customer_of_key(ws, key)
            if found is None:
                raise NotFound("no customer of this workspace has that phone", field="phone")
            requested: uuid.UUID = found
        else:
            assert start.customer_id is not None
            requested = start.customer_id
        customer_id = CustomerId((await CrmStore(session).live_customer(ws, requested)).id)
        account = _template_account(runtime, ws, campaign.campaign_id)
        approved_template(start.template, templates_from_manifest(campaign.manifest, account.name))
        work = WorkStore(session)
        queue_id = None
        priority = 5
        if start.queue is not None:
            queue = await work.queue_named(ws, start.queue)
            if queue is None or queue.campaign_id != campaign.campaign_id or not queue.active:
                raise NotFound(f"no active queue {start.queue!r} in the campaign", field="queue")
            queue_id, priority = queue.id, queue.priority
        open_one = (
            await session.execute(
                sa.select(CONV.c.id)
                .where(
                    CONV.c.workspace_id == ws,
                    CONV.c.customer_id == customer_id,
                    CONV.c.campaign_id == campaign.campaign_id,
                    CONV.c.status != ConversationStatus.CLOSED,
                )
                .limit(1)
            )
        ).scalar()
        if open_one is not None:
            raise Conflict(
                "the customer has an open conversation in this campaign",
                field="customer_id",
                details={"conversation_id": str(open_one)},
            )
        store = OutboundStore(session)
        capabilities = runtime.adapters.get(account.channel).capabilities
        address = next(
            (
                i
                for i in await store.identifiers_of(ws, customer_id)
                if i.kind == capabilities.address_kind.value and i.scope in (None, account.address)
            ),
            None,
        )
        if address is None:
            raise Conflict(f"the customer has no address on {account.channel}", field="customer_id")
        conversation_id = ConversationId(new_id())
        await session.execute(
            sa.insert(CONV).values(
                id=conversation_id,
                workspace_id=ws,
                campaign_id=campaign.campaign_id,
                customer_id=customer_id,
                queue_id=queue_id,
                status=ConversationStatus.WAITING,
                channel=account.channel,
                channel_account_id=account.id,
                identifier_id=address.id,
                origin_identifier_id=address.id,
                priority=priority,
                opened_at=now,
                enqueued_at=now,
            )
        )
        queued = await queue_reply(
            runtime,
            store,
            workspace_id=ws,
            conversation_id=conversation_id,
            agent_id=None,
            template=start.template,
            channel_account_id=ChannelAccountId(account.id),
            identifier_id=IdentityId(address.id),
            auto_reply=True,
        )
        opened = Fact(
            WorkAction.OPENED,
            now,
            start.actor,
            ws,
            conversation_id=conversation_id,
            customer_id=customer_id,
            campaign_id=campaign.campaign_id,
            queue_id=queue_id,
            details={
                "channel": account.channel,
                "channel_account_id": str(account.id),
                "triage": False,
                "queue_id": str(queue_id) if queue_id else None,
                "queue": start.queue,
                "proactive": True,
                "template": start.template.name,
                "reference": start.reference,
                "message_id": str(queued.message_id),
            },
            dedupe=_dedupe(start),
        )
        if not await FactLog(session).append([opened]):  # last: see storage.facts' LOCK ORDER
            raise Conflict("a twin request used this reference just now; retry", field="reference")
    await nudge_outbound(runtime, [queued.message_id])
    await _nudge_router(runtime, ws, conversation_id)
    log.info(
        "proactive_opened",
        conversation_id=str(conversation_id),
        campaign=start.campaign,
        template=start.template.name,
    )
    return Started(conversation_id, customer_id, queued.message_id, start.queue, created=True)
