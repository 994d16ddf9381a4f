"""Live queue statistics for supervisors, and SLA breach escalation."""

from __future__ import annotations

from router.policy import ConversationClosed, Escalated, OfferAccepted, SlaTarget
from tests.unit.router.harness import CHAT, Harness, conv_id, of_type, queue_id


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
