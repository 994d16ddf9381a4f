"""Why a queue's waiting work is not offered: the first obstacle a supervisor would remove."""

from __future__ import annotations

import pytest

from router.policy import AgentFacts, NotOffered, NotOfferedReason, Presence, why_not_offered

CHAT = "whatsapp"


def agent(
    presence: Presence = Presence.AVAILABLE,
    *,
    connected: bool = True,
    capacity: int = 2,
    load: int = 0,
    pending: int = 0,
) -> AgentFacts:
    return AgentFacts(
        presence=presence,
        connected=connected,
        capacity={CHAT: capacity},
        load={CHAT: load},
        pending_offers=pending,
    )


def why(*agents: AgentFacts, open: bool = True, channels: frozenset[str] = frozenset({CHAT})) -> object:
    found = why_not_offered(waiting_channels=channels, open=open, next_opening=1000.0, agents=agents)
    return None if found is None else found.reason


def test_a_closed_queue_says_when_it_opens_whoever_is_signed_in() -> None:
    found = why_not_offered(waiting_channels={CHAT}, open=False, next_opening=1000.0, agents=[agent()])
    assert found == NotOffered(NotOfferedReason.QUEUE_CLOSED, 1000.0)


@pytest.mark.parametrize(
    ("agents", "reason"),
    [
        ((), NotOfferedReason.NO_ELIGIBLE_AGENT),
        ((agent(capacity=0),), NotOfferedReason.NO_ELIGIBLE_AGENT),  # skilled, but not on this channel
        ((agent(Presence.OFFLINE), agent(Presence.OFFLINE)), NotOfferedReason.NO_AGENT_SIGNED_IN),
        ((agent(Presence.AWAY), agent(Presence.OFFLINE)), NotOfferedReason.NO_AGENT_AVAILABLE),
        ((agent(Presence.WRAP_UP),), NotOfferedReason.NO_AGENT_AVAILABLE),
        ((agent(connected=False),), NotOfferedReason.NO_AGENT_AVAILABLE),  # reconnecting
        ((agent(load=2), agent(Presence.AWAY)), NotOfferedReason.ALL_AT_CAPACITY),
        ((agent(load=1, pending=1),), NotOfferedReason.ALL_AT_CAPACITY),  # an offer holds a place
        ((agent(load=1), agent(Presence.OFFLINE)), None),  # room left: the work is flowing
    ],
)
def test_the_first_obstacle_is_named(agents: tuple[AgentFacts, ...], reason: NotOfferedReason | None) -> None:
    assert why(*agents) == reason


def test_nothing_waiting_has_no_reason() -> None:
    assert why(open=False, channels=frozenset()) is None
