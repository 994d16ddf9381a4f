"""The facts of a conversation's life, and what each one changes in its report row.

Every step of a conversation is recorded once as a ``Fact`` — what happened (``WorkAction``),
when, who did it, and its details — appended to the audit trail (``audit_log``) in the same
transaction as the change it reports.  Reports never read a router's memory: they read the
per-conversation report row (``conversation_report``) that the same transaction folds each
fact into, with the changes ``report_changes`` names here.  The fold is order-free (counters
add, "first" times keep the earliest, closes keep the latest), so two servers writing facts of
one conversation at once cannot lose either's, and ``fold`` rebuilds a report row from the
facts alone.

Pure: no clock, no I/O.  ``dedupe`` makes a fact recorded once however often its writer
retries (an offer's id, a message's id, a conversation id and the action).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

__all__ = [
    "CONVERSATION_ACTIONS",
    "FIRST_TEXT_CHARS",
    "REPORT_COUNTERS",
    "Change",
    "ChangeOp",
    "CloseReason",
    "Fact",
    "WorkAction",
    "fold",
    "opened_row",
    "report_changes",
]


class WorkAction(StrEnum):
    """The audit trail's ``action`` for each step of a conversation's life (the ``details`` keys
    each writer records after the ``#``)."""

    OPENED = "conversation.opened"  # channel, channel_account_id, triage; follow-up: queue_id, follow_up_of
    TRIAGED = "conversation.triaged"  # the menu's answer: option (label), number, queue (name), queue_id
    OFFERED = "offer.made"  # offer_id (agent_id, queue_id: the fact's own columns)
    OFFER_ACCEPTED = "offer.accepted"  # offer_id, reason (None)
    OFFER_DECLINED = "offer.declined"  # offer_id, reason (None)
    OFFER_EXPIRED = "offer.timed_out"  # offer_id, reason ("timeout")
    OFFER_WITHDRAWN = "offer.withdrawn"  # offer_id, reason
    ASSIGNED = "conversation.assigned"  # how: offer | forced | transfer; offer_id, assignment_id, waited_s
    ASSIGNMENT_ENDED = "assignment.ended"  # assignment_id, reason, active_s
    REPLIED = "message.replied"  # an agent's reply: message_id, first
    NOTE = "note.added"  # message_id
    TRANSFERRED = "conversation.transferred"  # reason, from_agent_id, from_queue_id, to_queue_id, to_agent_id
    REQUEUED = "conversation.requeued"  # reason, from_agent_id, from_queue_id, to_queue_id, to_agent_id
    CLOSED = "conversation.closed"  # reason (a CloseReason); agent: disposition; router: status
    REOPENED = "conversation.reopened"  # the customer came back: conversation_id (the new one)
    WRAP_UP = "agent.wrap_up"  # until
    SURVEY_SENT = "survey.sent"  # kind, as: interactive | text | template
    SURVEY_ANSWERED = "survey.answered"  # kind, score, comment
    SURVEY_COMMENTED = "survey.commented"  # comment: the customer's next message after the score
    # A CRM marks a closed conversation's promise to pay (core.crm): reference, paid_amount,
    # paid_at, promised_amount, promised_date.
    PROMISE_KEPT = "promise.kept"
    PROMISE_BROKEN = "promise.broken"


CONVERSATION_ACTIONS: Final = frozenset(WorkAction)


class CloseReason(StrEnum):
    """How a conversation ended."""

    AGENT = "agent"  # closed by its agent (or a supervisor) with a disposition
    ABANDONED = "abandoned"  # closed before any agent had it (the customer left, or timed out)
    SYSTEM = "system"  # closed by the engine (retention, an unmerge's continuity)


class ChangeOp(StrEnum):
    ADD = "add"  # column = column + value
    FIRST = "first"  # column = coalesce(column, value): the earliest writer wins (facts of one
    #                 kind come in time order per conversation)
    SET = "set"  # column = value


@dataclass(frozen=True, slots=True)
class Change:
    column: str
    op: ChangeOp
    value: Any


@dataclass(frozen=True, slots=True)
class Fact:
    """One step of a conversation's life (or another audited action, ``conversation_id`` None)."""

    action: str  # a WorkAction for conversation steps; other audited actions use their own names
    at: datetime
    actor: str  # "agent:<id>", "token:<id>", "router", "customer", "system", "cli"
    workspace_id: uuid.UUID
    conversation_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None
    queue_id: uuid.UUID | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    dedupe: str | None = None  # recorded once: a second fact with the same key is dropped
    subject_type: str = "conversation"
    subject_id: str | None = None  # default: the conversation id


FIRST_TEXT_CHARS: Final = 280  # what the topics report reads of a first message

# Counters of the report row, all starting at 0.
REPORT_COUNTERS: Final = (
    "offers",
    "declines",
    "timeouts",
    "assignments",
    "agent_replies",
    "notes",
    "transfers",
    "requeues",
    "active_s",
)


def _text(value: Any) -> str | None:
    """An amount or a date as the report row keeps it (written as given: ``1200``, ``"1500.50"``)."""
    return None if value is None else str(value)


# Facts whose queue is where the conversation is (or was last): the report row's ``queue_id``.
_IN_QUEUE: Final = frozenset(
    {
        WorkAction.OFFERED,
        WorkAction.ASSIGNED,
        WorkAction.REQUEUED,
        WorkAction.TRANSFERRED,
        WorkAction.CLOSED,
    }
)


def report_changes(fact: Fact) -> tuple[Change, ...]:
    """What ``fact`` changes in its conversation's report row (``conversation.opened`` inserts
    the row instead: see ``opened_row``).  An offer, an assignment, a requeue, a transfer or a
    close that names its queue also sets the row's ``queue_id`` (the router picks the queue of
    a conversation without triage after it opened)."""
    changes = _changes(fact)
    if fact.queue_id is not None and fact.action in _IN_QUEUE:
        return (*changes, Change("queue_id", ChangeOp.SET, fact.queue_id))
    return changes


def _changes(fact: Fact) -> tuple[Change, ...]:
    d = fact.details
    a = fact.action
    if a == WorkAction.TRIAGED:
        return (
            Change("triage_option", ChangeOp.FIRST, d.get("option")),
            Change("queue_id", ChangeOp.SET, fact.queue_id),
            Change("enqueued_at", ChangeOp.FIRST, fact.at),
        )
    if a == WorkAction.OFFERED:
        return (Change("offers", ChangeOp.ADD, 1), Change("first_offered_at", ChangeOp.FIRST, fact.at))
    if a == WorkAction.OFFER_DECLINED:
        return (Change("declines", ChangeOp.ADD, 1),)
    if a == WorkAction.OFFER_EXPIRED:
        return (Change("timeouts", ChangeOp.ADD, 1),)
    if a == WorkAction.ASSIGNED:
        changes = [
            Change("assignments", ChangeOp.ADD, 1),
            Change("assigned_at", ChangeOp.FIRST, fact.at),
            Change("agent_id", ChangeOp.FIRST, fact.agent_id),
            Change("answered_queue_id", ChangeOp.FIRST, fact.queue_id),
            Change("last_agent_id", ChangeOp.SET, fact.agent_id),
        ]
        if d.get("waited_s") is not None:
            changes.append(Change("waited_s", ChangeOp.FIRST, float(d["waited_s"])))
        return tuple(changes)
    if a == WorkAction.ASSIGNMENT_ENDED:
        return (Change("active_s", ChangeOp.ADD, float(d.get("active_s") or 0.0)),)
    if a == WorkAction.REPLIED:
        return (
            Change("agent_replies", ChangeOp.ADD, 1),
            Change("first_response_at", ChangeOp.FIRST, fact.at),
            Change("first_response_agent_id", ChangeOp.FIRST, fact.agent_id),
        )
    if a == WorkAction.NOTE:
        return (Change("notes", ChangeOp.ADD, 1),)
    if a == WorkAction.TRANSFERRED:
        return (Change("transfers", ChangeOp.ADD, 1),)
    if a == WorkAction.REQUEUED:
        return (Change("requeues", ChangeOp.ADD, 1),)
    if a == WorkAction.CLOSED:
        disposition = d.get("disposition") or {}
        return (
            Change("closed_at", ChangeOp.SET, fact.at),
            Change("close_reason", ChangeOp.SET, d.get("reason")),
            Change("disposition_code", ChangeOp.SET, disposition.get("code")),
            Change("disposition_amount", ChangeOp.SET, _text(disposition.get("amount"))),
            Change("disposition_date", ChangeOp.SET, _text(disposition.get("date"))),
        )
    if a in (WorkAction.PROMISE_KEPT, WorkAction.PROMISE_BROKEN):
        return (
            Change("promise_outcome", ChangeOp.SET, "kept" if a == WorkAction.PROMISE_KEPT else "broken"),
            Change("paid_amount", ChangeOp.SET, _text(d.get("paid_amount"))),
        )
    if a == WorkAction.REOPENED:
        return (Change("reopened_at", ChangeOp.FIRST, fact.at),)
    if a == WorkAction.SURVEY_SENT:
        return (
            Change("survey_kind", ChangeOp.FIRST, d.get("kind")),
            Change("survey_sent_at", ChangeOp.FIRST, fact.at),
        )
    if a == WorkAction.SURVEY_ANSWERED:
        return (
            Change("survey_score", ChangeOp.FIRST, d.get("score")),
            Change("survey_answered_at", ChangeOp.FIRST, fact.at),
            Change("survey_comment", ChangeOp.FIRST, d.get("comment")),
        )
    if a == WorkAction.SURVEY_COMMENTED:
        return (Change("survey_comment", ChangeOp.FIRST, d.get("comment")),)
    return ()


def opened_row(fact: Fact, first_text: str | None = None) -> dict[str, Any]:
    """The report row a ``conversation.opened`` fact inserts (``first_text``: the customer's
    first message, for the topics report; never in the audit trail's details)."""
    d = fact.details
    row: dict[str, Any] = {
        "conversation_id": fact.conversation_id,
        "workspace_id": fact.workspace_id,
        "campaign_id": fact.campaign_id,
        "customer_id": fact.customer_id,
        "channel": d.get("channel"),
        "opened_at": fact.at,
        "queue_id": fact.queue_id,
        "enqueued_at": None if d.get("triage") else fact.at,
        "triage": bool(d.get("triage")),
        "follow_up_of": d.get("follow_up_of"),
        "first_text": first_text[:FIRST_TEXT_CHARS] if first_text else None,
    }
    for name in REPORT_COUNTERS:
        row[name] = 0.0 if name == "active_s" else 0
    return row


def fold(facts: Iterable[Fact]) -> dict[str, Any] | None:
    """A conversation's report row from its facts alone (None before it was opened).  What the
    database holds is the same row, folded one transaction at a time."""
    ordered = sorted(facts, key=lambda f: f.at)
    row: dict[str, Any] | None = None
    for fact in ordered:
        if fact.action == WorkAction.OPENED:
            if row is None:
                row = opened_row(fact)
            continue
        if row is None:
            continue
        for change in report_changes(fact):
            if change.op == ChangeOp.ADD:
                row[change.column] = (row.get(change.column) or 0) + change.value
            elif change.op == ChangeOp.FIRST:
                if row.get(change.column) is None:
                    row[change.column] = change.value
            else:
                row[change.column] = change.value
    return row
