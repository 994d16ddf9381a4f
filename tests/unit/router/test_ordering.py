"""Waiting conversations are served by effective priority, then age."""

from __future__ import annotations

from core.ids import ConversationId
from router.policy import ConversationClosed, Offer, OfferAccepted, RouterConfig
from tests.unit.router.harness import CHAT, Harness, conv_id, of_type


def served_order(h: Harness, conversations: int) -> list[ConversationId]:
    """Bring one agent of capacity 1 and serve the backlog one by one."""
    h.agent(1, capacity={CHAT: 1})
    order: list[ConversationId] = []
    for _ in range(conversations):
        offer = of_type(h.log, Offer)[-1]
        order.append(offer.conversation_id)
        h.send(OfferAccepted(offer_id=offer.offer_id))
        h.send(ConversationClosed(conversation_id=offer.conversation_id))
    return order


def test_higher_priority_first_then_older_first() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, aging_s_per_priority_point=None))
    h.queue()
    h.arrive(1, priority=0)
    h.now += 1
    h.arrive(2, priority=5)
    h.now += 1
    h.arrive(3, priority=0)
    h.now += 1
    h.arrive(4, priority=5)
    assert served_order(h, 4) == [conv_id(2), conv_id(4), conv_id(1), conv_id(3)]


def test_priority_rises_with_waiting_so_an_old_conversation_overtakes_a_new_urgent_one() -> None:
    # one priority point per 60 s of waiting
    h = Harness(RouterConfig(ramp_period_s=0, aging_s_per_priority_point=60))
    h.queue()
    h.arrive(1, priority=0)
    h.now += 200  # conversation 1 has aged more than 3 points
    h.arrive(2, priority=3)
    h.arrive(3, priority=4)
    assert served_order(h, 3) == [conv_id(3), conv_id(1), conv_id(2)]


def test_a_conversation_whose_reply_window_is_closing_rises() -> None:
    config = RouterConfig(
        ramp_period_s=0, aging_s_per_priority_point=None, window_margin_s=3600, window_priority_boost=5
    )
    h = Harness(config)
    h.queue()
    h.arrive(1, priority=2, reply_window_closes_at=h.now + 86400)
    h.arrive(2, priority=2, reply_window_closes_at=h.now + 2 * 3600)  # not yet within the margin
    h.arrive(3, priority=4, reply_window_closes_at=h.now + 86400)
    h.advance(3601)  # conversation 2's window now closes within the hour: +5
    assert served_order(h, 3) == [conv_id(2), conv_id(3), conv_id(1)]


def test_a_window_already_closing_on_arrival_is_boosted_at_once() -> None:
    h = Harness(RouterConfig(ramp_period_s=0, aging_s_per_priority_point=None))
    h.queue()
    h.arrive(1, priority=1)
    h.arrive(2, priority=0, reply_window_closes_at=h.now + 60)
    assert served_order(h, 2) == [conv_id(2), conv_id(1)]
