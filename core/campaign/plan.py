"""What applying a manifest would change: a pure diff of desired against current.

Items are compared in canonical form (``core.campaign.canonical``), keyed by their identity: a
queue by name, an agent by email (a group by ``group:<name>``), a template by name and language,
…  A change lists each field that differs, as a dotted path with old and new values.  ``changes``
come in ``KIND_ORDER``, a safe order to apply additions and changes (what is referenced comes
first); apply removals in reverse.  Channel accounts sit between queues and agents, one kind per
channel (``ChannelSpec.plan_kind``: ``whatsapp_account``, ``mailbox``, …), in the catalog's order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from core.campaign.canonical import agent_key, canonical
from core.campaign.channels import ChannelCatalog
from core.campaign.model import Manifest
from core.errors import InvalidInput

__all__ = [
    "KIND_ORDER",
    "Action",
    "Change",
    "FieldChange",
    "ItemKind",
    "Plan",
    "kind_order",
    "plan",
    "render_plan",
]

Action: TypeAlias = Literal["add", "change", "remove"]
ItemKind: TypeAlias = str
"""``campaign``, ``skill``, ``auto_reply``, ``template``, ``queue``, a channel's account kind,
``agent``, ``triage_menu``, ``disposition``, ``retention``, ``survey`` or ``webhook``."""
_BEFORE_ACCOUNTS: tuple[ItemKind, ...] = ("campaign", "skill", "auto_reply", "template", "queue")
_AFTER_ACCOUNTS: tuple[ItemKind, ...] = (
    "agent",
    "triage_menu",
    "disposition",
    "retention",
    "survey",
    "webhook",
)
KIND_ORDER: tuple[ItemKind, ...] = (*_BEFORE_ACCOUNTS, *_AFTER_ACCOUNTS)
"""The kinds of items that are not channel accounts, in order (``kind_order`` adds the accounts)."""
_LABEL: dict[ItemKind, str] = {
    "campaign": "campaign",
    "skill": "skill",
    "auto_reply": "auto-reply",
    "template": "template",
    "queue": "queue",
    "agent": "agent",
    "triage_menu": "triage menu",
    "disposition": "disposition",
    "retention": "retention",
    "survey": "survey",
    "webhook": "webhook",
}


def kind_order(catalog: ChannelCatalog) -> tuple[ItemKind, ...]:
    """Every kind of item, channel accounts of ``catalog`` included, in a safe order to apply."""
    return (*_BEFORE_ACCOUNTS, *(spec.plan_kind for spec in catalog), *_AFTER_ACCOUNTS)


_SYMBOL: dict[Action, str] = {"add": "+", "change": "~", "remove": "-"}


@dataclass(frozen=True)
class FieldChange:
    """One field that differs; ``None`` stands for absent."""

    field: str  # dotted path inside the item, e.g. "sla.answer_within_s"
    old: Any
    new: Any


@dataclass(frozen=True)
class Change:
    """An item added, changed or removed.  ``desired`` / ``current`` are its canonical data."""

    action: Action
    kind: ItemKind
    key: str
    fields: tuple[FieldChange, ...] = ()
    desired: dict[str, Any] | None = None
    current: dict[str, Any] | None = None


@dataclass(frozen=True)
class Plan:
    workspace: str
    campaign: str
    changes: tuple[Change, ...]
    labels: Mapping[ItemKind, str] = field(default_factory=dict)  # how render_plan names each kind

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def _with(self, action: Action) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action == action)

    @property
    def added(self) -> tuple[Change, ...]:
        return self._with("add")

    @property
    def changed(self) -> tuple[Change, ...]:
        return self._with("change")

    @property
    def removed(self) -> tuple[Change, ...]:
        return self._with("remove")

    def find(self, kind: ItemKind, key: str) -> Change | None:
        return next((c for c in self.changes if c.kind == kind and c.key == key), None)


def _items(data: dict[str, Any], catalog: ChannelCatalog) -> dict[ItemKind, dict[str, dict[str, Any]]]:
    channels = data["channels"]
    accounts = {spec.plan_kind: {a["name"]: a for a in channels.get(spec.name, [])} for spec in catalog}
    items: dict[ItemKind, dict[str, dict[str, Any]]] = {
        "campaign": {data["campaign"]["name"]: data["campaign"]},
        "skill": {s["name"]: s for s in data["skills"]},
        "auto_reply": dict(data["auto_replies"]),
        "template": {f"{t['name']} ({t['language']})": t for t in data["templates"]},
        "queue": {q["name"]: q for q in data["queues"]},
        **accounts,
        "agent": {agent_key(a): a for a in data["agents"]},
        "triage_menu": {"menu": data["triage_menu"]} if data.get("triage_menu") is not None else {},
        "disposition": {d["code"]: d for d in data["dispositions"]},
        "retention": {"retention": data["retention"]} if data.get("retention") is not None else {},
        "survey": {"survey": data["survey"]} if data.get("survey") is not None else {},
        "webhook": {w["name"]: w for w in (data.get("integrations") or {}).get("webhooks", [])},
    }
    return items


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key in value:
            yield from _flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif prefix:
        yield prefix, value


def _diff(old: dict[str, Any], new: dict[str, Any]) -> tuple[FieldChange, ...]:
    before = dict(_flatten(old))
    after = dict(_flatten(new))
    fields = list(after) + [f for f in before if f not in after]
    return tuple(FieldChange(f, before.get(f), after.get(f)) for f in fields if before.get(f) != after.get(f))


def plan(desired: Manifest, current: Manifest | None) -> Plan:
    """The changes that turn ``current`` (None: nothing yet) into ``desired``."""
    if current is not None and (
        current.workspace != desired.workspace or current.campaign.name != desired.campaign.name
    ):
        raise InvalidInput(
            f"cannot plan {desired.workspace}/{desired.campaign.name} against "
            f"{current.workspace}/{current.campaign.name}: a plan compares one campaign with itself",
            field="campaign.name",
        )
    catalog = desired.channels.catalog
    order = kind_order(catalog)
    want = _items(canonical(desired), catalog)
    have = _items(canonical(current), catalog) if current is not None else {kind: {} for kind in order}
    changes: list[Change] = []
    for kind in order:
        new_items, old_items = want[kind], have[kind]
        for key in sorted(new_items.keys() | old_items.keys()):
            if key not in old_items:
                changes.append(Change("add", kind, key, desired=new_items[key]))
            elif key not in new_items:
                changes.append(Change("remove", kind, key, current=old_items[key]))
            else:
                fields = _diff(old_items[key], new_items[key])
                if fields:
                    changes.append(Change("change", kind, key, fields, new_items[key], old_items[key]))
    labels = {**_LABEL, **{spec.plan_kind: spec.section.plan_label or spec.name for spec in catalog}}
    return Plan(desired.workspace, desired.campaign.name, tuple(changes), labels)


def _show(value: Any, limit: int = 80) -> str:
    if value is None:
        text = "(none)"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = format(value, "g")
    elif isinstance(value, str):
        plain = value and value.strip() == value and not any(c in value for c in " ,[]{}\n\"'")
        text = value if plain else json.dumps(value, ensure_ascii=False)
    elif isinstance(value, list):
        text = "[" + ", ".join(_show(v, limit) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {_show(v, limit)}" for k, v in value.items()) + "}"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_plan(result: Plan) -> str:
    """A readable diff: ``+ queue urgencias``, ``~ queue pagos: sla.answer_within_s 60 → 45``, …"""
    title = f"campaign {result.campaign!r} in workspace {result.workspace!r}"
    if result.is_empty:
        return f"No changes: {title} is up to date."
    lines = [f"Plan for {title}:"]
    for change in result.changes:
        label = result.labels.get(change.kind) or _LABEL.get(change.kind, change.kind)
        head = f"{_SYMBOL[change.action]} {label}"
        if change.kind not in ("triage_menu", "retention", "survey"):  # one of each: no key to name
            head += f" {change.key}"
        if change.action == "change":
            lines.extend(f"{head}: {f.field} {_show(f.old)} → {_show(f.new)}" for f in change.fields)
        else:
            lines.append(head)
    lines.append(
        f"{len(result.added)} to add, {len(result.changed)} to change, {len(result.removed)} to remove."
    )
    return "\n".join(lines)
