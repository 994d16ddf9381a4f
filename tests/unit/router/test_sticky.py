"""A returning customer is offered first to the agent who served them last, within the sticky wait."""

from __future__ import annotations

from router.policy import (
    AgentPresenceChanged,
    ConversationClosed,
    Offer,
    OfferDeclined,
    Presence,
    RouterConfig,
)
from tests.unit.router.harness import CHAT, Harness, agent_id, conv_id, customer_id, of_type


def test_the_previous_agent_is_offered_first_even_if_another_scores_higher() -> None:
    h = Harness()
    h.queue()
    h.agent(1, skills={"ventas": 3})
    h.agent(2, skills={"ventas": 9})
    offers = of_type(h.arrive(1, customer_id=customer_id(1), preferred_agent_id=agent_id(1)), Offer)
    assert [(o.agent_id, o.decision.trigger) for o in offers] == [(agent_id(1), "sticky")]


def test_a_busy_previous_agent_is_waited_for_within_the_sticky_wait() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, sticky_wait_s=30))
    h.queue()
    h.agent(1, capacity={CHAT: 1})
    h.accept(h.arrive(1))  # agent 1 is busy
    h.agent(2)
    assert of_type(h.arrive(2, preferred_agent_id=agent_id(1)), Offer) == []  # held for agent 1
    h.now += 10
    offers = of_type(h.send(ConversationClosed(conversation_id=conv_id(1))), Offer)
    assert [(o.conversation_id, o.agent_id) for o in offers] == [(conv_id(2), agent_id(1))]


def test_after_the_sticky_wait_the_conversation_is_routed_normally() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, sticky_wait_s=30))
    h.queue()
    h.agent(1, capacity={CHAT: 1})
    h.accept(h.arrive(1))
    h.agent(2)
    h.arrive(2, preferred_agent_id=agent_id(1))
    assert of_type(h.advance(29), Offer) == []
    offers = of_type(h.advance(1), Offer)
    assert [(o.conversation_id, o.agent_id) for o in offers] == [(conv_id(2), agent_id(2))]


def test_an_offline_previous_agent_is_not_waited_for() -> None:
    h = Harness()
    h.queue()
    h.agent(1, available=False)
    h.agent(2)
    offers = of_type(h.arrive(1, preferred_agent_id=agent_id(1)), Offer)
    assert [o.agent_id for o in offers] == [agent_id(2)]


def test_a_previous_agent_who_declines_is_skipped_and_routing_goes_on() -> None:
    h = Harness()
    h.queue()
    h.agent(1)
    h.agent(2)
    first = of_type(h.arrive(1, preferred_agent_id=agent_id(2)), Offer)[0]
    assert first.agent_id == agent_id(2)
    again = of_type(h.send(OfferDeclined(offer_id=first.offer_id)), Offer)
    assert [o.agent_id for o in again] == [agent_id(1)]


def test_the_held_conversation_is_released_when_the_previous_agent_goes_away() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, sticky_wait_s=300))
    h.queue()
    h.agent(1, capacity={CHAT: 1})
    h.accept(h.arrive(1))
    h.agent(2)
    h.arrive(2, preferred_agent_id=agent_id(1))
    offers = of_type(h.send(AgentPresenceChanged(agent_id=agent_id(1), presence=Presence.AWAY)), Offer)
    assert [(o.conversation_id, o.agent_id) for o in offers] == [(conv_id(2), agent_id(2))]
