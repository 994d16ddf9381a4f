"""The manifest's ``retention`` section: optional, validated at its line, in the schema and the plan."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.campaign import (
    ValidationResult,
    format_problems,
    manifest_json_schema,
    parse_manifest,
    plan,
    render_plan,
)
from core.campaign.canonical import dump_manifest
from core.campaign.retention import Retention, cutoffs, retention_of

from .conftest import ENV


def _manifest(data: dict[str, Any]) -> Any:
    return parse_manifest(yaml.safe_dump(data, allow_unicode=True))


def test_a_manifest_without_retention_keeps_forever(manifest_data: dict[str, Any]) -> None:
    manifest = _manifest(manifest_data)
    assert manifest.retention is None
    assert retention_of({}).keeps_forever
    assert "retention" not in dump_manifest(manifest)


def test_a_retention_section_is_read_and_round_trips(manifest_data: dict[str, Any]) -> None:
    manifest_data["retention"] = {"raw_deliveries_days": 30, "closed_conversations_days": 365}
    manifest = _manifest(manifest_data)
    assert manifest.retention == Retention(raw_deliveries_days=30, closed_conversations_days=365)
    assert parse_manifest(dump_manifest(manifest)) == manifest


def test_cutoffs_are_that_many_days_before_now() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    due = cutoffs(Retention(raw_deliveries_days=30), now)
    assert (due.raw_received_before, due.closed_before) == (now - timedelta(days=30), None)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (0, "invalid_retention"),
        (-3, "invalid_retention"),
        (40_000, "invalid_retention"),
        ("30", "wrong_type"),
        (True, "wrong_type"),
        (2.5, "wrong_type"),
    ],
)
def test_a_period_that_is_not_a_positive_whole_number_of_days_is_refused(
    manifest_data: dict[str, Any], check: Callable[[dict[str, Any]], ValidationResult], value: Any, code: str
) -> None:
    manifest_data["retention"] = {"closed_conversations_days": value}
    result = check(manifest_data)
    assert result.manifest is None
    [problem] = result.problems
    assert (problem.code, ".".join(map(str, problem.path))) == (code, "retention.closed_conversations_days")


def test_media_days_is_refused_with_the_keys_allowed(
    manifest_data: dict[str, Any], check: Callable[[dict[str, Any]], ValidationResult]
) -> None:
    manifest_data["retention"] = {"media_days": 30}
    [problem] = check(manifest_data).problems
    assert problem.code == "unknown_key"
    assert "raw_deliveries_days" in (problem.hint or "")


def test_the_error_names_file_line_and_column(manifest_data: dict[str, Any], tmp_path: Path) -> None:
    from core.campaign import validate_file

    text = yaml.safe_dump(manifest_data, allow_unicode=True, sort_keys=False)
    text += "retention:\n  raw_deliveries_days: 0\n"
    path = tmp_path / "ventas.yaml"
    path.write_text(text, encoding="utf-8")
    line = len(text.splitlines())
    output = format_problems(validate_file(path, env=ENV).problems)
    assert output.startswith(
        f"{path}:{line}:24: retention.raw_deliveries_days: a retention period is a whole number"
    )
    assert "(hint: e.g. 30; leave the key out to keep forever)" in output


def test_the_json_schema_describes_the_section() -> None:
    schema = manifest_json_schema()
    assert schema["properties"]["retention"]
    section = schema["$defs"]["Retention"]
    assert set(section["properties"]) == {"raw_deliveries_days", "closed_conversations_days"}
    assert section["additionalProperties"] is False
    days = section["properties"]["raw_deliveries_days"]["anyOf"][0]
    assert (days["type"], days["minimum"]) == ("integer", 1)


def test_the_plan_shows_a_changed_retention_as_a_changed_line(manifest_data: dict[str, Any]) -> None:
    manifest_data["retention"] = {"raw_deliveries_days": 30}
    current = _manifest(manifest_data)
    manifest_data["retention"] = {"raw_deliveries_days": 14, "closed_conversations_days": 365}
    result = plan(_manifest(manifest_data), current)
    [change] = result.changes
    assert (change.action, change.kind) == ("change", "retention")
    lines = render_plan(result).splitlines()
    assert "~ retention: raw_deliveries_days 30 → 14" in lines
    assert "~ retention: closed_conversations_days (none) → 365" in lines


def test_the_plan_shows_a_retention_added_and_removed(manifest_data: dict[str, Any]) -> None:
    without = _manifest(manifest_data)
    manifest_data["retention"] = {"closed_conversations_days": 365}
    with_retention = _manifest(manifest_data)
    assert "+ retention" in render_plan(plan(with_retention, without)).splitlines()
    assert "- retention" in render_plan(plan(without, with_retention)).splitlines()
