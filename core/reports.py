"""The reports' measures: what each one is, computed from plain records (docs/reports.md).

The input is what the database's rollups hold — one ``ReportConversation`` per conversation
(a ``conversation_report`` row), ``TrafficCount`` per campaign, channel, direction and UTC hour
(``traffic_hour``), each queue's SLA, each campaign's time zone — and the output is typed rows.
Times are epoch seconds (UTC).  Pure: no clock, no I/O; the storage layer reads the records
(``storage.reports``) and the API and CLI render the rows.

Grouping (``Dimension``): by campaign, queue, agent, channel, hour of day (0–23) and day (local
date) in the conversation's campaign's time zone; a conversation is bucketed by its
``opened_at``, a traffic counter by its UTC hour converted to local time.  The queue of a
conversation is the one it was first answered in, else the one it was last in; its agent is the
first agent who had it.
"""

from __future__ import annotations

import bisect
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from itertools import chain
from typing import Any, Final
from zoneinfo import ZoneInfo

from core.errors import InvalidInput
from core.stopwords import SPANISH_STOP_WORDS

__all__ = [
    "FRT_BUCKETS",
    "TOP_WORDS",
    "Dimension",
    "DispositionReport",
    "DispositionShare",
    "Group",
    "LocalTime",
    "Measures",
    "PromiseDay",
    "QueueSla",
    "ReportConversation",
    "ReportInput",
    "ReportRange",
    "ResponseBucket",
    "SurveyMeasures",
    "TopicReport",
    "Totals",
    "TrafficCount",
    "Volume",
    "WordCounter",
    "dispositions",
    "finish",
    "frt_histogram",
    "group_of",
    "parse_dimensions",
    "percentile",
    "range_of",
    "summary",
    "surveys",
    "topics",
    "totals",
    "volume",
    "words",
]

TOP_WORDS: Final = 10
REPEAT_WINDOWS_S: Final = (24 * 3600.0, 7 * 24 * 3600.0)


class Dimension(StrEnum):
    CAMPAIGN = "campaign"
    QUEUE = "queue"
    AGENT = "agent"
    CHANNEL = "channel"
    HOUR = "hour"  # hour of day, "00"–"23", local
    DAY = "day"  # local date, ISO


def parse_dimensions(raw: str | Sequence[str] | None, field: str = "group_by") -> tuple[Dimension, ...]:
    """``"queue,day"`` → (queue, day); an unknown name is bad input naming ``field``."""
    if raw is None:
        return ()
    parts = [p.strip() for p in (raw.split(",") if isinstance(raw, str) else raw)]
    found: list[Dimension] = []
    for part in parts:
        if not part:
            continue
        try:
            dimension = Dimension(part)
        except ValueError:
            allowed = ", ".join(d.value for d in Dimension)
            raise InvalidInput(
                f"{field}: unknown dimension {part!r} (one of {allowed})", field=field
            ) from None
        if dimension not in found:
            found.append(dimension)
    return tuple(found)


@dataclass(frozen=True, slots=True)
class QueueSla:
    """A queue's service level: ``target_pct`` % answered within ``answer_within_s``."""

    answer_within_s: float | None = None
    target_pct: float | None = None


@dataclass(frozen=True, slots=True)
class ReportConversation:
    """One conversation's report row, as the measures read it (times: epoch seconds, UTC).
    Fields a report does not read may be left at their defaults."""

    opened_at: float
    campaign_id: Hashable | None = None
    customer_id: Hashable | None = None
    channel: str | None = None
    triage_option: str | None = None
    queue_id: Hashable | None = None
    answered_queue_id: Hashable | None = None
    enqueued_at: float | None = None
    assigned_at: float | None = None
    waited_s: float | None = None
    agent_id: Hashable | None = None
    first_response_at: float | None = None
    closed_at: float | None = None
    close_reason: str | None = None
    disposition_code: str | None = None
    disposition_amount: str | None = None
    disposition_date: str | None = None
    promise_outcome: str | None = None  # kept | broken: marked by a CRM (core.crm)
    paid_amount: str | None = None
    reopened_at: float | None = None
    first_text: str | None = None
    transfers: int = 0
    requeues: int = 0
    active_s: float = 0.0
    survey_kind: str | None = None
    survey_sent_at: float | None = None
    survey_score: int | None = None

    @property
    def queue(self) -> Hashable | None:
        """The queue it is reported under: first answered in, else last in."""
        return self.answered_queue_id if self.answered_queue_id is not None else self.queue_id


@dataclass(frozen=True, slots=True)
class TrafficCount:
    """Messages of one campaign, channel and direction (``in`` / ``out``) in one UTC hour."""

    campaign_id: Hashable | None
    channel: str
    direction: str
    hour: float  # the UTC hour's start, epoch seconds
    messages: int


@dataclass(frozen=True, slots=True)
class ReportRange:
    """``[start, end)`` in epoch seconds."""

    start: float
    end: float

    def __contains__(self, t: float) -> bool:
        return self.start <= t < self.end


def _as_datetime(value: date | datetime, zone: ZoneInfo, *, end: bool) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(0, 0), tzinfo=zone)


def range_of(start: date | datetime, end: date | datetime, zone: ZoneInfo) -> ReportRange:
    """The range ``from``–``to`` names: dates are local days in ``zone``, ``to`` included (to the
    next day's midnight); datetimes without an offset are local, ``to`` excluded."""
    a = _as_datetime(start, zone, end=False).astimezone(UTC)
    b = _as_datetime(end, zone, end=True).astimezone(UTC)
    if b <= a:
        raise InvalidInput("to must be after from", field="to")
    return ReportRange(a.timestamp(), b.timestamp())


class LocalTime:
    """Local hour and date of epoch seconds in one zone, the offset cached per UTC hour (zones
    change offset at whole UTC hours, so this is exact)."""

    __slots__ = ("_offsets", "zone")

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._offsets: dict[int, float] = {}

    def local(self, t: float) -> float:
        """``t`` shifted by the zone's offset at that moment."""
        key = int(t // 3600)
        offset = self._offsets.get(key)
        if offset is None:
            when = datetime.fromtimestamp(key * 3600, UTC).astimezone(self.zone)
            delta = when.utcoffset()
            offset = self._offsets[key] = delta.total_seconds() if delta is not None else 0.0
        return t + offset

    def hour(self, t: float) -> int:
        return int(self.local(t) % 86400 // 3600)

    def day(self, t: float) -> date:
        return date(1970, 1, 1) + timedelta(days=int(self.local(t) // 86400))


@dataclass(frozen=True, slots=True)
class ReportInput:
    """What every report reads besides its records."""

    range: ReportRange
    zones: Mapping[Any, ZoneInfo] = field(default_factory=dict)  # campaign → zone
    default_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    slas: Mapping[Any, QueueSla] = field(default_factory=dict)  # queue → SLA
    names: Mapping[Any, str] = field(default_factory=dict)  # campaign / queue / agent → name


Group = tuple[tuple[Dimension, str], ...]


def group_of(spec: ReportInput, dimensions: Sequence[Dimension], raw: Sequence[object]) -> Group:
    """The group of values a database grouped by (one per dimension, in order)."""
    keyer = _Keyer(spec, dimensions)
    return tuple((d, keyer.label(d, v)) for d, v in zip(dimensions, raw, strict=True))


class _Keyer:
    """The group key of a conversation or a traffic counter."""

    def __init__(self, spec: ReportInput, dimensions: Sequence[Dimension]) -> None:
        self.dimensions = tuple(dimensions)
        self.spec = spec
        self._clocks: dict[Hashable | None, LocalTime] = {}

    def clock(self, campaign: Hashable | None) -> LocalTime:
        found = self._clocks.get(campaign)
        if found is None:
            found = self._clocks[campaign] = LocalTime(self.spec.zones.get(campaign, self.spec.default_zone))
        return found

    def _name(self, value: Hashable | None) -> str:
        if value is None:
            return ""
        return self.spec.names.get(value) or str(value)

    def value(
        self,
        d: Dimension,
        *,
        at: float,
        campaign: Hashable | None,
        channel: str | None,
        queue: Hashable | None = None,
        agent: Hashable | None = None,
    ) -> str:
        if d == Dimension.CAMPAIGN:
            return self._name(campaign)
        if d == Dimension.QUEUE:
            return self._name(queue)
        if d == Dimension.AGENT:
            return self._name(agent)
        if d == Dimension.CHANNEL:
            return channel or ""
        if d == Dimension.HOUR:
            return f"{self.clock(campaign).hour(at):02d}"
        return self.clock(campaign).day(at).isoformat()

    def label(self, d: Dimension, raw: object) -> str:
        """A dimension's value as a group shows it, from what a database grouped by: ids,
        channel, local hour (an int) or local date."""
        if d in (Dimension.CAMPAIGN, Dimension.QUEUE, Dimension.AGENT):
            return self._name(raw)
        if d == Dimension.CHANNEL:
            return str(raw) if raw else ""
        if d == Dimension.HOUR:
            return f"{int(raw):02d}"  # type: ignore[call-overload]
        return raw.isoformat() if isinstance(raw, date) else str(raw)

    def of(self, c: ReportConversation) -> Group:
        return tuple(
            (
                d,
                self.value(
                    d,
                    at=c.opened_at,
                    campaign=c.campaign_id,
                    channel=c.channel,
                    queue=c.queue,
                    agent=c.agent_id,
                ),
            )
            for d in self.dimensions
        )


def _in_range(rows: Iterable[ReportConversation], spec: ReportInput) -> list[ReportConversation]:
    r = spec.range
    return [c for c in rows if r.start <= c.opened_at < r.end]


def _grouped(
    rows: Iterable[ReportConversation], spec: ReportInput, dimensions: Sequence[Dimension]
) -> dict[Group, list[ReportConversation]]:
    keyer = _Keyer(spec, dimensions)
    groups: dict[Group, list[ReportConversation]] = defaultdict(list)
    for c in _in_range(rows, spec):
        groups[keyer.of(c)].append(c)
    return dict(sorted(groups.items()))


# -- small statistics --------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0–1) by linear interpolation between the closest ranks — PostgreSQL's
    ``percentile_cont``: for sorted x₀…xₙ₋₁, position h = (n − 1)·q, x⌊h⌋ + (h − ⌊h⌋)(x⌊h⌋₊₁ − x⌊h⌋)."""
    if not values:
        return None
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


@dataclass(frozen=True, slots=True)
class ResponseBucket:
    """One bar of the first-response-time distribution: ``from_s`` ≤ FRT < ``to_s``."""

    name: str
    from_s: float
    to_s: float | None  # None: no upper bound


FRT_BUCKETS: Final = (
    ResponseBucket("lt_1m", 0.0, 60.0),
    ResponseBucket("1_5m", 60.0, 300.0),
    ResponseBucket("5_15m", 300.0, 900.0),
    ResponseBucket("15_60m", 900.0, 3600.0),
    ResponseBucket("1_4h", 3600.0, 14400.0),
    ResponseBucket("ge_4h", 14400.0, None),
)
_FRT_BOUNDS: Final = [b.to_s for b in FRT_BUCKETS if b.to_s is not None]


def frt_histogram(values: Iterable[float]) -> tuple[int, ...]:
    """How many first response times fall in each of ``FRT_BUCKETS`` (a bucket includes its
    lower bound: 60 s is "1–5 min"; a negative time, a clock skew, counts as under a minute)."""
    counts = [0] * len(FRT_BUCKETS)
    for v in values:
        counts[bisect.bisect_right(_FRT_BOUNDS, v)] += 1
    return tuple(counts)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _pct(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# -- the conversation measures -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measures:
    """The measures of one group of conversations (docs/reports.md defines each)."""

    group: Group
    conversations: int
    offered: int
    answered: int
    abandoned: int
    answer_rate: float | None
    frt_p50_s: float | None
    frt_p90_s: float | None
    frt_mean_s: float | None
    frt_histogram: tuple[int, ...]  # counts per FRT_BUCKETS
    asa_s: float | None
    asa_open_s: float | None
    aht_s: float | None
    active_mean_s: float | None
    sla_answered: int  # answered conversations of queues with an SLA
    sla_offered: int  # offered conversations of queues with an SLA
    sla_met: int
    sla_pct_of_answered: float | None
    sla_pct_of_offered: float | None
    sla_target_pct: float | None  # when the group's conversations share one queue's target
    transfers: int
    requeues: int
    transfers_per_conversation: float | None
    requeues_per_conversation: float | None
    closed: int
    reopened: int
    reopen_rate: float | None
    repeat_24h: int
    repeat_7d: int
    repeat_24h_rate: float | None
    repeat_7d_rate: float | None


def is_abandoned(c: ReportConversation) -> bool:
    """Closed with no agent reply: the customer left, it timed out, or an agent closed it
    without answering."""
    return c.closed_at is not None and c.first_response_at is None


def _sla_wait(c: ReportConversation) -> float | None:
    if c.waited_s is not None:
        return c.waited_s
    if c.assigned_at is not None and c.enqueued_at is not None:
        return c.assigned_at - c.enqueued_at
    return None


def _previous_opens(history: Iterable[tuple[Hashable, float]]) -> dict[Hashable, list[float]]:
    by_customer: dict[Hashable, list[float]] = defaultdict(list)
    for customer, opened in history:
        by_customer[customer].append(opened)
    for times in by_customer.values():
        times.sort()
    return by_customer


def _gap_to_previous(c: ReportConversation, opens: Mapping[Hashable, list[float]]) -> float | None:
    """Seconds since the same customer's latest earlier conversation (``None``: none)."""
    times = opens.get(c.customer_id) if c.customer_id is not None else None
    if not times:
        return None
    i = bisect.bisect_left(times, c.opened_at)
    return c.opened_at - times[i - 1] if i > 0 else None


@dataclass(frozen=True, slots=True)
class Totals:
    """What a group's measures are finished from (``finish``): counts, sums and the statistics
    of durations.  The pure path adds them up from records (``totals``); on PostgreSQL one
    aggregate query computes the same (``storage.reports``)."""

    conversations: int = 0
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    frt_p50_s: float | None = None
    frt_p90_s: float | None = None
    frt_mean_s: float | None = None
    frt_histogram: tuple[int, ...] = ()  # counts per FRT_BUCKETS; empty: none
    asa_s: float | None = None
    asa_open_s: float | None = None
    aht_s: float | None = None
    active_mean_s: float | None = None
    sla_answered: int = 0
    sla_offered: int = 0
    sla_met: int = 0
    sla_queues: frozenset[Hashable] = frozenset()  # the queues of the offered ones with an SLA
    transfers: int = 0
    requeues: int = 0
    closed: int = 0
    reopened: int = 0
    repeat_24h: int = 0
    repeat_7d: int = 0


def totals(
    rows: Sequence[ReportConversation], spec: ReportInput, opens: Mapping[Hashable, list[float]]
) -> Totals:
    offered = [c for c in rows if c.enqueued_at is not None]
    answered = [c for c in rows if c.assigned_at is not None]
    frt = [c.first_response_at - c.opened_at for c in rows if c.first_response_at is not None]
    asa = [c.assigned_at - c.enqueued_at for c in answered if c.enqueued_at is not None]  # type: ignore[operator]
    asa_open = [w for c in answered if (w := _sla_wait(c)) is not None and c.enqueued_at is not None]
    aht = [c.closed_at - c.assigned_at for c in answered if c.closed_at is not None]  # type: ignore[operator]
    sla_offered = sla_answered = met = 0
    queues: set[Hashable] = set()
    for c in offered:
        sla = spec.slas.get(c.queue) if c.queue is not None else None
        if sla is None or sla.answer_within_s is None:
            continue
        queues.add(c.queue)
        sla_offered += 1
        if c.assigned_at is None:
            continue
        sla_answered += 1
        wait = _sla_wait(c)
        if wait is not None and wait <= sla.answer_within_s:
            met += 1
    gaps = [_gap_to_previous(c, opens) for c in rows]
    return Totals(
        conversations=len(rows),
        offered=len(offered),
        answered=len(answered),
        abandoned=sum(1 for c in rows if is_abandoned(c)),
        frt_p50_s=percentile(frt, 0.5),
        frt_p90_s=percentile(frt, 0.9),
        frt_mean_s=_mean(frt),
        frt_histogram=frt_histogram(frt),
        asa_s=_mean(asa),
        asa_open_s=_mean(asa_open),
        aht_s=_mean(aht),
        active_mean_s=_mean([c.active_s for c in answered]),
        sla_answered=sla_answered,
        sla_offered=sla_offered,
        sla_met=met,
        sla_queues=frozenset(queues),
        transfers=sum(c.transfers for c in rows),
        requeues=sum(c.requeues for c in rows),
        closed=sum(1 for c in rows if c.closed_at is not None),
        reopened=sum(1 for c in rows if c.reopened_at is not None),
        repeat_24h=sum(1 for g in gaps if g is not None and g <= REPEAT_WINDOWS_S[0]),
        repeat_7d=sum(1 for g in gaps if g is not None and g <= REPEAT_WINDOWS_S[1]),
    )


def finish(group: Group, t: Totals, spec: ReportInput) -> Measures:
    """A group's measures from its totals: the rates and percentages."""
    targets = {spec.slas[q].target_pct for q in t.sla_queues if q in spec.slas}
    n = t.conversations
    return Measures(
        group=group,
        conversations=n,
        offered=t.offered,
        answered=t.answered,
        abandoned=t.abandoned,
        answer_rate=_ratio(t.answered, t.offered),
        frt_p50_s=t.frt_p50_s,
        frt_p90_s=t.frt_p90_s,
        frt_mean_s=t.frt_mean_s,
        frt_histogram=t.frt_histogram or (0,) * len(FRT_BUCKETS),
        asa_s=t.asa_s,
        asa_open_s=t.asa_open_s,
        aht_s=t.aht_s,
        active_mean_s=t.active_mean_s,
        sla_answered=t.sla_answered,
        sla_offered=t.sla_offered,
        sla_met=t.sla_met,
        sla_pct_of_answered=_pct(t.sla_met, t.sla_answered),
        sla_pct_of_offered=_pct(t.sla_met, t.sla_offered),
        sla_target_pct=next(iter(targets)) if len(targets) == 1 else None,
        transfers=t.transfers,
        requeues=t.requeues,
        transfers_per_conversation=t.transfers / n if n else None,
        requeues_per_conversation=t.requeues / n if n else None,
        closed=t.closed,
        reopened=t.reopened,
        reopen_rate=_ratio(t.reopened, t.closed),
        repeat_24h=t.repeat_24h,
        repeat_7d=t.repeat_7d,
        repeat_24h_rate=_ratio(t.repeat_24h, n),
        repeat_7d_rate=_ratio(t.repeat_7d, n),
    )


def summary(
    rows: Iterable[ReportConversation],
    spec: ReportInput,
    dimensions: Sequence[Dimension] = (),
    *,
    history: Iterable[tuple[Hashable, float]] = (),
) -> list[Measures]:
    """The conversation measures per group (one row with no dimensions).  ``history``: (customer,
    opened_at) of the workspace's conversations from 7 days before the range to its end, on any
    campaign and channel — what repeat contacts are counted from."""
    opens = _previous_opens(history)
    groups = _grouped(rows, spec, dimensions)
    if not groups and not dimensions:
        groups = {(): []}
    return [finish(g, totals(members, spec, opens), spec) for g, members in groups.items()]


# -- volume ------------------------------------------------------------------------------------

VOLUME_DIMENSIONS: Final = frozenset({Dimension.CAMPAIGN, Dimension.CHANNEL, Dimension.HOUR, Dimension.DAY})


@dataclass(frozen=True, slots=True)
class Volume:
    group: Group
    messages_in: int
    messages_out: int


def volume(
    traffic: Iterable[TrafficCount], spec: ReportInput, dimensions: Sequence[Dimension] = ()
) -> list[Volume]:
    """Messages in and out per group, from the hourly counters whose UTC hour starts inside the
    range.  Counters have no queue or agent: those dimensions are refused."""
    wrong = [d for d in dimensions if d not in VOLUME_DIMENSIONS]
    if wrong:
        raise InvalidInput(f"group_by: volume cannot be grouped by {wrong[0].value}", field="group_by")
    keyer = _Keyer(spec, dimensions)
    sums: dict[Group, list[int]] = defaultdict(lambda: [0, 0])
    for t in traffic:
        if t.hour not in spec.range:
            continue
        key = tuple(
            (d, keyer.value(d, at=t.hour, campaign=t.campaign_id, channel=t.channel)) for d in dimensions
        )
        sums[key][0 if t.direction == "in" else 1] += t.messages
    if not sums and not dimensions:
        sums[()] = [0, 0]
    return [Volume(g, i, o) for g, (i, o) in sorted(sums.items())]


# -- dispositions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DispositionShare:
    code: str
    count: int
    share: float  # of the group's closed conversations with a disposition


@dataclass(frozen=True, slots=True)
class PromiseDay:
    date: str  # the promised date (ISO)
    count: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class DispositionReport:
    group: Group
    with_disposition: int
    mix: tuple[DispositionShare, ...]
    promises: int  # dispositions with a promised date
    promised_amount: Decimal
    by_date: tuple[PromiseDay, ...]
    kept: int = 0  # promises a CRM marked kept
    broken: int = 0  # … marked broken
    paid_amount: Decimal = Decimal(0)  # what the marks say was paid (kept or broken)

    @property
    def pending(self) -> int:
        """Promises no CRM has marked yet."""
        return self.promises - self.kept - self.broken


def _amount(raw: str | None) -> Decimal | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def dispositions(
    rows: Iterable[ReportConversation], spec: ReportInput, dimensions: Sequence[Dimension] = ()
) -> list[DispositionReport]:
    out = []
    for group, members in _grouped(rows, spec, dimensions).items():
        coded = [c for c in members if c.disposition_code]
        counts = Counter(c.disposition_code for c in coded)
        promised = [c for c in coded if c.disposition_date]  # a promise is to pay on a date
        days: dict[str, list[Decimal]] = defaultdict(list)
        for c in promised:
            days[str(c.disposition_date)].append(_amount(c.disposition_amount) or Decimal(0))
        out.append(
            DispositionReport(
                group=group,
                with_disposition=len(coded),
                mix=tuple(
                    DispositionShare(str(code), n, n / len(coded))
                    for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
                ),
                promises=len(promised),
                promised_amount=sum(
                    (_amount(c.disposition_amount) or Decimal(0) for c in promised), Decimal(0)
                ),
                by_date=tuple(PromiseDay(d, len(v), sum(v, Decimal(0))) for d, v in sorted(days.items())),
                kept=sum(1 for c in promised if c.promise_outcome == "kept"),
                broken=sum(1 for c in promised if c.promise_outcome == "broken"),
                paid_amount=sum(
                    (_amount(c.paid_amount) or Decimal(0) for c in promised if c.promise_outcome),
                    Decimal(0),
                ),
            )
        )
    return out


# -- surveys -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SurveyMeasures:
    group: Group
    kind: str  # csat | nps
    sent: int
    answered: int
    response_rate: float | None
    mean_score: float | None
    csat_pct: float | None  # csat: % of answers 4–5
    nps: float | None  # nps: % promoters (9–10) − % detractors (0–6)
    promoters: int
    passives: int
    detractors: int


def surveys(
    rows: Iterable[ReportConversation], spec: ReportInput, dimensions: Sequence[Dimension] = ()
) -> list[SurveyMeasures]:
    out = []
    for group, members in _grouped(rows, spec, dimensions).items():
        kinds = sorted({c.survey_kind for c in members if c.survey_kind})
        for kind in kinds:
            of_kind = [c for c in members if c.survey_kind == kind]
            sent = sum(1 for c in of_kind if c.survey_sent_at is not None)
            scores = [c.survey_score for c in of_kind if c.survey_score is not None]
            n = len(scores)
            promoters = sum(1 for s in scores if s >= 9) if kind == "nps" else 0
            detractors = sum(1 for s in scores if s <= 6) if kind == "nps" else 0
            out.append(
                SurveyMeasures(
                    group=group,
                    kind=kind,
                    sent=sent,
                    answered=n,
                    response_rate=_ratio(n, sent),
                    mean_score=_mean([float(s) for s in scores]),
                    csat_pct=_pct(sum(1 for s in scores if s >= 4), n) if kind == "csat" else None,
                    nps=(100.0 * (promoters - detractors) / n if n else None) if kind == "nps" else None,
                    promoters=promoters,
                    passives=n - promoters - detractors if kind == "nps" else 0,
                    detractors=detractors,
                )
            )
    return out


# -- topics ------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)  # runs of letters: digits and punctuation split words


def _plain(word: str) -> str:
    """Lowercase without accents (ñ kept): how words are matched and counted."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    out = []
    for i, ch in enumerate(decomposed):
        if unicodedata.combining(ch):
            if ch == "\u0303" and i and decomposed[i - 1] == "n":  # ñ
                out.append(ch)
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


class _Tokens(dict[str, tuple[tuple[str, str], ...]]):
    """The counted words of each token (split at white space, lowercase), worked out once."""

    def __missing__(self, token: str) -> tuple[tuple[str, str], ...]:
        if any(ch.isdigit() for ch in token):
            found: tuple[tuple[str, str], ...] = ()
        else:
            found = tuple(
                (key, w)
                for w in _WORD.findall(token)
                if len(w) >= 3 and (key := _plain(w)) not in SPANISH_STOP_WORDS
            )
        self[token] = found
        return found


def words(text: str) -> list[tuple[str, str]]:
    """The counted words of a text as (match key, spelling): the text lowercased and split at
    white space; a token with a digit in it ("2x1", "123") is no word; of the others, each run
    of 3 or more letters that is not a Spanish stop word."""
    tokens = _Tokens()
    return [pair for token in text.lower().split() for pair in tokens[token]]


class WordCounter:
    """Messages per word (accent-free key) and per (key, spelling): each message counts once for
    each word it has, and once for each spelling of it."""

    __slots__ = ("_get", "keys", "pairs", "tokens")

    def __init__(self, tokens: _Tokens | None = None) -> None:
        self.tokens = tokens if tokens is not None else _Tokens()  # share it between counters
        self._get = self.tokens.__getitem__
        self.keys: Counter[str] = Counter()
        self.pairs: Counter[tuple[str, str]] = Counter()

    def add(self, text: str | None) -> None:
        if not text:
            return
        found = set(chain.from_iterable(map(self._get, text.lower().split())))
        if found:
            self.pairs.update(found)
            self.keys.update(dict(found).keys())  # each key once

    def top(self, top: int = TOP_WORDS) -> tuple[tuple[str, int], ...]:
        """The ``top`` commonest words, each shown in the spelling the most messages have (then
        the alphabetically first)."""
        best: dict[str, tuple[int, str]] = {}
        for (key, spelling), n in self.pairs.items():
            seen = best.get(key)
            if seen is None or (-n, spelling) < (-seen[0], seen[1]):
                best[key] = (n, spelling)
        shown: Counter[str] = Counter()
        for key, n in self.keys.items():
            shown[best[key][1]] += n
        return _commonest(shown, top)


@dataclass(frozen=True, slots=True)
class TopicReport:
    group: Group
    conversations: int
    triage_options: tuple[tuple[str, int], ...]
    dispositions: tuple[tuple[str, int], ...]
    top_words: tuple[tuple[str, int], ...]


def _commonest(counter: Counter[str], limit: int | None = None) -> tuple[tuple[str, int], ...]:
    ordered = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(ordered[:limit] if limit is not None else ordered)


def topics(
    rows: Iterable[ReportConversation],
    spec: ReportInput,
    dimensions: Sequence[Dimension] = (Dimension.QUEUE,),
    *,
    top: int = TOP_WORDS,
) -> list[TopicReport]:
    """Per group (by queue unless told): triage-menu choices, dispositions, and the ``top``
    commonest words of first messages — counted by their accent-free form, once per message,
    shown in the spelling the most messages have (then alphabetically first)."""
    out = []
    tokens = _Tokens()
    for group, members in _grouped(rows, spec, dimensions).items():
        counter = WordCounter(tokens)
        for c in members:
            counter.add(c.first_text)
        out.append(
            TopicReport(
                group=group,
                conversations=len(members),
                triage_options=_commonest(Counter(c.triage_option for c in members if c.triage_option)),
                dispositions=_commonest(Counter(c.disposition_code for c in members if c.disposition_code)),
                top_words=counter.top(top),
            )
        )
    return out
