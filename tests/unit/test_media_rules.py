"""What media the engine keeps: allowed types whose bytes are what they claim, within the size."""

from __future__ import annotations

import hashlib

import pytest

from channels.whatsapp.adapter import CAPABILITIES
from core.events import AttachmentKind
from core.media import (
    FetchedMedia,
    MediaRefused,
    MediaTooLarge,
    MediaTypeRefused,
    check_upload,
    checked_media,
    sniff_type,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
OGG = b"OggS" + b"\x00" * 32
PDF = b"%PDF-1.7\n" + b"\x00" * 32


def test_an_image_is_kept_with_its_type_and_sha256() -> None:
    kept = checked_media(FetchedMedia(JPEG, "image/jpeg"), max_bytes=1000)
    assert (kept.mime_type, kept.size, kept.sha256) == (
        "image/jpeg",
        len(JPEG),
        hashlib.sha256(JPEG).hexdigest(),
    )


def test_a_voice_note_with_codec_parameters_is_an_ogg() -> None:
    assert checked_media(FetchedMedia(OGG, "audio/ogg; codecs=opus"), max_bytes=1000).mime_type == "audio/ogg"


def test_an_undeclared_type_is_read_from_the_bytes() -> None:
    assert checked_media(FetchedMedia(PDF, None), max_bytes=1000).mime_type == "application/pdf"


def test_bytes_that_are_not_what_they_claim_are_refused() -> None:
    with pytest.raises(MediaRefused, match="not image/png"):
        checked_media(FetchedMedia(JPEG, "image/png"), max_bytes=1000)


@pytest.mark.parametrize("kind", ["text/html", "application/x-msdownload", "image/svg+xml", None])
def test_types_a_browser_could_run_or_nobody_needs_are_refused(kind: str | None) -> None:
    with pytest.raises(MediaRefused, match="not accepted"):
        checked_media(FetchedMedia(b"<svg onload=alert(1)>", kind), max_bytes=1000)


def test_too_big_and_empty_are_refused() -> None:
    with pytest.raises(MediaRefused, match="more than the 10 allowed"):
        checked_media(FetchedMedia(PNG, "image/png"), max_bytes=10)
    with pytest.raises(MediaRefused, match="empty"):
        checked_media(FetchedMedia(b"", "image/png"), max_bytes=10)


def test_signatures() -> None:
    assert [sniff_type(d) for d in (PNG, JPEG, OGG, PDF, b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"hello")] == [
        "image/png",
        "image/jpeg",
        "audio/ogg",
        "application/pdf",
        "image/webp",
        None,
    ]


# -- an agent's upload, checked against what the channel sends -------------------------------

WHATSAPP = CAPABILITIES.outbound_media


def test_an_upload_takes_the_kind_the_channel_sends_it_as() -> None:
    accepted = check_upload(
        PDF,
        declared="application/pdf",
        filename="estado.pdf",
        accepted=WHATSAPP,
        max_bytes=10**6,
        channel_name="WhatsApp",
    )
    assert (accepted.kind, accepted.mime_type, accepted.size) == (
        AttachmentKind.DOCUMENT,
        "application/pdf",
        len(PDF),
    )


def test_a_png_named_jpg_is_a_png_and_a_generic_type_is_read_from_the_name() -> None:
    png = check_upload(
        PNG,
        declared="image/jpeg",
        filename="foto.jpg",
        accepted=WHATSAPP,
        max_bytes=10**6,
        channel_name="WhatsApp",
    )
    docx = check_upload(
        b"PK\x03\x04" + b"\x00" * 20,
        declared="application/octet-stream",
        filename="Carta.DOCX",
        accepted=WHATSAPP,
        max_bytes=10**6,
        channel_name="WhatsApp",
    )
    assert (png.mime_type, docx.kind) == ("image/png", AttachmentKind.DOCUMENT)


def test_an_upload_is_refused_by_type_by_claim_by_size_and_by_a_channel_that_takes_none() -> None:
    with pytest.raises(MediaTypeRefused, match="does not send image/gif"):
        check_upload(
            b"GIF89a" + b"\x00" * 9,
            declared="image/gif",
            filename=None,
            accepted=WHATSAPP,
            max_bytes=10**6,
            channel_name="WhatsApp",
        )
    with pytest.raises(MediaTypeRefused, match="the bytes are not image/png"):
        check_upload(
            b"<html>",
            declared="image/png",
            filename="x.png",
            accepted=WHATSAPP,
            max_bytes=10**6,
            channel_name="WhatsApp",
        )
    with pytest.raises(MediaTooLarge, match="at most 5242880 bytes"):
        check_upload(
            PNG + b"\x00" * 5 * 1024 * 1024,
            declared="image/png",
            filename=None,
            accepted=WHATSAPP,
            max_bytes=10**8,
            channel_name="WhatsApp",
        )
    with pytest.raises(MediaTypeRefused, match="public URL"):
        check_upload(
            PNG,
            declared="image/png",
            filename=None,
            accepted=(),
            max_bytes=10**6,
            channel_name="Instagram",
            refusal="only from a public URL",
        )
