"""What a customer hears before an agent does: the welcome reply, the menu, and its answers."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.campaign import Manifest
from core.campaign.greeting import Opening, opening, triage_menu_for, triage_step
from tests.unit.campaign.conftest import BASE


def manifest(**changes: Any) -> Manifest:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return Manifest.model_validate(data)


def test_a_new_whatsapp_conversation_gets_the_welcome_and_the_menu_in_one_text() -> None:
    assert opening(manifest(), "principal") == Opening(
        reply="¡Hola! En un momento te atendemos.\n\nElige una opción:\n1. Ventas\n2. Otro", triage=True
    )


def test_instagram_gets_the_hub_invitation_and_no_menu() -> None:
    assert opening(manifest(), "instagram") == Opening(
        reply="Sigamos por WhatsApp: https://wa.me/525541702030?text=Hola%2C%20vengo%20de%20Instagram",
        triage=False,
    )


def test_the_welcome_is_sent_in_the_customers_language_when_translated() -> None:
    replies = copy.deepcopy(BASE["auto_replies"])
    replies["bienvenida"]["translations"] = {"en": "Hi! Someone will be with you shortly."}
    found = opening(manifest(auto_replies=replies), "principal", "en")
    assert found.reply is not None and found.reply.startswith("Hi! Someone will be with you shortly.\n\n")


def test_the_menu_asks_only_on_the_accounts_it_names() -> None:
    menu = {**BASE["triage_menu"], "accounts": ["otra"]}
    channels = copy.deepcopy(BASE["channels"])
    channels["whatsapp"].append(
        {**channels["whatsapp"][0], "name": "otra", "phone_number_id": "106540352242923"}
    )
    found = manifest(triage_menu=menu, channels=channels)
    assert triage_menu_for(found, "principal") is None and triage_menu_for(found, "otra") is not None
    assert opening(found, "principal") == Opening(reply="¡Hola! En un momento te atendemos.", triage=False)


def test_no_menu_and_no_welcome_means_nothing_is_sent_and_the_router_takes_it() -> None:
    channels = copy.deepcopy(BASE["channels"])
    channels["whatsapp"][0].pop("welcome_reply")
    channels["whatsapp"][0]["default_queue"] = "ventas"
    assert opening(manifest(channels=channels, triage_menu=None), "principal") == Opening(None, False)


def test_an_account_the_manifest_does_not_declare_gets_nothing() -> None:
    assert opening(manifest(), "retirada") == Opening(None, False)
    assert opening(manifest(), None) == Opening(None, False)


@pytest.mark.parametrize(
    ("answer", "queue"),
    [("1", "ventas"), ("2.", "general"), ("2️⃣", "general"), ("ventas", "ventas"), ("  OTRO ", "general")],
)
def test_an_answer_picks_an_option_by_number_or_label(answer: str, queue: str) -> None:
    menu = manifest().triage_menu
    assert menu is not None
    step = triage_step(menu, answer, attempts=0)
    assert (step.queue, step.reply, step.attempts) == (queue, None, 0)


def test_an_invalid_answer_shows_the_options_again_until_the_default_queue() -> None:
    menu = manifest().triage_menu
    assert menu is not None and menu.max_attempts == 2
    first = triage_step(menu, "quiero info", attempts=0)
    assert (first.queue, first.attempts) == (None, 1)
    assert first.reply == "Responde 1 o 2.\n1. Ventas\n2. Otro"
    second = triage_step(menu, "7", attempts=first.attempts)
    assert (second.queue, second.option, second.reply, second.attempts) == ("general", None, None, 2)


def test_a_message_without_text_counts_as_an_invalid_answer() -> None:
    menu = manifest().triage_menu
    assert menu is not None
    assert triage_step(menu, None, attempts=0).attempts == 1


@given(answer=st.text(max_size=40), attempts=st.integers(min_value=0, max_value=4))
def test_every_answer_either_places_the_conversation_or_says_why_not(answer: str, attempts: int) -> None:
    menu = manifest().triage_menu
    assert menu is not None
    step = triage_step(menu, answer, attempts)
    assert (step.queue is None) == (step.reply is not None)
    assert step.queue is None or step.queue in {o.queue for o in menu.options} | {menu.default_queue}
    assert step.attempts in (attempts, attempts + 1)
