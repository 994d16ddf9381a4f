"""Customers and their identity: look-up, record, timeline, merge and unmerge, suggestions, blocklist.

Roles: agents and supervisors read, link (merge), confirm and reject suggestions; unmerging and
the blocklist need ``supervisor``.  Every write acts as the token's agent (``str(agent_id)``, or
``token:<id>`` for a token without an agent) and lands in ``audit_log``.

A customer id that was merged away answers with the surviving record: the body's ``id`` is the
survivor, ``requested_id`` the id asked for and ``merged_into`` the survivor's id (``null`` when
the id asked for is the live one).  An id of another workspace is a 404.  The record shows its
``legal_hold`` and ``erased_at``; merging, linking or confirming a suggestion that involves an
erased customer is a 409 ``customer_erased`` naming it, and such suggestions are not listed.

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
from datetime import datetime

from aiohttp import web

from centralita.pipeline.identity import identity_policy
from centralita.schemas.customers import (
    AuditEntry,
    BlockRequest,
    BlockResult,
    Customer,
    CustomerAudit,
    CustomerSearch,
    CustomerTimeline,
    IdentityChange,
    MergePreview,
    MergeRequest,
    Unmerged,
    UnmergeRequest,
)
from centralita.schemas.customers import Identifier as IdentifierOut
from centralita.web.api._json import parse_body, path_uuid, query_int, respond
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import Param, documented
from core.errors import InvalidInput, NotFound
from core.events import AddressKind
from core.ids import CustomerId, WorkspaceId
from identity import AuditEntry as AuditRecord
from identity import (
    Identifier,
    IdentityGraph,
    IdentityPolicy,
    email_identifier,
    phone_identifier,
    scoped_identifier,
)
from storage.crm import CrmStore
from storage.identity_store import IdentityStore
from storage.tokens import Principal

__all__ = ["parse_identifier", "routes"]

routes = web.RouteTableDef()

_REGION = Param(
    "region", "Region of numbers in national format (ISO 3166); else the identity_default_region setting."
)
_PAGE = (
    Param("limit", "Page size.", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
    Param("cursor", "The next_cursor of the previous page.", {"type": "string"}),
)


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


async def _detail(
    store: IdentityStore, ws: WorkspaceId, requested: uuid.UUID, policy: IdentityPolicy
) -> Customer:
    live = await store.live_customer(ws, requested)
    graph = await store.graph_of(ws, live.id, policy)
    others = {v.other_customer_id for v in graph.suggestions_for(live.id) if v.other_customer_id is not None}
    return Customer.of(
        live,
        requested,
        graph,
        await store.conversations_of(ws, live.id),
        await store.privacy_of(ws, live.id),
        erased=await store.erased_among(ws, others),
        labels=await CrmStore(store.session).labels_of(ws, live.id),
    )


# ------------------------------------------------------------------------------------ reads


@routes.get("/api/customers")
@documented(
    "agent",
    {200: ("The customer holding the identifier, if any.", CustomerSearch)},
    query=(Param("identifier", "A phone, an email address or a key.", required=True), _REGION),
)
async def find_customers(request: web.Request) -> web.Response:
    """Find the customer of an identifier."""
    principal = await require(request, "agent")
    identifier = parse_identifier(request.query.get("identifier"), _region(request))
    ws = principal.workspace_id
    async with request.app[RUNTIME].database.session() as session:
        store = IdentityStore(session)
        customer = await store.customer_of_key(ws, identifier.key)
        found = [] if customer is None else [await _detail(store, ws, customer, _policy(request, ws))]
    return respond(CustomerSearch(identifier=IdentifierOut.of(identifier), customers=found))


@routes.get("/api/customers/{customer_id}")
@documented("agent", {200: ("The (surviving) customer.", Customer)})
async def get_customer(request: web.Request) -> web.Response:
    """A customer and its identity graph."""
    principal = await require(request, "agent")
    requested = path_uuid(request, "customer_id")
    async with request.app[RUNTIME].database.session() as session:
        body = await _detail(
            IdentityStore(session),
            principal.workspace_id,
            requested,
            _policy(request, principal.workspace_id),
        )
    return respond(body)


@routes.get("/api/customers/{customer_id}/timeline")
@documented("agent", {200: ("Oldest first.", CustomerTimeline)}, query=_PAGE)
async def customer_timeline(request: web.Request) -> web.Response:
    """The customer's timeline across channels."""
    principal = await require(request, "agent")
    requested = path_uuid(request, "customer_id")
    limit = query_int(request, "limit", 50, high=500)
    after = _decode_cursor(request.query.get("cursor"))
    ws = principal.workspace_id
    async with request.app[RUNTIME].database.session() as session:
        store = IdentityStore(session)
        live = await store.live_customer(ws, requested)
        entries, cursor = await store.timeline(ws, live.id, limit=limit, after=after)
    return respond(
        CustomerTimeline.of(live.id, requested, entries, _encode_cursor(*cursor) if cursor else None)
    )


@routes.get("/api/customers/{customer_id}/audit")
@documented("agent", {200: ("Identity audit entries.", CustomerAudit)})
async def customer_audit(request: web.Request) -> web.Response:
    """The customer's identity audit."""
    principal = await require(request, "agent")
    requested = path_uuid(request, "customer_id")
    ws = principal.workspace_id
    async with request.app[RUNTIME].database.session() as session:
        store = IdentityStore(session)
        live = await store.live_customer(ws, requested)
        entries = await store.audit_of(ws, live.id)
        edges = await store.evidence(ws, [e for entry in entries for e in entry.edge_ids])
    return respond(CustomerAudit.of(live.id, requested, entries, edges))


# ------------------------------------------------------------------------------------ merges


async def _merge_target(
    request: web.Request, store: IdentityStore, ws: WorkspaceId, body: MergeRequest
) -> tuple[list[str], list[CustomerId], tuple[Identifier, Identifier] | None]:
    """Keys to load and the two customers (``customer_ids``) or identifiers (``identifiers``)."""
    if body.customer_ids is not None:
        customers = [(await store.live_customer(ws, c)).id for c in body.customer_ids]
        keys = [n.key for c in customers for n in await store.identifiers_of(ws, c)]
        return keys, customers, None
    if body.identifiers is None:
        raise InvalidInput("send customer_ids or identifiers: two of them", field="identifiers")
    region = (body.region or _region(request)).upper()
    a, b = (parse_identifier(x, region) for x in body.identifiers)
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
@documented(
    "agent",
    {200: ("What the merge would do.", MergePreview)},
    body=MergeRequest,
    query=(_REGION,),
    extra_errors={404: "A customer of customer_ids is not in the workspace."},
)
async def merge_preview(request: web.Request) -> web.Response:
    """Preview merging two customers or linking two identifiers."""
    principal = await require(request, "agent")
    body = await parse_body(request, MergeRequest)
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
    return respond(MergePreview.of(preview))


@routes.post("/api/customers/merge")
@documented(
    "agent",
    {200: ("Merged.", IdentityChange)},
    body=MergeRequest,
    query=(_REGION,),
    extra_errors={
        404: "A customer of customer_ids is not in the workspace.",
        409: "An identifier is blocked, or a customer was erased (customer_erased, details name it).",
    },
)
async def merge(request: web.Request) -> web.Response:
    """An agent's explicit link: merges at once unless an identifier is blocked (409)."""
    principal = await require(request, "agent")
    body = await parse_body(request, MergeRequest)
    ws = principal.workspace_id
    runtime = request.app[RUNTIME]
    actor = _actor(principal)
    now = runtime.clock()
    async with runtime.database.transaction() as session:
        store = IdentityStore(session)
        keys, customers, pair = await _merge_target(request, store, ws, body)

        def operation(graph: IdentityGraph) -> AuditRecord:
            if pair is not None:
                return graph.link(pair[0], pair[1], now, actor=actor)
            return graph.merge_customers(customers[0], customers[1], now, actor=actor)

        entry, _ = await store.run(
            ws,
            keys,
            operation,
            now=now,
            policy=_policy(request, ws),
            customers=customers,
            refuse_erased=True,
        )
        edges = await store.evidence(ws, entry.edge_ids)
    return respond(IdentityChange.of(entry, edges))


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

        def operation(graph: IdentityGraph) -> AuditRecord:
            if confirm:
                return graph.confirm(suggestion_id, now, actor=actor)
            return graph.reject(suggestion_id, now, actor=actor)

        entry, _ = await store.run(
            ws, keys, operation, now=now, policy=_policy(request, ws), refuse_erased=confirm
        )
        edges = await store.evidence(ws, entry.edge_ids)
    return respond(IdentityChange.of(entry, edges))


_DECIDED = {409: "The suggestion is already confirmed or rejected."}
_CONFIRM_REFUSED = {
    409: "The suggestion is already confirmed or rejected, or involves an erased customer "
    "(customer_erased, details name it)."
}


@routes.post("/api/suggestions/{suggestion_id}/confirm")
@documented(
    "agent",
    {200: ("Confirmed: the identifiers are linked.", IdentityChange)},
    body_required=False,
    extra_errors=_CONFIRM_REFUSED,
)
async def confirm_suggestion(request: web.Request) -> web.Response:
    """Confirm a suggested identity link."""
    return await _decide(request, confirm=True)


@routes.post("/api/suggestions/{suggestion_id}/reject")
@documented(
    "agent",
    {200: ("Rejected: never suggested again.", IdentityChange)},
    body_required=False,
    extra_errors=_DECIDED,
)
async def reject_suggestion(request: web.Request) -> web.Response:
    """Reject a suggested identity link."""
    return await _decide(request, confirm=False)


@routes.post("/api/customers/unmerge")
@documented(
    "supervisor",
    {200: ("Split.", Unmerged)},
    body=UnmergeRequest,
    extra_errors={404: "No such merge or link in the workspace."},
)
async def unmerge(request: web.Request) -> web.Response:
    """Undo a merge or link (``{"audit_id": …}``): its evidence is retracted and the customer split;
    the part without the oldest identifier gets its old id back (or a new one)."""
    principal = await require(request, "supervisor")
    audit_id = (await parse_body(request, UnmergeRequest)).audit_id
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
    return respond(Unmerged.of(entry, edges))


# ------------------------------------------------------------------------------------ blocklist


@routes.post("/api/identity/blocklist")
@documented(
    "supervisor",
    {201: ("Blocked.", BlockResult), 200: ("Already blocked.", BlockResult)},
    body=BlockRequest,
    query=(_REGION,),
)
async def block(request: web.Request) -> web.Response:
    """Put an identifier on the workspace blocklist: it never merges anyone (and splits the
    customer it joined).  ``201`` with the audit entry; ``200`` when it was already blocked."""
    principal = await require(request, "supervisor")
    body = await parse_body(request, BlockRequest)
    ws = principal.workspace_id
    identifier = parse_identifier(body.identifier, (body.region or _region(request)).upper())
    detail = (body.detail or "")[:200]
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
    return respond(
        BlockResult(key=identifier.key, blocked=True, audit=AuditEntry.of(entry, {}) if entry else None),
        status=201 if entry is not None else 200,
    )


@routes.delete("/api/identity/blocklist/{key}")
@documented("supervisor", {200: ("Lifted.", BlockResult)}, query=(_REGION,))
async def unblock(request: web.Request) -> web.Response:
    """Lift an identifier's block."""
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
    return respond(BlockResult(key=key, blocked=False, audit=AuditEntry.of(entry, {})))
