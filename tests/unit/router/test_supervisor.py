"""Transfers, force-assign and requeue: each conversation keeps exactly one holder and its age."""

from __future__ import annotations

from router.policy import (
    Assigned,
    ForceAssign,
    Offer,
    Refused,
    Requeue,
    Requeued,
    TransferRequested,
    WithdrawOffer,
)
from tests.unit.router.harness import CHAT, WS_B, Harness, agent_id, conv_id, of_type, queue_id


def test_transfer_to_a_queue_routes_it_there_skipping_the_transferring_agent() -> None:
    h = Harness()
    h.queue(1, required={"ventas": 1})
    h.queue(2, required={"cobranza": 1})
    h.agent(1, skills={"ventas": 5, "cobranza": 9}, capacity={CHAT: 2})
    h.agent(2, skills={"cobranza": 3})
    h.accept(h.arrive(1))
    h.now += 30
    out = h.send(TransferRequested(conversation_id=conv_id(1), to_queue_id=queue_id(2)))
    requeued = of_type(out, Requeued)
    assert [(r.queue_id, r.from_agent_id, r.reason) for r in requeued] == [
        (queue_id(2), agent_id(1), "transfer")
    ]
    assert requeued[0].enqueued_at == h.now - 30
    assert [o.agent_id for o in of_type(out, Offer)] == [agent_id(2)]  # not agent 1, though it scores higher


def test_transfer_to_an_agent_offers_it_to_that_agent_regardless_of_skills() -> None:
    h = Harness()
    h.queue(1, required={"ventas": 1})
    h.agent(1, skills={"ventas": 5})
    h.agent(2, skills={"soporte": 5})
    h.accept(h.arrive(1))
    out = h.send(TransferRequested(conversation_id=conv_id(1), to_agent_id=agent_id(2)))
    offers = of_type(out, Offer)
    assert [(o.agent_id, o.decision.trigger) for o in offers] == [(agent_id(2), "transfer")]


def test_transfer_to_an_agent_of_another_workspace_is_refused() -> None:
    h = Harness()
    h.queue()
    h.agent(1)
    h.agent(9, workspace=WS_B)
    h.accept(h.arrive(1))
    out = h.send(TransferRequested(conversation_id=conv_id(1), to_agent_id=agent_id(9)))
    assert [r.reason for r in of_type(out, Refused)] == ["other_workspace"]
    assert h.holder(1) == agent_id(1)


def test_force_assign_assigns_directly_and_withdraws_a_pending_offer() -> None:
    h = Harness()
    h.queue()
    h.agent(1, skills={"ventas": 9})
    h.agent(2, skills={"ventas": 1})
    offer = of_type(h.arrive(1), Offer)[0]
    out = h.send(ForceAssign(conversation_id=conv_id(1), agent_id=agent_id(2)))
    assert [(w.offer_id, w.reason) for w in of_type(out, WithdrawOffer)] == [(offer.offer_id, "forced")]
    assert [(a.agent_id, a.forced, a.offer_id) for a in of_type(out, Assigned)] == [(agent_id(2), True, None)]
    assert h.holder(1) == agent_id(2)
    assert h.state.audit() == []


def test_force_assign_respects_capacity() -> None:
    h = Harness()
    h.queue()
    h.agent(1, capacity={CHAT: 1})
    h.accept(h.arrive(1))
    h.arrive(2)
    out = h.send(ForceAssign(conversation_id=conv_id(2), agent_id=agent_id(1)))
    assert [r.reason for r in of_type(out, Refused)] == [f"at_capacity:{CHAT}"]
    assert h.status(2) == "waiting"


def test_requeue_by_a_supervisor_sends_it_to_someone_else_with_its_age() -> None:
    h = Harness()
    h.queue()
    h.agent(1, skills={"ventas": 9})
    h.agent(2, skills={"ventas": 1})
    h.accept(h.arrive(1))
    out = h.send(Requeue(conversation_id=conv_id(1)))
    assert [(r.from_agent_id, r.reason) for r in of_type(out, Requeued)] == [(agent_id(1), "supervisor")]
    assert [o.agent_id for o in of_type(out, Offer)] == [agent_id(2)]


def test_supervisor_actions_on_unknown_conversations_are_refused() -> None:
    h = Harness()
    h.queue()
    h.agent(1)
    for event in (
        Requeue(conversation_id=conv_id(404)),
        ForceAssign(conversation_id=conv_id(404), agent_id=agent_id(1)),
        TransferRequested(conversation_id=conv_id(404), to_queue_id=queue_id(1)),
    ):
        assert [r.reason for r in of_type(h.send(event), Refused)] == ["unknown_conversation"]
