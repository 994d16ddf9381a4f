"""Customers' media: the ports (where bytes are kept, who fetches them) and the pure rules.

A customer's image, voice note or document arrives as a reference — WhatsApp's media id (a
short-lived URL behind it), Instagram's CDN URL — that expires within days.  The engine fetches
it while it is valid (``MediaFetcher``, implemented by the channel's adapter), checks it
(``check_media``: size, declared type, and the bytes' own signature for the types that have one)
and keeps it behind ``MediaStore`` (a directory by default).  Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from core.channel import ChannelAccount, OutboundMedia
from core.events import Attachment, AttachmentKind

__all__ = [
    "ALLOWED_TYPES",
    "AcceptedUpload",
    "FetchedMedia",
    "MediaFetcher",
    "MediaRefused",
    "MediaStore",
    "MediaTooLarge",
    "MediaTypeRefused",
    "check_upload",
    "checked_media",
    "sniff_type",
]

# The types a contact center receives from WhatsApp and Instagram (Meta's supported media),
# and the documents customers send: anything else is refused, never stored or served.
ALLOWED_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "audio/ogg",
        "audio/mpeg",
        "audio/mp4",
        "audio/aac",
        "audio/amr",
        "video/mp4",
        "video/3gpp",
        "application/pdf",
        "text/plain",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    }
)

# Leading bytes of the types that have a signature: a file that claims one and is not refused.
_SIGNATURES: tuple[tuple[str, bytes, int], ...] = (
    ("image/jpeg", b"\xff\xd8\xff", 0),
    ("image/png", b"\x89PNG\r\n\x1a\n", 0),
    ("image/gif", b"GIF8", 0),
    ("image/webp", b"WEBP", 8),
    ("audio/ogg", b"OggS", 0),
    ("application/pdf", b"%PDF-", 0),
)


class MediaRefused(Exception):
    """The media cannot be kept (too big, a type not allowed, bytes that are not what they claim)."""


class MediaTooLarge(MediaRefused):
    """More bytes than the engine or the channel takes."""


class MediaTypeRefused(MediaRefused):
    """A type the channel does not send, or bytes that are not the type they claim."""


@dataclass(frozen=True, slots=True)
class FetchedMedia:
    data: bytes
    mime_type: str | None
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class CheckedMedia:
    data: bytes
    mime_type: str
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)


def sniff_type(data: bytes) -> str | None:
    """The type the bytes' signature says, for the types that have one."""
    for kind, magic, offset in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return kind
    return None


def checked_media(fetched: FetchedMedia, *, max_bytes: int) -> CheckedMedia:
    """The media as kept, with its SHA-256; ``MediaRefused`` saying why otherwise."""
    if not fetched.data:
        raise MediaRefused("empty file")
    if len(fetched.data) > max_bytes:
        raise MediaRefused(f"{len(fetched.data)} bytes, more than the {max_bytes} allowed")
    declared = (fetched.mime_type or "").split(";", 1)[0].strip().lower()
    sniffed = sniff_type(fetched.data)
    kind = declared or sniffed or ""
    if kind not in ALLOWED_TYPES:
        raise MediaRefused(f"type {kind or 'unknown'!r} is not accepted")
    claims_signature = any(kind == k for k, _, _ in _SIGNATURES)
    if claims_signature and sniffed != kind:
        raise MediaRefused(f"the bytes are not {kind} (they look like {sniffed or 'something else'})")
    return CheckedMedia(fetched.data, kind, hashlib.sha256(fetched.data).hexdigest())


@dataclass(frozen=True, slots=True)
class AcceptedUpload:
    """An agent's file as the channel will send it."""

    kind: AttachmentKind
    mime_type: str
    sha256: str
    size: int
    filename: str | None


_GENERIC = frozenset({"", "application/octet-stream", "binary/octet-stream"})
# The type a file name says, for the accepted types (when a browser sends no better one).
_EXTENSIONS = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "amr": "audio/amr",
    "mp4": "video/mp4",
    "3gp": "video/3gpp",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}


def _claimed_type(declared: str | None, filename: str | None) -> str:
    kind = (declared or "").split(";", 1)[0].strip().lower()
    if kind in _GENERIC and filename:
        kind = _EXTENSIONS.get(filename.rpartition(".")[2].lower(), "") if "." in filename else ""
    return "" if kind in _GENERIC else kind


def check_upload(
    data: bytes,
    *,
    declared: str | None,
    filename: str | None,
    accepted: Sequence[OutboundMedia],
    max_bytes: int,
    channel_name: str,
    refusal: str = "",
) -> AcceptedUpload:
    """An agent's upload checked against what the channel sends (``Capabilities.outbound_media``)
    and the engine's own limit.

    The type is the bytes' own signature when they have one (a PNG named ``.jpg`` is a PNG), else
    the declared type, else the file name's; a file that claims a type with a signature and does
    not carry it is refused.  Raises ``MediaRefused`` (empty), ``MediaTypeRefused`` or
    ``MediaTooLarge``, each saying why in words an agent reads."""
    if not data:
        raise MediaRefused("the file is empty")
    if not accepted:
        raise MediaTypeRefused(refusal or f"{channel_name} does not send uploaded files")
    claimed = _claimed_type(declared, filename)
    sniffed = sniff_type(data)
    if sniffed is None and any(claimed == k for k, _, _ in _SIGNATURES):
        raise MediaTypeRefused(f"the bytes are not {claimed}")
    kind = sniffed or claimed
    rule = next((r for r in accepted if kind in r.mime_types), None) if kind in ALLOWED_TYPES else None
    if rule is None:
        types = sorted({t for r in accepted for t in r.mime_types})
        raise MediaTypeRefused(
            f"{channel_name} does not send {kind or 'files of an unknown type'}; it sends {', '.join(types)}"
        )
    limit = min(max_bytes, rule.max_bytes)
    if len(data) > limit:
        raise MediaTooLarge(
            f"the file has {len(data)} bytes; {channel_name} takes a {kind} of at most {limit} bytes"
        )
    return AcceptedUpload(rule.kind, kind, hashlib.sha256(data).hexdigest(), len(data), filename)


@runtime_checkable
class MediaStore(Protocol):
    """Where media bytes live, by key.  ``get`` of a missing key is ``None``."""

    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def delete(self, key: str) -> None: ...


@runtime_checkable
class MediaFetcher(Protocol):
    """A channel adapter that can fetch its customers' attachments (while their links are valid).
    Raises ``TransientChannelError`` to be tried again later, ``PermanentChannelError`` when the
    media is gone for good."""

    async def fetch_media(self, attachment: Attachment, account: ChannelAccount) -> FetchedMedia: ...
