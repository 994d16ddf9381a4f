"""No phone or email in clear in the logs of an e2e test: its log lines, scanned when it ends.

``personal_data_stays_out_of_logs`` (autouse where ``tests/e2e/conftest.py`` imports it) sends
structlog and stdlib logging through the product's own chain (``configure_logging(fmt="json")``)
into memory, and copies every line to stderr so a failing test still shows its log.  It writes
down the phones and emails the test sends: every email address in an HTTP body, and the phones
in WhatsApp/Meta-style fields (``from``, ``to``, ``wa_id``, keys naming a phone, any ``+``
number), plus the customers' phones of the shared test kits (``KNOWN_PHONES``).  When the test
ends, an INFO-or-above line holding one of those phones in clear, or any email address at all (a
masked address no longer looks like one), fails it with the offending lines.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import structlog

from core.logging import STDLIB_HANDLER_NAME, configure_logging

__all__ = ["KNOWN_PHONES", "CapturedLogs", "personal_data_stays_out_of_logs", "product_logs"]

# The customers' phones the channels' test kits and tests/support send (digits only).
KNOWN_PHONES = frozenset(
    {
        "5215512345678",  # channels.whatsapp.testing.CUSTOMER
        "5215599998888",
        "5491122334455",
        "5215500001111",
        "525512345678",
        "573001112233",
        "5215588887777",
        "5215598765432",
    }
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_PHONE_KEYS = frozenset({"from", "to", "wa_id", "msisdn", "recipient", "sender", "new_address"})
_E164 = re.compile(r"\+\d[\d\s.\-()]{7,18}\d")
_BELOW_INFO = frozenset({"debug", "notset"})


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


@dataclass(eq=False)  # hashable by identity: structlog keeps a write lock per file
class CapturedLogs:
    """The lines one test logged and the personal data it sent."""

    chunks: list[str] = field(default_factory=list)
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=lambda: set(KNOWN_PHONES))

    # -- the sink the logging chain prints to ------------------------------------------------
    def write(self, text: str) -> int:
        self.chunks.append(text)
        sys.stderr.write(text)
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    # -- what the test sent ------------------------------------------------------------------
    def note(self, payload: Any) -> None:
        """Write down the emails and phones of one request body (JSON, bytes, text or form)."""
        if payload is None:
            return
        if isinstance(payload, bytes | bytearray):
            payload = payload.decode("utf-8", "replace")
        if isinstance(payload, str):
            self.emails.update(_EMAIL.findall(payload))
            self.phones.update(d for d in map(_digits, _E164.findall(payload)) if 8 <= len(d) <= 15)
            try:
                payload = json.loads(payload)
            except (ValueError, RecursionError):  # not JSON, or a hostile body nested too deep
                return
        self._walk(payload, "", 0)

    def _walk(self, value: Any, key: str, depth: int) -> None:
        if depth > 64:
            return
        if isinstance(value, Mapping):
            for k, v in value.items():
                self._walk(v, str(k).lower(), depth + 1)
        elif isinstance(value, list | tuple):
            for v in value:
                self._walk(v, key, depth + 1)
        elif isinstance(value, str):
            self.emails.update(_EMAIL.findall(value))
            phone_key = key in _PHONE_KEYS or ("phone" in key and not key.endswith("_id"))
            digits = _digits(value)
            if (phone_key or _E164.fullmatch(value.strip())) and 8 <= len(digits) <= 15:
                self.phones.add(digits)

    # -- the verdict ---------------------------------------------------------------------------
    def leaks(self) -> list[str]:
        """The INFO-or-above lines that hold an email address or a known phone in clear."""
        phones = sorted(self.phones, key=len, reverse=True)
        phone = re.compile(r"(?<!\d)(?:" + "|".join(map(re.escape, phones)) + r")(?!\d)") if phones else None
        found: list[str] = []
        for line in self.lines:
            if not (_EMAIL.search(line) or (phone is not None and phone.search(line))):
                continue
            try:
                level = str(json.loads(line).get("level", "info")).lower()
            except (ValueError, AttributeError):
                level = "info"  # a line the chain did not render (someone printed): judge it anyway
            if level not in _BELOW_INFO:
                found.append(line)
        return found


@contextmanager
def product_logs(level: str = "INFO") -> Iterator[CapturedLogs]:
    """structlog and the root stdlib logger rendered by the product's chain (JSON) into the
    returned ``CapturedLogs``; the previous configuration is back afterwards."""
    captured = CapturedLogs()
    was_configured = structlog.is_configured()
    saved = structlog.get_config()
    root = logging.getLogger()
    before = list(root.handlers)
    configure_logging(level, "json", stream=captured)
    try:
        yield captured
    finally:
        for handler in list(root.handlers):
            if handler.get_name() == STDLIB_HANDLER_NAME and handler not in before:
                root.removeHandler(handler)
        if was_configured:
            structlog.configure(**saved)
        else:
            structlog.reset_defaults()


@pytest.fixture(autouse=True)
def personal_data_stays_out_of_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[CapturedLogs]:
    """The test fails when a line it logged at INFO or above holds a phone or email in clear."""
    send = aiohttp.ClientSession._request
    with product_logs() as captured:

        async def recording(self: aiohttp.ClientSession, method: str, url: Any, **kwargs: Any) -> Any:
            captured.note(kwargs.get("json"))
            data = kwargs.get("data")
            captured.note(
                dict(data) if isinstance(data, Mapping) else data if isinstance(data, str | bytes) else None
            )
            return await send(self, method, url, **kwargs)

        monkeypatch.setattr(aiohttp.ClientSession, "_request", recording)
        yield captured
    leaks = captured.leaks()
    if leaks:
        pytest.fail(
            f"{len(leaks)} log line(s) at INFO or above hold a phone or an email in clear:\n"
            + "\n".join(line[:2000] for line in leaks[:10]),
            pytrace=False,
        )
