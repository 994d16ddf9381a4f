"""Whatever agents and channels do, customers are the components a naive recomputation finds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import Conflict
from core.ids import CustomerId, WorkspaceId
from identity import EvidenceSource, IdentityGraph, email_identifier

PEOPLE = [email_identifier(f"p{i}@example.com") for i in range(7)]
SOURCES = [EvidenceSource.CHANNEL_VERIFIED, EvidenceSource.AGENT_LINK, EvidenceSource.SAME_IDENTIFIER]

Op = tuple[str, int, int, int]
ops = st.lists(
    st.tuples(
        st.sampled_from(["link", "link", "link", "retract", "block", "unblock", "observe"]),
        st.integers(0, len(PEOPLE) - 1),
        st.integers(0, len(PEOPLE) - 1),
        st.integers(0, 50),
    ),
    max_size=40,
)


def naive_components(graph: IdentityGraph) -> set[frozenset[str]]:
    """Union-find from scratch over active deterministic edges, blocked identifiers left alone."""
    nodes = [r.key for r in graph.rows().identifiers]
    parent = {k: k for k in nodes}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for edge in graph.edges(active_only=True):
        if edge.source.deterministic and not graph.is_blocked(edge.a) and not graph.is_blocked(edge.b):
            parent[find(edge.a)] = find(edge.b)
    groups: dict[str, set[str]] = {}
    for k in nodes:
        groups.setdefault(find(k), set()).add(k)
    return {frozenset(g) for g in groups.values()}


def assigned_components(graph: IdentityGraph) -> dict[CustomerId, frozenset[str]]:
    groups: dict[CustomerId, set[str]] = {}
    for row in graph.rows().identifiers:
        groups.setdefault(row.customer_id, set()).add(row.key)
    return {c: frozenset(g) for c, g in groups.items()}


def apply(graph: IdentityGraph, op: Op, now: datetime) -> None:
    kind, i, j, n = op
    a, b = PEOPLE[i], PEOPLE[j]
    if kind == "observe":
        graph.observe(a, now)
    elif kind == "link" and i != j:
        if n % 2:
            try:
                graph.link(a, b, now, actor="agent:1")
            except Conflict:
                pass  # a blocked identifier: refused, as it should be
        else:
            graph.add_evidence(a, b, SOURCES[n % len(SOURCES)], now)
    elif kind == "retract":
        active = sorted(graph.edges(active_only=True), key=lambda e: str(e.id))
        if active:
            graph.retract([active[n % len(active)].id], now, actor="agent:1")
    elif kind == "block":
        graph.block(a.key, now, actor="agent:1")
    elif kind == "unblock":
        graph.unblock(a.key, now, actor="agent:1")


@settings(max_examples=300, deadline=None)
@given(ops)
def test_customers_are_always_the_components_of_active_deterministic_evidence(sequence: list[Op]) -> None:
    graph = IdentityGraph(WorkspaceId(uuid.uuid4()))
    now = datetime(2025, 1, 1, tzinfo=UTC)
    for op in sequence:
        now += timedelta(seconds=1)
        apply(graph, op, now)
        assigned = assigned_components(graph)
        assert set(assigned.values()) == naive_components(graph)
        assert set(graph.customers()) == set(assigned)
        for row in graph.rows().customers:  # a merged-away id always points at a live customer
            assert row.merged_into is None or row.merged_into in assigned
            assert row.merged_into is not None or row.id in assigned or not graph.identifiers_of(row.id)
        reloaded = IdentityGraph.from_rows(graph.workspace_id, graph.rows())
        assert assigned_components(reloaded) == assigned


@settings(max_examples=200, deadline=None)
@given(ops, st.integers(0, len(PEOPLE) - 1), st.integers(0, len(PEOPLE) - 1))
def test_unmerging_a_merge_restores_both_records_exactly(sequence: list[Op], i: int, j: int) -> None:
    graph = IdentityGraph(WorkspaceId(uuid.uuid4()))
    now = datetime(2025, 1, 1, tzinfo=UTC)
    for op in sequence:
        now += timedelta(seconds=1)
        apply(graph, op, now)
    a, b = graph.customer_of(PEOPLE[i].key), graph.customer_of(PEOPLE[j].key)
    if a is None or b is None or a == b or graph.is_blocked(PEOPLE[i].key) or graph.is_blocked(PEOPLE[j].key):
        return
    before = graph.rows()
    merge = graph.merge_customers(a, b, now + timedelta(seconds=1), actor="agent:1")
    graph.unmerge(merge.id, now + timedelta(seconds=2), actor="agent:1")
    after = graph.rows()
    assert set(after.customers) == set(before.customers)
    assert set(after.identifiers) == set(before.identifiers)
