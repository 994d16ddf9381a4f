"""How a CSAT or NPS survey goes out, and what a customer's answer to it says (``core.surveys``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from channels.email.adapter import EmailAdapter
from channels.instagram.adapter import CAPABILITIES as INSTAGRAM
from channels.whatsapp.adapter import CAPABILITIES as WHATSAPP
from core.campaign import Survey, SurveyTemplate
from core.events import Template
from core.reply_window import ApprovedTemplate, window_state
from core.surveys import (
    Answer,
    SendAs,
    SurveySend,
    SurveySkip,
    choice_id,
    plan_send,
    read_answer,
    read_choice,
    read_comment,
    survey_for,
    survey_of,
)

CONVERSATION = uuid.UUID("0b5c4a7e-8f43-4d4e-9a53-5b1a3c2d1e0f")
NOW = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)
CSAT = Survey(kind="csat", question="¿Cómo calificarías la atención?")
NPS = Survey(kind="nps", question="¿Qué tan probable es que nos recomiendes?")
TEMPLATED = CSAT.model_copy(update={"template": SurveyTemplate(name="encuesta_csat", language="es_MX")})
EMAIL = EmailAdapter.capabilities
APPROVED = [ApprovedTemplate("encuesta_csat", "es_MX")]


def _open(capabilities=WHATSAPP):  # type: ignore[no-untyped-def]
    return window_state(capabilities, NOW - timedelta(minutes=5), NOW)


def _closed(capabilities=WHATSAPP):  # type: ignore[no-untyped-def]
    return window_state(capabilities, NOW - timedelta(hours=30), NOW)


# ------------------------------------------------------------------------------ who gets it


def test_a_survey_without_channels_is_for_every_channel_and_with_them_only_for_those() -> None:
    assert survey_for(CSAT, "email") is CSAT
    only = CSAT.model_copy(update={"channels": ["whatsapp"]})
    assert survey_for(only, "whatsapp") is only
    assert survey_for(only, "email") is None
    assert survey_for(None, "whatsapp") is None


def test_the_survey_is_read_from_the_manifest_as_stored() -> None:
    assert survey_of({"survey": {"kind": "nps", "question": "¿Nos recomendarías?"}}) == Survey(
        kind="nps", question="¿Nos recomendarías?"
    )
    assert survey_of({}) is None


# ------------------------------------------------------------------------------ how it goes out


def test_csat_inside_the_window_on_whatsapp_is_a_list_of_five_scores_best_first() -> None:
    decision = plan_send(CSAT, CONVERSATION, WHATSAPP, _open())
    assert isinstance(decision, SurveySend) and decision.send_as is SendAs.INTERACTIVE
    assert decision.interactive is not None
    assert (decision.interactive.style, decision.interactive.button) == ("list", "Calificar")
    assert [o.id for o in decision.interactive.options] == [
        f"survey:{CONVERSATION}:{n}" for n in (5, 4, 3, 2, 1)
    ]
    assert decision.interactive.options[0].title == "5 ⭐⭐⭐⭐⭐"
    assert decision.interactive.body == CSAT.question
    assert decision.text.startswith(CSAT.question + "\n5. ⭐⭐⭐⭐⭐\n4. ⭐⭐⭐⭐")


def test_nps_inside_the_window_is_text_because_eleven_scores_fit_no_whatsapp_list() -> None:
    decision = plan_send(NPS, CONVERSATION, WHATSAPP, _open())
    assert decision == SurveySend(SendAs.TEXT, f"{NPS.question}\n0 · 1 · 2 · 3 · 4 · 5 · 6 · 7 · 8 · 9 · 10")


def test_a_channel_without_interactive_messages_gets_the_scores_as_numbered_text() -> None:
    decision = plan_send(CSAT, CONVERSATION, INSTAGRAM, _open(INSTAGRAM))
    assert isinstance(decision, SurveySend) and decision.send_as is SendAs.TEXT
    assert decision.interactive is None
    assert decision.text.splitlines()[1:] == ["5. ⭐⭐⭐⭐⭐", "4. ⭐⭐⭐⭐", "3. ⭐⭐⭐", "2. ⭐⭐", "1. ⭐"]


def test_email_has_no_window_so_the_survey_always_goes_as_text() -> None:
    decision = plan_send(TEMPLATED, CONVERSATION, EMAIL, window_state(EMAIL, None, NOW))
    assert isinstance(decision, SurveySend) and decision.send_as is SendAs.TEXT


def test_outside_the_window_the_survey_goes_only_as_its_approved_template() -> None:
    decision = plan_send(TEMPLATED, CONVERSATION, WHATSAPP, _closed(), APPROVED)
    assert decision == SurveySend(
        SendAs.TEMPLATE, TEMPLATED.question, template=Template(name="encuesta_csat", language="es_MX")
    )


def test_outside_the_window_without_a_template_nothing_is_sent() -> None:
    assert plan_send(CSAT, CONVERSATION, WHATSAPP, _closed(), APPROVED) == SurveySkip(
        "window_closed_no_template"
    )


def test_a_customer_who_never_wrote_on_the_channel_is_outside_the_window() -> None:
    never = window_state(WHATSAPP, None, NOW)
    assert plan_send(CSAT, CONVERSATION, WHATSAPP, never) == SurveySkip("window_closed_no_template")


def test_a_template_on_a_channel_without_templates_is_not_sent() -> None:
    assert plan_send(TEMPLATED, CONVERSATION, INSTAGRAM, _closed(INSTAGRAM), APPROVED) == SurveySkip(
        "templates_unsupported"
    )


def test_a_template_not_approved_for_the_account_is_not_sent() -> None:
    other = [ApprovedTemplate("encuesta_csat", "en_US")]
    assert plan_send(TEMPLATED, CONVERSATION, WHATSAPP, _closed(), other) == SurveySkip(
        "template_not_approved"
    )


# ------------------------------------------------------------------------------ answers


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("5", Answer(5)),
        (" 5 ", Answer(5)),
        ("5.", Answer(5)),
        ("5!", Answer(5)),
        ("5 estrellas", Answer(5)),
        ("4 de 5", Answer(4)),
        ("4/5", Answer(4)),
        ("le doy un 4", Answer(4)),
        ("Le doy un 4, muy amable la asesora", Answer(4, "muy amable la asesora")),
        ("Calificación: 3", Answer(3)),
        ("mi calificación es 2", Answer(2)),
        ("5, excelente atención", Answer(5, "excelente atención")),
        ("5 - resolvieron todo rápido", Answer(5, "resolvieron todo rápido")),
        ("⭐⭐⭐⭐⭐", Answer(5)),
        ("⭐️⭐️⭐️", Answer(3)),
        ("★★★★", Answer(4)),
        ("⭐⭐⭐⭐⭐ excelente", Answer(5, "excelente")),
        ("5 ⭐", Answer(5)),
        ("5️⃣", Answer(5)),
        ("1️⃣", Answer(1)),
        ("５", Answer(5)),
        ("I give it 4", Answer(4)),
    ],
)
def test_a_csat_score_is_read_from_digits_stars_and_keycaps(text: str, answer: Answer) -> None:
    assert read_answer("csat", text) == answer


@pytest.mark.parametrize(
    "text",
    [
        "6",  # above the scale
        "0",  # below it
        "⭐⭐⭐⭐⭐⭐",  # six stars
        "🔟",
        "tengo 2 problemas más",  # a number, but not given as a score
        "mi pedido 12345 no llegó",
        "4,5",  # not a whole score
        "Gracias",
        "😀",  # faces are not scores
        "👍",
        "",
        "   ",
    ],
)
def test_what_is_not_a_csat_score_is_not_an_answer(text: str) -> None:
    assert read_answer("csat", text) is None


@pytest.mark.parametrize(
    ("text", "score"),
    [("0", 0), ("10", 10), ("🔟", 10), ("1️⃣0️⃣", 10), ("10/10", 10), ("un 9", 9), ("7 de 10", 7)],
)
def test_an_nps_score_runs_from_0_to_10(text: str, score: int) -> None:
    assert read_answer("nps", text) == Answer(score)


def test_eleven_is_not_an_nps_score() -> None:
    assert read_answer("nps", "11") is None


def test_a_tapped_option_is_read_by_its_id_whatever_its_title() -> None:
    assert read_answer("csat", "5 ⭐⭐⭐⭐⭐", choice_id(CONVERSATION, 5)) == Answer(5)
    assert read_answer("csat", "anything", choice_id(CONVERSATION, 2)) == Answer(2)
    assert read_choice(choice_id(CONVERSATION, 4)) == (CONVERSATION, 4)


def test_a_tapped_id_outside_the_scale_or_of_another_form_is_not_an_answer() -> None:
    assert read_answer("csat", None, choice_id(CONVERSATION, 9)) is None
    assert read_choice("survey:not-a-uuid:5") is None
    assert read_choice("maestrias") is None
    assert read_choice(None) is None


def test_a_later_message_is_kept_whole_as_the_comment_cut_at_1000_characters() -> None:
    assert read_comment("  La asesora fue muy amable  ") == "La asesora fue muy amable"
    assert read_comment("x" * 1200) == "x" * 1000
    assert read_comment("   ") is None
    assert read_comment(None) is None
