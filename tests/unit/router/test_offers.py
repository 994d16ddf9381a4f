"""Offers: accepted → assigned; declined or unanswered → re-routed skipping that agent."""

from __future__ import annotations

from router.policy import Assigned, Offer, OfferAccepted, OfferDeclined, RouterConfig, WithdrawOffer
from tests.unit.router.harness import Harness, agent_id, conv_id, of_type


def test_an_accepted_offer_becomes_an_assignment() -> None:
    h = Harness()
    h.queue()
    h.agent(1)
    offer = of_type(h.arrive(1), Offer)[0]
    h.now += 4
    assigned = of_type(h.send(OfferAccepted(offer_id=offer.offer_id)), Assigned)
    assert [(a.conversation_id, a.agent_id, a.offer_id, a.waited_s) for a in assigned] == [
        (conv_id(1), agent_id(1), offer.offer_id, 4.0)
    ]
    assert h.status(1) == "assigned"


def test_an_unanswered_offer_is_withdrawn_at_the_deadline_and_rerouted_skipping_the_agent() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, offer_timeout_s=15))
    h.queue()
    h.agent(1, skills={"ventas": 9})
    h.agent(2, skills={"ventas": 3})
    offer = of_type(h.arrive(1), Offer)[0]
    assert offer.agent_id == agent_id(1) and offer.expires_at == h.now + 15
    assert h.state.next_deadline() == offer.expires_at
    assert of_type(h.advance(14.9), WithdrawOffer) == []
    after = h.advance(0.1)
    withdrawn = of_type(after, WithdrawOffer)
    assert [(w.offer_id, w.reason) for w in withdrawn] == [(offer.offer_id, "timeout")]
    assert [o.agent_id for o in of_type(after, Offer)] == [agent_id(2)]
    assert h.state.conversation_snapshot(conv_id(1)).skipped == {agent_id(1): "timeout"}  # type: ignore[union-attr]


def test_a_declined_offer_is_rerouted_skipping_the_agent_who_declined() -> None:
    h = Harness()
    h.queue()
    h.agent(1, skills={"ventas": 9})
    h.agent(2, skills={"ventas": 3})
    offer = of_type(h.arrive(1), Offer)[0]
    again = h.send(OfferDeclined(offer_id=offer.offer_id))
    assert of_type(again, WithdrawOffer) == []  # the agent knows it declined
    assert [o.agent_id for o in of_type(again, Offer)] == [agent_id(2)]


def test_the_agent_who_declined_is_offered_the_next_conversation() -> None:
    h = Harness()
    h.queue()
    h.agent(1)
    h.arrive(1)
    h.arrive(2)
    again = h.send(OfferDeclined(offer_id=h.offers()[0].offer_id))
    assert [(o.conversation_id, o.agent_id) for o in of_type(again, Offer)] == [(conv_id(2), agent_id(1))]
    assert h.status(1) == "waiting"


def test_an_answer_to_a_withdrawn_offer_changes_nothing() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, offer_timeout_s=10))
    h.queue()
    h.agent(1)
    h.agent(2)
    offer = of_type(h.arrive(1), Offer)[0]
    h.advance(10)
    assert h.send(OfferAccepted(offer_id=offer.offer_id)) == []
    assert h.state.audit() == []


def test_a_redelivered_arrival_is_ignored() -> None:
    h = Harness()
    h.queue()
    h.agent(1)
    h.arrive(1)
    assert h.arrive(1) == []
    assert len(h.offers()) == 1
