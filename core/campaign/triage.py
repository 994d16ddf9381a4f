"""The triage menu as decisions: the text to send and which option an answer picks."""

from __future__ import annotations

import re
import unicodedata

from core.campaign.model import TriageMenu, TriageOption

__all__ = ["match_triage_answer", "render_triage_options", "render_triage_prompt"]

_LEADING_NUMBER = re.compile(r"^(\d{1,2})(?:\b|[.)\-:])")


def render_triage_options(menu: TriageMenu) -> str:
    """One numbered line per option."""
    return "\n".join(f"{n}. {option.label}" for n, option in enumerate(menu.options, start=1))


def render_triage_prompt(menu: TriageMenu) -> str:
    """The prompt followed by one numbered line per option."""
    return f"{menu.prompt}\n{render_triage_options(menu)}"


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def match_triage_answer(menu: TriageMenu, answer: str) -> TriageOption | None:
    """The option a customer's answer chooses: its number ("2", "2.", "2️⃣"), label or a keyword."""
    text = answer.replace("\ufe0f", "").replace("\u20e3", "").strip()
    number = _LEADING_NUMBER.match(text)
    if number is not None:
        index = int(number.group(1))
        return menu.options[index - 1] if 1 <= index <= len(menu.options) else None
    folded = _fold(text).strip(" .!¡?¿")
    if not folded:
        return None
    for option in menu.options:
        if folded == _fold(option.label) or folded in {_fold(k) for k in option.keywords}:
            return option
    return None
