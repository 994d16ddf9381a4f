"""Keep a reply's new text apart from the quoted history and the signature (plain text).

**Quoted history** (``quoted``):

* an Outlook/Exchange separator — ``-----Original Message-----``, ``-----Mensaje original-----``
  (any dash count), or a header block: a line ``De:``/``From:`` followed within four lines by two
  of ``Enviado:``/``Sent:``/``Fecha:``/``Date:``, ``Para:``/``To:``, ``Asunto:``/``Subject:``
  (optionally after a line of underscores) — takes everything below it;
* an attribution line — ``El <date>, <name> escribió:`` / ``On <date>, <name> wrote:`` (and the
  French, Portuguese and Italian forms), possibly wrapped over up to three lines, containing a
  digit (the date) — takes the ``>`` lines after it, or everything below it when those lines are
  not ``>``-prefixed;
* every line starting with ``>`` anywhere (interleaved replies keep their new lines as text).

Forwarded messages (``---------- Forwarded message ---------``) are *not* quoted history: the
customer is showing us something new, so they stay in the text.

**Signature** (``signature``), looked for in the new text only, conservatively:

1. everything after the last ``-- `` line (RFC 3676; ``--`` without the space too);
2. else a trailing mobile footer (``Enviado desde mi iPhone``, ``Sent from my iPhone``,
   ``Obtener Outlook para Android``, ...);
3. else, after a closing line (``Saludos``, ``Un saludo``, ``Atentamente``, ``Cordialmente``,
   ``Best regards``, ``Regards``, ``Thanks``, ...) among the last lines, a short block (1 to 6
   lines, none longer than 80 characters, none asking a question) that looks like a name or
   contact details (a name of capitalised words, a phone number, an email, a web address, a
   ``Tel``/``Cel``/``Móvil`` label).  The closing line itself stays in the text.

When nothing matches, nothing is cut.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["SplitText", "split_reply"]


@dataclass(frozen=True, slots=True)
class SplitText:
    text: str
    quoted: str
    signature: str


_ATTRIBUTION_START = re.compile(r"^\s*(el|on|le|em|il)\s", re.IGNORECASE)
_ATTRIBUTION = re.compile(
    r"^\s*(el|on|le|em|il)\s.{0,300}?(escribió|escribio|wrote|a écrit|a ecrit|escreveu|ha scritto)\s*:\s*$",
    re.IGNORECASE | re.DOTALL,
)
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(original message|mensaje original|message d'origine|mensagem original)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
_FROM_FIELD = re.compile(r"^\s*\**(de|from|von|da)\s*:\**\s+\S", re.IGNORECASE)
_HEADER_FIELDS = (
    re.compile(r"^\s*\**(enviado|sent|fecha|date|enviado el)\s*:", re.IGNORECASE),
    re.compile(r"^\s*\**(para|to|cc)\s*:", re.IGNORECASE),
    re.compile(r"^\s*\**(asunto|subject|objet|assunto|betreff)\s*:", re.IGNORECASE),
)
_SIG_DELIMITER = re.compile(r"^--\s?$")
_MOBILE_FOOTER = re.compile(
    r"^\s*(enviado desde mi .{1,60}|sent from my .{1,60}|enviado desde .{1,40}(outlook|yahoo|correo|mail).*"
    r"|obtener outlook para .{1,30}|get outlook for .{1,30}|sent from (outlook|yahoo mail|mail for windows).*"
    r"|enviado con .{1,40})\s*$",
    re.IGNORECASE,
)
_CLOSINGS = {
    "saludos",
    "saludos cordiales",
    "un saludo",
    "un cordial saludo",
    "muchos saludos",
    "atentamente",
    "cordialmente",
    "gracias",
    "muchas gracias",
    "gracias y saludos",
    "un abrazo",
    "slds",
    "quedo atento",
    "quedo atenta",
    "quedo atento a sus comentarios",
    "quedo atenta a sus comentarios",
    "best regards",
    "kind regards",
    "warm regards",
    "regards",
    "best",
    "thanks",
    "thank you",
    "many thanks",
    "cheers",
    "sincerely",
}
_PHONE = re.compile(r"\+?\d[\d\s().\-]{6,}\d")
_EMAIL_OR_WEB = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+|www\.|https?://", re.IGNORECASE)
_CONTACT_LABEL = re.compile(r"^\s*(tel|tel[ée]fono|cel|celular|m[óo]vil|phone|mobile|whatsapp|ext)\b", re.I)
_NAME_WORD = r"(?:[A-ZÁÉÍÓÚÑÜ][\wáéíóúñü.'-]*|de|del|la|las|los|y|e)"
_NAME = re.compile(rf"^[A-ZÁÉÍÓÚÑÜ][\wáéíóúñü.'-]*(?:\s+{_NAME_WORD}){{0,5}}$")
_MAX_SIGNATURE_LINES = 6


def _fold(text: str) -> str:
    """Lower-case without accents, for matching closings."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _attribution_span(lines: list[str], i: int) -> int | None:
    """Lines (1-3) an attribution starting at ``i`` spans, or None."""
    if not _ATTRIBUTION_START.match(lines[i]):
        return None
    joined = ""
    for span in range(1, 4):
        if i + span > len(lines):
            return None
        joined = f"{joined} {lines[i + span - 1].strip()}" if joined else lines[i].strip()
        if len(joined) > 400:
            return None
        if _ATTRIBUTION.match(joined) and any(c.isdigit() for c in joined):
            return span
    return None


def _is_header_block(lines: list[str], i: int) -> bool:
    if not _FROM_FIELD.match(lines[i]):
        return False
    window = lines[i + 1 : i + 5]
    hits = sum(1 for pattern in _HEADER_FIELDS if any(pattern.match(line) for line in window))
    return hits >= 2


def _separator_at(lines: list[str], i: int) -> bool:
    line = lines[i]
    if _ORIGINAL_MESSAGE.match(line):
        return True
    if _UNDERSCORES.match(line):
        following = next((j for j in range(i + 1, min(i + 3, len(lines))) if lines[j].strip()), None)
        return following is not None and _is_header_block(lines, following)
    return _is_header_block(lines, i)


def _split_quotes(lines: list[str]) -> tuple[list[str], list[str]]:
    new: list[str] = []
    quoted: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if _separator_at(lines, i):
            quoted.extend(lines[i:])
            break
        span = _attribution_span(lines, i)
        if span is not None:
            after = i + span
            nxt = next((j for j in range(after, len(lines)) if lines[j].strip()), None)
            if nxt is None or lines[nxt].startswith(">"):
                quoted.extend(lines[i:after])
                i = after
                continue
            quoted.extend(lines[i:])
            break
        if line.startswith(">"):
            quoted.append(line)
        else:
            new.append(line)
        i += 1
    return new, quoted


def _looks_like_signature(block: list[str]) -> bool:
    content = [line.strip() for line in block if line.strip()]
    if not 1 <= len(content) <= _MAX_SIGNATURE_LINES:
        return False
    if any(len(line) > 80 or line.endswith("?") for line in content):
        return False
    return any(
        _NAME.match(line) or _PHONE.search(line) or _EMAIL_OR_WEB.search(line) or _CONTACT_LABEL.match(line)
        for line in content
    )


def _split_signature(lines: list[str]) -> tuple[list[str], list[str]]:
    for i in range(len(lines) - 1, -1, -1):
        if _SIG_DELIMITER.match(lines[i]):
            return lines[:i], lines[i + 1 :]
    content_idx = [i for i, line in enumerate(lines) if line.strip()]
    if not content_idx:
        return lines, []
    last = content_idx[-1]
    if _MOBILE_FOOTER.match(lines[last]):
        return lines[:last], lines[last:]
    for i in reversed(content_idx[-(_MAX_SIGNATURE_LINES + 1) :]):
        folded = _fold(lines[i].strip()).rstrip(",.!:; ")
        if folded in _CLOSINGS:
            block = lines[i + 1 :]
            if i != content_idx[0] and _looks_like_signature(block):
                return lines[: i + 1], block
            break
    return lines, []


def _join(lines: list[str]) -> str:
    text = "\n".join(line.rstrip() for line in lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def split_reply(text: str) -> SplitText:
    """Split a plain-text body into new text, quoted history and signature (see module doc)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    new, quoted = _split_quotes(lines)
    new, signature = _split_signature(new)
    return SplitText(text=_join(new), quoted=_join(quoted), signature=_join(signature))
