"""WhatsApp webhooks are authentic only when signed by the app that owns the numbers they name."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from centralita.directory import StaticDirectory
from channels.meta.signature import sign_body
from channels.whatsapp.adapter import WhatsAppAdapter
from channels.whatsapp.testing import APP_SECRET, OTHER_APP_SECRET, accounts, fixture
from core.channel import AdapterContext, WebhookRequest
from core.errors import Forbidden, InvalidInput, InvalidSignature

ADAPTER = WhatsAppAdapter(AdapterContext())
DIRECTORY = StaticDirectory(accounts())


def request(body: bytes, signature: str | None) -> WebhookRequest:
    headers = {} if signature is None else {"x-hub-signature-256": signature}
    return WebhookRequest(method="POST", path="/webhooks/whatsapp", headers=headers, query={}, body=body)


def test_a_body_signed_with_the_app_secret_verifies() -> None:
    body = fixture("text")
    ADAPTER.verify(request(body, sign_body(body, APP_SECRET)), DIRECTORY)


def test_a_body_signed_by_a_second_app_verifies_for_that_apps_number() -> None:
    body = fixture("second_app_text")
    ADAPTER.verify(request(body, sign_body(body, OTHER_APP_SECRET)), DIRECTORY)


def test_a_body_naming_another_apps_number_is_rejected_even_when_correctly_signed() -> None:
    body = fixture("second_app_text")
    with pytest.raises(InvalidSignature, match="does not belong to the app"):
        ADAPTER.verify(request(body, sign_body(body, APP_SECRET)), DIRECTORY)


def test_a_missing_signature_header_is_rejected_saying_so() -> None:
    with pytest.raises(InvalidSignature, match="missing"):
        ADAPTER.verify(request(fixture("text"), None), DIRECTORY)


@pytest.mark.parametrize(
    "header", ["sha1=abc", "sha256=", "sha256=zz" + "0" * 62, "garbage", "sha256=" + "0" * 63]
)
def test_a_malformed_signature_header_is_rejected_saying_so(header: str) -> None:
    with pytest.raises(InvalidSignature, match="malformed"):
        ADAPTER.verify(request(fixture("text"), header), DIRECTORY)


def test_a_signature_from_an_unknown_secret_is_rejected() -> None:
    body = fixture("text")
    with pytest.raises(InvalidSignature, match="matches no configured"):
        ADAPTER.verify(request(body, sign_body(body, "someone-elses-secret")), DIRECTORY)


def test_the_header_name_is_found_whatever_its_case() -> None:
    body = fixture("text")
    headers = {"X-Hub-Signature-256": sign_body(body, APP_SECRET)}
    ADAPTER.verify(WebhookRequest(method="POST", path="/", headers=headers, query={}, body=body), DIRECTORY)


def test_accounts_without_a_secret_cannot_authenticate_anything() -> None:
    body = fixture("text")
    bare = StaticDirectory([dataclasses.replace(a, app_secret=None) for a in accounts()])
    with pytest.raises(InvalidSignature, match="no app secret"):
        ADAPTER.verify(request(body, sign_body(body, APP_SECRET)), bare)


def test_an_authentic_body_that_is_not_json_verifies_and_is_then_refused_by_parse() -> None:
    body = b"not json"
    ADAPTER.verify(request(body, sign_body(body, APP_SECRET)), DIRECTORY)
    with pytest.raises(InvalidInput):
        ADAPTER.parse(body, received_at=datetime.now(UTC))


def handshake(query: dict[str, str]) -> str:
    return ADAPTER.handshake(
        WebhookRequest(method="GET", path="/", headers={}, query=query, body=b""), DIRECTORY
    )


def test_the_handshake_returns_the_challenge_verbatim_for_a_configured_verify_token() -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": "wa-verify-posgrados",
        "hub.challenge": "1158201444",
    }
    assert handshake(query) == "1158201444"


def test_the_handshake_accepts_the_verify_token_of_any_configured_account() -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": "wa-verify-3", "hub.challenge": "x"}
    assert handshake(query) == "x"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "wa-verify-posgrados", "hub.challenge": "1"},
        {"hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "wa-verify-pósgrados", "hub.challenge": "1"},
    ],
)
def test_the_handshake_is_forbidden_without_subscribe_and_a_known_token(query: dict[str, str]) -> None:
    with pytest.raises(Forbidden):
        handshake(query)
