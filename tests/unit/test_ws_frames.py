"""The agent's WebSocket frames: one model each, a published JSON Schema generated from them, the
router's pushes forwarded unchanged, bad frames answered with an error naming the field, and
docs/api.md naming exactly the frames there are."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast, get_args

import jsonschema
import pytest
from pydantic import BaseModel

from centralita.gateway import AgentSession
from centralita.schemas.ws import (
    CLIENT_FRAME_TYPES,
    SERVER_FRAME_TYPES,
    ErrorFrame,
    PongFrame,
    frame_of_push,
    frames_json_schema,
    parse_client_frame,
    parse_server_frame,
    render_frames_json_schema,
    write_frames_json_schema,
)
from core.errors import BrokerUnavailable
from core.ids import new_id
from router.wire import (
    AgentPush,
    AssignedPush,
    MessagePush,
    MessageStatusPush,
    OfferPush,
    OfferWithdrawnPush,
    UnassignedPush,
    WindowClosedPush,
    WindowWarningPush,
)
from storage.tokens import Principal
from tests.support.ws_frames import unmodelled

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "docs" / "ws.schema.json"
API_MD = REPO / "docs" / "api.md"

AT = datetime(2026, 3, 10, 16, 0, 30, tzinfo=UTC)


# ------------------------------------------------------------------------- the JSON Schema


def test_the_committed_frames_schema_file_is_current() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_frames_json_schema(), (
        "docs/ws.schema.json is stale: regenerate it with "
        "centralita.schemas.ws.write_frames_json_schema('docs/ws.schema.json')"
    )


def test_write_frames_json_schema_writes_what_render_returns(tmp_path: Path) -> None:
    target = tmp_path / "ws.schema.json"
    write_frames_json_schema(target)
    assert json.loads(target.read_text(encoding="utf-8")) == frames_json_schema()


def test_the_frames_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(frames_json_schema())


def test_the_schema_refuses_a_server_frame_with_a_field_its_model_lacks() -> None:
    server = {**frames_json_schema(), "oneOf": [{"$ref": "#/$defs/ServerFrame"}]}
    validator = jsonschema.Draft202012Validator(server)
    assert validator.is_valid({"type": "pong"})
    assert not validator.is_valid({"type": "pong", "at": "now"})
    assert not validator.is_valid({"type": "message"})


# ------------------------------------------------------------------------- pushes → frames


def _pushes() -> list[BaseModel]:
    conversation, offer, queue = new_id(), new_id(), new_id()
    return [
        OfferPush(
            offer_id=offer,
            conversation_id=conversation,
            queue_id=queue,
            channel="whatsapp",
            expires_at=AT,
            customer_id=new_id(),
            preview={
                "queue": "general",
                "trigger": "arrival",
                "customer_name": "Marta Gómez",
                "text": "Hola, quiero saber el saldo de mi crédito",
                "message_kind": "message",
                "attachments": [],
            },
        ),
        OfferPush(
            offer_id=offer,
            conversation_id=conversation,
            queue_id=queue,
            channel="whatsapp",
            expires_at=AT,
            customer_id=None,
            preview={
                "queue": None,
                "trigger": "agent_available",
                "customer_name": None,
                "text": None,
                "message_kind": None,
                "attachments": [],
            },
        ),
        OfferWithdrawnPush(offer_id=offer, conversation_id=conversation, reason="timeout"),
        AssignedPush(conversation_id=conversation, queue_id=queue, channel="whatsapp", forced=True),
        AssignedPush(conversation_id=conversation, queue_id=None, channel="whatsapp"),
        UnassignedPush(conversation_id=conversation, reason="agent_removed"),
        MessagePush(
            conversation_id=conversation,
            message_id=new_id(),
            direction="in",
            kind="message",
            channel="whatsapp",
            text="¿Me pueden llamar?",
            created_at=AT,
        ),
        MessagePush(
            conversation_id=conversation,
            message_id=new_id(),
            direction="in",
            kind="message",
            channel="instagram",
            text=None,
            attachments=["image"],
            created_at=AT,
        ),
        MessageStatusPush(conversation_id=conversation, message_id=new_id(), delivery_state="delivered"),
        WindowWarningPush(conversation_id=conversation, closes_at=AT),
        WindowClosedPush(conversation_id=conversation, closed_at=AT),
        MessageStatusPush(
            conversation_id=conversation,
            message_id=new_id(),
            delivery_state="failed",
            errors=[{"code": 131047, "title": "Re-engagement message"}],
        ),
    ]


@pytest.mark.parametrize("push", _pushes(), ids=lambda p: str(getattr(p, "type", "push")))
def test_a_push_reaches_the_socket_as_the_same_json_the_router_published(push: BaseModel) -> None:
    frame = frame_of_push(push)  # type: ignore[arg-type]
    assert frame is not None
    assert frame.model_dump_json() == push.model_dump_json()
    assert parse_server_frame(frame.model_dump_json()) == frame


def test_every_push_of_the_wire_has_its_frame() -> None:
    pushed = {p.model_fields["type"].default for p in get_args(get_args(AgentPush)[0])}
    assert pushed <= set(SERVER_FRAME_TYPES)


def test_an_error_frame_leaves_out_the_field_when_none_is_at_fault() -> None:
    frame = ErrorFrame.of(BrokerUnavailable("the broker is down"))
    assert frame.model_dump(mode="json") == {
        "type": "error",
        "error": {"code": "broker_unavailable", "message": "the broker is down"},
    }


# ------------------------------------------------------------------------- agent → server


class _NoRouter:
    async def to_router(self, workspace_id: object, message: BaseModel) -> None:
        raise AssertionError(f"a bad frame reached the router: {message!r}")


def _session() -> AgentSession:
    principal = Principal(new_id(), "agent", new_id(), "test")  # type: ignore[arg-type]
    return AgentSession(cast(Any, _NoRouter()), principal, cast(Any, None))


async def test_ping_is_answered_with_pong() -> None:
    assert await _session().handle_text('{"type": "ping"}') == PongFrame()


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("not json", "frame", "a frame is one JSON object"),
        ("[1]", "frame", "a frame is one JSON object"),
        ('{"type": "dance"}', "type", "unknown frame type 'dance'; expected presence, offer_answer or ping"),
        ("{}", "type", "unknown frame type None; expected presence, offer_answer or ping"),
        (
            '{"type": "presence", "presence": "dancing"}',
            "presence",
            "presence: Input should be 'available', 'away', 'offline' or 'wrap_up'",
        ),
        (
            '{"type": "offer_answer", "offer_id": "x", "accepted": "yes"}',
            "accepted",
            "accepted must be true or false",
        ),
        (
            '{"type": "offer_answer", "offer_id": "x", "accepted": 1}',
            "accepted",
            "accepted must be true or false",
        ),
        (
            '{"type": "offer_answer", "offer_id": "x", "accepted": true}',
            "offer_id",
            "offer_id: Input should be a valid UUID, invalid character: found `x` at 0",
        ),
    ],
)
async def test_a_bad_frame_is_answered_with_an_error_naming_the_field(
    text: str, field: str, message: str
) -> None:
    answer = await _session().handle_text(text)
    assert isinstance(answer, ErrorFrame)
    assert answer.model_dump(mode="json") == {
        "type": "error",
        "error": {"code": "invalid_input", "message": message, "field": field},
    }


def test_fields_an_agent_adds_to_a_frame_are_ignored() -> None:
    frame = parse_client_frame({"type": "presence", "presence": "away", "agent_id": "someone else"})
    assert frame.model_dump() == {"type": "presence", "presence": "away", "until": None}


# ------------------------------------------------------------------------- docs/api.md


def _websocket_section() -> str:
    text = API_MD.read_text(encoding="utf-8")
    start = text.index("## The agent's WebSocket")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _tables(section: str) -> list[set[str]]:
    """The `type`s in the first column of each table of the section, table by table."""
    tables: list[set[str]] = []
    for block in re.findall(r"(?:^\|.*\n)+", section, flags=re.MULTILINE):
        rows = block.splitlines()
        if rows and "`type`" in rows[0]:
            tables.append(set(re.findall(r"^\| `([a-z_]+)` \|", "\n".join(rows[2:]), flags=re.MULTILINE)))
    return tables


def _examples(section: str) -> list[list[dict[str, Any]]]:
    """The JSON objects of each ``json`` code block of the section, block by block."""
    decoder = json.JSONDecoder()
    blocks: list[list[dict[str, Any]]] = []
    for body in re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL):
        objects, rest = [], body.strip()
        while rest:
            obj, end = decoder.raw_decode(rest)
            objects.append(obj)
            rest = rest[end:].lstrip()
        blocks.append(objects)
    return blocks


def test_the_websocket_section_of_api_md_names_exactly_the_frames_there_are() -> None:
    server, client = _tables(_websocket_section())
    assert server == set(SERVER_FRAME_TYPES), "docs/api.md: what the server sends"
    assert client == set(CLIENT_FRAME_TYPES), "docs/api.md: what the agent sends"


def test_the_websocket_section_of_api_md_shows_one_valid_example_of_each_frame() -> None:
    server, client = _examples(_websocket_section())
    assert sorted(f["type"] for f in server) == sorted(SERVER_FRAME_TYPES)
    assert sorted(f["type"] for f in client) == sorted(CLIENT_FRAME_TYPES)
    for example in server:
        assert parse_server_frame(json.dumps(example)).model_dump(mode="json") == example
    for example in client:
        parse_client_frame(example)


# ------------------------------------------------------------------------- the e2e suite's check


def test_the_e2e_check_refuses_a_frame_the_models_do_not_describe() -> None:
    assert unmodelled('{"type": "pong"}') is None
    assert unmodelled('{"type": "pong", "at": "now"}') is not None  # a field the model lacks
    missing_reason = json.dumps({"type": "unassigned", "conversation_id": str(new_id())})
    assert unmodelled(missing_reason) is not None
    assert unmodelled('{"type": "window_warning"}') is not None  # its fields missing
    assert unmodelled('{"type": "window_reopened"}') is not None  # no such frame
