"""Conversations as agents and supervisors work them.

- ``GET /api/conversations`` — an agent's own (assigned or offered to them); a supervisor's whole
  workspace, filtered by ``status``, ``queue_id``, ``agent_id``.  Newest first, ``?limit=`` and
  ``?cursor=`` in, ``next_cursor`` out.
- ``GET /api/conversations/{conversation_id}`` — one conversation, its reply window, and the
  customer's cross-channel timeline (every message of the customer, every conversation; the most
  recent ``?limit=`` entries oldest first, ``next_cursor`` reaching further back).
- ``POST /api/conversations/{conversation_id}/notes`` — an internal note, never sent.
- ``POST /api/conversations/{conversation_id}/close`` — close with a disposition validated
  against the campaign's ``dispositions``; a disposition may schedule a follow-up that re-enters
  routing when due (``centralita.followups``).

Agents see the conversations assigned or offered to them (403 for the rest of their
workspace) and act only on those assigned to them; supervisors see and act on any of the
workspace.  Another workspace's id is a 404, like one that does not exist.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from centralita.runtime import Runtime
from centralita.schemas.conversations import (
    CloseRequest,
    Conversation,
    ConversationDetail,
    ConversationOptions,
    ConversationPage,
    Disposition,
    DispositionOption,
    NoteRequest,
    QueueRef,
    TemplateOption,
    TimelineEntry,
    TransferAgent,
)
from centralita.surveys import schedule_survey
from centralita.web.api._json import parse_body, path_uuid, query_int, respond
from centralita.web.api._publish import publish_router_inputs
from centralita.web.auth import require
from centralita.web.keys import FOLLOWUPS, RUNTIME, SURVEYS
from centralita.web.spec import Param, documented
from core.errors import Conflict, Forbidden, InvalidInput, NotFound, UnknownChannel
from core.facts import CloseReason, Fact, WorkAction
from core.ids import ConversationId
from core.reply_window import WindowState, templates_from_manifest, window_state
from core.states import ConversationStatus
from router.wire import ConversationClosedInput
from storage.tokens import Principal
from storage.work import WorkConversation, WorkStore

__all__ = [
    "actor_of",
    "decode_cursor",
    "encode_cursor",
    "load_conversation",
    "routes",
]

routes = web.RouteTableDef()

_PAGINATION = (
    Param("limit", "Page size.", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
    Param("cursor", "The next_cursor of the previous page.", {"type": "string"}),
)


# ------------------------------------------------------------------------------------ shared helpers


def encode_cursor(cursor: tuple[datetime, uuid.UUID] | None) -> str | None:
    if cursor is None:
        return None
    raw = f"{cursor[0].isoformat()}|{cursor[1]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(request: web.Request) -> tuple[datetime, uuid.UUID] | None:
    raw = request.query.get("cursor")
    if not raw:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        at, _, ident = text.partition("|")
        parsed = datetime.fromisoformat(at)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)), uuid.UUID(ident)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("cursor is not one this API returned", field="cursor") from None


def _query_uuid(request: web.Request, name: str) -> uuid.UUID | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a UUID", field=name) from None


def actor_of(principal: Principal) -> str:
    """Who acted, for the router's records: the agent, or the token when it has no agent."""
    return f"agent:{principal.agent_id}" if principal.agent_id else f"token:{principal.token_id}"


def _window(runtime: Runtime, conv: WorkConversation) -> WindowState | None:
    try:
        capabilities = runtime.adapters.get(conv.channel).capabilities
    except UnknownChannel:  # a channel this process does not run: no window to show
        return None
    return window_state(capabilities, conv.last_customer_message_at, runtime.clock())


def _conversation(runtime: Runtime, conv: WorkConversation, principal: Principal) -> Conversation:
    return Conversation.of(conv, _window(runtime, conv), principal)


async def load_conversation(
    request: web.Request, principal: Principal, *, assigned: bool = False
) -> WorkConversation:
    """The conversation of the path, as the principal may see it (404 outside the workspace).

    Agents: 403 unless it is assigned or offered to them (``assigned``: assigned to them)."""
    conversation_id = path_uuid(request, "conversation_id")
    async with request.app[RUNTIME].database.session() as session:
        conv = await WorkStore(session).conversation(principal.workspace_id, conversation_id)
    if conv is None:
        raise NotFound("no such conversation", field="conversation_id")
    if principal.role == "agent":
        if principal.agent_id is None:
            raise Forbidden("this token is not an agent's")
        if assigned and conv.agent_id != principal.agent_id:
            raise Forbidden("this conversation is not assigned to you")
        if not conv.visible_to(principal.agent_id):
            raise Forbidden("this conversation is not assigned or offered to you")
    return conv


# ------------------------------------------------------------------------------------ reading


@routes.get("/api/conversations")
@documented(
    "agent",
    {200: ("Newest first.", ConversationPage)},
    query=(
        Param("status", "Only this status.", ConversationStatus),
        Param("queue_id", "Only this queue.", uuid.UUID),
        Param("agent_id", "Only this agent's.", uuid.UUID),
        Param("channel", "Only those the customer last wrote on this channel (whatsapp, email, …)."),
        Param(
            "waiting_longer_than_s",
            "Only those that entered their queue more than this many seconds ago.",
            {"type": "integer", "minimum": 0},
        ),
        *_PAGINATION,
    ),
)
async def list_conversations(request: web.Request) -> web.Response:
    """List conversations: an agent's own, or the workspace's for supervisors."""
    principal = await require(request, "agent")
    raw_status = request.query.get("status")
    try:
        status = None if raw_status is None else ConversationStatus(raw_status)
    except ValueError:
        raise InvalidInput(f"status must be one of {', '.join(ConversationStatus)}", field="status") from None
    queue_id = _query_uuid(request, "queue_id")
    agent_id = _query_uuid(request, "agent_id")
    channel = request.query.get("channel") or None
    waited = query_int(request, "waiting_longer_than_s", -1, low=0, high=366 * 86400)
    limit = query_int(request, "limit", 50, high=200)
    visible_to = None
    if principal.role == "agent":
        if principal.agent_id is None:
            raise Forbidden("this token is not an agent's")
        visible_to = principal.agent_id
    runtime = request.app[RUNTIME]
    async with runtime.database.session() as session:
        items, cursor = await WorkStore(session).conversations(
            principal.workspace_id,
            visible_to=visible_to,
            status=status,
            queue_id=queue_id,
            agent_id=agent_id,
            channel=channel,
            entered_before=runtime.clock() - timedelta(seconds=waited) if waited >= 0 else None,
            limit=limit,
            before=decode_cursor(request),
        )
    return respond(
        ConversationPage(
            items=[_conversation(runtime, c, principal) for c in items], next_cursor=encode_cursor(cursor)
        )
    )


@routes.get("/api/conversations/{conversation_id}")
@documented(
    "agent",
    {200: ("The conversation and the customer's timeline.", ConversationDetail)},
    query=_PAGINATION,
)
async def get_conversation(request: web.Request) -> web.Response:
    """A conversation with its reply window and the customer's cross-channel timeline."""
    principal = await require(request, "agent")
    conv = await load_conversation(request, principal)
    limit = query_int(request, "limit", 50, high=200)
    runtime = request.app[RUNTIME]
    async with runtime.database.session() as session:
        entries, cursor = await WorkStore(session).timeline(
            principal.workspace_id, conv.customer_id, limit=limit, before=decode_cursor(request)
        )
    return respond(
        ConversationDetail.with_timeline(
            _conversation(runtime, conv, principal), entries, encode_cursor(cursor)
        )
    )


@routes.get("/api/conversations/{conversation_id}/options")
@documented(
    "agent",
    {200: ("How to close it, what to send outside the window, where to transfer.", ConversationOptions)},
)
async def get_conversation_options(request: web.Request) -> web.Response:
    """The campaign's dispositions, the account's approved templates and the campaign's queues."""
    principal = await require(request, "agent")
    conv = await load_conversation(request, principal)
    runtime = request.app[RUNTIME]
    async with runtime.database.session() as session:
        store = WorkStore(session)
        manifest, _timezone = await store.campaign(conv.campaign_id)
        queues = [q for q in await store.queues(principal.workspace_id) if q.campaign_id == conv.campaign_id]
        agents = [
            a
            for a in await store.agents(principal.workspace_id)
            if a.active
            and a.id not in (principal.agent_id, conv.agent_id)
            and a.capacity.get(conv.channel, 0) > 0
        ]
    account = runtime.directory.by_id(conv.channel_account_id) if conv.channel_account_id else None
    templates = templates_from_manifest(manifest, account.name if account is not None else None)
    return respond(
        ConversationOptions(
            dispositions=[
                DispositionOption(
                    code=code,
                    label=str(spec.get("label") or code),
                    requires=[str(f) for f in spec.get("requires") or []],
                    schedules_follow_up=isinstance(spec.get("schedules_follow_up"), Mapping),
                )
                for code, spec in _known_dispositions(manifest).items()
            ],
            templates=[
                TemplateOption(
                    name=t.name,
                    language=t.language,
                    parameters=list(t.parameters),
                    category=t.category,
                    body=t.body,
                )
                for t in templates
            ],
            queues=[QueueRef(id=q.id, name=q.name) for q in queues],
            agents=[
                TransferAgent(
                    id=a.id,
                    name=a.name,
                    presence=a.presence,
                    free=max(0, a.capacity.get(conv.channel, 0) - a.load.get(conv.channel, 0)),
                )
                for a in agents
            ],
        )
    )


# ------------------------------------------------------------------------------------ notes


@routes.post("/api/conversations/{conversation_id}/notes")
@documented(
    "agent",
    {201: ("The note, in the timeline.", TimelineEntry)},
    body=NoteRequest,
    extra_errors={409: "The conversation is closed."},
)
async def add_note(request: web.Request) -> web.Response:
    """Add an internal note to the conversation; it is never sent to the customer."""
    principal = await require(request, "agent")
    conv = await load_conversation(request, principal)
    body = await parse_body(request, NoteRequest)
    if conv.status == ConversationStatus.CLOSED:
        raise Conflict("the conversation is closed", field="conversation_id")
    runtime = request.app[RUNTIME]
    async with runtime.database.transaction() as session:
        entry = await WorkStore(session).add_note(
            conv, principal.agent_id, body.text, runtime.clock(), actor=actor_of(principal)
        )
    return respond(TimelineEntry.of(entry), status=201)


# ------------------------------------------------------------------------------------ closing


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _known_dispositions(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    raw = manifest.get("dispositions")
    if not isinstance(raw, list):
        return {}
    return {str(d["code"]): dict(d) for d in raw if isinstance(d, Mapping) and d.get("code")}


def _follow_up_at(requested: datetime | None, now: datetime) -> datetime | None:
    if requested is None:
        return None
    if requested <= now:
        raise InvalidInput("follow_up_at must be in the future", field="follow_up_at")
    return requested.astimezone(UTC)


def _disposition(
    requested: Disposition, known: Mapping[str, dict[str, Any]], today: date
) -> tuple[dict[str, Any], dict[str, Any] | None, date | None]:
    """The disposition to store, its manifest entry's follow-up, and its date."""
    code = requested.code
    codes = sorted(known)
    if code not in known:
        listed = ", ".join(codes) or "none"
        raise InvalidInput(
            f"unknown disposition code {code!r}; this campaign's codes: {listed}",
            field="disposition.code",
            details={"codes": codes},
        )
    spec = known[code]
    requires = [str(f) for f in spec.get("requires") or []]
    given = requested.model_dump()
    missing = [f for f in requires if given.get(f) in (None, "")]
    if missing:
        fields = ", ".join(f"disposition.{f}" for f in missing)
        raise InvalidInput(
            f"the disposition {code!r} requires {fields}",
            field=f"disposition.{missing[0]}",
            details={"missing": [f"disposition.{f}" for f in missing]},
        )
    stored: dict[str, Any] = {"code": code, "label": spec.get("label") or code}
    promised = requested.date
    if promised is not None:
        stored["date"] = promised.isoformat()
    if requested.amount is not None:
        stored["amount"] = str(requested.amount)
    if requested.note is not None:
        stored["note"] = requested.note
    follow_up = spec.get("schedules_follow_up")
    follow_up = dict(follow_up) if isinstance(follow_up, Mapping) else None
    if follow_up is not None and follow_up.get("on_field") == "date":
        if promised is None:
            raise InvalidInput(
                f"the disposition {code!r} schedules its follow-up on disposition.date",
                field="disposition.date",
            )
        if promised < today:
            raise InvalidInput("disposition.date cannot be in the past", field="disposition.date")
    return stored, follow_up, promised


@routes.post("/api/conversations/{conversation_id}/close")
@documented(
    "agent",
    {200: ("Closed; the router was told.", Conversation)},
    body=CloseRequest,
    extra_errors={409: "Already closed."},
)
async def close_conversation(request: web.Request) -> web.Response:
    """Close the conversation with a disposition (wrap-up code) and an optional follow-up."""
    principal = await require(request, "agent")
    conv = await load_conversation(request, principal, assigned=True)
    runtime = request.app[RUNTIME]
    if conv.status == ConversationStatus.CLOSED:
        # Re-announce: if the first close's announcement was lost the router learns it now.
        await publish_router_inputs(
            runtime, principal.workspace_id, [ConversationClosedInput(conversation_id=conv.id)]
        )
        raise Conflict("the conversation is already closed", field="conversation_id")
    body = await parse_body(request, CloseRequest)
    now = runtime.clock()
    # One transaction reads the campaign's dispositions and the follow-up's queue, closes, and
    # reads the closed conversation back for the answer.
    async with runtime.database.transaction() as session:
        store = WorkStore(session)
        manifest, timezone = await store.campaign(conv.campaign_id)
        zone = _zone(timezone)
        today = now.astimezone(zone).date()
        known = _known_dispositions(manifest)
        disposition: dict[str, Any] | None = None
        follow_up: dict[str, Any] | None = None
        promised: date | None = None
        if body.disposition is not None:
            disposition, follow_up, promised = _disposition(body.disposition, known, today)
        elif known:
            raise InvalidInput(
                f"choose a disposition: {', '.join(sorted(known))}",
                field="disposition",
                details={"codes": sorted(known)},
            )
        explicit = _follow_up_at(body.follow_up_at, now)
        due: datetime | None = None
        if explicit is not None:
            due = explicit
        elif follow_up is not None and follow_up.get("after_days"):
            due = now + timedelta(days=int(follow_up["after_days"]))
        elif follow_up is not None and promised is not None:
            due = datetime.combine(promised, time(0, 0), tzinfo=zone).astimezone(UTC)
        doc: dict[str, Any] = dict(disposition or {})
        doc["closed_by"] = actor_of(principal)
        if due is not None:
            queue = None
            if follow_up is not None and follow_up.get("queue"):
                queue = await store.queue_named(principal.workspace_id, str(follow_up["queue"]))
            elif conv.queue_id is not None:
                queue = await store.queue(principal.workspace_id, conv.queue_id)
            if queue is None and explicit is not None:
                raise InvalidInput(
                    "there is no queue to follow this conversation up in", field="follow_up_at"
                )
            doc["follow_up"] = {
                "due_at": due.isoformat(),
                "queue": queue.name if queue is not None else (follow_up or {}).get("queue"),
                "queue_id": str(queue.id) if queue is not None else None,
                "template": (follow_up or {}).get("template"),
            }
        fact = Fact(
            WorkAction.CLOSED,
            now,
            actor_of(principal),
            principal.workspace_id,
            conversation_id=conv.id,
            customer_id=conv.customer_id,
            agent_id=conv.agent_id or principal.agent_id,
            campaign_id=conv.campaign_id,
            queue_id=conv.queue_id,
            details={"reason": CloseReason.AGENT, "disposition": doc},
            dedupe=f"{conv.id}:closed:{now.isoformat()}",
        )
        closed = await store.close(
            principal.workspace_id,
            ConversationId(conv.id),
            disposition=doc,
            closed_at=now,
            follow_up_at=due,
            fact=fact,
        )
        if not closed:
            raise Conflict("the conversation is already closed", field="conversation_id")
        survey_due = None
        if conv.agent_id is not None:  # a customer no agent attended is not asked how it went
            survey_due = await schedule_survey(session, manifest, ConversationId(conv.id), conv.channel, now)
        after = await store.conversation(principal.workspace_id, conv.id)
    await publish_router_inputs(
        runtime, principal.workspace_id, [ConversationClosedInput(conversation_id=conv.id)]
    )
    followups = request.app.get(FOLLOWUPS)
    if due is not None and followups is not None and due <= now + timedelta(seconds=followups.interval_s):
        followups.poke()
    surveys = request.app.get(SURVEYS)
    if (
        survey_due is not None
        and surveys is not None
        and survey_due <= now + timedelta(seconds=surveys.interval_s)
    ):
        surveys.poke()
    if after is None:  # deleted meanwhile: nothing in the product deletes conversations
        raise NotFound("no such conversation", field="conversation_id")
    return respond(_conversation(runtime, after, principal))
