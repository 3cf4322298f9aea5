"""Automatic mail: every marker an auto-responder writes is recognised; people are not.

Automatic mail is recorded and never answered or acted on, so a marker that
catches a person closes a genuine request unread: each marker has near-misses.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# ---- issue 13: what real-world automatic mail looks like when the usual markers are missing ----

def message(*, from_: str = "Alice <privacy@acme.example>", subject: str = "GDPR erasure request", headers: str = "",
            content_type: str = "text/plain; charset=utf-8", body: str = "Please erase.\nViewer ID: v-1\n") -> bytes:
    return (f"From: {from_}\nTo: privacy@privacy.example\nSubject: {subject}\nMessage-ID: <m1@acme.example>\n"
            f"MIME-Version: 1.0\n{headers}Content-Type: {content_type}\n\n{body}").encode()


REPORT_TEXT = "Your message could not be delivered.\n\n<bob@acme.example>: 550 5.1.1 User unknown\n"
SES_JSON = ('{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bouncedRecipients":'
            '[{"emailAddress":"bob@acme.example"}]},"mail":{"source":"privacy@privacy.example","destination":["bob@acme.example"]}}')


def mixed(*parts: tuple[str, str]) -> tuple[str, str]:
    body = "".join(f"--b\nContent-Type: {ctype}\n\n{text}\n" for ctype, text in parts) + "--b--\n"
    return 'multipart/mixed; boundary="b"', body


ORIGINAL = "From: privacy@privacy.example\nTo: bob@acme.example\nSubject: Your request\n\nDone.\n"
MACHINES = [
    # (description, message kwargs, expected code)
    ("List-Subscribe only (fml, ezmlm notices)", {"headers": "List-Subscribe: <mailto:l-request@acme.example>\n"}, "mailing_list"),
    ("List-Post only", {"headers": "List-Post: <mailto:l@acme.example>\n"}, "mailing_list"),
    ("Mailing-List (ezmlm)", {"headers": "Mailing-List: contact l-help@acme.example; run by ezmlm\n"}, "mailing_list"),
    ("X-Mailman-Version", {"headers": "X-Mailman-Version: 2.1.39\n"}, "mailing_list"),
    ("Mailman digest subject", {"subject": "Privacy-Forum Digest, Vol 3, Issue 12"}, "mailing_list"),
    ("multipart/digest", dict(zip(("content_type", "body"), ('multipart/digest; boundary="b"', "--b\n\nFrom: x@y\n\nhi\n--b--\n"))), "mailing_list"),
    ("SNS header", {"headers": "x-amz-sns-message-id: 9f1c\n"}, "notification_service"),
    ("SNS sender", {"from_": "AWS Notifications <no-reply@sns.amazonaws.com>"}, "notification_service"),
    ("SES JSON relayed from a tenant's own address", {"body": SES_JSON + "\n--\nunsubscribe: https://sns.example/\n"}, "notification_service"),
    ("SES JSON quoting 30 KB of the original's headers", {"body": SES_JSON[:-2] + ',"headers":[' + ",".join(['{"name":"Received","value":"' + "x" * 200 + '"}'] * 150) + "]}}\n"}, "notification_service"),
    ("SES JSON inside the SNS envelope", {"body": '{"Type":"Notification","Message":' + __import__("json").dumps(SES_JSON) + "}"}, "notification_service"),
    ("ARF as multipart/mixed", dict(zip(("content_type", "body"), mixed(("text/plain", "abuse report"), ("message/feedback-report", "Feedback-Type: abuse\n"), ("message/rfc822", ORIGINAL)))), "feedback_report"),
    ("DSN as multipart/mixed", dict(zip(("content_type", "body"), mixed(("text/plain", "failed"), ("message/delivery-status", "Action: failed\n")))), "delivery_report"),
    ("read receipt as multipart/mixed", dict(zip(("content_type", "body"), mixed(("text/plain", "read"), ("message/disposition-notification", "Disposition: manual-action/MDN-sent-manually; displayed\n")))), "delivery_report"),
    ("Hotmail JMRP", dict(zip(("content_type", "body"), mixed(("message/rfc822", "X-HmXmrOriginalRecipient: bob@hotmail.example\n" + ORIGINAL)))), "feedback_report"),
    ("ndr@ with report text", {"from_": "ndr@acme.example", "body": REPORT_TEXT}, "system_sender"),
    ("post_master@ with report text", {"from_": "post_master@acme.example", "body": REPORT_TEXT}, "system_sender"),
    ("antivirus gateway", {"from_": "AntiVirus <antivirus@acme.example>", "subject": "Virus alert: message quarantined", "body": "A virus was found.\n"}, "system_sender"),
    ("Exchange's own mailbox, French", {"from_": "Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@acme.example>", "subject": "Non remis : Demande", "body": "Votre message n'a pas pu être remis.\n"}, "system_sender"),
    ("display name only", {"from_": "Mail Delivery System <noreply@mx.acme.example>", "body": REPORT_TEXT}, "system_sender"),
    ("Postmaster\\@ quirk", {"from_": "<Postmaster\\@acme.example@relay.example>", "body": REPORT_TEXT}, "system_sender"),
    ("bounce subject with the original attached", dict(zip(("subject", "content_type", "body"), ("Undeliverable: Your request", *mixed(("text/plain", REPORT_TEXT), ("message/rfc822", ORIGINAL))))), "delivery_report"),
    ("Lotus agent", {"headers": "X-Autogenerated: Reply\n"}, "auto_submitted"),
]


@pytest.mark.parametrize("kwargs, code", [m[1:] for m in MACHINES], ids=[m[0] for m in MACHINES])
def test_automatic_mail_without_the_usual_markers_is_recognised(kwargs: dict, code: str) -> None:
    parsed = parse_message(message(**kwargs))
    assert parsed.automatic is not None and parsed.automatic.code == code


#: A person's mail near each new marker. The rule: ignoring a person is worse
#: than a person reading a machine's mail, so one marker alone is doubt
#: ("maybe_automatic": review, never answered), never "automatic".
PEOPLE = [
    # (description, message kwargs, problem code expected or None)
    ("a person writing from postmaster@", {"from_": "Sam <postmaster@acme.example>"}, "maybe_automatic"),
    ("a person writing from ndr@", {"from_": "ndr@acme.example"}, "maybe_automatic"),
    ("a tenant's CRM adds List-Unsubscribe", {"headers": "List-Unsubscribe: <https://crm.acme.example/u>\n"}, "maybe_automatic"),
    ("exact bounce subject, a person's words", {"subject": "Undeliverable: my last request"}, "maybe_automatic"),
    ("a subject about a delivery failure", {"subject": "Delivery failure of your confirmation"}, None),
    ("a reply about a bounce", {"subject": "Re: Undeliverable: my last request"}, None),
    ("a forwarded bounce, a person asks", {"subject": "Fwd: Undelivered Mail Returned to Sender", "body": "What is this?\nViewer ID: v-1\n"}, None),
    ("a reply to a digest", {"subject": "Re: Privacy-Forum Digest, Vol 3, Issue 12"}, None),
    ("a forwarded email attached, no bounce in it", dict(zip(("content_type", "body"), mixed(("text/plain", "Please erase.\nViewer ID: v-1"), ("message/rfc822", ORIGINAL)))), None),
    ("JSON that is not an SES notification", {"body": '{"viewer_id": "v-1", "notificationType": "Erasure"}\nViewer ID: v-1\n'}, None),
    ("SES-like JSON without the mail object", {"body": '{"notificationType": "Bounce"}\nViewer ID: v-1\n'}, None),
    ("names containing system words", {"from_": "ndr.smith@acme.example"}, None),
    ("antivirus team", {"from_": "antivirus-team@acme.example"}, None),
    ("an SNS-like domain", {"from_": "dpo@sns.amazonaws.com.acme.example"}, None),
]


@pytest.mark.parametrize("kwargs, problem", [p[1:] for p in PEOPLE], ids=[p[0] for p in PEOPLE])
def test_people_near_the_new_markers_are_never_ignored(kwargs: dict, problem: str | None) -> None:
    parsed = parse_message(message(**kwargs))
    assert parsed.automatic is None
    codes = {p.code for p in parsed.problems}
    assert ("maybe_automatic" in codes) is (problem == "maybe_automatic")


def test_flufl_bounce_reads_a_bounded_start_of_the_message() -> None:
    from erasure.parse.automatic import BOUNCE_SCAN_BYTES, _bounced_addresses

    bounce = ("From: MAILER-DAEMON@mx.acme.example\nSubject: Returned mail: see transcript for details\n"
              "Content-Type: text/plain\n\n{pad}   ----- The following addresses had permanent fatal errors -----\n"
              "<bob@acme.example>\n    (reason: 550 5.1.1 User unknown)\n")
    assert _bounced_addresses(bounce.format(pad="").encode())
    assert not _bounced_addresses(bounce.format(pad="x\n" * BOUNCE_SCAN_BYTES).encode())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), st.sampled_from(["MAILER-DAEMON@x", "postmaster@acme.example", "a@b.example", ""]),
       st.sampled_from(["multipart/report; boundary=b", "multipart/mixed; boundary=b", "text/plain", "message/rfc822"]))
def test_the_automatic_signals_never_raise(body: bytes, from_: str, ctype: str) -> None:
    from erasure.parse.automatic import _bounced_addresses

    raw = f"From: {from_}\r\nSubject: Returned mail: x\r\nContent-Type: {ctype}\r\n\r\n".encode() + body
    _bounced_addresses(raw)
    parse_message(raw)  # automatic or not, read without raising
