"""New text apart from quoted history and signature (``channels.email.quotes.split_reply``)."""

from __future__ import annotations

from channels.email.quotes import split_reply


def test_a_mail_without_quote_or_signature_is_all_new_text() -> None:
    split = split_reply("Hola, ¿tienen horario los sábados?\n")
    assert (split.text, split.quoted, split.signature) == ("Hola, ¿tienen horario los sábados?", "", "")


def test_an_english_on_wrote_attribution_starts_the_quote() -> None:
    split = split_reply(
        "Thanks!\n\nOn Mon, Mar 2, 2026 at 10:00 AM Admisiones <a@u.example> wrote:\n> Hello\n"
    )
    assert split.text == "Thanks!"
    assert split.quoted.endswith("> Hello")


def test_an_original_message_separator_quotes_everything_below() -> None:
    body = (
        "Gracias.\n\n-----Mensaje original-----\nDe: Cobranza\nEnviado: lunes\nAsunto: Pago\n\nTexto viejo\n"
    )
    split = split_reply(body)
    assert split.text == "Gracias."
    assert split.quoted.startswith("-----Mensaje original-----")
    assert split.quoted.endswith("Texto viejo")


def test_an_outlook_header_block_without_separator_quotes_everything_below() -> None:
    body = "Listo.\n\nFrom: Cobranza <c@f.example>\nSent: Monday, March 2, 2026 12:30 PM\nTo: Juan\n\nViejo\n"
    assert split_reply(body).text == "Listo."


def test_interleaved_answers_stay_new_text_and_quoted_lines_are_kept_apart() -> None:
    body = "> ¿Cuál es su matrícula?\nA01234567\n> ¿Y su carrera?\nDerecho\n"
    split = split_reply(body)
    assert split.text == "A01234567\nDerecho"
    assert split.quoted == "> ¿Cuál es su matrícula?\n> ¿Y su carrera?"


def test_a_forwarded_message_is_new_text() -> None:
    body = (
        "Les reenvío esto.\n\n---------- Forwarded message ---------\n"
        "De: Banco\nAsunto: Cargo\n\nCargo de $500\n"
    )
    assert "Cargo de $500" in split_reply(body).text


def test_everything_after_the_dash_dash_space_line_is_the_signature() -> None:
    split = split_reply("Adjunto el pago.\n\n-- \nRoberto Sánchez\nwww.empresa.example\n")
    assert split.text == "Adjunto el pago."
    assert split.signature == "Roberto Sánchez\nwww.empresa.example"


def test_a_closing_followed_by_a_name_and_phone_is_a_signature_and_the_closing_stays() -> None:
    split = split_reply("Necesito mi factura de febrero.\n\nAtentamente,\nLaura Gómez\nCel. 55 1234 5678\n")
    assert split.text == "Necesito mi factura de febrero.\n\nAtentamente,"
    assert split.signature == "Laura Gómez\nCel. 55 1234 5678"


def test_a_closing_followed_by_more_message_is_not_cut() -> None:
    body = (
        "Hola.\n\nGracias,\n"
        "pero todavía no me llega el estado de cuenta y necesito saber por qué no aparece mi pago?\n"
    )
    split = split_reply(body)
    assert split.signature == ""
    assert split.text.endswith("aparece mi pago?")


def test_a_long_trailing_block_after_a_closing_is_not_a_signature() -> None:
    tail = "\n".join(f"Punto {i} de mi reclamo" for i in range(8))
    split = split_reply(f"Hola.\n\nSaludos,\n{tail}\n")
    assert split.signature == ""


def test_a_mobile_footer_is_a_signature() -> None:
    split = split_reply("Ok, gracias.\n\nObtener Outlook para Android\n")
    assert (split.text, split.signature) == ("Ok, gracias.", "Obtener Outlook para Android")


def test_a_sentence_starting_with_el_and_ending_with_escribio_but_no_date_is_not_an_attribution() -> None:
    body = "El gerente me escribió:\nque ya estaba pagado.\n"
    assert split_reply(body).quoted == ""
