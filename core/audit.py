"""The audit trail as it is read: the audited access actions, one entry, and a query's filters.

Every audited action is one ``audit_log`` row.  The steps of a conversation's life are
``core.facts.WorkAction``; access to the product is ``AccessAction`` (below); identity changes
are ``identity.<merge|unmerge|link|block|unblock|reject>`` (``storage.identity_store``); campaign
applies ``campaign.apply``; a customer's export, erasure and legal hold ``customer.export``,
``customer.erase``, ``customer.legal_hold`` and ``customer.legal_hold_cleared``.

``parse_query`` turns the filters of ``GET /api/audit`` (and ``centralita audit``) into an
``AuditQuery``, refusing a malformed one with ``InvalidInput`` naming the filter.  An action
filter is an exact name (``offer.made``) or a prefix written with a final ``*`` (``offer.*``:
every action whose name starts with ``offer.``).

Pure: no clock, no I/O.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any, Final

from core.errors import InvalidInput

__all__ = [
    "AccessAction",
    "AuditEntry",
    "AuditQuery",
    "parse_query",
]


class AccessAction(StrEnum):
    """The audit trail's ``action`` for access to the product (sign-ins, sessions, tokens)."""

    SIGNED_IN = "sign_in.succeeded"  # agent_id; details: session (token id), how: password | invitation
    SIGN_IN_REFUSED = "sign_in.refused"  # details: email_sha256 (never the email), agent_id if known
    SESSION_ISSUED = "session.issued"  # subject: the session's token id; details: expires_at
    SESSION_REVOKED = "session.revoked"  # details: reason (sign_out | sign_out_everywhere | admin)
    TOKEN_ISSUED = "token.issued"  # subject: the token id; details: role, name, expires_at, replaces
    TOKEN_REVOKED = "token.revoked"  # details: before / after (revoked_at), replaced_by
    INVITATION_ISSUED = "invitation.issued"  # agent_id; details: invitation_id, expires_at
    INVITATION_USED = "invitation.used"  # agent_id; details: invitation_id


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the audit trail, as read back."""

    id: uuid.UUID
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    details: Mapping[str, Any]
    conversation_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None
    queue_id: uuid.UUID | None = None

    @property
    def actor_agent_id(self) -> uuid.UUID | None:
        """The agent behind ``actor`` (``agent:<id>``), if the actor is one."""
        kind, _, ident = self.actor.partition(":")
        if kind != "agent":
            return None
        try:
            return uuid.UUID(ident)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which audit entries: all filters given must hold.  ``since`` inclusive, ``until``
    exclusive; ``actions`` exact names, ``prefixes`` name prefixes (either matching is enough)."""

    conversation_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None  # the agent the entry is about, or the agent who acted
    actions: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


_ACTION: Final = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_PREFIX: Final = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.\*$")
MAX_ACTIONS: Final = 50


def _uuid(raw: str | None, name: str) -> uuid.UUID | None:
    if raw is None or raw == "":
        return None
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        raise InvalidInput(f"{name} must be a UUID", field=name) from None


def _time(raw: str | None, name: str) -> datetime | None:
    """An ISO 8601 time (a bare date is its midnight UTC; no offset is UTC).  A ``+`` of an
    offset that reached us unescaped in a query string (a space) is read as ``+``."""
    if raw is None or raw == "":
        return None
    text = raw.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        if "T" in text and " " in text:
            text = text.replace(" ", "+", 1)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 date or time", field=name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _actions(raw: Iterable[str], name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    exact: list[str] = []
    prefixes: list[str] = []
    for value in raw:
        for part in value.split(","):
            item = part.strip()
            if not item:
                continue
            if _PREFIX.match(item):
                prefixes.append(item[:-1])  # "offer.*" → "offer."
            elif _ACTION.match(item):
                exact.append(item)
            else:
                raise InvalidInput(
                    f"{name}: {item[:60]!r} is not an action name (e.g. offer.made) or a prefix (offer.*)",
                    field=name,
                )
    if len(exact) + len(prefixes) > MAX_ACTIONS:
        raise InvalidInput(f"{name}: at most {MAX_ACTIONS} actions", field=name)
    return tuple(dict.fromkeys(exact)), tuple(dict.fromkeys(prefixes))


def parse_query(
    *,
    conversation: str | None = None,
    customer: str | None = None,
    agent: str | None = None,
    action: Iterable[str] = (),
    since: str | None = None,
    until: str | None = None,
    names: Mapping[str, str] | None = None,
) -> AuditQuery:
    """The query these filters describe; ``InvalidInput`` naming the filter that is malformed
    (``names`` maps conversation, customer, agent, action, from, to to what the caller calls
    them: ``--from`` on the command line)."""
    called = {k: k for k in ("conversation", "customer", "agent", "action", "from", "to")}
    called.update(names or {})
    exact, prefixes = _actions(action, called["action"])
    start = _time(since, called["from"])
    end = _time(until, called["to"])
    if start is not None and end is not None and end <= start:
        raise InvalidInput(f"{called['to']} must be after {called['from']}", field=called["to"])
    return AuditQuery(
        conversation_id=_uuid(conversation, called["conversation"]),
        customer_id=_uuid(customer, called["customer"]),
        agent_id=_uuid(agent, called["agent"]),
        actions=exact,
        prefixes=prefixes,
        since=start,
        until=end,
    )
