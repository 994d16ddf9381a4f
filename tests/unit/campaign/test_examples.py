"""The three example campaigns are valid, documented, and round-trip through dump and plan."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.campaign import (
    dump_manifest,
    load_manifest,
    parse_manifest,
    plan,
    required_env,
    validate_file,
)

from .conftest import EXAMPLES

NAMES = ["afiliados-salud.yaml", "cobranza-temprana.yaml", "posgrados-universidad.yaml"]


def _env_for(path: Path) -> dict[str, str]:
    manifest = load_manifest(path, check_env=False)
    return {name: f"test-value-of-{name.lower()}" for name in required_env(manifest)}


def test_the_three_examples_exist() -> None:
    assert [p.name for p in EXAMPLES] == NAMES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_validates_without_errors_or_warnings(path: Path) -> None:
    result = validate_file(path, env=_env_for(path))
    assert result.problems == (), result.format()
    assert result.manifest is not None


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_reports_its_secrets_missing_from_an_empty_environment(path: Path) -> None:
    result = validate_file(path, env={})
    missing = {p.message.split()[2] for p in result.problems if p.code == "missing_env"}
    assert missing == set(_env_for(path))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_documents_every_environment_variable_in_its_header(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    for name in _env_for(path):
        assert re.search(rf"^#\s+{name}\s", header, re.MULTILINE), f"{name} is not documented in {path.name}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_starts_with_the_schema_modeline(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../docs/campaign.schema.json"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_dumps_and_reloads_to_an_equal_manifest(path: Path) -> None:
    manifest = load_manifest(path, check_env=False)
    assert parse_manifest(dump_manifest(manifest)) == manifest


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_plans_as_empty_against_itself(path: Path) -> None:
    manifest = load_manifest(path, check_env=False)
    assert plan(manifest, manifest).is_empty


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_plans_as_all_added_against_nothing(path: Path) -> None:
    manifest = load_manifest(path, check_env=False)
    result = plan(manifest, None)
    channels = manifest.channels
    expected = (
        1  # campaign settings
        + len(manifest.skills)
        + len(manifest.auto_replies)
        + len(manifest.templates)
        + len(manifest.queues)
        + len(channels.whatsapp)
        + len(channels.instagram)
        + len(channels.email)
        + len(manifest.agents)
        + (1 if manifest.triage_menu is not None else 0)
        + len(manifest.dispositions)
    )
    assert len(result.added) == expected
    assert result.changed == () and result.removed == ()
