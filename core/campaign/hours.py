"""Business hours as decisions: is a queue open at an instant, and when does it open next.

Pure and clock-free: the caller passes the instant (an aware datetime).  Intervals are local
times of the queue's time zone (or the campaign's), end exclusive; holidays close the whole
local day.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.campaign.fields import WEEKDAYS, parse_interval_minutes
from core.campaign.model import BusinessHours
from core.errors import InvalidInput

__all__ = ["is_open", "next_opening"]

_HORIZON_DAYS = 380


def _local(hours: BusinessHours, at: datetime, default_timezone: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput("business-hours checks need an aware datetime (with its time zone)", field="at")
    return at.astimezone(ZoneInfo(hours.timezone or default_timezone))


def is_open(hours: BusinessHours | None, at: datetime, default_timezone: str) -> bool:
    """Whether the queue is open at ``at``; no hours means always open."""
    if hours is None:
        return True
    local = _local(hours, at, default_timezone)
    if local.date() in hours.holidays:
        return False
    minute = local.hour * 60 + local.minute
    intervals = hours.weekly.get(WEEKDAYS[local.weekday()], [])
    return any(start <= minute < end for start, end in map(parse_interval_minutes, intervals))


def next_opening(hours: BusinessHours | None, at: datetime, default_timezone: str) -> datetime | None:
    """``at`` if open, else the next instant the queue opens (UTC); None if it never opens."""
    if hours is None or is_open(hours, at, default_timezone):
        return at
    local = _local(hours, at, default_timezone)
    zone = local.tzinfo
    for offset in range(_HORIZON_DAYS):
        day = local.date() + timedelta(days=offset)
        if day in hours.holidays:
            continue
        starts = sorted(parse_interval_minutes(i)[0] for i in hours.weekly.get(WEEKDAYS[day.weekday()], []))
        for start in starts:
            candidate = datetime.combine(day, time(start // 60, start % 60), tzinfo=zone)
            if candidate > local:
                return candidate.astimezone(UTC)
    return None
