"""No agent is ever offered or assigned more than its capacity, pending offers included."""

from __future__ import annotations

from router.policy import Offer, OfferAccepted
from tests.unit.router.harness import CHAT, MAIL, Harness, agent_id, of_type


def test_pending_offers_reserve_capacity_so_a_burst_never_exceeds_it() -> None:
    h = Harness()
    h.queue()
    h.agent(1, capacity={CHAT: 2})
    for n in range(5):
        h.arrive(n)
    # one pending offer at a time (fairness), and never more than 2 conversations in hand
    offers = h.offers()
    assert len(offers) == 1
    h.send(OfferAccepted(offer_id=offers[0].offer_id))
    assert len(h.offers()) == 2
    h.send(OfferAccepted(offer_id=h.offers()[1].offer_id))
    assert len(h.offers()) == 2  # full: 2 assigned, nothing more offered
    snapshot = h.state.agent_snapshot(agent_id(1))
    assert snapshot is not None and snapshot.load == {CHAT: 2}
    assert h.state.audit() == []


def test_capacity_is_per_channel() -> None:
    h = Harness()
    h.queue()
    h.agent(1, capacity={CHAT: 1, MAIL: 1})
    h.accept(h.arrive(1, channel=CHAT))
    assert of_type(h.arrive(2, channel=CHAT), Offer) == []
    assert len(of_type(h.arrive(3, channel=MAIL), Offer)) == 1


def test_a_channel_missing_from_capacity_is_not_taken() -> None:
    h = Harness()
    h.queue()
    h.agent(1, capacity={MAIL: 5})
    assert of_type(h.arrive(1, channel=CHAT), Offer) == []
    assert h.status(1) == "waiting"


def test_weights_and_total_capacity_share_units_across_channels() -> None:
    h = Harness()
    h.queue()
    # 4 units in all; a chat uses 2, an email 1
    h.agent(1, capacity={CHAT: 4, MAIL: 4}, weights={CHAT: 2}, total_capacity=4)
    h.accept(h.arrive(1, channel=CHAT))
    h.accept(h.arrive(2, channel=MAIL))
    h.accept(h.arrive(3, channel=MAIL))
    assert of_type(h.arrive(4, channel=CHAT), Offer) == []  # 4 units used
    assert h.state.agent_snapshot(agent_id(1)).load == {CHAT: 2, MAIL: 2}  # type: ignore[union-attr]
