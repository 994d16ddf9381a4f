"""Conversation continuity: one open conversation per customer and campaign, across merges and unmerges."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from core.campaign.fields import Language
from core.continuity import (
    CloseAsMerged,
    Continue,
    ContinuityPlan,
    ConversationFacts,
    MergedInto,
    Reopen,
    StepKind,
    campaign_language,
    plan_continuity,
)
from core.ids import CampaignId, ConversationId, CustomerId

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ANA = CustomerId(uuid.UUID(int=1))
BEA = CustomerId(uuid.UUID(int=2))
CLINIC = CampaignId(uuid.UUID(int=100))
SHOP = CampaignId(uuid.UUID(int=200))

MERGED_ES = "Conversación unida a otra abierta del mismo cliente (registros unidos)."
REOPENED_ES = "Conversación reabierta: se separaron los registros del cliente."
MERGED_EN = "Conversation joined to another open one of the same customer (records merged)."


def cid(n: int) -> ConversationId:
    return ConversationId(uuid.UUID(int=1000 + n))


def conversation(
    n: int,
    customer: CustomerId = ANA,
    *,
    campaign: CampaignId | None = CLINIC,
    status: str = "waiting",
    opened_minutes_ago: int = 0,
    language: Language = "es",
    merged_into: MergedInto | None = None,
) -> ConversationFacts:
    return ConversationFacts(
        id=cid(n),
        customer_id=customer,
        campaign_id=campaign,
        status=status,
        opened_at=NOW - timedelta(minutes=opened_minutes_ago),
        language=language,
        merged_into=merged_into,
    )


def closed_as_merged(n: int, into: int, into_customer: CustomerId | None, **kw: object) -> ConversationFacts:
    return conversation(n, status="closed", merged_into=MergedInto(cid(into), into_customer), **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ merges


def test_after_a_merge_the_conversation_opened_first_continues_and_the_other_closes_into_it() -> None:
    plan = plan_continuity(
        [conversation(1, opened_minutes_ago=5), conversation(2, status="assigned", opened_minutes_ago=30)],
        NOW,
    )
    assert plan.steps == (
        Continue(cid(2)),
        CloseAsMerged(cid(1), into=cid(2), previous_status="waiting", at=NOW, note=MERGED_ES),
    )


def test_the_closed_conversation_remembers_the_status_it_had() -> None:
    plan = plan_continuity([conversation(1, opened_minutes_ago=9), conversation(2, status="offered")], NOW)
    [closed] = plan.of(StepKind.CLOSE_AS_MERGED)
    assert isinstance(closed, CloseAsMerged) and closed.previous_status == "offered"


def test_every_later_conversation_closes_into_the_first_one() -> None:
    plan = plan_continuity(
        [conversation(1, opened_minutes_ago=1), conversation(2, opened_minutes_ago=3), conversation(3)], NOW
    )
    assert [(s.kind, s.conversation_id) for s in plan.steps] == [
        (StepKind.CONTINUE, cid(2)),
        (StepKind.CLOSE_AS_MERGED, cid(1)),
        (StepKind.CLOSE_AS_MERGED, cid(3)),
    ]
    assert {s.into for s in plan.steps if isinstance(s, CloseAsMerged)} == {cid(2)}


def test_conversations_opened_at_the_same_moment_keep_the_one_with_the_smaller_id() -> None:
    plan = plan_continuity([conversation(7), conversation(3)], NOW)
    assert plan.steps[0] == Continue(cid(3))


def test_open_conversations_with_different_campaigns_all_stay_open() -> None:
    plan = plan_continuity([conversation(1, campaign=CLINIC), conversation(2, campaign=SHOP)], NOW)
    assert plan == ContinuityPlan() and not plan.writes


def test_open_conversations_of_different_customers_all_stay_open() -> None:
    assert plan_continuity([conversation(1, ANA), conversation(2, BEA)], NOW).steps == ()


def test_conversations_without_a_campaign_count_as_one_campaign() -> None:
    plan = plan_continuity(
        [conversation(1, campaign=None, opened_minutes_ago=2), conversation(2, campaign=None)], NOW
    )
    assert [s.kind for s in plan.steps] == [StepKind.CONTINUE, StepKind.CLOSE_AS_MERGED]


def test_a_customer_with_one_open_conversation_needs_nothing() -> None:
    plan = plan_continuity([conversation(1), conversation(2, status="closed")], NOW)
    assert plan.steps == () and not plan.writes


# ------------------------------------------------------------------------------------ unmerges


def test_after_an_unmerge_a_conversation_closed_as_merged_into_another_customers_reopens() -> None:
    plan = plan_continuity([closed_as_merged(2, into=1, into_customer=BEA)], NOW)
    assert plan.steps == (Reopen(cid(2), merged_into=cid(1), at=NOW, note=REOPENED_ES),)
    [reopened] = plan.steps
    assert isinstance(reopened, Reopen) and reopened.status == "waiting" and plan.writes


def test_it_stays_closed_while_the_conversation_it_joined_is_still_its_customers() -> None:
    plan = plan_continuity([conversation(1), closed_as_merged(2, into=1, into_customer=BEA)], NOW)
    assert plan.steps == ()  # the loaded conversation 1 belongs to ANA, whatever the hint said


def test_it_stays_closed_when_its_customer_already_has_another_open_conversation_there() -> None:
    plan = plan_continuity([conversation(3), closed_as_merged(2, into=1, into_customer=BEA)], NOW)
    assert plan.steps == ()


def test_it_reopens_when_its_customer_has_an_open_conversation_only_with_another_campaign() -> None:
    plan = plan_continuity(
        [conversation(3, campaign=SHOP), closed_as_merged(2, into=1, into_customer=BEA)], NOW
    )
    assert [s.kind for s in plan.steps] == [StepKind.REOPEN]


def test_it_reopens_when_the_conversation_it_joined_is_gone() -> None:
    plan = plan_continuity([closed_as_merged(2, into=1, into_customer=None)], NOW)
    assert [s.kind for s in plan.steps] == [StepKind.REOPEN]


def test_of_two_conversations_closed_into_another_customers_only_the_first_reopens() -> None:
    plan = plan_continuity(
        [closed_as_merged(2, into=1, into_customer=BEA), closed_as_merged(3, into=1, into_customer=BEA)], NOW
    )
    assert plan.steps == (Reopen(cid(2), merged_into=cid(1), at=NOW, note=REOPENED_ES),)


def test_a_conversation_closed_for_another_reason_never_reopens() -> None:
    assert plan_continuity([conversation(2, status="closed")], NOW).steps == ()


def test_the_plan_lists_reopenings_before_the_closings() -> None:
    plan = plan_continuity(
        [
            conversation(1, campaign=SHOP, opened_minutes_ago=3),
            conversation(4, campaign=SHOP),
            closed_as_merged(2, into=9, into_customer=BEA),
        ],
        NOW,
    )
    assert [s.kind for s in plan.steps] == [StepKind.REOPEN, StepKind.CONTINUE, StepKind.CLOSE_AS_MERGED]


# ------------------------------------------------------------------------------------ notes and time


def test_notes_are_written_in_the_campaigns_language() -> None:
    plan = plan_continuity(
        [
            conversation(1, opened_minutes_ago=3, language="en"),
            conversation(2, language="en"),
            closed_as_merged(3, into=8, into_customer=BEA, campaign=SHOP, language="en"),
        ],
        NOW,
    )
    notes = {s.kind: s.note for s in plan.steps if isinstance(s, CloseAsMerged | Reopen)}
    assert notes == {
        StepKind.REOPEN: "Conversation reopened: the customer's records were split.",
        StepKind.CLOSE_AS_MERGED: MERGED_EN,
    }


def test_each_note_follows_the_language_of_the_conversation_it_is_written_on() -> None:
    plan = plan_continuity([conversation(1, language="en", opened_minutes_ago=3), conversation(2)], NOW)
    [closed] = plan.of(StepKind.CLOSE_AS_MERGED)
    assert isinstance(closed, CloseAsMerged) and closed.note == MERGED_ES


def test_a_campaign_language_that_is_not_known_or_missing_reads_as_spanish() -> None:
    assert [campaign_language(c) for c in ("en", "es", "pt", None)] == ["en", "es", "es", "es"]


def test_closings_reopenings_and_notes_happen_at_the_time_given() -> None:
    later = NOW + timedelta(hours=2)
    plan = plan_continuity(
        [
            conversation(1, opened_minutes_ago=3),
            conversation(4),
            closed_as_merged(2, into=9, into_customer=BEA, campaign=SHOP),
        ],
        later,
    )
    assert {s.at for s in plan.steps if isinstance(s, CloseAsMerged | Reopen)} == {later}
