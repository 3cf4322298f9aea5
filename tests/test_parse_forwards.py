"""Forwarded requests (issue 13): a processor's requests usually arrive as the customer's
forward of its viewer's mail. A forward is read one level deep; a reply never is.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from erasure import audit
from erasure.models import ErasureRequest
from erasure.parse import parse_message
from erasure.parse.quotes import forwarded_text
from tests.world import mail as world_mail

VIEWER_MAIL = "Hello,\n\nplease delete all data you hold about me.\nViewer ID: fw-viewer-1\n\nJane\n"


def mail(subject: str, body: str) -> bytes:
    return (f"From: DPO <dpo@acme.example>\nTo: privacy@privacy.example\nSubject: {subject}\n"
            "Message-ID: <f1@acme.example>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
            + body).encode()


OUTLOOK_HEADERS = ("From: Jane Viewer <jane@viewer.example>\nSent: Monday, November 2, 2026 9:12 AM\n"
                   "To: privacy@acme.example\nSubject: Delete my data\n\n")

FORWARDS = {
    "Outlook, English": ("FW: Delete my data", "Please action the request below.\n\nMaria\n\n" + OUTLOOK_HEADERS),
    "Outlook with an underscore rule": ("FW: Delete my data",
                                         "Please action.\n\n________________________________\n" + OUTLOOK_HEADERS),
    "Outlook, German": ("WG: Daten löschen", "Bitte bearbeiten.\n\nVon: Jane <jane@viewer.example>\n"
                        "Gesendet: Montag, 2. November 2026 09:12\nAn: privacy@acme.example\nBetreff: Daten löschen\n\n"),
    "Outlook, French": ("TR: Suppression", "Merci de traiter.\n\nDe\u00a0: Jane <jane@viewer.example>\n"
                        "Envoyé\u00a0: lundi 2 novembre 2026 09:12\nÀ\u00a0: privacy@acme.example\nObjet\u00a0: Suppression\n\n"),
    "Outlook, Spanish": ("RV: Borrar mis datos", "Por favor, gestionadlo.\n\nDe: Jane <jane@viewer.example>\n"
                         "Enviado: lunes, 2 de noviembre de 2026 9:12\nPara: privacy@acme.example\nAsunto: Borrar\n\n"),
    "Gmail": ("Fwd: Delete my data", "Please erase, see below.\n\n---------- Forwarded message ---------\n"
              "From: Jane <jane@viewer.example>\nDate: Mon, 2 Nov 2026 at 09:12\nSubject: Delete my data\n"
              "To: <privacy@acme.example>\n\n"),
    "Gmail, no prefix left in the subject": ("Delete my data", "See below.\n\n---------- Forwarded message ---------\n"
                                             "From: Jane <jane@viewer.example>\nDate: Mon, 2 Nov 2026\n\n"),
    "Thunderbird": ("Fwd: Delete my data", "See below.\n\n-------- Forwarded Message --------\n"
                    "Subject: \tDelete my data\nDate: \tMon, 2 Nov 2026 09:12:00 +0100\nFrom: \tJane <jane@viewer.example>\n\n"),
    "Apple Mail": ("Fwd: Delete my data", "See below.\n\nBegin forwarded message:\n\nFrom: Jane <jane@viewer.example>\n"
                   "Subject: Delete my data\nDate: 2 November 2026 at 09:12:00 CET\nTo: privacy@acme.example\n\n"),
}


@pytest.mark.parametrize("name", sorted(FORWARDS))
def test_a_forwarded_request_is_read_with_its_ids(name):
    subject, head = FORWARDS[name]
    parsed = parse_message(mail(subject, head + VIEWER_MAIL))
    assert parsed.forwarded
    assert parsed.viewer_ids == ("fw-viewer-1",)
    assert parsed.kind == "erasure"
    assert parsed.problems == ()


NOT_FORWARDS = {
    # A reply quotes the old request; reading it would restart that request.
    "Outlook reply": ("RE: Delete my data", "Thanks.\n\n" + OUTLOOK_HEADERS),
    "reply to a forward": ("RE: FW: Delete my data", "Thanks.\n\n-----Original Message-----\n" + OUTLOOK_HEADERS),
    "German reply": ("AW: Daten löschen", "Danke.\n\nVon: Jane <jane@viewer.example>\nGesendet: Montag\n\n"),
    "Gmail reply": ("Re: Delete my data", "Thanks.\n\nOn Mon, 2 Nov 2026 at 09:12, Jane <jane@viewer.example> wrote:\n"),
    "quoted with >": ("Fwd: Delete my data", "See below.\n\n" + "".join(f"> {line}\n" for line in VIEWER_MAIL.splitlines())),
    # "On ... wrote:" is how a reply quotes, whatever the subject says.
    "forward prefix over a reply quote": ("FW: Delete my data", "See below.\n\nOn Mon, Jane wrote:\n"),
    "a subject that merely starts with a word": ("Information: Delete my data", "Note.\n\n" + OUTLOOK_HEADERS),
}


@pytest.mark.parametrize("name", sorted(NOT_FORWARDS))
def test_a_reply_or_quote_is_never_read_as_a_forward(name):
    subject, head = NOT_FORWARDS[name]
    parsed = parse_message(mail(subject, head if name == "quoted with >" else head + VIEWER_MAIL))
    assert not parsed.forwarded
    assert "fw-viewer-1" not in parsed.viewer_ids


def test_a_forward_reads_one_level_deep_not_the_thread_below():
    inner_thread = "\n\nOn Sun, 1 Nov 2026, Privacy <privacy@acme.example> wrote:\n> Viewer ID: older-1\n"
    parsed = parse_message(mail("Fwd: Delete my data", FORWARDS["Gmail"][1] + VIEWER_MAIL + inner_thread))
    assert parsed.viewer_ids == ("fw-viewer-1",)


def test_the_forwarders_own_ids_and_the_forwarded_ones_are_both_read():
    body = "Please erase.\nViewer ID: own-1\n\n" + FORWARDS["Gmail"][1].split("\n\n", 1)[1] + VIEWER_MAIL
    parsed = parse_message(mail("Fwd: Delete my data", body))
    assert parsed.viewer_ids == ("own-1", "fw-viewer-1")


def test_a_forwarded_negation_still_sends_the_request_to_review():
    body = FORWARDS["Gmail"][1] + "Please do not delete my data yet.\nViewer ID: fw-viewer-1\n"
    parsed = parse_message(mail("Fwd: question", body))
    assert "ambiguous_wording" in {p.code for p in parsed.problems}


def test_forwarded_text_of_plain_mail_is_none():
    assert forwarded_text("Please erase.\nViewer ID: x\n", "Erasure") is None


def test_a_forwarded_request_from_a_tenant_is_erased_and_the_trail_says_it_was_forwarded(world):
    subject, head = FORWARDS["Outlook, English"]
    body = head + "Please delete my data.\nViewer ID: viewer-00003\n"
    world.deliver(world_mail("dpo@acme.example", body, subject=subject))
    world.poll()
    with world.state.session() as session:
        (request,) = session.scalars(sa.select(ErasureRequest)).all()
        received = [e for e in audit.iter_events(session) if e.event == "received"]
    assert request.status == "completed" and request.rows_erased
    assert world.views("env_acme_prod", "viewer-00003") == 0
    assert '"forwarded":true' in received[0].data


def test_a_forward_from_an_unauthenticated_sender_goes_to_review(world):
    subject, head = FORWARDS["Gmail"]
    world.deliver(world_mail("dpo@acme.example", head + "Viewer ID: viewer-00004\n", subject=subject,
                             authenticated=False))
    world.poll()
    with world.state.session() as session:
        (request,) = session.scalars(sa.select(ErasureRequest)).all()
    assert request.status == "needs_review"
    assert world.views("env_acme_prod", "viewer-00004") == 3


OUR_LETTER_FORWARDED = ("Please erase this one as well.\nViewer ID: new-1\n\n-----Original Message-----\n"
                        "From: Privacy Desk <privacy@privacy.example>\nSent: Monday\nSubject: Erasure request\n\n"
                        "Viewer ID: old-1\n")


def test_a_forward_of_our_own_letter_is_a_quote_not_a_request():
    parsed = parse_message(mail("FW: Erasure request", OUR_LETTER_FORWARDED), own_addresses=["Privacy@Privacy.example"])
    assert (parsed.forwarded, parsed.viewer_ids) == (False, ("new-1",))


def test_unless_told_our_address_the_decision_still_refuses_to_act_on_our_forwarded_letter():
    from erasure.config import config_from_dict
    from erasure.verify import decide

    parsed = parse_message(mail("FW: Erasure request", OUR_LETTER_FORWARDED))
    assert parsed.forwarded_from == ("privacy@privacy.example",)
    config = config_from_dict({
        "tenants": [{"name": "acme", "senders": ["@acme.example"], "environments": ["env_acme_prod"]}],
        "policy": {"require_authentication": False, "time_zone": "UTC"},
        "delivery": {"from_address": "privacy@privacy.example"},
    })
    assert decide(parsed, config).reason_code == "forwards_our_letter"
