"""Erasing one person, and the legal hold that forbids it.

``ErasureStore.erase`` runs in the caller's transaction (``erase_customer`` opens it and tries
again on a deadlock or serialization failure).  The person is the live customer an id stands for
and every customer merged into it, at any depth.  What it does, in this order:

1. **Refuses** (nothing written) when a record of the person has a ``legal_hold``
   (``LegalHoldActive``), when one of the person's conversations is open (``ConversationOpen``:
   a live conversation would go on collecting the person's messages, and a queued one would be
   offered to an agent — close it first), or when a reply to the person is being sent right now
   (``ReplyInFlight``).  The customer rows are locked first, by id, then the conversations, by
   id (both ``FOR NO KEY UPDATE``): the order in which the identity store bumps customers and then
   locks the conversations it moves, so an erasure and a merge never wait on each other in a
   cycle.  A plain ``FOR UPDATE`` on the customers would also block the key-share lock a
   pipeline transaction takes on them when it writes a message row a second time (a reply's
   ``delivered`` then ``read`` status): that transaction holds the reply the erasure is about to
   scrub, a cycle.  Replies still ``queued`` for the person become ``failed`` (``customer_erased``).
2. **Identifiers become tokens**: every identifier key of the person, and every key the person
   only *stated* (the far end of a suggestion that no identifier row holds: an email written in
   a message), is replaced by ``erased:<32 random hex digits>`` — in ``identifier`` (``key`` and
   ``value``; the kind stays), ``evidence``, ``suggestion``, ``identity_block`` and the audit
   details.  Nothing derives the token from the address, so it cannot be reversed, and identity
   resolution, which matches by key, never finds the person again: the same phone writing later
   is a new customer.  Display names go (``customer.display_name``, ``identifier.display_name``
   and ``display_names``, the ``identifier_name`` index); evidence and suggestion references
   (provider message ids, which may encode the address) go.
3. **Messages** of the person — their customer ids, their conversations (so agents' replies and
   notes written about them), their identifiers — keep their rows (direction, kind, channel,
   times, delivery state, conversation: the counts reports make) and lose ``text``, ``payload``
   (captions, quoted text, template parameters, attachments and their URLs, the sender's
   address and name as delivered: all replaced by ``{"erased": true}``) and the provider's id
   (``erased:<row id>``; replies too, so a late delivery status cannot write one back).  A
   reply's error keeps its shape with the person's values replaced.
4. **Raw deliveries** go: every one a message of the person points at, and every one of the
   workspace whose body or headers contain one of the person's addresses (phones in E.164 and as
   WhatsApp ids, emails case-insensitively, channel ids), such as a batch shared with other
   people or a delivery status.  A body cannot be edited without breaking what it is (the
   signed bytes), so the whole row is deleted; other people's messages from the same batch keep
   their rows and lose only the pointer (``raw_delivery_id``).  Raw rows no workspace claimed
   (an unknown channel account) are not searched.
5. **Conversations** keep their rows, statuses, queue, agent and times; their disposition keeps
   its code, label, who closed it and the merge it records, and loses what was typed
   (``note``, ``amount``, ``date``) and its follow-up, which is cancelled (``follow_up_at``).
   Their report rows (``conversation_report``) keep the figures and lose the same: the first
   message's words, the survey's comment, the promised amount and date, the amount a CRM said
   was paid (``paid_amount``; ``promise_outcome`` stays).  Other people's report
   rows lose the person's addresses from their first message and comment, as their messages do.
6. **Audit**: every audit row of the workspace that involves the person (the identity audit
   index, its subject, or details that contain one of the person's values) has those values
   replaced (keys by their tokens, anything else by ``[erased]``; evidence references dropped;
   a close's disposition as on the conversation; a survey answer's comment dropped; a CRM's
   promise mark loses its amounts and dates, a label change its labels); the rows
   stay.  The erasure itself is recorded (``customer.erase``: who, when, the reason with
   the person's values replaced, the customer ids, the counts).  ``customer.erased_at`` is set
   on every record of the person (the first erasure's time is kept), their CRM labels cleared
   and their versions bumped, so
   an identity change decided on the old rows is decided again.

Erasing an erased customer again is allowed: it scrubs whatever reached the record since (a
message the pipeline resolved to the old identifier just before the erasure committed).
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from core.crm import CrmAction
from core.errors import Conflict, DatabaseConflict, NotFound
from core.facts import WorkAction
from core.ids import CustomerId, WorkspaceId, new_id
from core.logging import get_logger
from core.states import ConversationStatus, DeliveryState, MessageDirection
from storage.database import Database
from storage.media import MediaRows
from storage.tables import (
    AuditRow,
    ConversationReportRow,
    ConversationRow,
    CustomerRow,
    EvidenceRow,
    IdentifierNameRow,
    IdentifierRow,
    IdentityAuditCustomerRow,
    IdentityBlockRow,
    MessageRow,
    RawDeliveryRow,
    SuggestionRow,
)

__all__ = [
    "ERASED_PAYLOAD",
    "ERASED_PREFIX",
    "ERASED_TEXT",
    "ConversationOpen",
    "ErasureCounts",
    "ErasureResult",
    "ErasureStore",
    "LegalHoldActive",
    "LegalHoldResult",
    "ReplyInFlight",
    "erase_customer",
]

log = get_logger("centralita.erasure")

CUST = CustomerRow.__table__  # type: ignore[attr-defined]
IDENT = IdentifierRow.__table__  # type: ignore[attr-defined]
NAMES = IdentifierNameRow.__table__  # type: ignore[attr-defined]
EVID = EvidenceRow.__table__  # type: ignore[attr-defined]
SUGG = SuggestionRow.__table__  # type: ignore[attr-defined]
BLOCK = IdentityBlockRow.__table__  # type: ignore[attr-defined]
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
AUDCUST = IdentityAuditCustomerRow.__table__  # type: ignore[attr-defined]
CONV = ConversationRow.__table__  # type: ignore[attr-defined]
REPORT = ConversationReportRow.__table__  # type: ignore[attr-defined]
MSG = MessageRow.__table__  # type: ignore[attr-defined]
RAW = RawDeliveryRow.__table__  # type: ignore[attr-defined]

ERASED_PREFIX = "erased:"
ERASED_TEXT = "[erased]"
ERASED_PAYLOAD: dict[str, Any] = {"erased": True}
ERASE_ACTION = "customer.erase"
HOLD_ACTION = "customer.legal_hold"
RELEASE_ACTION = "customer.legal_hold_cleared"
QUEUED_CANCELLED = {"code": "customer_erased", "message": "the customer's data was erased before it was sent"}
# What a disposition keeps: the wrap-up code and its label, who closed, a merge's bookkeeping.
_DISPOSITION_KEEPS = ("code", "label", "closed_by", "into", "previous_status")
_RAW_NEEDLE_MIN = 6  # shorter values would match unrelated bodies
_DIGITS_MIN = 11  # a digits-only form shorter than this (a national number) matches timestamps and ids
_NAME_MIN = 4
_MAX_MERGE_DEPTH = 64
_ATTEMPTS = 4
_CHUNK = 500


# ------------------------------------------------------------------------------------ refusals


class LegalHoldActive(Conflict):
    """A record of the person is under legal hold: nothing is erased (HTTP 409)."""

    code = "legal_hold"


class ConversationOpen(Conflict):
    """One of the person's conversations is open (offered, assigned, waiting, triage): close it
    first (HTTP 409)."""

    code = "conversation_open"


class ReplyInFlight(Conflict):
    """A reply to the person is being sent right now; try again once it settles (HTTP 409)."""

    code = "reply_sending"


# ------------------------------------------------------------------------------------ results


@dataclass(frozen=True, slots=True)
class ErasureCounts:
    """What one erasure changed (no personal data: numbers only)."""

    customers: int = 0  # records of the person (the survivor and every one merged into it)
    identifiers: int = 0  # identifier rows replaced by tokens
    stated_identifiers: int = 0  # addresses the person only stated (suggestions), tokens too
    names: int = 0  # display names removed (customer records, identifiers, the name index)
    messages: int = 0  # timeline rows scrubbed (inbound, replies, notes, system notices)
    texts: int = 0  # of those, rows that had a text
    attachments: int = 0  # attachment entries (metadata, URLs) removed with the payloads
    media: int = 0  # media files kept of the person, erased (their files deleted by the media worker)
    replies_cancelled: int = 0  # queued replies that became failed
    raw_deliveries: int = 0  # raw webhook bodies deleted
    other_messages_unlinked: int = 0  # other people's messages that lost the pointer to a deleted raw body
    other_messages_scrubbed: int = 0  # other people's messages that wrote one of the person's addresses
    conversations: int = 0  # conversation rows kept (their dispositions scrubbed)
    follow_ups_cancelled: int = 0
    evidence: int = 0
    suggestions: int = 0
    blocks: int = 0
    audit_entries: int = 0  # audit rows whose details held the person's values

    def as_dict(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class ErasureResult:
    customer_id: CustomerId  # the live record the id stood for
    requested_id: uuid.UUID
    customers: tuple[CustomerId, ...]
    erased_at: datetime
    audit_id: uuid.UUID
    counts: ErasureCounts


@dataclass(frozen=True, slots=True)
class LegalHoldResult:
    customer_id: CustomerId
    requested_id: uuid.UUID
    legal_hold: str | None
    audit_id: uuid.UUID


# ------------------------------------------------------------------------------------ SQL helpers


class _bytes_as_text(FunctionElement[str]):
    """A ``bytea`` / ``BLOB`` column read as lower-cased text, for a case-insensitive search of
    ASCII needles (PostgreSQL: ``encode(…, 'escape')`` keeps ASCII and escapes the rest)."""

    type = sa.Text()
    inherit_cache = True
    name = "bytes_as_text"


@compiles(_bytes_as_text)
def _bytes_as_text_default(element: Any, compiler: Any, **kw: Any) -> str:
    return f"lower(CAST({compiler.process(element.clauses, **kw)} AS TEXT))"


@compiles(_bytes_as_text, "postgresql")
def _bytes_as_text_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return f"lower(encode({compiler.process(element.clauses, **kw)}, 'escape'))"


class _bytes_contain(FunctionElement[bool]):
    """``body`` holds the bytes ``needle`` (exact bytes: for needles without letters, such as
    phone digits, a plain byte search instead of decoding every body)."""

    type = sa.Boolean()
    inherit_cache = True
    name = "bytes_contain"


@compiles(_bytes_contain)
def _bytes_contain_default(element: Any, compiler: Any, **kw: Any) -> str:
    body, needle = (compiler.process(c, **kw) for c in element.clauses)
    return f"(instr({body}, {needle}) > 0)"


@compiles(_bytes_contain, "postgresql")
def _bytes_contain_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    body, needle = (compiler.process(c, **kw) for c in element.clauses)
    return f"(position({needle} in {body}) > 0)"


def _in_body(body: sa.Column[Any], needle: str) -> sa.ColumnElement[bool]:
    if any(ch.isalpha() for ch in needle):
        return _bytes_as_text(body).contains(needle, autoescape=True)
    return _bytes_contain(body, sa.literal(needle.encode(), sa.LargeBinary))


def _json_text(column: sa.Column[Any]) -> sa.ColumnElement[str]:
    return sa.func.lower(sa.cast(column, sa.Text))


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _rowcount(result: Any) -> int:
    return max(int(getattr(result, "rowcount", 0) or 0), 0)


def _token() -> str:
    return f"{ERASED_PREFIX}{secrets.token_hex(16)}"


# ------------------------------------------------------------------------------------ what to look for


@dataclass(frozen=True, slots=True)
class _Person:
    """The person's values, as found before any is replaced."""

    tokens: Mapping[str, str]  # identifier key → its token
    values: frozenset[str]  # addresses as shown (E.164, emails, channel ids) and their other forms
    names: frozenset[str]

    def raw_needles(self) -> list[str]:
        """What a raw body of the person contains: ASCII addresses, lower-cased."""
        found = set()
        for value in self.values:
            v = value.lower()
            if not v.isascii() or len(v) < _RAW_NEEDLE_MIN:
                continue
            if v.lstrip("+").isdigit() and len(v.lstrip("+")) < _DIGITS_MIN:
                continue
            found.add(v)
        return sorted(found, key=lambda n: (-len(n), n))

    def text_needles(self) -> list[str]:
        """What a stored text or JSON value may hold: the keys, the addresses, the names."""
        found = {k for k in self.tokens}
        found |= {v for v in self.values if len(v) >= _NAME_MIN}
        found |= {n for n in self.names if len(n) >= _NAME_MIN}
        return sorted(found, key=lambda n: (-len(n), n))

    def search_needles(self) -> list[str]:
        """What finds a row holding the person's values (``LIKE``): long enough to mean them, in
        the text as stored and as JSON escapes it (SQLite keeps ``\\u00e9``)."""
        found: set[str] = set()
        for needle in self.text_needles():
            if len(needle) < _RAW_NEEDLE_MIN:
                continue
            found.add(needle.lower())
            found.add(json.dumps(needle)[1:-1].lower())
        return sorted(found)


def _address_forms(kind: str, value: str, key: str) -> set[str]:
    """The forms an address takes in stored text: as shown, the key's value, digits only."""
    forms = {value, key}
    tail = key.partition(":")[2]
    if kind == "phone":
        forms.add(tail)
        for phone in (value, tail):
            digits = re.sub(r"\D", "", phone)
            if digits:
                forms |= {digits, f"+{digits}"}
    elif kind == "email":
        forms.add(tail)
    elif tail:
        forms.add(tail.rpartition(":")[2])  # a channel-scoped id without its account
    return {f for f in forms if f}


class _Scrubber:
    """Replaces the person's values in strings and JSON documents: a whole string that is one of
    the person's keys becomes its token, any other occurrence of a value becomes ``[erased]``."""

    def __init__(self, person: _Person):
        self.tokens = person.tokens
        needles = person.text_needles()
        self.pattern = re.compile("|".join(re.escape(n) for n in needles), re.IGNORECASE) if needles else None

    def text(self, value: str) -> str:
        if value in self.tokens:
            return self.tokens[value]
        if self.pattern is None:
            return value
        return self.pattern.sub(ERASED_TEXT, value)

    def document(self, value: Any, *, drop: frozenset[str] = frozenset()) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {str(k): (None if k in drop else self.document(v, drop=drop)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.document(v, drop=drop) for v in value]
        return value


def _count_attachments(payload: Any) -> int:
    if not isinstance(payload, Mapping):
        return 0
    found = payload.get("attachments")
    return len(found) if isinstance(found, list) else 0


# Audit actions whose details carry a customer's free text (the survey's comment).
_SURVEY_TEXTS: Final = frozenset({WorkAction.SURVEY_ANSWERED, WorkAction.SURVEY_COMMENTED})
# What a CRM told about the person (core.crm): the amounts and dates of a promise's mark, the labels.
_PROMISE_FIGURES: Final = frozenset({"paid_amount", "paid_at", "promised_amount", "promised_date"})
_CRM_FIGURES: Final[Mapping[str, frozenset[str]]] = {
    WorkAction.PROMISE_KEPT: _PROMISE_FIGURES,
    WorkAction.PROMISE_BROKEN: _PROMISE_FIGURES,
    CrmAction.LABEL_ADDED: frozenset({"label", "labels"}),
    CrmAction.LABEL_REMOVED: frozenset({"label", "labels"}),
}


def _kept_disposition(disposition: Any) -> dict[str, Any] | None:
    if not isinstance(disposition, Mapping):
        return None
    return {k: disposition[k] for k in _DISPOSITION_KEEPS if k in disposition}


# ------------------------------------------------------------------------------------ the store


class ErasureStore:
    """Erasure and legal holds in the caller's session (and transaction)."""

    def __init__(self, session: AsyncSession):
        self.session = session

    # ------------------------------------------------------------------ the person

    async def live_customer(self, ws: WorkspaceId, customer_id: uuid.UUID) -> Any:
        """The customer row an id stands for now (itself or its survivor); ``NotFound`` outside
        the workspace."""
        current = customer_id
        for _ in range(_MAX_MERGE_DEPTH):
            row = (
                await self.session.execute(
                    sa.select(CUST).where(CUST.c.workspace_id == ws, CUST.c.id == current)
                )
            ).first()
            if row is None:
                break
            if row.merged_into is None:
                return row
            current = row.merged_into
        raise NotFound("no such customer", field="customer_id")

    async def records_of(self, ws: WorkspaceId, live: uuid.UUID) -> list[uuid.UUID]:
        """The live record and every record merged into it, at any depth."""
        found = [live]
        frontier = [live]
        for _ in range(_MAX_MERGE_DEPTH):
            merged: list[uuid.UUID] = []
            for chunk in _chunks(frontier):
                merged += [
                    c
                    for (c,) in await self.session.execute(
                        sa.select(CUST.c.id).where(CUST.c.workspace_id == ws, CUST.c.merged_into.in_(chunk))
                    )
                ]
            merged = [c for c in merged if c not in found]
            if not merged:
                break
            found += merged
            frontier = merged
        return sorted(found)

    # ------------------------------------------------------------------ legal hold

    async def set_legal_hold(
        self, ws: WorkspaceId, customer_id: uuid.UUID, reason: str, *, actor: str, now: datetime
    ) -> LegalHoldResult:
        live = await self.live_customer(ws, customer_id)
        if live.erased_at is not None:
            raise Conflict("the customer was erased; there is nothing left to hold", field="customer_id")
        await self.session.execute(sa.update(CUST).where(CUST.c.id == live.id).values(legal_hold=reason))
        audit_id = await self._audit(
            ws,
            actor,
            HOLD_ACTION,
            live.id,
            now,
            {"reason": reason, "previous": live.legal_hold, "requested_id": str(customer_id)},
        )
        log.info("customer_legal_hold_set", workspace_id=str(ws), customer_id=str(live.id), actor=actor)
        return LegalHoldResult(CustomerId(live.id), customer_id, reason, audit_id)

    async def clear_legal_hold(
        self, ws: WorkspaceId, customer_id: uuid.UUID, *, actor: str, now: datetime
    ) -> LegalHoldResult:
        live = await self.live_customer(ws, customer_id)
        if live.legal_hold is None:
            raise NotFound("this customer has no legal hold", field="customer_id")
        await self.session.execute(sa.update(CUST).where(CUST.c.id == live.id).values(legal_hold=None))
        audit_id = await self._audit(
            ws,
            actor,
            RELEASE_ACTION,
            live.id,
            now,
            {"previous": live.legal_hold, "requested_id": str(customer_id)},
        )
        log.info("customer_legal_hold_cleared", workspace_id=str(ws), customer_id=str(live.id), actor=actor)
        return LegalHoldResult(CustomerId(live.id), customer_id, None, audit_id)

    # ------------------------------------------------------------------ erasure

    async def erase(
        self, ws: WorkspaceId, customer_id: uuid.UUID, reason: str, *, actor: str, now: datetime
    ) -> ErasureResult:
        s = self.session
        live = await self.live_customer(ws, customer_id)
        people = await self.records_of(ws, live.id)

        # 1. refusals, under the locks: customers by id, then their conversations by id
        held = (
            await s.execute(
                sa.select(CUST.c.id, CUST.c.legal_hold)
                .where(CUST.c.workspace_id == ws, CUST.c.id.in_(people))
                .order_by(CUST.c.id)
                .with_for_update(key_share=True)  # FOR NO KEY UPDATE: see the module's step 1
            )
        ).all()
        holds = [(c, h) for c, h in held if h is not None]
        if holds:
            cid, hold = holds[0]
            raise LegalHoldActive(
                f"the customer is under legal hold ({hold}); clear the hold before erasing",
                field="customer_id",
                details={"customer_id": str(cid), "legal_hold": hold},
            )
        conversations = (
            await s.execute(
                sa.select(CONV.c.id, CONV.c.status, CONV.c.disposition, CONV.c.follow_up_at)
                .where(CONV.c.workspace_id == ws, CONV.c.customer_id.in_(people))
                .order_by(CONV.c.id)
                .with_for_update(key_share=True)
            )
        ).all()
        open_ = [(c.id, c.status) for c in conversations if c.status != ConversationStatus.CLOSED]
        if open_:
            listed = ", ".join(f"{cid} ({status})" for cid, status in open_)
            raise ConversationOpen(
                f"close the customer's open conversations first: {listed}",
                field="customer_id",
                details={"conversations": [{"id": str(cid), "status": str(st)} for cid, st in open_]},
            )
        conversation_ids = [c.id for c in conversations]
        identifiers = (
            await s.execute(
                sa.select(
                    IDENT.c.id,
                    IDENT.c.kind,
                    IDENT.c.key,
                    IDENT.c.value,
                    IDENT.c.display_name,
                    IDENT.c.display_names,
                ).where(IDENT.c.workspace_id == ws, IDENT.c.customer_id.in_(people))
            )
        ).all()
        identifier_ids = [r.id for r in identifiers]
        mine = sa.and_(
            MSG.c.workspace_id == ws,
            sa.or_(
                MSG.c.customer_id.in_(people),
                MSG.c.conversation_id.in_(
                    sa.select(CONV.c.id).where(CONV.c.workspace_id == ws, CONV.c.customer_id.in_(people))
                ),
                MSG.c.identifier_id.in_(
                    sa.select(IDENT.c.id).where(IDENT.c.workspace_id == ws, IDENT.c.customer_id.in_(people))
                ),
            ),
        )
        cancelled = _rowcount(
            await s.execute(
                sa.update(MSG)
                .where(
                    mine,
                    MSG.c.direction == MessageDirection.OUT,
                    MSG.c.delivery_state == DeliveryState.QUEUED,
                )
                .values(delivery_state=DeliveryState.FAILED.value, due_at=None, error=QUEUED_CANCELLED)
            )
        )
        sending = (
            await s.execute(
                sa.select(sa.func.count())
                .select_from(MSG)
                .where(
                    mine,
                    MSG.c.direction == MessageDirection.OUT,
                    MSG.c.delivery_state == DeliveryState.SENDING,
                )
            )
        ).scalar_one()
        if sending:
            raise ReplyInFlight(
                "a reply to this customer is being sent right now; try again in a minute",
                field="customer_id",
                details={"sending": int(sending)},
            )

        # 2. what the person's values are
        keys = {r.key for r in identifiers}
        values: set[str] = set()
        names: set[str] = {live.display_name} if live.display_name else set()
        for r in identifiers:
            values |= _address_forms(r.kind, r.value, r.key)
            names |= {n for n in (r.display_name, *(r.display_names or ())) if n}
        names |= {
            n
            for (n,) in await s.execute(
                sa.select(CUST.c.display_name).where(CUST.c.id.in_(people), CUST.c.display_name.is_not(None))
            )
        }
        suggestions = await self._touching(SUGG, ws, sorted(keys))
        far_ends = {
            (end_key, end_kind, end_value)
            for row in suggestions
            for end_key, end_kind, end_value in (
                (row.a_key, row.a_kind, row.a_value),
                (row.b_key, row.b_kind, row.b_value),
            )
            if end_key not in keys
        }
        held_elsewhere: set[str] = set()
        wanted = sorted({k for k, _, _ in far_ends})
        for chunk in _chunks(wanted):
            held_elsewhere |= {
                k
                for (k,) in await s.execute(
                    sa.select(IDENT.c.key).where(IDENT.c.workspace_id == ws, IDENT.c.key.in_(chunk))
                )
            }
        stated = {(k, kind, v) for k, kind, v in far_ends if k not in held_elsewhere}
        for k, kind, v in stated:
            values |= _address_forms(kind, v, k)
        tokens = {k: _token() for k in sorted(keys | {k for k, _, _ in stated})}
        seen = {x.id for x in suggestions}
        suggestions += [  # someone else stated the same address
            x for x in await self._touching(SUGG, ws, sorted(k for k, _, _ in stated)) if x.id not in seen
        ]
        person = _Person(tokens=tokens, values=frozenset(values), names=frozenset(names))
        scrub = _Scrubber(person)
        addresses = _Scrubber(_Person(tokens=tokens, values=person.values, names=frozenset()))

        # 3. messages
        rows = (
            await s.execute(sa.select(MSG.c.id, MSG.c.text, MSG.c.payload, MSG.c.error).where(mine))
        ).all()
        texts = sum(1 for r in rows if r.text)
        attachments = sum(_count_attachments(r.payload) for r in rows)
        errors = [{"mid": r.id, "err": scrub.document(r.error)} for r in rows if r.error]
        raw_ids = await self._raw_ids(ws, mine, person.raw_needles())
        messages = _rowcount(
            await s.execute(
                sa.update(MSG)
                .where(mine)
                .values(
                    text=None,
                    payload=ERASED_PAYLOAD,
                    raw_delivery_id=None,
                    external_id=sa.case(
                        (
                            sa.or_(MSG.c.external_id.is_not(None), MSG.c.direction == MessageDirection.OUT),
                            sa.literal(ERASED_PREFIX) + sa.cast(MSG.c.id, sa.String),
                        ),
                        else_=sa.null(),
                    ),
                )
            )
        )
        if errors:
            await s.execute(
                sa.update(MSG)
                .where(MSG.c.id == sa.bindparam("mid"))
                .values(error=sa.bindparam("err", type_=MSG.c.error.type)),
                errors,
            )

        mentions = await self._mentions(ws, mine, person.raw_needles())
        if mentions:
            await s.execute(
                sa.update(MSG)
                .where(MSG.c.id == sa.bindparam("mid"))
                .values(text=sa.bindparam("txt"), payload=sa.bindparam("pl", type_=MSG.c.payload.type)),
                [
                    {
                        "mid": r.id,
                        "txt": addresses.text(r.text) if r.text else r.text,
                        "pl": addresses.document(r.payload),
                    }
                    for r in mentions
                ],
            )

        await self._report_mentions(ws, conversation_ids, person.raw_needles(), addresses)

        # 4. raw deliveries
        unlinked = 0
        for chunk in _chunks(raw_ids):
            unlinked += _rowcount(
                await s.execute(
                    sa.update(MSG).where(MSG.c.raw_delivery_id.in_(chunk)).values(raw_delivery_id=None)
                )
            )
            await s.execute(sa.delete(RAW).where(RAW.c.id.in_(chunk)))

        # 5. conversations
        follow_ups = sum(1 for c in conversations if c.follow_up_at is not None)
        kept = [
            {"cid": c.id, "disp": _kept_disposition(c.disposition)}
            for c in conversations
            if c.disposition is not None
        ]
        if kept:
            await s.execute(
                sa.update(CONV)
                .where(CONV.c.id == sa.bindparam("cid"))
                .values(disposition=sa.bindparam("disp", type_=CONV.c.disposition.type)),
                kept,
            )
        if follow_ups:
            await s.execute(
                sa.update(CONV)
                .where(CONV.c.id.in_(conversation_ids), CONV.c.follow_up_at.is_not(None))
                .values(follow_up_at=None)
            )
        if conversation_ids:  # the report rows keep the figures, not the customer's words
            await s.execute(
                sa.update(REPORT)
                .where(REPORT.c.conversation_id.in_(conversation_ids))
                .values(
                    first_text=None,
                    survey_comment=None,
                    disposition_amount=None,
                    disposition_date=None,
                    paid_amount=None,
                )
            )

        # 6. identity: identifiers, the name index, evidence, suggestions, blocks, customers
        name_count = sum(1 for r in identifiers if r.display_name or r.display_names)
        if identifier_ids:
            by_key = sa.case(tokens, value=IDENT.c.key, else_=IDENT.c.key)
            await s.execute(
                sa.update(IDENT)
                .where(IDENT.c.workspace_id == ws, IDENT.c.id.in_(identifier_ids))
                .values(
                    key=by_key,
                    value=sa.case(tokens, value=IDENT.c.key, else_=IDENT.c.value),
                    display_name=None,
                    display_names=[],
                )
            )
        mapped = sorted(tokens)
        for chunk in _chunks(mapped):
            name_count += _rowcount(
                await s.execute(sa.delete(NAMES).where(NAMES.c.workspace_id == ws, NAMES.c.key.in_(chunk)))
            )
        edges = await self._touching(EVID, ws, mapped)
        if edges:
            await s.execute(
                sa.update(EVID)
                .where(EVID.c.id == sa.bindparam("eid"))
                .values(a_key=sa.bindparam("a"), b_key=sa.bindparam("b"), reference=None),
                [
                    dict(
                        zip(
                            ("a", "b"),
                            sorted((tokens.get(e.a_key, e.a_key), tokens.get(e.b_key, e.b_key))),
                            strict=True,
                        )
                    )
                    | {"eid": e.id}
                    for e in edges
                ],
            )
        if suggestions:
            updates = []
            for x in suggestions:
                a, b = tokens.get(x.a_key, x.a_key), tokens.get(x.b_key, x.b_key)
                lo, hi = sorted((a, b))
                updates.append(
                    {
                        "sid": x.id,
                        "a": a,
                        "av": a if x.a_key in tokens else x.a_value,
                        "b": b,
                        "bv": b if x.b_key in tokens else x.b_value,
                        "lo": lo,
                        "hi": hi,
                    }
                )
            await s.execute(
                sa.update(SUGG)
                .where(SUGG.c.id == sa.bindparam("sid"))
                .values(
                    a_key=sa.bindparam("a"),
                    a_value=sa.bindparam("av"),
                    b_key=sa.bindparam("b"),
                    b_value=sa.bindparam("bv"),
                    lo_key=sa.bindparam("lo"),
                    hi_key=sa.bindparam("hi"),
                    reference=None,
                ),
                updates,
            )
        blocks = 0
        for chunk in _chunks(mapped):
            blocks += _rowcount(
                await s.execute(
                    sa.update(BLOCK)
                    .where(BLOCK.c.workspace_id == ws, BLOCK.c.key.in_(chunk))
                    .values(key=sa.case(tokens, value=BLOCK.c.key, else_=BLOCK.c.key), detail="")
                )
            )
        name_count += _rowcount(
            await s.execute(
                sa.update(CUST)
                .where(CUST.c.id.in_(people), CUST.c.display_name.is_not(None))
                .values(display_name=None)
            )
        )
        await s.execute(
            sa.update(CUST)
            .where(CUST.c.id.in_(people))
            .values(
                erased_at=sa.func.coalesce(CUST.c.erased_at, now), version=CUST.c.version + 1, labels=None
            )
        )

        # 7. the media kept of the person: no longer served, the files deleted by the media worker
        media = await MediaRows(s).erase_of_customers(people)

        # 8. the audit trail
        audited = await self._scrub_audit(ws, people, conversation_ids, person, scrub)
        counts = ErasureCounts(
            customers=len(people),
            identifiers=len(identifiers),
            stated_identifiers=len(stated),
            names=name_count,
            messages=messages,
            texts=texts,
            attachments=attachments,
            media=media,
            replies_cancelled=cancelled,
            raw_deliveries=len(raw_ids),
            other_messages_unlinked=unlinked,
            other_messages_scrubbed=len(mentions),
            conversations=len(conversations),
            follow_ups_cancelled=follow_ups,
            evidence=len(edges),
            suggestions=len(suggestions),
            blocks=blocks,
            audit_entries=audited,
        )
        erased_at = live.erased_at or now
        audit_id = await self._audit(
            ws,
            actor,
            ERASE_ACTION,
            live.id,
            now,
            {
                "reason": scrub.text(reason),
                "requested_id": str(customer_id),
                "customers": [str(c) for c in people],
                "counts": counts.as_dict(),
            },
        )
        log.info(
            "customer_erased",
            workspace_id=str(ws),
            customer_id=str(live.id),
            actor=actor,
            audit_id=str(audit_id),
            **counts.as_dict(),
        )
        return ErasureResult(
            customer_id=CustomerId(live.id),
            requested_id=customer_id,
            customers=tuple(CustomerId(c) for c in people),
            erased_at=erased_at,
            audit_id=audit_id,
            counts=counts,
        )

    # ------------------------------------------------------------------ helpers

    async def _touching(self, table: sa.Table, ws: WorkspaceId, keys: Sequence[str]) -> list[Any]:
        """Rows of ``evidence`` or ``suggestion`` with an end among ``keys``."""
        found: dict[uuid.UUID, Any] = {}
        for column in (table.c.a_key, table.c.b_key):
            for chunk in _chunks(keys):
                for row in await self.session.execute(
                    sa.select(table).where(table.c.workspace_id == ws, column.in_(chunk))
                ):
                    found[row.id] = row
        return sorted(found.values(), key=lambda r: r.id)

    async def _raw_ids(
        self, ws: WorkspaceId, mine: sa.ColumnElement[bool], needles: Sequence[str]
    ) -> list[uuid.UUID]:
        """The raw deliveries to delete: those the person's messages point at, and those of the
        workspace whose body or headers contain one of the person's addresses."""
        linked = sa.select(MSG.c.raw_delivery_id).where(mine, MSG.c.raw_delivery_id.is_not(None))
        found = {r for (r,) in await self.session.execute(sa.select(RAW.c.id).where(RAW.c.id.in_(linked)))}
        if needles:
            holds = sa.or_(
                *(_in_body(RAW.c.body, n) for n in needles),
                *(_json_text(RAW.c.headers).contains(n, autoescape=True) for n in needles),
            )
            found |= {
                r
                for (r,) in await self.session.execute(
                    sa.select(RAW.c.id).where(RAW.c.workspace_id == ws, holds)
                )
            }
        return sorted(found)

    async def _mentions(
        self, ws: WorkspaceId, mine: sa.ColumnElement[bool], needles: Sequence[str]
    ) -> list[Any]:
        """Other people's messages whose text or payload holds one of the person's addresses (a
        customer who wrote someone else's email): they keep their rows, the address goes."""
        if not needles:
            return []
        holds = sa.or_(
            *(sa.func.lower(MSG.c.text).contains(n, autoescape=True) for n in needles),
            *(_json_text(MSG.c.payload).contains(n, autoescape=True) for n in needles),
        )
        query = sa.select(MSG.c.id, MSG.c.text, MSG.c.payload).where(MSG.c.workspace_id == ws, ~mine, holds)
        return list((await self.session.execute(query)).all())

    async def _report_mentions(
        self,
        ws: WorkspaceId,
        conversation_ids: Sequence[uuid.UUID],
        needles: Sequence[str],
        addresses: _Scrubber,
    ) -> None:
        """Other people's report rows whose first message or survey comment holds one of the
        person's addresses: the address goes, as from their messages."""
        if not needles:
            return
        holds = sa.or_(
            *(sa.func.lower(REPORT.c.first_text).contains(n, autoescape=True) for n in needles),
            *(sa.func.lower(REPORT.c.survey_comment).contains(n, autoescape=True) for n in needles),
        )
        query = sa.select(REPORT.c.conversation_id, REPORT.c.first_text, REPORT.c.survey_comment).where(
            REPORT.c.workspace_id == ws, holds
        )
        if conversation_ids:
            query = query.where(REPORT.c.conversation_id.not_in(conversation_ids))
        rows = (await self.session.execute(query)).all()
        if rows:
            await self.session.execute(
                sa.update(REPORT)
                .where(REPORT.c.conversation_id == sa.bindparam("rid"))
                .values(first_text=sa.bindparam("ft"), survey_comment=sa.bindparam("sc")),
                [
                    {
                        "rid": r.conversation_id,
                        "ft": addresses.text(r.first_text) if r.first_text else r.first_text,
                        "sc": addresses.text(r.survey_comment) if r.survey_comment else r.survey_comment,
                    }
                    for r in rows
                ],
            )

    async def _scrub_audit(
        self,
        ws: WorkspaceId,
        people: Sequence[uuid.UUID],
        conversation_ids: Sequence[uuid.UUID],
        person: _Person,
        scrub: _Scrubber,
    ) -> int:
        """Replace the person's values in every audit row of the workspace that involves them."""
        indexed = sa.select(AUDCUST.c.audit_id).where(
            AUDCUST.c.workspace_id == ws, AUDCUST.c.customer_id.in_(people)
        )
        subjects = [str(c) for c in (*people, *conversation_ids)] + [k[:100] for k in person.tokens]
        involved = [AUDIT.c.id.in_(indexed)]
        for chunk in _chunks(subjects):
            involved.append(AUDIT.c.subject_id.in_(chunk))
        involved += [
            _json_text(AUDIT.c.details).contains(n, autoescape=True) for n in person.search_needles()
        ]
        rows = (
            await self.session.execute(
                sa.select(AUDIT.c.id, AUDIT.c.action, AUDIT.c.subject_id, AUDIT.c.details).where(
                    AUDIT.c.workspace_id == ws, sa.or_(*involved)
                )
            )
        ).all()
        updates = []
        truncated = {k[:100]: t for k, t in person.tokens.items()}
        for r in rows:
            action = str(r.action)
            drop = frozenset({"reference"}) if action.startswith("identity.") else frozenset()
            if action in _SURVEY_TEXTS:
                drop = frozenset({"comment"})  # the customer's own words
            elif action in _CRM_FIGURES:
                drop = _CRM_FIGURES[action]
            details = scrub.document(r.details or {}, drop=drop)
            if action == WorkAction.CLOSED and isinstance(details.get("disposition"), Mapping):
                details["disposition"] = _kept_disposition(details["disposition"])  # as on the row
            subject = truncated.get(r.subject_id, r.subject_id)
            if details != (r.details or {}) or subject != r.subject_id:
                updates.append({"aid": r.id, "det": details, "subj": subject})
        if updates:
            await self.session.execute(
                sa.update(AUDIT)
                .where(AUDIT.c.id == sa.bindparam("aid"))
                .values(
                    details=sa.bindparam("det", type_=AUDIT.c.details.type), subject_id=sa.bindparam("subj")
                ),
                updates,
            )
        return len(updates)

    async def _audit(
        self,
        ws: WorkspaceId,
        actor: str,
        action: str,
        customer_id: uuid.UUID,
        now: datetime,
        details: Mapping[str, Any],
    ) -> uuid.UUID:
        audit_id = new_id()
        await self.session.execute(
            sa.insert(AUDIT).values(
                id=audit_id,
                workspace_id=ws,
                at=now,
                actor=actor[:200],
                action=action,
                subject_type="customer",
                subject_id=str(customer_id),
                details=dict(details),
            )
        )
        return audit_id


# ------------------------------------------------------------------------------------ entry points


async def erase_customer(
    database: Database,
    ws: WorkspaceId,
    customer_id: uuid.UUID,
    reason: str,
    *,
    actor: str,
    now: datetime,
) -> ErasureResult:
    """Erase the person in one transaction, tried again when it meets a deadlock, a
    serialization failure or a lock timeout (``DatabaseConflict``)."""
    for attempt in range(_ATTEMPTS):
        try:
            async with database.transaction() as session:
                return await ErasureStore(session).erase(ws, customer_id, reason, actor=actor, now=now)
        except DatabaseConflict:
            if attempt == _ATTEMPTS - 1:
                raise
            log.info("customer_erase_retry", attempt=attempt, customer_id=str(customer_id))
    raise AssertionError("unreachable")
