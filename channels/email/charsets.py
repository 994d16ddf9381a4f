"""Bytes → text for mail bodies and headers whose charset label may be missing, unknown or wrong.

Real mail lies about its charset: Outlook labels windows-1252 text ``iso-8859-1``, old webmail
sends latin-1 bytes labelled ``utf-8``, some relays invent labels (``x-unknown``).  The rule:

1. a single-byte label (ascii, latin-1, windows-1252) over bytes that are valid UTF-8 *with*
   multi-byte sequences is read as UTF-8 (latin-1 text is practically never valid UTF-8);
2. otherwise the declared charset, strictly; ``iso-8859-1``/``us-ascii`` are read as windows-1252
   (a superset for printable text, as browsers do);
3. then UTF-8, then windows-1252, strictly;
4. finally latin-1, which cannot fail.

The result never holds NUL characters or lone surrogates, so it is safe for JSON and PostgreSQL.
"""

from __future__ import annotations

import codecs
import re

__all__ = ["clean_text", "decode_bytes"]

_SINGLE_BYTE = {"ascii", "latin_1", "iso8859_1", "cp1252", "iso8859_15"}
_READ_AS_CP1252 = {"ascii", "latin_1", "iso8859_1"}
_SURROGATES = re.compile("[\ud800-\udfff]")


def _codec_name(label: str | None) -> str | None:
    if not label:
        return None
    try:
        return codecs.lookup(label.strip().strip('"').lower()).name.replace("-", "_")
    except (LookupError, ValueError):
        return None


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Decode ``data`` following the fallback rule in the module docstring; never raises."""
    codec = _codec_name(declared)
    if codec in _SINGLE_BYTE and any(b >= 0x80 for b in data):
        as_utf8 = _strict(data, "utf-8")
        if as_utf8 is not None:
            return clean_text(as_utf8)
    candidates: list[str] = []
    if codec is not None:
        candidates.append("cp1252" if codec in _READ_AS_CP1252 else codec)
    candidates += ["utf-8", "cp1252"]
    for candidate in candidates:
        text = _strict(data, candidate)
        if text is not None:
            return clean_text(text)
    return clean_text(data.decode("latin-1"))


def clean_text(text: str) -> str:
    """Drop NUL characters and turn lone surrogates (undecodable bytes) into U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if _SURROGATES.search(text):
        text = _SURROGATES.sub("\ufffd", text)
    return text
