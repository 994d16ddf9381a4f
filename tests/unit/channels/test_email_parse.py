"""Raw mail → InboundMessage: one parse rule per test, on real-client fixtures and small mails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from channels.email.parse import parse_email
from channels.email.testing import fixture
from core.errors import InvalidInput
from core.events import AttachmentKind, InboundMessage
from core.normalized import to_normalized

RECEIVED_AT = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def parse(raw: bytes, received_at: datetime = RECEIVED_AT) -> InboundMessage:
    events = parse_email(raw, received_at=received_at)
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, InboundMessage)
    return event


def parse_fixture(name: str) -> InboundMessage:
    return parse(fixture(name))


def mail(
    *headers: str, body: str = "Hola, tengo una pregunta.\n", charset: str = "utf-8", encode_as: str = ""
) -> bytes:
    base = {
        "From": "Maria Lopez <maria@correo.example>",
        "To": "admisiones@universidad.example",
        "Subject": "Consulta",
        "Date": "Tue, 3 Mar 2026 10:00:00 -0600",
        "Message-ID": "<consulta-1@correo.example>",
    }
    for header in headers:
        name = header.split(":", 1)[0]
        base.pop(next((k for k in base if k.lower() == name.lower()), ""), None)
    lines = [*headers, *(f"{k}: {v}" for k, v in base.items())]
    lines.append(f"Content-Type: text/plain; charset={charset}")
    head = "\r\n".join(h for h in lines if not h.endswith(": <drop>"))
    return head.encode() + b"\r\n\r\n" + body.replace("\n", "\r\n").encode(encode_as or charset)


# -- sender, mailbox, subject -------------------------------------------------------------------


def test_the_sender_is_the_lower_cased_from_address_with_its_decoded_name() -> None:
    event = parse_fixture("gmail_reply_alternative")
    assert event.sender.value == "maria.lopez@correo.example"
    assert event.sender.display_name == "María López García"


def test_rfc2047_encoded_subject_and_names_are_decoded() -> None:
    event = parse_fixture("encoded_headers_base64")
    assert event.subject == "Cotización de crédito automotriz"  # =?ISO-8859-1?Q?...?=
    assert event.sender.display_name == "José Ángel Muñoz"  # =?UTF-8?B?...?=


def test_the_mailbox_is_the_first_delivered_to() -> None:
    raw = mail(
        "Delivered-To: Cobranza@Financiera.example",
        "Delivered-To: buzon-interno@mx.financiera.example",
        "X-Original-To: otra@financiera.example",
    )
    assert parse(raw).business_address == "cobranza@financiera.example"


def test_without_delivered_to_the_mailbox_is_x_original_to() -> None:
    event = parse_fixture("thunderbird_flowed_attachment")
    assert event.business_address == "cobranza@financiera.example"


def test_without_trace_headers_the_mailbox_is_the_first_to_address() -> None:
    raw = mail("To: Admisiones <Admisiones@Universidad.example>, otra@universidad.example")
    assert parse(raw).business_address == "admisiones@universidad.example"


# -- web-form relays ------------------------------------------------------------------------------


def test_a_web_form_relay_mail_comes_from_its_reply_to_address() -> None:
    event = parse_fixture("webform_wordpress")
    assert event.sender.value == "laura.gomez@correo.example"
    assert event.text is not None and "horario vespertino" in event.text


@pytest.mark.parametrize(
    "relay",
    [
        "noreply@formspree.io",
        "no-reply@universidad.example",
        "formulario@universidad.example",
        "x@jotform.com",
    ],
)
def test_a_no_reply_or_form_service_sender_with_reply_to_yields_the_reply_to_address(relay: str) -> None:
    raw = mail(f"From: Formulario web <{relay}>", "Reply-To: Carlos Ruiz <Carlos.Ruiz@correo.example>")
    event = parse(raw)
    assert event.sender.value == "carlos.ruiz@correo.example"
    assert event.sender.display_name == "Carlos Ruiz"


def test_a_person_with_a_different_reply_to_stays_the_sender() -> None:
    raw = mail("From: Juan Perez <jperez@gin.example>", "Reply-To: compras@gin.example")
    assert parse(raw).sender.value == "jperez@gin.example"


# -- threading ------------------------------------------------------------------------------------


def test_threading_uses_message_id_in_reply_to_and_references() -> None:
    event = parse_fixture("gmail_reply_alternative")
    assert event.external_id == "CAJx9kR2mPq7+Hn4sVbT1Z0yW3xQ8uE5fLgK6oNdA-Gh2Yc7pSw@mail.gmail.com"
    assert event.reply_to == "0198f0e2-7c1a-7d3e-9b2a-5e4f3a2b1c0d@universidad.example"
    assert event.references == (
        "20260302160000.4F2A1C0123@mx.universidad.example",
        "0198f0e2-7c1a-7d3e-9b2a-5e4f3a2b1c0d@universidad.example",
    )


def test_a_mail_without_message_id_gets_a_stable_generated_id() -> None:
    raw = fixture("scanner_no_message_id")
    first = parse(raw).external_id
    assert first.endswith("@generated.centralita.invalid")
    assert parse(raw, received_at=RECEIVED_AT + timedelta(days=1)).external_id == first
    assert parse(b"Delivered-To: cobranza@financiera.example\r\n" + raw).external_id == first
    assert parse(raw.replace(b"escaneado", b"ESCANEADO")).external_id != first


# -- time -----------------------------------------------------------------------------------------


def test_the_timestamp_is_the_date_header() -> None:
    event = parse_fixture("gmail_reply_alternative")
    assert event.timestamp == datetime(2026, 3, 3, 10, 15, 28, tzinfo=timezone(timedelta(hours=-6)))


def test_a_missing_date_falls_back_to_the_newest_received_header() -> None:
    event = parse_fixture("missing_date_received")
    assert event.timestamp == datetime(2026, 3, 9, 13, 45, 10, tzinfo=UTC)


def test_a_malformed_date_falls_back_to_the_newest_received_header() -> None:
    raw = mail("Date: el martes por la tarde", "Received: from a by b; Tue, 3 Mar 2026 16:00:01 +0000")
    assert parse(raw).timestamp == datetime(2026, 3, 3, 16, 0, 1, tzinfo=UTC)


def test_without_any_date_the_timestamp_is_received_at() -> None:
    assert parse(mail("Date: <drop>")).timestamp == RECEIVED_AT


# -- body: structure and charsets -----------------------------------------------------------------


def test_multipart_alternative_prefers_the_plain_part() -> None:
    event = parse_fixture("gmail_reply_alternative")
    assert event.text == (
        "Hola, muchas gracias por la información.\n\n¿El programa tiene modalidad en línea? "
        "Trabajo de lunes a viernes y solo podría asistir los sábados."
    )


def test_an_html_only_mail_is_read_as_text() -> None:
    event = parse_fixture("html_only_windows1252")
    assert event.text is not None
    assert event.text.startswith("Buen día,\n\nMe interesa la Licenciatura en Administración.")
    assert "<p>" not in event.text
    assert "https://universidad.example/convocatoria-2026" in event.text


def test_a_base64_body_is_decoded() -> None:
    event = parse_fixture("encoded_headers_base64")
    assert event.text is not None and "crédito automotriz de $350,000" in event.text


def test_a_latin1_8bit_body_is_decoded() -> None:
    event = parse_fixture("latin1_8bit_outlook_express")
    assert event.text is not None and event.text.startswith("Señores de Cobranza:")


def test_windows_1252_labelled_iso_8859_1_keeps_curly_quotes() -> None:
    event = parse_fixture("outlook_reply_attachments")
    assert event.text is not None and "la “carta de motivos”." in event.text


def test_a_body_mislabelled_as_utf8_falls_back_gracefully() -> None:
    event = parse_fixture("mislabeled_utf8")
    assert (
        event.text == "Hola, quiero cambiar la fecha de mi cita para el miércoles. ¿Es posible?\n\nGracias,"
    )
    assert event.signature == "Patricia Núñez"


def test_an_unknown_charset_does_not_stop_the_parse() -> None:
    event = parse(mail(body="Información del trámite\n", charset="x-desconocido", encode_as="utf-8"))
    assert event.text == "Información del trámite"


def test_format_flowed_lines_are_unwrapped() -> None:
    event = parse_fixture("thunderbird_flowed_attachment")
    assert event.text == (
        "Buenas tardes:\n\nAdjunto el comprobante de pago de la mensualidad de marzo por $2,450.00. "
        "Les agradecería confirmar la recepción."
    )


# -- attachments ----------------------------------------------------------------------------------


def test_attachments_carry_kind_mime_type_decoded_filename_and_size_but_no_bytes() -> None:
    event = parse_fixture("outlook_reply_attachments")
    pdf, docx = event.attachments
    assert (pdf.kind, pdf.mime_type, pdf.filename, pdf.size) == (
        AttachmentKind.DOCUMENT,
        "application/pdf",
        "comprobante_domicilio.pdf",
        125,
    )
    assert pdf.sha256 is not None and len(pdf.sha256) == 64
    assert docx.filename == "Carta de motivos - Juan Pérez.docx"  # RFC 2047 inside the parameter
    assert docx.mime_type == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert "data" not in pdf.model_dump(exclude_none=True)


def test_an_rfc2231_filename_is_decoded() -> None:
    (pdf,) = parse_fixture("thunderbird_flowed_attachment").attachments
    assert pdf.filename == "comprobante de pago marzo – Roberto Sánchez.pdf"


def test_an_inline_image_keeps_its_content_id() -> None:
    (image,) = parse_fixture("gmail_inline_image").attachments
    assert image.kind == AttachmentKind.IMAGE
    assert image.content_id == "ii_m7xq1a2b0"
    assert image.size == 70


def test_a_forwarded_message_is_an_attachment() -> None:
    raw = (
        b"From: Juan <jperez@gin.example>\r\nTo: admisiones@universidad.example\r\nSubject: Fwd\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
        b"Les reenvio el correo.\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: a@b.example\r\nSubject: Factura 123\r\n\r\nHola\r\n--b--\r\n"
    )
    (forwarded,) = parse(raw).attachments
    assert (forwarded.kind, forwarded.mime_type, forwarded.filename) == (
        AttachmentKind.FILE,
        "message/rfc822",
        "Factura 123.eml",
    )


# -- new text, quoted history, signature ----------------------------------------------------------


def test_gmail_quoted_history_and_signature_are_kept_apart() -> None:
    event = parse_fixture("gmail_reply_alternative")
    assert event.quoted_text is not None
    assert event.quoted_text.startswith("El lun, 2 mar 2026 a las 10:00, Admisiones Universidad")
    assert "> Gracias por su interés en la Maestría en Finanzas." in event.quoted_text
    assert event.signature == "María López García\nTel. +52 55 1234 5678"


def test_outlook_original_message_block_is_quoted_history() -> None:
    event = parse_fixture("outlook_reply_attachments")
    assert event.quoted_text is not None and event.quoted_text.startswith(
        "________________________________\nDe:"
    )
    assert event.text is not None and event.text.endswith(
        "¿Me confirman si con esto queda completo mi expediente?\n\nSaludos,"
    )
    assert event.signature == (
        "Juan Pérez Hernández\nGerente de Compras | Grupo Industrial del Norte\nTel. +52 81 8123 4567"
    )


def test_apple_mail_quote_and_mobile_footer_are_kept_apart() -> None:
    event = parse_fixture("apple_mail_iphone_reply")
    assert event.text == "Sí, ya realicé el pago esta mañana. Les envío el número de referencia: 8823-4410."
    assert event.signature == "Enviado desde mi iPhone"
    assert event.quoted_text is not None and event.quoted_text.startswith("> El 3 mar 2026, a las 9:15")


def test_gmail_quote_div_is_cut_from_an_html_only_reply() -> None:
    html = (
        '<div dir="ltr">Perfecto, nos vemos el lunes.</div><br><div class="gmail_quote">'
        '<div class="gmail_attr">El vie, 6 mar 2026 a las 9:00, Admisiones escribió:</div>'
        "<blockquote>Le confirmamos su cita.</blockquote></div>"
    )
    raw = mail(body=html).replace(b"text/plain", b"text/html")
    event = parse(raw)
    assert event.text == "Perfecto, nos vemos el lunes."
    assert event.quoted_text is not None and "Le confirmamos su cita." in event.quoted_text


# -- automated mail -------------------------------------------------------------------------------


def test_an_exchange_out_of_office_is_an_auto_reply() -> None:
    assert parse_fixture("exchange_out_of_office").automated == "auto_reply"


def test_a_cpanel_autoresponder_is_an_auto_reply() -> None:
    assert parse_fixture("cpanel_autoresponder").automated == "auto_reply"


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
        "X-Autoreply: yes",
        "X-Autorespond: Gracias por escribir",
        "Precedence: auto_reply",
        "Precedence: bulk",
        "Precedence: junk",
        "Subject: Respuesta automática: Consulta",
        "Subject: =?UTF-8?Q?Fuera_de_la_oficina_hasta_el_10_de_marzo?=",
        "Subject: Out of Office: Consulta",
        "Subject: Automatic reply: Consulta",
    ],
)
def test_auto_reply_markers_mark_the_mail_as_auto_reply(header: str) -> None:
    assert parse(mail(header)).automated == "auto_reply"


def test_auto_submitted_no_is_a_person() -> None:
    assert parse(mail("Auto-Submitted: no")).automated is None


def test_a_delivery_status_report_is_a_bounce_with_its_errors_and_bounced_id() -> None:
    event = parse_fixture("postfix_bounce")
    assert event.automated == "bounce"
    assert event.reply_to == "0198f1a0-3c4d-7e5f-8a9b-0c1d2e3f4a5b@universidad.example"
    (error,) = event.errors
    assert (error.code, error.title, error.details) == ("5.1.1", "failed", "pedro.sanchez@correo.example")


def test_a_mailer_daemon_sender_with_an_empty_return_path_is_a_bounce() -> None:
    raw = mail(
        "Return-Path: <>",
        "From: Mail Delivery Subsystem <postmaster@mx.correo.example>",
        "Subject: Delivery Status Notification (Failure)",
    )
    assert parse(raw).automated == "bounce"


def test_a_plain_customer_mail_is_not_automated() -> None:
    assert parse_fixture("apple_mail_iphone_reply").automated is None


# -- the flat view --------------------------------------------------------------------------------


def test_the_normalized_view_of_a_reply_with_attachments() -> None:
    flat = to_normalized(parse_fixture("outlook_reply_attachments"))
    assert flat["channel"] == "email"
    assert flat["sender"] == "jperez@gin.example"
    assert flat["business_address"] == "admisiones@universidad.example"
    assert flat["reply_to"] == "0198f0c1-1b2c-7d3e-8f4a-5b6c7d8e9f00@universidad.example"
    assert flat["text"].startswith("Buenos días,")
    assert "Oficina de Admisiones" not in flat["text"]
    assert flat["attachments"][0] == {
        "kind": "document",
        "mime_type": "application/pdf",
        "filename": "comprobante_domicilio.pdf",
        "size": 125,
    }
    assert flat["timestamp"] == "2026-03-03T17:41:07Z"


def test_the_normalized_view_of_a_web_form_mail_names_the_customer() -> None:
    flat = to_normalized(parse_fixture("webform_wordpress"))
    assert flat["sender"] == "laura.gomez@correo.example"
    assert flat["subject"] == 'Universidad Ejemplo "Informes de la licenciatura en Derecho"'


def test_the_normalized_view_of_a_bounce_says_so() -> None:
    flat = to_normalized(parse_fixture("postfix_bounce"))
    assert flat["automated"] == "bounce"
    assert flat["sender"] == "mailer-daemon@mx.universidad.example"


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"", "body"),
        (b"\r\n\r\n  \r\n", "body"),
        (b"solo texto, sin cabeceras\r\n", "headers"),
        (bytes(range(256)) * 8, "headers"),
        (b"Subject: " + b"a" * 20_000 + b"\r\n\r\nHola", "headers"),
        (b"".join(b"X-Relleno-%d: %s\r\n" % (i, b"b" * 900) for i in range(400)) + b"\r\nHola", "headers"),
        (b"To: admisiones@universidad.example\r\nSubject: hola\r\n\r\nsin remitente", "from"),
        (b"From: maria@correo.example\r\nSubject: hola\r\n\r\nsin destinatario", "to"),
        (b"From: nadie\r\nTo: admisiones@universidad.example\r\n\r\nremitente sin arroba", "from"),
    ],
)
def test_bad_input_raises_invalid_input_naming_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_email(raw, received_at=RECEIVED_AT)
    assert caught.value.field == field
