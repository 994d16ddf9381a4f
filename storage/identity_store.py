"""Identity in the database: load a working set, decide with the pure graph, write the changes.

The pure core (``identity``) decides; this module loads and writes, in the caller's transaction:

1. **Load** the working set an operation needs (``identity.select_rows`` is the reference): the
   seed identifiers, every identifier of their customers (*complete* customers), the context
   rows (name matches, the other ends of suggestions), their edges, blocks and customers.
2. **Check, optimistically**: every customer row carries a ``version``.  The versions of the
   complete customers are read *before* their identifiers; writing a change set first bumps the
   version of every existing customer it changes (``UPDATE … WHERE version = <read>``), in id
   order.  A customer another worker changed meanwhile matches no row: roll back, reload, decide
   again.  Nothing is locked while reading, so workers whose batches only meet (a suggestion
   pointing at someone else's identifier) never wait for each other; new identifiers are
   protected by the unique index on ``(workspace_id, key)``.
3. **Decide** on an ``IdentityGraph`` built from the rows, take its ``ChangeSet``.
4. **Write** the change set, re-point the conversations and messages of moved identifiers,
   and settle conversation continuity (one open conversation per customer and campaign: the
   pure rule ``core.continuity.plan_continuity`` plans it, this module writes the plan).  The
   conversations those steps write are locked first, in one statement by id (the lock order of
   ``storage/routing.py``), so a merge never waits on a router or another merge in a cycle.

Steps 1–4 run inside a savepoint; a unique-index collision (another worker created the same
identifier or suggested the same pair), a deadlock, or a working set found incomplete rolls the
savepoint back and the whole thing is tried again on fresh state (:meth:`IdentityStore.run`).

Every merge, unmerge, link, rejection and block is written to ``audit_log``
(``action = "identity.<action>"``, ``details`` holding the evidence, the customers before and
after, and the identifiers that moved) and indexed per customer in ``identity_audit_customer``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.continuity import (
    MERGED_DISPOSITION,
    CloseAsMerged,
    Continue,
    ConversationFacts,
    MergedInto,
    Reopen,
    campaign_language,
    plan_continuity,
)
from core.errors import CustomerErased, NotFound, ServiceUnavailable
from core.events import AddressKind
from core.ids import (
    AgentId,
    CampaignId,
    ConversationId,
    CustomerId,
    IdentityId,
    QueueId,
    WorkspaceId,
    new_id,
)
from core.logging import get_logger
from core.records import TimelineEntry
from core.states import ConversationStatus, MessageDirection, MessageKind
from core.webhooks import customer_regrouped
from identity import (
    DETERMINISTIC_SOURCES,
    AuditAction,
    AuditEntry,
    Block,
    BlockReason,
    ChangeSet,
    EvidenceEdge,
    EvidenceSource,
    Identifier,
    IdentityGraph,
    IdentityPolicy,
    IdentityRows,
    Observation,
    Reassignment,
    Resolution,
    Resolutions,
    Suggestion,
    SuggestionStatus,
    WorkingSetIncomplete,
    resolve,
    resolve_all,
)
from identity import CustomerRow as CustomerRecord
from identity import IdentifierRow as Node
from storage.tables import (
    AuditRow,
    CampaignRow,
    ConversationRow,
    CustomerRow,
    EvidenceRow,
    IdentifierNameRow,
    IdentifierRow,
    IdentityAuditCustomerRow,
    IdentityBlockRow,
    MessageRow,
    QueueRow,
    SuggestionRow,
)
from storage.timeline import Towards, timeline_page
from storage.types import as_utc
from storage.upsert import insert_ignore
from storage.webhooks import fan_out

__all__ = [
    "MERGED_DISPOSITION",
    "CustomerConversation",
    "CustomerPrivacy",
    "IdentityContention",
    "IdentityStore",
    "KnownSender",
]

log = get_logger("centralita.identity")

CUST = CustomerRow.__table__  # type: ignore[attr-defined]
IDENT = IdentifierRow.__table__  # type: ignore[attr-defined]
NAMES = IdentifierNameRow.__table__  # type: ignore[attr-defined]
EVID = EvidenceRow.__table__  # type: ignore[attr-defined]
SUGG = SuggestionRow.__table__  # type: ignore[attr-defined]
BLOCK = IdentityBlockRow.__table__  # type: ignore[attr-defined]
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
AUDCUST = IdentityAuditCustomerRow.__table__  # type: ignore[attr-defined]
CONV = ConversationRow.__table__  # type: ignore[attr-defined]
CAMPAIGN = CampaignRow.__table__  # type: ignore[attr-defined]
MSG = MessageRow.__table__  # type: ignore[attr-defined]
QUEUE = QueueRow.__table__  # type: ignore[attr-defined]

MAX_ATTEMPTS = 12
_RETRY_SQLSTATES = frozenset({"40P01", "40001", "55P03"})  # deadlock, serialization, lock not available
_AUDIT_PREFIX = "identity."
T = TypeVar("T")


class _DecidedMeanwhile(Exception):
    """A suggestion this worker decided was decided by another one first: decide again."""


class IdentityContention(ServiceUnavailable):
    """Identity resolution kept colliding with other workers; retry later (HTTP 503)."""

    code = "identity_contention"


def _opt_customer(value: uuid.UUID | None) -> CustomerId | None:
    return None if value is None else CustomerId(value)


def _identifier(kind: str, value: str, key: str, scope: str | None) -> Identifier:
    return Identifier(kind=AddressKind(kind), value=value, key=key, scope=scope)


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    for name in ("sqlstate", "pgcode"):
        code = getattr(orig, name, None)
        if isinstance(code, str):
            return code
    cause = getattr(orig, "__cause__", None)
    code = getattr(cause, "sqlstate", None)
    return code if isinstance(code, str) else None


def _chunks(items: Sequence[T], size: int = 500) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ------------------------------------------------------------------------------------ row mapping


def _node(row: Any) -> Node:
    return Node(
        workspace_id=WorkspaceId(row.workspace_id),
        identifier=_identifier(row.kind, row.value, row.key, row.scope),
        customer_id=CustomerId(row.customer_id),
        home_customer_id=CustomerId(row.home_customer_id),
        first_seen_at=as_utc(row.created_at),
        display_names=frozenset(row.display_names or ()),
    )


def _edge(row: Any) -> EvidenceEdge:
    return EvidenceEdge(
        id=row.id,
        workspace_id=WorkspaceId(row.workspace_id),
        a=row.a_key,
        b=row.b_key,
        source=EvidenceSource(row.source),
        created_at=as_utc(row.created_at),
        actor=row.actor,
        reference=row.reference,
        suggestion_id=row.suggestion_id,
        retracted_at=as_utc(row.retracted_at),
        retracted_by=row.retracted_by,
        retraction_audit_id=row.retraction_audit_id,
    )


def _customer(row: Any) -> CustomerRecord:
    return CustomerRecord(
        id=CustomerId(row.id),
        workspace_id=WorkspaceId(row.workspace_id),
        created_at=as_utc(row.created_at),
        merged_into=CustomerId(row.merged_into) if row.merged_into is not None else None,
    )


def _suggestion(row: Any) -> Suggestion:
    return Suggestion(
        id=row.id,
        workspace_id=WorkspaceId(row.workspace_id),
        a=_identifier(row.a_kind, row.a_value, row.a_key, row.a_scope),
        b=_identifier(row.b_kind, row.b_value, row.b_key, row.b_scope),
        source=EvidenceSource(row.source),
        created_at=as_utc(row.created_at),
        actor=row.actor,
        reference=row.reference,
        status=SuggestionStatus(row.status),
        decided_at=as_utc(row.decided_at),
        decided_by=row.decided_by,
        edge_id=row.edge_id,
    )


def _block(row: Any) -> Block:
    return Block(
        workspace_id=WorkspaceId(row.workspace_id),
        key=row.key,
        reason=BlockReason(row.reason),
        created_at=as_utc(row.created_at),
        actor=row.actor,
        detail=row.detail or "",
        lifted_at=as_utc(row.lifted_at),
        lifted_by=row.lifted_by,
    )


def _audit_entry(row: Any) -> AuditEntry:
    d = row.details or {}
    return AuditEntry(
        id=row.id,
        workspace_id=WorkspaceId(row.workspace_id),
        action=AuditAction(row.action[len(_AUDIT_PREFIX) :]),
        at=as_utc(row.at),
        actor=row.actor,
        edge_ids=tuple(uuid.UUID(e) for e in d.get("edge_ids", ())),
        before=tuple(CustomerId(uuid.UUID(c)) for c in d.get("before", ())),
        after=tuple(CustomerId(uuid.UUID(c)) for c in d.get("after", ())),
        reassignments=tuple(
            Reassignment(m["key"], CustomerId(uuid.UUID(m["from"])), CustomerId(uuid.UUID(m["to"])))
            for m in d.get("reassignments", ())
        ),
        suggestion_id=uuid.UUID(d["suggestion_id"]) if d.get("suggestion_id") else None,
        key=d.get("key"),
        reference=d.get("reference"),
        detail=d.get("detail", ""),
    )


def _evidence_details(edge: EvidenceEdge) -> dict[str, Any]:
    """The evidence as an audit row's ``details`` keep it (a snapshot for people reading the log)."""
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


def _audit_details(entry: AuditEntry, edges: Mapping[uuid.UUID, EvidenceEdge]) -> dict[str, Any]:
    return {
        "edge_ids": [str(e) for e in entry.edge_ids],
        "evidence": [_evidence_details(edges[e]) for e in entry.edge_ids if e in edges],
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


# ------------------------------------------------------------------------------------ the store


@dataclass(frozen=True, slots=True)
class KnownSender:
    identifier_id: IdentityId
    customer_id: CustomerId
    display_name: str | None
    display_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CustomerConversation:
    """One of a customer's conversations, as the customer's record lists them."""

    id: ConversationId
    campaign_id: CampaignId | None
    status: str
    channel: str
    agent_id: AgentId | None
    opened_at: datetime
    queue_id: QueueId | None = None
    queue_name: str | None = None
    closed_at: datetime | None = None
    disposition: dict[str, Any] | None = None
    follow_up_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CustomerPrivacy:
    """A customer's legal hold (the reason) and when its data was erased, if ever."""

    legal_hold: str | None
    erased_at: datetime | None


class IdentityStore:
    """Identity rows in the caller's session (and transaction)."""

    def __init__(self, session: AsyncSession):
        self.session = session
        self._versions: dict[CustomerId, int] = {}  # of the customers the last load read
        self._loaded_owner: dict[str, CustomerId] = {}  # identifier key → customer, as loaded
        self._naming: dict[str, str] = {}  # sender key → display name, written at insert
        self.inserted_ids: dict[str, IdentityId] = {}  # identifier key → id, of the last apply

    # ------------------------------------------------------------------ the write path

    async def run(
        self,
        workspace_id: WorkspaceId,
        keys: Iterable[str],
        operation: Callable[[IdentityGraph], T],
        *,
        now: datetime,
        policy: IdentityPolicy | None = None,
        names: Iterable[str] = (),
        audit_ids: Iterable[uuid.UUID] = (),
        customers: Iterable[CustomerId] = (),
        for_unblock: bool = False,
        refuse_erased: bool = False,
    ) -> tuple[T, ChangeSet]:
        """Load, decide with ``operation(graph)``, write — in a savepoint, retried on collisions.

        Domain errors of the operation (``NotFound``, ``Conflict``, ``InvalidInput``) propagate
        with nothing written.  ``refuse_erased``: ``CustomerErased`` (nothing written) when the
        change would involve an erased customer (checked after the load, so an erasure committed
        meanwhile fails the version check and is seen on the retry).  ``IdentityContention`` when
        it never settles.
        """
        seeds = set(keys)
        wanted_customers = set(customers)
        name_list = [n for n in names if n]
        audits = list(audit_ids)
        for attempt in range(MAX_ATTEMPTS):
            try:
                async with self.session.begin_nested():
                    rows = await self.load(
                        workspace_id,
                        seeds,
                        names=name_list,
                        name_match_max_customers=(policy or IdentityPolicy()).name_match_max_customers,
                        audit_ids=audits,
                        customers=wanted_customers,
                        for_unblock=for_unblock,
                    )
                    graph = IdentityGraph.from_rows(workspace_id, rows, policy)
                    result = operation(graph)
                    # resolve() takes the graph's changes itself; other operations leave them
                    changes = (
                        result.changes
                        if isinstance(result, Resolution | Resolutions)
                        else graph.take_changes()
                    )
                    if refuse_erased:
                        await self._refuse_erased(workspace_id, changes)
                    await self.apply(workspace_id, changes, now)
                    return result, changes
            except WorkingSetIncomplete as exc:
                seeds |= {str(k) for k in exc.details.get("keys", ())}
                wanted_customers |= {CustomerId(uuid.UUID(str(c))) for c in exc.details.get("customers", ())}
                log.debug("identity_working_set_grown", attempt=attempt)
            except (IntegrityError, _DecidedMeanwhile):
                log.info("identity_collision_retry", attempt=attempt)
            except DBAPIError as exc:
                if _sqlstate(exc) not in _RETRY_SQLSTATES:
                    raise
                log.info("identity_lock_retry", attempt=attempt, sqlstate=_sqlstate(exc))
        raise IdentityContention("identity resolution kept colliding with other workers; try again")

    async def _refuse_erased(self, ws: WorkspaceId, changes: ChangeSet) -> None:
        involved = {c for e in changes.audit_inserted for c in (*e.before, *e.after)}
        involved |= {c for m in changes.reassignments for c in (m.from_customer, m.to_customer)}
        erased = await self.erased_among(ws, involved)
        if erased:
            first = min(erased)
            raise CustomerErased(
                "the customer's data was erased; it cannot be merged or linked",
                field="customer_id",
                details={"customer_id": str(first), "customer_ids": [str(c) for c in sorted(erased)]},
            )

    async def resolve(
        self,
        workspace_id: WorkspaceId,
        observation: Observation,
        now: datetime,
        *,
        policy: IdentityPolicy | None = None,
        display_name: str | None = None,
    ) -> Resolution:
        """Resolve an inbound event's observation to a customer, writing its evidence.

        ``display_name``: the sender's name as shown, written with the sender's identifier and
        customer when this resolution creates them (``inserted_ids`` then has the identifier's
        id), so that a new customer costs no update and no read afterwards."""
        self._naming = {observation.sender.key: display_name[:200]} if display_name else {}
        try:
            resolution, _ = await self.run(
                workspace_id,
                observation.keys,
                lambda graph: resolve(graph, observation, now),
                now=now,
                policy=policy,
                names=[observation.name_key] if observation.name_key else [],
            )
        finally:
            self._naming = {}
        return resolution

    async def resolve_all(
        self,
        workspace_id: WorkspaceId,
        observations: Sequence[tuple[Observation, str | None]],
        now: datetime,
        *,
        policy: IdentityPolicy | None = None,
    ) -> Resolutions:
        """``resolve`` several (observation, display name) pairs in one go: one working set
        loaded for all, each resolved in turn on it (``identity.resolve_all``), every table
        written once — in one savepoint, retried on collisions like ``run``."""
        self._naming = {o.sender.key: name[:200] for o, name in observations if name}
        keys = {k for o, _ in observations for k in o.keys}
        names = sorted({o.name_key for o, _ in observations if o.name_key})
        try:
            resolutions, _ = await self.run(
                workspace_id,
                keys,
                lambda graph: resolve_all(graph, [o for o, _ in observations], now),
                now=now,
                policy=policy,
                names=names,
            )
        finally:
            self._naming = {}
        return resolutions

    # ------------------------------------------------------------------ loading

    async def load(
        self,
        workspace_id: WorkspaceId,
        keys: Iterable[str],
        *,
        names: Iterable[str] = (),
        audit_ids: Iterable[uuid.UUID] = (),
        customers: Iterable[CustomerId] = (),
        for_unblock: bool = False,
        name_match_max_customers: int = IdentityPolicy().name_match_max_customers,
    ) -> IdentityRows:
        """The working set for an operation on ``keys`` (mirrors ``identity.select_rows``)."""
        s = self.session
        ws = workspace_id
        audit = await self.audit_entries(ws, audit_ids)
        seeds = set(keys)
        edge_ids = {e for entry in audit for e in entry.edge_ids}
        if edge_ids:
            found = await s.execute(
                sa.select(EVID.c.a_key, EVID.c.b_key).where(
                    EVID.c.workspace_id == ws, EVID.c.id.in_(edge_ids)
                )
            )
            for a, b in found:
                seeds |= {a, b}
        if for_unblock and seeds:
            found = await s.execute(
                sa.select(EVID.c.a_key, EVID.c.b_key).where(
                    EVID.c.workspace_id == ws,
                    EVID.c.retracted_at.is_(None),
                    EVID.c.source.in_([src.value for src in DETERMINISTIC_SOURCES]),
                    sa.or_(EVID.c.a_key.in_(seeds), EVID.c.b_key.in_(seeds)),
                )
            )
            for a, b in found:
                seeds |= {a, b}
        self._versions = {}
        complete = await self._complete_customers(ws, seeds, set(customers))
        # customer ids are unique across workspaces; filtering by them uses their index
        loaded_rows = (
            list(await s.execute(sa.select(IDENT).where(IDENT.c.customer_id.in_(sorted(complete)))))
            if complete
            else []
        )
        loaded = {r.key for r in loaded_rows}
        context: set[str] = set()
        for name in sorted(set(names)):
            context |= await self._name_keys(ws, name, name_match_max_customers)
        anchors = seeds | loaded
        suggestion_rows = await self._touching(SUGG, ws, SUGG.c.a_key, SUGG.c.b_key, anchors)
        for row in suggestion_rows:
            context |= {row.a_key, row.b_key}
        extra = sorted(context - loaded)
        context_rows: list[Any] = []
        for chunk in _chunks(extra):
            context_rows += (
                await s.execute(sa.select(IDENT).where(IDENT.c.workspace_id == ws, IDENT.c.key.in_(chunk)))
            ).all()
        picked = [_node(r) for r in (*loaded_rows, *context_rows)]
        edge_rows = await self._touching(EVID, ws, EVID.c.a_key, EVID.c.b_key, loaded)
        every_key = sorted(seeds | loaded | context)
        block_rows: list[Any] = []
        for chunk in _chunks(every_key):
            block_rows += (
                await s.execute(sa.select(BLOCK).where(BLOCK.c.workspace_id == ws, BLOCK.c.key.in_(chunk)))
            ).all()
        referenced = {c for n in picked for c in (n.customer_id, n.home_customer_id)}
        customer_rows: list[Any] = []
        if referenced:
            customer_rows += await s.execute(
                sa.select(CUST).where(CUST.c.id.in_(sorted(referenced)), CUST.c.workspace_id == ws)
            )
        if complete:  # merged into a complete customer (so of this workspace)
            customer_rows += await s.execute(
                sa.select(CUST).where(
                    CUST.c.merged_into.in_(sorted(complete)), CUST.c.id.not_in(sorted(referenced))
                )
            )
        for r in customer_rows:
            self._versions.setdefault(CustomerId(r.id), r.version)
        self._loaded_owner = {n.key: n.customer_id for n in picked}
        return IdentityRows(
            identifiers=tuple(picked),
            edges=tuple(_edge(r) for r in edge_rows),
            customers=tuple(_customer(r) for r in customer_rows),
            suggestions=tuple(_suggestion(r) for r in suggestion_rows),
            blocks=tuple(_block(r) for r in block_rows),
            audit=tuple(audit),
            complete_customers=frozenset(complete),
            looked_up=frozenset(seeds | loaded),
        )

    async def _touching(
        self, table: sa.Table, ws: WorkspaceId, a: sa.Column[Any], b: sa.Column[Any], keys: set[str]
    ) -> list[Any]:
        """Rows whose ``a`` or ``b`` end is one of ``keys`` (two indexed queries, not an ``OR``)."""
        found: dict[uuid.UUID, Any] = {}
        for column in (a, b):
            for chunk in _chunks(sorted(keys)):
                for row in await self.session.execute(
                    sa.select(table).where(table.c.workspace_id == ws, column.in_(chunk))
                ):
                    found[row.id] = row
        return list(found.values())

    async def _name_keys(self, ws: WorkspaceId, name: str, max_customers: int) -> set[str]:
        """Identifiers seen with a display name — none when the name is common: the graph ignores
        a name shared by more than ``max_customers + 1`` customers, so they need not be loaded."""
        limit = 64
        query = (
            sa.select(NAMES.c.key, IDENT.c.customer_id)
            .join(IDENT, sa.and_(IDENT.c.workspace_id == NAMES.c.workspace_id, IDENT.c.key == NAMES.c.key))
            .where(NAMES.c.workspace_id == ws, NAMES.c.name == name)
        )
        rows = (await self.session.execute(query.limit(limit))).all()
        if len({c for _, c in rows}) > max_customers + 1:
            return set()
        if len(rows) == limit:  # a few customers with very many identifiers: read them all
            rows = (await self.session.execute(query)).all()
            if len({c for _, c in rows}) > max_customers + 1:
                return set()
        return {k for k, _ in rows}

    async def _complete_customers(
        self, ws: WorkspaceId, seeds: set[str], wanted: set[CustomerId]
    ) -> set[CustomerId]:
        """The current customers of the seeds (plus ``wanted``), with their versions remembered —
        read before their identifiers, so a change committed in between fails the check."""
        # driven by the identifier index, then the customer's primary key (SQLite has no
        # statistics and would otherwise scan the workspace index)
        rows = list(
            await self.session.execute(
                sa.select(CUST.c.id, CUST.c.version)
                .select_from(IDENT.join(CUST, CUST.c.id == IDENT.c.customer_id))
                .where(IDENT.c.workspace_id == ws, IDENT.c.key.in_(sorted(seeds)))
            )
        )
        if wanted:
            rows += await self.session.execute(
                sa.select(CUST.c.id, CUST.c.version).where(
                    CUST.c.id.in_(sorted(wanted)), CUST.c.workspace_id == ws
                )
            )
        complete: set[CustomerId] = set()
        for cid, version in rows:
            complete.add(CustomerId(cid))
            self._versions[CustomerId(cid)] = version
        return complete

    async def audit_entries(self, ws: WorkspaceId, audit_ids: Iterable[uuid.UUID]) -> list[AuditEntry]:
        ids = list(audit_ids)
        if not ids:
            return []
        rows = await self.session.execute(
            sa.select(AUDIT).where(
                AUDIT.c.workspace_id == ws, AUDIT.c.id.in_(ids), AUDIT.c.action.like(f"{_AUDIT_PREFIX}%")
            )
        )
        return [_audit_entry(r) for r in rows]

    async def load_workspace(self, ws: WorkspaceId) -> IdentityRows:
        """Every identity row of a workspace (exports, small workspaces)."""
        s = self.session

        async def all_of(table: sa.Table) -> list[Any]:
            return list((await s.execute(sa.select(table).where(table.c.workspace_id == ws))).all())

        audit = await s.execute(
            sa.select(AUDIT).where(AUDIT.c.workspace_id == ws, AUDIT.c.action.like(f"{_AUDIT_PREFIX}%"))
        )
        return IdentityRows(
            identifiers=tuple(_node(r) for r in await all_of(IDENT)),
            edges=tuple(_edge(r) for r in await all_of(EVID)),
            customers=tuple(_customer(r) for r in await all_of(CUST)),
            suggestions=tuple(_suggestion(r) for r in await all_of(SUGG)),
            blocks=tuple(_block(r) for r in await all_of(BLOCK)),
            audit=tuple(_audit_entry(r) for r in audit),
        )

    # ------------------------------------------------------------------ writing

    async def apply(self, ws: WorkspaceId, changes: ChangeSet, now: datetime) -> None:
        """Write a change set (inside the caller's transaction or savepoint) loaded by ``load``
        on this store: ``_DecidedMeanwhile`` when a customer it changes changed since."""
        s = self.session
        await self._bump_versions(changes)
        self.inserted_ids = {n.key: IdentityId(new_id()) for n in changes.identifiers_inserted}
        named = {  # the new customer of a new named sender takes the sender's name
            n.customer_id: self._naming[n.key] for n in changes.identifiers_inserted if n.key in self._naming
        }
        if changes.customers_inserted:
            await s.execute(
                sa.insert(CUST),
                [
                    {
                        "id": c.id,
                        "workspace_id": ws,
                        "created_at": c.created_at,
                        "merged_into": c.merged_into,
                        "display_name": named.get(c.id),
                    }
                    for c in changes.customers_inserted
                ],
            )
        if changes.identifiers_inserted:
            await s.execute(
                sa.insert(IDENT),
                [
                    {
                        "id": self.inserted_ids[n.key],
                        "display_name": self._naming.get(n.key),
                        "workspace_id": ws,
                        "kind": n.identifier.kind.value,
                        "key": n.key,
                        "value": n.identifier.value,
                        "scope": n.identifier.scope,
                        "customer_id": n.customer_id,
                        "home_customer_id": n.home_customer_id,
                        "display_names": sorted(n.display_names),
                        "created_at": n.first_seen_at,
                    }
                    for n in changes.identifiers_inserted
                ],
            )
        if changes.customers_updated:
            await s.execute(
                sa.update(CUST)
                .where(CUST.c.id == sa.bindparam("cid"))
                .values(merged_into=sa.bindparam("into"), active=sa.bindparam("live")),
                [
                    {"cid": c.id, "into": c.merged_into, "live": c.merged_into is None}
                    for c in changes.customers_updated
                ],
            )
        if changes.identifiers_updated:
            await s.execute(
                sa.update(IDENT)
                .where(IDENT.c.workspace_id == sa.bindparam("ws"), IDENT.c.key == sa.bindparam("k"))
                .values(
                    customer_id=sa.bindparam("cid"),
                    home_customer_id=sa.bindparam("home"),
                    display_names=sa.bindparam("names", type_=IDENT.c.display_names.type),
                ),
                [
                    {
                        "ws": ws,
                        "k": n.key,
                        "cid": n.customer_id,
                        "home": n.home_customer_id,
                        "names": sorted(n.display_names),
                    }
                    for n in changes.identifiers_updated
                ],
            )
        names = [
            {"workspace_id": ws, "key": n.key, "name": name}
            for n in (*changes.identifiers_inserted, *changes.identifiers_updated)
            for name in n.display_names
        ]
        for chunk in _chunks(names):
            await insert_ignore(s, NAMES, chunk, conflict=("workspace_id", "key", "name"))
        if changes.edges_inserted:
            await s.execute(sa.insert(EVID), [self._edge_values(ws, e) for e in changes.edges_inserted])
        for edge in changes.edges_updated:
            await s.execute(
                sa.update(EVID)
                .where(EVID.c.id == edge.id)
                .values(
                    retracted_at=edge.retracted_at,
                    retracted_by=edge.retracted_by,
                    retraction_audit_id=edge.retraction_audit_id,
                )
            )
        if changes.suggestions_inserted:
            await s.execute(
                sa.insert(SUGG), [self._suggestion_values(ws, x) for x in changes.suggestions_inserted]
            )
        for sug in changes.suggestions_updated:
            result = await s.execute(
                sa.update(SUGG)
                .where(SUGG.c.id == sug.id, SUGG.c.status == SuggestionStatus.PENDING.value)
                .values(
                    status=sug.status.value,
                    decided_at=sug.decided_at,
                    decided_by=sug.decided_by,
                    edge_id=sug.edge_id,
                )
            )
            if getattr(result, "rowcount", 1) == 0:  # decided meanwhile by someone else: decide again
                raise _DecidedMeanwhile(str(sug.id))
        for blk in changes.blocks_upserted:
            values = {
                "reason": blk.reason.value,
                "detail": blk.detail[:400],
                "actor": blk.actor,
                "created_at": blk.created_at,
                "lifted_at": blk.lifted_at,
                "lifted_by": blk.lifted_by,
            }
            result = await s.execute(
                sa.update(BLOCK).where(BLOCK.c.workspace_id == ws, BLOCK.c.key == blk.key).values(**values)
            )
            if getattr(result, "rowcount", 0) == 0:
                await s.execute(sa.insert(BLOCK).values(id=new_id(), workspace_id=ws, key=blk.key, **values))
        if changes.audit_inserted:
            edges = {e.id: e for e in (*changes.edges_inserted, *changes.edges_updated)}
            await s.execute(
                sa.insert(AUDIT),
                [
                    {
                        "id": e.id,
                        "workspace_id": ws,
                        "at": e.at,
                        "actor": e.actor,
                        "action": f"{_AUDIT_PREFIX}{e.action.value}",
                        "subject_type": "customer" if (e.after or e.before) else "identifier",
                        "subject_id": str(e.after[0] if e.after else e.before[0] if e.before else e.key)[
                            :100
                        ],
                        "details": _audit_details(e, edges),
                    }
                    for e in changes.audit_inserted
                ],
            )
            links = [
                {"audit_id": e.id, "customer_id": c, "workspace_id": ws}
                for e in changes.audit_inserted
                for c in dict.fromkeys((*e.before, *e.after))
            ]
            if links:
                await s.execute(sa.insert(AUDCUST), links)
            regrouped = [
                customer_regrouped(
                    ws,
                    e.id,
                    e.at,
                    merged=e.action is AuditAction.MERGE,
                    before=e.before,
                    after=e.after,
                    actor=e.actor,
                )
                for e in changes.audit_inserted
                if e.action in (AuditAction.MERGE, AuditAction.UNMERGE)
            ]
            await fan_out(s, regrouped)  # for the workspace's webhooks, with the audit rows
            for e in changes.audit_inserted:
                log.info(
                    "identity_audit",
                    action=e.action.value,
                    workspace_id=str(ws),
                    actor=e.actor,
                    before=[str(c) for c in e.before],
                    after=[str(c) for c in e.after],
                    edges=len(e.edge_ids),
                )
        await self._reassign(ws, changes.reassignments, now)

    async def _bump_versions(self, changes: ChangeSet) -> None:
        created = {c.id for c in changes.customers_inserted}
        touched: set[CustomerId] = {c.id for c in changes.customers_updated}
        touched |= {n.customer_id for n in changes.identifiers_inserted}
        for n in changes.identifiers_updated:
            touched.add(n.customer_id)
            owner = self._loaded_owner.get(n.key)
            if owner is not None:
                touched.add(owner)
        touched |= {c for m in changes.reassignments for c in (m.from_customer, m.to_customer)}
        for cid in sorted(touched - created):
            version = self._versions.get(cid)
            if version is None:
                raise _DecidedMeanwhile(f"customer {cid} was not loaded")
            result = await self.session.execute(
                sa.update(CUST).where(CUST.c.id == cid, CUST.c.version == version).values(version=version + 1)
            )
            if getattr(result, "rowcount", 1) == 0:
                raise _DecidedMeanwhile(str(cid))
            self._versions[cid] = version + 1

    @staticmethod
    def _edge_values(ws: WorkspaceId, e: EvidenceEdge) -> dict[str, Any]:
        return {
            "id": e.id,
            "workspace_id": ws,
            "a_key": e.a,
            "b_key": e.b,
            "source": e.source.value,
            "actor": e.actor,
            "reference": e.reference[:400] if e.reference else None,
            "suggestion_id": e.suggestion_id,
            "created_at": e.created_at,
            "retracted_at": e.retracted_at,
            "retracted_by": e.retracted_by,
            "retraction_audit_id": e.retraction_audit_id,
        }

    @staticmethod
    def _suggestion_values(ws: WorkspaceId, x: Suggestion) -> dict[str, Any]:
        lo, hi = x.pair
        return {
            "id": x.id,
            "workspace_id": ws,
            "a_key": x.a.key,
            "a_kind": x.a.kind.value,
            "a_value": x.a.value,
            "a_scope": x.a.scope,
            "b_key": x.b.key,
            "b_kind": x.b.kind.value,
            "b_value": x.b.value,
            "b_scope": x.b.scope,
            "lo_key": lo,
            "hi_key": hi,
            "source": x.source.value,
            "actor": x.actor,
            "reference": x.reference[:400] if x.reference else None,
            "status": x.status.value,
            "created_at": x.created_at,
            "decided_at": x.decided_at,
            "decided_by": x.decided_by,
            "edge_id": x.edge_id,
        }

    # ------------------------------------------------------------------ conversations follow identifiers

    async def _reassign(self, ws: WorkspaceId, moves: Sequence[Reassignment], now: datetime) -> None:
        if not moves:
            return
        s = self.session
        ids: dict[str, uuid.UUID] = dict(
            (
                await s.execute(
                    sa.select(IDENT.c.key, IDENT.c.id).where(
                        IDENT.c.workspace_id == ws, IDENT.c.key.in_({m.key for m in moves})
                    )
                )
            ).all()
        )
        by_target: dict[CustomerId, list[uuid.UUID]] = {}
        for move in moves:
            if move.key in ids:
                by_target.setdefault(move.to_customer, []).append(ids[move.key])
        touched = sorted({c for m in moves for c in (m.from_customer, m.to_customer)})
        # The lock order (storage/routing.py): every conversation this re-points, re-targets
        # or settles below is locked here first, in one statement by id, before any is written.
        await s.execute(
            sa.select(CONV.c.id)
            .where(
                CONV.c.workspace_id == ws,
                sa.or_(
                    CONV.c.customer_id.in_(touched),
                    CONV.c.origin_identifier_id.in_(sorted(ids.values())),
                ),
            )
            .order_by(CONV.c.id)
            .with_for_update(key_share=True)
        )
        for target, identifier_ids in by_target.items():
            await s.execute(
                sa.update(MSG)
                .where(MSG.c.identifier_id.in_(identifier_ids))  # ids of this workspace's identifiers
                .values(customer_id=target)
            )
            conversations = [
                c
                for (c,) in await s.execute(
                    sa.select(CONV.c.id).where(CONV.c.origin_identifier_id.in_(identifier_ids))
                )
            ]
            if conversations:
                await s.execute(
                    sa.update(CONV).where(CONV.c.id.in_(conversations)).values(customer_id=target)
                )
                await s.execute(
                    sa.update(MSG)
                    .where(MSG.c.conversation_id.in_(conversations), MSG.c.identifier_id.is_(None))
                    .values(customer_id=target)
                )
        await self._fix_reply_targets(ws, touched)
        await self._settle_conversations(ws, touched, now)

    async def _fix_reply_targets(self, ws: WorkspaceId, customers: Sequence[CustomerId]) -> None:
        """An open conversation never replies to an identifier that is no longer its customer's:
        it goes back to the last one of its customer's that wrote in it (else the one that
        opened it)."""
        s = self.session
        target = IDENT.alias("target")
        stale = (
            await s.execute(
                sa.select(CONV.c.id, CONV.c.customer_id, CONV.c.origin_identifier_id)
                .join(target, target.c.id == CONV.c.identifier_id)
                .where(
                    CONV.c.workspace_id == ws,
                    CONV.c.customer_id.in_(customers),
                    CONV.c.status != ConversationStatus.CLOSED,
                    target.c.customer_id != CONV.c.customer_id,
                )
            )
        ).all()
        for conversation_id, customer_id, origin in stale:
            last = (
                await s.execute(
                    sa.select(MSG.c.identifier_id, MSG.c.channel, MSG.c.channel_account_id)
                    .join(IDENT, IDENT.c.id == MSG.c.identifier_id)
                    .where(
                        MSG.c.conversation_id == conversation_id,
                        MSG.c.direction == MessageDirection.IN,
                        IDENT.c.customer_id == customer_id,
                    )
                    .order_by(MSG.c.created_at.desc(), MSG.c.id.desc())
                    .limit(1)
                )
            ).first()
            values: dict[str, Any] = {"identifier_id": origin}
            if last is not None:
                values = {
                    "identifier_id": last.identifier_id,
                    "channel": last.channel,
                    "channel_account_id": last.channel_account_id,
                }
            await s.execute(sa.update(CONV).where(CONV.c.id == conversation_id).values(**values))

    async def _settle_conversations(
        self, ws: WorkspaceId, customers: Sequence[CustomerId], now: datetime
    ) -> None:
        """One open conversation per customer and campaign: the facts go to
        ``core.continuity.plan_continuity``, and its plan is written here."""
        s = self.session
        rows = (
            await s.execute(
                sa.select(
                    CONV.c.id,
                    CONV.c.customer_id,
                    CONV.c.campaign_id,
                    CONV.c.status,
                    CONV.c.opened_at,
                    CONV.c.channel,
                    CONV.c.channel_account_id,
                    CONV.c.disposition,
                    CAMPAIGN.c.language,
                )
                .select_from(CONV.outerjoin(CAMPAIGN, CAMPAIGN.c.id == CONV.c.campaign_id))
                .where(CONV.c.workspace_id == ws, CONV.c.customer_id.in_(customers))
            )
        ).all()
        merged_into = {
            r.id: ConversationId(uuid.UUID(str((r.disposition or {}).get("into"))))
            for r in rows
            if r.status == ConversationStatus.CLOSED
            and (r.disposition or {}).get("code") == MERGED_DISPOSITION
        }
        owner = {r.id: r.customer_id for r in rows}
        elsewhere = sorted(set(merged_into.values()) - owner.keys())
        if elsewhere:
            owner |= dict(
                (
                    await s.execute(sa.select(CONV.c.id, CONV.c.customer_id).where(CONV.c.id.in_(elsewhere)))
                ).all()
            )
        facts = [
            ConversationFacts(
                id=ConversationId(r.id),
                customer_id=CustomerId(r.customer_id),
                campaign_id=CampaignId(r.campaign_id) if r.campaign_id is not None else None,
                status=r.status,
                opened_at=as_utc(r.opened_at),
                language=campaign_language(r.language),
                merged_into=(
                    MergedInto(merged_into[r.id], _opt_customer(owner.get(merged_into[r.id])))
                    if r.id in merged_into
                    else None
                ),
            )
            for r in rows
        ]
        by_id = {r.id: r for r in rows}
        for step in plan_continuity(facts, now).steps:
            conv = by_id[step.conversation_id]
            match step:
                case Reopen():
                    await s.execute(
                        sa.update(CONV)
                        .where(CONV.c.id == conv.id)
                        .values(status=step.status, closed_at=None, disposition=None, enqueued_at=step.at)
                    )
                    await self._note(ws, conv, step.at, step.note, step.merged_into)
                case CloseAsMerged():
                    await s.execute(
                        sa.update(CONV)
                        .where(CONV.c.id == conv.id)
                        .values(
                            status=ConversationStatus.CLOSED,
                            closed_at=step.at,
                            disposition={
                                "code": MERGED_DISPOSITION,
                                "into": str(step.into),
                                "previous_status": step.previous_status,
                            },
                        )
                    )
                    await self._note(ws, conv, step.at, step.note, step.into)
                case Continue():
                    pass  # it stays as it is

    async def _note(self, ws: WorkspaceId, conv: Any, now: datetime, text: str, other: uuid.UUID) -> None:
        await self.session.execute(
            sa.insert(MSG).values(
                id=new_id(),
                workspace_id=ws,
                conversation_id=conv.id,
                customer_id=conv.customer_id,
                identifier_id=None,
                direction=MessageDirection.NOTE,
                kind=MessageKind.SYSTEM,
                channel=conv.channel,
                channel_account_id=conv.channel_account_id,
                text=text,
                payload={"event": "identity_conversation", "other_conversation_id": str(other)},
                created_at=now,
                stored_at=now,
            )
        )

    # ------------------------------------------------------------------ reads

    async def linked_keys(self, ws: WorkspaceId, key: str, others: Iterable[str]) -> set[str]:
        """Which of ``others`` a live evidence edge joins to ``key``."""
        wanted = set(others) - {key}
        if not wanted:
            return set()
        rows = await self.session.execute(
            sa.select(EVID.c.a_key, EVID.c.b_key).where(
                EVID.c.workspace_id == ws,
                EVID.c.retracted_at.is_(None),
                sa.or_(
                    sa.and_(EVID.c.a_key == key, EVID.c.b_key.in_(wanted)),
                    sa.and_(EVID.c.b_key == key, EVID.c.a_key.in_(wanted)),
                ),
            )
        )
        return {b if a == key else a for a, b in rows}

    async def known_sender(self, ws: WorkspaceId, key: str) -> KnownSender | None:
        """An existing identifier as a lone sender needs it: id, customer, names."""
        row = (
            await self.session.execute(
                sa.select(IDENT.c.id, IDENT.c.customer_id, IDENT.c.display_name, IDENT.c.display_names).where(
                    IDENT.c.workspace_id == ws, IDENT.c.key == key
                )
            )
        ).first()
        if row is None:
            return None
        return KnownSender(
            IdentityId(row.id), CustomerId(row.customer_id), row.display_name, tuple(row.display_names or ())
        )

    async def customer_of_key(self, ws: WorkspaceId, key: str) -> CustomerId | None:
        found = (
            await self.session.execute(
                sa.select(IDENT.c.customer_id).where(IDENT.c.workspace_id == ws, IDENT.c.key == key)
            )
        ).scalar()
        return CustomerId(found) if found is not None else None

    async def live_customer(self, ws: WorkspaceId, customer_id: uuid.UUID) -> CustomerRecord:
        """The customer an id stands for now (itself, or the survivor it was merged into).
        ``NotFound`` for an id of another workspace."""
        current = customer_id
        for _ in range(16):
            row = (
                await self.session.execute(
                    sa.select(CUST).where(CUST.c.workspace_id == ws, CUST.c.id == current)
                )
            ).first()
            if row is None:
                raise NotFound("no such customer", field="customer_id")
            if row.merged_into is None:
                return _customer(row)
            current = row.merged_into
        raise NotFound("no such customer", field="customer_id")

    async def privacy_of(self, ws: WorkspaceId, customer_id: CustomerId) -> CustomerPrivacy:
        row = (
            await self.session.execute(
                sa.select(CUST.c.legal_hold, CUST.c.erased_at).where(
                    CUST.c.workspace_id == ws, CUST.c.id == customer_id
                )
            )
        ).first()
        if row is None:
            raise NotFound("no such customer", field="customer_id")
        return CustomerPrivacy(row.legal_hold, as_utc(row.erased_at))

    async def erased_among(self, ws: WorkspaceId, customers: Iterable[uuid.UUID]) -> set[CustomerId]:
        """The customers of ``customers`` whose data was erased."""
        ids = sorted(set(customers))
        found: set[CustomerId] = set()
        for chunk in _chunks(ids):
            rows = await self.session.execute(
                sa.select(CUST.c.id).where(
                    CUST.c.workspace_id == ws, CUST.c.id.in_(chunk), CUST.c.erased_at.is_not(None)
                )
            )
            found |= {CustomerId(c) for (c,) in rows}
        return found

    async def identifiers_of(self, ws: WorkspaceId, customer_id: CustomerId) -> list[Node]:
        rows = await self.session.execute(
            sa.select(IDENT)
            .where(IDENT.c.customer_id == customer_id)  # customer ids are unique across workspaces
            .order_by(IDENT.c.created_at, IDENT.c.key)
        )
        return [_node(r) for r in rows]

    async def graph_of(
        self, ws: WorkspaceId, customer_id: CustomerId, policy: IdentityPolicy | None = None
    ) -> IdentityGraph:
        """A read-only working set around one customer (suggestions, shared contacts)."""
        keys = [n.key for n in await self.identifiers_of(ws, customer_id)]
        rows = await self.load(ws, keys, customers=[customer_id])
        return IdentityGraph.from_rows(ws, rows, policy)

    async def suggestion_keys(self, ws: WorkspaceId, suggestion_id: uuid.UUID) -> tuple[str, str]:
        row = (
            await self.session.execute(
                sa.select(SUGG.c.a_key, SUGG.c.b_key).where(
                    SUGG.c.workspace_id == ws, SUGG.c.id == suggestion_id
                )
            )
        ).first()
        if row is None:
            raise NotFound("no such suggestion", field="suggestion_id")
        return row.a_key, row.b_key

    async def conversation_counts(
        self, ws: WorkspaceId, customers: Iterable[CustomerId]
    ) -> dict[CustomerId, int]:
        ids = list(customers)
        if not ids:
            return {}
        rows = await self.session.execute(
            sa.select(CONV.c.customer_id, sa.func.count())
            .where(CONV.c.workspace_id == ws, CONV.c.customer_id.in_(ids))
            .group_by(CONV.c.customer_id)
        )
        return {CustomerId(c): int(n) for c, n in rows}

    async def conversations_of(self, ws: WorkspaceId, customer_id: CustomerId) -> list[CustomerConversation]:
        """The customer's conversations, oldest first."""
        rows = await self.session.execute(
            sa.select(
                CONV.c.id,
                CONV.c.campaign_id,
                CONV.c.status,
                CONV.c.channel,
                CONV.c.agent_id,
                CONV.c.opened_at,
                CONV.c.queue_id,
                QUEUE.c.name.label("queue_name"),
                CONV.c.closed_at,
                CONV.c.disposition,
                CONV.c.follow_up_at,
            )
            .select_from(CONV.outerjoin(QUEUE, QUEUE.c.id == CONV.c.queue_id))
            .where(CONV.c.workspace_id == ws, CONV.c.customer_id == customer_id)
            .order_by(CONV.c.opened_at, CONV.c.id)
        )
        return [
            CustomerConversation(
                id=ConversationId(r.id),
                campaign_id=CampaignId(r.campaign_id) if r.campaign_id else None,
                status=r.status,
                channel=r.channel,
                agent_id=AgentId(r.agent_id) if r.agent_id else None,
                opened_at=as_utc(r.opened_at),
                queue_id=QueueId(r.queue_id) if r.queue_id else None,
                queue_name=r.queue_name,
                closed_at=as_utc(r.closed_at) if r.closed_at is not None else None,
                disposition=dict(r.disposition) if r.disposition else None,
                follow_up_at=as_utc(r.follow_up_at) if r.follow_up_at is not None else None,
            )
            for r in rows
        ]

    async def timeline(
        self,
        ws: WorkspaceId,
        customer_id: CustomerId,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
    ) -> tuple[list[TimelineEntry], tuple[datetime, uuid.UUID] | None]:
        """Every timeline entry of the customer across channels and conversations, by time then id
        (after ``after``); the cursor reaches further forward."""
        return await timeline_page(
            self.session, ws, customer_id, limit=limit, cursor=after, towards=Towards.NEWER
        )

    async def audit_of(self, ws: WorkspaceId, customer_id: CustomerId) -> list[AuditEntry]:
        """Identity audit entries involving the customer or any customer merged into it."""
        retired = [
            c
            for (c,) in await self.session.execute(
                sa.select(CUST.c.id).where(CUST.c.merged_into == customer_id)
            )
        ]
        ids = sa.select(AUDCUST.c.audit_id).where(
            AUDCUST.c.workspace_id == ws, AUDCUST.c.customer_id.in_([customer_id, *retired])
        )
        rows = await self.session.execute(
            sa.select(AUDIT)
            .where(AUDIT.c.workspace_id == ws, AUDIT.c.id.in_(ids))
            .order_by(AUDIT.c.at, AUDIT.c.id)
        )
        return [_audit_entry(r) for r in rows]

    async def evidence(self, ws: WorkspaceId, edge_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, EvidenceEdge]:
        ids = list(edge_ids)
        if not ids:
            return {}
        rows = await self.session.execute(
            sa.select(EVID).where(EVID.c.workspace_id == ws, EVID.c.id.in_(ids))
        )
        return {r.id: _edge(r) for r in rows}

    async def remember_display_name(
        self, ws: WorkspaceId, key: str, customer_id: CustomerId, display_name: str | None
    ) -> None:
        """Keep the sender's display name as last seen (for people reading the record)."""
        if not display_name:
            return
        name = display_name[:200]
        await self.session.execute(
            sa.update(IDENT)
            .where(
                IDENT.c.workspace_id == ws, IDENT.c.key == key, IDENT.c.display_name.is_distinct_from(name)
            )
            .values(display_name=name)
        )
        await self.session.execute(
            sa.update(CUST)
            .where(CUST.c.id == customer_id, CUST.c.display_name.is_(None))
            .values(display_name=name)
        )
