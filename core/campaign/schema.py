"""The manifest's JSON Schema, generated from the model and published in ``docs/``.

Editors with the YAML language server validate and complete a manifest that starts with
``# yaml-language-server: $schema=../../docs/campaign.schema.json``.  A unit test fails when the
committed file differs from what ``manifest_json_schema()`` generates; regenerate it with
``write_json_schema("docs/campaign.schema.json")``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.campaign.model import Manifest

__all__ = ["manifest_json_schema", "render_json_schema", "write_json_schema"]


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a campaign manifest file."""
    schema = Manifest.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "description": (
            "One client campaign of a Centralita workspace: channel accounts, queues, agents, "
            "auto-replies, triage menu, WhatsApp templates and dispositions. Secrets are named by "
            "environment variable (fields ending in _env), never written here."
        ),
    }


def render_json_schema() -> str:
    return json.dumps(manifest_json_schema(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def write_json_schema(path: str | Path) -> None:
    """Write the schema to ``path`` (normally ``docs/campaign.schema.json``)."""
    Path(path).write_text(render_json_schema(), encoding="utf-8")
