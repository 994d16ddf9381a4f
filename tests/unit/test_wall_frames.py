"""The wall socket's frames (``/ws/supervisor``): the committed JSON Schema is the models' own."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from centralita.schemas.wall import render_wall_json_schema, wall_json_schema, write_wall_json_schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "wall.schema.json"


def test_the_committed_wall_schema_file_is_current() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_wall_json_schema(), (
        "docs/wall.schema.json is stale: regenerate it with "
        "centralita.schemas.wall.write_wall_json_schema('docs/wall.schema.json')"
    )


def test_write_wall_json_schema_writes_what_render_returns(tmp_path: Path) -> None:
    target = tmp_path / "wall.schema.json"
    write_wall_json_schema(target)
    assert json.loads(target.read_text(encoding="utf-8")) == wall_json_schema()


def test_the_wall_schema_is_valid_and_refuses_a_frame_it_does_not_describe() -> None:
    schema = wall_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    server = jsonschema.Draft202012Validator({**schema, "oneOf": [{"$ref": "#/$defs/WallServerFrame"}]})
    assert server.is_valid({"type": "pong"})
    assert not server.is_valid({"type": "alert"})  # no alert in it
    assert not server.is_valid({"type": "offer"})  # an agent's frame, not the wall's
