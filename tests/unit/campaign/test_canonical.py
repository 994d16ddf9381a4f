"""The canonical form lets an exported configuration round-trip to an equivalent manifest."""

from __future__ import annotations

from typing import Any

import yaml

from core.campaign import (
    Manifest,
    canonical,
    dump_manifest,
    equivalent,
    expand_agents,
    normalize,
    parse_manifest,
)


def _manifest(data: dict[str, Any]) -> Manifest:
    return parse_manifest(yaml.safe_dump(data, allow_unicode=True))


def test_dump_then_load_gives_an_equal_manifest(manifest_data: dict[str, Any]) -> None:
    manifest = _manifest(manifest_data)
    assert parse_manifest(dump_manifest(manifest)) == manifest


def test_the_dump_leaves_defaults_out(manifest_data: dict[str, Any]) -> None:
    text = dump_manifest(_manifest(manifest_data))
    assert "role:" not in text and "smtp_port" not in text


def test_the_dump_can_start_with_the_editor_schema_modeline(manifest_data: dict[str, Any]) -> None:
    text = dump_manifest(_manifest(manifest_data), schema_ref="../../docs/campaign.schema.json")
    assert text.startswith("# yaml-language-server: $schema=../../docs/campaign.schema.json\n")


def test_order_of_named_items_does_not_change_the_canonical_form(manifest_data: dict[str, Any]) -> None:
    first = _manifest(manifest_data)
    manifest_data["queues"].reverse()
    manifest_data["queues"][0]["channels"].reverse()
    second = _manifest(manifest_data)
    assert first != second
    assert equivalent(first, second)
    assert canonical(first) == canonical(second)


def test_normalize_sorts_queues_by_name(manifest_data: dict[str, Any]) -> None:
    assert [q.name for q in normalize(_manifest(manifest_data)).queues] == ["general", "ventas"]


def test_the_canonical_form_is_complete_and_json_ready(manifest_data: dict[str, Any]) -> None:
    data = canonical(_manifest(manifest_data))
    assert data["apiVersion"] == "centralita/v1"
    assert data["agents"][0]["role"] == "agent"
    assert data["channels"]["email"] == []


def test_an_agent_group_expands_into_numbered_members(manifest_data: dict[str, Any]) -> None:
    manifest_data["agents"].append(
        {
            "group": "noche",
            "count": 2,
            "name_pattern": "Asesor nocturno {n}",
            "email_pattern": "noche{n}@example.com",
            "skills": {"ventas": 5},
            "capacity": {"whatsapp": 3},
        }
    )
    roster = expand_agents(_manifest(manifest_data))
    assert [(a.key, a.name, a.group) for a in roster] == [
        ("ana@example.com", "Ana", None),
        ("noche1@example.com", "Asesor nocturno 1", "noche"),
        ("noche2@example.com", "Asesor nocturno 2", "noche"),
    ]


def test_a_manifest_without_channel_accounts_dumps_without_a_channels_key() -> None:
    manifest = Manifest.model_validate(
        {
            "apiVersion": "centralita/v1",
            "kind": "Campaign",
            "workspace": "demo",
            "campaign": {"name": "a", "display_name": "A", "timezone": "America/Mexico_City"},
            "queues": [{"name": "q", "channels": ["email"]}],
        }
    )
    text = dump_manifest(manifest)
    assert "channels:" not in text.split("queues:")[0]
    assert Manifest.model_validate(yaml.safe_load(text)) == manifest
