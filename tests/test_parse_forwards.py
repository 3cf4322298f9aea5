"""Forwarded requests (issue 13): a processor's requests usually arrive as the customer's
forward of its viewer's mail. A forward is read one level deep; a reply never is.
"""

from __future__ import annotations

import email
import email.policy

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


def forwarded_from_tenant(how: str) -> bytes:
    """The test world's authenticated tenant mail forwarding a request for viewer-00003, inline or attached."""
    if how == "attached":
        return multipart_from_tenant(attached(VIEWER_MESSAGE.replace("fw-viewer-1", "viewer-00003")))
    subject, head = FORWARDS["Outlook, English"]
    return world_mail("dpo@acme.example", head + "Please delete my data.\nViewer ID: viewer-00003\n", subject=subject)


@pytest.mark.parametrize("how", ["inline", "attached"])
def test_a_forwarded_request_from_a_tenant_is_erased_and_the_trail_says_it_was_forwarded(world, how):
    world.deliver(forwarded_from_tenant(how))
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


# ---------------------------------------------------------------- forwards sent as attachments

def attached(inner: str, *, own_words: str = "Please action the attached request.\n\nMaria\n",
             subject: str = "Fwd: Delete my data", part_headers: str = "Content-Type: message/rfc822\n"
             "Content-Disposition: attachment; filename=\"Delete my data.eml\"\n") -> bytes:
    """A customer's mail with its viewer's message attached (forward as attachment)."""
    body = (f"--fwd\nContent-Type: text/plain; charset=utf-8\n\n{own_words}\n--fwd\n{part_headers}\n{inner}\n--fwd--\n")
    return (f"From: DPO <dpo@acme.example>\nTo: privacy@privacy.example\nSubject: {subject}\n"
            "Message-ID: <fa1@acme.example>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"fwd\"\n\n"
            + body).encode()


VIEWER_MESSAGE = ("From: Jane Viewer <jane@viewer.example>\nTo: privacy@acme.example\nSubject: Delete my data\n"
                  "Date: Mon, 2 Nov 2026 09:12:00 +0100\nMessage-ID: <jane-1@viewer.example>\n"
                  "Content-Type: text/plain; charset=utf-8\n\n" + VIEWER_MAIL)

ATTACHED_FORWARDS = {
    "Thunderbird (forward as attachment)": attached(VIEWER_MESSAGE),
    "Outlook (an .eml attached, no disposition)": attached(VIEWER_MESSAGE, subject="Erasure request",
                                                           part_headers="Content-Type: message/rfc822\n"),
    "Apple Mail (inline disposition)": attached(VIEWER_MESSAGE, part_headers="Content-Type: message/rfc822\n"
                                                "Content-Disposition: inline\n"),
    "the viewer's own reply thread below its request": attached(
        VIEWER_MESSAGE + "\nOn Sun, 1 Nov 2026, Acme <privacy@acme.example> wrote:\n> Viewer ID: older-1\n"),
}


@pytest.mark.parametrize("name", sorted(ATTACHED_FORWARDS))
def test_a_forward_as_attachment_is_read_like_an_inline_forward(name):
    parsed = parse_message(ATTACHED_FORWARDS[name])
    assert (parsed.viewer_ids, parsed.forwarded, parsed.forwarded_from) == (("fw-viewer-1",), True, ("jane@viewer.example",))
    assert (parsed.kind, parsed.problems) == ("erasure", ())


def test_the_files_attached_to_a_forwarded_message_are_read():
    csv_part = ("--in\nContent-Type: text/csv\nContent-Disposition: attachment; filename=\"ids.csv\"\n\n"
                "viewer_id\nfw-csv-1\n--in--\n")
    inner = ("From: jane@viewer.example\nSubject: Delete\nContent-Type: multipart/mixed; boundary=\"in\"\n\n"
             "--in\nContent-Type: text/plain\n\nPlease delete the viewers in the file.\n" + csv_part)
    parsed = parse_message(attached(inner))
    assert (parsed.viewer_ids, parsed.forwarded, parsed.problems) == (("fw-csv-1",), True, ())


def codes(parsed) -> set[str]:
    return {p.code for p in parsed.problems}


# Near misses: attached messages that are not a forward we read.
def test_a_forward_inside_a_forward_is_not_read_and_goes_to_review():
    inner = ("From: colleague@acme.example\nSubject: Fwd: Delete my data\nContent-Type: multipart/mixed; boundary=\"in\"\n\n"
             "--in\nContent-Type: text/plain\n\nSee attached.\n--in\nContent-Type: message/rfc822\n\n"
             + VIEWER_MESSAGE + "\n--in--\n")
    parsed = parse_message(attached(inner))
    assert "fw-viewer-1" not in parsed.viewer_ids
    assert "forwarded_message" in codes(parsed)


def test_a_bounce_carrying_the_original_is_not_read_as_a_forward():
    report = (f"--fwd\nContent-Type: text/plain\n\nDelivery failed.\n--fwd\nContent-Type: message/delivery-status\n\n"
              f"Reporting-MTA: dns; mx.acme.example\n\nFinal-Recipient: rfc822; x@y.example\nAction: failed\nStatus: 5.1.1\n"
              f"\n--fwd\nContent-Type: message/rfc822\n\n{VIEWER_MESSAGE}\n--fwd--\n")
    raw = ("From: DPO <dpo@acme.example>\nTo: privacy@privacy.example\nSubject: Undelivered\nMIME-Version: 1.0\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=\"fwd\"\n\n" + report).encode()
    parsed = parse_message(raw)
    assert (parsed.viewer_ids, parsed.forwarded) == ((), False)
    assert "forwarded_message" in codes(parsed)


def test_our_own_letter_attached_back_is_a_quote_not_a_request():
    ours = VIEWER_MESSAGE.replace("Jane Viewer <jane@viewer.example>", "Privacy Desk <privacy@privacy.example>")
    parsed = parse_message(attached(ours, own_words="Please erase this one too.\nViewer ID: new-1\n"),
                           own_addresses=["privacy@privacy.example"])
    assert (parsed.viewer_ids, parsed.forwarded) == (("new-1",), False)
    unless_told = parse_message(attached(ours))
    assert unless_told.forwarded_from == ("privacy@privacy.example",)  # verify.decide: forwards_our_letter


def test_a_quoted_attachment_negation_still_goes_to_review():
    inner = VIEWER_MESSAGE.replace("please delete all data you hold about me.", "please do not delete my data yet.")
    assert "ambiguous_wording" in codes(parse_message(attached(inner)))


MSG_ATTACHMENTS = {
    "by content type": 'Content-Type: application/vnd.ms-outlook\nContent-Disposition: attachment; filename="Request"\n',
    "by name, as octet-stream": 'Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="Delete my data.msg"\n',
}


@pytest.mark.parametrize("name", sorted(MSG_ATTACHMENTS))
def test_an_outlook_msg_attachment_is_not_read_and_the_customer_is_asked_for_eml(name):
    part = MSG_ATTACHMENTS[name] + "Content-Transfer-Encoding: base64\n"
    parsed = parse_message(attached("0M8R4KGxGuEAAAAAAAAAAAAAAAAAAAAAPgADAP7/CQAGAAAAAAAAAAAAAAAB\n", part_headers=part))
    assert (parsed.viewer_ids, parsed.forwarded) == ((), False)
    assert "attachment_outlook_message" in codes(parsed)


def multipart_from_tenant(raw: bytes, **kw) -> bytes:
    """The test world's authenticated tenant mail, carrying ``attached``'s MIME body."""
    head, body = raw.decode().split("\n\n", 1)
    ctype = head.split("Content-Type: ", 1)[1]
    return world_mail("dpo@acme.example", body, subject="Fwd: Delete my data", headers={"Content-Type": ctype}, **kw)


def test_a_msg_attachment_asks_the_customer_to_forward_inline_or_as_eml(world):
    part = MSG_ATTACHMENTS["by content type"] + "Content-Transfer-Encoding: base64\n"
    world.deliver(multipart_from_tenant(attached("0M8R4KGxGuEAAAAAAAAAAAAAAAAAAAAAPgADAP7/CQAGAAAAAAAAAAAAAAAB\n",
                                                 part_headers=part)))
    world.poll()
    with world.state.session() as session:
        (request,) = session.scalars(sa.select(ErasureRequest)).all()
        letters = {m.kind: m.raw for m in request.replies}
    assert (request.status, request.reason_code) == ("needs_review", "attachment_outlook_message")
    letter = email.message_from_bytes(letters["needs_information"], policy=email.policy.default)
    text = letter.get_body(("plain",)).get_content()
    assert ".msg" in text and ".eml" in text
