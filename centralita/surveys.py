"""CSAT and NPS surveys: scheduled at an agent's close, sent when due, answers recorded.

``schedule_survey`` (in the close's transaction, when the conversation had an agent: a customer
no agent attended is not asked how it went) sets ``conversation.survey_due_at`` to the close
plus the survey's ``delay_s`` when the campaign's manifest has a survey for the conversation's
channel.  ``SurveySender`` runs beside the follow-up scheduler in every server
(the ``followups`` role): every ``interval_s`` — or when ``poke()``d, or when an
``AdvancingClock`` moves — it claims the due surveys (clearing ``survey_due_at``: two servers
never send one twice) and, in the claim's transaction, writes each one's outbox row — an
interactive message, the question with its scores as text, or the manifest's template, as
``core.surveys.plan_send`` decides from the channel and the reply window — with the fact
``survey.sent``.  A survey that cannot go out (the window closed and no template) is logged
and dropped.  The outbound workers send the row; the nudge after the commit only hurries them.

``take_survey_message`` (in the pipeline's transaction) decides whether a customer's message
answers one of their surveys, records ``survey.answered`` (once per conversation) or
``survey.commented``, queues the manifest's ``thanks`` and names the closed conversation the
message joins the timeline of; a message that answers nothing goes on as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from centralita.outbound import nudge_outbound
from centralita.periodic import PeriodicJob
from centralita.runtime import Runtime
from core.campaign.model import Manifest, Survey
from core.channel import ChannelAccount
from core.events import InboundEvent, Postback
from core.facts import Fact, WorkAction
from core.ids import ConversationId, CustomerId, MessageId, WorkspaceId, new_id
from core.logging import get_logger
from core.reply_window import templates_from_manifest, window_state
from core.surveys import (
    SurveySend,
    SurveySkip,
    plan_send,
    read_answer,
    read_choice,
    read_comment,
    survey_for,
    survey_of,
)
from storage.facts import FactLog
from storage.outbound import ConversationFacts, OutboundStore
from storage.surveys import SurveyState, SurveyStore

__all__ = ["SurveyOutcome", "SurveySender", "SurveyTaken", "schedule_survey", "take_survey_message"]

log = get_logger("centralita.surveys")


async def schedule_survey(
    session: AsyncSession,
    manifest: Mapping[str, Any],
    conversation_id: ConversationId,
    channel: str,
    now: datetime,
) -> datetime | None:
    """After an agent closed ``conversation_id`` on ``channel``: when its survey is due (None:
    the campaign has none for the channel)."""
    survey = survey_for(survey_of(manifest), channel)
    if survey is None:
        return None
    due = now + timedelta(seconds=survey.delay_s)
    await SurveyStore(session).schedule(conversation_id, due)
    return due


# ---------------------------------------------------------------------------------- sending


@dataclass(frozen=True, slots=True)
class SurveyOutcome:
    workspace_id: WorkspaceId
    conversation_id: ConversationId
    sent_as: str | None  # interactive | text | template; None: not sent
    reason: str | None = None  # why not
    message_id: MessageId | None = None


def _row_payload(survey: Survey, plan: SurveySend) -> dict[str, Any]:
    payload: dict[str, Any] = {"auto_reply": True, "survey": {"kind": survey.kind, "as": plan.send_as.value}}
    if plan.interactive is not None:
        payload["interactive"] = plan.interactive.model_dump(mode="json", exclude_none=True)
    if plan.template is not None:
        payload["template"] = plan.template.model_dump(mode="json")
    return payload


class SurveySender(PeriodicJob):
    # A failed round loses nothing: a claim commits with its outbox row; an unclaimed survey is
    # tried again next round.
    task_name = "survey-sender"
    started_event = "surveys_started"
    failed_event = "surveys_round_failed"

    def __init__(self, runtime: Runtime, *, interval_s: float = 5.0, batch: int = 100):
        super().__init__(runtime, interval_s=interval_s, log=log)
        self.batch = batch
        self.observers: list[Callable[[SurveyOutcome], None]] = []

    async def run_round(self) -> None:
        await self.run_due()

    async def run_due(self) -> list[SurveyOutcome]:
        """Send every survey due at ``runtime.clock()``."""
        async with self._lock:
            done: list[SurveyOutcome] = []
            while True:
                batch, claimed = await self._send_batch()
                done.extend(batch)
                await nudge_outbound(self.runtime, [o.message_id for o in batch if o.message_id is not None])
                if claimed < self.batch:
                    break
        for outcome in done:
            if outcome.sent_as is not None:
                log.info("survey_sent", conversation_id=str(outcome.conversation_id), sent_as=outcome.sent_as)
            else:
                log.info(
                    "survey_not_sent", conversation_id=str(outcome.conversation_id), reason=outcome.reason
                )
            for observer in self.observers:
                observer(outcome)
        return done

    async def _send_batch(self) -> tuple[list[SurveyOutcome], int]:
        now = self.runtime.clock()
        async with self.runtime.database.transaction() as session:
            store = SurveyStore(session)
            due = await store.due(now, limit=self.batch)
            outcomes = []
            for item in due:
                if await store.claim(item.conversation_id):
                    outcomes.append(
                        await self._send_one(session, item.workspace_id, item.conversation_id, now)
                    )
            return outcomes, len(due)

    async def _send_one(
        self, session: AsyncSession, ws: WorkspaceId, conversation_id: ConversationId, now: datetime
    ) -> SurveyOutcome:
        outbox = OutboundStore(session)

        def skipped(reason: str) -> SurveyOutcome:
            return SurveyOutcome(ws, conversation_id, None, reason)

        conversation = await outbox.conversation(ws, conversation_id)
        if conversation is None:
            return skipped("conversation_missing")
        manifest = await outbox.campaign_manifest(conversation.campaign_id)
        survey = survey_for(survey_of(manifest), conversation.channel)
        if survey is None:  # withdrawn from the manifest since the close
            return skipped("no_survey")
        account = (
            self.runtime.directory.by_id(conversation.channel_account_id)
            if conversation.channel_account_id
            else None
        )
        ident = (
            await outbox.identifier(ws, conversation.identifier_id) if conversation.identifier_id else None
        )
        if account is None or ident is None or account.channel not in self.runtime.adapters.names():
            return skipped("no_route")
        capabilities = self.runtime.adapters.get(account.channel).capabilities
        last = await outbox.last_customer_message(account.id, [ident.id])
        window = window_state(capabilities, last.created_at if last else None, now)
        approved = templates_from_manifest(manifest, await outbox.account_name(account.id))
        plan = plan_send(survey, conversation_id, capabilities, window, approved)
        if isinstance(plan, SurveySkip):
            return skipped(plan.reason)
        message_id = MessageId(new_id())
        await outbox.add_outbound(
            message_id=message_id,
            workspace_id=ws,
            conversation_id=conversation_id,
            customer_id=conversation.customer_id,
            identifier_id=ident.id,
            channel=account.channel,
            account_id=account.id,
            agent_id=None,
            text=plan.text if plan.template is None else None,
            payload=_row_payload(survey, plan),
            at=now,
            campaign_id=conversation.campaign_id,
        )
        await FactLog(session).append(
            [
                _fact(
                    WorkAction.SURVEY_SENT,
                    conversation,
                    now,
                    "system",
                    {"kind": survey.kind, "as": plan.send_as.value, "message_id": str(message_id)},
                    f"{conversation_id}:survey_sent",
                )
            ]
        )
        return SurveyOutcome(ws, conversation_id, plan.send_as.value, message_id=message_id)


def _fact(
    action: WorkAction,
    conversation: ConversationFacts | SurveyState,
    at: datetime,
    actor: str,
    details: Mapping[str, Any],
    dedupe: str,
) -> Fact:
    conversation_id = (
        conversation.id if isinstance(conversation, ConversationFacts) else conversation.conversation_id
    )
    return Fact(
        action=action,
        at=at,
        actor=actor,
        workspace_id=conversation.workspace_id,
        conversation_id=conversation_id,
        customer_id=conversation.customer_id,
        agent_id=conversation.agent_id,
        campaign_id=conversation.campaign_id,
        queue_id=conversation.queue_id if isinstance(conversation, SurveyState) else None,
        details=details,
        dedupe=dedupe,
    )


# ---------------------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class SurveyTaken:
    """The message belongs to the survey of ``conversation_id`` (a closed conversation): it joins
    that conversation's timeline and opens nothing.  ``replies``: outbox rows to nudge after the
    commit (the thanks)."""

    conversation_id: ConversationId
    recorded: str | None  # "answered", "commented"; None: a second answer, ignored
    replies: list[MessageId] = field(default_factory=list)


async def take_survey_message(
    runtime: Runtime,
    session: AsyncSession,
    manifest: Manifest | None,
    account: ChannelAccount,
    customer_id: CustomerId,
    event: InboundEvent,
    *,
    has_open_conversation: bool,
    now: datetime,
) -> SurveyTaken | None:
    """Whether the customer's message answers (or comments on) one of their surveys in the
    campaign; None: it does not, and goes on as any message.

    A tapped option names its conversation and is taken whatever else is open (within
    ``answer_within_s`` of the send; once answered, a tap is a second answer).  A typed message
    is taken only while the customer has no open conversation in the campaign, on the channel
    the survey went out on: the latest survey sent within ``answer_within_s`` and not answered
    takes a score; one answered within ``comment_within_s`` without a comment takes the next
    message as its comment — or, when that message is a score again, ignores it.
    """
    survey = manifest.survey if manifest is not None else None
    if survey is None:
        return None
    text = getattr(event, "text", None)
    payload = event.payload if isinstance(event, Postback) else None
    store = SurveyStore(session)
    choice = read_choice(payload)
    if choice is not None:
        state = await store.of_conversation(account.workspace_id, choice[0])
        if state is None or state.customer_id != customer_id:
            return None
        if state.answered_at is None and state.sent_at < now - timedelta(seconds=survey.answer_within_s):
            return None  # too late: a tap like any other message
    else:
        if has_open_conversation:
            return None
        states = await store.open_for(
            account.workspace_id,
            account.campaign_id,
            customer_id,
            sent_since=now - timedelta(seconds=survey.answer_within_s),
            answered_since=now - timedelta(seconds=survey.comment_within_s),
        )
        state = next((s for s in states if s.channel == event.channel), None)
        if state is None:
            return None
    answer = read_answer(state.kind, text, payload)
    log_fields = {"conversation_id": str(state.conversation_id), "kind": state.kind}
    if state.answered_at is not None:
        if answer is not None or choice is not None:  # a second answer: kept on the timeline only
            log.info("survey_answer_ignored", **log_fields)
            return SurveyTaken(state.conversation_id, None)
        comment = read_comment(text)
        if comment is None:
            return None
        await FactLog(session).append(
            [
                _fact(
                    WorkAction.SURVEY_COMMENTED,
                    state,
                    now,
                    "customer",
                    {"kind": state.kind, "comment": comment},
                    f"{state.conversation_id}:survey_comment",
                )
            ]
        )
        log.info("survey_commented", **log_fields)
        return SurveyTaken(state.conversation_id, "commented")
    if answer is None:
        return None
    new = await FactLog(session).append(
        [
            _fact(
                WorkAction.SURVEY_ANSWERED,
                state,
                now,
                "customer",
                {"kind": state.kind, "score": answer.score, "comment": answer.comment},
                f"{state.conversation_id}:survey",
            )
        ]
    )
    if not new:  # answered meanwhile (the same tap twice in one batch)
        return SurveyTaken(state.conversation_id, None)
    log.info("survey_answered", score=answer.score, comment=answer.comment is not None, **log_fields)
    replies = []
    if survey.thanks:
        replies.append(await _queue_thanks(session, state, survey.thanks, now))
    return SurveyTaken(state.conversation_id, "answered", [r for r in replies if r is not None])


async def _queue_thanks(
    session: AsyncSession, state: SurveyState, text: str, now: datetime
) -> MessageId | None:
    """The thanks, through the business address the survey went out on, to the identity that
    last wrote to it (the customer just did: the window is open)."""
    outbox = OutboundStore(session)
    conversation = await outbox.conversation(state.workspace_id, state.conversation_id)
    if conversation is None or conversation.channel_account_id is None or conversation.identifier_id is None:
        return None
    message_id = MessageId(new_id())
    await outbox.add_outbound(
        message_id=message_id,
        workspace_id=state.workspace_id,
        conversation_id=state.conversation_id,
        customer_id=conversation.customer_id,
        identifier_id=conversation.identifier_id,
        channel=conversation.channel,
        account_id=conversation.channel_account_id,
        agent_id=None,
        text=text,
        payload={"auto_reply": True, "survey": {"kind": state.kind, "as": "thanks"}},
        at=now,
        campaign_id=conversation.campaign_id,
    )
    return message_id
