"""Overflow to another queue after N seconds, or at once when nobody eligible is logged in."""

from __future__ import annotations

from router.policy import Offer, Overflow, Overflowed, RouterConfig
from tests.unit.router.harness import Harness, agent_id, conv_id, of_type, queue_id


def test_a_conversation_overflows_after_the_configured_wait_keeping_its_age() -> None:
    h = Harness()
    h.queue(2, required={"soporte": 1})
    h.queue(1, required={"ventas": 1}, overflow=Overflow(to_queue_id=queue_id(2), after_s=45))
    h.agent(1, skills={"ventas": 5}, capacity={"whatsapp": 0})  # logged in but without capacity
    h.agent(2, skills={"soporte": 5})
    h.arrive(1)
    assert of_type(h.advance(44.9), Overflowed) == []
    out = h.advance(0.1)
    assert [(o.from_queue_id, o.to_queue_id, o.reason) for o in of_type(out, Overflowed)] == [
        (queue_id(1), queue_id(2), "timeout")
    ]
    assert [o.agent_id for o in of_type(out, Offer)] == [agent_id(2)]
    assert h.state.conversation_snapshot(conv_id(1)).enqueued_at == h.now - 45  # type: ignore[union-attr]


def test_a_conversation_overflows_at_once_when_no_eligible_agent_is_logged_in() -> None:
    h = Harness()
    h.queue(2, required={"soporte": 1})
    h.queue(
        1, required={"ventas": 1}, overflow=Overflow(to_queue_id=queue_id(2), when_no_eligible_agents=True)
    )
    h.agent(1, skills={"ventas": 5}, available=False)  # eligible but offline
    out = h.arrive(1)
    assert [o.reason for o in of_type(out, Overflowed)] == ["no_eligible_agents"]
    assert h.state.conversation_snapshot(conv_id(1)).queue_id == queue_id(2)  # type: ignore[union-attr]


def test_no_immediate_overflow_when_an_eligible_agent_is_logged_in_but_busy() -> None:
    h = Harness()
    h.queue(2, required={"soporte": 1})
    h.queue(
        1, required={"ventas": 1}, overflow=Overflow(to_queue_id=queue_id(2), when_no_eligible_agents=True)
    )
    h.agent(1, skills={"ventas": 5})
    h.accept(h.arrive(1))
    assert of_type(h.arrive(2), Overflowed) == []
    assert h.status(2) == "waiting"


def test_overflow_loops_stop_after_the_maximum_hops() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, max_overflow_hops=3))
    h.queue(1, overflow=Overflow(to_queue_id=queue_id(2), when_no_eligible_agents=True))
    h.queue(2, overflow=Overflow(to_queue_id=queue_id(1), when_no_eligible_agents=True))
    out = h.arrive(1)
    assert len(of_type(out, Overflowed)) == 3
    assert h.status(1) == "waiting"
