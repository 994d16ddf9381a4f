"""Identifiers a customer states in a message or carries in an email signature.

What comes out of here is *weak* evidence: it only ever becomes a suggestion an agent confirms.
Still, every false positive costs an agent's attention, so phones are read carefully:

* a candidate is a run of digits with phone separators, 8–15 digits, not glued to letters,
  other digits, ``$`` or a date/time separator;
* it must normalize to a valid number of its region (the campaign's country for national
  formats);
* in message text the nearest cue word before it decides: a phone cue ("mi número", "cel",
  "whatsapp", "call me", …) accepts, a non-personal cue ("pedido", "folio", "factura",
  "order", "tarjeta", "total", "$", …) rejects, and so does an amount or code word right after
  it ("5512345678 pesos"); with no cue the number is accepted only in
  international format (``+52…``) or when it is practically the whole message (the customer
  answering "¿a qué número te llamamos?");
* in a signature no phone cue is needed, but non-personal cues (``Fax``, ``RFC``, ``CUIT``, …)
  still reject.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from core.errors import InvalidInput
from identity.normalize import Identifier, email_identifier, phone_identifier

__all__ = ["extract_emails", "extract_phones", "extract_signature", "extract_stated"]

_EMAIL_IN_TEXT = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}"
)
# An optional +, a digit, then digits and phone separators, ending on a digit.  Not preceded by a
# word character, currency sign or separator that would make it part of something else.
_PHONE_CANDIDATE = re.compile(r"(?<![\w$€£+/.,-])\+?\(?\d[\d\s().-]{6,24}\d(?![\w/:]|[.,]\d)")
_CLAUSE_BREAK = re.compile(r"[.!?;\n]")

_POSITIVE = frozenset(
    {
        "numero",
        "num",
        "nro",
        "cel",
        "celular",
        "movil",
        "telefono",
        "tel",
        "tels",
        "fono",
        "whatsapp",
        "whats",
        "wa",
        "wsp",
        "wpp",
        "llamame",
        "marcame",
        "llamarme",
        "contactarme",
        "localizarme",
        "escribeme",
        "phone",
        "mobile",
        "cell",
        "number",
        "call",
        "text",
        "reach",
    }
)
_NEGATIVE = frozenset(
    {
        "pedido",
        "orden",
        "order",
        "folio",
        "factura",
        "invoice",
        "ticket",
        "referencia",
        "reference",
        "ref",
        "guia",
        "tracking",
        "rastreo",
        "cuenta",
        "account",
        "tarjeta",
        "card",
        "clabe",
        "cbu",
        "cvu",
        "cuit",
        "cuil",
        "dni",
        "rfc",
        "curp",
        "cpf",
        "cnpj",
        "rg",
        "nss",
        "expediente",
        "poliza",
        "contrato",
        "monto",
        "total",
        "importe",
        "pago",
        "pague",
        "pagar",
        "deposito",
        "depositar",
        "transferencia",
        "transferi",
        "abono",
        "saldo",
        "adeudo",
        "deuda",
        "precio",
        "mxn",
        "ars",
        "brl",
        "usd",
        "pesos",
        "reales",
        "fax",
        "cliente",
        "customer",
        "id",
        "codigo",
        "code",
        "cp",
        "zip",
        "serie",
        "serial",
        "matricula",
        "afiliado",
        "credencial",
    }
)
_WORD = re.compile(r"[a-z]+|\$")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _nearest_cue(before: str) -> bool | None:
    """True for a phone cue, False for a non-personal cue, None for no cue in the clause."""
    clause = _CLAUSE_BREAK.split(before)[-1]
    words = _WORD.findall(_fold(clause))
    for word in reversed(words[-8:]):
        if word == "$" or word in _NEGATIVE:
            return False
        if word in _POSITIVE:
            return True
    return None


def _followed_by_negative(after: str) -> bool:
    """An amount or code reads "5512345678 pesos" / "5512345678 MXN": check the next words."""
    clause = _CLAUSE_BREAK.split(after)[0]
    return any(word == "$" or word in _NEGATIVE for word in _WORD.findall(_fold(clause))[:2])


@dataclass(frozen=True, slots=True)
class _Candidate:
    start: int
    end: int
    identifier: Identifier
    international: bool


def _phone_candidates(text: str, default_region: str | None) -> list[_Candidate]:
    found: list[_Candidate] = []
    for match in _PHONE_CANDIDATE.finditer(text):
        raw = match.group(0).rstrip(" .-(")
        digits = sum(ch.isdigit() for ch in raw)
        if not 8 <= digits <= 15:
            continue
        try:
            identifier = phone_identifier(raw, default_region, strict=True)
        except InvalidInput:
            continue
        found.append(_Candidate(match.start(), match.start() + len(raw), identifier, raw.startswith("+")))
    return found


def _unique(identifiers: Iterable[Identifier]) -> tuple[Identifier, ...]:
    seen: dict[str, Identifier] = {}
    for identifier in identifiers:
        seen.setdefault(identifier.key, identifier)
    return tuple(seen.values())


def _mask_emails(text: str) -> str:
    return _EMAIL_IN_TEXT.sub(lambda m: " " * len(m.group(0)), text)


def extract_emails(text: str | None) -> tuple[Identifier, ...]:
    """Every email address written in ``text`` (normalized, first occurrence order)."""
    if not text:
        return ()
    found: list[Identifier] = []
    for match in _EMAIL_IN_TEXT.finditer(text):
        try:
            found.append(email_identifier(match.group(0).rstrip(".")))
        except InvalidInput:
            continue
    return _unique(found)


def extract_phones(text: str | None, default_region: str | None) -> tuple[Identifier, ...]:
    """Phones a customer states in a message, with the cue rules of this module."""
    if not text:
        return ()
    masked = _mask_emails(text)
    accepted: list[Identifier] = []
    for candidate in _phone_candidates(masked, default_region):
        cue = _nearest_cue(masked[: candidate.start])
        if cue is False or _followed_by_negative(masked[candidate.end :]):
            continue
        if cue is None and not candidate.international:
            rest = masked[: candidate.start] + masked[candidate.end :]
            if any(ch.isdigit() for ch in rest) or len(_WORD.findall(_fold(rest))) > 3:
                continue
        accepted.append(candidate.identifier)
    return _unique(accepted)


def extract_signature(signature: str | None, default_region: str | None) -> tuple[Identifier, ...]:
    """Phones and email addresses in an email signature block."""
    if not signature:
        return ()
    masked = _mask_emails(signature)
    phones = [
        c.identifier
        for c in _phone_candidates(masked, default_region)
        if _nearest_cue(masked[: c.start].split("\n")[-1]) is not False
    ]
    return _unique([*phones, *extract_emails(signature)])


def extract_stated(text: str | None, default_region: str | None) -> tuple[Identifier, ...]:
    """Emails and phones stated in message text."""
    return _unique([*extract_emails(text), *extract_phones(text, default_region)])
