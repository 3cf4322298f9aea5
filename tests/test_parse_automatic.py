"""Automatic mail: every marker an auto-responder writes is recognised; people are not.

Automatic mail is recorded and never answered or acted on, so a marker that
catches a person closes a genuine request unread: each marker has near-misses.
"""

from __future__ import annotations

import pytest

from erasure.parse import parse_message


def mail(*, subject: str = "GDPR erasure request", headers: str = "") -> bytes:
    return (
        f"From: Alice <privacy@acme.example>\nTo: privacy@privacy.example\nSubject: {subject}\n"
        f"Message-ID: <m1@acme.example>\nMIME-Version: 1.0\n{headers}Content-Type: text/plain; charset=utf-8\n\n"
        "Please erase.\nViewer ID: v-1\n"
    ).encode()


AUTOMATIC = [
    # (subject, extra headers, expected code)
    ("GDPR erasure request", "Precedence: auto_reply\n", "auto_submitted"),
    ("GDPR erasure request", "Precedence: AUTO_REPLY \n", "auto_submitted"),
    ("GDPR erasure request", "Precedence: bulk\n", "bulk_mail"),
    ("GDPR erasure request", "X-Autoreply: yes\n", "auto_submitted"),
    ("GDPR erasure request", "X-Autorespond: Re: your mail\n", "auto_submitted"),
    ("GDPR erasure request", "x-autoreply: yes\n", "auto_submitted"),
    ("GDPR erasure request", "X-Apple-Action: VACATION\n", "auto_submitted"),
    ("GDPR erasure request", "X-Apple-Action: vacation\n", "auto_submitted"),
    ("GDPR erasure request", "Auto-Submitted: auto-replied\n", "auto_submitted"),
    ("Automatic reply: GDPR erasure request", "", "auto_reply_subject"),
    ("Automatic Reply: GDPR erasure request", "X-Auto-Response-Suppress: All\n", "auto_reply_subject"),
    ("Auto reply: GDPR erasure request", "", "auto_reply_subject"),
    ("Auto-Reply: GDPR erasure request", "", "auto_reply_subject"),
    ("Autoreply: GDPR erasure request", "", "auto_reply_subject"),
    ("Out of Office: GDPR erasure request", "", "auto_reply_subject"),
    ("Out of Office AutoReply: GDPR erasure request", "", "auto_reply_subject"),
    ("AUTO: Alice is out of the office (returning 09/06/2025)", "", "auto_reply_subject"),
    ("R\u00e9ponse automatique\u00a0: Demande d'effacement", "", "auto_reply_subject"),
    ("R\u00e9ponse automatique : Demande d'effacement", "", "auto_reply_subject"),
    ("Automatische Antwort: L\u00f6schanfrage", "", "auto_reply_subject"),
    ("Abwesenheitsnotiz: L\u00f6schanfrage", "", "auto_reply_subject"),
    ("Respuesta autom\u00e1tica: Solicitud de supresi\u00f3n", "", "auto_reply_subject"),
    ("Risposta automatica: Richiesta di cancellazione", "", "auto_reply_subject"),
    ("Automatisch antwoord: Verwijderingsverzoek", "", "auto_reply_subject"),
    ("Resposta autom\u00e1tica: Pedido de apagamento", "", "auto_reply_subject"),
    ("Autosvar: Beg\u00e4ran om radering", "", "auto_reply_subject"),
    ("Automatyczna odpowied\u017a: Wniosek o usuni\u0119cie", "", "auto_reply_subject"),
    ("=?utf-8?q?R=C3=A9ponse_automatique_:_Demande?=", "", "auto_reply_subject"),
]


@pytest.mark.parametrize("subject, headers, code", AUTOMATIC, ids=[f"{a[:30]}|{b.strip()}" for a, b, _ in AUTOMATIC])
def test_auto_responders_are_recognised(subject: str, headers: str, code: str) -> None:
    message = parse_message(mail(subject=subject, headers=headers))
    assert message.automatic is not None and message.automatic.code == code


HUMAN = [
    # A person writing about the topic: read, decided, answered like any request.
    ("Re: automatic reply question", ""),
    ("Automatic reply question: can you switch them off?", ""),
    ("Automatic replies from your desk", ""),
    ("Autoreply settings", ""),
    ("Fwd: Automatic reply: GDPR erasure request", ""),  # a person forwarded it
    ("Out of office until Monday, but please erase this viewer", ""),
    ("Automobile: erasure request", ""),
    ("RE: Out of Office: GDPR erasure request", ""),
    ("GDPR erasure request (automatic reply expected)", ""),
    # X-Auto-Response-Suppress asks *us* not to auto-answer; Exchange and helpdesks put it
    # on mail people write, so on its own it does not make mail automatic.
    ("GDPR erasure request", "X-Auto-Response-Suppress: All\n"),
    ("GDPR erasure request", "X-Auto-Response-Suppress: DR, OOF, AutoReply\n"),
    ("GDPR erasure request", "X-Apple-Action: none\n"),
    ("GDPR erasure request", "Precedence: first-class\n"),
    ("GDPR erasure request", "Precedence: auto\n"),
    ("GDPR erasure request", "X-Mailer: AutoReply Composer 2.0\n"),  # a mailer name is not a marker
    ("GDPR erasure request", "Auto-Submitted: no\n"),
]


@pytest.mark.parametrize("subject, headers", HUMAN, ids=[f"{a[:30]}|{b.strip()}" for a, b in HUMAN])
def test_people_writing_about_auto_replies_are_not_automatic(subject: str, headers: str) -> None:
    message = parse_message(mail(subject=subject, headers=headers))
    assert message.automatic is None
    assert message.viewer_ids == ("v-1",)


@pytest.mark.parametrize(("value", "asks_no_answer"), [
    ("All", True),
    ("all", True),
    ("OOF", True),
    ("AutoReply", True),
    ("DR, OOF, AutoReply", True),
    ("DR, RN, NRN", False),  # receipts and bounces only: says nothing about answers
    ("NDR", False),
    ("None", False),
    ("", False),
])
def test_x_auto_response_suppress_is_honoured_by_never_answering_not_by_ignoring(value, asks_no_answer):
    parsed = parse_message(mail(headers=f"X-Auto-Response-Suppress: {value}\n"))
    assert parsed.automatic is None  # read and kept for a person, never closed as automatic
    assert ("auto_response_suppressed" in {p.code for p in parsed.problems}) is asks_no_answer
