"""Among eligible agents: best skill match, then least loaded or longest idle, then the id."""

from __future__ import annotations

from core.ids import AgentId
from router.policy import Command, ConversationClosed, Offer, RouterConfig, Selection
from tests.unit.router.harness import CHAT, Harness, agent_id, conv_id, of_type


def offered_to(commands: list[Command]) -> AgentId:
    offers = of_type(commands, Offer)
    assert len(offers) == 1
    return offers[0].agent_id


def test_the_best_skill_match_wins() -> None:
    h = Harness()
    h.queue(required={"ventas": 1})
    h.agent(1, skills={"ventas": 3})
    h.agent(2, skills={"ventas": 9})
    h.agent(3, skills={"ventas": 6})
    assert offered_to(h.arrive(1)) == agent_id(2)


def test_preferred_skills_add_to_the_score() -> None:
    h = Harness()
    h.queue(required={"ventas": 1}, preferred_skills={"ingles": 1})
    h.agent(1, skills={"ventas": 8})
    h.agent(2, skills={"ventas": 6, "ingles": 5})
    assert offered_to(h.arrive(1)) == agent_id(2)


def test_least_loaded_prefers_the_agent_with_less_in_hand() -> None:
    h = Harness(RouterConfig(selection=Selection.LEAST_LOADED, ramp_period_s=0))
    h.queue()
    h.agent(1, capacity={CHAT: 3})
    h.agent(2, capacity={CHAT: 3})
    first = offered_to(h.arrive(1))
    h.accept(h.log[-1:])
    h.now += 1
    assert offered_to(h.arrive(2)) != first


def test_longest_idle_prefers_the_agent_idle_the_longest_even_when_more_loaded() -> None:
    h = Harness(RouterConfig(selection=Selection.LONGEST_IDLE, ramp_period_s=0))
    h.queue()
    h.agent(1, capacity={CHAT: 3})
    h.now += 10
    h.agent(2, capacity={CHAT: 3})  # available later: idle for less time
    h.now += 10
    assert offered_to(h.arrive(1)) == agent_id(1)
    h.accept(h.log[-1:])
    h.now += 10
    assert offered_to(h.arrive(2)) == agent_id(2)  # agent 1 was just offered one
    h.accept(h.log[-1:])
    h.send(ConversationClosed(conversation_id=conv_id(2)))  # agent 2: empty-handed, but offered last
    h.now += 10
    assert offered_to(h.arrive(3)) == agent_id(1)  # loaded, but idle the longest


def test_least_loaded_picks_the_less_loaded_even_if_idle_for_less_time() -> None:
    h = Harness(RouterConfig(selection=Selection.LEAST_LOADED, ramp_period_s=0))
    h.queue()
    h.agent(1, capacity={CHAT: 3})
    h.now += 10
    h.agent(2, capacity={CHAT: 3})
    h.now += 10
    assert offered_to(h.arrive(1)) == agent_id(1)  # equal load: idle longest
    h.accept(h.log[-1:])
    h.now += 10
    assert offered_to(h.arrive(2)) == agent_id(2)
    h.accept(h.log[-1:])
    h.send(ConversationClosed(conversation_id=conv_id(2)))  # agent 2 back to 0, offered last
    h.now += 10
    assert offered_to(h.arrive(3)) == agent_id(2)


def test_ties_are_broken_deterministically_by_agent_id() -> None:
    winners = set()
    for order in ((1, 2, 3), (3, 2, 1), (2, 3, 1)):
        h = Harness(RouterConfig(selection=Selection.LEAST_LOADED, ramp_period_s=0))
        h.queue()
        for n in order:
            h.agent(n)
        winners.add(of_type(h.arrive(1), Offer)[0].agent_id)
    assert len(winners) == 1
