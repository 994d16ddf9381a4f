"""Business hours per time zone with holidays; outside them one auto-reply, and offers at opening."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from core.errors import InvalidInput
from router.policy import BusinessHours, Offer, SendAutoReply, TransferRequested, WeeklyInterval
from tests.unit.router.harness import Harness, conv_id, of_type

MX = ZoneInfo("America/Mexico_City")  # UTC-6, no DST since 2022


def at(y: int, m: int, d: int, hh: int, mm: int = 0, zone: ZoneInfo = MX) -> float:
    return datetime(y, m, d, hh, mm, tzinfo=zone).timestamp()


WEEKDAYS_9_TO_18 = BusinessHours(
    timezone="America/Mexico_City",
    intervals=tuple(WeeklyInterval(day, time(9), time(18)) for day in range(5)),
    holidays=frozenset({date(2024, 3, 18)}),  # a Monday
)
NIGHT_SHIFT = BusinessHours(
    timezone="America/Mexico_City",
    intervals=(WeeklyInterval(4, time(22), time(6)),),  # Friday 22:00 to Saturday 06:00
)


def test_open_inside_the_interval_in_the_queues_time_zone() -> None:
    assert WEEKDAYS_9_TO_18.is_open(at(2024, 3, 4, 9))  # Monday 09:00 in Mexico City
    assert not WEEKDAYS_9_TO_18.is_open(at(2024, 3, 4, 8, 59))
    assert not WEEKDAYS_9_TO_18.is_open(at(2024, 3, 4, 18))
    # 16:00 UTC is 10:00 in Mexico City
    assert WEEKDAYS_9_TO_18.is_open(datetime(2024, 3, 4, 16, tzinfo=ZoneInfo("UTC")).timestamp())


def test_closed_on_weekends_and_holidays_and_the_next_opening_skips_them() -> None:
    assert not WEEKDAYS_9_TO_18.is_open(at(2024, 3, 16, 12))  # Saturday
    assert not WEEKDAYS_9_TO_18.is_open(at(2024, 3, 18, 12))  # the holiday Monday
    assert WEEKDAYS_9_TO_18.next_change(at(2024, 3, 15, 19)) == at(2024, 3, 19, 9)  # Friday night → Tuesday


def test_an_interval_can_cross_midnight() -> None:
    assert NIGHT_SHIFT.is_open(at(2024, 3, 8, 23))  # Friday 23:00
    assert NIGHT_SHIFT.is_open(at(2024, 3, 9, 5, 59))  # Saturday 05:59
    assert not NIGHT_SHIFT.is_open(at(2024, 3, 9, 6))
    assert NIGHT_SHIFT.next_change(at(2024, 3, 8, 23)) == at(2024, 3, 9, 6)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(InvalidInput):
        BusinessHours(timezone="Mars/Olympus", intervals=())


def test_outside_hours_one_auto_reply_no_offer_then_offered_at_opening() -> None:
    h = Harness(start=at(2024, 3, 4, 20))  # Monday 20:00, closed
    h.queue(hours=WEEKDAYS_9_TO_18)
    h.agent(1)
    out = h.arrive(1)
    assert of_type(out, Offer) == []
    replies = of_type(out, SendAutoReply)
    assert [(r.kind, r.opens_at) for r in replies] == [("outside_hours", at(2024, 3, 5, 9))]
    assert of_type(h.advance(at(2024, 3, 5, 8, 59) - h.now), Offer) == []
    opening = h.advance(60)
    assert [o.conversation_id for o in of_type(opening, Offer)] == [conv_id(1)]
    assert len(of_type(h.log, SendAutoReply)) == 1


def test_the_auto_reply_is_sent_once_even_if_the_conversation_moves_to_another_closed_queue() -> None:
    h = Harness(start=at(2024, 3, 4, 20))
    h.queue(1, hours=WEEKDAYS_9_TO_18)
    second = h.queue(2, hours=WEEKDAYS_9_TO_18)
    h.arrive(1)
    out = h.send(TransferRequested(conversation_id=conv_id(1), to_queue_id=second))
    assert of_type(out, SendAutoReply) == []
    assert len(of_type(h.log, SendAutoReply)) == 1


def test_a_conversation_arriving_during_opening_hours_gets_no_auto_reply() -> None:
    h = Harness(start=at(2024, 3, 4, 10))
    h.queue(hours=WEEKDAYS_9_TO_18)
    out = h.arrive(1)  # nobody logged in: it waits, but the queue is open
    assert of_type(out, SendAutoReply) == []


def test_hours_follow_daylight_saving_time_in_the_queues_zone() -> None:
    madrid = BusinessHours(timezone="Europe/Madrid", intervals=(WeeklyInterval(0, time(9), time(18)),))
    utc = ZoneInfo("UTC")
    # 09:00 in Madrid is 08:00 UTC in winter (CET) and 07:00 UTC after the switch on 2024-03-31 (CEST)
    assert madrid.next_change(at(2024, 3, 24, 12, zone=utc)) == at(2024, 3, 25, 8, zone=utc)
    assert madrid.next_change(at(2024, 3, 31, 12, zone=utc)) == at(2024, 4, 1, 7, zone=utc)


def test_open_seconds_count_only_the_time_the_hours_are_open() -> None:
    friday_17 = at(2024, 3, 15, 17)
    assert WEEKDAYS_9_TO_18.open_seconds(friday_17, at(2024, 3, 15, 17, 30)) == 1800
    # Friday 17:00 → Tuesday 09:30 (the weekend and the holiday Monday do not count): 1 h + 30 min
    assert WEEKDAYS_9_TO_18.open_seconds(friday_17, at(2024, 3, 19, 9, 30)) == 5400
    assert WEEKDAYS_9_TO_18.open_seconds(at(2024, 3, 16, 10), at(2024, 3, 17, 10)) == 0  # a Saturday
    assert NIGHT_SHIFT.open_seconds(at(2024, 3, 8, 21), at(2024, 3, 9, 7)) == 8 * 3600


def test_after_open_seconds_is_when_that_much_open_time_has_passed() -> None:
    # 60 s of SLA that start Friday 17:59:30 run out 30 s after Tuesday's opening
    start = at(2024, 3, 15, 17, 59) + 30
    assert WEEKDAYS_9_TO_18.after_open_seconds(start, 60) == at(2024, 3, 19, 9) + 30
    # started while closed (Saturday): the whole minute after the next opening
    assert WEEKDAYS_9_TO_18.after_open_seconds(at(2024, 3, 16, 12), 60) == at(2024, 3, 19, 9, 1)
    assert WEEKDAYS_9_TO_18.after_open_seconds(at(2024, 3, 4, 10), 60) == at(2024, 3, 4, 10, 1)
    # longer than a week of opening hours: across the windows the spans are computed in
    assert WEEKDAYS_9_TO_18.after_open_seconds(at(2024, 3, 4, 9), 6 * 9 * 3600) == at(2024, 3, 11, 18)
    assert BusinessHours(timezone="UTC", intervals=()).after_open_seconds(0.0, 60) is None
