"""Text a database can store: what a provider may send and PostgreSQL (or UTF-8) cannot hold.

Two things in a Python ``str`` cannot be stored: U+0000 (PostgreSQL refuses NUL in ``text`` and
``\\u0000`` in ``jsonb``) and lone surrogates U+D800–U+DFFF (JSON allows ``"\\ud83d"`` alone; it
is not valid UTF-8).  ``storable_text`` removes every NUL — it is invisible, so the text reads as
the customer saw it — and turns every lone surrogate into U+FFFD; a surrogate pair left split
(``"\\ud83d\\ude00"``) is joined into its character.  ``storable`` does the same to every string
inside a value (mappings, sequences, frozen pydantic models such as the normalized events),
returning the very same object when there was nothing to clean.  Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["storable", "storable_text"]

T = TypeVar("T")

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` without NUL and with U+FFFD for each lone surrogate (``text`` itself if clean)."""
    if _UNSTORABLE.search(text) is None:
        return text
    if "\ud800" <= max(text):  # some surrogate: pair what pairs, replace the rest
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text.replace("\x00", "")


def storable(value: T) -> T:
    """``value`` with every string in it made storable; the same object when nothing changed."""
    return _clean(value)  # type: ignore[no-any-return]


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, BaseModel):
        changes = {}
        for name in type(value).model_fields:
            current = getattr(value, name)
            cleaned = _clean(current)
            if cleaned is not current:
                changes[name] = cleaned
        return value.model_copy(update=changes) if changes else value
    if isinstance(value, Mapping):
        items = [(_clean(k), _clean(v)) for k, v in value.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(items, value.items(), strict=True)):
            return value
        return type(value)(items) if isinstance(value, dict) else dict(items)
    if isinstance(value, list | tuple | frozenset | set):
        cleaned_items = [_clean(item) for item in value]
        if all(c is o for c, o in zip(cleaned_items, value, strict=True)):
            return value
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return type(value)(*cleaned_items)  # a named tuple
        return type(value)(cleaned_items)
    return value
