"""``GET /api/reports/{summary|queues|agents|channels|dispositions|surveys|topics}``.

Supervisor or admin (an agent's token is a 403).  ``from`` and ``to`` (required): ISO dates —
local days in the campaign's time zone, ``to`` included — or datetimes (``to`` excluded; without
an offset, in that zone).  ``campaign``: names, comma-separated (default: every campaign of the
workspace).  ``group_by``: dimensions, comma-separated — campaign, queue, agent, channel, hour,
day.  ``format=csv`` answers the same rows as ``text/csv`` (``centralita.schemas.reports.csv_table``).
A bad date, dimension, format or campaign name is a 400 naming the parameter.  The measures are
defined in docs/reports.md; ``centralita.reports.read_report`` computes them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from centralita.reports import ReportKind, ReportQuery, parse_when, read_report
from centralita.schemas.reports import (
    AnyReport,
    DispositionsReport,
    MeasuresReport,
    SurveysReport,
    TopicsReport,
    csv_text,
)
from centralita.web.api._json import respond
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import Param, documented
from core.errors import InvalidInput
from core.reports import Dimension, parse_dimensions

__all__ = ["routes"]

routes = web.RouteTableDef()

_DIMENSIONS = ", ".join(d.value for d in Dimension)
_QUERY = (
    Param("from", "The range's first day (ISO date, local) or start (ISO datetime).", required=True),
    Param("to", "The range's last day (included) or end (an ISO datetime, excluded).", required=True),
    Param("campaign", "Campaign names, comma-separated (default: all)."),
    Param("group_by", f"Dimensions, comma-separated: {_DIMENSIONS}."),
    Param("format", "json (default) or csv (text/csv, the same rows).", {"enum": ["json", "csv"]}),
)


def _query(request: web.Request, kind: ReportKind) -> tuple[ReportQuery, str]:
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidInput("format must be json or csv", field="format")
    start = parse_when(request.query.get("from"), "from")
    end = parse_when(request.query.get("to"), "to")
    campaigns = tuple(n.strip() for n in request.query.get("campaign", "").split(",") if n.strip())
    group_by = parse_dimensions(request.query.get("group_by"))
    return ReportQuery(kind, start, end, campaigns, group_by), fmt


def _handler(kind: ReportKind) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        principal = await require(request, "supervisor")
        query, fmt = _query(request, kind)
        report = await read_report(request.app[RUNTIME].database, principal.workspace_id, query)
        if fmt == "csv":
            return web.Response(
                text=csv_text(report),
                content_type="text/csv",
                charset="utf-8",
                headers={"Content-Disposition": f'attachment; filename="{kind.value}.csv"'},
            )
        return respond(report)

    return handle


_REPORTS: tuple[tuple[ReportKind, type[AnyReport], str], ...] = (
    (ReportKind.SUMMARY, MeasuresReport, "Conversation measures and volume, grouped by group_by."),
    (
        ReportKind.QUEUES,
        MeasuresReport,
        "Conversation measures per queue, with SLA % over answered and offered.",
    ),
    (ReportKind.AGENTS, MeasuresReport, "Conversation measures per agent (answered conversations)."),
    (ReportKind.CHANNELS, MeasuresReport, "Conversation measures and messages in and out per channel."),
    (ReportKind.DISPOSITIONS, DispositionsReport, "Disposition mix, promised amounts and promises by date."),
    (ReportKind.SURVEYS, SurveysReport, "CSAT and NPS with response rate, per campaign unless grouped."),
    (ReportKind.TOPICS, TopicsReport, "Menu choices, dispositions and commonest first-message words."),
)

for _kind, _model, _summary in _REPORTS:
    _handle = _handler(_kind)
    _handle.__name__ = f"report_{_kind.value}"
    _handle.__doc__ = _summary
    routes.get(f"/api/reports/{_kind.value}")(
        documented("supervisor", {200: ("The report (or its CSV with format=csv).", _model)}, query=_QUERY)(
            _handle
        )
    )
