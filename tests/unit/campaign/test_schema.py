"""The published JSON Schema is generated from the model and accepts the examples."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from channels.email import EmailAdapter
from channels.instagram import InstagramAdapter
from channels.whatsapp import WhatsAppAdapter
from core.campaign import (
    ChannelCatalog,
    dump_manifest,
    load_manifest,
    manifest_json_schema,
    render_json_schema,
    write_json_schema,
)

from .conftest import EXAMPLES, REPO

SCHEMA_FILE = REPO / "docs" / "campaign.schema.json"


BUILT_IN = ChannelCatalog.of([WhatsAppAdapter, InstagramAdapter, EmailAdapter])


def test_the_committed_schema_file_is_current() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_json_schema(BUILT_IN), (
        "docs/campaign.schema.json is stale: regenerate it with "
        "`centralita campaign schema -o docs/campaign.schema.json` (only the built-in adapters installed)"
    )


def test_the_schema_has_one_section_per_installed_channel_with_that_adapters_account_model() -> None:
    schema = manifest_json_schema()
    sections = schema["$defs"]["Channels"]["properties"]
    assert sections["whatsapp"]["items"] == {"$ref": "#/$defs/WhatsAppAccount"}
    assert sections["email"]["items"] == {"$ref": "#/$defs/Mailbox"}
    assert schema["$defs"]["Channels"]["additionalProperties"] is False


def test_the_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(manifest_json_schema())


def test_write_json_schema_writes_what_render_returns(tmp_path: Path) -> None:
    target = tmp_path / "schema.json"
    write_json_schema(target)
    assert json.loads(target.read_text(encoding="utf-8")) == manifest_json_schema()


def _as_json(text: str) -> object:
    return json.loads(json.dumps(yaml.safe_load(text), default=str))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_schema_accepts_each_example(path: Path) -> None:
    jsonschema.Draft202012Validator(manifest_json_schema()).validate(
        _as_json(path.read_text(encoding="utf-8"))
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_schema_accepts_each_dumped_example(path: Path) -> None:
    text = dump_manifest(load_manifest(path, check_env=False))
    jsonschema.Draft202012Validator(manifest_json_schema()).validate(_as_json(text))


def test_the_schema_rejects_unknown_keys() -> None:
    validator = jsonschema.Draft202012Validator(manifest_json_schema())
    document = _as_json(EXAMPLES[0].read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    document["queues"][0]["priorty"] = 3
    assert not validator.is_valid(document)
