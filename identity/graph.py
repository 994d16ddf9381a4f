"""The evidence graph of one workspace: identifiers, evidence, customers.

A customer is a connected component of identifiers over *active deterministic* evidence
(same identifier, channel-verified, agent link — a confirmed suggestion becomes an agent link),
where edges touching a **blocked** identifier do not connect.  Weak evidence is kept as
suggestions until an agent confirms (→ an ``agent_link`` edge) or rejects it (remembered: the
pair is never suggested again).

Decisions, all documented where they are made:

* **Blocked identifiers** (workspace blocklist, role addresses by policy, or auto-detected) are
  their own one-identifier customer — traffic *from* a reception phone lands on the "reception
  phone" record, never on a patient's — and their evidence stays on record, so every person
  who used one still lists it as a shared contact point (:meth:`IdentityGraph.shared_contacts`),
  but it is never a merge path.
* **Auto-detection**: an identifier *claimed* (stated in a message, found in a signature) by at
  least ``max_claimants`` distinct customers other than its own — pending or rejected claims
  count, confirmed ones are merges — is blocked with reason ``shared``; one seen with at least
  ``max_display_names`` different display names is blocked with reason ``names``.  Agent links
  are deliberate and do not count, so a person whose phone anchors their email, Instagram and
  WhatsApp id is not mistaken for a hub.  Lifting a block (``unblock``) is remembered: neither
  the policy nor auto-detection blocks that identifier again.
* **Customer ids**: a merge keeps the oldest customer (``created_at``, then id) and records the
  others as merged into it.  Every identifier remembers its *home*: the customer it founded or
  first joined.  A split (unmerge, or a block) gives the current id to the part holding the
  customer's founding identifier — the oldest identifier whose home is that customer, which is
  the oldest identifier of the record — preferring parts that are not only blocked identifiers;
  every other part gets back the id of the oldest customer that was merged away and is the home
  of one of its identifiers, or else a new id (which becomes the home of that part's
  identifiers).  So an unmerge restores both records exactly, even after merges of merges.
* **Retractions are remembered**: the system never re-asserts a retracted edge of the same
  source (a WhatsApp pair an agent undid stays undone); only an agent can link the pair again.

The graph works on a *working set* of rows (:func:`select_rows` is the reference of what to
load) and records what changed; :meth:`IdentityGraph.take_changes` hands the rows to write.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from core.errors import Conflict, InvalidInput, NotFound
from core.ids import CustomerId, WorkspaceId, new_id
from identity.normalize import Identifier, normalize_display_name
from identity.rows import (
    SYSTEM_ACTOR,
    AuditAction,
    AuditEntry,
    Block,
    BlockReason,
    ChangeSet,
    CustomerRow,
    EvidenceEdge,
    EvidenceSource,
    IdentifierRow,
    IdentityRows,
    Reassignment,
    Suggestion,
    SuggestionStatus,
    _pair,
)

__all__ = [
    "DEFAULT_SHARED_LOCAL_PARTS",
    "EvidenceResult",
    "IdentityGraph",
    "IdentityPolicy",
    "MergePreview",
    "SuggestionView",
    "WorkingSetIncomplete",
    "select_rows",
]

DEFAULT_SHARED_LOCAL_PARTS = frozenset(
    {
        "noreply",
        "no-reply",
        "no_reply",
        "donotreply",
        "do-not-reply",
        "mailer-daemon",
        "postmaster",
        "info",
        "informes",
        "contacto",
        "contact",
        "recepcion",
        "reception",
        "admin",
        "ventas",
        "sales",
        "soporte",
        "support",
        "facturacion",
        "billing",
    }
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class WorkingSetIncomplete(Conflict):
    """The operation would merge or split a customer whose identifiers are not all loaded.
    The storage layer loads the customers in ``details["customers"]`` and tries again."""

    code = "identity_working_set_incomplete"


@dataclass(frozen=True, slots=True)
class IdentityPolicy:
    """A workspace's identity rules."""

    shared_email_local_parts: frozenset[str] = DEFAULT_SHARED_LOCAL_PARTS  # blocked by rule
    business_keys: frozenset[str] = frozenset()  # our own addresses: never a customer's
    max_claimants: int = 3  # distinct customers claiming one identifier → auto-blocked
    max_display_names: int = 4  # distinct display names on one identifier → auto-blocked
    name_match_max_customers: int = 3  # a name shared by more customers suggests nothing

    def __post_init__(self) -> None:
        if self.max_claimants < 2 or self.max_display_names < 2 or self.name_match_max_customers < 1:
            raise InvalidInput("identity policy thresholds are too low", field="policy")


@dataclass(frozen=True, slots=True)
class SuggestionView:
    """A pending suggestion as seen from one customer."""

    suggestion: Suggestion
    customer_id: CustomerId
    other: Identifier
    other_customer_id: CustomerId | None  # None: the other identifier has not been seen yet


@dataclass(frozen=True, slots=True)
class MergePreview:
    would_merge: bool
    survivor: CustomerId | None
    merged_away: tuple[CustomerId, ...]
    customers: tuple[CustomerId, ...]
    identifiers: tuple[Identifier, ...]  # of the resulting customer
    blocked: tuple[str, ...]  # keys that prevent the merge
    conversations: int | None  # total over ``customers`` when counts were given


@dataclass(frozen=True, slots=True)
class EvidenceResult:
    edge: EvidenceEdge | None = None
    suggestion: Suggestion | None = None
    audit: AuditEntry | None = None


def _age(row: CustomerRow) -> tuple[datetime, str]:
    return (row.created_at, str(row.id))


class IdentityGraph:
    """The identity state of one workspace (or a working set of it), with its operations.

    Every mutating operation takes ``now`` and an ``actor`` (``SYSTEM_ACTOR`` or an agent id);
    ``new_uuid`` makes ids (inject a deterministic one in tests).
    """

    def __init__(
        self,
        workspace_id: WorkspaceId,
        policy: IdentityPolicy | None = None,
        *,
        new_uuid: Callable[[], uuid.UUID] = new_id,
    ) -> None:
        self.workspace_id = workspace_id
        self.policy = policy or IdentityPolicy()
        self._new_uuid = new_uuid
        self._nodes: dict[str, IdentifierRow] = {}
        self._members: dict[CustomerId, set[str]] = {}
        self._customers: dict[CustomerId, CustomerRow] = {}
        self._retired_into: dict[CustomerId, set[CustomerId]] = {}
        self._edges: dict[uuid.UUID, EvidenceEdge] = {}
        self._adj: dict[str, set[uuid.UUID]] = {}
        self._pair_edges: dict[tuple[str, str], list[uuid.UUID]] = {}
        self._suggestions: dict[uuid.UUID, Suggestion] = {}
        self._pair_suggestion: dict[tuple[str, str], uuid.UUID] = {}
        self._suggestions_by_key: dict[str, set[uuid.UUID]] = {}
        self._blocks: dict[str, Block] = {}
        self._audit: dict[uuid.UUID, AuditEntry] = {}
        self._names: dict[str, set[str]] = {}
        self._complete: set[CustomerId] | None = None
        self._looked_up: set[str] | None = None
        self._reset_changes()

    # ------------------------------------------------------------------------------------ loading

    @classmethod
    def from_rows(
        cls,
        workspace_id: WorkspaceId,
        rows: IdentityRows,
        policy: IdentityPolicy | None = None,
        *,
        new_uuid: Callable[[], uuid.UUID] = new_id,
    ) -> IdentityGraph:
        graph = cls(workspace_id, policy, new_uuid=new_uuid)
        every: Iterable[IdentifierRow | EvidenceEdge | CustomerRow | Suggestion | Block | AuditEntry] = (
            *rows.identifiers,
            *rows.edges,
            *rows.customers,
            *rows.suggestions,
            *rows.blocks,
            *rows.audit,
        )
        if any(row.workspace_id != workspace_id for row in every):
            raise InvalidInput("a row of another workspace was loaded", field="workspace_id")
        for customer in rows.customers:
            graph._customers[customer.id] = customer
            if customer.merged_into is not None:
                graph._retired_into.setdefault(customer.merged_into, set()).add(customer.id)
        for node in rows.identifiers:
            graph._index_node(node)
        for edge in rows.edges:
            graph._index_edge(edge)
        for suggestion in rows.suggestions:
            graph._index_suggestion(suggestion)
        for block in rows.blocks:
            graph._blocks[block.key] = block
        for entry in rows.audit:
            graph._audit[entry.id] = entry
        graph._complete = None if rows.complete_customers is None else set(rows.complete_customers)
        graph._looked_up = None if rows.looked_up is None else set(rows.looked_up)
        return graph

    def rows(self) -> IdentityRows:
        """Everything held, as rows (a whole workspace when the graph was built from scratch)."""
        return IdentityRows(
            identifiers=tuple(self._nodes.values()),
            edges=tuple(self._edges.values()),
            customers=tuple(self._customers.values()),
            suggestions=tuple(self._suggestions.values()),
            blocks=tuple(self._blocks.values()),
            audit=tuple(self._audit.values()),
            complete_customers=None if self._complete is None else frozenset(self._complete),
            looked_up=None if self._looked_up is None else frozenset(self._looked_up),
        )

    def _index_node(self, node: IdentifierRow) -> None:
        self._nodes[node.key] = node
        self._members.setdefault(node.customer_id, set()).add(node.key)
        for name in node.display_names:
            self._names.setdefault(name, set()).add(node.key)

    def _index_edge(self, edge: EvidenceEdge) -> None:
        self._edges[edge.id] = edge
        self._adj.setdefault(edge.a, set()).add(edge.id)
        self._adj.setdefault(edge.b, set()).add(edge.id)
        self._pair_edges.setdefault((edge.a, edge.b), []).append(edge.id)

    def _index_suggestion(self, suggestion: Suggestion) -> None:
        self._suggestions[suggestion.id] = suggestion
        self._pair_suggestion[suggestion.pair] = suggestion.id
        for key in suggestion.pair:
            self._suggestions_by_key.setdefault(key, set()).add(suggestion.id)

    # ------------------------------------------------------------------------------------ queries

    def identifier(self, key: str) -> IdentifierRow | None:
        return self._nodes.get(key)

    def customer_of(self, key: str) -> CustomerId | None:
        """Which customer the identifier belongs to now (``None``: never seen)."""
        node = self._nodes.get(key)
        return None if node is None else node.customer_id

    def customer(self, customer_id: CustomerId) -> CustomerRow | None:
        return self._customers.get(customer_id)

    def current_customer(self, customer_id: CustomerId) -> CustomerId | None:
        """The live customer an id stands for now (itself, or the one it was merged into)."""
        row = self._customers.get(customer_id)
        if row is None:
            return None
        return row.id if row.merged_into is None else row.merged_into

    def customers(self) -> tuple[CustomerId, ...]:
        """Live customers (with at least one identifier), oldest first."""
        live = [self._customers[c] for c, keys in self._members.items() if keys and c in self._customers]
        return tuple(row.id for row in sorted(live, key=_age))

    def identifiers_of(self, customer_id: CustomerId) -> tuple[IdentifierRow, ...]:
        """The customer's identifiers, oldest first."""
        return tuple(sorted((self._nodes[k] for k in self._members.get(customer_id, ())), key=self._node_age))

    def component(self, key: str) -> frozenset[str]:
        customer = self.customer_of(key)
        return frozenset() if customer is None else frozenset(self._members[customer])

    def edges(self, key: str | None = None, *, active_only: bool = False) -> tuple[EvidenceEdge, ...]:
        found = self._edges.values() if key is None else (self._edges[e] for e in self._adj.get(key, ()))
        return tuple(e for e in found if e.active or not active_only)

    def suggestion(self, suggestion_id: uuid.UUID) -> Suggestion | None:
        return self._suggestions.get(suggestion_id)

    def suggestions_for(self, customer_id: CustomerId) -> tuple[SuggestionView, ...]:
        """Pending suggestions between this customer and someone (or something) else."""
        views: list[SuggestionView] = []
        seen: set[uuid.UUID] = set()
        for key in sorted(self._members.get(customer_id, ())):
            for sid in sorted(self._suggestions_by_key.get(key, ())):
                s = self._suggestions[sid]
                if sid in seen or s.status is not SuggestionStatus.PENDING:
                    continue
                seen.add(sid)
                other = s.b if s.a.key == key else s.a
                other_customer = self.customer_of(other.key)
                if other_customer == customer_id or self.is_blocked(key) or self.is_blocked(other.key):
                    continue
                views.append(SuggestionView(s, customer_id, other, other_customer))
        return tuple(sorted(views, key=lambda v: (v.suggestion.created_at, str(v.suggestion.id))))

    def shared_contacts(self, customer_id: CustomerId) -> tuple[IdentifierRow, ...]:
        """Blocked identifiers with active evidence into this customer: shared contact points."""
        found: dict[str, IdentifierRow] = {}
        for key in self._members.get(customer_id, ()):
            for eid in self._adj.get(key, ()):
                edge = self._edges[eid]
                other = edge.b if edge.a == key else edge.a
                node = self._nodes.get(other)
                if edge.active and node is not None and self.is_blocked(other):
                    found[other] = node
        return tuple(sorted(found.values(), key=self._node_age))

    def block_of(self, key: str) -> Block | None:
        """The active block on an identifier, including the policy's role addresses."""
        block = self._blocks.get(key)
        if block is not None:
            return block if block.active else None  # a lifted block overrides the policy
        if key in self.policy.business_keys:
            return Block(self.workspace_id, key, BlockReason.POLICY, _EPOCH, SYSTEM_ACTOR, "business address")
        if key.startswith("email:"):
            local = key[len("email:") :].partition("@")[0]
            if local in self.policy.shared_email_local_parts:
                return Block(self.workspace_id, key, BlockReason.POLICY, _EPOCH, SYSTEM_ACTOR, "role address")
        return None

    def is_blocked(self, key: str) -> bool:
        return self.block_of(key) is not None

    def audit_entry(self, audit_id: uuid.UUID) -> AuditEntry | None:
        return self._audit.get(audit_id)

    def audit_log(self) -> tuple[AuditEntry, ...]:
        return tuple(sorted(self._audit.values(), key=lambda e: (e.at, str(e.id))))

    def name_matches(self, name: str, *, max_customers: int | None = None) -> tuple[IdentifierRow, ...]:
        """Identifiers seen with this normalized display name, oldest first; nothing when they
        belong to more than ``max_customers`` customers (a common name says nothing)."""
        keys = self._names.get(name, ())
        if max_customers is not None:
            customers: set[CustomerId] = set()
            for key in keys:
                customers.add(self._nodes[key].customer_id)
                if len(customers) > max_customers:
                    return ()
        return tuple(sorted((self._nodes[k] for k in keys), key=self._node_age))

    # ------------------------------------------------------------------------------------ previews

    def preview_link(
        self, a: Identifier, b: Identifier, conversation_counts: Mapping[CustomerId, int] | None = None
    ) -> MergePreview:
        """What linking two identifiers would merge, without changing anything."""
        blocked = tuple(k for k in (a.key, b.key) if self.is_blocked(k))
        involved = {c for c in (self.customer_of(a.key), self.customer_of(b.key)) if c is not None}
        identifiers = [n.identifier for c in involved for n in self.identifiers_of(c)]
        identifiers += [i for i in (a, b) if i.key not in self._nodes]
        return self._preview(involved, identifiers, blocked, conversation_counts)

    def preview_merge(
        self, a: CustomerId, b: CustomerId, conversation_counts: Mapping[CustomerId, int] | None = None
    ) -> MergePreview:
        """What merging two customers would do, without changing anything."""
        for c in (a, b):
            if not self._members.get(c):
                raise NotFound("no such customer", field="customer_id")
        identifiers = [n.identifier for c in {a, b} for n in self.identifiers_of(c)]
        return self._preview({a, b}, identifiers, (), conversation_counts)

    def _preview(
        self,
        involved: set[CustomerId],
        identifiers: list[Identifier],
        blocked: tuple[str, ...],
        counts: Mapping[CustomerId, int] | None,
    ) -> MergePreview:
        ordered = sorted((self._customers[c] for c in involved), key=_age)
        would = len(ordered) > 1 and not blocked
        survivor = ordered[0].id if ordered else None
        return MergePreview(
            would_merge=would,
            survivor=survivor,
            merged_away=tuple(r.id for r in ordered[1:]) if would else (),
            customers=tuple(r.id for r in ordered),
            identifiers=tuple(sorted({i.key: i for i in identifiers}.values(), key=lambda i: i.key)),
            blocked=blocked,
            conversations=None if counts is None else sum(counts.get(r.id, 0) for r in ordered),
        )

    # ------------------------------------------------------------------------------------ operations

    def observe(
        self,
        identifier: Identifier,
        now: datetime,
        *,
        display_name: str | None = None,
        attach_to: CustomerId | None = None,
    ) -> IdentifierRow:
        """Make sure the identifier is a node (a new one founds a new customer, or joins
        ``attach_to``), and remember the normalized display name it came with."""
        node = self._ensure(identifier, now, attach_to)
        if display_name:
            self._add_display_name(node.key, display_name, now)
        return self._nodes[node.key]

    def add_evidence(
        self,
        a: Identifier,
        b: Identifier,
        source: EvidenceSource,
        now: datetime,
        *,
        actor: str = SYSTEM_ACTOR,
        reference: str | None = None,
    ) -> EvidenceResult:
        """Deterministic evidence becomes an edge (and merges at once); weak evidence a suggestion."""
        if not source.deterministic:
            return EvidenceResult(
                suggestion=self.suggest(a, b, source, now, actor=actor, reference=reference)
            )
        if a.key == b.key:
            return EvidenceResult()
        self._ensure_pair(a, b, now)
        edge = self._add_edge(a.key, b.key, source, now, actor, reference, None)
        if edge is None:
            return EvidenceResult()
        return EvidenceResult(edge=edge, audit=self._connect(edge, now, actor, reference, None))

    def link(
        self, a: Identifier, b: Identifier, now: datetime, *, actor: str, reference: str | None = None
    ) -> AuditEntry:
        """An agent's explicit link: always recorded, merges unless an identifier is blocked."""
        self._refuse_blocked(a.key, b.key)
        if a.key == b.key:
            raise InvalidInput("an identifier cannot be linked to itself", field="identifier")
        self._ensure_pair(a, b, now)
        edge = self._add_edge(a.key, b.key, EvidenceSource.AGENT_LINK, now, actor, reference, None)
        return self._link_entry(edge, a.key, b.key, now, actor, reference, None)

    def merge_customers(self, a: CustomerId, b: CustomerId, now: datetime, *, actor: str) -> AuditEntry:
        """Merge two customers by API: an agent link between their oldest identifiers."""
        if a == b:
            raise InvalidInput("a customer cannot be merged with itself", field="customer_id")
        ids = []
        for c in (a, b):
            members = self.identifiers_of(c)
            candidates = [n for n in members if not self.is_blocked(n.key)]
            if not candidates:
                raise NotFound("no such customer, or only blocked identifiers", field="customer_id")
            ids.append(candidates[0].identifier)
        return self.link(ids[0], ids[1], now, actor=actor)

    def suggest(
        self,
        a: Identifier,
        b: Identifier,
        source: EvidenceSource,
        now: datetime,
        *,
        actor: str = SYSTEM_ACTOR,
        reference: str | None = None,
    ) -> Suggestion | None:
        """Record weak evidence as a pending suggestion, unless it is moot: the same identifier,
        a blocked one, a pair suggested before (whatever its fate), or already one customer."""
        if source.deterministic:
            raise InvalidInput("deterministic evidence is an edge, not a suggestion", field="source")
        pair = _pair(a.key, b.key)
        if (
            a.key == b.key
            or pair in self._pair_suggestion
            or self.is_blocked(a.key)
            or self.is_blocked(b.key)
        ):
            return None
        ca, cb = self.customer_of(a.key), self.customer_of(b.key)
        if ca is not None and ca == cb:
            return None
        suggestion = Suggestion(
            id=self._new_uuid(),
            workspace_id=self.workspace_id,
            a=a,
            b=b,
            source=source,
            created_at=now,
            actor=actor,
            reference=reference,
        )
        self._index_suggestion(suggestion)
        self._suggestions_inserted[suggestion.id] = None
        if source is not EvidenceSource.NAME_MATCH:
            self._check_claims(b.key, now)
        return suggestion

    def confirm(self, suggestion_id: uuid.UUID, now: datetime, *, actor: str) -> AuditEntry:
        """An agent confirms a suggestion: it becomes an agent link (and merges)."""
        s = self._pending(suggestion_id)
        self._refuse_blocked(s.a.key, s.b.key)
        self._ensure_pair(s.a, s.b, now)
        edge = self._add_edge(s.a.key, s.b.key, EvidenceSource.AGENT_LINK, now, actor, s.reference, s.id)
        self._put_suggestion(
            replace(
                s,
                status=SuggestionStatus.CONFIRMED,
                decided_at=now,
                decided_by=actor,
                edge_id=None if edge is None else edge.id,
            )
        )
        return self._link_entry(edge, s.a.key, s.b.key, now, actor, s.reference, s.id)

    def reject(self, suggestion_id: uuid.UUID, now: datetime, *, actor: str) -> AuditEntry:
        """An agent rejects a suggestion; the pair is never suggested again."""
        s = self._pending(suggestion_id)
        self._put_suggestion(replace(s, status=SuggestionStatus.REJECTED, decided_at=now, decided_by=actor))
        involved = tuple(c for c in (self.customer_of(s.a.key), self.customer_of(s.b.key)) if c is not None)
        return self._record(
            AuditAction.REJECT, now, actor, before=involved, after=involved, suggestion_id=s.id
        )

    def retract(
        self, edge_ids: Iterable[uuid.UUID], now: datetime, *, actor: str, detail: str = ""
    ) -> AuditEntry:
        """Unmerge: retract evidence (kept, marked retracted) and split what no longer holds."""
        edges: list[EvidenceEdge] = []
        for eid in edge_ids:
            edge = self._edges.get(eid)
            if edge is None:
                raise NotFound("no such evidence", field="edge_id")
            if edge.active:
                edges.append(edge)
        touched = {c for e in edges for c in (self.customer_of(e.a), self.customer_of(e.b)) if c is not None}
        self._require_complete(touched)
        audit_id = self._new_uuid()
        for edge in edges:
            self._put_edge(replace(edge, retracted_at=now, retracted_by=actor, retraction_audit_id=audit_id))
        retracted = [e.id for e in edges]
        before = tuple(sorted(touched, key=lambda c: _age(self._customers[c])))
        after: list[CustomerId] = []
        moves: list[Reassignment] = []
        for customer in before:
            parts, moved = self._split(customer, now)
            after.extend(cid for cid, _ in parts)
            moves.extend(moved)
        return self._record(
            AuditAction.UNMERGE,
            now,
            actor,
            entry_id=audit_id,
            edge_ids=tuple(retracted),
            before=before,
            after=tuple(after),
            reassignments=tuple(moves),
            detail=detail,
        )

    def unmerge(self, audit_id: uuid.UUID, now: datetime, *, actor: str) -> AuditEntry:
        """Undo a merge or link recorded in the audit log by retracting its evidence."""
        entry = self._audit.get(audit_id)
        if entry is None or entry.action not in (AuditAction.MERGE, AuditAction.LINK):
            raise NotFound("no such merge", field="audit_id")
        return self.retract(entry.edge_ids, now, actor=actor, detail=f"undo {entry.id}")

    def block(
        self,
        key: str,
        now: datetime,
        *,
        actor: str,
        reason: BlockReason = BlockReason.MANUAL,
        detail: str = "",
    ) -> AuditEntry | None:
        """Put an identifier on the blocklist (it may not have been seen yet); it stops merging
        anyone, so the customer it joined splits.  ``None`` when it was already blocked."""
        if self.is_blocked(key):
            return None
        customer = self.customer_of(key)
        if customer is not None:
            self._require_complete({customer})
        self._blocks[key] = Block(self.workspace_id, key, reason, now, actor, detail)
        self._blocks_dirty[key] = None
        if customer is None:
            return self._record(AuditAction.BLOCK, now, actor, key=key, detail=reason.value)
        parts, moved = self._split(customer, now)
        return self._record(
            AuditAction.BLOCK,
            now,
            actor,
            before=(customer,),
            after=tuple(cid for cid, _ in parts),
            reassignments=tuple(moved),
            key=key,
            detail=reason.value,
        )

    def unblock(self, key: str, now: datetime, *, actor: str) -> AuditEntry | None:
        """Lift a block (also a policy one); its active evidence connects again.  The lifted row
        is kept, so neither the policy nor auto-detection blocks the identifier again."""
        block = self.block_of(key)
        if block is None:
            return None
        neighbours = {key}
        for eid in self._adj.get(key, ()):
            edge = self._edges[eid]
            if edge.active and edge.source.deterministic:
                neighbours.add(edge.b if edge.a == key else edge.a)
        for other in neighbours - {key}:
            if other not in self._nodes:
                raise WorkingSetIncomplete(
                    "identifiers linked to the unblocked one are not loaded", details={"keys": [other]}
                )
        involved = {
            self._nodes[k].customer_id
            for k in neighbours
            if k in self._nodes and (k == key or not self.is_blocked(k))
        }
        self._require_complete(involved)
        self._blocks[key] = replace(block, lifted_at=now, lifted_by=actor)
        self._blocks_dirty[key] = None
        before = tuple(sorted(involved, key=lambda c: _age(self._customers[c])))
        survivor, moved = self._merge(involved) if len(involved) > 1 else (None, [])
        after = (survivor,) if survivor is not None else before
        return self._record(
            AuditAction.UNBLOCK, now, actor, before=before, after=after, reassignments=tuple(moved), key=key
        )

    # ------------------------------------------------------------------------------------ changes

    def take_changes(self) -> ChangeSet:
        """The rows written since the last call (then forgotten)."""
        moves = tuple(
            Reassignment(key, old, new) for key, (old, new) in self._reassigned.items() if old != new
        )
        changes = ChangeSet(
            identifiers_inserted=tuple(self._nodes[k] for k in self._nodes_inserted),
            identifiers_updated=tuple(
                self._nodes[k] for k in self._nodes_updated if k not in self._nodes_inserted
            ),
            edges_inserted=tuple(self._edges[e] for e in self._edges_inserted),
            edges_updated=tuple(self._edges[e] for e in self._edges_updated if e not in self._edges_inserted),
            customers_inserted=tuple(self._customers[c] for c in self._customers_inserted),
            customers_updated=tuple(
                self._customers[c] for c in self._customers_updated if c not in self._customers_inserted
            ),
            suggestions_inserted=tuple(self._suggestions[s] for s in self._suggestions_inserted),
            suggestions_updated=tuple(
                self._suggestions[s] for s in self._suggestions_updated if s not in self._suggestions_inserted
            ),
            blocks_upserted=tuple(self._blocks[k] for k in self._blocks_dirty),
            audit_inserted=tuple(self._audit_new),
            reassignments=moves,
        )
        self._reset_changes()
        return changes

    def _reset_changes(self) -> None:
        # dicts as ordered sets: the change set lists rows in the order they were touched
        self._nodes_inserted: dict[str, None] = {}
        self._nodes_updated: dict[str, None] = {}
        self._edges_inserted: dict[uuid.UUID, None] = {}
        self._edges_updated: dict[uuid.UUID, None] = {}
        self._customers_inserted: dict[CustomerId, None] = {}
        self._customers_updated: dict[CustomerId, None] = {}
        self._suggestions_inserted: dict[uuid.UUID, None] = {}
        self._suggestions_updated: dict[uuid.UUID, None] = {}
        self._blocks_dirty: dict[str, None] = {}
        self._audit_new: list[AuditEntry] = []
        self._reassigned: dict[str, tuple[CustomerId, CustomerId]] = {}

    # ------------------------------------------------------------------------------------ internals

    def _node_age(self, node: IdentifierRow) -> tuple[datetime, datetime, str, str]:
        home = self._customers.get(node.home_customer_id)
        home_created = node.first_seen_at if home is None else home.created_at
        return (node.first_seen_at, home_created, str(node.home_customer_id), node.key)

    def _is_complete(self, customer: CustomerId) -> bool:
        return self._complete is None or customer in self._complete

    def _require_complete(self, customers: Iterable[CustomerId]) -> None:
        missing = sorted(str(c) for c in customers if not self._is_complete(c))
        if missing:
            raise WorkingSetIncomplete("customers are not fully loaded", details={"customers": missing})

    def _refuse_blocked(self, *keys: str) -> None:
        for key in keys:
            block = self.block_of(key)
            if block is not None:
                raise Conflict(
                    "a blocked identifier cannot link customers",
                    field="identifier",
                    details={"reason": block.reason.value},
                )

    def _pending(self, suggestion_id: uuid.UUID) -> Suggestion:
        s = self._suggestions.get(suggestion_id)
        if s is None:
            raise NotFound("no such suggestion", field="suggestion_id")
        if s.status is not SuggestionStatus.PENDING:
            raise Conflict(f"the suggestion is already {s.status.value}", field="suggestion_id")
        return s

    def _new_customer(self, now: datetime) -> CustomerId:
        cid = CustomerId(self._new_uuid())
        self._customers[cid] = CustomerRow(cid, self.workspace_id, now)
        self._members[cid] = set()
        self._customers_inserted[cid] = None
        if self._complete is not None:
            self._complete.add(cid)
        return cid

    def _put_customer(self, row: CustomerRow) -> None:
        self._customers[row.id] = row
        self._customers_updated[row.id] = None

    def _put_edge(self, edge: EvidenceEdge) -> None:
        self._edges[edge.id] = edge
        self._edges_updated[edge.id] = None

    def _put_suggestion(self, s: Suggestion) -> None:
        self._suggestions[s.id] = s
        self._suggestions_updated[s.id] = None

    def _ensure(self, identifier: Identifier, now: datetime, attach_to: CustomerId | None) -> IdentifierRow:
        node = self._nodes.get(identifier.key)
        if node is not None:
            return node
        if self._looked_up is not None:
            if identifier.key not in self._looked_up:
                raise WorkingSetIncomplete(
                    "an identifier was not looked up; it may exist", details={"keys": [identifier.key]}
                )
        if attach_to is not None and (self.is_blocked(identifier.key) or attach_to not in self._customers):
            attach_to = None
        if attach_to is not None:
            self._require_complete({attach_to})
        customer = attach_to if attach_to is not None else self._new_customer(now)
        node = IdentifierRow(self.workspace_id, identifier, customer, customer, now)
        self._index_node(node)
        self._nodes_inserted[node.key] = None
        return node

    def _ensure_pair(self, a: Identifier, b: Identifier, now: datetime) -> None:
        """Create missing endpoints; a new one joins the other's customer when neither is blocked."""
        first, second = (a, b) if a.key in self._nodes or b.key not in self._nodes else (b, a)
        anchor = self._ensure(first, now, None)
        joinable = not self.is_blocked(first.key)
        self._ensure(second, now, anchor.customer_id if joinable else None)

    def _add_edge(
        self,
        a: str,
        b: str,
        source: EvidenceSource,
        now: datetime,
        actor: str,
        reference: str | None,
        suggestion_id: uuid.UUID | None,
    ) -> EvidenceEdge | None:
        pair = _pair(a, b)
        same = [self._edges[e] for e in self._pair_edges.get(pair, ()) if self._edges[e].source is source]
        if any(e.active for e in same):
            return None
        if same and source is not EvidenceSource.AGENT_LINK:
            return None  # retracted by an agent: the system does not assert it again
        edge = EvidenceEdge(
            id=self._new_uuid(),
            workspace_id=self.workspace_id,
            a=pair[0],
            b=pair[1],
            source=source,
            created_at=now,
            actor=actor,
            reference=reference,
            suggestion_id=suggestion_id,
        )
        self._index_edge(edge)
        self._edges_inserted[edge.id] = None
        return edge

    def _connect(
        self,
        edge: EvidenceEdge | None,
        now: datetime,
        actor: str,
        reference: str | None,
        suggestion_id: uuid.UUID | None,
    ) -> AuditEntry | None:
        """Merge the customers a new edge joins; the audit entry of the merge, if any."""
        if edge is None or self.is_blocked(edge.a) or self.is_blocked(edge.b):
            return None
        involved = {self._nodes[edge.a].customer_id, self._nodes[edge.b].customer_id}
        if len(involved) < 2:
            return None
        before = tuple(sorted(involved, key=lambda c: _age(self._customers[c])))
        survivor, moved = self._merge(involved)
        return self._record(
            AuditAction.MERGE,
            now,
            actor,
            edge_ids=(edge.id,),
            before=before,
            after=(survivor,),
            reassignments=tuple(moved),
            suggestion_id=suggestion_id,
            reference=reference,
        )

    def _link_entry(
        self,
        edge: EvidenceEdge | None,
        a: str,
        b: str,
        now: datetime,
        actor: str,
        reference: str | None,
        suggestion_id: uuid.UUID | None,
    ) -> AuditEntry:
        """Audit an agent's link or confirmation: a merge, or a link that changed no customer."""
        merged = self._connect(edge, now, actor, reference, suggestion_id)
        if merged is not None:
            return merged
        current = tuple(sorted({c for c in (self.customer_of(a), self.customer_of(b)) if c is not None}))
        return self._record(
            AuditAction.LINK,
            now,
            actor,
            edge_ids=(edge.id,) if edge is not None else (),
            before=current,
            after=current,
            suggestion_id=suggestion_id,
            reference=reference,
        )

    def _record(
        self,
        action: AuditAction,
        at: datetime,
        actor: str,
        *,
        entry_id: uuid.UUID | None = None,
        edge_ids: tuple[uuid.UUID, ...] = (),
        before: tuple[CustomerId, ...] = (),
        after: tuple[CustomerId, ...] = (),
        reassignments: tuple[Reassignment, ...] = (),
        suggestion_id: uuid.UUID | None = None,
        key: str | None = None,
        reference: str | None = None,
        detail: str = "",
    ) -> AuditEntry:
        entry = AuditEntry(
            id=entry_id if entry_id is not None else self._new_uuid(),
            workspace_id=self.workspace_id,
            action=action,
            at=at,
            actor=actor,
            edge_ids=edge_ids,
            before=before,
            after=after,
            reassignments=reassignments,
            suggestion_id=suggestion_id,
            key=key,
            reference=reference,
            detail=detail,
        )
        self._audit[entry.id] = entry
        self._audit_new.append(entry)
        return entry

    def _move(self, key: str, to: CustomerId) -> Reassignment | None:
        node = self._nodes[key]
        old = node.customer_id
        if old == to:
            return None
        self._nodes[key] = replace(node, customer_id=to)
        self._nodes_updated[key] = None
        self._members[old].discard(key)
        self._members.setdefault(to, set()).add(key)
        first, _ = self._reassigned.get(key, (old, to))
        self._reassigned[key] = (first, to)
        return Reassignment(key, old, to)

    def _merge(self, customers: set[CustomerId]) -> tuple[CustomerId, list[Reassignment]]:
        self._require_complete(customers)
        ordered = sorted((self._customers[c] for c in customers), key=_age)
        survivor = ordered[0].id
        moved: list[Reassignment] = []
        retired = self._retired_into.setdefault(survivor, set())
        for row in ordered[1:]:
            for key in sorted(self._members.get(row.id, ())):
                move = self._move(key, survivor)
                if move is not None:
                    moved.append(move)
            self._members.pop(row.id, None)
            self._put_customer(replace(row, merged_into=survivor))
            retired.add(row.id)
            for earlier in self._retired_into.pop(row.id, set()):
                self._put_customer(replace(self._customers[earlier], merged_into=survivor))
                retired.add(earlier)
        return survivor, moved

    def _parts(self, keys: set[str]) -> list[set[str]]:
        parts: list[set[str]] = []
        seen: set[str] = set()
        for start in sorted(keys):
            if start in seen:
                continue
            part = {start}
            seen.add(start)
            stack = [start] if not self.is_blocked(start) else []
            while stack:
                key = stack.pop()
                for eid in self._adj.get(key, ()):
                    edge = self._edges[eid]
                    if not edge.active or not edge.source.deterministic:
                        continue
                    other = edge.b if edge.a == key else edge.a
                    if other in seen or other not in keys or self.is_blocked(other):
                        continue
                    seen.add(other)
                    part.add(other)
                    stack.append(other)
            parts.append(part)
        return parts

    def _split(
        self, customer: CustomerId, now: datetime
    ) -> tuple[list[tuple[CustomerId, set[str]]], list[Reassignment]]:
        """Recompute one customer's component; give each part its id (see the module notes)."""
        self._require_complete({customer})
        keys = set(self._members.get(customer, ()))
        parts = self._parts(keys)
        if len(parts) <= 1:
            return [(customer, keys)], []

        def order(part: set[str]) -> tuple[bool, bool, tuple[datetime, datetime, str, str]]:
            # the part holding the customer's founding identifier keeps its id
            only_blocked = all(self.is_blocked(k) for k in part)
            founded = [
                self._node_age(self._nodes[k]) for k in part if self._nodes[k].home_customer_id == customer
            ]
            oldest = min(founded) if founded else min(self._node_age(self._nodes[k]) for k in part)
            return (only_blocked, not founded, oldest)

        parts.sort(key=order)
        retired = self._retired_into.setdefault(customer, set())
        assigned: list[tuple[CustomerId, set[str]]] = [(customer, parts[0])]
        for part in parts[1:]:
            homes = {self._nodes[k].home_customer_id for k in part} & retired
            if homes:
                cid = min(homes, key=lambda c: _age(self._customers[c]))
                retired.discard(cid)
                self._put_customer(replace(self._customers[cid], merged_into=None))
            else:
                cid = self._new_customer(now)
                for key in part:  # a new record is the home its identifiers return to
                    self._nodes[key] = replace(self._nodes[key], home_customer_id=cid)
                    self._nodes_updated[key] = None
            assigned.append((cid, part))
        moved: list[Reassignment] = []
        for cid, part in assigned[1:]:
            for key in sorted(part):
                move = self._move(key, cid)
                if move is not None:
                    moved.append(move)
        # customers merged away earlier follow the part that holds their oldest identifier
        part_of = {key: cid for cid, part in assigned for key in part}
        for old in sorted(retired, key=lambda c: _age(self._customers[c])):
            founded = [self._nodes[k] for k in keys if self._nodes[k].home_customer_id == old]
            if not founded:
                continue
            target = part_of[min(founded, key=self._node_age).key]
            if target != customer:
                retired.discard(old)
                self._retired_into.setdefault(target, set()).add(old)
                self._put_customer(replace(self._customers[old], merged_into=target))
        return assigned, moved

    def _add_display_name(self, key: str, raw_name: str, now: datetime) -> None:
        name = normalize_display_name(raw_name)
        node = self._nodes[key]
        if name is None or name in node.display_names:
            return
        if len(node.display_names) >= self.policy.max_display_names:
            return  # enough to judge; do not grow without bound
        names = node.display_names | {name}
        self._nodes[key] = replace(node, display_names=names)
        self._nodes_updated[key] = None
        self._names.setdefault(name, set()).add(key)
        if len(names) >= self.policy.max_display_names and key not in self._blocks:
            self.block(
                key,
                now,
                actor=SYSTEM_ACTOR,
                reason=BlockReason.NAMES,
                detail=f"seen with {len(names)} display names",
            )

    def _check_claims(self, key: str, now: datetime) -> None:
        if key in self._blocks or self.is_blocked(key):
            return  # blocked already, or an agent lifted a block on it
        own = self.customer_of(key)
        claimants: set[str] = set()
        for sid in self._suggestions_by_key.get(key, ()):
            s = self._suggestions[sid]
            if s.source is EvidenceSource.NAME_MATCH or s.status is SuggestionStatus.CONFIRMED:
                continue
            other = s.a.key if s.b.key == key else s.b.key
            customer = self.customer_of(other)
            if customer is None or customer != own:
                claimants.add(other if customer is None else str(customer))
        if len(claimants) >= self.policy.max_claimants:
            self.block(
                key,
                now,
                actor=SYSTEM_ACTOR,
                reason=BlockReason.SHARED,
                detail=f"claimed by {len(claimants)} customers",
            )


def select_rows(
    rows: IdentityRows,
    keys: Iterable[str],
    *,
    names: Iterable[str] = (),
    audit_ids: Iterable[uuid.UUID] = (),
    for_unblock: bool = False,
) -> IdentityRows:
    """The working set an operation on ``keys`` needs, picked out of a whole workspace's rows.

    This is the reference for the storage layer's queries (and is tested to give the same
    decisions as the whole graph):

    1. seeds: ``keys``, plus the endpoints of the edges of the audit entries in ``audit_ids``
       (to unmerge them), plus — for ``unblock`` — the identifiers joined to a seed by active
       deterministic edges;
    2. **complete** customers: the current customers of the seeds; every identifier of theirs
       (``looked_up`` = the seeds and these: the only keys that may be created as new);
    3. context identifiers (row only): those seen with a display name in ``names`` (name
       matching) and the other ends of suggestions touching a seed or a complete identifier
       (to count claims on a shared identifier);
    4. the edges touching a complete identifier; the suggestions of step 3; the block rows of
       every key above; the customers referenced by any loaded identifier (current and home)
       and those merged into a complete customer; the audit entries asked for.
    """
    nodes = {n.key: n for n in rows.identifiers}
    edges_by_id = {e.id: e for e in rows.edges}
    wanted_audit = set(audit_ids)
    audit = tuple(e for e in rows.audit if e.id in wanted_audit)
    seeds = set(keys)
    for entry in audit:
        for eid in entry.edge_ids:
            if eid in edges_by_id:
                seeds |= {edges_by_id[eid].a, edges_by_id[eid].b}
    if for_unblock:
        for edge in rows.edges:
            if edge.active and edge.source.deterministic and (edge.a in seeds or edge.b in seeds):
                seeds |= {edge.a, edge.b}
    complete = {nodes[k].customer_id for k in seeds if k in nodes}
    loaded = {n.key for n in rows.identifiers if n.customer_id in complete}
    wanted_names = set(names)
    context = {n.key for n in rows.identifiers if n.display_names & wanted_names}
    suggestions = tuple(s for s in rows.suggestions if {s.a.key, s.b.key} & (seeds | loaded))
    for s in suggestions:
        context |= {s.a.key, s.b.key}
    picked = [nodes[k] for k in sorted(loaded | context) if k in nodes]
    referenced = {c for n in picked for c in (n.customer_id, n.home_customer_id)}
    customers = tuple(
        c
        for c in rows.customers
        if c.id in referenced or (c.merged_into is not None and c.merged_into in complete)
    )
    every_key = seeds | loaded | context
    return IdentityRows(
        identifiers=tuple(picked),
        edges=tuple(e for e in rows.edges if e.a in loaded or e.b in loaded),
        customers=customers,
        suggestions=suggestions,
        blocks=tuple(b for b in rows.blocks if b.key in every_key),
        audit=audit,
        complete_customers=frozenset(complete),
        looked_up=frozenset(seeds | loaded),
    )
