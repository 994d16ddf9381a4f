"""The manifest's JSON Schema, generated from the model and published in ``docs/``.

Editors with the YAML language server validate and complete a manifest that starts with
``# yaml-language-server: $schema=../../docs/campaign.schema.json``.  A unit test fails when the
committed file differs from what ``manifest_json_schema()`` generates; regenerate it with
``write_json_schema("docs/campaign.schema.json")`` (or ``centralita campaign schema``).

The ``channels`` sections and the channel names allowed in queues and agents' capacity are those
of the catalog given (the installed adapters by default): a deployment with an out-of-tree
channel generates a schema that completes its accounts too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.campaign.channels import ChannelCatalog, default_catalog, schema_catalog
from core.campaign.model import Manifest

__all__ = ["manifest_json_schema", "render_json_schema", "write_json_schema"]


def manifest_json_schema(channels: ChannelCatalog | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a campaign manifest file with the ``channels`` catalog."""
    with schema_catalog(channels or default_catalog()):
        schema = Manifest.model_json_schema(by_alias=True, mode="validation")
    # The channel sections are one definition, like every other part of the manifest.
    sections = schema["properties"]["channels"]
    if "$ref" not in sections:
        schema["properties"]["channels"] = {"$ref": "#/$defs/Channels"}
        schema["$defs"] = dict(sorted({**schema["$defs"], "Channels": sections}.items()))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "description": (
            "One client campaign of a Centralita workspace: channel accounts, queues, agents, "
            "auto-replies, triage menu, WhatsApp templates and dispositions. Secrets are named by "
            "environment variable (fields ending in _env), never written here."
        ),
    }


def render_json_schema(channels: ChannelCatalog | None = None) -> str:
    schema = manifest_json_schema(channels)
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def write_json_schema(path: str | Path, channels: ChannelCatalog | None = None) -> None:
    """Write the schema to ``path`` (normally ``docs/campaign.schema.json``)."""
    Path(path).write_text(render_json_schema(channels), encoding="utf-8")
