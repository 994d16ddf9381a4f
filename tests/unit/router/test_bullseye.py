"""Timed expansion: requirements relax in steps as a conversation waits, keeping its place."""

from __future__ import annotations

from router.policy import BullseyeStep, Offer
from tests.unit.router.harness import CHAT, Harness, agent_id, conv_id, of_type

STEPS = (BullseyeStep(0, 7), BullseyeStep(30, 4), BullseyeStep(90, None))


def test_only_experts_at_first_then_intermediates_after_30s_then_anyone_after_90s() -> None:
    h = Harness()
    h.queue(required={"ventas": 1}, bullseye=STEPS)
    h.agent(1, skills={"ventas": 5})  # intermediate
    h.agent(2, skills={"ventas": 2})  # novice
    assert of_type(h.arrive(1), Offer) == []
    assert of_type(h.advance(29.9), Offer) == []
    at_30 = of_type(h.advance(0.1), Offer)
    assert [(o.agent_id, o.decision.step) for o in at_30] == [(agent_id(1), 1)]
    h.accept(at_30)  # agent 1 is now full
    h.arrive(2)
    assert of_type(h.advance(89.9), Offer) == []  # conversation 2 reaches step 1 at 30 s, nobody free
    at_90 = of_type(h.advance(0.1), Offer)
    assert [(o.conversation_id, o.agent_id, o.decision.step) for o in at_90] == [(conv_id(2), agent_id(2), 2)]


def test_an_expert_is_offered_at_once() -> None:
    h = Harness()
    h.queue(required={"ventas": 1}, bullseye=STEPS)
    h.agent(1, skills={"ventas": 8})
    offers = of_type(h.arrive(1), Offer)
    assert [(o.agent_id, o.decision.step) for o in offers] == [(agent_id(1), 0)]


def test_expansion_keeps_the_conversations_place_in_line() -> None:
    h = Harness()
    h.queue(required={"ventas": 1}, bullseye=STEPS)
    h.arrive(1)
    h.now += 40  # conversation 1 reached step 1
    h.arrive(2)
    h.advance(60)  # both at step 1 now (2 since 60 s: step 1; 1 since 100 s: step 2)
    h.agent(1, skills={"ventas": 5}, capacity={CHAT: 1})  # eligible from step 1: sees both
    assert [o.conversation_id for o in h.offers()] == [conv_id(1)]


def test_an_agent_eligible_only_at_a_later_step_does_not_see_a_young_conversation() -> None:
    h = Harness()
    h.queue(required={"ventas": 1}, bullseye=STEPS)
    h.arrive(1)
    h.agent(1, skills={"ventas": 2})
    assert h.offers() == []
    h.advance(90)
    assert [o.agent_id for o in h.offers()] == [agent_id(1)]
