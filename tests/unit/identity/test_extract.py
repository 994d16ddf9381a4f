"""Identifiers customers state: found when stated, ignored when they are order numbers, dates or money."""

from __future__ import annotations

import pytest

from identity import extract_signature, extract_stated

MX = "phone:+525512345678"


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("mi correo es Ana.Perez@Gmail.com.", ["email:ana.perez@gmail.com"]),
        ("My email is ana@example.com, thanks", ["email:ana@example.com"]),
        ("mi número es 55 1234 5678", [MX]),
        ("Mi cel: 044 55 1234 5678", [MX]),
        ("escríbeme al whats +52 1 55 1234 5678", [MX]),
        ("my number is (55) 1234-5678", [MX]),
        ("5512345678", [MX]),
        ("Hola, es 55-1234-5678", [MX]),
        ("pedido 12345, mi cel 55 1234 5678", [MX]),
        ("Escríbeme a ana@x.com o al +5215512345678", ["email:ana@x.com", MX]),
    ],
)
def test_stated_identifiers_are_found(text: str, keys: list[str]) -> None:
    assert [i.key for i in extract_stated(text, "MX")] == keys


@pytest.mark.parametrize(
    "text",
    [
        "Mi pedido es el 5512345678",
        "mi número de pedido es 5512345678",
        "order #5512345678",
        "folio 2024-0012345",
        "el total es $1,234,567.00",
        "te deposito 5512345678 pesos hoy",
        "pagué 5512345678 MXN",
        "nos vemos el 12/05/2024 a las 10:30",
        "tarjeta 4152 3137 1234 5678",
        "mi número de cliente es 5512345678",
        "CP 06700, CDMX, 5 de mayo 1234",
        "tengo 2 citas, la de las 5512345678 no sé",
        "factura: 5512345678",
    ],
)
def test_numbers_that_are_not_personal_phones_are_ignored(text: str) -> None:
    assert [i.key for i in extract_stated(text, "MX")] == []


def test_national_formats_follow_the_campaign_country() -> None:
    assert [i.key for i in extract_stated("mi cel es 11 15 2345 6789", "AR")] == ["phone:+541123456789"]
    assert [i.key for i in extract_stated("meu número é (11) 8765-4321", "BR")] == ["phone:+5511987654321"]


def test_a_signature_yields_its_phones_and_addresses_but_not_its_fax() -> None:
    signature = "Dra. Ana Pérez\nClínica Sur\nTel: 55 1234 5678\nFax: 55 8765 4321\nana.perez@clinicasur.mx"
    assert [i.key for i in extract_signature(signature, "MX")] == [MX, "email:ana.perez@clinicasur.mx"]


def test_empty_text_states_nothing() -> None:
    assert extract_stated(None, "MX") == ()
    assert extract_signature("", "MX") == ()
