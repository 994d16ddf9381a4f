"""Reply windows: when may we write to a customer, and how.  Pure: the clock is an argument.

Everything comes from the channel's ``Capabilities`` — no channel is named here:

* ``reply_window is None`` (email): free-form replies are always allowed.
* Within ``free_form_hours`` of the customer's last message on that business address (WhatsApp's
  and Instagram's 24 h customer-service window): free-form replies are allowed.
* Within ``extended_hours`` (Instagram's 7 days): a *human agent* may still reply free-form
  with ``extended_tag`` (``HUMAN_AGENT``); automated replies may not.
* Otherwise only an approved template may go out (when ``capabilities.templates``); a
  free-form reply is refused *before* it is sent, with ``ReplyWindowClosed`` offering the
  approved templates.

``last_customer_message_at`` is the time of the customer's last message to *that business
address from that identity* (per business number and customer), not of the conversation: a
conversation that moved from Instagram to WhatsApp has a window on each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.channel import Capabilities, ReplyWindow
from core.errors import InvalidInput, ReplyWindowClosed
from core.events import Template

__all__ = [
    "ApprovedTemplate",
    "ReplyDecision",
    "WindowState",
    "decide_reply",
    "templates_from_manifest",
    "window_notices_may_be_due",
    "window_state",
]


@dataclass(frozen=True, slots=True)
class ApprovedTemplate:
    """A template the campaign may send to (re)open a closed window."""

    name: str
    language: str
    parameters: tuple[str, ...] = ()  # names of {{1}}, {{2}}, … in order
    purpose: str | None = None
    category: str | None = None
    body: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "language": self.language,
            "parameters": list(self.parameters),
        }
        for key in ("purpose", "category", "body"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True, slots=True)
class WindowState:
    """Where a (business address, customer) pair stands at ``now``.

    ``open``: a free-form reply needs nothing special.  ``closes_at``: when the free-form
    window ends (None: it never does, or it was never opened).  ``extended_until``: the end of
    the tagged extension.  ``requires_tag``: the tag a human reply needs right now (inside the
    extension only).  ``templates_allowed``: the channel can send approved templates.
    """

    open: bool
    closes_at: datetime | None
    extended_until: datetime | None
    requires_tag: str | None
    templates_allowed: bool
    always_open: bool = False  # the channel has no window at all (email)

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "open": self.open,
            "closes_at": iso(self.closes_at),
            "extended_until": iso(self.extended_until),
            "requires_tag": self.requires_tag,
            "templates_allowed": self.templates_allowed,
        }


@dataclass(frozen=True, slots=True)
class ReplyDecision:
    """The reply may go out; with ``tag`` when it rides on the extended window."""

    tag: str | None = None
    window: WindowState | None = field(default=None, compare=False)


def window_state(
    capabilities: Capabilities, last_customer_message_at: datetime | None, now: datetime
) -> WindowState:
    """The window of one business address with one customer at ``now``."""
    rule = capabilities.reply_window
    if rule is None:
        return WindowState(True, None, None, None, capabilities.templates, always_open=True)
    if last_customer_message_at is None:  # the customer never wrote to this address
        return WindowState(False, None, None, None, capabilities.templates)
    closes_at = last_customer_message_at + timedelta(hours=rule.free_form_hours)
    extended_until = (
        last_customer_message_at + timedelta(hours=rule.extended_hours)
        if rule.extended_hours is not None and rule.extended_tag
        else None
    )
    if now < closes_at:
        return WindowState(True, closes_at, extended_until, None, capabilities.templates)
    requires_tag = rule.extended_tag if extended_until is not None and now < extended_until else None
    return WindowState(False, closes_at, extended_until, requires_tag, capabilities.templates)


def _closed_message(state: WindowState, channel_name: str) -> str:
    when = state.closes_at.strftime("%Y-%m-%d %H:%M UTC") if state.closes_at else None
    if when is None:
        es = f"El cliente no ha escrito por {channel_name}: no se puede enviar texto libre."
        en = f"The customer has not written on {channel_name}: free-form text cannot be sent."
    else:
        es = f"La ventana para responder con texto libre por {channel_name} se cerró el {when}."
        en = f"The free-form reply window on {channel_name} closed at {when}."
    if state.templates_allowed:
        es += " Envíe una plantilla aprobada."
        en += " Send an approved template."
    return f"{es} / {en}"


def _check_template(template: Template, approved: Sequence[ApprovedTemplate]) -> None:
    if not approved:
        return  # nothing configured: the provider is the judge (132001 for an unknown one)
    matches = [t for t in approved if t.name == template.name]
    if not matches:
        raise InvalidInput(
            f"La plantilla {template.name!r} no está aprobada para esta campaña / "
            f"template {template.name!r} is not approved for this campaign",
            field="template.name",
            details={"templates": [t.to_dict() for t in approved]},
        )
    chosen = next((t for t in matches if t.language == template.language), None)
    if chosen is None:
        languages = ", ".join(sorted({t.language for t in matches}))
        raise InvalidInput(
            f"La plantilla {template.name!r} no existe en {template.language!r} ({languages}) / "
            f"template {template.name!r} has no {template.language!r} translation ({languages})",
            field="template.language",
            details={"templates": [t.to_dict() for t in approved]},
        )
    if chosen.parameters and len(template.body_parameters) != len(chosen.parameters):
        raise InvalidInput(
            f"La plantilla {template.name!r} lleva {len(chosen.parameters)} parámetros "
            f"({', '.join(chosen.parameters)}) / template {template.name!r} takes "
            f"{len(chosen.parameters)} parameters, got {len(template.body_parameters)}",
            field="template.parameters",
        )


def decide_reply(
    capabilities: Capabilities,
    state: WindowState,
    *,
    template: Template | None,
    human: bool,
    approved_templates: Sequence[ApprovedTemplate] = (),
    channel_name: str | None = None,
) -> ReplyDecision:
    """Allow a reply (free-form when ``template`` is None) or raise.

    Raises ``ReplyWindowClosed`` (details: the approved templates) for free-form text outside
    every window it may use, and ``InvalidInput`` for a template the channel or campaign cannot
    send.  ``human``: a person is replying (only they may use the tagged extension).
    """
    name = channel_name or capabilities.display_name or "este canal"
    if template is not None:
        if not capabilities.templates:
            raise InvalidInput(
                f"{name} no admite plantillas; envíe texto / {name} has no message templates; send text",
                field="template",
            )
        _check_template(template, approved_templates)
        return ReplyDecision(None, state)
    if state.open:
        return ReplyDecision(None, state)
    if state.requires_tag is not None and human:
        return ReplyDecision(state.requires_tag, state)
    raise ReplyWindowClosed(
        _closed_message(state, name),
        field="text",
        details={
            "templates": [t.to_dict() for t in approved_templates] if state.templates_allowed else [],
            "window": state.to_dict(),
        },
    )


def _str_or_none(value: Any) -> str | None:
    return str(value) if value is not None else None


def templates_from_manifest(
    manifest: Mapping[str, Any], account_name: str | None = None
) -> list[ApprovedTemplate]:
    """The approved templates of an applied campaign manifest (``templates:``), for one account.

    A template with ``whatsapp_account`` set is offered only for the account of that name.
    Entries that are not well-formed are left out (the manifest was validated when applied).
    """
    raw = manifest.get("templates") if isinstance(manifest, Mapping) else None
    if not isinstance(raw, list):
        return []
    out: list[ApprovedTemplate] = []
    for item in raw:
        if not isinstance(item, Mapping) or not item.get("name") or not item.get("language"):
            continue
        only = item.get("whatsapp_account")
        if only and account_name is not None and only != account_name:
            continue
        parameters = item.get("parameters") or []
        out.append(
            ApprovedTemplate(
                name=str(item["name"]),
                language=str(item["language"]),
                parameters=tuple(str(p) for p in parameters) if isinstance(parameters, list) else (),
                purpose=_str_or_none(item.get("purpose")),
                category=_str_or_none(item.get("category")),
                body=_str_or_none(item.get("body")),
            )
        )
    return out


def window_notices_may_be_due(
    window: ReplyWindow | None,
    previous: datetime | None,
    now: datetime,
    warning_s: float,
    *,
    margin_s: float = 300.0,
) -> bool:
    """Whether the router's notices of the reply window that opened at ``previous`` (the warning
    ``warning_s`` before it closes, the notice at its close) may have fired by ``now`` — or will
    within ``margin_s``, for the clocks of two processes and a message in flight.

    A customer's message in an assigned conversation reaches its agent directly; the router keeps
    only that window's notices and checks each against the database before sending it, so it
    needs to hear of the message only when those notices may already be behind it (a stale
    notice still pending is corrected when it fires).  No window (email): no notices.
    """
    if window is None:
        return False
    if previous is None:
        return True
    fires_at = window.free_form_hours * 3600.0 - warning_s
    return (now - previous).total_seconds() >= fires_at - margin_s
