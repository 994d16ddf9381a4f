"""Normalization: one key per line and per address, whatever form it was written in."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput
from core.events import Address, AddressKind
from identity import (
    email_identifier,
    normalize_address,
    normalize_display_name,
    phone_identifier,
    scoped_identifier,
)

MX_KEY = "phone:+525512345678"
AR_KEY = "phone:+541123456789"
BR_KEY = "phone:+5511987654321"


@pytest.mark.parametrize(
    ("raw", "region", "key"),
    [
        # Mexico: WhatsApp ids carry the 1 after 52; national formats; old 044/045/01 prefixes
        ("+5215512345678", None, MX_KEY),
        ("+525512345678", None, MX_KEY),
        ("+52 1 55 1234 5678", None, MX_KEY),
        ("55 1234 5678", "MX", MX_KEY),
        ("(55) 1234-5678", "MX", MX_KEY),
        ("044 55 1234 5678", "MX", MX_KEY),
        ("045 55 1234 5678", "MX", MX_KEY),
        ("01 55 1234 5678", "MX", MX_KEY),
        # Argentina: the 9 of mobiles in international form and the national 15 prefix
        ("+5491123456789", None, AR_KEY),
        ("+541123456789", None, AR_KEY),
        ("+54 9 11 2345-6789", None, AR_KEY),
        ("011 15 2345-6789", "AR", AR_KEY),
        ("11 15 2345 6789", "AR", AR_KEY),
        ("(011) 15-2345-6789", "AR", AR_KEY),
        # Brazil: the 9th digit, missing in WhatsApp ids of older numbers
        ("+5511987654321", None, BR_KEY),
        ("+551187654321", None, BR_KEY),
        ("+55 11 98765-4321", None, BR_KEY),
        ("(11) 98765-4321", "BR", BR_KEY),
        ("(11) 8765-4321", "BR", BR_KEY),
    ],
)
def test_phone_variants_of_one_line_share_one_key(raw: str, region: str | None, key: str) -> None:
    assert phone_identifier(raw, region).key == key


def test_brazilian_landlines_do_not_gain_a_ninth_digit() -> None:
    assert phone_identifier("+551133334444").key == "phone:+551133334444"


def test_phone_keeps_the_form_it_was_given_for_display() -> None:
    identifier = phone_identifier("+52 1 55 1234 5678")
    assert identifier.value == "+5215512345678"
    assert identifier.kind is AddressKind.PHONE


@pytest.mark.parametrize("raw", ["", "hola", "12345", "+52 55 1234", "ana@example.com", "+1 555 0100 99999"])
def test_what_is_not_a_phone_is_invalid_input(raw: str) -> None:
    with pytest.raises(InvalidInput):
        phone_identifier(raw, "MX")


def test_a_whatsapp_id_without_plus_is_read_as_international() -> None:
    address = Address(kind=AddressKind.PHONE, value="5215512345678")
    assert normalize_address(address, "AR").key == MX_KEY


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("  Ana.Perez@Example.COM ", "ana.perez@example.com"),
        ("<ana+citas@example.com>", "ana+citas@example.com"),
        ("mailto:ANA@example.com", "ana@example.com"),
    ],
)
def test_emails_are_trimmed_and_lower_cased_only(raw: str, value: str) -> None:
    identifier = email_identifier(raw)
    assert (identifier.value, identifier.key) == (value, f"email:{value}")


def test_email_dots_and_plus_tags_are_kept_apart() -> None:
    keys = {
        email_identifier(e).key for e in ("juan.perez@gmail.com", "juanperez@gmail.com", "juan+x@gmail.com")
    }
    assert len(keys) == 3


@pytest.mark.parametrize(
    "raw", ["", "ana", "ana@", "@example.com", "ana@example", "ana@@example.com", "a b@x.com"]
)
def test_invalid_emails_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidInput):
        email_identifier(raw)


def test_channel_scoped_ids_are_keyed_by_their_business_account() -> None:
    one = scoped_identifier(AddressKind.INSTAGRAM_ID, "1784", "ig_account_a")
    other = scoped_identifier(AddressKind.INSTAGRAM_ID, "1784", "ig_account_b")
    assert one.key == "instagram_id:ig_account_a:1784"
    assert one.key != other.key
    assert (
        scoped_identifier(AddressKind.WHATSAPP_BSUID, "MX.abc", "waba_1").key
        == "whatsapp_bsuid:waba_1:MX.abc"
    )


def test_a_channel_scoped_id_without_its_account_is_invalid() -> None:
    with pytest.raises(InvalidInput):
        normalize_address(Address(kind=AddressKind.INSTAGRAM_ID, value="1784"))


@pytest.mark.parametrize(
    ("raw", "folded"),
    [("Ana Pérez", "ana perez"), ("  ANA   PEREZ ", "ana perez"), ("José-Luis Núñez 🌸", "jose luis nunez")],
)
def test_display_names_fold_accents_case_and_symbols(raw: str, folded: str) -> None:
    assert normalize_display_name(raw) == folded


@pytest.mark.parametrize("raw", [None, "", "Ana", "Recepción", "🌸🌸", "A B"])
def test_weak_display_names_are_not_matchable(raw: str | None) -> None:
    assert normalize_display_name(raw) is None
