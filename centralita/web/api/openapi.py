"""``GET /api/openapi.json``: an OpenAPI 3.1 document of the whole HTTP API, built from the live routes.

The paths come from the application's router table, so the document never lists a route that
does not exist.  Each operation's summary is its handler's docstring (first line); path
parameters come from the ``{name}`` placeholders; ``/api/*`` operations need a bearer token.
What the router table cannot tell — the least role, query parameters, the request and response
models — each handler declares with ``@documented`` (``centralita.web.spec``), and
``components.schemas`` is generated from those pydantic models (``centralita.schemas``).

``REGISTRY`` holds the declarations of the routes not converted yet; ``tests/e2e/test_openapi.py``
fails when a route has no declaration and when a registry entry is stale.  ``HEAD`` routes
(aiohttp adds one per ``GET``) are left out.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from centralita.schemas.common import ErrorResponse
from centralita.web.spec import Operation, Param, Schema, Shape, documented, operation_of

__all__ = [
    "REGISTRY",
    "LiveRoute",
    "Operation",
    "build_document",
    "declared_operation",
    "live_routes",
    "routes",
    "stale_entries",
    "undocumented_routes",
]

routes = web.RouteTableDef()


OPENAPI_VERSION = "3.1.0"
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(properties: Mapping[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    out: Schema = {"type": "object", "properties": dict(properties)}
    if required:
        out["required"] = list(required)
    out.update(extra)
    return out


UUID: Schema = {"type": "string", "format": "uuid"}
TIME: Schema = {"type": "string", "format": "date-time"}
TIME_OR_NULL: Schema = {"type": ["string", "null"], "format": "date-time"}
UUID_OR_NULL: Schema = {"type": ["string", "null"], "format": "uuid"}
ANY_OBJECT: Schema = {"type": "object", "additionalProperties": True}


# ------------------------------------------------------------------------------------ schemas

SCHEMAS: dict[str, Schema] = {
    "Error": _obj(
        {
            "error": _obj(
                {
                    "code": {"type": "string", "examples": ["invalid_input"]},
                    "message": {"type": "string"},
                    "field": {"type": "string", "description": "Where: a body field, parameter or header."},
                    "details": ANY_OBJECT,
                },
                ("code", "message"),
            )
        },
        ("error",),
    ),
    "Window": _obj(
        {
            "open": {"type": "boolean"},
            "closes_at": TIME_OR_NULL,
            "extended_until": TIME_OR_NULL,
            "requires_tag": {"type": ["string", "null"]},
            "templates_allowed": {"type": "boolean"},
            "always_open": {"type": "boolean"},
        },
        description="The channel's customer-service reply window at the time of the request.",
    ),
    "Conversation": _obj(
        {
            "id": UUID,
            "status": {"type": "string", "enum": ["triage", "waiting", "offered", "assigned", "closed"]},
            "channel": {"type": "string"},
            "channel_account_id": UUID_OR_NULL,
            "customer": _obj({"id": UUID, "name": {"type": ["string", "null"]}}),
            "queue": _nullable(_obj({"id": UUID, "name": {"type": ["string", "null"]}})),
            "agent_id": UUID_OR_NULL,
            "campaign_id": UUID_OR_NULL,
            "priority": {"type": "integer"},
            "opened_at": TIME,
            "enqueued_at": TIME_OR_NULL,
            "assigned_at": TIME_OR_NULL,
            "first_response_at": TIME_OR_NULL,
            "closed_at": TIME_OR_NULL,
            "last_customer_message_at": TIME_OR_NULL,
            "window_closes_at": TIME_OR_NULL,
            "window": _nullable(_ref("Window")),
            "offers": {
                "type": "array",
                "items": _obj({"offer_id": UUID, "agent_id": UUID, "expires_at": TIME}),
            },
            "disposition": _nullable(ANY_OBJECT),
            "follow_up_at": TIME_OR_NULL,
        },
        ("id", "status", "channel", "customer"),
    ),
    "TimelineEntry": _obj(
        {
            "id": UUID,
            "at": TIME,
            "conversation_id": UUID_OR_NULL,
            "channel": {"type": "string"},
            "direction": {"type": "string", "enum": ["in", "out", "note"]},
            "kind": {"type": "string"},
            "text": {"type": ["string", "null"]},
            "agent_id": UUID_OR_NULL,
            "delivery_state": {"type": ["string", "null"]},
            "delivery_error": _nullable(ANY_OBJECT),
        },
        ("id", "at", "direction", "kind"),
    ),
    "ConversationPage": _obj(
        {
            "items": {"type": "array", "items": _ref("Conversation")},
            "next_cursor": {"type": ["string", "null"]},
        },
        ("items", "next_cursor"),
    ),
    "ConversationDetail": {
        "allOf": [
            _ref("Conversation"),
            _obj(
                {
                    "timeline": {"type": "array", "items": _ref("TimelineEntry")},
                    "next_cursor": {"type": ["string", "null"], "description": "Older timeline entries."},
                },
                ("timeline", "next_cursor"),
            ),
        ]
    },
    "NoteRequest": _obj({"text": {"type": "string", "minLength": 1, "maxLength": 10000}}, ("text",)),
    "CloseRequest": _obj(
        {
            "disposition": _obj(
                {
                    "code": {"type": "string", "examples": ["promesa_de_pago"]},
                    "date": {"type": "string", "format": "date"},
                    "amount": {"type": ["number", "string"]},
                    "note": {"type": "string"},
                },
                ("code",),
                additionalProperties=False,
            ),
            "follow_up_at": {**TIME, "description": "Overrides the follow-up the disposition schedules."},
        },
        additionalProperties=False,
    ),
    "TransferRequest": _obj(
        {"queue_id": UUID, "agent_id": UUID},
        description="Exactly one of queue_id or agent_id.",
        additionalProperties=False,
    ),
    "AssignRequest": _obj({"agent_id": UUID}, ("agent_id",), additionalProperties=False),
    "RequeueRequest": _obj({"queue_id": UUID}, additionalProperties=False),
    "RoutingDecisions": _obj(
        {
            "conversation_id": UUID,
            "decisions": {
                "type": "array",
                "items": _obj(
                    {
                        "id": UUID,
                        "decided_at": TIME,
                        "outcome": {"type": "string"},
                        "explanation": {
                            **ANY_OBJECT,
                            "description": "Candidates considered, who was filtered and why, scores, winner.",
                        },
                    },
                    ("id", "decided_at", "outcome", "explanation"),
                ),
            },
        },
        ("conversation_id", "decisions"),
    ),
    "QueueStats": _obj(
        {
            "queue_id": UUID,
            "name": {"type": "string"},
            "display_name": {"type": ["string", "null"]},
            "campaign_id": UUID_OR_NULL,
            "priority": {"type": "integer"},
            "waiting": {"type": "integer"},
            "offered": {"type": "integer"},
            "longest_wait_s": {"type": "number"},
            "agents": _obj(
                {k: {"type": ["integer", "null"]} for k in ("available", "busy", "away", "offline")}
            ),
            "day": {"type": "string", "format": "date"},
            "timezone": {"type": "string"},
            "answered_today": {"type": "integer"},
            "answered_within_sla_today": {"type": ["integer", "null"]},
            "sla_pct_today": {"type": ["number", "null"]},
            "sla_target_pct": {"type": ["number", "null"]},
            "sla_threshold_s": {"type": ["number", "null"]},
        },
        ("queue_id", "name", "waiting", "longest_wait_s", "agents", "answered_today", "sla_pct_today"),
    ),
    "QueueStatsList": _obj(
        {
            "workspace_id": UUID,
            "at": TIME,
            "queues": {"type": "array", "items": _ref("QueueStats")},
        },
        ("workspace_id", "at", "queues"),
    ),
    "ReplyRequest": _obj(
        {
            "text": {"type": "string"},
            "template": _obj(
                {
                    "name": {"type": "string"},
                    "language": {"type": "string"},
                    "parameters": {"type": "array", "items": {"type": "string"}},
                },
                ("name", "language"),
            ),
            "attachments": {"type": "array", "items": ANY_OBJECT},
            "channel_account_id": UUID,
            "identifier_id": UUID,
            "reply_to_message_id": UUID,
        },
        description="Free-form text, or an approved template when the window is closed.",
    ),
    "OutboundMessage": {
        **ANY_OBJECT,
        "description": "The queued reply, its delivery state and reply window.",
    },
    "Customer": {**ANY_OBJECT, "description": "A customer: identifiers, evidence graph, conversations."},
    "CustomerSearch": _obj(
        {"identifier": ANY_OBJECT, "customers": {"type": "array", "items": _ref("Customer")}},
        ("customers",),
    ),
    "CustomerTimeline": _obj(
        {
            "customer_id": UUID,
            "requested_id": UUID,
            "merged_into": UUID_OR_NULL,
            "entries": {"type": "array", "items": _ref("TimelineEntry")},
            "next_cursor": {"type": ["string", "null"]},
        },
        ("customer_id", "entries"),
    ),
    "CustomerAudit": _obj(
        {
            "customer_id": UUID,
            "requested_id": UUID,
            "merged_into": UUID_OR_NULL,
            "entries": {"type": "array", "items": ANY_OBJECT},
        },
        ("customer_id", "entries"),
    ),
    "MergeRequest": _obj(
        {
            "customer_ids": {"type": "array", "items": UUID, "minItems": 2, "maxItems": 2},
            "identifiers": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
            "region": {"type": "string"},
        },
        description="Two customers (customer_ids) or two identifiers (phones, emails or keys).",
    ),
    "MergePreview": {**ANY_OBJECT, "description": "What a merge would do: survivor, merged away, blocked."},
    "IdentityChange": _obj(
        {"audit": ANY_OBJECT, "customer_id": UUID_OR_NULL, "customers": {"type": "array", "items": UUID}},
        ("audit",),
    ),
    "UnmergeRequest": _obj({"audit_id": UUID}, ("audit_id",)),
    "BlockRequest": _obj(
        {"identifier": {"type": "string"}, "region": {"type": "string"}, "detail": {"type": "string"}},
        ("identifier",),
    ),
    "BlockResult": _obj(
        {"key": {"type": "string"}, "blocked": {"type": "boolean"}, "audit": _nullable(ANY_OBJECT)},
        ("key", "blocked"),
    ),
    "ManifestRequest": _obj(
        {
            "manifest": {"type": "string", "description": "The manifest's YAML text."},
            "expected_version": {"type": "integer"},
        },
        ("manifest",),
    ),
    "Validation": _obj(
        {
            "ok": {"type": "boolean"},
            "summary": {"type": "string"},
            "problems": {"type": "array", "items": ANY_OBJECT},
        },
        ("ok", "problems"),
    ),
    "Plan": {**ANY_OBJECT, "description": "What would change: added, changed, removed; and its text."},
    "Applied": {**ANY_OBJECT, "description": "The applied version and its plan."},
    "CampaignList": _obj({"campaigns": {"type": "array", "items": ANY_OBJECT}}),
    "Health": _obj({"status": {"type": "string"}, "checks": ANY_OBJECT}, ("status",)),
    "WebhookAccepted": _obj(
        {"status": {"const": "accepted"}, "raw_delivery_id": UUID, "events": {"type": "integer"}},
        ("status", "raw_delivery_id"),
    ),
    "DeadLetter": _obj(
        {
            "id": {"type": "string", "description": "The message id (copies of one message share it)."},
            "queue": {"type": "string", "description": "The original queue, e.g. ingest.0."},
            "reason": {"type": "string", "description": "Why it was parked, or the broker's reason."},
            "parked_at": TIME_OR_NULL,
            "size": {"type": "integer", "description": "Body size in bytes."},
            "routing_key": {"type": "string"},
            "message_id": {"type": ["string", "null"]},
        },
        ("id", "queue", "reason", "parked_at", "size", "routing_key", "message_id"),
        description="A delivery waiting in a dead-letter queue (never its body).",
    ),
    "DeadLetterList": _obj({"items": {"type": "array", "items": _ref("DeadLetter")}}, ("items",)),
    "DeadLetterDetail": _obj(
        {
            "id": {"type": "string"},
            "queue": {"type": "string"},
            "reason": {"type": "string"},
            "parked_at": TIME_OR_NULL,
            "size": {"type": "integer"},
            "routing_key": {"type": "string"},
            "message_id": {"type": ["string", "null"]},
            "content_type": {"type": ["string", "null"]},
            "headers": ANY_OBJECT,
            "body": {"type": "string", "description": "May contain personal data."},
            "body_encoding": {"type": "string", "enum": ["utf-8", "base64"]},
        },
        ("id", "queue", "reason", "headers", "body", "body_encoding"),
    ),
    "DeadLetterReplay": _obj({"replayed": {"type": "array", "items": _ref("DeadLetter")}}, ("replayed",)),
}

_JSON = ("application/json",)
_YAML_OR_JSON = ("application/yaml", "text/yaml", "text/plain", "application/json")

PAGINATION = (
    Param("limit", "Page size.", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
    Param("cursor", "The next_cursor of the previous page.", {"type": "string"}),
)

_DLQ_QUEUE = Param("queue", "Only this queue's dead-letter queue (the original name, e.g. ingest.0).")

# ------------------------------------------------------------------------------------ the registry

REGISTRY: dict[tuple[str, str], Operation] = {
    # -------------------------------------------------------------- probes and providers
    ("GET", "/healthz"): Operation(None, {200: ("The process is alive.", _ref("Health"))}),
    ("GET", "/readyz"): Operation(
        None,
        {
            200: ("The database and the broker answer, workers run, consumers are attached.", _ref("Health")),
            503: ("A dependency, a worker or a consumer is down; checks name it.", _ref("Health")),
        },
    ),
    ("GET", "/webhooks/{channel}"): Operation(
        None,
        {
            200: ("The provider's challenge, echoed (Meta's hub.challenge handshake).", {"type": "string"}),
            403: ("The verify token does not match.", _ref("Error")),
            404: ("No adapter for that channel.", _ref("Error")),
        },
        query=(
            Param("hub.mode", "subscribe"),
            Param("hub.verify_token", "The account's verify token."),
            Param("hub.challenge", "Echoed back on success."),
        ),
        summary="Answer a provider's webhook verification handshake.",
        response_type="text/plain",
    ),
    ("POST", "/webhooks/{channel}"): Operation(
        None,
        {
            200: ("Verified and durably queued (never before).", _ref("WebhookAccepted")),
            400: ("The body does not parse.", _ref("Error")),
            401: ("The signature (X-Hub-Signature-256 or token) does not verify.", _ref("Error")),
            404: ("No adapter for that channel.", _ref("Error")),
            413: ("The body is too large.", _ref("Error")),
            503: ("The broker is down: retry later.", _ref("Error")),
        },
        body={"description": "The provider's raw delivery, exactly as sent (signed bytes)."},
        body_types=("application/json", "message/rfc822"),
        summary="Receive a provider's signed delivery: verify, queue durably, acknowledge.",
    ),
    # -------------------------------------------------------------- who am I, agents
    # -------------------------------------------------------------- conversations
    ("GET", "/api/conversations"): Operation(
        "agent",
        {200: ("Newest first.", _ref("ConversationPage"))},
        query=(
            Param(
                "status",
                "Only this status.",
                {"type": "string", "enum": ["triage", "waiting", "offered", "assigned", "closed"]},
            ),
            Param("queue_id", "Only this queue.", UUID),
            Param("agent_id", "Only this agent's.", UUID),
            *PAGINATION,
        ),
    ),
    ("GET", "/api/conversations/{conversation_id}"): Operation(
        "agent",
        {200: ("The conversation and the customer's timeline.", _ref("ConversationDetail"))},
        query=PAGINATION,
    ),
    ("POST", "/api/conversations/{conversation_id}/notes"): Operation(
        "agent", {201: ("The note, in the timeline.", _ref("TimelineEntry"))}, body=_ref("NoteRequest")
    ),
    ("POST", "/api/conversations/{conversation_id}/close"): Operation(
        "agent",
        {
            200: ("Closed; the router was told.", _ref("Conversation")),
            409: ("Already closed.", _ref("Error")),
        },
        body=_ref("CloseRequest"),
    ),
    ("POST", "/api/conversations/{conversation_id}/transfer"): Operation(
        "agent",
        {
            202: ("TransferInput published.", _ref("Accepted")),
            409: ("The conversation is closed.", _ref("Error")),
        },
        body=_ref("TransferRequest"),
    ),
    ("POST", "/api/conversations/{conversation_id}/assign"): Operation(
        "supervisor",
        {
            202: ("ForceAssignInput published.", _ref("Accepted")),
            409: ("The conversation is closed.", _ref("Error")),
        },
        body=_ref("AssignRequest"),
    ),
    ("POST", "/api/conversations/{conversation_id}/requeue"): Operation(
        "supervisor",
        {
            202: ("RequeueInput published.", _ref("Accepted")),
            409: ("The conversation is closed.", _ref("Error")),
        },
        body=_ref("RequeueRequest"),
        body_required=False,
    ),
    ("GET", "/api/conversations/{conversation_id}/routing"): Operation(
        "supervisor", {200: ("Oldest first.", _ref("RoutingDecisions"))}
    ),
    ("POST", "/api/conversations/{conversation_id}/messages"): Operation(
        "agent",
        {
            202: ("Queued for sending.", _ref("OutboundMessage")),
            422: ("The reply window is closed: details list the approved templates.", _ref("Error")),
        },
        body=_ref("ReplyRequest"),
        summary="Reply to the customer through the conversation's channel.",
    ),
    ("GET", "/api/conversations/{conversation_id}/messages/{message_id}"): Operation(
        "agent",
        {
            200: (
                "The message's delivery state and, when it failed, the provider's error.",
                _ref("OutboundMessage"),
            )
        },
        summary="A sent message's delivery state.",
    ),
    ("POST", "/api/conversations/{conversation_id}/messages/{message_id}/resend"): Operation(
        "agent",
        {
            202: ("A new queued message, same content; resend_of: the old one.", _ref("OutboundMessage")),
            409: ("The message is neither unknown nor failed, or was already resent.", _ref("Error")),
        },
        summary="Send an unknown or failed reply again, on the agent's explicit request.",
    ),
    # -------------------------------------------------------------- queues
    ("GET", "/api/queues/stats"): Operation(
        "supervisor", {200: ("Every active queue.", _ref("QueueStatsList"))}
    ),
    # -------------------------------------------------------------- customers and identity
    ("GET", "/api/customers"): Operation(
        "agent",
        {200: ("The customer holding the identifier, if any.", _ref("CustomerSearch"))},
        query=(
            Param("identifier", "A phone, an email address or a key.", required=True),
            Param("region", "Region of numbers in national format (ISO 3166)."),
        ),
        summary="Find the customer of an identifier.",
    ),
    ("GET", "/api/customers/{customer_id}"): Operation(
        "agent",
        {200: ("The (surviving) customer.", _ref("Customer"))},
        summary="A customer and its identity graph.",
    ),
    ("GET", "/api/customers/{customer_id}/timeline"): Operation(
        "agent",
        {200: ("Oldest first.", _ref("CustomerTimeline"))},
        query=PAGINATION,
        summary="The customer's timeline across channels.",
    ),
    ("GET", "/api/customers/{customer_id}/audit"): Operation(
        "agent",
        {200: ("Identity audit entries.", _ref("CustomerAudit"))},
        summary="The customer's identity audit.",
    ),
    ("POST", "/api/customers/merge/preview"): Operation(
        "agent",
        {200: ("What the merge would do.", _ref("MergePreview"))},
        body=_ref("MergeRequest"),
        summary="Preview merging two customers or linking two identifiers.",
    ),
    ("POST", "/api/customers/merge"): Operation(
        "agent",
        {200: ("Merged.", _ref("IdentityChange")), 409: ("An identifier is blocked.", _ref("Error"))},
        body=_ref("MergeRequest"),
    ),
    ("POST", "/api/suggestions/{suggestion_id}/confirm"): Operation(
        "agent",
        {200: ("Confirmed: the identifiers are linked.", _ref("IdentityChange"))},
        body_required=False,
        summary="Confirm a suggested identity link.",
    ),
    ("POST", "/api/suggestions/{suggestion_id}/reject"): Operation(
        "agent",
        {200: ("Rejected: never suggested again.", _ref("IdentityChange"))},
        body_required=False,
        summary="Reject a suggested identity link.",
    ),
    ("POST", "/api/customers/unmerge"): Operation(
        "supervisor", {200: ("Split.", _ref("IdentityChange"))}, body=_ref("UnmergeRequest")
    ),
    ("POST", "/api/identity/blocklist"): Operation(
        "supervisor",
        {201: ("Blocked.", _ref("BlockResult")), 200: ("Already blocked.", _ref("BlockResult"))},
        body=_ref("BlockRequest"),
    ),
    ("DELETE", "/api/identity/blocklist/{key}"): Operation(
        "supervisor", {200: ("Lifted.", _ref("BlockResult"))}, summary="Lift an identifier's block."
    ),
    # -------------------------------------------------------------- campaigns
    ("POST", "/api/campaigns/validate"): Operation(
        "admin",
        {200: ("Every problem with its line and column.", _ref("Validation"))},
        body=_ref("ManifestRequest"),
        body_types=_YAML_OR_JSON,
        summary="Validate a campaign manifest.",
    ),
    ("POST", "/api/campaigns/plan"): Operation(
        "admin",
        {200: ("The changes.", _ref("Plan")), 422: ("Invalid manifest: every problem.", _ref("Validation"))},
        body=_ref("ManifestRequest"),
        body_types=_YAML_OR_JSON,
        summary="Plan a manifest against the running configuration.",
    ),
    ("POST", "/api/campaigns/apply"): Operation(
        "admin",
        {
            200: ("Applied; servers reload within seconds.", _ref("Applied")),
            409: ("An address is owned elsewhere, or expected_version is stale.", _ref("Error")),
            422: ("Invalid manifest: every problem.", _ref("Validation")),
        },
        body=_ref("ManifestRequest"),
        body_types=_YAML_OR_JSON,
        summary="Apply a manifest transactionally and live.",
    ),
    ("GET", "/api/campaigns"): Operation(
        "supervisor",
        {200: ("The workspace's campaigns.", _ref("CampaignList"))},
        summary="List the campaigns.",
    ),
    ("GET", "/api/campaigns/{name}/export"): Operation(
        "admin",
        {200: ("The manifest's YAML.", {"type": "string"})},
        summary="Export a campaign as a manifest.",
        response_type="application/yaml",
    ),
    # -------------------------------------------------------------- dead letters (admin)
    ("GET", "/api/admin/dlq"): Operation(
        "admin",
        {200: ("The parked deliveries, oldest first per queue (no bodies).", _ref("DeadLetterList"))},
        query=(
            _DLQ_QUEUE,
            Param("limit", "At most this many.", {"type": "integer", "minimum": 1, "maximum": 1000}),
        ),
        description="The dead-letter queues are the engine's: an admin of any workspace reads them all.",
    ),
    ("GET", "/api/admin/dlq/{id}"): Operation(
        "admin",
        {200: ("The parked delivery with its headers and body.", _ref("DeadLetterDetail"))},
        query=(_DLQ_QUEUE,),
    ),
    ("POST", "/api/admin/dlq/{id}/replay"): Operation(
        "admin",
        {
            200: ("Published back to its queue (confirmed), then unparked.", _ref("DeadLetterReplay")),
            503: ("The broker is down or the queue is full: try again.", _ref("Error")),
        },
        query=(_DLQ_QUEUE,),
    ),
    # -------------------------------------------------------------- the agent's socket
    ("GET", "/ws/agent"): Operation(
        "agent",
        {
            101: ("Switching to the WebSocket protocol: JSON text frames (see the description).", None),
            503: ("The broker is down: try again.", _ref("Error")),
        },
        query=(
            Param("access_token", "The bearer token, for browsers (they cannot set headers on an upgrade)."),
        ),
        summary="The agent's live channel (WebSocket): offers, assignments, messages; presence and answers.",
        description=(
            "Server → agent frames are the router's "
            "pushes: offer, offer_withdrawn, assigned, unassigned, message, window_warning (router.wire). "
            'Agent → server: {"type": "presence", "presence": "available|away|offline|wrap_up", '
            '"until"?}, {"type": "offer_answer", "offer_id", "accepted"}, {"type": "ping"}.  A bad '
            'frame is answered with {"type": "error", "error": {...}}.  See docs/api.md.'
        ),
        authorization="A token of role agent that names an agent (other roles: 403).",
    ),
    # -------------------------------------------------------------- this document
    ("GET", "/api/openapi.json"): Operation(None, {200: ("This document.", ANY_OBJECT)}),
}


# ------------------------------------------------------------------------------------ building


@dataclass(frozen=True, slots=True)
class LiveRoute:
    method: str
    path: str
    handler: Any


def live_routes(app: web.Application) -> list[LiveRoute]:
    """Every (method, path) the application serves, sub-applications included, ``HEAD`` left out."""
    return sorted(_walk(app), key=lambda r: (r.path, r.method))


def _walk(app: web.Application) -> Iterator[LiveRoute]:
    for resource in app.router.resources():
        sub = getattr(resource, "_app", None)
        if isinstance(sub, web.Application):  # a mounted sub-application: its paths carry the prefix
            yield from _walk(sub)
            continue
        for route in resource:
            if route.method in ("HEAD", "*"):
                continue
            yield LiveRoute(route.method, resource.canonical, route.handler)


def _declared(route: LiveRoute) -> Operation | None:
    """The route's declaration: on its handler (``@documented``), else the legacy registry."""
    return operation_of(route.handler) or REGISTRY.get((route.method, route.path))


def undocumented_routes(app: web.Application) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in live_routes(app) if _declared(r) is None]


def stale_entries(app: web.Application) -> list[tuple[str, str]]:
    """Registry entries naming a route that is gone, or one whose handler declares itself."""
    live = {(r.method, r.path): r for r in live_routes(app)}
    return sorted(key for key in REGISTRY if key not in live or operation_of(live[key].handler) is not None)


def declared_operation(app: web.Application, method: str, path: str) -> Operation | None:
    for route in live_routes(app):
        if (route.method, route.path) == (method, path):
            return _declared(route)
    return None


def _summary(handler: Any, op: Operation | None) -> str:
    doc = inspect.getdoc(handler)
    if doc:
        return doc.strip().split("\n\n", 1)[0].replace("\n", " ")
    if op is not None and op.summary:
        return op.summary
    return str(getattr(handler, "__name__", "operation")).replace("_", " ").capitalize()


_ROLE_TEXT = {
    "agent": "Any token of the workspace (agent, supervisor or admin).",
    "supervisor": "A supervisor's or admin's token.",
    "admin": "An admin's token.",
}

_Mode = Literal["validation", "serialization"]


class _Models:
    """The models the operations name, turned into ``components.schemas`` in one pass."""

    def __init__(self) -> None:
        self.pairs: list[tuple[type[BaseModel], _Mode]] = []
        self.refs: dict[tuple[type[BaseModel], _Mode], Schema] = {}
        self.defs: dict[str, Schema] = {}

    def note(self, shape: Shape, mode: _Mode) -> None:
        if isinstance(shape, type) and issubclass(shape, BaseModel) and (shape, mode) not in self.pairs:
            self.pairs.append((shape, mode))

    def build(self) -> None:
        if not self.pairs:
            return
        refs, top = models_json_schema(self.pairs, ref_template="#/components/schemas/{model}")
        self.refs = {key: dict(value) for key, value in refs.items()}
        self.defs = dict(top.get("$defs", {}))

    def schema(self, shape: Shape, mode: _Mode) -> Schema | None:
        if shape is None:
            return None
        if isinstance(shape, dict):
            return shape
        return self.refs[(shape, mode)]


def _content(schema: Schema | None, types: tuple[str, ...]) -> dict[str, Any]:
    return {t: {"schema": schema if schema is not None else {}} for t in types}


def _operation(route: LiveRoute, op: Operation | None, used_ids: set[str], models: _Models) -> dict[str, Any]:
    module = str(getattr(route.handler, "__module__", "")).rsplit(".", 1)[-1]
    name = str(getattr(route.handler, "__name__", route.method.lower()))
    operation_id = f"{module}.{name}"
    while operation_id in used_ids:
        operation_id += "_"
    used_ids.add(operation_id)
    out: dict[str, Any] = {
        "operationId": operation_id,
        "summary": _summary(route.handler, op),
        "tags": [module],
    }
    params = [
        {
            "name": p,
            "in": "path",
            "required": True,
            "schema": UUID if p.endswith("_id") else {"type": "string"},
        }
        for p in _PARAM.findall(route.path)
    ]
    responses: dict[str, Any] = {}
    bearer = route.path.startswith("/api/") or route.path.startswith("/ws/")
    error = _content(models.schema(ErrorResponse, "serialization"), _JSON)
    if op is None:
        out["x-undocumented"] = True
        responses["default"] = {"description": "Not documented yet.", "content": _content(None, _JSON)}
    else:
        params += [p.to_dict() for p in op.query]
        if op.description:
            out["description"] = op.description
        for status, (text, shape) in op.responses.items():
            kind = op.response_type if 200 <= status < 300 else "application/json"
            responses[str(status)] = {"description": text}
            schema = models.schema(shape, "serialization")
            if schema is not None:
                responses[str(status)]["content"] = _content(schema, (kind,))
        for status, text in op.extra_errors.items():
            responses.setdefault(str(status), {"description": text, "content": error})
        if op.body is not None:
            out["requestBody"] = {
                "required": op.body_required,
                "content": _content(models.schema(op.body, "validation"), op.body_types),
            }
            responses.setdefault("408", {"description": "The body did not arrive in time.", "content": error})
            responses.setdefault("413", {"description": "The body is too large.", "content": error})
        if op.role is not None:
            out["x-role"] = op.role
            out["description"] = (
                out.get("description", "") + f"\n\nAuthorization: {op.authorization or _ROLE_TEXT[op.role]}"
            ).strip()
    if bearer and not (op is not None and op.role is None):
        responses.setdefault(
            "401", {"description": "No token, or an unknown or revoked one.", "content": error}
        )
        responses.setdefault(
            "403", {"description": "The token's role is not enough for this operation.", "content": error}
        )
        out["security"] = [{"bearer": []}]
    else:
        out["security"] = []
    if params and any(p["in"] == "path" for p in params):
        responses.setdefault("404", {"description": "No such id in the token's workspace.", "content": error})
    if op is not None and (op.body is not None or op.query):
        responses.setdefault("400", {"description": "Invalid input; field names it.", "content": error})
    responses.setdefault("500", {"description": "An unexpected failure; it was logged.", "content": error})
    responses.setdefault(
        "503",
        {
            "description": "The database or the broker is unavailable: retry after Retry-After.",
            "content": error,
        },
    )
    if params:
        out["parameters"] = params
    out["responses"] = dict(sorted(responses.items()))
    return out


def build_document(app: web.Application, *, server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app`` as it is routed now."""
    routes_now = live_routes(app)
    models = _Models()
    models.note(ErrorResponse, "serialization")
    for route in routes_now:
        op = _declared(route)
        if op is not None:
            models.note(op.body, "validation")
            for _text, shape in op.responses.values():
                models.note(shape, "serialization")
    models.build()
    paths: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for route in routes_now:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(
            route, _declared(route), used, models
        )
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Centralita",
            "version": "0.1.0",
            "summary": "Omnichannel contact-center routing engine.",
            "description": (
                "See docs/api.md for examples, roles, errors, pagination and the WebSocket protocol."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, **models.defs},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (centralita token issue); roles agent < supervisor < admin.",
                }
            },
        },
    }
    if server_url is not None:
        document["servers"] = [{"url": server_url}]
    return document


@routes.get("/api/openapi.json")
@documented(None, {200: ("This document.", {"type": "object"})})
async def openapi_document(request: web.Request) -> web.Response:
    """This API's OpenAPI 3.1 document (public: it holds no workspace data)."""
    return web.json_response(build_document(request.app))
