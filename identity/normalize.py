"""Identifiers and how raw addresses become them.

An :class:`Identifier` has a display ``value`` (normalized, as the channel or the customer gave
it) and a matching ``key``: two identifiers with the same key are the same node of the identity
graph.  Keys carry their kind (``phone:+525512345678``, ``email:ana@example.com``) and, for
channel-scoped ids, the business account they came through
(``instagram_id:<ig_account>:<igsid>``), because an Instagram-scoped id or a WhatsApp
business-scoped user id means nothing outside that account.

Phones
    E.164 through ``phonenumbers``.  The *phone key* folds the forms WhatsApp ids carry into
    the line's one number:

    * Mexico: ``+52 1 55 1234 5678`` (the ``1`` mobile prefix WhatsApp ids still carry) →
      ``+52 55 1234 5678``; national ``044``/``045``/``01`` prefixes are dropped.
    * Argentina: ``+54 9 11 2345 6789`` (the ``9`` of mobiles in international form, and the
      national ``15`` prefix that ``phonenumbers`` already turns into it) → ``+54 11 2345 6789``.
      A 10-digit Argentine number belongs to one line whether dialled as mobile or not.
    * Brazil: the 8-digit mobile form ``+55 DD XXXX-XXXX`` that WhatsApp ids of older numbers
      carry → ``+55 DD 9XXXX-XXXX`` (only for subscriber numbers starting 6–9, the mobile
      ranges; landlines start 2–5 and are left alone).

    The display ``value`` keeps the E.164 form as given (``+5215512345678`` for a WhatsApp id),
    so a reply can go to exactly the address the channel knows.

Emails
    Trimmed and lower-cased, nothing else.  Dots and ``+tags`` are *not* stripped: ignoring dots
    is a Gmail rule that other domains (and Google Workspace domains we cannot recognise) do not
    follow, and plus-addressing is a per-provider convention, so folding them would merge
    ``juan.perez@empresa.mx`` with a different ``juanperez@empresa.mx``.  A missed merge costs a
    suggestion; a wrong merge shows one person's history to another.  The local part is
    lower-cased although RFC 5321 allows it to be case-sensitive, because no mainstream provider
    treats it so and customers type it in any case.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers

from core.errors import InvalidInput
from core.events import Address, AddressKind

__all__ = [
    "Identifier",
    "email_identifier",
    "normalize_address",
    "normalize_display_name",
    "phone_identifier",
    "phone_key",
    "scoped_identifier",
]

_CHANNEL_SCOPED = frozenset({AddressKind.INSTAGRAM_ID, AddressKind.WHATSAPP_BSUID, AddressKind.EXTERNAL})


@dataclass(frozen=True, slots=True)
class Identifier:
    """One way to reach a person: a node of the identity graph once seen."""

    kind: AddressKind
    value: str  # normalized display form (E.164 as given, lower-cased email, the channel's id)
    key: str  # canonical matching key, unique per workspace
    scope: str | None = None  # business account a channel-scoped id belongs to

    def as_address(self, display_name: str | None = None) -> Address:
        return Address(kind=self.kind, value=self.value, scope=self.scope, display_name=display_name)


# ---------------------------------------------------------------------------------------------- phones

_NON_DIGIT = re.compile(r"\D")
_PHONE_CHARS = re.compile(r"^\+?[\d\s().\-/]+$")


def phone_key(number: phonenumbers.PhoneNumber) -> str:
    """The canonical E.164 of a line, folding the WhatsApp id variants (MX, AR, BR)."""
    cc = number.country_code
    nsn = phonenumbers.national_significant_number(number)
    if cc == 52 and len(nsn) == 11 and nsn.startswith("1"):
        nsn = nsn[1:]
    elif cc == 54 and len(nsn) == 11 and nsn.startswith("9"):
        nsn = nsn[1:]
    elif cc == 55 and len(nsn) == 10 and nsn[2] in "6789":
        nsn = f"{nsn[:2]}9{nsn[2:]}"
    return f"+{cc}{nsn}"


def _strip_mx_national_prefix(digits: str) -> str:
    # 044/045 (mobile from landline / long distance) and 01 (long distance), abolished in 2019
    # but still written by customers.
    if len(digits) == 13 and digits[:3] in ("044", "045"):
        return digits[3:]
    if len(digits) == 12 and digits.startswith("01"):
        return digits[2:]
    return digits


def phone_identifier(raw: str, default_region: str | None = None, *, strict: bool = True) -> Identifier:
    """Normalize a phone number.

    ``default_region`` (ISO 3166 alpha-2, the campaign's country) is used for numbers written in
    national format.  ``strict`` requires the canonical number to be a valid number for its
    region (use it for numbers read from text); channel-supplied ids are only required to be
    possible, because the provider already knows the line exists.  Raises ``InvalidInput``.
    """
    text = raw.strip()
    if not text or not _PHONE_CHARS.match(text):
        raise InvalidInput("not a phone number", field="phone")
    digits = _NON_DIGIT.sub("", text)
    if not text.startswith("+") and default_region is not None and default_region.upper() == "MX":
        digits = _strip_mx_national_prefix(digits)
        text = digits
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput("not a phone number", field="phone") from exc
    key_e164 = phone_key(number)
    cc = number.country_code
    canonical = phonenumbers.PhoneNumber(country_code=cc, national_number=int(key_e164[len(str(cc)) + 1 :]))
    ok = phonenumbers.is_valid_number(canonical) if strict else phonenumbers.is_possible_number(canonical)
    if not ok:
        raise InvalidInput("not a valid phone number", field="phone")
    value = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Identifier(kind=AddressKind.PHONE, value=value, key=f"phone:{key_e164}")


# ---------------------------------------------------------------------------------------------- emails

_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_EMAIL = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[a-z]{{2,63}}$")


def email_identifier(raw: str) -> Identifier:
    """Trim and lower-case an email address (``mailto:`` and ``<…>`` tolerated).  ``InvalidInput``
    when it is not an address."""
    text = raw.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    value = text.lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise InvalidInput("not a valid email address", field="email")
    return Identifier(kind=AddressKind.EMAIL, value=value, key=f"email:{value}")


# ---------------------------------------------------------------------------------------------- scoped ids


def scoped_identifier(kind: AddressKind, value: str, scope: str | None) -> Identifier:
    """A channel-scoped id: Instagram-scoped id, WhatsApp business-scoped user id, or another
    channel's own id.  The key includes the business account (``scope``) it came through."""
    if kind not in _CHANNEL_SCOPED:
        raise InvalidInput(f"{kind} is not a channel-scoped identifier", field="kind")
    v = value.strip()
    s = (scope or "").strip()
    if not v:
        raise InvalidInput("empty identifier", field="value")
    if not s and kind is not AddressKind.EXTERNAL:
        raise InvalidInput(f"{kind} needs the business account it is scoped to", field="scope")
    return Identifier(kind=kind, value=v, key=f"{kind.value}:{s}:{v}", scope=s or None)


def normalize_address(address: Address, default_region: str | None = None) -> Identifier:
    """The identifier for an address as a channel delivered it.

    A phone without ``+`` made of digits only is read as an international WhatsApp id
    (``5215512345678``), not as a national number.
    """
    if address.kind is AddressKind.PHONE:
        raw = address.value.strip()
        if raw.isdigit() and len(raw) > 10:
            raw = f"+{raw}"
        return phone_identifier(raw, default_region, strict=False)
    if address.kind is AddressKind.EMAIL:
        return email_identifier(address.value)
    return scoped_identifier(address.kind, address.value, address.scope)


# ---------------------------------------------------------------------------------------------- names

_GENERIC_NAMES = frozenset(
    {
        "info",
        "informacion",
        "contacto",
        "contact",
        "recepcion",
        "reception",
        "admin",
        "administracion",
        "ventas",
        "sales",
        "soporte",
        "support",
        "whatsapp user",
        "usuario",
        "cliente",
        "customer",
        "no reply",
        "noreply",
    }
)


def normalize_display_name(name: str | None) -> str | None:
    """A display name folded for matching (accents and case removed, letters and spaces only),
    or ``None`` when it is too weak to suggest anything: fewer than two words or a generic
    label such as "Recepción"."""
    if not name:
        return None
    decomposed = unicodedata.normalize("NFKD", name)
    letters = "".join(
        ch if ch.isalpha() else " " for ch in decomposed if not unicodedata.combining(ch)
    ).casefold()
    words = letters.split()
    folded = " ".join(words)
    if len(words) < 2 or folded in _GENERIC_NAMES or any(len(w) < 2 for w in words[:2]):
        return None
    return folded
