"""API tokens as the admin API and ``centralita token`` show them, and the durations they take.

A duration is one or more ``<number><unit>`` with the units ``s``, ``m``, ``h``, ``d`` and ``w``:
``90s``, ``15m``, ``12h``, ``30d``, ``2w``, ``1d12h``.  ``parse_duration`` is the one parser (the
``--expires-in`` option and the ``expires_in`` field).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

from centralita.schemas.common import IsoDateTime, RequestBody, ResponseBody
from storage.tokens import Issued, TokenRecord

__all__ = [
    "Duration",
    "IssuedToken",
    "RotateRequest",
    "Token",
    "TokenCreate",
    "TokenList",
    "format_duration",
    "parse_duration",
]

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([wdhms])")
_WHOLE = re.compile(r"(?:\d+[wdhms])+")
DURATION_PATTERN = r"^(?:[0-9]+[wdhms])+$"
_HINT = "a duration is a number and a unit (s, m, h, d, w), e.g. 90s, 15m, 12h, 30d, 2w, 1d12h"


def parse_duration(text: str) -> timedelta:
    """``"12h"`` → 12 hours; a ``ValueError`` saying what a duration looks like otherwise."""
    value = text.strip().lower() if isinstance(text, str) else text
    if not isinstance(value, str) or not _WHOLE.fullmatch(value):
        raise ValueError(f"{text!r} is not a duration: {_HINT}")
    seconds = sum(int(number) * _UNITS[unit] for number, unit in _PART.findall(value))
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a duration: it must be longer than 0 seconds")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


def format_duration(value: timedelta) -> str:
    """The shortest text ``parse_duration`` reads back as ``value`` (whole seconds): ``1d12h``."""
    seconds = int(value.total_seconds())
    if seconds <= 0:
        raise ValueError("a duration is longer than 0 seconds")
    parts = []
    for unit, size in _UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _parsed(value: object) -> object:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a duration is a string: {_HINT}")
    return parse_duration(value)


Duration = Annotated[
    timedelta,
    BeforeValidator(_parsed),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["12h", "30d"]}),
]
"""A duration on the wire: ``12h``, ``30d`` (see ``parse_duration``)."""

Role = Literal["agent", "supervisor", "admin"]
Status = Literal["active", "expired", "revoked"]


class Token(ResponseBody):
    """A token: who it is for and when it lives — never the token itself nor its hash."""

    id: UUID
    workspace: str = Field(description="The workspace's slug.")
    name: str | None
    role: Role
    agent_id: UUID | None
    agent_email: str | None
    created_at: IsoDateTime
    expires_at: IsoDateTime | None = Field(
        description="null: issued before tokens expired; it works until it is revoked."
    )
    last_used_at: IsoDateTime | None = Field(
        description="Recorded at most once a minute per token (CENTRALITA_TOKEN_TOUCH_S)."
    )
    revoked_at: IsoDateTime | None
    status: Status = Field(description="At the time of the answer.")
    kind: Literal["api", "session"] = Field(
        description="api: a bearer token for scripts; session: a browser signed in to the console."
    )

    @classmethod
    def of(cls, record: TokenRecord, now: datetime) -> Token:
        refused = record.refusal(now)
        return cls(
            id=record.id,
            workspace=record.workspace,
            name=record.name,
            role=record.role,  # type: ignore[arg-type]  # a token holds one of the three roles
            agent_id=record.agent_id,
            agent_email=record.agent_email,
            created_at=record.created_at,
            expires_at=record.expires_at,
            last_used_at=record.last_used_at,
            revoked_at=record.revoked_at,
            status="active" if refused is None else refused.value,  # type: ignore[arg-type]
            kind=record.kind,  # type: ignore[arg-type]  # one of the two kinds
        )


class TokenList(ResponseBody):
    items: list[Token] = Field(description="Newest first.")


class IssuedToken(ResponseBody):
    """A token just issued: ``token`` is shown this once (only its SHA-256 is stored)."""

    token: str = Field(description="The bearer token; it cannot be shown again.")
    item: Token
    replaces: UUID | None = Field(default=None, description="Rotation: the token revoked in its place.")

    @classmethod
    def of(cls, issued: Issued, now: datetime, replaces: UUID | None = None) -> IssuedToken:
        return cls(token=issued.token, item=Token.of(issued.record, now), replaces=replaces)


class TokenCreate(RequestBody):
    role: Role
    agent_id: UUID | None = Field(default=None, description="The agent (required for role agent).")
    name: str | None = Field(default=None, max_length=200, description="A label: who or what uses it.")
    expires_in: Duration | None = Field(
        default=None,
        description="Its lifetime (e.g. 12h, 30d); by default the role's "
        "(CENTRALITA_TOKEN_LIFETIME_<ROLE>_S).",
    )


class RotateRequest(RequestBody):
    expires_in: Duration | None = Field(
        default=None, description="The new token's lifetime; by default its role's."
    )
