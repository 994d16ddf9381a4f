"""The audit trail, for supervisors and admins: read it, export it, one conversation's history.

- ``GET /api/audit`` — entries matching the filters, newest first (``order=oldest``: oldest
  first), ``?limit=`` and ``?cursor=`` in, ``next_cursor`` out (keyset on the entry's time and
  id: a page never repeats or skips an entry, however many are appended meanwhile).  Filters,
  all optional and all applied together: ``conversation``, ``customer`` (its own entries, the
  exports, erasures and identity changes that involve it), ``agent`` (entries about the agent
  or done by it), ``action`` (repeatable or a comma list; ``offer.*`` is every action starting
  with ``offer.``), ``from`` (inclusive) and ``to`` (exclusive), ISO 8601 times (a bare date is
  its midnight UTC, no offset is UTC).  A malformed filter is a 400 naming it.
- ``GET /api/audit/export?format=csv|jsonl&…`` — every entry matching the same filters, oldest
  first, streamed as a CSV or JSON Lines attachment (read a batch at a time).
- ``GET /api/conversations/{conversation_id}/history`` — every fact of the conversation in
  order (who answered, when, what was promised, how it closed, the survey), each actor that is
  an agent resolved to its name, and the names of every agent mentioned.

Everything is within the caller's workspace: another workspace's ids find nothing (a page is
empty; a history is a 404, like any conversation of another workspace).  Agents get 403: the
trail names other agents' work.  Nothing here, nor anywhere in the API, changes or deletes an
entry: ``/api/audit`` answers GET only, and the database refuses it besides (migration 0012).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterable

from aiohttp import web

from centralita.schemas.audit import CSV_COLUMNS, AuditEntry, AuditPage, ConversationHistory, csv_row
from centralita.web.api._json import query_int, respond
from centralita.web.api.conversations import decode_cursor, encode_cursor, load_conversation
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import Param, documented
from core.audit import AuditEntry as AuditRecord
from core.audit import AuditQuery, parse_query
from core.errors import InvalidInput
from storage.audit import AuditStore, batches

__all__ = ["routes"]

routes = web.RouteTableDef()

_FILTERS = (
    Param("conversation", "Only this conversation's entries.", uuid.UUID),
    Param(
        "customer",
        "Entries of this customer, and the identity changes and exports that involve it.",
        uuid.UUID,
    ),
    Param("agent", "Entries about this agent or done by it.", uuid.UUID),
    Param(
        "action",
        "Only these actions: repeat it or give a comma list; offer.* is every action starting with offer.",
        {"type": "array", "items": {"type": "string"}},
    ),
    Param(
        "from",
        "From this time on (inclusive), ISO 8601; a bare date is its midnight UTC.",
        {"type": "string"},
    ),
    Param("to", "Before this time (exclusive), ISO 8601.", {"type": "string"}),
)
_PAGE = (
    Param("order", "newest (default) or oldest first.", {"type": "string", "enum": ["newest", "oldest"]}),
    Param("limit", "Page size.", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}),
    Param("cursor", "The next_cursor of the previous page.", {"type": "string"}),
)
_FORMATS = {"csv": "text/csv", "jsonl": "application/x-ndjson"}


def _query(request: web.Request) -> AuditQuery:
    q = request.query
    return parse_query(
        conversation=q.get("conversation"),
        customer=q.get("customer"),
        agent=q.get("agent"),
        action=q.getall("action", []),
        since=q.get("from"),
        until=q.get("to"),
    )


@routes.get("/api/audit")
@documented(
    "supervisor",
    {200: ("Entries matching the filters, newest first unless order=oldest.", AuditPage)},
    query=(*_FILTERS, *_PAGE),
)
async def list_audit(request: web.Request) -> web.Response:
    """Read the audit trail."""
    principal = await require(request, "supervisor")
    query = _query(request)
    order = request.query.get("order", "newest")
    if order not in ("newest", "oldest"):
        raise InvalidInput("order must be newest or oldest", field="order")
    limit = query_int(request, "limit", 100, high=500)
    cursor = decode_cursor(request)
    async with request.app[RUNTIME].database.session() as session:
        entries, following = await AuditStore(session).page(
            principal.workspace_id, query, limit=limit, cursor=cursor, newest_first=order == "newest"
        )
    return respond(AuditPage(items=[AuditEntry.of(e) for e in entries], next_cursor=encode_cursor(following)))


def _csv_lines(entries: Iterable[AuditRecord], header: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    for e in entries:
        writer.writerow(csv_row(AuditEntry.of(e)))
    return out.getvalue().encode()


def _json_lines(entries: Iterable[AuditRecord]) -> bytes:
    return b"".join(
        json.dumps(AuditEntry.of(e).model_dump(mode="json"), ensure_ascii=False).encode() + b"\n"
        for e in entries
    )


@routes.get("/api/audit/export")
@documented(
    "supervisor",
    {200: ("Every entry matching the filters, oldest first, as an attachment.", {"type": "string"})},
    query=(
        Param("format", "csv (default) or jsonl (JSON Lines).", {"type": "string", "enum": list(_FORMATS)}),
        *_FILTERS,
    ),
    response_type=tuple(_FORMATS.values()),
)
async def export_audit(request: web.Request) -> web.StreamResponse:
    """Export the audit trail as CSV or JSON Lines."""
    principal = await require(request, "supervisor")
    kind = request.query.get("format", "csv")
    if kind not in _FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(_FORMATS)}", field="format")
    query = _query(request)
    runtime = request.app[RUNTIME]
    stamp = runtime.clock().strftime("%Y%m%dT%H%M%SZ")
    response = web.StreamResponse(
        headers={
            "Content-Type": f"{_FORMATS[kind]}; charset=utf-8",
            "Content-Disposition": f'attachment; filename="audit-{stamp}.{kind}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    await response.prepare(request)
    if kind == "csv":
        await response.write(_csv_lines((), header=True))
    async for batch in batches(runtime.database, principal.workspace_id, query):
        await response.write(_csv_lines(batch, header=False) if kind == "csv" else _json_lines(batch))
    await response.write_eof()
    return response


def _mentioned(entries: Iterable[AuditRecord]) -> set[uuid.UUID]:
    """Every agent an entry names: its actor, its agent, and any ``…agent_id`` in its details."""
    found: set[uuid.UUID] = set()
    for e in entries:
        for candidate in (e.actor_agent_id, e.agent_id):
            if candidate is not None:
                found.add(candidate)
        for key, value in e.details.items():
            if key.endswith("agent_id") and isinstance(value, str):
                try:
                    found.add(uuid.UUID(value))
                except ValueError:
                    continue
    return found


@routes.get("/api/conversations/{conversation_id}/history")
@documented("supervisor", {200: ("Every fact of the conversation, oldest first.", ConversationHistory)})
async def conversation_history(request: web.Request) -> web.Response:
    """A conversation's full history: who answered, when, what was promised, how it closed."""
    principal = await require(request, "supervisor")
    conv = await load_conversation(request, principal)
    async with request.app[RUNTIME].database.session() as session:
        store = AuditStore(session)
        entries = await store.conversation(principal.workspace_id, conv.id)
        names = await store.agent_names(principal.workspace_id, _mentioned(entries))
    return respond(ConversationHistory.of(conv.id, entries, names))
