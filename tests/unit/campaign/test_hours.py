"""Business hours decide whether a queue is open at an instant, and when it opens next."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from core.campaign import BusinessHours, is_open, next_opening
from core.errors import InvalidInput

ZONE = "America/Mexico_City"  # UTC-6, no daylight saving time since 2022
HOURS = BusinessHours(
    weekly={"mon": ["09:00-14:00", "15:00-19:00"], "sat": ["09:00-13:00"]},
    holidays=[date(2026, 11, 16)],
)


def test_a_queue_is_open_inside_an_interval() -> None:
    assert is_open(HOURS, datetime(2026, 11, 9, 16, 0, tzinfo=UTC), ZONE)  # Monday 10:00 local


def test_a_queue_is_closed_at_the_end_of_an_interval() -> None:
    assert not is_open(HOURS, datetime(2026, 11, 9, 20, 0, tzinfo=UTC), ZONE)  # Monday 14:00 local


def test_a_queue_is_closed_on_a_holiday() -> None:
    assert not is_open(HOURS, datetime(2026, 11, 16, 16, 0, tzinfo=UTC), ZONE)  # holiday Monday 10:00


def test_a_queue_without_hours_is_always_open() -> None:
    assert is_open(None, datetime(2026, 11, 15, 3, 0, tzinfo=UTC), ZONE)


def test_the_queue_time_zone_wins_over_the_campaign_one() -> None:
    hours = BusinessHours(timezone="America/Argentina/Buenos_Aires", weekly={"mon": ["09:00-10:00"]})
    assert is_open(hours, datetime(2026, 11, 9, 12, 30, tzinfo=UTC), ZONE)  # 09:30 in Buenos Aires


def test_the_next_opening_skips_closed_days_and_holidays() -> None:
    saturday_evening = datetime(2026, 11, 14, 21, 0, tzinfo=UTC)  # Saturday 15:00 local
    # Monday the 16th is a holiday: next is Saturday the 21st at 09:00 local.
    assert next_opening(HOURS, saturday_evening, ZONE) == datetime(2026, 11, 21, 15, 0, tzinfo=UTC)


def test_the_next_opening_of_an_open_queue_is_now() -> None:
    now = datetime(2026, 11, 9, 16, 0, tzinfo=UTC)
    assert next_opening(HOURS, now, ZONE) == now


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(InvalidInput):
        is_open(HOURS, datetime(2026, 11, 9, 10, 0), ZONE)
