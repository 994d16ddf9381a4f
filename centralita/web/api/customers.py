"""Customers and their identity: look-up, record, timeline, merge and unmerge, suggestions, blocklist.

Roles: agents and supervisors read, link (merge), confirm and reject suggestions; unmerging and
the blocklist need ``supervisor``.  Every write acts as the token's agent (``str(agent_id)``, or
``token:<id>`` for a token without an agent) and lands in ``audit_log``.

A customer id that was merged away answers with the surviving record: the body's ``id`` is the
survivor, ``requested_id`` the id asked for and ``merged_into`` the survivor's id (``null`` when
the id asked for is the live one).  An id of another workspace is a 404.

Identifiers in bodies and queries are read like the channels' addresses: ``+52 55 1234 5678``,
``5215512345678``, ``ana@example.com``, or a key (``phone:+525512345678``,
``instagram_id:<account>:<igsid>``).  Numbers in national format use ``?region=`` (else the
``identity_default_region`` setting).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from centralita.pipeline.identity import identity_policy
from centralita.web.api._json import json_body, path_uuid, query_int
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from core.errors import InvalidInput, NotFound
from core.events import AddressKind
from core.ids import CustomerId, WorkspaceId
from core.records import TimelineEntry
from identity import (
    AuditEntry,
    EvidenceEdge,
    Identifier,
    IdentifierRow,
    IdentityGraph,
    IdentityPolicy,
    MergePreview,
    SuggestionView,
    email_identifier,
    phone_identifier,
    scoped_identifier,
)
from storage.identity_store import IdentityStore
from storage.tokens import Principal

__all__ = ["audit_json", "parse_identifier", "routes"]

routes = web.RouteTableDef()

_SCOPED = (AddressKind.INSTAGRAM_ID, AddressKind.WHATSAPP_BSUID, AddressKind.EXTERNAL)


# ------------------------------------------------------------------------------------ reading input


def parse_identifier(raw: object, region: str) -> Identifier:
    """An identifier from what a person types or a key; normalized as the channels' addresses are."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput(
            "an identifier is required (a phone, an email address or a key)", field="identifier"
        )
    text = raw.strip()
    kind, sep, rest = text.partition(":")
    if sep and kind in {k.value for k in AddressKind}:
        if kind == AddressKind.PHONE.value:
            return phone_identifier(rest, region, strict=False)
        if kind == AddressKind.EMAIL.value:
            return email_identifier(rest)
        scope, sep2, value = rest.partition(":")
        if not sep2:
            raise InvalidInput("a channel-scoped key is kind:account:id", field="identifier")
        return scoped_identifier(AddressKind(kind), value, scope or None)
    if "@" in text:
        return email_identifier(text)
    if text.isdigit() and len(text) > 10:
        text = f"+{text}"  # a WhatsApp id
    return phone_identifier(text, region, strict=False)


def _region(request: web.Request) -> str:
    region = request.query.get("region") or request.app[RUNTIME].settings.identity_default_region
    return region.upper()


def _actor(principal: Principal) -> str:
    return str(principal.agent_id) if principal.agent_id is not None else f"token:{principal.token_id}"


def _policy(request: web.Request, ws: WorkspaceId) -> IdentityPolicy:
    return identity_policy(a for a in request.app[RUNTIME].directory.all() if a.workspace_id == ws)


def _uuid(value: object, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput(f"{field} must be a UUID", field=field) from None


def _encode_cursor(at: datetime, last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(json.dumps([at.isoformat(), str(last_id)]).encode()).decode()


def _decode_cursor(raw: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not raw:
        return None
    try:
        at, last_id = json.loads(base64.urlsafe_b64decode(raw.encode()))
        return datetime.fromisoformat(at), uuid.UUID(last_id)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidInput("not a cursor this API gave out", field="cursor") from None


# ------------------------------------------------------------------------------------ writing output


def _identifier_json(i: Identifier) -> dict[str, Any]:
    return {"kind": i.kind.value, "value": i.value, "key": i.key, "scope": i.scope}


def _node_json(node: IdentifierRow, graph: IdentityGraph) -> dict[str, Any]:
    block = graph.block_of(node.key)
    return {
        **_identifier_json(node.identifier),
        "first_seen_at": node.first_seen_at.isoformat(),
        "blocked": block is not None,
        "block_reason": block.reason.value if block is not None else None,
    }


def _suggestion_json(view: SuggestionView) -> dict[str, Any]:
    s = view.suggestion
    ours = s.a if view.other.key == s.b.key else s.b
    return {
        "id": str(s.id),
        "status": s.status.value,
        "identifier": _identifier_json(ours),
        "other": _identifier_json(view.other),
        "other_customer_id": str(view.other_customer_id) if view.other_customer_id else None,
        "evidence": {
            "source": s.source.value,
            "from": _identifier_json(s.a),
            "points_at": _identifier_json(s.b),
            "reference": s.reference,
            "actor": s.actor,
            "created_at": s.created_at.isoformat(),
        },
    }


def _evidence_json(edge: EvidenceEdge) -> dict[str, Any]:
    return {
        "id": str(edge.id),
        "a": edge.a,
        "b": edge.b,
        "source": edge.source.value,
        "actor": edge.actor,
        "created_at": edge.created_at.isoformat(),
        "reference": edge.reference,
        "suggestion_id": str(edge.suggestion_id) if edge.suggestion_id else None,
        "retracted_at": edge.retracted_at.isoformat() if edge.retracted_at else None,
    }


def audit_json(entry: AuditEntry, edges: Mapping[uuid.UUID, EvidenceEdge]) -> dict[str, Any]:
    return {
        "id": str(entry.id),
        "action": entry.action.value,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "evidence": [_evidence_json(edges[e]) for e in entry.edge_ids if e in edges],
        "before": [str(c) for c in entry.before],
        "after": [str(c) for c in entry.after],
        "reassignments": [
            {"key": m.key, "from": str(m.from_customer), "to": str(m.to_customer)}
            for m in entry.reassignments
        ],
        "suggestion_id": str(entry.suggestion_id) if entry.suggestion_id else None,
        "key": entry.key,
        "reference": entry.reference,
        "detail": entry.detail,
    }


def _preview_json(p: MergePreview) -> dict[str, Any]:
    return {
        "would_merge": p.would_merge,
        "survivor": str(p.survivor) if p.survivor else None,
        "merged_away": [str(c) for c in p.merged_away],
        "customers": [str(c) for c in p.customers],
        "identifiers": [_identifier_json(i) for i in p.identifiers],
        "blocked": list(p.blocked),
        "conversations": p.conversations,
    }


def _entry_json(e: TimelineEntry) -> dict[str, Any]:
    return {
        "id": str(e.id),
        "at": e.created_at.isoformat(),
        "channel": e.channel,
        "direction": e.direction,
        "kind": e.kind,
        "conversation_id": str(e.conversation_id) if e.conversation_id else None,
        "agent_id": str(e.agent_id) if e.agent_id else None,
        "text": e.text,
        "external_id": e.external_id,
        "delivery_state": e.delivery_state,
    }


async def _detail(
    store: IdentityStore, ws: WorkspaceId, requested: uuid.UUID, policy: IdentityPolicy
) -> dict[str, Any]:
    live = await store.live_customer(ws, requested)
    graph = await store.graph_of(ws, live.id, policy)
    conversations = await store.conversations_of(ws, live.id)
    return {
        "id": str(live.id),
        "requested_id": str(requested),
        "merged_into": str(live.id) if live.id != requested else None,
        "created_at": live.created_at.isoformat(),
        "identifiers": [_node_json(n, graph) for n in graph.identifiers_of(live.id)],
        "shared_contacts": [_node_json(n, graph) for n in graph.shared_contacts(live.id)],
        "suggestions": [_suggestion_json(v) for v in graph.suggestions_for(live.id)],
        "conversations": [
            {
                "id": str(c.id),
                "campaign_id": str(c.campaign_id) if c.campaign_id else None,
                "status": c.status,
                "channel": c.channel,
                "agent_id": str(c.agent_id) if c.agent_id else None,
                "opened_at": c.opened_at.isoformat(),
            }
            for c in conversations
        ],
    }


# ------------------------------------------------------------------------------------ reads


@routes.get("/api/customers")
async def find_customers(request: web.Request) -> web.Response:
    principal = await require(request, "agent")
    identifier = parse_identifier(request.query.get("identifier"), _region(request))
    ws = principal.workspace_id
    async with request.app[RUNTIME].database.session() as session:
        store = IdentityStore(session)
        customer = await store.customer_of_key(ws, identifier.key)
        found = [] if customer is None else [await _detail(store, ws, customer, _policy(request, ws))]
    return web.json_response({"identifier": _identifier_json(identifier), "customers": found})


@routes.get("/api/customers/{customer_id}")
async def get_customer(request: web.Request) -> web.Response:
    principal = await require(request, "agent")
    requested = path_uuid(request, "customer_id")
    async with request.app[RUNTIME].database.session() as session:
        body = await _detail(
            IdentityStore(session),
            principal.workspace_id,
            requested,
            _policy(request, principal.workspace_id),
        )
    return web.json_response(body)


@routes.get("/api/customers/{customer_id}/timeline")
async def customer_timeline(request: web.Request) -> web.Response:
    principal = await require(request, "agent")
    requested = path_uuid(request, "customer_id")
    limit = query_int(request, "limit", 50, high=500)
    after = _decode_cursor(request.query.get("cursor"))
    ws = principal.workspace_id
    async with request.app[RUNTIME].database.session() as session:
        store = IdentityStore(session)
        live = await store.live_customer(ws, requested)
        entries, cursor = await store.timeline(ws, live.id, limit=limit, after=after)
    return web.json_response(
        {
            "customer_id": str(live.id),
            "requested_id": str(requested),
            "merged_into": str(live.id) if live.id != requested else None,
            "entries": [_entry_json(e) for e in entries],
            "next_cursor": _encode_cursor(*cursor) if cursor else None,
        }
    )


@routes.get("/api/customers/{customer_id}/audit")
async def customer_audit(request: web.Request) -> web.Response:
    principal = await require(request, "agent")
    requested = path_uuid(request, "customer_id")
    ws = principal.workspace_id
    async with request.app[RUNTIME].database.session() as session:
        store = IdentityStore(session)
        live = await store.live_customer(ws, requested)
        entries = await store.audit_of(ws, live.id)
        edges = await store.evidence(ws, [e for entry in entries for e in entry.edge_ids])
    return web.json_response(
        {
            "customer_id": str(live.id),
            "requested_id": str(requested),
            "merged_into": str(live.id) if live.id != requested else None,
            "entries": [audit_json(e, edges) for e in entries],
        }
    )


# ------------------------------------------------------------------------------------ merges


async def _merge_target(
    request: web.Request, store: IdentityStore, ws: WorkspaceId, body: Mapping[str, Any]
) -> tuple[list[str], list[CustomerId], tuple[Identifier, Identifier] | None]:
    """Keys to load and the two customers (``customer_ids``) or identifiers (``identifiers``)."""
    if "customer_ids" in body:
        raw = body["customer_ids"]
        if not isinstance(raw, list) or len(raw) != 2:
            raise InvalidInput("customer_ids must list two customers", field="customer_ids")
        customers = [(await store.live_customer(ws, _uuid(c, "customer_ids"))).id for c in raw]
        keys = [n.key for c in customers for n in await store.identifiers_of(ws, c)]
        return keys, customers, None
    raw = body.get("identifiers")
    if not isinstance(raw, list) or len(raw) != 2:
        raise InvalidInput("send customer_ids or identifiers: two of them", field="identifiers")
    region = str(body.get("region") or _region(request)).upper()
    a, b = (parse_identifier(x, region) for x in raw)
    return [a.key, b.key], [], (a, b)


async def _counts(
    store: IdentityStore, ws: WorkspaceId, keys: list[str], customers: list[CustomerId]
) -> dict[CustomerId, int]:
    involved = set(customers)
    for key in keys:
        owner = await store.customer_of_key(ws, key)
        if owner is not None:
            involved.add(owner)
    return await store.conversation_counts(ws, involved)


@routes.post("/api/customers/merge/preview")
async def merge_preview(request: web.Request) -> web.Response:
    principal = await require(request, "agent")
    body = await json_body(request)
    ws = principal.workspace_id
    async with request.app[RUNTIME].database.session() as session:
        store = IdentityStore(session)
        keys, customers, pair = await _merge_target(request, store, ws, body)
        counts = await _counts(store, ws, keys, customers)
        rows = await store.load(ws, keys, customers=customers)
        graph = IdentityGraph.from_rows(ws, rows, _policy(request, ws))
        if pair is not None:
            preview = graph.preview_link(pair[0], pair[1], counts)
        else:
            preview = graph.preview_merge(customers[0], customers[1], counts)
    return web.json_response(_preview_json(preview))


@routes.post("/api/customers/merge")
async def merge(request: web.Request) -> web.Response:
    """An agent's explicit link: merges at once unless an identifier is blocked (409)."""
    principal = await require(request, "agent")
    body = await json_body(request)
    ws = principal.workspace_id
    runtime = request.app[RUNTIME]
    actor = _actor(principal)
    now = runtime.clock()
    async with runtime.database.transaction() as session:
        store = IdentityStore(session)
        keys, customers, pair = await _merge_target(request, store, ws, body)

        def operation(graph: IdentityGraph) -> AuditEntry:
            if pair is not None:
                return graph.link(pair[0], pair[1], now, actor=actor)
            return graph.merge_customers(customers[0], customers[1], now, actor=actor)

        entry, _ = await store.run(
            ws, keys, operation, now=now, policy=_policy(request, ws), customers=customers
        )
        edges = await store.evidence(ws, entry.edge_ids)
    return web.json_response(
        {"audit": audit_json(entry, edges), "customer_id": str(entry.after[0]) if entry.after else None}
    )


async def _decide(request: web.Request, confirm: bool) -> web.Response:
    principal = await require(request, "agent")
    suggestion_id = path_uuid(request, "suggestion_id")
    ws = principal.workspace_id
    runtime = request.app[RUNTIME]
    actor = _actor(principal)
    now = runtime.clock()
    async with runtime.database.transaction() as session:
        store = IdentityStore(session)
        keys = await store.suggestion_keys(ws, suggestion_id)

        def operation(graph: IdentityGraph) -> AuditEntry:
            if confirm:
                return graph.confirm(suggestion_id, now, actor=actor)
            return graph.reject(suggestion_id, now, actor=actor)

        entry, _ = await store.run(ws, keys, operation, now=now, policy=_policy(request, ws))
        edges = await store.evidence(ws, entry.edge_ids)
    return web.json_response(
        {"audit": audit_json(entry, edges), "customer_id": str(entry.after[0]) if entry.after else None}
    )


@routes.post("/api/suggestions/{suggestion_id}/confirm")
async def confirm_suggestion(request: web.Request) -> web.Response:
    return await _decide(request, confirm=True)


@routes.post("/api/suggestions/{suggestion_id}/reject")
async def reject_suggestion(request: web.Request) -> web.Response:
    return await _decide(request, confirm=False)


@routes.post("/api/customers/unmerge")
async def unmerge(request: web.Request) -> web.Response:
    """Undo a merge or link (``{"audit_id": …}``): its evidence is retracted and the customer split;
    the part without the oldest identifier gets its old id back (or a new one)."""
    principal = await require(request, "supervisor")
    body = await json_body(request)
    audit_id = _uuid(body.get("audit_id"), "audit_id")
    ws = principal.workspace_id
    runtime = request.app[RUNTIME]
    actor = _actor(principal)
    now = runtime.clock()
    async with runtime.database.transaction() as session:
        store = IdentityStore(session)
        entry, _ = await store.run(
            ws,
            (),
            lambda graph: graph.unmerge(audit_id, now, actor=actor),
            now=now,
            policy=_policy(request, ws),
            audit_ids=[audit_id],
        )
        edges = await store.evidence(ws, entry.edge_ids)
    return web.json_response({"audit": audit_json(entry, edges), "customers": [str(c) for c in entry.after]})


# ------------------------------------------------------------------------------------ blocklist


@routes.post("/api/identity/blocklist")
async def block(request: web.Request) -> web.Response:
    """Put an identifier on the workspace blocklist: it never merges anyone (and splits the
    customer it joined).  ``201`` with the audit entry; ``200`` when it was already blocked."""
    principal = await require(request, "supervisor")
    body = await json_body(request)
    ws = principal.workspace_id
    identifier = parse_identifier(body.get("identifier"), str(body.get("region") or _region(request)).upper())
    detail = str(body.get("detail") or "")[:200]
    runtime = request.app[RUNTIME]
    actor = _actor(principal)
    now = runtime.clock()
    async with runtime.database.transaction() as session:
        store = IdentityStore(session)
        entry, _ = await store.run(
            ws,
            [identifier.key],
            lambda graph: graph.block(identifier.key, now, actor=actor, detail=detail),
            now=now,
            policy=_policy(request, ws),
        )
    return web.json_response(
        {"key": identifier.key, "blocked": True, "audit": audit_json(entry, {}) if entry else None},
        status=201 if entry is not None else 200,
    )


@routes.delete("/api/identity/blocklist/{key}")
async def unblock(request: web.Request) -> web.Response:
    principal = await require(request, "supervisor")
    raw = request.match_info.get("key", "")
    ws = principal.workspace_id
    key = parse_identifier(raw, _region(request)).key
    runtime = request.app[RUNTIME]
    actor = _actor(principal)
    now = runtime.clock()
    async with runtime.database.transaction() as session:
        store = IdentityStore(session)
        entry, _ = await store.run(
            ws,
            [key],
            lambda graph: graph.unblock(key, now, actor=actor),
            now=now,
            policy=_policy(request, ws),
            for_unblock=True,
        )
    if entry is None:
        raise NotFound("that identifier is not blocked", field="key")
    return web.json_response({"key": key, "blocked": False, "audit": audit_json(entry, {})})
