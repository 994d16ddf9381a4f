"""Constrained value types of the campaign manifest.

Each type validates one kind of value (a slug, an environment-variable name, an IANA time zone,
an opening interval, …) and fails with a ``PydanticCustomError`` whose context carries a
``hint``; the validator turns that into ``FILE:LINE:COLUMN: message (hint: …)``.  The JSON
Schema of each type is declared next to it so editors complete and check the same rules.
"""

from __future__ import annotations

import difflib
import re
from datetime import date
from functools import cache
from typing import Annotated, Any, Literal, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

__all__ = [
    "SLUG_PATTERN",
    "WEEKDAYS",
    "Email",
    "EnvVarName",
    "HolidayDate",
    "Interval",
    "Language",
    "NumericId",
    "PhoneE164",
    "Proficiency",
    "Slug",
    "TemplateLanguage",
    "TemplateName",
    "TimeZoneName",
    "Weekday",
    "parse_interval_minutes",
]

Language: TypeAlias = Literal["es", "en"]
Weekday: TypeAlias = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

SLUG_PATTERN = r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$"
_SLUG = re.compile(SLUG_PATTERN)
_ENV_NAME_PATTERN = r"^[A-Z][A-Z0-9_]*$"
_ENV_NAME = re.compile(_ENV_NAME_PATTERN)
_NUMERIC_ID = re.compile(r"^[0-9]{1,32}$")
_EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_EMAIL = re.compile(_EMAIL_PATTERN)
_INTERVAL_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]-(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
_INTERVAL = re.compile(_INTERVAL_PATTERN)
_TEMPLATE_NAME_PATTERN = r"^[a-z0-9_]{1,512}$"
_TEMPLATE_NAME = re.compile(_TEMPLATE_NAME_PATTERN)
_TEMPLATE_LANGUAGE_PATTERN = r"^[a-z]{2,3}(_[A-Z]{2})?$"
_TEMPLATE_LANGUAGE = re.compile(_TEMPLATE_LANGUAGE_PATTERN)


def _fail(kind: str, message: str, hint: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message, {"hint": hint})


def _slug(value: str) -> str:
    if len(value) > 63 or not _SLUG.match(value):
        raise _fail(
            "invalid_name",
            "not a valid name",
            "use lower-case letters, digits, '-' and '_' (at most 63), e.g. 'pagos-y-becas'",
        )
    return value


Slug = Annotated[
    str,
    AfterValidator(_slug),
    WithJsonSchema({"type": "string", "pattern": SLUG_PATTERN, "maxLength": 63}),
]
"""A lower-case identifier: ``pagos``, ``mora-1-30``, ``posgrados_2027``."""


def _looks_like_literal_secret(value: str) -> bool:
    if not _ENV_NAME.match(value):
        return True
    # An all-capitals token with digits and no underscore (e.g. a hex secret in capitals).
    return len(value) >= 20 and "_" not in value and any(c.isdigit() for c in value)


def _env_name(value: str) -> str:
    if _looks_like_literal_secret(value):
        raise _fail(
            "literal_secret",
            "must name an environment variable, but the value looks like a secret itself",
            "put the secret in an environment variable (e.g. POSGRADOS_WA_APP_SECRET) and write its name "
            "here; manifests never hold secret values",
        )
    return value


EnvVarName = Annotated[
    str,
    AfterValidator(_env_name),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _ENV_NAME_PATTERN,
            "description": "Name of an environment variable that holds the secret (never the secret).",
            "examples": ["POSGRADOS_WA_APP_SECRET"],
        }
    ),
]


def _numeric_id(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _NUMERIC_ID.match(value):
        raise _fail(
            "invalid_numeric_id",
            "must be a numeric id",
            "copy the id from Meta's WhatsApp Manager / App Dashboard and quote it, e.g. '106540352242922'",
        )
    return value


NumericId = Annotated[
    str,
    BeforeValidator(_numeric_id),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]{1,32}$", "examples": ["106540352242922"]}),
]
"""A Meta object id (phone_number_id, WABA id, app id, Instagram account id), kept as text."""


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise _fail(
            "invalid_email",
            "not a valid email address",
            "write it as name@domain, e.g. ana.lopez@example.edu",
        )
    return value.strip().lower()


Email = Annotated[
    str,
    AfterValidator(_email),
    WithJsonSchema({"type": "string", "pattern": _EMAIL_PATTERN, "format": "email"}),
]


def _phone(value: Any) -> Any:
    if not isinstance(value, str):
        raise _fail("invalid_phone", "must be a phone number as text", "quote it, e.g. '+52 55 1234 5678'")
    hint = "write the number in international format with its country code, e.g. '+52 55 1234 5678'"
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise _fail("invalid_phone", "not a phone number in international format", hint) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise _fail("invalid_phone", "not a valid phone number", hint)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


PhoneE164 = Annotated[
    str,
    BeforeValidator(_phone),
    WithJsonSchema({"type": "string", "pattern": r"^\+[0-9 ()\-]{7,24}$", "examples": ["+52 55 1234 5678"]}),
]
"""A phone number, stored in E.164 (``+525512345678``)."""


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        close = difflib.get_close_matches(value, sorted(_zones()), n=1, cutoff=0.7)
        hint = f"did you mean {close[0]!r}?" if close else "use an IANA name such as 'America/Mexico_City'"
        raise _fail("invalid_timezone", "unknown time zone", hint) from exc
    return value


TimeZoneName = Annotated[
    str,
    AfterValidator(_timezone),
    WithJsonSchema(
        {
            "type": "string",
            "description": "IANA time zone name.",
            "examples": ["America/Mexico_City", "America/Argentina/Buenos_Aires", "America/Bogota"],
        }
    ),
]


def parse_interval_minutes(value: str) -> tuple[int, int]:
    """``"08:00-18:30"`` → ``(480, 1110)``: minutes after midnight, end exclusive (``24:00`` = 1440)."""
    start, end = value.split("-")
    sh, sm = start.split(":")
    eh, em = end.split(":")
    return int(sh) * 60 + int(sm), int(eh) * 60 + int(em)


def _interval(value: str) -> str:
    if not _INTERVAL.match(value):
        raise _fail(
            "invalid_interval",
            "not an opening interval",
            "write 'HH:MM-HH:MM' in 24-hour time, e.g. '08:00-18:00' (use '24:00' for midnight)",
        )
    start, end = parse_interval_minutes(value)
    if start >= end:
        raise _fail(
            "invalid_interval",
            "the interval ends before it starts",
            "an interval cannot cross midnight: split it, e.g. mon '22:00-24:00' and tue '00:00-02:00'",
        )
    return value


Interval = Annotated[
    str,
    AfterValidator(_interval),
    WithJsonSchema({"type": "string", "pattern": _INTERVAL_PATTERN, "examples": ["08:00-18:00"]}),
]


def _holiday(value: Any) -> Any:
    hint = "write the date as YYYY-MM-DD, e.g. 2026-12-25"
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise _fail("invalid_date", "not a date", hint) from exc
    raise _fail("invalid_date", "not a date", hint)


HolidayDate = Annotated[
    date,
    BeforeValidator(_holiday),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2026-12-25"]}),
]


def _template_name(value: str) -> str:
    if not _TEMPLATE_NAME.match(value):
        raise _fail(
            "invalid_template_name",
            "not a WhatsApp template name",
            "use the name exactly as approved in WhatsApp Manager: lower-case letters, digits and '_'",
        )
    return value


TemplateName = Annotated[
    str,
    AfterValidator(_template_name),
    WithJsonSchema({"type": "string", "pattern": _TEMPLATE_NAME_PATTERN, "examples": ["recordatorio_pago"]}),
]


def _template_language(value: str) -> str:
    if not _TEMPLATE_LANGUAGE.match(value):
        raise _fail(
            "invalid_template_language",
            "not a WhatsApp template language code",
            "use Meta's codes, e.g. 'es', 'es_MX', 'es_AR', 'en_US'",
        )
    return value


TemplateLanguage = Annotated[
    str,
    AfterValidator(_template_language),
    WithJsonSchema({"type": "string", "pattern": _TEMPLATE_LANGUAGE_PATTERN, "examples": ["es_MX"]}),
]

Proficiency = Annotated[int, Field(ge=1, le=10)]
"""A skill level from 1 (beginner) to 10 (expert)."""
