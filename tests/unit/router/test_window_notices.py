"""The agent holding a conversation hears when its reply window is about to close, and when it
has closed: once per window, again after the customer writes (a new window)."""

from __future__ import annotations

from router.policy import (
    ConversationArrived,
    ForceAssign,
    ReplyWindowChanged,
    RouterConfig,
    WindowClosed,
    WindowClosing,
)
from tests.unit.router.harness import CHAT, WS, Harness, agent_id, conv_id, of_type, queue_id

DAY = 24 * 3600.0


def _assigned(h: Harness, closes_in: float) -> None:
    h.queue()
    h.agent(1)
    h.accept(h.arrive(1, reply_window_closes_at=h.now + closes_in))


def test_the_agent_is_warned_once_an_hour_before_the_window_closes_and_told_when_it_closed() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, window_warning_s=3600))
    _assigned(h, DAY)
    closes = h.now + DAY
    assert of_type(h.advance(DAY - 3601), WindowClosing) == []
    warned = of_type(h.advance(2), WindowClosing)
    assert [(w.conversation_id, w.agent_id, w.closes_at) for w in warned] == [
        (conv_id(1), agent_id(1), closes)
    ]
    seen = h.advance(3600)
    assert of_type(seen, WindowClosing) == []
    assert [(c.conversation_id, c.agent_id, c.closed_at) for c in of_type(seen, WindowClosed)] == [
        (conv_id(1), agent_id(1), closes)
    ]


def test_a_new_customer_message_opens_a_new_window_and_re_arms_the_warning() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, window_warning_s=3600))
    _assigned(h, DAY)
    assert len(of_type(h.advance(DAY - 1800), WindowClosing)) == 1
    h.send(ReplyWindowChanged(conversation_id=conv_id(1), closes_at=h.now + DAY))  # the customer wrote
    seen = h.advance(DAY - 1800)
    assert of_type(seen, WindowClosed) == []  # the old window's close is not announced
    assert len(of_type(seen, WindowClosing)) == 1
    again = h.send(ReplyWindowChanged(conversation_id=conv_id(1), closes_at=h.now + 1800))  # same window
    assert of_type(again + h.advance(60), WindowClosing) == []


def test_a_conversation_taken_inside_its_warning_period_is_warned_at_once() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, window_warning_s=3600))
    h.queue()
    h.arrive(1, reply_window_closes_at=h.now + 600)
    h.agent(2)
    assert of_type(h.log, WindowClosing) == []  # only offered so far
    warned = of_type(h.accept(h.offers()), WindowClosing)
    assert [(w.agent_id, w.closes_at) for w in warned] == [(agent_id(2), h.now + 600)]
    h.agent(3)
    moved = h.send(ForceAssign(conversation_id=conv_id(1), agent_id=agent_id(3)))
    assert [w.agent_id for w in of_type(moved, WindowClosing)] == [agent_id(3)]  # the new holder


def test_a_waiting_conversation_warns_nobody() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, window_warning_s=3600))
    h.queue()
    h.arrive(1, reply_window_closes_at=h.now + 1800)
    assert of_type(h.advance(3600), WindowClosing | WindowClosed) == []  # type: ignore[arg-type]


def test_a_router_taking_over_does_not_repeat_a_warning_already_due() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, window_warning_s=3600))
    h.queue()
    h.agent(1)
    restored = h.send(
        ConversationArrived(
            conversation_id=conv_id(1),
            workspace_id=WS,
            queue_id=queue_id(1),
            channel=CHAT,
            reply_window_closes_at=h.now + 600,
            assigned_agent_id=agent_id(1),
        )
    )
    seen = restored + h.advance(601)
    assert of_type(seen, WindowClosing) == []
    assert len(of_type(seen, WindowClosed)) == 1


def test_no_warning_when_the_setting_is_zero() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, window_warning_s=0))
    _assigned(h, 600)
    seen = h.advance(601)
    assert of_type(seen, WindowClosing) == [] and len(of_type(seen, WindowClosed)) == 1
