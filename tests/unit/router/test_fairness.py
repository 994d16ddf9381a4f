"""An agent back from a break is not flooded: one offer at a time, and spaced out at first."""

from __future__ import annotations

from router.policy import AgentPresenceChanged, Offer, OfferAccepted, Presence, RouterConfig
from tests.unit.router.harness import CHAT, Harness, agent_id, of_type


def test_an_agent_never_has_more_than_the_allowed_pending_offers() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, max_pending_offers_per_agent=1))
    h.queue()
    h.agent(1, capacity={CHAT: 5})
    for n in range(5):
        h.arrive(n)
    assert len(h.offers()) == 1
    h.send(OfferAccepted(offer_id=h.offers()[0].offer_id))
    assert len(h.offers()) == 2  # the next one only once the first is answered


def test_an_agent_back_from_a_break_gets_offers_spaced_by_the_ramp_interval() -> None:
    h = Harness(RouterConfig(ramp_period_s=120, ramp_interval_s=20))
    h.queue()
    h.agent(1, capacity={CHAT: 5}, available=False)
    for n in range(5):
        h.arrive(n)  # a backlog waits for the agent
    h.send(AgentPresenceChanged(agent_id=agent_id(1), presence=Presence.AVAILABLE))
    first = h.offers()
    assert len(first) == 1
    h.now += 1
    h.send(OfferAccepted(offer_id=first[0].offer_id))
    assert len(h.offers()) == 1  # answered at once, still nothing new before the interval
    h.advance(18)
    assert len(h.offers()) == 1
    h.advance(1)  # 20 s after the first offer
    assert len(h.offers()) == 2


def test_after_the_ramp_period_offers_follow_each_answer_immediately() -> None:
    h = Harness(RouterConfig(ramp_period_s=30, ramp_interval_s=20))
    h.queue()
    h.agent(1, capacity={CHAT: 5})
    h.advance(60)  # well past the ramp period
    for n in range(3):
        h.arrive(n)
    for _ in range(3):
        h.send(OfferAccepted(offer_id=h.offers()[-1].offer_id))
    assert len(h.offers()) == 3


def test_while_one_agent_ramps_up_the_backlog_goes_to_the_others() -> None:
    h = Harness(RouterConfig(ramp_period_s=120, ramp_interval_s=60))
    h.queue()
    h.agent(1, capacity={CHAT: 5})  # just back: ramping
    for n in range(2):
        h.arrive(n)
    h.send(OfferAccepted(offer_id=h.offers()[0].offer_id))
    h.agent(2, capacity={CHAT: 5})  # also ramping, but has had no offer yet
    assert [o.agent_id for o in of_type(h.log, Offer)] == [agent_id(1), agent_id(2)]
