"""The e2e log scan (tests/support/log_scan.py) finds what it must and nothing else."""

from __future__ import annotations

import json

from core.logging import mask_email, mask_phone
from tests.support.log_scan import CapturedLogs


def _line(level: str, **values: object) -> str:
    return json.dumps({"event": "something", "level": level, **values}) + "\n"


def test_an_email_or_a_sent_phone_in_clear_at_info_is_a_leak_and_a_masked_one_is_not() -> None:
    logs = CapturedLogs()
    logs.note(b'{"entry": [{"contacts": [{"wa_id": "5215512340091"}], "text": "hola"}]}')
    logs.write(_line("info", sender=mask_phone("5215512340091"), email=mask_email("ana@r.example")))
    assert logs.leaks() == []
    logs.write(_line("warning", detail="from 5215512340091"))
    logs.write(_line("error", exception="ValueError: ana@r.example"))
    assert len(logs.leaks()) == 2


def test_the_test_kits_phones_are_known_without_being_sent_and_debug_is_not_judged() -> None:
    logs = CapturedLogs()
    logs.write(_line("debug", detail="+5215512345678"))
    assert logs.leaks() == []
    logs.write(_line("info", detail="+52 1 55 1234 5678 or 5215512345678"))
    assert len(logs.leaks()) == 1


def test_ids_that_merely_contain_a_phones_digits_are_not_leaks() -> None:
    logs = CapturedLogs()
    logs.note({"to": "+573001112233", "phone_number_id": "106540352242922"})
    logs.write(_line("info", account="106540352242922", ref="99573001112233999"))
    assert logs.leaks() == []
