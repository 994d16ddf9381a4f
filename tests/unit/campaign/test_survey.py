"""The manifest's ``survey`` section: optional, validated at its line, in the schema and the plan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.campaign import (
    Survey,
    SurveyTemplate,
    ValidationResult,
    format_problems,
    manifest_json_schema,
    parse_manifest,
    plan,
    render_plan,
    validate_file,
)
from core.campaign.canonical import dump_manifest

from .conftest import ENV

SURVEY: dict[str, Any] = {
    "kind": "csat",
    "question": "¿Cómo calificarías la atención que recibiste?",
    "channels": ["whatsapp"],
    "template": {"name": "recordatorio", "language": "es_MX"},
    "thanks": "¡Gracias por tu respuesta!",
}


def _manifest(data: dict[str, Any]) -> Any:
    return parse_manifest(yaml.safe_dump(data, allow_unicode=True))


def test_a_survey_section_is_read_with_its_defaults_and_round_trips(manifest_data: dict[str, Any]) -> None:
    manifest_data["survey"] = SURVEY
    manifest = _manifest(manifest_data)
    assert manifest.survey == Survey(
        kind="csat",
        question=SURVEY["question"],
        channels=["whatsapp"],
        template=SurveyTemplate(name="recordatorio", language="es_MX"),
        thanks=SURVEY["thanks"],
    )
    assert (manifest.survey.delay_s, manifest.survey.comment_within_s) == (60, 600)
    assert parse_manifest(dump_manifest(manifest)) == manifest


def test_a_manifest_without_a_survey_has_none(manifest_data: dict[str, Any]) -> None:
    manifest = _manifest(manifest_data)
    assert manifest.survey is None
    assert "survey" not in dump_manifest(manifest)


@pytest.mark.parametrize(
    ("change", "code", "where"),
    [
        ({"kind": "ces"}, "invalid_choice", "survey.kind"),
        ({"question": ""}, "string_too_short", "survey.question"),
        ({"delay_s": -1}, "greater_than_equal", "survey.delay_s"),
        ({"comment_within_s": 90_000}, "less_than_equal", "survey.comment_within_s"),
        ({"button": "Toca aquí para calificar"}, "string_too_long", "survey.button"),
        ({"channels": ["sms"]}, "invalid_choice", "survey.channels.0"),
        ({"channels": ["email"]}, "survey_channel", "survey.channels.0"),
        ({"template": {"name": "encuesta", "language": "es_MX"}}, "unknown_template", "survey.template.name"),
        (
            {"template": {"name": "recordatorio", "language": "en_US"}},
            "unknown_template",
            "survey.template.language",
        ),
        ({"tone": "formal"}, "unknown_key", "survey.tone"),
    ],
)
def test_a_wrong_survey_field_is_named(
    manifest_data: dict[str, Any],
    check: Callable[[dict[str, Any]], ValidationResult],
    change: dict[str, Any],
    code: str,
    where: str,
) -> None:
    manifest_data["survey"] = {**SURVEY, **change}
    result = check(manifest_data)
    assert result.manifest is None
    problems = [(p.code, ".".join(map(str, p.path))) for p in result.problems]
    assert problems == [(code, where)]


def test_the_error_names_file_line_and_column(manifest_data: dict[str, Any], tmp_path: Path) -> None:
    text = yaml.safe_dump(manifest_data, allow_unicode=True, sort_keys=False)
    text += "survey:\n  kind: nps\n  question: ¿Nos recomendarías?\n  delay_s: -5\n"
    path = tmp_path / "ventas.yaml"
    path.write_text(text, encoding="utf-8")
    line = len(text.splitlines())
    output = format_problems(validate_file(path, env=ENV).problems)
    assert output.startswith(f"{path}:{line}:12: survey.delay_s: Input should be greater than or equal to 0")


def test_the_json_schema_describes_the_section() -> None:
    schema = manifest_json_schema()
    assert schema["properties"]["survey"]
    section = schema["$defs"]["Survey"]
    assert set(section["properties"]) == {
        "kind",
        "question",
        "channels",
        "delay_s",
        "template",
        "button",
        "thanks",
        "answer_within_s",
        "comment_within_s",
    }
    assert section["additionalProperties"] is False
    assert section["properties"]["kind"]["enum"] == ["csat", "nps"]


def test_the_plan_shows_a_survey_added_changed_and_removed(manifest_data: dict[str, Any]) -> None:
    without = _manifest(manifest_data)
    manifest_data["survey"] = SURVEY
    with_survey = _manifest(manifest_data)
    manifest_data["survey"] = {**SURVEY, "delay_s": 300}
    later = _manifest(manifest_data)
    assert "+ survey" in render_plan(plan(with_survey, without)).splitlines()
    assert "- survey" in render_plan(plan(without, with_survey)).splitlines()
    assert "~ survey: delay_s 60 → 300" in render_plan(plan(later, with_survey)).splitlines()
