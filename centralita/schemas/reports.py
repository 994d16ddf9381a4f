"""The reports (``GET /api/reports/{report}``, ``centralita report …``): docs/reports.md defines
every measure.  Each report's rows are also its CSV: ``csv_table`` flattens them (the group's
dimensions first, one column each)."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from centralita.schemas.common import IsoDateTime, ResponseBody
from core.reports import (
    FRT_BUCKETS,
    DispositionReport,
    Group,
    Measures,
    SurveyMeasures,
    TopicReport,
    Volume,
)

__all__ = [
    "Count",
    "DispositionMix",
    "DispositionRow",
    "DispositionsReport",
    "FrtBucket",
    "MeasuresReport",
    "MeasuresRow",
    "PromiseDate",
    "ReportHeader",
    "SurveyRow",
    "SurveysReport",
    "TopicRow",
    "TopicsReport",
    "csv_table",
    "csv_text",
]

ReportName = Literal["summary", "queues", "agents", "channels", "dispositions", "surveys", "topics"]


def _group(group: Group) -> dict[str, str]:
    return {str(d): v for d, v in group}


class ReportHeader(ResponseBody):
    report: ReportName
    start: IsoDateTime = Field(description="The range's start (included).")
    end: IsoDateTime = Field(description="The range's end (excluded).")
    timezone: str = Field(description="The zone dates of from/to were read in.")
    campaigns: list[str] = Field(description="The campaigns reported (names).")
    group_by: list[str]


class FrtBucket(ResponseBody):
    """One bar of the first-response-time distribution."""

    bucket: str = Field(description="lt_1m, 1_5m, 5_15m, 15_60m, 1_4h or ge_4h; CSV column frt_<bucket>.")
    from_s: float = Field(description="Lower bound (included), seconds.")
    to_s: float | None = Field(description="Upper bound (excluded), seconds; null for the last.")
    count: int = Field(description="Conversations whose first response time falls here.")


class MeasuresRow(ResponseBody):
    """The conversation measures of one group (and its volume, when the grouping allows)."""

    group: dict[str, str] = Field(description="Dimension → value (names for campaign/queue/agent).")
    conversations: int
    offered: int = Field(description="Entered a queue (enqueued_at set).")
    answered: int = Field(description="Assigned to an agent (assigned_at set).")
    abandoned: int = Field(description="Closed without an agent's reply.")
    answer_rate: float | None = Field(description="answered / offered.")
    frt_p50_s: float | None = Field(description="First response time (opened → first agent reply), median.")
    frt_p90_s: float | None
    frt_mean_s: float | None
    frt_histogram: list[FrtBucket] = Field(
        description="Replied conversations per first-response-time bucket (CSV: frt_<bucket> columns)."
    )
    asa_s: float | None = Field(description="Average speed of answer: enqueued → assigned, mean.")
    asa_open_s: float | None = Field(description="The same counting only the queue's open hours (waited_s).")
    aht_s: float | None = Field(description="Average handle time: assigned → closed, mean.")
    active_mean_s: float | None = Field(description="Time assigned to agents (active_s), mean over answered.")
    sla_answered: int
    sla_offered: int
    sla_met: int = Field(description="Answered within the queue's answer_within_s of open time.")
    sla_pct_of_answered: float | None = Field(description="sla_met / sla_answered (the live figure).")
    sla_pct_of_offered: float | None = Field(description="sla_met / sla_offered (unanswered are misses).")
    sla_target_pct: float | None
    transfers: int
    requeues: int
    transfers_per_conversation: float | None
    requeues_per_conversation: float | None
    closed: int
    reopened: int
    reopen_rate: float | None = Field(description="reopened / closed.")
    repeat_24h: int
    repeat_7d: int
    repeat_24h_rate: float | None
    repeat_7d_rate: float | None
    messages_in: int | None = Field(default=None, description="From the hourly counters (no queue/agent).")
    messages_out: int | None = None

    @classmethod
    def of(cls, m: Measures, v: Volume | None = None) -> MeasuresRow:
        skip = ("group", "frt_histogram")
        fields = {f.name: getattr(m, f.name) for f in dataclasses.fields(m) if f.name not in skip}
        return cls(
            group=_group(m.group),
            frt_histogram=[
                FrtBucket(bucket=b.name, from_s=b.from_s, to_s=b.to_s, count=n)
                for b, n in zip(FRT_BUCKETS, m.frt_histogram, strict=True)
            ],
            messages_in=v.messages_in if v is not None else None,
            messages_out=v.messages_out if v is not None else None,
            **fields,
        )


class MeasuresReport(ReportHeader):
    """summary, queues, agents, channels."""

    rows: list[MeasuresRow]


class DispositionMix(ResponseBody):
    code: str
    label: str = Field(description="The code's label in the campaign's manifest (the code if it has none).")
    count: int
    share: float = Field(description="Of the group's conversations with a disposition.")


class PromiseDate(ResponseBody):
    date: str = Field(description="The promised date (ISO).")
    count: int
    amount: str = Field(description="Their amounts' sum, a decimal.")


class DispositionRow(ResponseBody):
    group: dict[str, str]
    with_disposition: int
    mix: list[DispositionMix]
    promises: int = Field(
        description="Dispositions with a promised date (an amount alone is a payment, not a promise)."
    )
    promised_amount: str = Field(description="The sum of their amounts, a decimal.")
    by_date: list[PromiseDate]
    kept: int = Field(description="Promises a CRM marked kept (POST /api/conversations/{id}/promise).")
    broken: int = Field(description="Promises a CRM marked broken.")
    pending: int = Field(description="Promises not marked yet.")
    paid_amount: str = Field(description="What the marks say was paid, a decimal.")

    @classmethod
    def of(cls, d: DispositionReport, labels: Mapping[str, str] | None = None) -> DispositionRow:
        known = labels or {}
        return cls(
            group=_group(d.group),
            with_disposition=d.with_disposition,
            mix=[
                DispositionMix(code=m.code, label=known.get(m.code, m.code), count=m.count, share=m.share)
                for m in d.mix
            ],
            promises=d.promises,
            promised_amount=format(d.promised_amount, "f"),
            by_date=[
                PromiseDate(date=p.date, count=p.count, amount=format(p.amount, "f")) for p in d.by_date
            ],
            kept=d.kept,
            broken=d.broken,
            pending=d.pending,
            paid_amount=format(d.paid_amount, "f"),
        )


class DispositionsReport(ReportHeader):
    rows: list[DispositionRow]


class SurveyRow(ResponseBody):
    group: dict[str, str]
    kind: str = Field(description="csat (1–5) or nps (0–10).")
    sent: int
    answered: int
    response_rate: float | None = Field(description="answered / sent.")
    mean_score: float | None
    csat_pct: float | None = Field(description="csat: % of answers 4 or 5.")
    nps: float | None = Field(description="nps: % promoters (9–10) − % detractors (0–6).")
    promoters: int
    passives: int
    detractors: int

    @classmethod
    def of(cls, s: SurveyMeasures) -> SurveyRow:
        fields = {f.name: getattr(s, f.name) for f in dataclasses.fields(s) if f.name != "group"}
        return cls(group=_group(s.group), **fields)


class SurveysReport(ReportHeader):
    rows: list[SurveyRow]


class Count(ResponseBody):
    key: str
    count: int


class TopicRow(ResponseBody):
    group: dict[str, str]
    conversations: int
    triage_options: list[Count]
    dispositions: list[Count]
    top_words: list[Count] = Field(description="Commonest words of first messages, stop words removed.")

    @classmethod
    def of(cls, t: TopicReport) -> TopicRow:
        def counts(pairs: Iterable[tuple[str, int]]) -> list[Count]:
            return [Count(key=k, count=n) for k, n in pairs]

        return cls(
            group=_group(t.group),
            conversations=t.conversations,
            triage_options=counts(t.triage_options),
            dispositions=counts(t.dispositions),
            top_words=counts(t.top_words),
        )


class TopicsReport(ReportHeader):
    rows: list[TopicRow]


AnyReport = MeasuresReport | DispositionsReport | SurveysReport | TopicsReport


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return str(round(value, 4))
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def csv_table(report: AnyReport) -> tuple[list[str], list[list[str]]]:
    """The report as one table: the group's dimensions, then the row's scalar fields (a
    measures row stays one line: its FRT distribution is a column per bucket, ``frt_lt_1m`` …
    ``frt_ge_4h``); other nested lists become one line each with a ``section`` (dispositions:
    mix / promise_date / promise — kept, broken, pending, paid; topics: triage_option /
    disposition / word) and ``key``, ``count`` (and ``share``, ``amount``)."""
    dims = list(report.group_by)
    lines: list[list[str]] = []
    rows: Sequence[Any] = report.rows
    if isinstance(report, DispositionsReport):
        header = [*dims, "section", "key", "count", "share", "amount"]
        for d in report.rows:
            g = [d.group.get(x, "") for x in dims]
            lines += [[*g, "mix", m.code, str(m.count), _cell(m.share), ""] for m in d.mix]
            lines += [[*g, "promise_date", p.date, str(p.count), "", p.amount] for p in d.by_date]
            lines += [
                [*g, "promise", key, str(n), "", amount]
                for key, n, amount in (
                    ("kept", d.kept, ""),
                    ("broken", d.broken, ""),
                    ("pending", d.pending, ""),
                    ("paid", d.kept + d.broken, d.paid_amount),
                )
            ]
        return header, lines
    if isinstance(report, TopicsReport):
        header = [*dims, "section", "key", "count"]
        for t in report.rows:
            g = [t.group.get(x, "") for x in dims]
            for section, counts in (
                ("triage_option", t.triage_options),
                ("disposition", t.dispositions),
                ("word", t.top_words),
            ):
                lines += [[*g, section, c.key, str(c.count)] for c in counts]
        return header, lines
    model = MeasuresRow if isinstance(report, MeasuresReport) else SurveyRow
    fields = [f for f in model.model_fields if f != "group"]
    header = [*dims]
    for f in fields:
        header += [f"frt_{b.name}" for b in FRT_BUCKETS] if f == "frt_histogram" else [f]
    for row in rows:
        cells = [row.group.get(x, "") for x in dims]
        for f in fields:
            value = getattr(row, f)
            cells += [str(b.count) for b in value] if f == "frt_histogram" else [_cell(value)]
        lines.append(cells)
    return header, lines


def csv_text(report: AnyReport) -> str:
    """``csv_table`` written as CSV (a header line, then the rows)."""
    header, lines = csv_table(report)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(lines)
    return out.getvalue()
