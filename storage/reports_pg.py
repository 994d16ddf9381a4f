"""The reports' heavy parts added up by PostgreSQL: one aggregate query per report (two for
dispositions) instead of every report row to Python.

``core.reports`` stays the definition: these queries compute its ``Totals`` (and the counts the
dispositions, surveys and topics reports are made of), and the core finishes them — rates,
percentages, names, ordering.  ``tests/integration/test_reports_pg.py`` proves both paths give the
same reports on the same rows.  The queries follow the core's rules one for one:

- groups: campaign, the queue first answered in else last in, the first agent, the opening
  channel, and the local hour and date of ``opened_at AT TIME ZONE`` its campaign's zone;
- first response time is ``epoch(first_response_at) − epoch(opened_at)``; p50/p90 are
  ``percentile_cont`` (the core interpolates the same way); its distribution is a ``count(*)
  FILTER`` per bucket, the lower bound included, a negative time in the first;
- the SLA's wait is ``waited_s``, else ``assigned_at − enqueued_at``, compared with the threshold
  of the conversation's queue (``<=``);
- repeat contacts: the latest strictly earlier opening of the same customer (a window ``max`` over
  the customer's conversations, ``EXCLUDE GROUP``), from 7 days before the range, any campaign;
- an amount counts when it reads as a decimal (``^[+-]?(digits[.digits]|.digits)([eE]exp)?$``);
- topics: grouped in SQL, the words counted by the core's ``WordCounter`` (splitting them in SQL
  measured slower).
"""

from __future__ import annotations

import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core import reports as core
from core.reports import Dimension, ReportInput

__all__ = ["PostgresReports"]

WORK_MEM: Final = "64MB"
_PARAM: Final = re.compile(r"(?<![:\w]):(\w+)")
DECIMAL: Final = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class _Sql:
    """The shared parts of a query: the range's WHERE, the zone and SLA lookups, and the
    dimensions' expressions over a source with ``campaign_id``, ``q``, ``agent_id``,
    ``channel`` and ``local_at``."""

    def __init__(
        self,
        workspace_id: uuid.UUID,
        campaign_ids: Sequence[uuid.UUID] | None,
        spec: ReportInput,
        dims: Sequence[Dimension],
    ) -> None:
        self.params: dict[str, Any] = {
            "ws": workspace_id,
            "start": _dt(spec.range.start),
            "end": _dt(spec.range.end),
            "zone": spec.default_zone.key,
        }
        self.dims = tuple(dims)
        where = "r.workspace_id = :ws AND r.opened_at >= :start AND r.opened_at < :end"
        if campaign_ids is not None:
            names = []
            for i, c in enumerate(campaign_ids):
                self.params[f"c{i}"] = c
                names.append(f"CAST(:c{i} AS uuid)")
            where += f" AND r.campaign_id IN ({', '.join(names) or 'NULL'})"
        self.where = where
        zones = []
        for i, (campaign, zone) in enumerate(spec.zones.items()):
            if campaign is None:
                continue
            self.params[f"zc{i}"] = campaign
            self.params[f"zn{i}"] = zone.key
            zones.append(f"WHEN CAST(:zc{i} AS uuid) THEN CAST(:zn{i} AS text)")
        self.zone = (
            f"(CASE r.campaign_id {' '.join(zones)} ELSE CAST(:zone AS text) END)"
            if zones
            else "CAST(:zone AS text)"
        )
        slas = []
        for i, (queue, sla) in enumerate(spec.slas.items()):
            if sla.answer_within_s is None:
                continue
            self.params[f"sq{i}"] = queue
            self.params[f"st{i}"] = float(sla.answer_within_s)
            slas.append(f"WHEN CAST(:sq{i} AS uuid) THEN CAST(:st{i} AS double precision)")
        q = "coalesce(r.answered_queue_id, r.queue_id)"
        self.threshold = f"(CASE {q} {' '.join(slas)} END)" if slas else "CAST(NULL AS double precision)"

    def source(self, columns: str, extra_where: str = "", table: str = "conversation_report") -> str:
        """The range's report rows (of ``table``) with ``q``, ``local_at`` and ``columns``."""
        return (
            "SELECT r.campaign_id, coalesce(r.answered_queue_id, r.queue_id) AS q, r.agent_id, r.channel, "
            f"r.opened_at AT TIME ZONE {self.zone} AS local_at, {columns} "
            f"FROM {table} r WHERE {self.where} {extra_where}"
        )

    def group_columns(self) -> list[str]:
        return [_EXPRESSIONS[d] for d in self.dims]

    def group_by(self, *more: str) -> str:
        columns = [*[str(i + 1) for i in range(len(self.dims))], *more]
        return f"GROUP BY {', '.join(columns)}" if columns else ""


_EXPRESSIONS: Final = {
    Dimension.CAMPAIGN: "campaign_id",
    Dimension.QUEUE: "q",
    Dimension.AGENT: "agent_id",
    Dimension.CHANNEL: "channel",
    Dimension.HOUR: "CAST(date_part('hour', local_at) AS integer)",
    Dimension.DAY: "CAST(local_at AS date)",
}


def _buckets(frt: str) -> list[str]:
    """A count per ``core.FRT_BUCKETS`` (lower bound included) of the first response time ``frt``."""
    out = []
    for b in core.FRT_BUCKETS:
        low = f"{frt} >= {b.from_s}" if b.from_s > 0 else f"{frt} IS NOT NULL"
        high = f" AND {frt} < {b.to_s}" if b.to_s is not None else ""
        out.append(f"count(*) FILTER (WHERE {low}{high})")
    return out


def _select(sql: _Sql, *aggregates: str) -> str:
    return ", ".join([*sql.group_columns(), *aggregates])


class PostgresReports:
    """The reports' aggregates in SQL, finished by the core (PostgreSQL only)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._set = False

    async def _rows(self, sql: str, params: Mapping[str, Any]) -> Sequence[Any]:
        if not self._set:
            # A report's sorts and hashes fit in memory; JIT compiling costs more than it saves
            # here (the planner overestimates rows from the word splitting functions).
            await self.session.execute(sa.text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
            await self.session.execute(sa.text("SET LOCAL jit = off"))
            self._set = True
        # asyncpg's own fetch: the rows as the driver decodes them, without a result layer
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        text = _PARAM.sub(number, sql)
        connection = await (await self.session.connection()).get_raw_connection()
        driver: Any = connection.driver_connection
        return list(await driver.fetch(text, *(params[name] for name in names)))

    async def summary(
        self,
        workspace_id: uuid.UUID,
        campaign_ids: Sequence[uuid.UUID] | None,
        spec: ReportInput,
        dims: Sequence[Dimension],
        *,
        answered_only: bool = False,
        lookback_s: float = core.REPEAT_WINDOWS_S[-1],
    ) -> list[core.Measures]:
        sql = _Sql(workspace_id, campaign_ids, spec, dims)
        params = {**sql.params, "hstart": _dt(spec.range.start - lookback_s)}
        epoch = "date_part('epoch', {})".format
        base = sql.source(
            "r.opened_at, r.enqueued_at, r.assigned_at, r.waited_s, r.first_response_at, r.closed_at, "
            f"r.reopened_at, r.transfers, r.requeues, r.active_s, {sql.threshold} AS thr, "
            f"{epoch('r.opened_at')} - {epoch('r.prev_at')} AS gap",
            "AND r.agent_id IS NOT NULL" if answered_only else "",
            table="h",
        )
        frt = f"({epoch('first_response_at')} - {epoch('opened_at')})"
        wait = f"coalesce(waited_s, {epoch('assigned_at')} - {epoch('enqueued_at')})"
        with_sla = "enqueued_at IS NOT NULL AND thr IS NOT NULL"
        query = f"""
            WITH h AS (
                SELECT r.*, max(r.opened_at) OVER (
                    PARTITION BY r.customer_id ORDER BY r.opened_at
                    RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE GROUP) AS prev_at
                FROM conversation_report r
                WHERE r.workspace_id = :ws AND r.opened_at >= :hstart AND r.opened_at < :end
            ),
            c AS ({base})
            SELECT {
            _select(
                sql,
                "count(*)",
                "count(enqueued_at)",
                "count(assigned_at)",
                "count(*) FILTER (WHERE closed_at IS NOT NULL AND first_response_at IS NULL)",
                f"percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY {frt})",
                f"avg({frt})",
                f"avg({epoch('assigned_at')} - {epoch('enqueued_at')})",
                f"avg({wait}) FILTER (WHERE assigned_at IS NOT NULL AND enqueued_at IS NOT NULL)",
                f"avg({epoch('closed_at')} - {epoch('assigned_at')})",
                "avg(active_s) FILTER (WHERE assigned_at IS NOT NULL)",
                f"count(*) FILTER (WHERE {with_sla} AND assigned_at IS NOT NULL)",
                f"count(*) FILTER (WHERE {with_sla})",
                f"count(*) FILTER (WHERE {with_sla} AND assigned_at IS NOT NULL AND {wait} <= thr)",
                f"array_agg(DISTINCT q) FILTER (WHERE {with_sla})",
                "coalesce(sum(transfers), 0)",
                "coalesce(sum(requeues), 0)",
                "count(closed_at)",
                "count(reopened_at)",
                f"count(*) FILTER (WHERE gap <= {core.REPEAT_WINDOWS_S[0]})",
                f"count(*) FILTER (WHERE gap <= {core.REPEAT_WINDOWS_S[1]})",
                *_buckets(frt),
            )
        }
            FROM c {sql.group_by()}
        """
        n = len(sql.dims)
        out = []
        for row in await self._rows(query, params):
            v = list(row[n:])
            v[4:5] = v[4] or [None, None]
            totals = core.Totals(
                conversations=v[0],
                offered=v[1],
                answered=v[2],
                abandoned=v[3],
                frt_p50_s=v[4],
                frt_p90_s=v[5],
                frt_mean_s=v[6],
                asa_s=v[7],
                asa_open_s=v[8],
                aht_s=v[9],
                active_mean_s=v[10],
                sla_answered=v[11],
                sla_offered=v[12],
                sla_met=v[13],
                sla_queues=frozenset(v[14] or ()),
                transfers=int(v[15]),
                requeues=int(v[16]),
                closed=v[17],
                reopened=v[18],
                repeat_24h=v[19],
                repeat_7d=v[20],
                frt_histogram=tuple(v[21:]),
            )
            out.append(core.finish(core.group_of(spec, sql.dims, row[:n]), totals, spec))
        if not out and not sql.dims:
            out.append(core.finish((), core.Totals(), spec))
        return sorted(out, key=lambda m: m.group)

    async def dispositions(
        self,
        workspace_id: uuid.UUID,
        campaign_ids: Sequence[uuid.UUID] | None,
        spec: ReportInput,
        dims: Sequence[Dimension],
    ) -> list[core.DispositionReport]:
        sql = _Sql(workspace_id, campaign_ids, spec, dims)
        params = {**sql.params, "decimal": DECIMAL}
        amount = (
            "CASE WHEN r.disposition_amount ~ :decimal THEN CAST(trim(r.disposition_amount) AS numeric) END"
        )
        paid = "CASE WHEN r.paid_amount ~ :decimal THEN CAST(trim(r.paid_amount) AS numeric) END"
        base = sql.source(
            "nullif(r.disposition_code, '') AS code, nullif(r.disposition_date, '') AS pdate, "
            f"{amount} AS amount, r.promise_outcome AS outcome, {paid} AS paid"
        )
        n = len(sql.dims)
        promised = "count(*) FILTER (WHERE pdate IS NOT NULL)"
        promised_amount = "sum(amount) FILTER (WHERE pdate IS NOT NULL)"
        kept = "count(*) FILTER (WHERE pdate IS NOT NULL AND outcome = 'kept')"
        broken = "count(*) FILTER (WHERE pdate IS NOT NULL AND outcome = 'broken')"
        paid_sum = "sum(paid) FILTER (WHERE pdate IS NOT NULL AND outcome IS NOT NULL)"
        mix = await self._rows(
            f"SELECT {_select(sql, 'code', 'count(*)', promised, promised_amount, kept, broken, paid_sum)}"
            f" FROM ({base}) c {sql.group_by(str(n + 1))}",
            params,
        )
        dated = await self._rows(
            f"SELECT {_select(sql, 'pdate', 'count(*)', 'coalesce(sum(amount), 0)')}"
            f" FROM ({base}) c WHERE code IS NOT NULL AND pdate IS NOT NULL {sql.group_by(str(n + 1))}",
            params,
        )
        codes: dict[core.Group, Counter[str]] = defaultdict(Counter)
        promises: Counter[core.Group] = Counter()
        kepts: Counter[core.Group] = Counter()
        brokens: Counter[core.Group] = Counter()
        amounts: dict[core.Group, Decimal] = defaultdict(Decimal)
        paids: dict[core.Group, Decimal] = defaultdict(Decimal)
        for row in mix:
            group = core.group_of(spec, sql.dims, row[:n])
            code, count, promised_n, total, kept_n, broken_n, paid_total = row[n:]
            codes[group]  # a group with no disposition is still a group
            if code is None:
                continue
            codes[group][code] += count
            promises[group] += promised_n
            kepts[group] += kept_n
            brokens[group] += broken_n
            amounts[group] += total or Decimal(0)
            paids[group] += paid_total or Decimal(0)
        days: dict[core.Group, list[core.PromiseDay]] = defaultdict(list)
        for row in dated:
            group = core.group_of(spec, sql.dims, row[:n])
            day, count, total = row[n:]
            days[group].append(core.PromiseDay(day, count, Decimal(total)))
        out = []
        for group in sorted(codes):
            counter = codes[group]
            coded = sum(counter.values())
            out.append(
                core.DispositionReport(
                    group=group,
                    with_disposition=coded,
                    mix=tuple(
                        core.DispositionShare(code, k, k / coded)
                        for code, k in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
                    ),
                    promises=promises[group],
                    promised_amount=amounts[group],
                    by_date=tuple(sorted(days[group], key=lambda p: p.date)),
                    kept=kepts[group],
                    broken=brokens[group],
                    paid_amount=paids[group],
                )
            )
        return out

    async def surveys(
        self,
        workspace_id: uuid.UUID,
        campaign_ids: Sequence[uuid.UUID] | None,
        spec: ReportInput,
        dims: Sequence[Dimension],
    ) -> list[core.SurveyMeasures]:
        sql = _Sql(workspace_id, campaign_ids, spec, dims)
        base = sql.source("r.survey_kind AS kind, r.survey_sent_at AS sent_at, r.survey_score AS score")
        n = len(sql.dims)
        aggregates = _select(
            sql,
            "kind",
            "count(sent_at)",
            "count(score)",
            "avg(CAST(score AS double precision))",
            "count(*) FILTER (WHERE score >= 4)",
            "count(*) FILTER (WHERE score >= 9)",
            "count(*) FILTER (WHERE score <= 6)",
        )
        rows = await self._rows(
            f"SELECT {aggregates} FROM ({base}) c WHERE kind IS NOT NULL AND kind <> ''"
            f" {sql.group_by(str(n + 1))}",
            sql.params,
        )
        out = []
        for row in rows:
            kind, sent, answered, mean, good, promoters, detractors = row[n:]
            nps = kind == "nps"
            out.append(
                core.SurveyMeasures(
                    group=core.group_of(spec, sql.dims, row[:n]),
                    kind=kind,
                    sent=sent,
                    answered=answered,
                    response_rate=answered / sent if sent else None,
                    mean_score=mean,
                    csat_pct=(100.0 * good / answered if answered else None) if kind == "csat" else None,
                    nps=(100.0 * (promoters - detractors) / answered if answered else None) if nps else None,
                    promoters=promoters if nps else 0,
                    passives=answered - promoters - detractors if nps else 0,
                    detractors=detractors if nps else 0,
                )
            )
        return sorted(out, key=lambda s: (s.group, s.kind))

    async def topics(
        self,
        workspace_id: uuid.UUID,
        campaign_ids: Sequence[uuid.UUID] | None,
        spec: ReportInput,
        dims: Sequence[Dimension],
        *,
        top: int = core.TOP_WORDS,
    ) -> list[core.TopicReport]:
        """The grouping in SQL; the words counted by ``core.reports.WordCounter`` (splitting
        words in SQL measured slower than Python with each token worked out once)."""
        sql = _Sql(workspace_id, campaign_ids, spec, dims)
        n = len(sql.dims)
        base = sql.source(
            "nullif(r.triage_option, '') AS option, nullif(r.disposition_code, '') AS code, r.first_text"
        )
        rows = await self._rows(
            f"SELECT {_select(sql, 'option', 'code', 'first_text')} FROM ({base}) c", sql.params
        )
        conversations: Counter[tuple[Any, ...]] = Counter()
        triage: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
        codes: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
        tokens = core.WordCounter().tokens
        counters: dict[tuple[Any, ...], core.WordCounter] = {}
        for row in rows:
            raw = tuple(row[:n])
            option, code, text = row[n:]
            conversations[raw] += 1
            if option is not None:
                triage[raw][option] += 1
            if code is not None:
                codes[raw][code] += 1
            counter = counters.get(raw)
            if counter is None:
                counter = counters[raw] = core.WordCounter(tokens)
            counter.add(text)
        found = [
            core.TopicReport(
                group=core.group_of(spec, sql.dims, raw),
                conversations=count,
                triage_options=_commonest(triage[raw]),
                dispositions=_commonest(codes[raw]),
                top_words=counters[raw].top(top),
            )
            for raw, count in conversations.items()
        ]
        return sorted(found, key=lambda t: t.group)


def _commonest(counter: Counter[str]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))
