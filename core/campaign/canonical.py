"""Canonical form and YAML text of a manifest.

Two manifests that configure the same campaign have the same ``canonical()`` dict, whatever the
order of their queues, agents or accounts: named collections are sorted by name, set-like lists
(channels, preferred skills, holidays, a day's intervals) are sorted, and order is kept only where
it means something (triage options are numbered by position, template parameters are ``{{1}}``,
``{{2}}``…, expansion steps run in order).  The exporter builds a ``Manifest`` from the running
configuration and ``dump_manifest(normalize(m))`` writes it; ``load(dump(m)) == m`` for any ``m``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import yaml

from core.campaign.fields import WEEKDAYS
from core.campaign.model import Manifest

__all__ = ["agent_key", "canonical", "dump_manifest", "equivalent", "normalize"]


def agent_key(agent: dict[str, Any]) -> str:
    """An agent entry's identity: its email, or ``group:<name>`` for a group."""
    return f"group:{agent['group']}" if "group" in agent else str(agent["email"])


def _by(key: str) -> Any:
    return lambda item: item[key]


def _sorted_dict(value: dict[str, Any]) -> dict[str, Any]:
    return {k: value[k] for k in sorted(value)}


def _queue(queue: dict[str, Any]) -> dict[str, Any]:
    queue = dict(queue)
    queue["required_skills"] = _sorted_dict(queue["required_skills"])
    queue["preferred_skills"] = sorted(queue["preferred_skills"])
    queue["channels"] = sorted(queue["channels"])
    hours = queue.get("business_hours")
    if hours is not None:
        hours = dict(hours)
        hours["weekly"] = {day: sorted(hours["weekly"][day]) for day in WEEKDAYS if day in hours["weekly"]}
        hours["holidays"] = sorted(hours["holidays"])
        queue["business_hours"] = hours
    return queue


def _agent(agent: dict[str, Any]) -> dict[str, Any]:
    agent = dict(agent)
    agent["skills"] = _sorted_dict(agent["skills"])
    agent["capacity"] = _sorted_dict(agent["capacity"])
    return agent


def _canonical_dict(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    channels = data["channels"]
    data["channels"] = {kind: sorted(accounts, key=_by("name")) for kind, accounts in channels.items()}
    data["skills"] = sorted(data["skills"], key=_by("name"))
    data["queues"] = sorted((_queue(q) for q in data["queues"]), key=_by("name"))
    data["agents"] = sorted((_agent(a) for a in data["agents"]), key=agent_key)
    data["auto_replies"] = {
        key: {**reply, "translations": _sorted_dict(reply["translations"])}
        for key, reply in sorted(data["auto_replies"].items())
    }
    if data.get("triage_menu") is not None:
        data["triage_menu"] = {**data["triage_menu"], "accounts": sorted(data["triage_menu"]["accounts"])}
    data["templates"] = sorted(data["templates"], key=lambda t: (t["name"], t["language"]))
    data["dispositions"] = sorted(
        ({**d, "requires": sorted(d["requires"])} for d in data["dispositions"]), key=_by("code")
    )
    return data


def canonical(manifest: Manifest) -> dict[str, Any]:
    """The complete manifest as JSON-compatible data, in canonical order (defaults included)."""
    return _canonical_dict(manifest.model_dump(mode="json", by_alias=True))


def normalize(manifest: Manifest) -> Manifest:
    """The same manifest with its collections in canonical order."""
    return Manifest.model_validate(canonical(manifest), context={"channels": manifest.channels.catalog})


def equivalent(a: Manifest, b: Manifest) -> bool:
    """Whether two manifests configure the same campaign (order of named items aside)."""
    return canonical(a) == canonical(b)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as ``|`` blocks, short lists and mappings of scalars inline, no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


def _is_short_scalar(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int | float | date):
        return True
    return isinstance(value, str) and "\n" not in value


def _short(items: list[Any]) -> bool:
    return all(_is_short_scalar(v) for v in items) and sum(len(str(v)) + 2 for v in items) <= 64


def _represent_list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=_short(value))


def _represent_dict(dumper: yaml.SafeDumper, value: dict[Any, Any]) -> yaml.MappingNode:
    inline = len(value) <= 3 and _short([*value.keys(), *value.values()])
    return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=inline)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(dict, _represent_dict)


def dump_manifest(manifest: Manifest, *, schema_ref: str | None = None) -> str:
    """YAML text of ``manifest`` (defaults left out), optionally with the editor's schema modeline."""
    data = manifest.model_dump(mode="python", by_alias=True, exclude_defaults=True)
    if data.get("channels") == {}:
        del data["channels"]  # every section at its default (empty), like any other default
    text = yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False
    )
    if schema_ref is not None:
        text = f"# yaml-language-server: $schema={schema_ref}\n{text}"
    return text
