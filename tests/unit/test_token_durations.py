"""Durations as ``--expires-in`` and ``expires_in`` take them, and the lifetimes they lead to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from centralita.schemas.tokens import RotateRequest, TokenCreate, format_duration, parse_duration
from core.errors import InvalidInput
from core.settings import Settings
from storage.tokens import default_expiry, expiry

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_a_duration_is_numbers_with_units(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "12", "h", "12x", "1.5h", "-1h", "12 h", "1d 2h", "P1D", "12hours"])
def test_anything_else_is_refused_saying_what_a_duration_looks_like(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration: a duration is a number and a unit"):
        parse_duration(text)


def test_a_zero_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than 0 seconds"):
        parse_duration("0h0m")


def test_a_duration_too_long_for_a_timedelta_is_refused() -> None:
    with pytest.raises(ValueError, match="too long"):
        parse_duration("99999999999999999d")


@given(st.integers(min_value=1, max_value=10**9))
def test_format_and_parse_round_trip(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


def test_format_picks_the_largest_units() -> None:
    assert format_duration(timedelta(days=9, hours=12, seconds=5)) == "1w2d12h5s"


def test_the_request_models_parse_and_name_expires_in() -> None:
    assert TokenCreate.model_validate({"role": "admin", "expires_in": "12h"}).expires_in == timedelta(
        hours=12
    )
    assert RotateRequest.model_validate({}).expires_in is None
    with pytest.raises(ValidationError) as refused:
        TokenCreate.model_validate({"role": "admin", "expires_in": 3600})
    assert refused.value.errors()[0]["loc"] == ("expires_in",)


def test_each_role_has_its_default_lifetime() -> None:
    settings = Settings()
    assert default_expiry("agent", NOW, settings) == NOW + timedelta(days=30)
    assert default_expiry("supervisor", NOW, settings) == NOW + timedelta(days=30)
    assert default_expiry("admin", NOW, settings) == NOW + timedelta(days=7)
    shorter = settings.model_copy(update={"token_lifetime_admin_s": 3600.0})
    assert default_expiry("admin", NOW, shorter) == NOW + timedelta(hours=1)
    with pytest.raises(ValueError, match="unknown token role"):
        settings.token_lifetime("root")


def test_a_lifetime_past_the_longest_is_refused_naming_the_option() -> None:
    settings = Settings()
    assert expiry(settings, "agent", NOW, timedelta(hours=12), field="--expires-in") == NOW + timedelta(
        hours=12
    )
    assert expiry(settings, "agent", NOW, timedelta(days=366), field="x") == NOW + timedelta(days=366)
    with pytest.raises(InvalidInput, match="at most 366 days") as refused:
        expiry(settings, "agent", NOW, timedelta(days=367), field="--expires-in")
    assert refused.value.field == "--expires-in"
