"""A workspace, a clock that moves when told, and the identifiers of the stories."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core.events import AddressKind
from core.ids import WorkspaceId
from identity import IdentityGraph, email_identifier, phone_identifier, scoped_identifier

AGENT = "agent:7f1c"
PHONE = phone_identifier("+5215512345678")  # as WhatsApp sends it
PHONE_NATIONAL = phone_identifier("55 1234 5678", "MX")  # as a customer writes it
BSUID = scoped_identifier(AddressKind.WHATSAPP_BSUID, "MX.ana", "waba_1")
EMAIL = email_identifier("ana.perez@gmail.com")
OTHER_EMAIL = email_identifier("luis@example.com")
IG = scoped_identifier(AddressKind.INSTAGRAM_ID, "17841", "ig_clinica")
RECEPTION = phone_identifier("+525588887777")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

    def tick(self, minutes: int = 1) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def workspace() -> WorkspaceId:
    return WorkspaceId(uuid.uuid4())


@pytest.fixture
def graph(workspace: WorkspaceId) -> IdentityGraph:
    return IdentityGraph(workspace)
