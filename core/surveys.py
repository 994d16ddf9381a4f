"""CSAT and NPS surveys as decisions: how one goes out, and what a customer's answer says.

A campaign's manifest declares its survey (``core.campaign.Survey``): CSAT scores 1–5, NPS
0–10.  ``survey_for`` says whether a conversation closed on a channel gets it; ``plan_send``
how it goes out, given the channel's capabilities and the reply window:

* inside the window, on a channel that sends interactive messages: reply buttons when the scale
  fits them, else a list when it fits one (CSAT on WhatsApp: a list of 5 rows; WhatsApp has 3
  buttons and 10 list rows over all sections, so NPS's 11 scores go as text);
* inside the window otherwise (or where the options do not fit): the question with the scores
  written out, answered by typing the number;
* outside the window: the manifest's approved template, on a channel that sends templates —
  and with no template (or on a channel without templates), nothing.

``read_answer`` reads a score from what the customer sent: a tapped option's id
(``survey:<conversation id>:<score>``, the ids ``plan_send`` gives), digits ("5",
"5 estrellas", "le doy un 4", "Calificación: 9"), keycap digits ("5️⃣", "🔟"), or a run of stars
("⭐⭐⭐⭐⭐" is 5).  A number is read at the start of the message or after a few words that only
lead up to a score ("le doy un", "mi calificación es", "I give it"): "tengo 2 problemas" is not
an answer.  Faces ("😀") are not read as scores: no mapping of faces to a scale is obvious
enough to report on.  A score outside the scale is not an answer.  The rest of the message after
the score (without "estrellas", "de 5", "/10") is its comment.

Pure: no clock (times are given), no I/O.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from core.campaign.model import Manifest, Survey
from core.channel import Capabilities
from core.events import Interactive, InteractiveOption, Template
from core.reply_window import ApprovedTemplate, WindowState

__all__ = [
    "COMMENT_MAX_CHARS",
    "SCALES",
    "Answer",
    "SendAs",
    "SurveySend",
    "SurveySkip",
    "choice_id",
    "plan_send",
    "read_answer",
    "read_choice",
    "read_comment",
    "survey_for",
    "survey_of",
]

SCALES: Final = {"csat": range(1, 6), "nps": range(0, 11)}
COMMENT_MAX_CHARS: Final = 1000
_CHOICE = re.compile(r"^survey:([0-9a-fA-F-]{36}):(\d{1,2})$")


class SendAs(StrEnum):
    """How a survey went out (the ``as`` of ``survey.sent``)."""

    INTERACTIVE = "interactive"
    TEXT = "text"
    TEMPLATE = "template"


@dataclass(frozen=True, slots=True)
class SurveySend:
    """Send the survey: ``text`` is the body sent as text (and the question and options an
    interactive message shows as text on the timeline); a template sends ``template`` alone."""

    send_as: SendAs
    text: str
    interactive: Interactive | None = None
    template: Template | None = None


@dataclass(frozen=True, slots=True)
class SurveySkip:
    """The survey is not sent; ``reason`` says why (logged)."""

    reason: str  # "window_closed_no_template", "templates_unsupported", "template_not_approved"


def survey_of(manifest: Mapping[str, Any] | Manifest | None) -> Survey | None:
    """The survey of a campaign's manifest (parsed, or as stored when applied); None without one."""
    if isinstance(manifest, Manifest):
        return manifest.survey
    section = manifest.get("survey") if isinstance(manifest, Mapping) else None
    return Survey.model_validate(section) if section else None


def survey_for(survey: Survey | None, channel: str) -> Survey | None:
    """The survey, when conversations closed on ``channel`` get it."""
    if survey is None or (survey.channels and channel not in survey.channels):
        return None
    return survey


def choice_id(conversation_id: uuid.UUID, score: int) -> str:
    """The id of one tappable score: the answer names the conversation it was asked about."""
    return f"survey:{conversation_id}:{score}"


def _title(kind: str, score: int) -> str:
    return f"{score} {'⭐' * score}" if kind == "csat" else str(score)


def _text(survey: Survey) -> str:
    scale = SCALES[survey.kind]
    if survey.kind == "csat":
        lines = "\n".join(f"{n}. {'⭐' * n}" for n in reversed(scale))
    else:
        lines = " · ".join(str(n) for n in scale)
    return f"{survey.question}\n{lines}"


def _interactive(
    survey: Survey, conversation_id: uuid.UUID, capabilities: Capabilities
) -> Interactive | None:
    scale = list(SCALES[survey.kind])
    if survey.kind == "csat":
        scale.reverse()  # the best score first
    options = tuple(
        InteractiveOption(id=choice_id(conversation_id, n), title=_title(survey.kind, n)) for n in scale
    )
    longest = max(len(o.title) for o in options)
    if len(options) <= capabilities.interactive_buttons and longest <= capabilities.interactive_button_title:
        return Interactive(style="buttons", body=survey.question, options=options)
    if len(options) <= capabilities.interactive_list_rows and longest <= capabilities.interactive_row_title:
        return Interactive(style="list", body=survey.question, options=options, button=survey.button)
    return None


def plan_send(
    survey: Survey,
    conversation_id: uuid.UUID,
    capabilities: Capabilities,
    window: WindowState,
    approved_templates: Sequence[ApprovedTemplate] = (),
) -> SurveySend | SurveySkip:
    """How ``survey`` about ``conversation_id`` goes out now, or why it does not."""
    if window.open:
        interactive = _interactive(survey, conversation_id, capabilities)
        if interactive is not None:
            return SurveySend(SendAs.INTERACTIVE, _text(survey), interactive=interactive)
        return SurveySend(SendAs.TEXT, _text(survey))
    if survey.template is None:
        return SurveySkip("window_closed_no_template")
    if not window.templates_allowed:
        return SurveySkip("templates_unsupported")
    wanted = survey.template
    if not any(t.name == wanted.name and t.language == wanted.language for t in approved_templates):
        return SurveySkip("template_not_approved")  # e.g. limited to another account
    return SurveySend(
        SendAs.TEMPLATE, survey.question, template=Template(name=wanted.name, language=wanted.language)
    )


# ------------------------------------------------------------------------------------ answers


@dataclass(frozen=True, slots=True)
class Answer:
    """A score the customer gave, and the comment after it in the same message."""

    score: int
    comment: str | None = None


def read_choice(payload: str | None) -> tuple[uuid.UUID, int] | None:
    """The conversation and score a tapped option names (``choice_id``), or None."""
    match = _CHOICE.match((payload or "").strip())
    if match is None:
        return None
    try:
        return uuid.UUID(match.group(1)), int(match.group(2))
    except ValueError:
        return None


_KEYCAP = re.compile(r"([0-9])\ufe0f?\u20e3")
_STARS = "⭐★🌟"
# Words that only lead up to a score (folded: lower case, no accents).
_LEAD_INS: Final = frozenset(
    "le te les doy damos pongo daria un una el la mi nuestra calificacion calificación puntuacion "
    "nota puntaje es seria sera de con yo i give it rate my score is would a um uma eu dou minha "
    "avaliacao".split()
)
_MAX_LEAD_INS: Final = 5
_NUMBER = re.compile(r"(?<![\d.,])(\d{1,2})(?![\d]|[.,]\d)")
_UNITS = re.compile(
    r"^(?:(?:/|de|sobre|of|out of)\s*(?:5|10)\b|estrellas?\b|stars?\b|puntos?\b|pts?\b|points?\b|⭐+|★+)",
    re.IGNORECASE,
)
_EDGE = " \t\r\n.,;:!¡?¿-–—()[]\"'«»*_~"


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _clean(text: str) -> str | None:
    rest = text.strip(_EDGE)
    while True:
        unit = _UNITS.match(rest)
        if unit is None:
            break
        rest = rest[unit.end() :].strip(_EDGE)
    return rest[:COMMENT_MAX_CHARS] or None


def read_answer(kind: str, text: str | None, payload: str | None = None) -> Answer | None:
    """The score in a customer's message (``text``, or a tapped option's ``payload``), or None
    when it is not an answer to a ``kind`` survey."""
    scale = SCALES[kind]
    choice = read_choice(payload)
    if choice is not None:
        return Answer(choice[1]) if choice[1] in scale else None
    if not text:
        return None
    normalized = unicodedata.normalize("NFKC", text).replace("🔟", "10")
    normalized = _KEYCAP.sub(r"\1", normalized).strip(_EDGE)
    stars = len(normalized) - len(normalized.lstrip(_STARS + "\ufe0f "))
    if stars:
        run = normalized[:stars]
        count = sum(run.count(s) for s in _STARS)
        return Answer(count, _clean(normalized[stars:])) if count in scale else None
    number = _NUMBER.search(normalized)
    if number is None:
        return None
    before = re.findall(r"\w+", normalized[: number.start()])
    if len(before) > _MAX_LEAD_INS or any(_fold(w) not in _LEAD_INS for w in before):
        return None
    score = int(number.group(1))
    if score not in scale:
        return None
    return Answer(score, _clean(normalized[number.end() :]))


def read_comment(text: str | None) -> str | None:
    """A message kept as the comment on a score given before it."""
    comment = (text or "").strip()
    return comment[:COMMENT_MAX_CHARS] or None
