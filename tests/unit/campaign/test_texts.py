"""Customer-facing texts: wa.me links, auto-replies and the triage menu."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from channels.whatsapp import wa_me_link
from core.campaign import (
    Manifest,
    match_triage_answer,
    parse_manifest,
    render_auto_reply,
    render_triage_prompt,
)
from core.errors import InvalidInput, NotFound


def _manifest(data: dict[str, Any]) -> Manifest:
    return parse_manifest(yaml.safe_dump(data, allow_unicode=True))


def test_a_wa_me_link_has_the_digits_of_the_number_and_the_encoded_text() -> None:
    link = wa_me_link("+52 55 4170 2030", "Hola, quiero información de posgrados")
    assert link == "https://wa.me/525541702030?text=Hola%2C%20quiero%20informaci%C3%B3n%20de%20posgrados"


def test_a_wa_me_link_without_text_opens_the_chat_only() -> None:
    assert wa_me_link("+5491143215500") == "https://wa.me/5491143215500"


def test_a_wa_me_link_refuses_something_that_is_not_a_phone_number() -> None:
    with pytest.raises(InvalidInput):
        wa_me_link("+52 55")


def test_a_hub_auto_reply_carries_the_link_of_its_whatsapp_account(manifest_data: dict[str, Any]) -> None:
    text = render_auto_reply(_manifest(manifest_data), "ir-a-whatsapp")
    assert text == "Sigamos por WhatsApp: https://wa.me/525541702030?text=Hola%2C%20vengo%20de%20Instagram"


def test_an_auto_reply_uses_its_english_variant_when_asked(manifest_data: dict[str, Any]) -> None:
    manifest_data["auto_replies"]["bienvenida"]["translations"] = {"en": "Hi! We'll be right with you."}
    manifest = _manifest(manifest_data)
    assert render_auto_reply(manifest, "bienvenida", "en") == "Hi! We'll be right with you."
    assert render_auto_reply(manifest, "bienvenida") == "¡Hola! En un momento te atendemos."


def test_an_unknown_auto_reply_is_not_found(manifest_data: dict[str, Any]) -> None:
    with pytest.raises(NotFound):
        render_auto_reply(_manifest(manifest_data), "despedida")


def test_the_triage_prompt_numbers_the_options(manifest_data: dict[str, Any]) -> None:
    menu = _manifest(manifest_data).triage_menu
    assert menu is not None
    assert render_triage_prompt(menu) == "Elige una opción:\n1. Ventas\n2. Otro"


@pytest.mark.parametrize(
    ("answer", "queue"), [("1", "ventas"), (" 2. ", "general"), ("2️⃣", "general"), ("1 ventas", "ventas")]
)
def test_a_numbered_answer_picks_its_option(manifest_data: dict[str, Any], answer: str, queue: str) -> None:
    menu = _manifest(manifest_data).triage_menu
    assert menu is not None
    option = match_triage_answer(menu, answer)
    assert option is not None and option.queue == queue


def test_a_label_or_keyword_picks_its_option_ignoring_accents_and_case(manifest_data: dict[str, Any]) -> None:
    manifest_data["triage_menu"]["options"][1]["keywords"] = ["información"]
    menu = _manifest(manifest_data).triage_menu
    assert menu is not None
    assert [match_triage_answer(menu, a) for a in ("VENTAS", "informacion")] == list(menu.options)


@pytest.mark.parametrize("answer", ["3", "0", "no sé", ""])
def test_an_answer_outside_the_menu_picks_nothing(manifest_data: dict[str, Any], answer: str) -> None:
    menu = _manifest(manifest_data).triage_menu
    assert menu is not None
    assert match_triage_answer(menu, answer) is None
