"""The YAML loader keeps the line and column of every node and reports syntax errors with them."""

from __future__ import annotations

from pathlib import Path

from core.campaign import validate_file, validate_text
from core.campaign.source import Mark, load_yaml

TEXT = """\
campaign:
  name: ventas
queues:
  - name: pagos
    channels: [whatsapp, email]
  - &base
    name: general
    sla: {answer_within_s: 60}
"""


def test_every_value_and_key_has_its_line_and_column() -> None:
    source = load_yaml(TEXT, "c.yaml").source
    assert source.locate(("campaign", "name")) == Mark(2, 9)
    assert source.locate(("campaign", "name"), at_key=True) == Mark(2, 3)
    assert source.locate(("queues", 0, "channels", 1)) == Mark(5, 26)
    assert source.locate(("queues", 1, "sla", "answer_within_s")) == Mark(8, 28)


def test_a_path_that_does_not_exist_falls_back_to_its_nearest_ancestor() -> None:
    source = load_yaml(TEXT, "c.yaml").source
    assert source.locate(("queues", 0, "priority")) == Mark(4, 5)


def test_merge_keys_and_aliases_keep_the_position_of_their_anchor() -> None:
    text = "a: &x {k: 1}\nb:\n  <<: *x\n  j: 2\n"
    loaded = load_yaml(text, "c.yaml")
    assert loaded.data == {"a": {"k": 1}, "b": {"k": 1, "j": 2}}
    assert loaded.source.locate(("b", "k")) == Mark(1, 11)
    assert loaded.source.locate(("b", "j")) == Mark(4, 6)


def test_a_syntax_error_is_a_problem_with_file_line_and_column() -> None:
    result = validate_text("campaign:\n  name: ventas\n   display_name: x\n", "c.yaml")
    [problem] = result.problems
    assert problem.code == "yaml_syntax"
    assert (problem.file, problem.line) == ("c.yaml", 3)
    assert problem.column is not None
    assert problem.format().startswith("c.yaml:3:")


def test_an_impossible_date_is_left_for_the_schema_to_report() -> None:
    loaded = load_yaml("holidays: [2026-13-01, 2026-12-25]\n", "c.yaml")
    assert loaded.problems == ()
    assert loaded.data["holidays"][0] == "2026-13-01"


def test_an_empty_document_is_reported() -> None:
    [problem] = validate_text("# nothing here\n", "c.yaml").problems
    assert problem.code == "not_a_manifest"


def test_a_document_that_is_not_a_mapping_is_reported() -> None:
    [problem] = validate_text("- a\n- b\n", "c.yaml").problems
    assert (problem.code, problem.line, problem.column) == ("not_a_manifest", 1, 1)


def test_an_unreadable_file_is_a_problem_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    [problem] = validate_file(missing).problems
    assert problem.code == "unreadable_file"
    assert problem.format().startswith(str(missing))


def test_a_control_character_is_a_syntax_problem_at_its_position() -> None:
    [problem] = validate_text("campaign:\n  name: a\x00b\n", "c.yaml").problems
    assert (problem.code, problem.line, problem.column) == ("yaml_syntax", 2, 10)
