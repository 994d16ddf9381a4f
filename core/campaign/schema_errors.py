"""Turn pydantic's validation errors into ``Problem``s a person can act on.

Unknown keys get "did you mean …" from the keys the JSON Schema allows at that place, wrong
choices get the close allowed value, and our own value types carry their hint in the error
context.  Union tags that pydantic puts into error locations are removed so a path names the
place in the file.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from core.campaign.channels import ChannelCatalog, default_catalog
from core.campaign.problems import Path, Problem
from core.campaign.schema import manifest_json_schema

__all__ = ["allowed_keys", "allowed_values", "problems_from_validation_error"]

_UNION_TAGS = frozenset({"individual", "agent_group"})
_KEY_MARKER = "[key]"


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = root["$defs"][str(schema["$ref"]).rsplit("/", 1)[-1]]
    return schema


def _alternatives(schema: dict[str, Any], root: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _resolve(schema, root)
    nested = schema.get("anyOf") or schema.get("oneOf")
    if nested:
        out: list[dict[str, Any]] = []
        for alt in nested:
            out.extend(_alternatives(alt, root))
        return out
    return [schema]


@lru_cache(maxsize=8)
def _root(catalog: ChannelCatalog) -> dict[str, Any]:
    return manifest_json_schema(catalog)


def _schemas_at(path: Path, catalog: ChannelCatalog | None = None) -> list[dict[str, Any]]:
    root = _root(catalog or default_catalog())
    current = _alternatives(root, root)
    for part in path:
        following: list[dict[str, Any]] = []
        for schema in current:
            if isinstance(part, int):
                if isinstance(schema.get("items"), dict):
                    following.extend(_alternatives(schema["items"], root))
            elif part in schema.get("properties", {}):
                following.extend(_alternatives(schema["properties"][part], root))
            elif isinstance(schema.get("additionalProperties"), dict):
                following.extend(_alternatives(schema["additionalProperties"], root))
        current = following
    return current


def allowed_keys(path: Path, catalog: ChannelCatalog | None = None) -> list[str]:
    """Keys the schema allows in the mapping at ``path`` (union of alternatives)."""
    keys: set[str] = set()
    for schema in _schemas_at(path, catalog):
        keys.update(schema.get("properties", {}))
        names = schema.get("propertyNames", {})
        keys.update(str(v) for v in names.get("enum", []))
    return sorted(keys)


def allowed_values(path: Path, catalog: ChannelCatalog | None = None) -> list[str]:
    """Fixed choices (enum / const) the schema allows at ``path``."""
    values: list[str] = []
    for schema in _schemas_at(path, catalog):
        if "const" in schema:
            values.append(str(schema["const"]))
        values.extend(str(v) for v in schema.get("enum", []))
    return values


def _suggest(value: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


_GENERIC = {
    "model_type": ("must be a mapping of keys to values", "indent 'key: value' lines under it"),
    "dict_type": ("must be a mapping of keys to values", "indent 'key: value' lines under it"),
    "list_type": ("must be a list", "write each item on its own line starting with '- '"),
    "string_type": ("must be text", "quote the value"),
    "bool_parsing": ("must be true or false", None),
    "bool_type": ("must be true or false", None),
    "int_parsing": ("must be a whole number", None),
    "int_type": ("must be a whole number", None),
    "int_from_float": ("must be a whole number", None),
    "float_parsing": ("must be a number", None),
    "float_type": ("must be a number", None),
}


def _one(error: Any, prefix: Path, catalog: ChannelCatalog | None) -> Problem:
    raw_loc: tuple[str | int, ...] = tuple(error["loc"])
    at_key = _KEY_MARKER in raw_loc
    loc: Path = (*prefix, *(part for part in raw_loc if part not in _UNION_TAGS and part != _KEY_MARKER))
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = allowed_keys(loc[:-1], catalog)
        hint: str | None
        if f"{key}_env" in allowed:
            hint = f"secrets are given as environment-variable names: write '{key}_env: VARIABLE_NAME'"
        elif (close := _suggest(key, allowed)) is not None:
            hint = f"did you mean {close!r}?"
        else:
            hint = f"allowed here: {', '.join(allowed)}" if allowed else None
        return Problem("unknown_key", f"unknown key {key!r}", loc, hint=hint, at_key=True)
    if kind == "missing":
        return Problem("missing_key", f"missing required key {loc[-1]!r}", loc, hint=f"add '{loc[-1]}: …'")
    if kind in {"literal_error", "enum"}:
        given = error.get("input")
        choices = allowed_keys(loc[:-1], catalog) if at_key else allowed_values(loc, catalog)
        if not choices:
            choices = [
                c.strip().strip("'") for c in str(ctx.get("expected", "")).replace(" or ", ", ").split(",")
            ]
        close = _suggest(str(given), choices) if isinstance(given, str) else None
        hint = f"did you mean {close!r}?" if close else f"use one of: {', '.join(choices)}"
        what = "key" if at_key else "value"
        return Problem("invalid_choice", f"{what} {given!r} is not allowed", loc, hint=hint, at_key=at_key)
    if "hint" in ctx:
        return Problem(kind, str(error["msg"]), loc, hint=str(ctx["hint"]), at_key=at_key)
    if kind in _GENERIC:
        message, generic_hint = _GENERIC[kind]
        return Problem("wrong_type", message, loc, hint=generic_hint, at_key=at_key)
    return Problem(kind, str(error["msg"]), loc, at_key=at_key)


def problems_from_validation_error(
    exc: ValidationError, prefix: Path = (), *, channels: ChannelCatalog | None = None
) -> list[Problem]:
    """Every error pydantic found, as problems; ``prefix`` is where the validated value sits;
    ``channels`` the catalog the manifest was validated with (the installed one by default)."""
    return [_one(error, prefix, channels) for error in exc.errors(include_url=False)]
