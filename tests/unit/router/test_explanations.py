"""Every decision is explained: who was considered, who was filtered and why, the scores, the winner."""

from __future__ import annotations

from router.policy import (
    BullseyeStep,
    ExplainDetail,
    Explained,
    Offer,
    OfferDeclined,
    RouterConfig,
)
from tests.unit.router.harness import CHAT, MAIL, WS_B, Harness, agent_id, of_type


def test_a_full_explanation_lists_every_agent_with_a_reason_or_a_score() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, explain=ExplainDetail.FULL))
    h.queue(required={"ventas": 1}, bullseye=(BullseyeStep(0, 7), BullseyeStep(60, None)))
    h.agent(1, skills={"ventas": 9})
    h.agent(2, skills={"ventas": 8})
    h.agent(3, skills={"ventas": 4})
    h.agent(4, skills={"ventas": 9}, available=False)
    h.agent(5, skills={"ventas": 9}, capacity={MAIL: 3})
    h.agent(6, skills={"ventas": 9}, workspace=WS_B)  # never even considered
    first = of_type(h.arrive(1), Offer)[0]
    second = of_type(h.send(OfferDeclined(offer_id=first.offer_id)), Offer)[0]
    decision = second.decision
    assert decision.detail == "full" and decision.step == 0 and decision.min_proficiency == 7
    assert decision.winner == agent_id(2)
    assert [(c.agent_id, c.score) for c in decision.candidates] == [(agent_id(2), 8)]
    assert {f.agent_id: f.reason for f in decision.filtered} == {
        agent_id(1): "skipped_declined",
        agent_id(3): "missing_skill:ventas<7",
        agent_id(4): "offline",
        agent_id(5): f"at_capacity:{CHAT}",
    }
    assert decision.counts() == {"skipped_declined": 1, "missing_skill": 1, "offline": 1, "at_capacity": 1}
    assert decision.considered == 5
    assert decision.to_dict()["winner"] == str(agent_id(2))


def test_the_scores_of_all_eligible_agents_are_listed_best_first() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, explain=ExplainDetail.FULL))
    h.queue()
    h.agent(1, skills={"ventas": 3})
    h.agent(2, skills={"ventas": 7})
    h.agent(3, skills={"ventas": 5})
    decision = of_type(h.arrive(1), Offer)[0].decision
    assert [(c.agent_id, c.score) for c in decision.candidates] == [
        (agent_id(2), 7),
        (agent_id(3), 5),
        (agent_id(1), 3),
    ]


def test_a_decision_that_finds_nobody_is_explained_too() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, explain=ExplainDetail.FULL))
    h.queue()
    h.agent(1, available=False)
    explained = of_type(h.arrive(1), Explained)
    assert [(e.decision.winner, e.decision.counts()) for e in explained] == [(None, {"offline": 1})]


def test_a_large_pool_is_summarised_with_top_k_and_counts() -> None:
    h = Harness(
        RouterConfig(ramp_period_s=0, explain=ExplainDetail.AUTO, explain_full_max_agents=10, explain_top_k=3)
    )
    h.queue()
    for n in range(20):
        h.agent(n, skills={"ventas": 1 + n % 10})
    for n in range(20, 25):
        h.agent(n, skills={"ventas": 5}, available=False)
    for n in range(25, 30):
        h.agent(n, skills={"soporte": 5})
    decision = of_type(h.arrive(1), Offer)[0].decision
    assert decision.detail == "summary"
    assert len(decision.candidates) == 3
    assert decision.candidates[0].agent_id == decision.winner
    assert [c.score for c in decision.candidates] == [10, 10, 9]
    assert decision.counts() == {"missing_skill": 5, "offline": 5}
    assert decision.considered == 30


def test_minimal_explanations_keep_only_the_winner() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, explain=ExplainDetail.MINIMAL))
    h.queue()
    h.agent(1)
    h.agent(2, available=False)
    decision = of_type(h.arrive(1), Offer)[0].decision
    assert [c.agent_id for c in decision.candidates] == [agent_id(1)] and decision.filtered == ()
