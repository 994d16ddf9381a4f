"""Reply windows decided from capabilities alone: 24 h free-form, a tagged extension, templates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.channel import Capabilities, ReplyWindow
from core.errors import InvalidInput, ReplyWindowClosed
from core.events import AddressKind, Template
from core.reply_window import (
    ApprovedTemplate,
    decide_reply,
    templates_from_manifest,
    window_notices_may_be_due,
    window_state,
)

NOW = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
TEMPLATED = Capabilities(
    address_kind=AddressKind.PHONE,
    reply_window=ReplyWindow(free_form_hours=24),
    templates=True,
    display_name="WhatsApp",
)
TAGGED = Capabilities(
    address_kind=AddressKind.INSTAGRAM_ID,
    reply_window=ReplyWindow(free_form_hours=24, extended_hours=24 * 7, extended_tag="HUMAN_AGENT"),
    display_name="Instagram",
)
UNWINDOWED = Capabilities(address_kind=AddressKind.EMAIL, display_name="Email")
APPROVED = [
    ApprovedTemplate("seguimiento_prospecto", "es_MX", ("nombre", "programa"), purpose="seguimiento-lead"),
    ApprovedTemplate("recordatorio_entrevista", "es_MX", ("nombre", "fecha", "hora")),
]


def _ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def test_the_window_is_open_within_24_hours_of_the_customers_last_message() -> None:
    state = window_state(TEMPLATED, _ago(23.5), NOW)
    assert state.open and state.closes_at == _ago(23.5) + timedelta(hours=24)
    assert state.requires_tag is None and state.templates_allowed


def test_the_window_closes_exactly_24_hours_after_the_last_message() -> None:
    assert not window_state(TEMPLATED, _ago(24), NOW).open


def test_a_customer_who_never_wrote_has_a_closed_window() -> None:
    state = window_state(TEMPLATED, None, NOW)
    assert not state.open and state.closes_at is None


def test_a_channel_without_a_window_is_always_open() -> None:
    state = window_state(UNWINDOWED, None, NOW)
    assert state.open and state.always_open and state.closes_at is None


def test_free_form_text_inside_the_window_is_allowed_without_a_tag() -> None:
    decision = decide_reply(TEMPLATED, window_state(TEMPLATED, _ago(1), NOW), template=None, human=True)
    assert decision.tag is None


def test_free_form_text_outside_the_window_is_refused_with_the_approved_templates() -> None:
    state = window_state(TEMPLATED, _ago(30), NOW)
    with pytest.raises(ReplyWindowClosed) as caught:
        decide_reply(TEMPLATED, state, template=None, human=True, approved_templates=APPROVED)
    error = caught.value
    assert [t["name"] for t in error.details["templates"]] == [
        "seguimiento_prospecto",
        "recordatorio_entrevista",
    ]
    assert "plantilla" in error.message and "template" in error.message
    assert error.http_status == 422 and error.code == "reply_window_closed"


def test_a_template_may_open_a_closed_window() -> None:
    state = window_state(TEMPLATED, _ago(300), NOW)
    template = Template(name="seguimiento_prospecto", language="es_MX", body_parameters=("Ana", "MBA"))
    assert (
        decide_reply(TEMPLATED, state, template=template, human=True, approved_templates=APPROVED).tag is None
    )


def test_a_template_that_the_campaign_did_not_approve_is_refused() -> None:
    state = window_state(TEMPLATED, _ago(300), NOW)
    with pytest.raises(InvalidInput) as caught:
        decide_reply(
            TEMPLATED,
            state,
            template=Template(name="promo", language="es_MX"),
            human=True,
            approved_templates=APPROVED,
        )
    assert caught.value.field == "template.name"


def test_a_template_with_the_wrong_number_of_parameters_is_refused() -> None:
    state = window_state(TEMPLATED, _ago(1), NOW)
    template = Template(name="seguimiento_prospecto", language="es_MX", body_parameters=("Ana",))
    with pytest.raises(InvalidInput) as caught:
        decide_reply(TEMPLATED, state, template=template, human=True, approved_templates=APPROVED)
    assert caught.value.field == "template.parameters"


def test_a_template_on_a_channel_without_templates_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as caught:
        decide_reply(TAGGED, window_state(TAGGED, _ago(1), NOW), template=Template(name="x"), human=True)
    assert caught.value.field == "template"


def test_a_human_agent_may_reply_in_the_extended_window_with_its_tag() -> None:
    state = window_state(TAGGED, _ago(48), NOW)
    assert not state.open and state.requires_tag == "HUMAN_AGENT"
    assert decide_reply(TAGGED, state, template=None, human=True).tag == "HUMAN_AGENT"


def test_an_automated_reply_may_not_use_the_human_agent_extension() -> None:
    with pytest.raises(ReplyWindowClosed) as caught:
        decide_reply(TAGGED, window_state(TAGGED, _ago(48), NOW), template=None, human=False)
    assert caught.value.details["templates"] == []


def test_after_the_extension_nothing_free_form_goes_out() -> None:
    state = window_state(TAGGED, _ago(24 * 7 + 1), NOW)
    assert state.requires_tag is None and state.extended_until == _ago(24 * 7 + 1) + timedelta(days=7)
    with pytest.raises(ReplyWindowClosed):
        decide_reply(TAGGED, state, template=None, human=True)


def test_templates_are_read_from_the_manifest_and_filtered_by_account() -> None:
    manifest = {
        "templates": [
            {"name": "a", "language": "es_MX", "purpose": "p", "category": "utility", "parameters": ["n"]},
            {
                "name": "b",
                "language": "es_MX",
                "purpose": "p",
                "category": "utility",
                "whatsapp_account": "otra",
            },
            {"language": "es"},
        ]
    }
    assert [t.name for t in templates_from_manifest(manifest, "principal")] == ["a"]
    assert [t.name for t in templates_from_manifest(manifest, "otra")] == ["a", "b"]
    assert templates_from_manifest({}, None) == []


def test_the_router_hears_of_a_follow_up_only_once_the_previous_windows_notices_may_be_due() -> None:
    day = ReplyWindow(free_form_hours=24)
    hour = 3600.0
    # warned an hour before the close: at 23 h, less five minutes for clocks and messages in flight
    assert not window_notices_may_be_due(day, NOW - timedelta(hours=2), NOW, hour)
    assert not window_notices_may_be_due(day, NOW - timedelta(hours=22, minutes=54), NOW, hour)
    assert window_notices_may_be_due(day, NOW - timedelta(hours=22, minutes=56), NOW, hour)
    assert window_notices_may_be_due(day, NOW - timedelta(hours=30), NOW, hour)
    # no warning: only the notice at the close
    assert not window_notices_may_be_due(day, NOW - timedelta(hours=23), NOW, 0)
    assert window_notices_may_be_due(day, NOW - timedelta(hours=23, minutes=56), NOW, 0)
    # no window (email) has no notices; a conversation with no customer message yet is told
    assert not window_notices_may_be_due(None, NOW - timedelta(days=3), NOW, hour)
    assert window_notices_may_be_due(day, None, NOW, hour)
