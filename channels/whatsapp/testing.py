"""What the shared conformance suite and the unit tests need to exercise WhatsApp for real.

``conformance_kit()`` (see ``core.conformance``): two apps (two clients of a BPO), three business
numbers, every fixture under ``fixtures/`` with the events it must yield, malformed bodies, and
outbound sends against the loopback Graph API (``channels.meta.peer.GraphPeer``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from channels.meta.kit import MetaKit, SampleSpec, common_malformed_bodies, common_unshaped_bodies
from channels.meta.peer import (
    GraphPeer,
    expired_token,
    graph_error_body,
    rate_limited,
    server_error,
    template_missing,
    undeliverable,
    window_closed,
)
from core.channel import ChannelAccount
from core.conformance import ErrorCase
from core.errors import PermanentChannelError, TransientChannelError
from core.events import Address, AddressKind, Attachment, AttachmentKind, OutboundMessage, Template
from core.ids import CampaignId, ChannelAccountId, MessageId, WorkspaceId

__all__ = [
    "APP_SECRET",
    "FIXTURES",
    "OTHER_APP_SECRET",
    "GraphPeer",
    "accounts",
    "conformance_kit",
    "contact",
    "fixture",
    "text_message",
    "text_webhook_body",
    "unshaped_bodies",
    "webhook_body",
]

FIXTURES = Path(__file__).parent / "fixtures"
APP_SECRET = "wa-app-secret-posgrados"
OTHER_APP_SECRET = "wa-app-secret-cobranza"
VERIFY_TOKEN = "wa-verify-posgrados"
WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "106540352242922"
SECOND_PHONE_NUMBER_ID = "106540352242955"
OTHER_APP_PHONE_NUMBER_ID = "106540352243000"
CUSTOMER = "+5215512345678"
BSUID = "MX.1410018717833190"

_WORKSPACE = WorkspaceId(uuid.UUID("0190a000-0000-7000-8000-000000000001"))
_OTHER_WORKSPACE = WorkspaceId(uuid.UUID("0190a000-0000-7000-8000-000000000002"))


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def accounts() -> list[ChannelAccount]:
    """Two numbers on the first app (one client), one on a second app (another client)."""

    def account(
        n: int, address: str, workspace: WorkspaceId, secret: str, app_id: str, token: str
    ) -> ChannelAccount:
        return ChannelAccount(
            id=ChannelAccountId(uuid.UUID(f"0190a000-0000-7000-8000-0000000001{n:02d}")),
            workspace_id=workspace,
            campaign_id=CampaignId(uuid.UUID(f"0190a000-0000-7000-8000-0000000002{n:02d}")),
            channel="whatsapp",
            address=address,
            app_id=app_id,
            app_secret=secret,
            access_token=token,
            verify_token=VERIFY_TOKEN if n == 1 else f"wa-verify-{n}",
            settings={"business_account_id": WABA_ID},
        )

    return [
        account(1, PHONE_NUMBER_ID, _WORKSPACE, APP_SECRET, "1039220051234567", "EAAwa-token-posgrados"),
        account(
            2, SECOND_PHONE_NUMBER_ID, _WORKSPACE, APP_SECRET, "1039220051234567", "EAAwa-token-posgrados-2"
        ),
        account(
            3,
            OTHER_APP_PHONE_NUMBER_ID,
            _OTHER_WORKSPACE,
            OTHER_APP_SECRET,
            "2049330067654321",
            "EAAwa-cobranza",
        ),
    ]


_TS = "2025-02-12T00:43:44Z"
_CTWA_CLID = "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-ZABi8ASmeKtA1ZMmx"
_REENGAGEMENT = (
    "Message failed to send because more than 24 hours have passed "
    "since the customer last replied to this number."
)
_WAMID = "wamid.HBgNNTIxNTUxMjM0NTY3OBUCABIYFDNB"


def webhook_body(
    phone_number_id: str,
    *,
    messages: Sequence[dict[str, Any]] | None = None,
    statuses: Sequence[dict[str, Any]] | None = None,
    contacts: Sequence[dict[str, Any]] | None = None,
    display_phone_number: str = "15550783881",
    waba_id: str = "102290129349000",
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """One WhatsApp Cloud API webhook body (one entry, one ``messages`` change) as Meta sends it.

    A list left out (``None``) is absent from the body; an empty one is sent empty.  ``extra``:
    further fields of the change's ``value`` (a field Meta added later, say).
    """
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id},
    }
    for key, items in (("contacts", contacts), ("messages", messages), ("statuses", statuses)):
        if items is not None:
            value[key] = list(items)
    value.update(extra or {})
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body).encode()


def contact(wa_id: str, name: str = "Ana Pérez") -> dict[str, Any]:
    """The profile a webhook's ``contacts`` carries for a sender."""
    return {"profile": {"name": name}, "wa_id": wa_id}


def text_message(wa_id: str, wamid: str, text: str, *, timestamp: int | str = 1763720000) -> dict[str, Any]:
    """One customer's text message as it stands in a webhook's ``messages``."""
    return {"from": wa_id, "id": wamid, "timestamp": str(timestamp), "type": "text", "text": {"body": text}}


def text_webhook_body(
    phone_number_id: str,
    wa_id: str,
    wamid: str,
    text: str,
    *,
    name: str = "Ana Pérez",
    timestamp: int | str = 1763720000,
    display_phone_number: str = "15550783881",
    waba_id: str = WABA_ID,
) -> bytes:
    """The webhook body of one text message from ``wa_id`` (named ``name``) to ``phone_number_id``."""
    return webhook_body(
        phone_number_id,
        messages=[text_message(wa_id, wamid, text, timestamp=timestamp)],
        contacts=[contact(wa_id, name)],
        display_phone_number=display_phone_number,
        waba_id=waba_id,
    )


def _message(n: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "channel": "whatsapp",
        "kind": "message",
        "external_id": f"{_WAMID}{n}",
        "sender": CUSTOMER,
        "business_address": PHONE_NUMBER_ID,
        "timestamp": _TS,
    }
    return {**base, **fields}


SAMPLES: tuple[SampleSpec, ...] = (
    SampleSpec(
        "text",
        "text",
        [
            _message(
                "QTE0MDAwMDAwMDAwMDAxAA==",
                text="Hola, quiero información del posgrado",
                sender_name="María López",
            )
        ],
    ),
    SampleSpec(
        "image",
        "image",
        [
            _message(
                "QTE0MDAwMDAwMDAwMDAyAA==",
                text="Mi comprobante",
                attachments=[{"kind": "image", "mime_type": "image/jpeg", "media_id": "1479537139650973"}],
            )
        ],
    ),
    SampleSpec(
        "voice_note",
        "voice",
        [
            _message(
                "QTE0MDAwMDAwMDAwMDAzAA==",
                text=None,
                attachments=[
                    {"kind": "voice", "mime_type": "audio/ogg; codecs=opus", "media_id": "2003904330060587"}
                ],
            )
        ],
    ),
    SampleSpec(
        "audio",
        "audio",
        [
            _message(
                "QTE0MDAwMDAwMDAwMDA0AA==",
                attachments=[{"kind": "audio", "mime_type": "audio/mpeg", "media_id": "2003904330060588"}],
            )
        ],
    ),
    SampleSpec(
        "video",
        "video",
        [
            _message(
                "QTE0MDAwMDAwMDAwMDA1AA==",
                attachments=[{"kind": "video", "mime_type": "video/mp4", "media_id": "1166846181421424"}],
            )
        ],
    ),
    SampleSpec(
        "document",
        "document",
        [
            _message(
                "QTE0MDAwMDAwMDAwMDA2AA==",
                text="Acta de nacimiento",
                attachments=[
                    {
                        "kind": "document",
                        "mime_type": "application/pdf",
                        "filename": "acta.pdf",
                        "media_id": "1003383421387256",
                    }
                ],
            )
        ],
    ),
    SampleSpec(
        "sticker",
        "sticker",
        [
            _message(
                "QTE0MDAwMDAwMDAwMDA3AA==",
                attachments=[{"kind": "sticker", "mime_type": "image/webp", "media_id": "1228310628215458"}],
            )
        ],
    ),
    SampleSpec(
        "location",
        "location",
        [_message("QTE0MDAwMDAwMDAwMDA4AA==", text=None, attachments=[{"kind": "location"}])],
    ),
    SampleSpec(
        "shared_contacts",
        "contacts",
        [_message("QTE0MDAwMDAwMDAwMDA5AA==", attachments=[{"kind": "contacts"}])],
    ),
    SampleSpec(
        "button_reply",
        "interactive_button_reply",
        [
            {
                **_message("QTE0MDAwMDAwMDAwMDEwAA==", kind="postback"),
                "payload": "inscripcion_si",
                "text": "Sí, inscribirme",
                "reply_to": "wamid.HBgNNTIxNTUxMjM0NTY3OBUCABEYEjlBQkMwMDAwMDAwMDAwMDAwMQA=",
            }
        ],
    ),
    SampleSpec(
        "list_reply",
        "interactive_list_reply",
        [
            {
                **_message("QTE0MDAwMDAwMDAwMDExAA==", kind="postback"),
                "payload": "programa_mba",
                "text": "MBA ejecutivo",
            }
        ],
    ),
    SampleSpec(
        "template_quick_reply",
        "template_button",
        [
            {
                **_message("QTE0MDAwMDAwMDAwMDEyAA==", kind="postback"),
                "payload": "RECORDATORIO_CONFIRMAR",
                "text": "Confirmar cita",
            }
        ],
    ),
    SampleSpec(
        "reaction",
        "reaction",
        [
            {
                **_message("QTE0MDAwMDAwMDAwMDEzAA==", kind="reaction"),
                "emoji": "👍",
                "reply_to": "wamid.HBgNNTIxNTUxMjM0NTY3OBUCABEYEjlBQkMwMDAwMDAwMDAwMDAwNAA=",
            }
        ],
    ),
    SampleSpec(
        "reaction_removed",
        "reaction_removed",
        [{**_message("QTE0MDAwMDAwMDAwMDE0AA==", kind="reaction"), "emoji": None}],
    ),
    SampleSpec(
        "reply",
        "reply",
        [
            _message(
                "QTE0MDAwMDAwMDAwMDE1AA==",
                reply_to="wamid.HBgNNTIxNTUxMjM0NTY3OBUCABEYEjlBQkMwMDAwMDAwMDAwMDAwNQA=",
            )
        ],
    ),
    SampleSpec(
        "forwarded",
        "forwarded",
        [_message("QTE0MDAwMDAwMDAwMDE2AA==", text="Mira esta promoción", reply_to=None)],
    ),
    SampleSpec(
        "click_to_whatsapp_referral",
        "referral",
        [
            _message(
                "QTE0MDAwMDAwMDAwMDE3AA==",
                referral={
                    "source": "ad",
                    "source_id": "120226305854810726",
                    "source_url": "https://fb.me/3cr4Wqqkm",
                    "headline": "Posgrados 2027",
                    "body": "Inscripciones abiertas 2027",
                    "ad_id": "120226305854810726",
                    "click_id": _CTWA_CLID,
                },
            )
        ],
    ),
    SampleSpec(
        "unsupported",
        "unsupported",
        [
            _message(
                "QTE0MDAwMDAwMDAwMDE4AA==",
                text=None,
                errors=[
                    {
                        "code": "131051",
                        "title": "Message type unknown",
                        "message": "Message type unknown",
                        "details": "Message type is currently not supported.",
                    }
                ],
            )
        ],
    ),
    SampleSpec(
        "customer_changed_number",
        "system_changed_number",
        [
            {
                **_message("QTE0MDAwMDAwMDAwMDE5AA==", kind="system"),
                "notice": "customer_changed_number",
                "new_address": "+5215599998888",
            }
        ],
    ),
    SampleSpec(
        "username_user_with_bsuid_only",
        "bsuid_only",
        [_message("QTE0MDAwMDAwMDAwMDIwAA==", sender=BSUID, sender_name="María López")],
    ),
    SampleSpec("phone_and_bsuid", "bsuid_and_phone", [_message("QTE0MDAwMDAwMDAwMDIxAA==", sender=CUSTOMER)]),
    SampleSpec(
        "statuses_sent_delivered_read",
        "statuses",
        [
            {
                "kind": "status",
                "status": s,
                "external_id": "wamid.HBgNNTIxNTUxMjM0NTY3OBUCABEYEjAxMjM0NTY3ODlBQkNERUYwMQA=",
                "sender": CUSTOMER,
                "business_address": PHONE_NUMBER_ID,
            }
            for s in ("sent", "delivered", "read")
        ],
    ),
    SampleSpec(
        "status_failed",
        "status_failed",
        [
            {
                "kind": "status",
                "status": "failed",
                "errors": [
                    {
                        "code": "131047",
                        "title": "Re-engagement message",
                        "message": "Re-engagement message",
                        "details": _REENGAGEMENT,
                    }
                ],
            }
        ],
    ),
    SampleSpec(
        "batch_of_entries_and_numbers",
        "batch",
        [
            _message("QTE0MDAwMDAwMDAwMDIyAA==", text="Primer mensaje"),
            _message("QTE0MDAwMDAwMDAwMDIzAA==", text="Segundo mensaje"),
            {"kind": "status", "status": "delivered", "business_address": PHONE_NUMBER_ID},
            {
                "kind": "message",
                "sender": "+5491122334455",
                "business_address": SECOND_PHONE_NUMBER_ID,
                "text": "Hola desde Buenos Aires",
                "sender_name": "Juan Pérez",
            },
        ],
    ),
    SampleSpec(
        "template_status_update_is_ignored",
        "template_status_update",
        [{"kind": "ignored", "field": "message_template_status_update", "sender": None, "text": None}],
    ),
    SampleSpec(
        "account_update_is_ignored", "account_update", [{"kind": "ignored", "field": "account_update"}]
    ),
    SampleSpec(
        "webhook_errors_are_ignored",
        "value_errors",
        [{"kind": "ignored", "field": "messages", "business_address": PHONE_NUMBER_ID}],
    ),
    SampleSpec(
        "second_app_number",
        "second_app_text",
        [
            {
                "kind": "message",
                "business_address": OTHER_APP_PHONE_NUMBER_ID,
                "sender": "+5215500001111",
                "text": "Hola cobranza",
            }
        ],
        app_secret=OTHER_APP_SECRET,
    ),
)


def _malformed() -> list[bytes]:
    """Signed bodies that cannot be read: refused (400)."""
    return [
        *common_malformed_bodies("whatsapp_business_account"),
        fixture("text")[: len(fixture("text")) // 2],
    ]


def unshaped_bodies() -> list[bytes]:
    """Signed, readable bodies the parser does not understand (a part missing, a value of the wrong
    type): each is accepted, the unknown part an ``Unsupported`` or ``Ignored`` event, never an error."""
    text = json.loads(fixture("text"))
    bodies = common_unshaped_bodies("whatsapp_business_account")

    def variant(mutate: Any) -> bytes:
        payload = json.loads(json.dumps(text))
        mutate(payload)
        return json.dumps(payload).encode()

    def value(p: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = p["entry"][0]["changes"][0]["value"]
        return result

    def message(p: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = value(p)["messages"][0]
        return result

    bodies += [
        variant(lambda p: p["entry"][0].pop("changes")),
        variant(lambda p: p["entry"][0]["changes"][0].pop("field")),
        variant(lambda p: value(p).pop("metadata")),
        variant(lambda p: message(p).pop("id")),
        variant(lambda p: message(p).update(timestamp="yesterday")),
        variant(lambda p: message(p).update(timestamp=-5)),
        variant(lambda p: message(p).update(timestamp="99999999999999999999")),
        variant(lambda p: message(p).update(text={"body": 12})),
        variant(lambda p: message(p).pop("text")),
        variant(lambda p: message(p).update(type=None)),
        variant(lambda p: message(p).pop("from")),
        variant(lambda p: message(p).update(**{"from": "+52 55 1234"})),
        variant(lambda p: value(p).update(messages={"id": "x"})),
        variant(lambda p: value(p).update(contacts=[{"profile": "María"}])),
        variant(lambda p: value(p).update(statuses=[{"id": "wamid.X", "status": "sent"}])),
        variant(lambda p: message(p).update(type="image", image={"caption": "sin id"})),
        variant(lambda p: message(p).update(type="location", location={"latitude": "19.4"})),
        variant(lambda p: message(p).update(type="interactive", interactive={"type": "button_reply"})),
        variant(lambda p: message(p).update(type="reaction", reaction={"emoji": "👍"})),
        variant(lambda p: message(p).update(errors=[{"title": "no code"}])),
    ]
    return bodies


def _outbound(account: ChannelAccount) -> list[OutboundMessage]:
    def message(n: int, **fields: Any) -> OutboundMessage:
        return OutboundMessage(
            message_id=MessageId(uuid.UUID(f"0190a000-0000-7000-8000-0000000003{n:02d}")),
            workspace_id=account.workspace_id,
            channel="whatsapp",
            business_address=account.address,
            **{"recipient": Address(kind=AddressKind.PHONE, value=CUSTOMER), **fields},
        )

    return [
        message(1, text="¡Hola! Con gusto te ayudamos."),
        message(2, text="Sí, la sesión es a las 10:00.", reply_to=f"{_WAMID}QTE0MDAwMDAwMDAwMDE1AA=="),
        message(
            3,
            text="Aquí está el temario",
            attachments=(
                Attachment(kind=AttachmentKind.DOCUMENT, media_id="1003383421387299", filename="temario.pdf"),
            ),
        ),
        message(
            4,
            attachments=(
                Attachment(
                    kind=AttachmentKind.IMAGE,
                    url="https://cdn.example.com/campus.jpg",
                    caption="Nuestro campus",
                ),
            ),
        ),
        message(5, attachments=(Attachment(kind=AttachmentKind.VOICE, media_id="2003904330069999"),)),
        message(
            6,
            template=Template(
                name="bienvenida_posgrado",
                language="es_MX",
                body_parameters=("María", "MBA"),
                header_parameters=("Posgrados 2027",),
                button_parameters=("CONFIRMAR",),
            ),
        ),
        message(
            7,
            attachments=(
                Attachment(
                    kind=AttachmentKind.LOCATION,
                    data={"latitude": 19.4326, "longitude": -99.1332, "name": "Campus Reforma"},
                ),
            ),
        ),
        message(
            8,
            text="Hola por tu id de usuario",
            recipient=Address(kind=AddressKind.WHATSAPP_BSUID, value=BSUID, scope=WABA_ID),
        ),
    ]


def _check(message: OutboundMessage, account: ChannelAccount, received: Sequence[dict[str, Any]]) -> None:
    if not received:
        raise AssertionError("the peer received nothing")
    request = received[-1]
    body = request["json"]
    if request["node_id"] != account.address:
        raise AssertionError(
            f"sent to node {request['node_id']!r}, expected the phone_number_id {account.address!r}"
        )
    if request["authorization"] != f"Bearer {account.access_token}":
        raise AssertionError("the access token was not sent as a bearer token")
    if request["status"] != 200:
        raise AssertionError(f"the peer refused the request: {request['status']}")
    if body.get("messaging_product") != "whatsapp" or body.get("recipient_type") != "individual":
        raise AssertionError(f"not a Cloud API body: {body}")
    if message.recipient.kind is AddressKind.PHONE and body.get("to") != message.recipient.value.lstrip("+"):
        raise AssertionError(f"'to' is {body.get('to')!r}, expected the digits of the recipient")
    if (
        message.recipient.kind is AddressKind.WHATSAPP_BSUID
        and body.get("recipient") != message.recipient.value
    ):
        raise AssertionError("a BSUID recipient must go in 'recipient'")
    if message.template is not None:
        template = body.get("template") or {}
        if body.get("type") != "template" or template.get("name") != message.template.name:
            raise AssertionError(f"not the template: {body}")
        if template.get("language") != {"code": message.template.language}:
            raise AssertionError(f"wrong template language: {template.get('language')}")
    elif message.attachments:
        if body.get("type") not in {"image", "audio", "video", "document", "sticker", "location"}:
            raise AssertionError(f"not a media message: {body}")
    elif body.get("type") != "text" or body.get("text") != {"body": message.text, "preview_url": False}:
        raise AssertionError(f"not the text: {body}")
    if message.reply_to and body.get("context") != {"message_id": message.reply_to}:
        raise AssertionError("a reply must carry context.message_id")


_ERRORS: tuple[ErrorCase, ...] = (
    ErrorCase("rate_limited_130429", rate_limited(times=10), TransientChannelError),
    ErrorCase("server_error_500", server_error(times=10), TransientChannelError),
    ErrorCase(
        "service_unavailable_131016",
        {
            "status": 503,
            "times": 10,
            "body": graph_error_body(131016, "(#131016) Service unavailable", whatsapp=True),
        },
        TransientChannelError,
    ),
    ErrorCase("window_closed_131047", window_closed(), PermanentChannelError),
    ErrorCase("undeliverable_131026", undeliverable(), PermanentChannelError),
    ErrorCase("template_missing_132001", template_missing(), PermanentChannelError),
    ErrorCase("expired_token_190", expired_token(), PermanentChannelError),
    ErrorCase(
        "invalid_parameter_100",
        {"status": 400, "body": graph_error_body(100, "(#100) Invalid parameter", whatsapp=True)},
        PermanentChannelError,
    ),
)


def conformance_kit() -> MetaKit:
    return MetaKit(
        channel="whatsapp",
        fixtures_dir=FIXTURES,
        account_list=accounts(),
        sample_specs=SAMPLES,
        bad_bodies=_malformed(),
        outbound_factory=_outbound,
        failure_cases=_ERRORS,
        checker=_check,
        default_secret=APP_SECRET,
    )
