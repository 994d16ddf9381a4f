"""The states things are in, as the product's spec names them (``core.states``)."""

from __future__ import annotations

import json

from core.states import (
    CUSTOMER_KINDS,
    OPEN_CONVERSATION_STATUSES,
    ROUTABLE_CONVERSATION_STATUSES,
    ConversationStatus,
    DeliveryState,
    MessageKind,
    OfferStatus,
    Presence,
)


def test_every_conversation_status_but_closed_is_open() -> None:
    assert set(OPEN_CONVERSATION_STATUSES) == set(ConversationStatus) - {ConversationStatus.CLOSED}


def test_a_conversation_in_triage_is_open_but_not_the_routers() -> None:
    assert ConversationStatus.TRIAGE in OPEN_CONVERSATION_STATUSES
    assert ConversationStatus.TRIAGE not in ROUTABLE_CONVERSATION_STATUSES


def test_the_router_holds_waiting_offered_and_assigned_conversations() -> None:
    assert ROUTABLE_CONVERSATION_STATUSES == (
        ConversationStatus.WAITING,
        ConversationStatus.OFFERED,
        ConversationStatus.ASSIGNED,
    )
    assert set(ROUTABLE_CONVERSATION_STATUSES) < set(OPEN_CONVERSATION_STATUSES)


def test_a_closed_conversation_is_neither_open_nor_routed() -> None:
    assert ConversationStatus.CLOSED not in OPEN_CONVERSATION_STATUSES
    assert ConversationStatus.CLOSED not in ROUTABLE_CONVERSATION_STATUSES


def test_open_statuses_are_listed_in_the_order_a_conversation_goes_through_them() -> None:
    assert list(OPEN_CONVERSATION_STATUSES) == list(ConversationStatus)[:-1]


def test_a_state_is_its_string_in_the_database_and_in_json() -> None:
    assert ConversationStatus("waiting") is ConversationStatus.WAITING
    assert "waiting" == ConversationStatus.WAITING  # a row's plain string compares equal
    assert "triage" in OPEN_CONVERSATION_STATUSES
    assert json.dumps({"status": ConversationStatus.ASSIGNED, "presence": Presence.WRAP_UP}) == (
        '{"status": "assigned", "presence": "wrap_up"}'
    )
    assert f"{OfferStatus.WITHDRAWN}" == "withdrawn"


def test_an_offer_is_live_only_while_offered() -> None:
    ended = set(OfferStatus) - {OfferStatus.OFFERED}
    assert ended == {OfferStatus.ACCEPTED, OfferStatus.DECLINED, OfferStatus.EXPIRED, OfferStatus.WITHDRAWN}


def test_an_agent_is_available_away_in_wrap_up_or_offline() -> None:
    assert [p.value for p in Presence] == ["available", "away", "offline", "wrap_up"]


def test_only_what_the_customer_wrote_opens_the_reply_window() -> None:
    assert set(CUSTOMER_KINDS) == {MessageKind.MESSAGE, MessageKind.POSTBACK}
    assert MessageKind.REACTION not in CUSTOMER_KINDS and MessageKind.READ not in CUSTOMER_KINDS


def test_the_outbox_states_are_the_delivery_states() -> None:
    assert DeliveryState.UNKNOWN == "unknown" and DeliveryState.SENDING == "sending"
