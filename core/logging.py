"""structlog configuration: console on a terminal, JSON lines otherwise, personal data redacted.

At INFO and above, ``redact_personal_data`` masks phone numbers and email addresses wherever
they appear in an event's values and drops message bodies (keys ``text``, ``body``, ``subject``,
``quoted_text``, ``signature``).  Logs carry conversation and customer ids instead.

Exceptions are formatted first and redacted after: a traceback keeps its exception types and
frames (file, line, function) and its messages, with phones and emails masked and the value
dumps that libraries quote cut (``VALUE_DUMPS``: SQLAlchemy's ``[parameters: …]``, PostgreSQL's
``Failing row contains (…)`` and ``Key (…)=(…)``, asyncpg's ``query argument $n: …``, pydantic's
``input_value=…``).  An exception or any other object given as a value is logged as its
redacted text.  ``configure_logging`` sends the stdlib ``logging`` records that libraries emit
(aiohttp, asyncio, SQLAlchemy) at WARNING and above through the same chain.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO

import structlog

__all__ = [
    "STDLIB_HANDLER_NAME",
    "VALUE_DUMPS",
    "configure_logging",
    "get_logger",
    "mask_email",
    "mask_phone",
    "redact_personal_data",
    "redact_text",
]

BODY_KEYS = frozenset({"text", "body", "subject", "quoted_text", "signature", "caption", "raw"})
# The name of the handler configure_logging puts on the root logger (one at a time).
STDLIB_HANDLER_NAME = "centralita.structlog"
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50, "exception": 40}
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# A phone: optional +, then 8 to 15 digits possibly separated by spaces, dots or dashes.
_PHONE = re.compile(r"(?<![\w-])\+?\d(?:[\s.\-()]?\d){7,14}(?![\w-])")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Where exception texts quote the values they were given (a message body, a row), each cut to
# the end of its line: (a marker to look for cheaply, the pattern, its replacement).
VALUE_DUMPS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    # SQLAlchemy, when an engine does not hide them: "[parameters: ('ana@x.co', 'hola …')]"
    ("[parameters:", re.compile(r"\[parameters: .*"), "[parameters: <redacted>]"),
    # PostgreSQL's DETAIL, as asyncpg quotes it: the whole row refused, a key's values.
    ("Failing row contains", re.compile(r"Failing row contains .*"), "Failing row contains <redacted>"),
    ("Key (", re.compile(r"(Key \([^)\n]*\))=\(.*\)"), r"\1=(<redacted>)"),
    # asyncpg: "invalid input for query argument $1: 'hola …' (expected str, got int)"
    ("query argument $", re.compile(r"(query argument \$\d+): .*"), r"\1: <redacted>"),
    # pydantic: "[type=string_type, input_value='hola …', input_type=int]"
    (
        "input_value=",
        re.compile(r"input_value=.*?(?=, input_type=|$)", re.MULTILINE),
        "input_value=<redacted>",
    ),
)
_PRIMITIVES = (int, float, bool, type(None))


def _tag(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:8]


def mask_email(value: str) -> str:
    """``maria@example.com`` → ``m***@e***#1a2b3c4d`` (stable tag to correlate, nothing to read)."""
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain[:1]}***#{_tag(value.lower())}"


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return f"+***{digits[-2:]}#{_tag(digits)}"


def _mask(value: str) -> str:
    if _UUID.search(value):
        # Protect ids (which contain digit runs) from the phone pattern.
        parts = _UUID.split(value)
        ids = _UUID.findall(value)
        out = [_mask(part) for part in parts]
        merged = [out[0]]
        for uid, part in zip(ids, out[1:], strict=True):
            merged.extend([uid, part])
        return "".join(merged)
    value = _EMAIL.sub(lambda m: mask_email(m.group(0)), value)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), value)


def redact_text(value: str) -> str:
    """A text (an event value, a message, a formatted traceback) as it may be logged: the value
    dumps of ``VALUE_DUMPS`` cut, then phones and emails masked."""
    for marker, pattern, replacement in VALUE_DUMPS:
        if marker in value:
            value = pattern.sub(replacement, value)
    return _mask(value)


def _redact_value(key: str, value: Any) -> Any:
    if key in BODY_KEYS and value is not None:
        return f"<redacted {len(value) if isinstance(value, str | bytes) else '?'} chars>"
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    if isinstance(value, _PRIMITIVES):
        return value
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {redact_text(str(value))}"
    # An id, a time, a model, a row: its text, redacted (the renderer would print its repr whole).
    return redact_text(str(value))


def redact_personal_data(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: at INFO and above, no phone, email or message body leaves in clear.

    It runs after ``format_exc_info``: the formatted ``exception`` is redacted like any value."""
    level = event_dict.get("level", method_name)
    if _LEVELS.get(str(level).lower(), 20) < logging.INFO:
        return event_dict
    for key in list(event_dict.keys()):
        if key in ("level", "timestamp", "logger", "exc_info"):
            continue
        event_dict[key] = _redact_value(key, event_dict[key])
    return event_dict


class _CurrentStderr:
    """``sys.stderr`` as it is when a record is written: a CLI run under a test harness (or
    anything that swaps ``sys.stderr`` and closes its stand-in) must not leave the loggers
    writing to a closed file."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(
    level: str = "INFO", fmt: Literal["auto", "console", "json"] = "auto", *, stream: TextIO | None = None
) -> None:
    """structlog, and the root stdlib logger's records at WARNING and above (or ``level`` if
    higher), rendered by the same chain to ``stream`` (stderr by default).  Calling it again
    replaces the previous configuration, root handler included."""
    out: Any = stream if stream is not None else _CurrentStderr()
    use_console = fmt == "console" or (fmt == "auto" and (stream or sys.stderr).isatty())
    renderer: Any = structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    tail: list[Any] = [structlog.processors.format_exc_info, redact_personal_data, renderer]
    threshold = logging.getLevelNamesMapping()[level]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *tail,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.set_name(STDLIB_HANDLER_NAME)
    handler.setLevel(max(threshold, logging.WARNING))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == STDLIB_HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name) if name else structlog.get_logger()
