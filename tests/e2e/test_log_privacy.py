"""The issue's live example through HTTP: a note whose text holds an email, a phone and a NUL
character.  Whatever the status (PostgreSQL refuses the NUL: a 500 and an ``unhandled_error``
with its traceback), no log line holds the email, the phone or the text.  On the embedded
backend and on PostgreSQL + RabbitMQ."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.e2e.conftest import StartWorkScene
from tests.support.log_scan import CapturedLogs
from tests.support.work import WorkScene

PHONE_NUMBER_ID = "113829475016312"
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
PHONE = "+5215512349077"
EMAIL = "lucia.herrera@bpo-contacto.example.mx"
TEXT = f"Llamar a {PHONE} o escribir a {EMAIL} \x00 por su diagnóstico reservado"


@pytest.fixture
async def scene(start_work_scene: StartWorkScene) -> WorkScene:
    return await start_work_scene("alfa", PHONE_NUMBER_ID, now=NOW, who="ana")


async def test_a_note_with_an_email_a_phone_and_a_nul_leaves_none_of_them_in_the_log(
    scene: WorkScene, personal_data_stays_out_of_logs: CapturedLogs
) -> None:
    logs = personal_data_stays_out_of_logs
    conversation = await scene.conversation()
    status, body = await scene.send("POST", f"/api/conversations/{conversation}/notes", {"text": TEXT})
    assert status in (201, 400, 500), body
    if status == 500:  # the failure was logged, with its traceback: redacted
        (failure,) = [line for line in logs.lines if '"unhandled_error"' in line]
        assert "Traceback (most recent call last)" in failure and "[parameters: " not in failure
    assert logs.lines, "the request logged nothing"
    for value in (PHONE, PHONE[1:], EMAIL, "diagnóstico reservado", "diagn\\u00f3stico reservado"):
        assert not [line for line in logs.lines if value in line], value
