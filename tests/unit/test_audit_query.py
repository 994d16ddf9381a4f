"""The audit trail's filters: what each one means, and a malformed one refused naming it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.audit import AuditEntry, parse_query
from core.errors import InvalidInput

ID = "0194b3c2-6f1e-7a00-8000-000000000001"


def test_actions_are_exact_names_or_prefixes_given_repeated_or_as_a_comma_list() -> None:
    q = parse_query(action=["offer.*, conversation.closed", "token.revoked", "offer.*"])
    assert q.actions == ("conversation.closed", "token.revoked")
    assert q.prefixes == ("offer.",)


def test_a_bare_date_is_its_midnight_utc_and_a_time_without_offset_is_utc() -> None:
    q = parse_query(since="2026-03-10", until="2026-03-10T18:30:00")
    assert q.since == datetime(2026, 3, 10, tzinfo=UTC)
    assert q.until == datetime(2026, 3, 10, 18, 30, tzinfo=UTC)


def test_an_offset_whose_plus_reached_the_query_as_a_space_is_still_read() -> None:
    q = parse_query(since="2026-03-10T10:00:00 05:00")
    assert q.since == datetime(2026, 3, 10, 10, tzinfo=timezone(timedelta(hours=5)))


def test_ids_are_uuids() -> None:
    q = parse_query(conversation=ID, customer=ID, agent=ID)
    assert q.conversation_id == q.customer_id == q.agent_id == uuid.UUID(ID)


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"conversation": "42"}, "conversation"),
        ({"customer": "ana@example.com"}, "customer"),
        ({"agent": "x"}, "agent"),
        ({"action": ["offer%"]}, "action"),
        ({"action": ["*"]}, "action"),
        ({"action": ["Offer.Made"]}, "action"),
        ({"since": "yesterday"}, "from"),
        ({"until": "2026-13-01"}, "to"),
        ({"since": "2026-03-10", "until": "2026-03-10"}, "to"),
    ],
)
def test_a_malformed_filter_is_refused_naming_it(filters: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_query(**filters)  # type: ignore[arg-type]
    assert refused.value.field == field


def test_the_command_line_names_its_flags() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_query(since="ayer", names={"from": "--from"})
    assert refused.value.field == "--from"


def test_too_many_actions_are_refused() -> None:
    with pytest.raises(InvalidInput, match="at most 50"):
        parse_query(action=[",".join(f"a.n{i}" for i in range(51))])


def test_an_entry_knows_the_agent_behind_its_actor() -> None:
    def entry(actor: str) -> AuditEntry:
        return AuditEntry(uuid.uuid4(), datetime.now(UTC), actor, "note.added", "conversation", "c", {})

    assert entry(f"agent:{ID}").actor_agent_id == uuid.UUID(ID)
    assert entry("token:abc").actor_agent_id is None
    assert entry("agent:not-an-id").actor_agent_id is None
