"""The plan is a readable diff of the desired manifest against the running one."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from centralita.schemas.campaigns import PlanChanges
from core.campaign import Manifest, parse_manifest, plan, render_plan
from core.errors import InvalidInput


def _manifest(data: dict[str, Any]) -> Manifest:
    return parse_manifest(yaml.safe_dump(data, allow_unicode=True))


def test_identical_manifests_plan_as_empty(manifest_data: dict[str, Any]) -> None:
    assert plan(_manifest(manifest_data), _manifest(manifest_data)).is_empty


def test_a_new_queue_is_added(manifest_data: dict[str, Any]) -> None:
    current = _manifest(manifest_data)
    manifest_data["queues"].append({"name": "urgencias", "priority": 10, "channels": ["whatsapp"]})
    result = plan(_manifest(manifest_data), current)
    assert [(c.action, c.kind, c.key) for c in result.changes] == [("add", "queue", "urgencias")]
    assert result.changes[0].desired is not None and result.changes[0].desired["priority"] == 10


def test_a_removed_agent_is_removed(manifest_data: dict[str, Any]) -> None:
    manifest_data["agents"].append(
        {"email": "luis@example.com", "name": "Luis", "skills": {"ventas": 6}, "capacity": {"whatsapp": 3}}
    )
    current = _manifest(manifest_data)
    manifest_data["agents"].pop()
    result = plan(_manifest(manifest_data), current)
    assert [(c.action, c.kind, c.key) for c in result.changes] == [("remove", "agent", "luis@example.com")]


def test_a_changed_field_shows_old_and_new(manifest_data: dict[str, Any]) -> None:
    current = _manifest(manifest_data)
    manifest_data["queues"][0]["sla"]["answer_within_s"] = 45
    [change] = plan(_manifest(manifest_data), current).changes
    assert (change.action, change.kind, change.key) == ("change", "queue", "ventas")
    assert [(f.field, f.old, f.new) for f in change.fields] == [("sla.answer_within_s", 60, 45)]


def test_changed_business_hours_are_shown_per_day(manifest_data: dict[str, Any]) -> None:
    current = _manifest(manifest_data)
    manifest_data["queues"][0]["business_hours"]["weekly"]["mon"] = ["10:00-18:00"]
    manifest_data["queues"][0]["business_hours"]["weekly"]["sat"] = ["09:00-13:00"]
    [change] = plan(_manifest(manifest_data), current).changes
    assert {(f.field, str(f.old), str(f.new)) for f in change.fields} == {
        ("business_hours.weekly.mon", "['09:00-18:00']", "['10:00-18:00']"),
        ("business_hours.weekly.sat", "None", "['09:00-13:00']"),
    }


def test_a_new_holiday_changes_the_queue_hours(manifest_data: dict[str, Any]) -> None:
    current = _manifest(manifest_data)
    manifest_data["queues"][0]["business_hours"]["holidays"] = ["2026-12-25"]
    [change] = plan(_manifest(manifest_data), current).changes
    assert [(f.field, f.old, f.new) for f in change.fields] == [
        ("business_hours.holidays", [], ["2026-12-25"])
    ]


def test_an_agent_skill_change_is_shown_per_skill(manifest_data: dict[str, Any]) -> None:
    current = _manifest(manifest_data)
    manifest_data["agents"][0]["skills"]["soporte"] = 6
    [change] = plan(_manifest(manifest_data), current).changes
    assert [(f.field, f.old, f.new) for f in change.fields] == [("skills.soporte", 3, 6)]


def test_reordering_queues_and_agents_is_not_a_change(manifest_data: dict[str, Any]) -> None:
    current = _manifest(manifest_data)
    manifest_data["queues"].reverse()
    manifest_data["skills"].reverse()
    assert plan(_manifest(manifest_data), current).is_empty


def test_reordering_triage_options_is_a_change(manifest_data: dict[str, Any]) -> None:
    current = _manifest(manifest_data)
    manifest_data["triage_menu"]["options"].reverse()
    [change] = plan(_manifest(manifest_data), current).changes
    assert (change.action, change.kind) == ("change", "triage_menu")


def test_against_nothing_everything_is_added(manifest_data: dict[str, Any]) -> None:
    result = plan(_manifest(manifest_data), None)
    assert {c.action for c in result.changes} == {"add"}
    assert result.find("queue", "general") is not None
    assert result.find("campaign", "ventas") is not None


def test_changes_come_in_an_order_safe_to_apply(manifest_data: dict[str, Any]) -> None:
    kinds = [c.kind for c in plan(_manifest(manifest_data), None).changes]
    assert kinds.index("skill") < kinds.index("queue") < kinds.index("agent") < kinds.index("disposition")
    assert kinds.index("auto_reply") < kinds.index("whatsapp_account")


def test_the_rendered_plan_reads_like_a_diff(manifest_data: dict[str, Any]) -> None:
    current = _manifest(manifest_data)
    manifest_data["queues"].append({"name": "urgencias", "channels": ["whatsapp"]})
    manifest_data["queues"][0]["sla"]["answer_within_s"] = 45
    manifest_data["agents"][0]["email"] = "ana.lopez@example.com"
    text = render_plan(plan(_manifest(manifest_data), current))
    assert text.splitlines() == [
        "Plan for campaign 'ventas' in workspace 'demo':",
        "+ queue urgencias",
        "~ queue ventas: sla.answer_within_s 60 → 45",
        "+ agent ana.lopez@example.com",
        "- agent ana@example.com",
        "2 to add, 1 to change, 1 to remove.",
    ]


def test_an_empty_plan_says_the_campaign_is_up_to_date(manifest_data: dict[str, Any]) -> None:
    manifest = _manifest(manifest_data)
    assert (
        render_plan(plan(manifest, manifest))
        == "No changes: campaign 'ventas' in workspace 'demo' is up to date."
    )


def test_a_plan_between_two_different_campaigns_is_refused(manifest_data: dict[str, Any]) -> None:
    current = _manifest(manifest_data)
    manifest_data["campaign"]["name"] = "cobranza"
    with pytest.raises(InvalidInput):
        plan(_manifest(manifest_data), current)


def test_the_plan_serialises_for_the_admin_api(manifest_data: dict[str, Any]) -> None:
    current = _manifest(manifest_data)
    manifest_data["queues"][0]["priority"] = 9
    assert PlanChanges.of(plan(_manifest(manifest_data), current)).model_dump(mode="json")["changes"] == [
        {
            "action": "change",
            "kind": "queue",
            "key": "ventas",
            "fields": [{"field": "priority", "old": 5, "new": 9}],
        }
    ]
