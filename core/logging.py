"""structlog configuration: console on a terminal, JSON lines otherwise, personal data redacted.

At INFO and above, ``redact_personal_data`` masks phone numbers and email addresses wherever
they appear in an event's values and drops message bodies (keys ``text``, ``body``, ``subject``,
``quoted_text``, ``signature``).  Logs carry conversation and customer ids instead.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal

import structlog

__all__ = ["configure_logging", "get_logger", "mask_email", "mask_phone", "redact_personal_data"]

BODY_KEYS = frozenset({"text", "body", "subject", "quoted_text", "signature", "caption", "raw"})
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50, "exception": 40}
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# A phone: optional +, then 8 to 15 digits possibly separated by spaces, dots or dashes.
_PHONE = re.compile(r"(?<![\w-])\+?\d(?:[\s.\-()]?\d){7,14}(?![\w-])")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _tag(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:8]


def mask_email(value: str) -> str:
    """``maria@example.com`` → ``m***@e***#1a2b3c4d`` (stable tag to correlate, nothing to read)."""
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain[:1]}***#{_tag(value.lower())}"


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return f"+***{digits[-2:]}#{_tag(digits)}"


def _redact_text(value: str) -> str:
    if _UUID.search(value):
        # Protect ids (which contain digit runs) from the phone pattern.
        parts = _UUID.split(value)
        ids = _UUID.findall(value)
        out = [_redact_text(part) for part in parts]
        merged = [out[0]]
        for uid, part in zip(ids, out[1:], strict=True):
            merged.extend([uid, part])
        return "".join(merged)
    value = _EMAIL.sub(lambda m: mask_email(m.group(0)), value)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), value)


def _redact_value(key: str, value: Any) -> Any:
    if key in BODY_KEYS and value is not None:
        return f"<redacted {len(value) if isinstance(value, str | bytes) else '?'} chars>"
    if isinstance(value, str):
        return _redact_text(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    return value


def redact_personal_data(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: at INFO and above, no phone, email or message body leaves in clear."""
    level = event_dict.get("level", method_name)
    if _LEVELS.get(str(level).lower(), 20) < logging.INFO:
        return event_dict
    for key in list(event_dict.keys()):
        if key in ("level", "timestamp", "logger"):
            continue
        event_dict[key] = _redact_value(key, event_dict[key])
    return event_dict


def configure_logging(level: str = "INFO", fmt: Literal["auto", "console", "json"] = "auto") -> None:
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_personal_data,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name) if name else structlog.get_logger()
