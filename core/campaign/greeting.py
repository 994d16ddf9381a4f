"""What a customer hears before an agent does: the welcome reply, the triage menu and its answers.

Pure decisions over a campaign manifest; the pipeline carries them out (stores the conversation's
status, sends the texts as auto-replies, nudges the router once a queue is known).

* A new conversation on an account with a ``welcome_reply`` gets that auto-reply (on Instagram
  or email it is typically a hub reply: an invitation to continue on WhatsApp with a wa.me link).
* A new conversation on an account the triage menu asks on (accounts of channels whose
  capabilities say ``triage_menu``, all of them or those in ``triage_menu.accounts``) gets the
  numbered menu and waits in ``triage``, outside the router, until the customer picks an option.
* Each answer either picks an option (→ its queue), or counts as an invalid attempt: the
  customer is told so and shown the options again, and after ``max_attempts`` invalid answers
  the conversation goes to the menu's ``default_queue``.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.campaign.fields import Language
from core.campaign.links import render_auto_reply
from core.campaign.model import Manifest, TriageMenu, TriageOption
from core.campaign.triage import match_triage_answer, render_triage_options, render_triage_prompt

__all__ = ["Opening", "TriageStep", "opening", "triage_menu_for", "triage_step"]


@dataclass(frozen=True, slots=True)
class Opening:
    """What a new conversation gets: one text to send (or none), and whether it waits in triage."""

    reply: str | None
    triage: bool


@dataclass(frozen=True, slots=True)
class TriageStep:
    """What one answer in triage does: the queue it lands in (None: still in triage), the option
    it picked, the text to send back, and the invalid attempts so far."""

    queue: str | None
    option: TriageOption | None
    reply: str | None
    attempts: int


def _account(manifest: Manifest, account_name: str | None) -> tuple[bool, str | None] | None:
    """Whether the account's channel asks the triage menu, and its welcome reply key."""
    if account_name is None:
        return None
    found = manifest.channels.find(account_name)
    if found is None:
        return None
    spec, account = found
    return spec.capabilities.triage_menu, account.welcome_reply


def triage_menu_for(manifest: Manifest, account_name: str | None) -> TriageMenu | None:
    """The menu that asks on this account, if any."""
    menu = manifest.triage_menu
    found = _account(manifest, account_name)
    if menu is None or found is None or not found[0]:
        return None
    if menu.accounts and account_name not in menu.accounts:
        return None
    return menu


def opening(manifest: Manifest, account_name: str | None, language: Language | None = None) -> Opening:
    """The welcome reply and the triage menu prompt, as one text, for a conversation that opens
    on ``account_name``."""
    found = _account(manifest, account_name)
    if found is None:
        return Opening(reply=None, triage=False)
    _, welcome_key = found
    parts: list[str] = []
    if welcome_key is not None and welcome_key in manifest.auto_replies:
        parts.append(render_auto_reply(manifest, welcome_key, language))
    menu = triage_menu_for(manifest, account_name)
    if menu is not None:
        parts.append(render_triage_prompt(menu))
    return Opening(reply="\n\n".join(parts) if parts else None, triage=menu is not None)


def triage_step(menu: TriageMenu, answer: str | None, attempts: int) -> TriageStep:
    """Decide on one customer message while the conversation is in triage.  ``answer`` is None
    for a message without text (a photo, a sticker): it counts as an invalid answer."""
    option = match_triage_answer(menu, answer) if answer else None
    if option is not None:
        return TriageStep(queue=option.queue, option=option, reply=None, attempts=attempts)
    attempts += 1
    if attempts >= menu.max_attempts:
        return TriageStep(queue=menu.default_queue, option=None, reply=None, attempts=attempts)
    reply = f"{menu.invalid_reply}\n{render_triage_options(menu)}"
    return TriageStep(queue=None, option=None, reply=reply, attempts=attempts)
