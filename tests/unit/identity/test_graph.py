"""The evidence graph: deterministic evidence merges, weak evidence suggests, every merge can be undone."""

from __future__ import annotations

import uuid

import pytest

from core.errors import Conflict
from core.ids import WorkspaceId
from identity import (
    AuditAction,
    BlockReason,
    EvidenceSource,
    IdentityGraph,
    IdentityPolicy,
    SuggestionStatus,
    WorkingSetIncomplete,
    email_identifier,
    phone_identifier,
    select_rows,
)
from tests.unit.identity.conftest import (
    AGENT,
    BSUID,
    EMAIL,
    IG,
    OTHER_EMAIL,
    PHONE,
    PHONE_NATIONAL,
    RECEPTION,
    Clock,
)


def test_a_new_identifier_founds_a_new_customer(graph: IdentityGraph, clock: Clock) -> None:
    row = graph.observe(PHONE, clock.now)
    assert graph.customers() == (row.customer_id,)
    assert row.home_customer_id == row.customer_id


def test_the_same_normalized_identifier_is_the_same_customer(graph: IdentityGraph, clock: Clock) -> None:
    first = graph.observe(PHONE, clock.now)
    again = graph.observe(PHONE_NATIONAL, clock.tick())
    assert again.customer_id == first.customer_id
    assert len(graph.customers()) == 1


def test_channel_verified_evidence_merges_at_once(graph: IdentityGraph, clock: Clock) -> None:
    phone = graph.observe(PHONE, clock.now).customer_id
    bsuid = graph.observe(BSUID, clock.tick()).customer_id
    result = graph.add_evidence(
        PHONE, BSUID, EvidenceSource.CHANNEL_VERIFIED, clock.tick(), reference="wamid.1"
    )
    assert result.audit is not None and result.audit.action is AuditAction.MERGE
    assert graph.customer_of(BSUID.key) == graph.customer_of(PHONE.key) == phone
    assert graph.current_customer(bsuid) == phone


@pytest.mark.parametrize(
    "source", [EvidenceSource.CUSTOMER_STATED, EvidenceSource.EMAIL_SIGNATURE, EvidenceSource.NAME_MATCH]
)
def test_weak_evidence_only_suggests(graph: IdentityGraph, clock: Clock, source: EvidenceSource) -> None:
    graph.observe(PHONE, clock.now)
    graph.observe(EMAIL, clock.tick())
    result = graph.add_evidence(EMAIL, PHONE, source, clock.tick())
    assert result.edge is None and result.suggestion is not None
    assert graph.customer_of(EMAIL.key) != graph.customer_of(PHONE.key)
    view = graph.suggestions_for(graph.customer_of(EMAIL.key))  # type: ignore[arg-type]
    assert [(v.other.key, v.other_customer_id) for v in view] == [(PHONE.key, graph.customer_of(PHONE.key))]


def test_confirming_a_suggestion_turns_it_into_an_agent_link_and_merges(
    graph: IdentityGraph, clock: Clock
) -> None:
    graph.observe(PHONE, clock.now)
    graph.observe(EMAIL, clock.tick())
    suggestion = graph.suggest(EMAIL, PHONE, EvidenceSource.EMAIL_SIGNATURE, clock.tick())
    assert suggestion is not None
    entry = graph.confirm(suggestion.id, clock.tick(), actor=AGENT)
    assert entry.action is AuditAction.MERGE and entry.suggestion_id == suggestion.id
    (edge,) = graph.edges(EMAIL.key)
    assert (edge.source, edge.actor, edge.suggestion_id) == (EvidenceSource.AGENT_LINK, AGENT, suggestion.id)
    assert graph.suggestion(suggestion.id).status is SuggestionStatus.CONFIRMED  # type: ignore[union-attr]
    assert graph.customer_of(EMAIL.key) == graph.customer_of(PHONE.key)


def test_a_rejected_pair_is_never_suggested_again(graph: IdentityGraph, clock: Clock) -> None:
    graph.observe(PHONE, clock.now)
    graph.observe(EMAIL, clock.tick())
    suggestion = graph.suggest(EMAIL, PHONE, EvidenceSource.CUSTOMER_STATED, clock.tick())
    assert suggestion is not None
    entry = graph.reject(suggestion.id, clock.tick(), actor=AGENT)
    assert entry.action is AuditAction.REJECT
    assert graph.suggest(PHONE, EMAIL, EvidenceSource.NAME_MATCH, clock.tick()) is None
    assert graph.suggestions_for(graph.customer_of(PHONE.key)) == ()  # type: ignore[arg-type]
    with pytest.raises(Conflict):
        graph.confirm(suggestion.id, clock.tick(), actor=AGENT)


def test_a_suggestion_for_an_unseen_identifier_waits_for_it(graph: IdentityGraph, clock: Clock) -> None:
    ig = graph.observe(IG, clock.now).customer_id
    graph.suggest(IG, EMAIL, EvidenceSource.CUSTOMER_STATED, clock.tick())
    assert graph.identifier(EMAIL.key) is None  # a stated address is not an identity yet
    (pending,) = graph.suggestions_for(ig)
    assert pending.other_customer_id is None
    email = graph.observe(EMAIL, clock.tick()).customer_id
    assert email != ig
    (pending,) = graph.suggestions_for(ig)
    assert pending.other_customer_id == email


def test_the_oldest_customer_id_survives_a_merge(graph: IdentityGraph, clock: Clock) -> None:
    older = graph.observe(EMAIL, clock.now).customer_id
    newer = graph.observe(PHONE, clock.tick()).customer_id
    entry = graph.link(PHONE, EMAIL, clock.tick(), actor=AGENT)
    assert entry.before == (older, newer) and entry.after == (older,)
    assert graph.customer(newer).merged_into == older  # type: ignore[union-attr]
    assert {r.key for r in entry.reassignments} == {PHONE.key}


def test_merges_of_merges_point_every_old_id_at_the_survivor(graph: IdentityGraph, clock: Clock) -> None:
    a = graph.observe(PHONE, clock.now).customer_id
    b = graph.observe(EMAIL, clock.tick()).customer_id
    c = graph.observe(IG, clock.tick()).customer_id
    graph.link(EMAIL, IG, clock.tick(), actor=AGENT)
    graph.link(PHONE, EMAIL, clock.tick(), actor=AGENT)
    assert graph.current_customer(b) == graph.current_customer(c) == a
    assert graph.customers() == (a,)


def test_unmerge_restores_both_records_exactly(graph: IdentityGraph, clock: Clock) -> None:
    graph.observe(PHONE, clock.now)
    graph.add_evidence(PHONE, BSUID, EvidenceSource.CHANNEL_VERIFIED, clock.tick())
    graph.observe(EMAIL, clock.tick(), display_name="Ana Pérez")
    before = graph.rows()
    customers_before = {c.id: c for c in before.customers}
    nodes_before = {n.key: n for n in before.identifiers}

    merge = graph.link(EMAIL, PHONE, clock.tick(), actor=AGENT)
    undo = graph.unmerge(merge.id, clock.tick(), actor=AGENT)

    after = graph.rows()
    assert {c.id: c for c in after.customers} == customers_before
    assert {n.key: n for n in after.identifiers} == nodes_before
    (edge,) = [e for e in after.edges if e.id in merge.edge_ids]
    assert (
        edge.retracted_at == clock.now and edge.retracted_by == AGENT and edge.retraction_audit_id == undo.id
    )
    assert undo.action is AuditAction.UNMERGE and undo.edge_ids == merge.edge_ids
    assert set(undo.after) == set(customers_before)


def test_the_part_without_the_oldest_identifier_gets_a_new_id_when_it_never_had_one(
    graph: IdentityGraph, clock: Clock
) -> None:
    customer = graph.observe(PHONE, clock.now).customer_id
    graph.add_evidence(
        PHONE, BSUID, EvidenceSource.CHANNEL_VERIFIED, clock.tick()
    )  # BSUID joins, no id of its own
    (edge,) = graph.edges(BSUID.key)
    entry = graph.retract([edge.id], clock.tick(), actor=AGENT)
    assert graph.customer_of(PHONE.key) == customer
    split_off = graph.customer_of(BSUID.key)
    assert split_off not in (None, customer)
    assert entry.after == (customer, split_off)
    assert [(r.key, r.from_customer, r.to_customer) for r in entry.reassignments] == [
        (BSUID.key, customer, split_off)
    ]


def test_the_system_never_reasserts_evidence_an_agent_retracted(graph: IdentityGraph, clock: Clock) -> None:
    graph.observe(PHONE, clock.now)
    graph.add_evidence(PHONE, BSUID, EvidenceSource.CHANNEL_VERIFIED, clock.tick())
    (edge,) = graph.edges(BSUID.key)
    graph.retract([edge.id], clock.tick(), actor=AGENT)
    again = graph.add_evidence(PHONE, BSUID, EvidenceSource.CHANNEL_VERIFIED, clock.tick())
    assert again.edge is None
    assert graph.customer_of(PHONE.key) != graph.customer_of(BSUID.key)


def test_unmerge_keeps_customers_together_while_other_evidence_holds(
    graph: IdentityGraph, clock: Clock
) -> None:
    graph.observe(PHONE, clock.now)
    graph.observe(EMAIL, clock.tick())
    first = graph.link(PHONE, EMAIL, clock.tick(), actor=AGENT)
    graph.add_evidence(PHONE, EMAIL, EvidenceSource.CHANNEL_VERIFIED, clock.tick())
    entry = graph.unmerge(first.id, clock.tick(), actor=AGENT)
    assert entry.after == entry.before
    assert graph.customer_of(PHONE.key) == graph.customer_of(EMAIL.key)


def test_a_blocklisted_identifier_never_merges_anyone(graph: IdentityGraph, clock: Clock) -> None:
    graph.block(RECEPTION.key, clock.now, actor=AGENT)
    ana = graph.observe(PHONE, clock.tick()).customer_id
    luis = graph.observe(OTHER_EMAIL, clock.tick()).customer_id
    graph.add_evidence(PHONE, RECEPTION, EvidenceSource.CHANNEL_VERIFIED, clock.tick())
    graph.add_evidence(OTHER_EMAIL, RECEPTION, EvidenceSource.CHANNEL_VERIFIED, clock.tick())
    reception = graph.customer_of(RECEPTION.key)
    assert len({ana, luis, reception}) == 3
    assert [r.key for r in graph.shared_contacts(ana)] == [RECEPTION.key]
    assert [r.key for r in graph.shared_contacts(luis)] == [RECEPTION.key]
    with pytest.raises(Conflict):
        graph.link(PHONE, RECEPTION, clock.tick(), actor=AGENT)


def test_role_addresses_are_blocked_by_policy(graph: IdentityGraph, clock: Clock) -> None:
    info = email_identifier("info@clinicasur.mx")
    graph.observe(PHONE, clock.now)
    graph.observe(info, clock.tick())
    assert graph.block_of(info.key).reason is BlockReason.POLICY  # type: ignore[union-attr]
    assert graph.suggest(PHONE, info, EvidenceSource.CUSTOMER_STATED, clock.tick()) is None
    graph.add_evidence(PHONE, info, EvidenceSource.CHANNEL_VERIFIED, clock.tick())
    assert graph.customer_of(PHONE.key) != graph.customer_of(info.key)


def test_blocking_splits_the_people_an_identifier_had_joined(graph: IdentityGraph, clock: Clock) -> None:
    ana = graph.observe(PHONE, clock.now).customer_id
    luis = graph.observe(OTHER_EMAIL, clock.tick()).customer_id
    graph.link(PHONE, RECEPTION, clock.tick(), actor=AGENT)
    graph.link(OTHER_EMAIL, RECEPTION, clock.tick(), actor=AGENT)
    assert graph.customer_of(OTHER_EMAIL.key) == ana
    entry = graph.block(RECEPTION.key, clock.tick(), actor=AGENT)
    assert entry is not None and entry.action is AuditAction.BLOCK
    assert graph.customer_of(PHONE.key) == ana
    assert graph.customer_of(OTHER_EMAIL.key) == luis  # its own record back
    assert graph.customer_of(RECEPTION.key) not in (ana, luis)
    undo = graph.unblock(RECEPTION.key, clock.tick(), actor=AGENT)
    assert undo is not None and undo.after == (ana,)
    assert graph.customer_of(OTHER_EMAIL.key) == ana


def test_an_identifier_claimed_by_too_many_people_is_blocked_automatically(clock: Clock) -> None:
    graph = IdentityGraph(WorkspaceId(uuid.uuid4()), IdentityPolicy(max_claimants=3))
    people = [email_identifier(f"persona{i}@example.com") for i in range(3)]
    for person in people[:2]:
        graph.observe(person, clock.tick())
        graph.suggest(person, RECEPTION, EvidenceSource.EMAIL_SIGNATURE, clock.tick())
    assert not graph.is_blocked(RECEPTION.key)
    graph.observe(people[2], clock.tick())
    graph.suggest(people[2], RECEPTION, EvidenceSource.CUSTOMER_STATED, clock.tick())
    block = graph.block_of(RECEPTION.key)
    assert block is not None and block.reason is BlockReason.SHARED and "3" in block.detail
    (entry,) = [e for e in graph.audit_log() if e.action is AuditAction.BLOCK]
    assert entry.key == RECEPTION.key
    assert all(graph.suggestions_for(graph.customer_of(p.key)) == () for p in people)  # type: ignore[arg-type]


def test_a_person_linking_their_own_channels_is_not_a_shared_identifier(
    graph: IdentityGraph, clock: Clock
) -> None:
    graph.observe(PHONE, clock.now)
    for other in (EMAIL, IG, OTHER_EMAIL, BSUID):
        graph.observe(other, clock.tick())
        graph.link(other, PHONE, clock.tick(), actor=AGENT)
    assert not graph.is_blocked(PHONE.key)
    assert len(graph.customers()) == 1


def test_an_identifier_seen_with_many_display_names_is_blocked_automatically(
    graph: IdentityGraph, clock: Clock
) -> None:
    shared = email_identifier("familia.gomez@example.com")
    for name in ("Ana Gómez", "Luis Gómez", "Marta Gómez", "Pedro Gómez"):
        graph.observe(shared, clock.tick(), display_name=name)
    assert graph.block_of(shared.key).reason is BlockReason.NAMES  # type: ignore[union-attr]


def test_a_lifted_block_is_not_reimposed_automatically(graph: IdentityGraph, clock: Clock) -> None:
    info = email_identifier("info@consultorio-ana.mx")
    graph.unblock(info.key, clock.now, actor=AGENT)
    assert not graph.is_blocked(info.key)


def test_two_workspaces_never_share_a_customer(clock: Clock) -> None:
    one = IdentityGraph(WorkspaceId(uuid.uuid4()))
    two = IdentityGraph(WorkspaceId(uuid.uuid4()))
    assert one.observe(PHONE, clock.now).customer_id != two.observe(PHONE, clock.now).customer_id
    with pytest.raises(Exception, match="another workspace"):
        IdentityGraph.from_rows(two.workspace_id, one.rows())


def test_merge_preview_changes_nothing(graph: IdentityGraph, clock: Clock) -> None:
    older = graph.observe(PHONE, clock.now).customer_id
    newer = graph.observe(EMAIL, clock.tick()).customer_id
    graph.take_changes()
    before = graph.rows()
    preview = graph.preview_merge(newer, older, conversation_counts={older: 2, newer: 3})
    assert preview.would_merge and preview.survivor == older and preview.merged_away == (newer,)
    assert {i.key for i in preview.identifiers} == {PHONE.key, EMAIL.key}
    assert preview.conversations == 5
    assert graph.rows() == before
    assert graph.take_changes().empty


def test_link_preview_names_what_blocks_it(graph: IdentityGraph, clock: Clock) -> None:
    graph.observe(PHONE, clock.now)
    graph.block(RECEPTION.key, clock.tick(), actor=AGENT)
    preview = graph.preview_link(PHONE, RECEPTION)
    assert not preview.would_merge and preview.blocked == (RECEPTION.key,)


def test_every_merge_and_unmerge_is_audited_with_who_when_and_evidence(
    graph: IdentityGraph, clock: Clock
) -> None:
    a = graph.observe(PHONE, clock.now).customer_id
    b = graph.observe(EMAIL, clock.tick()).customer_id
    merge = graph.merge_customers(b, a, clock.tick(), actor=AGENT)
    merged_at = clock.now
    unmerge = graph.unmerge(merge.id, clock.tick(), actor="agent:other")
    log = graph.audit_log()
    assert [e.action for e in log] == [AuditAction.MERGE, AuditAction.UNMERGE]
    assert (merge.actor, merge.at, merge.before, merge.after) == (AGENT, merged_at, (a, b), (a,))
    (edge,) = [e for e in graph.edges(EMAIL.key) if e.id in merge.edge_ids]
    assert edge.source is EvidenceSource.AGENT_LINK
    assert (unmerge.actor, unmerge.at, unmerge.edge_ids, unmerge.after) == (
        "agent:other",
        clock.now,
        merge.edge_ids,
        (a, b),
    )


def test_changes_are_handed_over_as_rows_once(graph: IdentityGraph, clock: Clock) -> None:
    graph.observe(PHONE, clock.now)
    graph.observe(EMAIL, clock.tick())
    first = graph.take_changes()
    assert [r.key for r in first.identifiers_inserted] == [PHONE.key, EMAIL.key]
    assert len(first.customers_inserted) == 2
    graph.link(EMAIL, PHONE, clock.tick(), actor=AGENT)
    second = graph.take_changes()
    assert [r.key for r in second.identifiers_updated] == [EMAIL.key]
    assert len(second.edges_inserted) == 1 and len(second.customers_updated) == 1
    assert [(r.key, r.to_customer) for r in second.reassignments] == [
        (EMAIL.key, graph.customer_of(PHONE.key))
    ]
    assert graph.take_changes().empty


def test_a_merge_needs_the_whole_component_loaded(graph: IdentityGraph, clock: Clock) -> None:
    graph.observe(PHONE, clock.now)
    graph.add_evidence(PHONE, BSUID, EvidenceSource.CHANNEL_VERIFIED, clock.tick())
    graph.observe(EMAIL, clock.tick())
    partial = select_rows(graph.rows(), [EMAIL.key])
    working = IdentityGraph.from_rows(graph.workspace_id, partial)
    with pytest.raises(WorkingSetIncomplete):
        working.link(EMAIL, phone_identifier("+5215512345678"), clock.tick(), actor=AGENT)
    loaded = IdentityGraph.from_rows(graph.workspace_id, select_rows(graph.rows(), [EMAIL.key, PHONE.key]))
    entry = loaded.link(EMAIL, PHONE, clock.tick(), actor=AGENT)
    assert entry.action is AuditAction.MERGE
    assert loaded.customer_of(BSUID.key) == loaded.customer_of(EMAIL.key)
