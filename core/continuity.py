"""Conversation continuity when a customer's records merge or split.

The rule: **one open conversation per customer and campaign.**

- After a merge the customer may hold two open conversations with one campaign: the one opened
  first continues (with its agent) and every other one is closed as merged into it.
- After an unmerge, a conversation closed that way is reopened (waiting) when the conversation it
  was merged into no longer belongs to its customer — unless its customer already has another
  open conversation with that campaign.

Each conversation closed or reopened gets a note on the timeline, in its campaign's language.

``plan_continuity`` is pure: it reads the conversations of the customers an identity change
touched (as they stand after the change) and ``now``, and answers with a ``ContinuityPlan``.
Storage (``storage/identity_store.py``) loads the facts and applies the plan in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import cast, get_args

from core.campaign.fields import Language
from core.ids import CampaignId, ConversationId, CustomerId
from core.states import ConversationStatus

__all__ = [
    "DEFAULT_LANGUAGE",
    "MERGED_DISPOSITION",
    "NOTES",
    "CloseAsMerged",
    "Continue",
    "ContinuityPlan",
    "ConversationFacts",
    "MergedInto",
    "Reopen",
    "Step",
    "StepKind",
    "campaign_language",
    "plan_continuity",
]

MERGED_DISPOSITION = "merged"  # disposition code of a conversation closed because its customer merged
DEFAULT_LANGUAGE: Language = "es"  # a campaign's language when the manifest names none


class StepKind(StrEnum):
    CONTINUE = "continue"  # stays open as the customer's conversation with the campaign
    CLOSE_AS_MERGED = "close_as_merged"  # closed with the disposition ``merged``, into another one
    REOPEN = "reopen"  # a conversation closed as merged comes back (waiting)


NOTES: Mapping[StepKind, Mapping[Language, str]] = {
    StepKind.CLOSE_AS_MERGED: {
        "es": "Conversación unida a otra abierta del mismo cliente (registros unidos).",
        "en": "Conversation joined to another open one of the same customer (records merged).",
    },
    StepKind.REOPEN: {
        "es": "Conversación reabierta: se separaron los registros del cliente.",
        "en": "Conversation reopened: the customer's records were split.",
    },
}


def campaign_language(code: str | None) -> Language:
    """A campaign's language as stored (``None`` without a campaign): a known one, else the default."""
    return cast(Language, code) if code in get_args(Language) else DEFAULT_LANGUAGE


# ------------------------------------------------------------------------------------ the facts


@dataclass(frozen=True, slots=True)
class MergedInto:
    """Where a conversation closed as merged went: that conversation, and its customer now
    (``None`` when it no longer exists)."""

    conversation_id: ConversationId
    customer_id: CustomerId | None


@dataclass(frozen=True, slots=True)
class ConversationFacts:
    """One conversation of a touched customer, as it stands after the identity change."""

    id: ConversationId
    customer_id: CustomerId
    campaign_id: CampaignId | None
    status: str
    opened_at: datetime
    language: Language = DEFAULT_LANGUAGE  # of its campaign
    merged_into: MergedInto | None = None  # set when it was closed as merged

    @property
    def open(self) -> bool:
        return self.status != ConversationStatus.CLOSED


# ------------------------------------------------------------------------------------ the plan


@dataclass(frozen=True, slots=True)
class Continue:
    """The conversation stays open: the others of its customer and campaign close into it."""

    conversation_id: ConversationId
    kind: StepKind = field(default=StepKind.CONTINUE, init=False)


@dataclass(frozen=True, slots=True)
class CloseAsMerged:
    """Close at ``at`` with the disposition ``merged`` (``into``, ``previous_status``) and a note."""

    conversation_id: ConversationId
    into: ConversationId
    previous_status: str
    at: datetime
    note: str
    kind: StepKind = field(default=StepKind.CLOSE_AS_MERGED, init=False)


@dataclass(frozen=True, slots=True)
class Reopen:
    """Reopen at ``at`` (waiting, enqueued then, no disposition) with a note naming ``merged_into``."""

    conversation_id: ConversationId
    merged_into: ConversationId
    at: datetime
    note: str
    status: ConversationStatus = field(default=ConversationStatus.WAITING, init=False)
    kind: StepKind = field(default=StepKind.REOPEN, init=False)


Step = Continue | CloseAsMerged | Reopen


@dataclass(frozen=True, slots=True)
class ContinuityPlan:
    """The steps in the order storage applies them: reopenings first, then per customer and
    campaign the conversation that continues followed by those closed into it."""

    steps: tuple[Step, ...] = ()

    def of(self, kind: StepKind) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.kind is kind)

    @property
    def writes(self) -> bool:
        """Whether applying the plan changes anything (a lone ``Continue`` does not)."""
        return any(s.kind is not StepKind.CONTINUE for s in self.steps)


# ------------------------------------------------------------------------------------ the rule


def plan_continuity(conversations: Iterable[ConversationFacts], now: datetime) -> ContinuityPlan:
    """What to reopen, continue and close so each customer keeps one open conversation per
    campaign; ``now`` is when the closings, reopenings and notes happen."""
    rows: Sequence[ConversationFacts] = list(conversations)
    owner = {c.id: c.customer_id for c in rows}
    open_by: dict[tuple[CustomerId, CampaignId | None], list[ConversationFacts]] = {}
    for c in rows:
        if c.open:
            open_by.setdefault((c.customer_id, c.campaign_id), []).append(c)
    steps: list[Step] = []
    for c in rows:
        if c.open or c.merged_into is None:
            continue
        into = c.merged_into.conversation_id
        into_owner = owner.get(into, c.merged_into.customer_id)
        if into_owner == c.customer_id or open_by.get((c.customer_id, c.campaign_id)):
            continue  # still with its customer's conversation, or the customer has another open one
        steps.append(Reopen(c.id, into, now, NOTES[StepKind.REOPEN][c.language]))
        open_by.setdefault((c.customer_id, c.campaign_id), []).append(
            replace(c, status=ConversationStatus.WAITING)
        )
    for group in open_by.values():
        if len(group) < 2:
            continue
        keep, *others = sorted(group, key=lambda c: (c.opened_at, str(c.id)))
        steps.append(Continue(keep.id))
        for c in others:
            steps.append(
                CloseAsMerged(c.id, keep.id, c.status, now, NOTES[StepKind.CLOSE_AS_MERGED][c.language])
            )
    return ContinuityPlan(tuple(steps))
