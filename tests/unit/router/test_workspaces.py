"""Nothing crosses a workspace: an agent of workspace A is never offered B's conversation."""

from __future__ import annotations

from router.policy import Offer, Refused
from tests.unit.router.harness import WS, WS_B, Harness, agent_id, of_type, queue_id


def test_an_agent_of_another_workspace_is_never_offered_the_conversation() -> None:
    h = Harness()
    h.queue(1, workspace=WS)
    h.queue(2, workspace=WS_B)
    h.agent(1, workspace=WS_B, skills={"ventas": 10})
    assert of_type(h.arrive(1, queue=queue_id(1), workspace=WS), Offer) == []
    offers = of_type(h.arrive(2, queue=queue_id(2), workspace=WS_B), Offer)
    assert [o.agent_id for o in offers] == [agent_id(1)]
    h.agent(2, workspace=WS)
    assert [o.agent_id for o in of_type(h.log, Offer)][-1] == agent_id(2)


def test_a_conversation_naming_another_workspaces_queue_is_refused() -> None:
    h = Harness()
    h.queue(1, workspace=WS)
    out = h.arrive(1, queue=queue_id(1), workspace=WS_B)
    assert [r.reason for r in of_type(out, Refused)] == ["other_workspace"]


def test_a_sticky_agent_of_another_workspace_is_ignored() -> None:
    h = Harness()
    h.queue(1, workspace=WS)
    h.agent(1, workspace=WS_B)
    h.agent(2, workspace=WS)
    offers = of_type(h.arrive(1, preferred_agent_id=agent_id(1)), Offer)
    assert [o.agent_id for o in offers] == [agent_id(2)]
