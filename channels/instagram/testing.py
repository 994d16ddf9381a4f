"""What the shared conformance suite and the unit tests need to exercise Instagram for real.

``conformance_kit()`` (see ``core.conformance``): an Instagram-login app with two professional
accounts and a Facebook-login app with one (sent through its Page), every fixture under
``fixtures/`` with the events it must yield, malformed bodies, and outbound sends against the
loopback Graph API (``channels.meta.peer.GraphPeer``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from channels.instagram.client import messages_path
from channels.meta.kit import MetaKit, SampleSpec, common_malformed_bodies, common_unshaped_bodies
from channels.meta.peer import GraphPeer, expired_token, graph_error_body, instagram_window_closed
from core.channel import ChannelAccount
from core.conformance import ErrorCase
from core.errors import PermanentChannelError, TransientChannelError
from core.events import Address, AddressKind, Attachment, AttachmentKind, OutboundMessage
from core.ids import CampaignId, ChannelAccountId, MessageId, WorkspaceId

__all__ = [
    "APP_SECRET",
    "FACEBOOK_APP_SECRET",
    "FIXTURES",
    "GraphPeer",
    "accounts",
    "conformance_kit",
    "fixture",
    "peer_node",
    "text_event",
    "text_webhook_body",
    "unshaped_bodies",
    "webhook_body",
]

FIXTURES = Path(__file__).parent / "fixtures"
APP_SECRET = "ig-login-app-secret"
FACEBOOK_APP_SECRET = "fb-login-app-secret"
VERIFY_TOKEN = "ig-verify-posgrados"
IG_ACCOUNT = "17841400000000001"
SECOND_IG_ACCOUNT = "17841400000000003"
FACEBOOK_IG_ACCOUNT = "17841400000000002"
PAGE_ID = "105000000000002"
CUSTOMER = "1254459154682919"

_WORKSPACE = WorkspaceId(uuid.UUID("0190a000-0000-7000-8000-000000000011"))


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def accounts() -> list[ChannelAccount]:
    def account(n: int, address: str, secret: str, token: str, settings: dict[str, Any]) -> ChannelAccount:
        return ChannelAccount(
            id=ChannelAccountId(uuid.UUID(f"0190a000-0000-7000-8000-0000000011{n:02d}")),
            workspace_id=_WORKSPACE,
            campaign_id=CampaignId(uuid.UUID(f"0190a000-0000-7000-8000-0000000012{n:02d}")),
            channel="instagram",
            address=address,
            app_id="9870000000000001" if secret == APP_SECRET else "9870000000000002",
            app_secret=secret,
            access_token=token,
            verify_token=VERIFY_TOKEN if n == 1 else f"ig-verify-{n}",
            settings=settings,
        )

    return [
        account(1, IG_ACCOUNT, APP_SECRET, "IGAAtoken-posgrados", {"login": "instagram"}),
        account(2, SECOND_IG_ACCOUNT, APP_SECRET, "IGAAtoken-posgrados-2", {"login": "instagram"}),
        account(
            3,
            FACEBOOK_IG_ACCOUNT,
            FACEBOOK_APP_SECRET,
            "EAApage-token",
            {"login": "facebook", "page_id": PAGE_ID},
        ),
    ]


def peer_node(account: ChannelAccount) -> str:
    """The Graph node an account's sends are posted to (its IG id, or its Page id)."""
    return messages_path(account, "v0").split("/")[2]


def webhook_body(account: str, messaging: Sequence[dict[str, Any]], *, time_ms: int) -> bytes:
    """One Instagram webhook body as Meta sends it: one entry for ``account`` with its items."""
    entry = {"time": time_ms, "id": account, "messaging": list(messaging)}
    return json.dumps({"object": "instagram", "entry": [entry]}).encode()


def text_event(sender: str, account: str, mid: str, text: str, *, timestamp_ms: int) -> dict[str, Any]:
    """One customer's text message as it stands in an entry's ``messaging``."""
    return {
        "sender": {"id": sender},
        "recipient": {"id": account},
        "timestamp": timestamp_ms,
        "message": {"mid": mid, "text": text},
    }


def text_webhook_body(account: str, sender: str, mid: str, text: str, *, timestamp_ms: int) -> bytes:
    """The webhook body of one text message from ``sender`` (an IGSID) to ``account``."""
    return webhook_body(
        account, [text_event(sender, account, mid, text, timestamp_ms=timestamp_ms)], time_ms=timestamp_ms
    )


_MID = (
    "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDAxOj"
    "M0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTk2NjA2NTU2ODk0MjA0MDAwMDAw"
)
_TS = "2025-02-12T00:43:44.123000Z"


def _event(kind: str, n: int | None, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "channel": "instagram",
        "kind": kind,
        "sender": CUSTOMER,
        "business_address": IG_ACCOUNT,
    }
    if n is not None:
        base["external_id"] = f"{_MID}{n:02d}"
    return {**base, **fields}


def _attachment(kind: str, asset: str) -> list[dict[str, Any]]:
    url = f"https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1790000000000000{asset}&signature=abc"
    return [{"kind": kind, "url": url}]


SAMPLES: tuple[SampleSpec, ...] = (
    SampleSpec(
        "text", "text", [_event("message", 1, text="Hola, ¿tienen becas para la maestría?", timestamp=_TS)]
    ),
    SampleSpec("image", "image", [_event("message", 2, text=None, attachments=_attachment("image", "2"))]),
    SampleSpec("video", "video", [_event("message", 3, attachments=_attachment("video", "3"))]),
    SampleSpec("audio", "audio", [_event("message", 4, attachments=_attachment("audio", "4"))]),
    SampleSpec("file", "file", [_event("message", 5, attachments=_attachment("file", "5"))]),
    SampleSpec(
        "share",
        "share",
        [
            _event(
                "message",
                6,
                attachments=[{"kind": "share", "url": "https://www.instagram.com/p/C3xAmPlEpOsT/"}],
            )
        ],
    ),
    SampleSpec(
        "story_reply",
        "story_reply",
        [
            _event(
                "message",
                7,
                text="¡Me encanta! ¿Cuándo empieza?",
                attachments=_attachment("story_reply", "7"),
            )
        ],
    ),
    SampleSpec(
        "story_mention",
        "story_mention",
        [_event("message", 8, attachments=_attachment("story_mention", "8"))],
    ),
    SampleSpec(
        "reaction",
        "reaction",
        [
            _event(
                "reaction",
                None,
                emoji="❤️",
                reply_to=f"{_MID}01",
                external_id=f"{_MID}01#react:{CUSTOMER}:1739321024123",
            )
        ],
    ),
    SampleSpec("unreaction", "unreaction", [_event("reaction", None, emoji=None, reply_to=f"{_MID}01")]),
    SampleSpec(
        "unsend", "unsend", [_event("deleted", None, reply_to=f"{_MID}01", external_id=f"{_MID}01#deleted")]
    ),
    SampleSpec(
        "message_edit",
        "message_edit",
        [
            _event(
                "edited",
                None,
                reply_to=f"{_MID}01",
                external_id=f"{_MID}01#edit:1",
                text="Hola, ¿tienen becas para el doctorado?",
                edit_count=1,
            )
        ],
    ),
    SampleSpec(
        "echo_of_our_own_message",
        "echo",
        [_event("echo", 9, sender=CUSTOMER, text="¡Hola! Con gusto te ayudamos.")],
    ),
    SampleSpec(
        "postback", "postback", [_event("postback", 10, payload="VER_PROGRAMAS", text="Ver programas")]
    ),
    SampleSpec(
        "quick_reply",
        "quick_reply",
        [_event("postback", 11, payload="MODALIDAD_PRESENCIAL", text="Presencial")],
    ),
    SampleSpec("read_receipt", "read", [_event("read", None, reply_to=f"{_MID}09")]),
    SampleSpec("ig_me_referral", "referral_igme", [_event("postback", None, payload="posgrados2027")]),
    SampleSpec(
        "ad_referral",
        "ad_referral",
        [
            _event(
                "message",
                12,
                text="Quiero más información",
                referral={
                    "source": "ADS",
                    "source_id": "120210000000000001",
                    "source_url": "https://scontent.example.net/ad-mba.jpg",
                    "ref": "campania_mba",
                    "headline": "MBA ejecutivo 2027",
                    "ad_id": "120210000000000001",
                },
            )
        ],
    ),
    SampleSpec("reply_to_a_message", "reply", [_event("message", 13, reply_to=f"{_MID}09")]),
    SampleSpec(
        "batch_of_entries",
        "batch",
        [
            _event("message", 14, text="Primer mensaje"),
            _event("message", 15, text="Segundo mensaje"),
            _event("message", 16, sender="6823510943725110", business_address=SECOND_IG_ACCOUNT),
        ],
    ),
    SampleSpec(
        "changes_shape",
        "changes_shape",
        [_event("message", 17, text="Mensaje en la forma changes", timestamp="2025-02-12T00:43:44Z")],
    ),
    SampleSpec(
        "comments_are_ignored", "comments_change", [{"kind": "ignored", "field": "comments", "sender": None}]
    ),
)


def _malformed() -> list[bytes]:
    """Signed bodies that cannot be read: refused (400)."""
    return [*common_malformed_bodies("instagram"), fixture("text")[:-40]]


def unshaped_bodies() -> list[bytes]:
    """Signed, readable bodies the parser does not understand (a part missing, a value of the wrong
    type): each is accepted, the unknown part an ``Unsupported`` or ``Ignored`` event, never an error."""
    text = json.loads(fixture("text"))
    bodies = common_unshaped_bodies("instagram")

    def variant(mutate: Any) -> bytes:
        payload = json.loads(json.dumps(text))
        mutate(payload)
        return json.dumps(payload).encode()

    def item(p: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = p["entry"][0]["messaging"][0]
        return result

    bodies += [
        variant(lambda p: p["entry"][0].pop("messaging")),
        variant(lambda p: p["entry"][0].update(messaging={"sender": {}})),
        variant(lambda p: item(p).pop("sender")),
        variant(lambda p: item(p).update(sender={"id": None})),
        variant(lambda p: item(p).update(recipient="17841400000000001")),
        variant(lambda p: item(p).update(timestamp="ayer")),
        variant(lambda p: item(p).update(timestamp=1e300)),
        variant(lambda p: item(p)["message"].pop("mid")),
        variant(lambda p: item(p)["message"].update(text=["hola"])),
        variant(lambda p: item(p)["message"].pop("text")),
        variant(lambda p: item(p)["message"].update(attachments={"type": "image"})),
        variant(lambda p: item(p)["message"].update(attachments=[{"payload": {"url": "x"}}])),
        variant(lambda p: item(p)["message"].update(is_echo="yes")),
        variant(lambda p: item(p).update(message=None, reaction={"mid": "m", "action": "love"})),
        variant(lambda p: item(p).pop("message") and item(p).update(read={})),
        variant(lambda p: item(p)["message"].update(quick_reply={"payload": 5})),
        variant(lambda p: p["entry"][0].update(changes=[{"field": "messages"}])),
    ]
    return bodies


def _outbound(account: ChannelAccount) -> list[OutboundMessage]:
    def message(n: int, **fields: Any) -> OutboundMessage:
        return OutboundMessage(
            message_id=MessageId(uuid.UUID(f"0190a000-0000-7000-8000-0000000013{n:02d}")),
            workspace_id=account.workspace_id,
            channel="instagram",
            business_address=account.address,
            recipient=Address(kind=AddressKind.INSTAGRAM_ID, value=CUSTOMER, scope=account.address),
            **fields,
        )

    image = Attachment(kind=AttachmentKind.IMAGE, url="https://cdn.example.com/campus.jpg")
    return [
        message(1, text="¡Hola! Con gusto te ayudamos."),
        message(2, text="Te escribo de nuevo sobre tu inscripción.", tag="HUMAN_AGENT"),
        message(3, attachments=(image,)),
        message(4, text="Nuestro campus", attachments=(image,)),
    ]


def _check(message: OutboundMessage, account: ChannelAccount, received: Sequence[dict[str, Any]]) -> None:
    expected_calls = (1 if message.text else 0) + len(message.attachments)
    if len(received) < expected_calls:
        raise AssertionError(f"the peer received {len(received)} requests, expected {expected_calls}")
    calls = received[-expected_calls:]
    for request in calls:
        body = request["json"]
        if request["node_id"] != peer_node(account):
            raise AssertionError(f"sent to node {request['node_id']!r}, expected {peer_node(account)!r}")
        if request["authorization"] != f"Bearer {account.access_token}":
            raise AssertionError("the access token was not sent as a bearer token")
        if request["status"] != 200:
            raise AssertionError(f"the peer refused the request: {request['status']} {body}")
        if body.get("recipient") != {"id": message.recipient.value}:
            raise AssertionError(f"wrong recipient: {body.get('recipient')}")
        if message.tag and (body.get("messaging_type") != "MESSAGE_TAG" or body.get("tag") != message.tag):
            raise AssertionError(f"the tag was not sent: {body}")
    if message.attachments and calls[0]["json"]["message"].get("attachment", {}).get("type") != "image":
        raise AssertionError(f"the attachment was not sent first: {calls[0]['json']}")
    if message.text and calls[-1]["json"]["message"] != {"text": message.text}:
        raise AssertionError(f"the text was not sent last: {calls[-1]['json']}")


_ERRORS: tuple[ErrorCase, ...] = (
    ErrorCase(
        "rate_limited_613",
        {
            "status": 400,
            "times": 10,
            "body": graph_error_body(613, "Calls to this api have exceeded the rate limit."),
        },
        TransientChannelError,
    ),
    ErrorCase(
        "temporary_send_failure_1200",
        {
            "status": 500,
            "times": 10,
            "body": graph_error_body(1200, "Temporary send message failure. Please try again later"),
        },
        TransientChannelError,
    ),
    ErrorCase("window_closed_10_2534022", instagram_window_closed(), PermanentChannelError),
    ErrorCase(
        "user_unavailable_551",
        {"status": 400, "body": graph_error_body(551, "This person isn't available right now.")},
        PermanentChannelError,
    ),
    ErrorCase("expired_token_190", expired_token(), PermanentChannelError),
)


def conformance_kit() -> MetaKit:
    return MetaKit(
        channel="instagram",
        fixtures_dir=FIXTURES,
        account_list=accounts(),
        sample_specs=SAMPLES,
        bad_bodies=_malformed(),
        outbound_factory=_outbound,
        failure_cases=_ERRORS,
        checker=_check,
        peer_nodes=peer_node,
        default_secret=APP_SECRET,
    )
