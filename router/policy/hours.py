"""Business hours: weekly intervals in an IANA time zone, with holidays.

An interval belongs to the local day it starts on; one whose ``end`` is not after its ``start``
crosses midnight into the next day (``22:00``–``06:00``), and ``start == end`` means the whole
24 hours from ``start``.  A holiday suppresses the intervals that *start* on that date (the tail
of an overnight shift that began the evening before still counts).  Daylight-saving changes are
handled by ``zoneinfo``: intervals are local wall-clock times.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import InvalidInput

__all__ = ["BusinessHours", "WeeklyInterval"]

_WINDOW_DAYS = 8  # days of spans computed at once around ``now``
_HORIZON_DAYS = 400  # how far ahead to look for an opening before answering "never"


@dataclass(frozen=True, slots=True)
class WeeklyInterval:
    """Open from ``start`` to ``end`` (local time) on ``weekday`` (0 = Monday … 6 = Sunday)."""

    weekday: int
    start: time
    end: time

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise InvalidInput("weekday must be 0 (Monday) to 6 (Sunday)", field="weekday")


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """When a queue offers conversations; outside them conversations wait for the opening."""

    timezone: str
    intervals: tuple[WeeklyInterval, ...]
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidInput(f"unknown time zone {self.timezone!r}", field="timezone") from exc

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # ZoneInfo caches instances by key

    def is_open(self, now: float) -> bool:
        return self.state_at(now)[0]

    def next_change(self, now: float) -> float | None:
        """When the open/closed state next flips after ``now`` (``None``: never)."""
        return self.state_at(now)[1]

    def state_at(self, now: float) -> tuple[bool, float | None]:
        """``(open, next_change)`` at ``now``: the current state and when it next flips."""
        zone = self.zone
        day = datetime.fromtimestamp(now, tz=zone).date() - timedelta(days=1)
        horizon = day + timedelta(days=_HORIZON_DAYS)
        while day < horizon:
            spans = self._spans(day, day + timedelta(days=_WINDOW_DAYS), zone)
            for start, end in spans:
                if start <= now < end:
                    return True, end
                if start > now:
                    return False, start
            day += timedelta(days=_WINDOW_DAYS - 1)
        return False, None

    def open_seconds(self, start: float, end: float) -> float:
        """How long the hours are open between ``start`` and ``end`` (epoch seconds): what a wait
        counts against an SLA, which does not run while the queue is closed."""
        total = 0.0
        for span_start, span_end in self._spans_from(start):
            if span_start >= end:
                break
            total += max(0.0, min(span_end, end) - max(span_start, start))
        return total

    def after_open_seconds(self, start: float, seconds: float) -> float | None:
        """The instant at which the hours have been open ``seconds`` since ``start`` (``None``:
        never, within the horizon): when an SLA started at ``start`` is breached."""
        left = seconds
        for span_start, span_end in self._spans_from(start):
            begin = max(span_start, start)
            if begin + left <= span_end:
                return begin + left
            left -= max(0.0, span_end - begin)
        return None

    def _spans_from(self, start: float) -> Iterator[tuple[float, float]]:
        """The open spans that end after ``start``, in order, up to the horizon."""
        zone = self.zone
        day = datetime.fromtimestamp(start, tz=zone).date() - timedelta(days=1)
        horizon = day + timedelta(days=_HORIZON_DAYS)
        last_end = start
        while day < horizon:
            for span_start, span_end in self._spans(day, day + timedelta(days=_WINDOW_DAYS - 1), zone):
                if span_end <= last_end:
                    continue  # seen in the previous window (or before ``start``)
                yield max(span_start, last_end), span_end
                last_end = span_end
            day += timedelta(days=_WINDOW_DAYS)

    def local_midnight_after(self, now: float) -> float:
        """The start of the next local day after ``now`` (daily counters roll over there)."""
        zone = self.zone
        tomorrow = datetime.fromtimestamp(now, tz=zone).date() + timedelta(days=1)
        return datetime.combine(tomorrow, time(0, 0), tzinfo=zone).timestamp()

    def _spans(self, first: date, last: date, zone: ZoneInfo) -> list[tuple[float, float]]:
        """Merged, sorted ``[start, end)`` epoch spans of intervals starting on days in [first, last]."""
        raw: list[tuple[float, float]] = []
        day = first
        while day <= last:
            if day not in self.holidays:
                weekday = day.weekday()
                for interval in self.intervals:
                    if interval.weekday != weekday:
                        continue
                    end_day = day if interval.end > interval.start else day + timedelta(days=1)
                    start = datetime.combine(day, interval.start, tzinfo=zone).timestamp()
                    end = datetime.combine(end_day, interval.end, tzinfo=zone).timestamp()
                    if end > start:
                        raw.append((start, end))
            day += timedelta(days=1)
        raw.sort()
        merged: list[tuple[float, float]] = []
        for start, end in raw:
            if merged and start <= merged[-1][1]:
                if end > merged[-1][1]:
                    merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        return merged
