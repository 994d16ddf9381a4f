"""Reading a report: the range and grouping asked for, the rows from storage, the measures from
``core.reports``, the answer as ``centralita.schemas.reports`` — what ``GET /api/reports/…`` and
``centralita report …`` both call (and the report benchmark times).

Reports (docs/reports.md):

- ``summary``: the conversation measures, grouped by ``group_by`` (one row without);
- ``queues``, ``agents``, ``channels``: the same grouped by queue, agent or channel first (agents:
  answered conversations only; channels: with the volume of messages in and out);
- ``dispositions``: the disposition mix and the promises (amounts and dates);
- ``surveys``: CSAT and NPS with response rate (by campaign unless grouped otherwise);
- ``topics``: per queue (unless grouped otherwise), triage-menu choices, dispositions and the
  commonest words of first messages.

``from`` / ``to``: ISO dates (local days in the campaign's zone, ``to`` included) or datetimes
(``to`` excluded; without an offset, local).  Several campaigns in different zones: dates are
read in UTC, and each conversation is still bucketed in its own campaign's zone.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from centralita.schemas.reports import (
    AnyReport,
    DispositionRow,
    DispositionsReport,
    MeasuresReport,
    MeasuresRow,
    SurveyRow,
    SurveysReport,
    TopicRow,
    TopicsReport,
)
from core import reports as core
from core.errors import InvalidInput
from core.reports import Dimension, ReportInput
from storage.database import Database
from storage.reports import COLUMNS, CampaignInfo, ReportStore
from storage.reports_pg import PostgresReports

__all__ = ["ReportKind", "ReportQuery", "parse_when", "read_report"]

REPEAT_LOOKBACK_S: Final = core.REPEAT_WINDOWS_S[-1]


class ReportKind(StrEnum):
    SUMMARY = "summary"
    QUEUES = "queues"
    AGENTS = "agents"
    CHANNELS = "channels"
    DISPOSITIONS = "dispositions"
    SURVEYS = "surveys"
    TOPICS = "topics"


_LEADING: Final = {
    ReportKind.QUEUES: Dimension.QUEUE,
    ReportKind.AGENTS: Dimension.AGENT,
    ReportKind.CHANNELS: Dimension.CHANNEL,
}
_DEFAULT: Final = {ReportKind.SURVEYS: (Dimension.CAMPAIGN,), ReportKind.TOPICS: (Dimension.QUEUE,)}


@dataclass(frozen=True, slots=True)
class ReportQuery:
    report: ReportKind
    start: date | datetime
    end: date | datetime
    campaigns: tuple[str, ...] = ()  # names; none: every campaign of the workspace
    group_by: tuple[Dimension, ...] = ()

    def dimensions(self) -> tuple[Dimension, ...]:
        leading = _LEADING.get(self.report)
        if leading is not None:
            return (leading, *(d for d in self.group_by if d != leading))
        return self.group_by or _DEFAULT.get(self.report, ())


def parse_when(raw: str | None, field: str) -> date | datetime:
    """An ISO date (``2026-03-01``) or datetime (``2026-03-01T08:00``, offset optional)."""
    if raw is None or not raw.strip():
        raise InvalidInput(f"{field} is required (an ISO date or datetime)", field=field)
    text = raw.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field} must be an ISO date or datetime, not {text!r}", field=field) from None


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _chosen(known: Sequence[CampaignInfo], names: Sequence[str]) -> list[CampaignInfo]:
    if not names:
        return list(known)
    by_name = {c.name: c for c in known}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise InvalidInput(f"campaign: no campaign named {missing[0]!r} in this workspace", field="campaign")
    return [by_name[n] for n in names]


async def read_report(
    database: Database, workspace_id: uuid.UUID, query: ReportQuery, *, in_sql: bool | None = None
) -> AnyReport:
    """The report ``query`` asks for.  ``in_sql``: add the rows up in the database (PostgreSQL
    only; the default there) rather than in ``core.reports`` — the same figures
    (``tests/integration/test_reports_pg.py``)."""
    dims = query.dimensions()
    async with database.session() as session:
        store = ReportStore(session)
        sql = PostgresReports(session) if (store.postgres if in_sql is None else in_sql) else None
        context = await store.context(workspace_id)
        chosen = _chosen(context.campaigns, query.campaigns)
        zones = {c.id: _zone(c.timezone) for c in chosen}
        distinct = {z.key for z in zones.values()}
        zone = next(iter(zones.values())) if len(distinct) == 1 else ZoneInfo("UTC")
        window = core.range_of(query.start, query.end, zone)
        ids = [c.id for c in chosen] if query.campaigns else None
        spec = ReportInput(
            range=window, zones=zones, default_zone=zone, slas=context.slas, names=context.names
        )
        header: dict[str, Any] = {
            "report": query.report.value,
            "start": datetime.fromtimestamp(window.start, UTC),
            "end": datetime.fromtimestamp(window.end, UTC),
            "timezone": zone.key,
            "campaigns": [c.name for c in chosen],
            "group_by": [d.value for d in dims],
        }
        labels: dict[str, str] = {}
        for c in chosen:  # a code two campaigns label differently shows the first's label
            labels = {**c.dispositions, **labels}
        if sql is not None and query.report == ReportKind.DISPOSITIONS:
            found = await sql.dispositions(workspace_id, ids, spec, dims)
            return DispositionsReport(**header, rows=[DispositionRow.of(d, labels) for d in found])
        if sql is not None and query.report == ReportKind.SURVEYS:
            surveyed = await sql.surveys(workspace_id, ids, spec, dims)
            return SurveysReport(**header, rows=[SurveyRow.of(s) for s in surveyed])
        if sql is not None and query.report == ReportKind.TOPICS:
            topics = await sql.topics(workspace_id, ids, spec, dims)
            return TopicsReport(**header, rows=[TopicRow.of(t) for t in topics])
        if query.report in (ReportKind.DISPOSITIONS, ReportKind.SURVEYS, ReportKind.TOPICS):
            rows = await store.conversations(workspace_id, ids, window, COLUMNS[query.report.value])
            if query.report == ReportKind.DISPOSITIONS:
                return DispositionsReport(
                    **header, rows=[DispositionRow.of(d, labels) for d in core.dispositions(rows, spec, dims)]
                )
            if query.report == ReportKind.SURVEYS:
                return SurveysReport(**header, rows=[SurveyRow.of(s) for s in core.surveys(rows, spec, dims)])
            return TopicsReport(**header, rows=[TopicRow.of(t) for t in core.topics(rows, spec, dims)])
        answered_only = query.report == ReportKind.AGENTS
        if sql is not None:
            measures = await sql.summary(workspace_id, ids, spec, dims, answered_only=answered_only)
        else:
            rows = await store.conversations(workspace_id, ids, window, COLUMNS["measures"])
            history = await store.history(workspace_id, ids, window, REPEAT_LOOKBACK_S)
            if answered_only:
                rows = [r for r in rows if r.agent_id is not None]
            measures = core.summary(rows, spec, dims, history=history)
        volumes: dict[core.Group, core.Volume] = {}
        if query.report in (ReportKind.SUMMARY, ReportKind.CHANNELS) and all(
            d in core.VOLUME_DIMENSIONS for d in dims
        ):
            traffic = await store.traffic(workspace_id, ids, window)
            volumes = {v.group: v for v in core.volume(traffic, spec, dims)}
            measures = _with_volume_groups(measures, volumes, spec)
            return MeasuresReport(
                **header,
                rows=[
                    MeasuresRow.of(m, volumes.get(m.group) or core.Volume(m.group, 0, 0)) for m in measures
                ],
            )
        return MeasuresReport(**header, rows=[MeasuresRow.of(m) for m in measures])


def _with_volume_groups(
    measures: list[core.Measures], volumes: dict[core.Group, core.Volume], spec: ReportInput
) -> list[core.Measures]:
    """The measures' groups and those with messages only (every conversation measure zero)."""
    seen = {m.group for m in measures}
    extra = [g for g in volumes if g not in seen]
    if not extra:
        return measures
    empty = core.summary([], spec, ())[0]
    out = measures + [dataclasses.replace(empty, group=g) for g in extra]
    return sorted(out, key=lambda m: m.group)
