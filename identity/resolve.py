"""Resolve an inbound event's sender to a customer.

Two pure steps around the storage layer's load:

1. :func:`observe_event` reads an event into an :class:`Observation` — the sender's identifier,
   the channel-verified identities paired with it, the identifiers stated in the text or the
   signature — without any state.  ``Observation.keys`` and ``Observation.name_key`` say what
   to load (``identity.graph.select_rows`` is the reference).
2. :func:`resolve` applies the observation to the loaded :class:`~identity.graph.IdentityGraph`
   and returns a :class:`Resolution` with the customer and the :class:`~identity.rows.ChangeSet`
   to write in one transaction.

Retry-friendly: resolving the same observation again on the state it produced changes nothing
(edges, suggestions and names are deduplicated), and resolving it on fresher state — after the
unique index on ``(workspace, identifier key)`` refused a second new customer for the same
identifier — lands on the customer the other worker created.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from core.errors import InvalidInput
from core.events import (
    InboundMessage,
    SenderEvent,
    SystemNotice,
)
from core.ids import CustomerId
from identity.extract import extract_signature, extract_stated
from identity.graph import IdentityGraph
from identity.normalize import Identifier, email_identifier, normalize_address, normalize_display_name
from identity.rows import (
    SYSTEM_ACTOR,
    AuditAction,
    AuditEntry,
    ChangeSet,
    EvidenceSource,
    IdentifierRow,
    Suggestion,
)

__all__ = [
    "MatchKind",
    "Observation",
    "Resolution",
    "Resolutions",
    "StatedIdentifier",
    "carries_new_evidence",
    "observe_event",
    "resolve",
    "resolve_all",
]


class MatchKind(StrEnum):
    SAME_IDENTIFIER = "same_identifier"  # the sender's normalized identifier was known
    CHANNEL_VERIFIED = "channel_verified"  # new, but paired by the channel with a known one
    NEW = "new"  # a new customer


@dataclass(frozen=True, slots=True)
class StatedIdentifier:
    identifier: Identifier
    source: EvidenceSource  # CUSTOMER_STATED or EMAIL_SIGNATURE


@dataclass(frozen=True, slots=True)
class Observation:
    """What one event says about identity."""

    sender: Identifier
    display_name: str | None = None
    verified: tuple[Identifier, ...] = ()  # channel-verified identities of the same contact
    stated: tuple[StatedIdentifier, ...] = ()
    reference: str | None = None  # message id, recorded on evidence and suggestions

    @property
    def keys(self) -> frozenset[str]:
        """Identifier keys whose customers the storage layer must load completely."""
        return frozenset(
            {self.sender.key, *(v.key for v in self.verified), *(s.identifier.key for s in self.stated)}
        )

    @property
    def others(self) -> frozenset[str]:
        """The keys it names besides the sender's (stated or channel-verified): an observation
        naming none cannot merge customers."""
        return self.keys - {self.sender.key}

    @property
    def name_key(self) -> str | None:
        """The normalized display name to look up identifiers by (name matching)."""
        return normalize_display_name(self.display_name)


@dataclass(frozen=True, slots=True)
class Resolution:
    customer_id: CustomerId
    sender: IdentifierRow
    matched_by: MatchKind
    created_customer: bool
    merges: tuple[AuditEntry, ...]
    suggestions: tuple[Suggestion, ...]
    blocks: tuple[AuditEntry, ...]
    changes: ChangeSet


def _business_keys(event: SenderEvent) -> frozenset[str]:
    try:
        return frozenset({email_identifier(event.business_address).key})
    except InvalidInput:
        return frozenset()


def observe_event(
    event: SenderEvent,
    *,
    default_region: str | None,
    business_keys: frozenset[str] = frozenset(),
    reference: str | None = None,
) -> Observation:
    """Read identity evidence out of an event.

    ``default_region`` is the campaign's country (numbers written in national format);
    ``business_keys`` our own addresses, never suggested as a customer's (the event's own
    mailbox is added).  An invalid sender address raises ``InvalidInput``; invalid
    channel-verified identities are skipped.
    """
    sender = normalize_address(event.sender, default_region)
    verified: dict[str, Identifier] = {}
    candidates = list(event.sender_identities) if isinstance(event, InboundMessage) else []
    if isinstance(event, SystemNotice) and event.new_address is not None:
        candidates.append(event.new_address)  # "customer changed number": the channel says so
    for address in candidates:
        try:
            identifier = normalize_address(address, default_region)
        except InvalidInput:
            continue
        if identifier.key != sender.key:
            verified.setdefault(identifier.key, identifier)
    stated: dict[str, StatedIdentifier] = {}
    if isinstance(event, InboundMessage) and event.automated is None:
        excluded = business_keys | _business_keys(event) | {sender.key, *verified}
        found = [
            *(
                StatedIdentifier(i, EvidenceSource.CUSTOMER_STATED)
                for i in extract_stated(event.text, default_region)
            ),
            *(
                StatedIdentifier(i, EvidenceSource.EMAIL_SIGNATURE)
                for i in extract_signature(event.signature, default_region)
            ),
        ]
        for item in found:
            if item.identifier.key not in excluded:
                stated.setdefault(item.identifier.key, item)
    return Observation(
        sender=sender,
        display_name=event.sender.display_name,
        verified=tuple(verified.values()),
        stated=tuple(stated.values()),
        reference=reference if reference is not None else event.external_id,
    )


def carries_new_evidence(
    observation: Observation, known_names: Iterable[str], linked: Iterable[str] = ()
) -> bool:
    """Whether resolving ``observation`` of an already-known sender could change the graph.

    A known sender writing under a name it was already seen with, stating nothing, whose
    channel-verified partners (a WhatsApp number's business-scoped id) are already linked to it
    by live evidence, adds no evidence, no suggestion and no name: its customer is the one its
    identifier belongs to, and the graph need not be loaded.  ``known_names``: the identifier's
    normalized display names; ``linked``: the keys its live evidence edges reach."""
    if observation.stated:
        return True
    if {v.key for v in observation.verified} - {observation.sender.key} - set(linked):
        return True
    name = observation.name_key
    return name is not None and name not in set(known_names)


def resolve(
    graph: IdentityGraph, observation: Observation, now: datetime, *, actor: str = SYSTEM_ACTOR
) -> Resolution:
    """Decide the sender's customer and record the evidence; take the graph's changes."""
    decided = _decide(graph, observation, now, actor)
    changes = graph.take_changes()
    return _resolution(graph, observation, decided, changes, changes)


@dataclass(frozen=True, slots=True)
class Resolutions:
    """Several observations resolved one after another on one graph, and the rows all of them
    write (one change set: each table written once)."""

    items: tuple[Resolution, ...]
    changes: ChangeSet


def resolve_all(
    graph: IdentityGraph,
    observations: Iterable[Observation],
    now: datetime,
    *,
    actor: str = SYSTEM_ACTOR,
) -> Resolutions:
    """``resolve`` each observation in turn on ``graph`` (a later one sees what an earlier one
    wrote, as if each were resolved after the other was committed), then take the changes once.
    Each resolution's ``changes`` is the whole set; its merges, suggestions and blocks are those
    that concern its sender."""
    decided = [(o, _decide(graph, o, now, actor)) for o in observations]
    changes = graph.take_changes()
    return Resolutions(
        tuple(_resolution(graph, o, d, changes, _concerning(changes, graph, o)) for o, d in decided),
        changes,
    )


def _concerning(changes: ChangeSet, graph: IdentityGraph, observation: Observation) -> ChangeSet:
    """The audit entries and suggestions of ``changes`` about the observation's sender."""
    key = observation.sender.key
    customer = graph.customer_of(key)
    return ChangeSet(
        suggestions_inserted=tuple(s for s in changes.suggestions_inserted if key in (s.a.key, s.b.key)),
        audit_inserted=tuple(
            e
            for e in changes.audit_inserted
            if e.key == key or (customer is not None and customer in e.after)
        ),
    )


def _decide(
    graph: IdentityGraph, observation: Observation, now: datetime, actor: str
) -> tuple[bool, CustomerId | None]:
    """Apply ``observation`` to the graph: (whether its sender was known, whom it joined)."""
    sender = observation.sender
    known = graph.identifier(sender.key) is not None
    attach_to: CustomerId | None = None
    if not known and not graph.is_blocked(sender.key):
        partners = sorted(
            (
                graph.identifiers_of(c)[0]
                for v in observation.verified
                if not graph.is_blocked(v.key) and (c := graph.customer_of(v.key)) is not None
            ),
            key=lambda row: (row.first_seen_at, row.key),
        )
        attach_to = partners[0].customer_id if partners else None
    graph.observe(sender, now, display_name=observation.display_name, attach_to=attach_to)
    for identifier in observation.verified:
        graph.add_evidence(
            sender,
            identifier,
            EvidenceSource.CHANNEL_VERIFIED,
            now,
            actor=actor,
            reference=observation.reference,
        )
    for stated in observation.stated:
        graph.suggest(
            sender, stated.identifier, stated.source, now, actor=actor, reference=observation.reference
        )
    _suggest_by_name(graph, observation, now, actor)
    return known, attach_to


def _resolution(
    graph: IdentityGraph,
    observation: Observation,
    decided: tuple[bool, CustomerId | None],
    changes: ChangeSet,
    own: ChangeSet,
) -> Resolution:
    """The resolution of ``observation``: ``changes`` all the rows to write, ``own`` the audit
    entries and suggestions it reports as its own."""
    known, attach_to = decided
    sender = observation.sender
    customer_id = graph.customer_of(sender.key)
    node = graph.identifier(sender.key)
    if customer_id is None or node is None:  # observe() always creates it
        raise InvalidInput("the sender could not be resolved", field="sender")
    if known:
        matched_by = MatchKind.SAME_IDENTIFIER
    elif attach_to is not None:
        matched_by = MatchKind.CHANNEL_VERIFIED
    else:
        matched_by = MatchKind.NEW
    return Resolution(
        customer_id=customer_id,
        sender=node,
        matched_by=matched_by,
        created_customer=any(c.id == customer_id for c in changes.customers_inserted),
        merges=tuple(e for e in own.audit_inserted if e.action is AuditAction.MERGE),
        suggestions=own.suggestions_inserted,
        blocks=tuple(e for e in own.audit_inserted if e.action is AuditAction.BLOCK),
        changes=changes,
    )


def _suggest_by_name(graph: IdentityGraph, observation: Observation, now: datetime, actor: str) -> None:
    name = observation.name_key
    own = graph.customer_of(observation.sender.key)
    if name is None or own is None or graph.is_blocked(observation.sender.key):
        return
    by_customer: dict[CustomerId, IdentifierRow] = {}
    for row in graph.name_matches(name, max_customers=graph.policy.name_match_max_customers + 1):
        if row.customer_id != own and not graph.is_blocked(row.key):
            by_customer.setdefault(row.customer_id, row)
    if len(by_customer) > graph.policy.name_match_max_customers:
        return  # a common name: suggesting it would be noise
    for row in by_customer.values():
        graph.suggest(
            observation.sender,
            row.identifier,
            EvidenceSource.NAME_MATCH,
            now,
            actor=actor,
            reference=observation.reference,
        )
