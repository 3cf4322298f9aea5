"""Quoted replies in the major client languages, and our own letters coming back.

A quoted or echoed id is never acted on: a reply quoting an old request must
not restart it, and a helpdesk echoing our letter must not erase the example
"viewers" printed in it (nor get a "completed" letter for them).
"""

from __future__ import annotations

import textwrap

import pytest

from erasure.notify import TemplateRenderer
from erasure.parse import ParsedMessage, parse_message
from erasure.parse.htmltext import html_to_text
from erasure.parse.quotes import echoes_our_letters, our_letter_runs, unquoted
from tests.test_templates import KINDS, REGULATIONS, sample_context


def mail(body: str) -> bytes:
    return (
        "From: Alice <privacy@acme.example>\nTo: privacy@privacy.example\nSubject: Re: GDPR erasure request\n"
        "Message-ID: <m1@acme.example>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n" + body
    ).encode()


def codes(message: ParsedMessage) -> set[str]:
    return {p.code for p in message.problems}


NBSP = "\u00a0"
NNBSP = "\u202f"

# Each block starts the quoted part as that client writes it; nothing after it is read.
QUOTE_STARTS = [
    # Outlook header blocks
    ("en", "From: Bob <bob@acme.example>\nSent: Monday, 2 June 2025 10:00\nTo: privacy@privacy.example"),
    ("en-date", "From: Bob <bob@acme.example>\nDate: Monday, 2 June 2025 10:00"),
    ("en-bold", "*From:* Bob <bob@acme.example>\n*Sent:* Monday, 2 June 2025 10:00"),
    ("de", "Von: Bob <bob@acme.example>\nGesendet: Montag, 2. Juni 2025 10:00"),
    ("fr", f"De{NBSP}: Bob <bob@acme.example>\nEnvoy\u00e9{NBSP}: lundi 2 juin 2025 10:00"),
    ("fr-space", "De : Bob <bob@acme.example>\nEnvoy\u00e9 : lundi 2 juin 2025 10:00"),
    ("fr-nnbsp", f"De{NNBSP}: Bob <bob@acme.example>\nEnvoy\u00e9{NNBSP}: lundi 2 juin 2025 10:00"),
    ("fr-date", "De : Bob <bob@acme.example>\nDate d'envoi : lundi 2 juin 2025 10:00"),
    ("es", "De: Bob <bob@acme.example>\nEnviado: lunes, 2 de junio de 2025 10:00"),
    ("es-fecha", "De: Bob <bob@acme.example>\nFecha: lunes, 2 de junio de 2025 10:00"),
    ("pt", "De: Bob <bob@acme.example>\nEnviada: segunda-feira, 2 de junho de 2025 10:00"),
    ("pt-data", "De: Bob <bob@acme.example>\nData: segunda-feira, 2 de junho de 2025 10:00"),
    ("it", "Da: Bob <bob@acme.example>\nInviato: luned\u00ec 2 giugno 2025 10:00"),
    ("nl", "Van: Bob <bob@acme.example>\nVerzonden: maandag 2 juni 2025 10:00"),
    ("sv", "Fr\u00e5n: Bob <bob@acme.example>\nSkickat: den 2 juni 2025 10:00"),
    ("pl", "Od: Bob <bob@acme.example>\nWys\u0142ano: poniedzia\u0142ek, 2 czerwca 2025 10:00"),
    ("pl-data", "Od: Bob <bob@acme.example>\nData: poniedzia\u0142ek, 2 czerwca 2025 10:00"),
    ("fi", "L\u00e4hett\u00e4j\u00e4: Bob <bob@acme.example>\nL\u00e4hetetty: maanantai 2. kes\u00e4kuuta 2025 10.00"),
    ("cs", "Od: Bob <bob@acme.example>\nOdesl\u00e1no: pond\u011bl\u00ed 2. \u010dervna 2025 10:00"),
    ("da", "Fra: Bob <bob@acme.example>\nSendt: 2. juni 2025 10:00"),
    # "On ... wrote:" lines
    ("en-on", "On Mon, 2 Jun 2025 at 10:00, Bob <bob@acme.example> wrote:"),
    ("en-on-wrapped", "On Mon, 2 Jun 2025 at 10:00, Bob Example <bob@acme.example>\nwrote:"),
    ("de-am", "Am Mo., 2. Juni 2025 um 10:00 Uhr schrieb Bob <bob@acme.example>:"),
    ("fr-le", f"Le lun. 2 juin 2025 \u00e0 10:00, Bob <bob@acme.example> a \u00e9crit{NBSP}:"),
    ("fr-le-plain", "Le lun. 2 juin 2025 a 10:00, Bob <bob@acme.example> a ecrit :"),
    ("es-el", "El lun, 2 jun 2025 a las 10:00, Bob (<bob@acme.example>) escribi\u00f3:"),
    ("it-il", "Il giorno lun 2 giu 2025 alle ore 10:00 Bob <bob@acme.example> ha scritto:"),
    ("nl-op", "Op ma 2 jun. 2025 om 10:00 schreef Bob <bob@acme.example>:"),
    ("pt-em", "Em seg., 2 de jun. de 2025 \u00e0s 10:00, Bob <bob@acme.example> escreveu:"),
    ("sv-den", "Den m\u00e5n 2 juni 2025 kl 10:00 skrev Bob <bob@acme.example>:"),
    ("pl-w-dniu", "W dniu pon., 2 cze 2025 o 10:00 Bob <bob@acme.example> napisa\u0142(a):"),
    ("pl-w-dniu-a", "W dniu 2.06.2025 o 10:00, Bob napisa\u0142a:"),
    ("nl-op-wrapped", "Op ma 2 jun. 2025 om 10:00 schreef Bob Example\n<bob@acme.example>:"),
    # ... and the clients that open the line with the date or the name (issue 13: fi, cs, da; Gmail in sv, pt, pl)
    ("fi-gmail", "ma 2.6.2025 klo 10.00 Bob Esimerkki <bob@acme.example> kirjoitti:"),
    ("fi-thunderbird", "Bob Esimerkki kirjoitti 2.6.2025 klo 10.00:"),
    ("fi-apple", "2.6.2025 kello 10.00, Bob Esimerkki <bob@acme.example> kirjoitti:"),
    ("cs-dne", "Dne 2. 6. 2025 v 10:00 Bob Example napsal(a):"),
    ("cs-gmail", "po 2. 6. 2025 v 10:00 odes\u00edlatel Bob Example <bob@acme.example> napsal:"),
    ("da-den", "Den 02-06-2025 kl. 10:00 skrev Bob Example:"),
    ("da-gmail", "man. 2. jun. 2025 kl. 10.00 skrev Bob Example <bob@acme.example>:"),
    ("sv-gmail", "m\u00e5n 2 juni 2025 kl 10:00 skrev Bob Example <bob@acme.example>:"),
    ("pt-gmail", "seg., 2 de jun. de 2025 \u00e0s 10:00, Bob Example <bob@acme.example> escreveu:"),
    ("pl-gmail", "pon., 2 cze 2025 o 10:00 Bob Example <bob@acme.example> napisa\u0142(a):"),
    ("pl-dnia", "Dnia 2.06.2025 o 10:00 Bob Example napisa\u0142(a):"),
    # separator lines
    ("en-sep", "-----Original Message-----"),
    ("de-sep", "-----Urspr\u00fcngliche Nachricht-----"),
    ("fr-sep", "-----Message d'origine-----"),
    ("fr-sep-curly", "-----Message d\u2019origine-----"),
    ("es-sep", "-----Mensaje original-----"),
    ("it-sep", "-----Messaggio originale-----"),
    ("nl-sep", "-----Oorspronkelijk bericht-----"),
    ("pt-sep", "-----Mensagem original-----"),
    ("sv-sep", "-----Ursprungligt meddelande-----"),
    ("pl-sep", "-----Wiadomo\u015b\u0107 oryginalna-----"),
    ("da-sep", "-----Oprindelig meddelelse-----"),
    ("fi-sep", "-------- Alkuper\u00e4inen viesti --------"),
    ("cs-sep", "-------- P\u016fvodn\u00ed zpr\u00e1va --------"),
    ("gmail-fwd", "---------- Forwarded message ---------"),
    ("gmail-fwd-10", "---------- Forwarded message ----------"),
    ("de-fwd", "---------- Weitergeleitete Nachricht ---------"),
    ("fr-fwd", "---------- Message transf\u00e9r\u00e9 ---------"),
    ("es-fwd", "---------- Mensaje reenviado ---------"),
    ("it-fwd", "---------- Messaggio inoltrato ---------"),
    ("nl-fwd", "---------- Doorgestuurd bericht ---------"),
    ("pt-fwd", "---------- Mensagem encaminhada ---------"),
    ("apple-fwd", "Begin forwarded message:"),
    ("da-fwd", "---------- Videresendt meddelelse ----------"),
    ("fi-fwd", "---------- V\u00e4litetty viesti ---------"),
    ("cs-fwd", "---------- P\u0159eposlan\u00e1 zpr\u00e1va ---------"),
    ("apple-fwd-de", "Anfang der weitergeleiteten Nachricht:"),
    ("apple-fwd-fi", "V\u00e4litetty viesti alkaa:"),
    ("apple-fwd-cs", "Za\u010d\u00e1tek p\u0159eposlan\u00e9 zpr\u00e1vy:"),
    ("underscores", "________________________________"),
]


@pytest.mark.parametrize("lang, start", QUOTE_STARTS, ids=[q[0] for q in QUOTE_STARTS])
def test_quoted_part_is_not_read_in_any_major_language(lang: str, start: str) -> None:
    body = f"Please erase this viewer.\nViewer ID: own-1\n\n{start}\nSubject: old request\n\nViewer ID: quoted-1\n"
    message = parse_message(mail(body))
    assert "quoted-1" not in unquoted(body)
    if lang.endswith(("-fwd", "-fwd-10")) or lang.startswith("apple-fwd"):
        # A separator only forwards use: the forwarded request is read, one level deep (issue 13).
        assert (message.viewer_ids, message.forwarded) == (("own-1", "quoted-1"), True), lang
    else:
        assert (message.viewer_ids, message.forwarded) == (("own-1",), False), lang


# Human lines that resemble the markers but do not start a quote: the id after them is read.
NOT_QUOTE_STARTS = [
    "From: our privacy team, please erase the viewer below.",  # From: without a Sent/Date line after it
    "De: equipo de privacidad",
    "On Monday we wrote to you about this viewer",
    "On behalf of Acme, please erase:",
    "Data: the viewer below",  # a Date-like label without a From line before it
    "-- Original list follows",  # dashes without the closing dashes
    "Forwarded message below; please act on the id",
    "El visor siguiente:",
    # Attribution verbs without a date, or with text after the colon: a sentence, not a client's line
    "Asiakkaamme kirjoitti meille seuraavat tunnukset:",
    "Zákazník napsal:",
    "Kunden skrev: slet venligst seeren nedenfor",
    "Katsoja kirjoitti 2 kertaa: poistakaa tiedot",
]


@pytest.mark.parametrize("line", NOT_QUOTE_STARTS)
def test_lines_that_merely_resemble_quote_markers_do_not_cut_the_text(line: str) -> None:
    message = parse_message(mail(f"Please erase this viewer.\n{line}\n\nViewer ID: own-1\n"))
    assert message.viewer_ids == ("own-1",)


# ---------------------------------------------------------------- our own letters coming back

RENDERER = TemplateRenderer()
LETTERS = [(kind, regulation) for kind in KINDS for regulation in REGULATIONS]


def _letter(kind: str, regulation: str) -> tuple[str, str]:
    _, text, html = RENDERER.render(kind, sample_context(kind, regulation))
    return text, html_to_text(html)


def test_every_packaged_letter_feeds_the_echo_table() -> None:
    """If the templates were missing (a broken wheel), echo detection would silently be off."""
    runs = our_letter_runs()
    for kind, regulation in LETTERS:
        text, _ = _letter(kind, regulation)
        words = " ".join(text.lower().split())
        assert any(run in words for run in runs), kind
    assert len(runs) > 500


@pytest.mark.parametrize("kind, regulation", LETTERS)
def test_a_helpdesk_echoing_our_letter_is_recognised(kind: str, regulation: str) -> None:
    text, html_text = _letter(kind, regulation)
    for letter in (text, html_text, textwrap.fill(" ".join(text.split()), 66)):
        body = ("Thank you for contacting Acme Support. Your request #88231 has been received and a member "
                "of our team will respond shortly.\n\nYour message:\n\n" + letter)
        assert echoes_our_letters(body), kind
        message = parse_message(mail(body))
        assert "echoes_our_reply" in codes(message)


def test_the_red_team_echo_erases_nobody() -> None:
    text, _ = _letter("needs_information", "gdpr")
    message = parse_message(mail("Ticket #4411 received. We will get back to you.\n\n" + text))
    assert message.viewer_ids == ()
    assert {"echoes_our_reply", "viewer_id_reserved_example"} <= codes(message)


# A customer's own words that cite the law as our letters do: not an echo.
CUSTOMER_TEXTS = [
    ("Under Article 17 of the General Data Protection Regulation (GDPR) we ask you to erase the data of the "
     "viewer below. Please confirm when the data has been deleted."),
    ("We are handling a request under Article 17 of the General Data Protection Regulation (GDPR) from one of "
     "our viewers and ask you, as our processor, to erase the views recorded under this viewer id."),
    ("Please delete all data for this viewer under the California Consumer Privacy Act (CCPA). Reply to this "
     "message with the result. Kind regards, the privacy team"),
    "Our analytics data is pseudonymous, we know; the viewer id is the only identifier we have.",
]


@pytest.mark.parametrize("text", CUSTOMER_TEXTS)
def test_a_customer_citing_the_law_is_not_an_echo(text: str) -> None:
    assert not echoes_our_letters(text)
    message = parse_message(mail(text + "\n\nViewer ID: own-1\n"))
    assert message.viewer_ids == ("own-1",) and "echoes_our_reply" not in codes(message)


def test_a_reply_that_quotes_our_letter_properly_is_read_for_its_own_ids() -> None:
    text, _ = _letter("needs_information", "gdpr")
    quoted = "\n".join("> " + line for line in text.splitlines())
    body = f"Here it is.\nViewer ID: own-1\n\nOn Mon, 2 Jun 2025 at 10:00, Privacy <privacy@privacy.example> wrote:\n{quoted}\n"
    message = parse_message(mail(body))
    assert message.viewer_ids == ("own-1",) and codes(message) == set()
