"""The ``events`` routing keys: every key of a workspace starts with ``ws.<workspace_id>.``."""

from __future__ import annotations

import re

import pytest

from broker.memory import topic_matches
from core.errors import InvalidInput
from core.transport.tenancy import tenant_user
from core.transport.topology import (
    ALL_ALERTS,
    ALL_CONFIG_CHANGES,
    ALL_QUEUE_STATS,
    alert_key,
    config_changed_key,
    queue_stats_key,
    workspace_events,
)

A = "0b9e3c1a-5d2f-4e8a-9c61-2f7d8e4a1b00"
B = "7f1c2d3e-0a4b-4c5d-8e6f-9a0b1c2d3e4f"


def test_each_key_is_in_its_workspace_and_in_the_all_workspaces_pattern_of_its_kind() -> None:
    for key, every in (
        (queue_stats_key(A), ALL_QUEUE_STATS),
        (alert_key(A), ALL_ALERTS),
        (alert_key(A, "queue_closed"), ALL_ALERTS),
        (config_changed_key(A), ALL_CONFIG_CHANGES),
    ):
        assert key.startswith(f"ws.{A}.")
        assert topic_matches(workspace_events(A), key)
        assert not topic_matches(workspace_events(B), key)
        assert topic_matches(every, key)
    assert queue_stats_key(A) == f"ws.{A}.queue.stats"
    assert alert_key(A) == f"ws.{A}.alert.sla_breach"
    assert not topic_matches(ALL_ALERTS, queue_stats_key(A))


def test_the_tenants_topic_permission_admits_its_patterns_only() -> None:
    recipe = tenant_user("acme", A, prefix="t1.")
    allowed = re.compile(recipe.topic_read)
    assert recipe.topic_read == recipe.topic_write == rf"^ws\.{A}\."
    assert all(allowed.search(p) for p in (workspace_events(A), queue_stats_key(A), alert_key(A)))
    assert not any(allowed.search(p) for p in (workspace_events(B), ALL_QUEUE_STATS, "#", f"ws.{A}x.#"))
    assert recipe.exchange == "t1.events"
    assert re.fullmatch(recipe.configure, "t1.tenant.acme.wall")
    assert not re.fullmatch(recipe.configure, "t1.tenant.acme-2.wall")
    assert re.fullmatch(recipe.read, "t1.events") and not re.fullmatch(recipe.write, "t1.events")


def test_a_word_that_would_shift_the_keys_is_refused() -> None:
    for bad in ("a.b", "*", "#", ""):
        with pytest.raises(InvalidInput):
            queue_stats_key(bad)
    with pytest.raises(InvalidInput):
        alert_key(A, "sla.breach")
    with pytest.raises(InvalidInput):
        tenant_user("Acme Corp", A)
