"""The raw-MIME webhook's token check and the absent GET handshake."""

from __future__ import annotations

from uuid import UUID

import pytest

from centralita.directory import StaticDirectory
from channels.email.adapter import EmailAdapter
from core.channel import AdapterContext, ChannelAccount, WebhookRequest
from core.errors import InvalidSignature, NotFound
from core.ids import ChannelAccountId, WorkspaceId

ACCOUNT = ChannelAccount(
    id=ChannelAccountId(UUID("0198f000-0000-7000-8000-0000000000a1")),
    workspace_id=WorkspaceId(UUID("0198f000-0000-7000-8000-0000000000a2")),
    campaign_id=None,
    channel="email",
    address="admisiones@universidad.example",
    verify_token="tok-buzon-admisiones",
)


DIRECTORY = StaticDirectory([ACCOUNT])
NO_ACCOUNTS = StaticDirectory()


def request(headers: dict[str, str], method: str = "POST") -> WebhookRequest:
    return WebhookRequest(method=method, path="/webhooks/email", headers=headers, query={}, body=b"From: a")


def adapter(token: str | None = None) -> EmailAdapter:
    return EmailAdapter(AdapterContext(extra={"webhook_token": token} if token else {}))


def test_a_bearer_token_of_a_configured_mailbox_verifies() -> None:
    adapter().verify(request({"authorization": "Bearer tok-buzon-admisiones"}), DIRECTORY)


def test_the_x_centralita_token_header_verifies() -> None:
    adapter().verify(request({"x-centralita-token": "tok-buzon-admisiones"}), DIRECTORY)


def test_the_shared_webhook_token_from_the_context_verifies_without_accounts() -> None:
    adapter("tok-compartido").verify(request({"authorization": "Bearer tok-compartido"}), NO_ACCOUNTS)


def test_a_missing_token_is_an_invalid_signature() -> None:
    with pytest.raises(InvalidSignature):
        adapter("tok-compartido").verify(request({}), DIRECTORY)


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer tok-buzon-admisionez"},
        {"authorization": "Basic tok-buzon-admisiones"},
        {"x-centralita-token": "tok-buzon"},
        {"authorization": "Bearer "},
    ],
)
def test_a_wrong_token_is_an_invalid_signature(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidSignature):
        adapter("tok-compartido").verify(request(headers), DIRECTORY)


def test_with_no_token_configured_nothing_verifies() -> None:
    with pytest.raises(InvalidSignature):
        adapter().verify(request({"authorization": "Bearer cualquiera"}), NO_ACCOUNTS)


def test_email_has_no_get_handshake() -> None:
    with pytest.raises(NotFound):
        adapter().handshake(request({}, method="GET"), DIRECTORY)
