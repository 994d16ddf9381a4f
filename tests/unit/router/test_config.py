"""Configuration is validated, and replaced live without losing anyone's place or agent."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput
from router.policy import (
    AgentProfile,
    AgentUpdated,
    BullseyeStep,
    Offer,
    QueueConfig,
    QueueUpdated,
    RouterConfig,
)
from tests.unit.router.harness import CHAT, WS, Harness, agent_id, conv_id, of_type, queue_id


def test_bullseye_steps_must_start_at_zero_and_only_relax() -> None:
    with pytest.raises(InvalidInput):
        QueueConfig(id=queue_id(1), workspace_id=WS, bullseye=(BullseyeStep(10, 7),))
    with pytest.raises(InvalidInput):
        QueueConfig(id=queue_id(1), workspace_id=WS, bullseye=(BullseyeStep(0, 4), BullseyeStep(30, 7)))


def test_proficiency_outside_1_to_10_is_refused() -> None:
    with pytest.raises(InvalidInput):
        AgentProfile(id=agent_id(1), workspace_id=WS, skills={"ventas": 11})


def test_router_settings_are_validated() -> None:
    with pytest.raises(InvalidInput):
        RouterConfig(offer_timeout_s=0)


def test_a_queue_update_keeps_waiting_conversations_in_place_and_assigned_ones_with_their_agent() -> None:
    h = Harness()
    h.queue(required={"ventas": 5})
    h.agent(1, skills={"ventas": 6}, capacity={CHAT: 1})
    h.agent(2, skills={"ventas": 3})
    h.accept(h.arrive(1))
    h.now += 1
    h.arrive(2)
    h.now += 1
    h.arrive(3)
    assert h.offers()[-1].conversation_id == conv_id(1)
    # relaxing the requirement lets agent 2 in: it takes the older waiting conversation first
    out = h.send(
        QueueUpdated(queue=QueueConfig(id=queue_id(1), workspace_id=WS, required_skills={"ventas": 2}))
    )
    assert [o.conversation_id for o in of_type(out, Offer)] == [conv_id(2)]
    assert h.holder(1) == agent_id(1)


def test_an_agent_update_with_new_skills_takes_effect_at_once() -> None:
    h = Harness()
    h.queue(required={"cobranza": 1})
    h.agent(1, skills={"ventas": 5})
    h.arrive(1)
    assert h.offers() == []
    profile = AgentProfile(id=agent_id(1), workspace_id=WS, skills={"cobranza": 4}, capacity={CHAT: 1})
    out = h.send(AgentUpdated(agent=profile))
    assert [o.agent_id for o in of_type(out, Offer)] == [agent_id(1)]
