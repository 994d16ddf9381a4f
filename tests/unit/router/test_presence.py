"""Presence: away/offline and lost connections give work back; wrap-up pauses new offers."""

from __future__ import annotations

from router.policy import (
    AgentConnected,
    AgentDisconnected,
    AgentLeaseExpired,
    AgentPresenceChanged,
    ConversationClosed,
    Offer,
    Presence,
    PresenceSet,
    Requeued,
    RouterConfig,
    WithdrawOffer,
)
from tests.unit.router.harness import CHAT, Harness, agent_id, conv_id, of_type


def setup_agent_with_work(config: RouterConfig) -> Harness:
    """Agent 1 holds conversation 1 (assigned) and an offer of conversation 2."""
    h = Harness(config)
    h.queue()
    h.agent(1, capacity={CHAT: 3})
    h.arrive(1)
    h.accept(h.log[-1:])
    h.now += 5
    h.arrive(2)
    assert [o.conversation_id for o in h.offers()] == [conv_id(1), conv_id(2)]
    return h


def test_a_lost_connection_beyond_grace_requeues_offers_and_open_conversations_with_their_age() -> None:
    h = setup_agent_with_work(RouterConfig(ramp_period_s=0, disconnect_grace_s=60, offer_timeout_s=600))
    original = h.state.conversation_snapshot(conv_id(1)).enqueued_at  # type: ignore[union-attr]
    h.send(AgentDisconnected(agent_id=agent_id(1)))
    assert of_type(h.advance(59), WithdrawOffer) == []
    after = h.advance(1)
    assert [(p.presence, p.reason) for p in of_type(after, PresenceSet)] == [
        (Presence.OFFLINE, "connection_lost")
    ]
    assert [(w.conversation_id, w.reason) for w in of_type(after, WithdrawOffer)] == [
        (conv_id(2), "agent_offline")
    ]
    requeued = of_type(after, Requeued)
    assert [(r.conversation_id, r.reason, r.enqueued_at) for r in requeued] == [
        (conv_id(1), "agent_offline", original)
    ]
    assert h.status(1) == h.status(2) == "waiting"
    # another agent gets the older one first: its original age was kept
    h.agent(2, capacity={CHAT: 1})
    assert [o.conversation_id for o in of_type(h.log, Offer)][-1] == conv_id(1)


def test_an_expired_lease_sets_the_agent_offline_at_once_and_keeps_its_assigned_conversations() -> None:
    h = setup_agent_with_work(RouterConfig(ramp_period_s=0, disconnect_grace_s=60, offer_timeout_s=600))
    offered_since = h.state.conversation_snapshot(conv_id(2)).enqueued_at  # type: ignore[union-attr]
    out = h.send(AgentLeaseExpired(agent_id=agent_id(1)))
    assert [(p.presence, p.reason) for p in of_type(out, PresenceSet)] == [
        (Presence.OFFLINE, "lease_expired")
    ]
    assert [(w.conversation_id, w.reason) for w in of_type(out, WithdrawOffer)] == [
        (conv_id(2), "agent_offline")
    ]
    assert of_type(out, Requeued) == []
    assert (h.status(1), h.holder(1)) == ("assigned", agent_id(1))
    assert h.status(2) == "waiting"
    h.agent(2, capacity={CHAT: 1})
    offer = of_type(h.log, Offer)[-1]
    assert (offer.conversation_id, offer.agent_id) == (conv_id(2), agent_id(2))
    assert h.state.conversation_snapshot(conv_id(2)).enqueued_at == offered_since  # type: ignore[union-attr]
    assert h.state.agent_snapshot(agent_id(1)).connected is False  # type: ignore[union-attr]


def test_an_expired_lease_of_an_agent_already_disconnected_leaves_its_grace_period_running() -> None:
    h = setup_agent_with_work(RouterConfig(ramp_period_s=0, disconnect_grace_s=60, offer_timeout_s=600))
    h.send(AgentDisconnected(agent_id=agent_id(1)))
    assert h.send(AgentLeaseExpired(agent_id=agent_id(1))) == []
    h.send(AgentConnected(agent_id=agent_id(1)))
    assert of_type(h.advance(120), PresenceSet) == []


def test_reconnecting_within_the_grace_period_loses_nothing() -> None:
    h = setup_agent_with_work(RouterConfig(ramp_period_s=0, disconnect_grace_s=60, offer_timeout_s=600))
    h.send(AgentDisconnected(agent_id=agent_id(1)))
    h.advance(30)
    h.send(AgentConnected(agent_id=agent_id(1)))
    later = h.advance(120)
    assert of_type(later, WithdrawOffer) == [] and of_type(later, Requeued) == []
    assert h.status(1) == "assigned" and h.status(2) == "offered"


def test_no_new_offers_while_disconnected() -> None:
    h = Harness()
    h.queue()
    h.agent(1)
    h.send(AgentDisconnected(agent_id=agent_id(1)))
    assert of_type(h.arrive(1), Offer) == []
    assert of_type(h.send(AgentConnected(agent_id=agent_id(1))), Offer) != []


def test_going_offline_can_keep_open_conversations_when_configured() -> None:
    h = setup_agent_with_work(RouterConfig(ramp_period_s=0, requeue_open_on_offline=False))
    out = h.send(AgentPresenceChanged(agent_id=agent_id(1), presence=Presence.OFFLINE))
    assert [w.conversation_id for w in of_type(out, WithdrawOffer)] == [conv_id(2)]
    assert of_type(out, Requeued) == []
    assert h.status(1) == "assigned"


def test_going_away_withdraws_pending_offers_but_keeps_open_conversations() -> None:
    h = setup_agent_with_work(RouterConfig(ramp_period_s=0))
    out = h.send(AgentPresenceChanged(agent_id=agent_id(1), presence=Presence.AWAY))
    assert [(w.conversation_id, w.reason) for w in of_type(out, WithdrawOffer)] == [
        (conv_id(2), "agent_away")
    ]
    assert h.status(1) == "assigned" and h.status(2) == "waiting"


def test_closing_a_conversation_puts_the_agent_in_wrap_up_then_available_again() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, wrap_up_s=20))
    h.queue()
    h.agent(1, capacity={CHAT: 1})
    h.accept(h.arrive(1))
    h.arrive(2)
    out = h.send(ConversationClosed(conversation_id=conv_id(1)))
    assert [(p.presence, p.until) for p in of_type(out, PresenceSet)] == [(Presence.WRAP_UP, h.now + 20)]
    assert of_type(out, Offer) == []
    assert of_type(h.advance(19.9), Offer) == []
    out = h.advance(0.1)
    assert [p.presence for p in of_type(out, PresenceSet)] == [Presence.AVAILABLE]
    assert [o.conversation_id for o in of_type(out, Offer)] == [conv_id(2)]
