"""Live queue statistics for supervisors, and SLA breach escalation."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from router.policy import (
    Assigned,
    BusinessHours,
    ConversationClosed,
    Escalated,
    ForceAssign,
    OfferAccepted,
    SlaTarget,
    WeeklyInterval,
)
from tests.unit.router.harness import CHAT, Harness, agent_id, conv_id, of_type, queue_id


def test_queue_stats_count_waiting_longest_wait_agents_and_answers_within_sla() -> None:
    h = Harness()
    h.queue(sla=SlaTarget(0.8, 20))
    h.agent(1, capacity={CHAT: 1})
    h.agent(2, capacity={CHAT: 1}, available=False)
    h.accept(h.arrive(1))  # answered at once
    h.arrive(2)
    h.now += 10
    h.arrive(3)
    h.now += 15
    stats = h.state.queue_stats(queue_id(1), now=h.now)
    assert (stats.waiting, stats.longest_wait_s, stats.offered) == (2, 25.0, 0)
    assert (stats.agents_available, stats.agents_busy, stats.agents_offline) == (0, 1, 1)
    h.send(ConversationClosed(conversation_id=conv_id(1)))  # conversation 2 offered after 25 s
    h.send(OfferAccepted(offer_id=h.offers()[-1].offer_id))
    h.send(ConversationClosed(conversation_id=conv_id(3)))  # abandoned while waiting
    stats = h.state.queue_stats(queue_id(1))
    assert (stats.answered, stats.answered_within_sla, stats.abandoned, stats.waiting) == (2, 1, 1, 0)
    assert stats.sla_fraction == 0.5


def test_an_unanswered_conversation_is_escalated_once_when_it_breaches_the_sla_threshold() -> None:
    h = Harness()
    h.queue(sla=SlaTarget(0.8, 60))
    h.arrive(1)
    assert of_type(h.advance(59), Escalated) == []
    escalated = of_type(h.advance(120), Escalated)
    assert [(e.conversation_id, e.kind, e.waited_s) for e in escalated] == [(conv_id(1), "sla_breach", 60.0)]
    assert h.state.queue_stats(queue_id(1)).escalated == 1


def test_daily_counters_roll_over_at_local_midnight() -> None:
    h = Harness()
    h.queue()
    h.agent(1)
    h.accept(h.arrive(1))
    assert h.state.queue_stats(queue_id(1)).answered == 1
    h.advance(86400)
    assert h.state.queue_stats(queue_id(1)).answered == 0


MX_WEEKDAYS = BusinessHours(
    timezone="America/Mexico_City",
    intervals=tuple(WeeklyInterval(day, time(9), time(18)) for day in range(5)),
)
SATURDAY_NOON_MX = datetime(2024, 3, 9, 12, tzinfo=ZoneInfo("America/Mexico_City")).timestamp()
MONDAY_9_MX = datetime(2024, 3, 11, 9, tzinfo=ZoneInfo("America/Mexico_City")).timestamp()


def test_the_sla_does_not_run_while_the_queue_is_closed() -> None:
    h = Harness(start=SATURDAY_NOON_MX)
    h.queue(sla=SlaTarget(0.8, 60), hours=MX_WEEKDAYS)
    h.arrive(1)  # Saturday noon: closed until Monday 09:00
    assert of_type(h.advance(MONDAY_9_MX + 59 - h.now), Escalated) == []
    escalated = of_type(h.advance(2), Escalated)
    assert [e.conversation_id for e in escalated] == [conv_id(1)]  # 60 s after the opening
    assert escalated[0].waited_s == MONDAY_9_MX + 60 - SATURDAY_NOON_MX  # the real wait, reported


def test_an_answer_soon_after_opening_counts_within_the_sla() -> None:
    h = Harness(start=SATURDAY_NOON_MX)
    h.queue(sla=SlaTarget(0.8, 60), hours=MX_WEEKDAYS)
    h.arrive(1)
    h.advance(MONDAY_9_MX - h.now)
    h.agent(1)  # signs in at the opening and is offered it
    h.advance(20)
    h.accept(h.offers())  # answered 20 s into the day, 45 hours after it arrived
    stats = h.state.queue_stats(queue_id(1))
    assert (stats.answered, stats.answered_within_sla, stats.escalated) == (1, 1, 0)


def test_the_first_answer_carries_its_wait_as_the_sla_counts_it_and_a_later_one_none() -> None:
    h = Harness(start=SATURDAY_NOON_MX)
    h.queue(sla=SlaTarget(0.8, 60), hours=MX_WEEKDAYS)
    h.arrive(1)
    h.advance(MONDAY_9_MX - h.now)
    h.agent(1)
    h.advance(20)
    (first,) = of_type(h.accept(h.offers()), Assigned)
    assert first.answer_waited_s == 20  # only the queue's open time: the weekend does not count
    assert first.waited_s == MONDAY_9_MX + 20 - SATURDAY_NOON_MX  # the real wait, as before
    h.agent(2)
    (forced,) = of_type(h.send(ForceAssign(conversation_id=conv_id(1), agent_id=agent_id(2))), Assigned)
    assert forced.forced and forced.answer_waited_s is None  # answered already
