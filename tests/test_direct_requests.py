"""Viewers who write to us directly (issue 14): one data-free letter, or none, and always a person.

A sender no tenant lists is usually a viewer writing to the privacy mailbox
directly. We cannot identify anyone from an email address and must not say
whether we hold anything, so such a sender gets at most one fixed letter per
window ("ask the service you used"), only when its own domain passes DMARC and
the mail is not automatic; the request itself still goes to review. Each test
runs a real poll: Maildir in, SQLite state and store, replies as .eml files
(one over IMAP against Dovecot).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from erasure.models import AuditEvent, ErasureRequest, OutboxMessage
from erasure.notify import ReplySpec, TemplateRenderer, queue_reply
from erasure.parse import parse_message
from erasure.parse.quotes import echoes_our_letters
from erasure.runner import poll_once
from erasure.verify import DirectReply, direct_reply
from tests.test_poll_imap import imap_world  # noqa: F401 - the Dovecot-backed world, as a fixture
from tests.test_templates import _variables, sample_context
from tests.world import AUTHSERV, NOW, World, mail, make_world

AUTOMATIC = Path(__file__).parent / "emails_automatic"
VIEWER = "jane.viewer@mail.example"
BODY = "Hello, please delete all my data. My Viewer ID: viewer-00003\nThanks, Jane Q. Viewer\n"
DAY = dt.timedelta(days=1)


@pytest.fixture
def world_with(tmp_path, monkeypatch):
    """A world with other [policy] settings (``world`` itself comes from tests/world.py)."""
    made: list[World] = []

    def make(**policy: object) -> World:
        made.append(make_world(tmp_path, monkeypatch, **policy))
        return made[-1]

    yield make
    for w in made:
        w.desk.close()
        w.state.close()


def at(w: World, moment: dt.datetime) -> None:
    """Set the desk's clock (intake, the outbox's created_at and so the window all read it)."""
    w.desk.now = lambda: moment


def letters(w: World) -> list[email.message.EmailMessage]:
    """Every data-free letter delivered so far, parsed."""
    parsed = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in w.replies()]
    return [m for m in parsed if ".direct_request" in m["Message-ID"]]


def requests(w: World) -> list[ErasureRequest]:
    with w.state.session() as session:
        return list(session.scalars(sa.select(ErasureRequest).order_by(ErasureRequest.id)))


def withheld(w: World) -> list[str]:
    """The reason codes of every `direct_reply_withheld` event, in order."""
    with w.state.session() as session:
        events = session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "direct_reply_withheld")
                                 .order_by(AuditEvent.seq))
        return [re.search(r'"reason_code":"(\w+)"', e.data).group(1) for e in events]  # type: ignore[union-attr]


def dmarc(domain: str, result: str = "pass") -> dict[str, str]:
    return {"Authentication-Results": f"{AUTHSERV}; dmarc={result} header.from={domain}"}


# ---------------------------------------------------------------- who gets the letter


def test_an_authenticated_direct_requester_gets_one_letter_and_the_request_goes_to_review(world):
    world.deliver(mail(VIEWER, BODY))
    world.poll()

    (request,) = requests(world)
    assert (request.status, request.reason_code, request.reply_allowed) == ("needs_review", "unknown_sender", False)
    (letter,) = letters(world)
    assert letter["To"] == VIEWER
    assert letter["Auto-Submitted"] == "auto-replied"
    with world.state.session() as session:
        (row,) = session.scalars(sa.select(OutboxMessage))
        assert (row.kind, row.status) == ("direct_request", "sent")
        events = [e.event for e in session.scalars(sa.select(AuditEvent).where(
            AuditEvent.request_ref == request.reference).order_by(AuditEvent.seq))]
    assert events == ["received", "reply_queued", "needs_review", "reply_sent"]
    assert withheld(world) == []
    assert world.views("env_acme_prod", "viewer-00003") == 3, "nothing is erased on a stranger's word"


def test_at_most_one_letter_per_address_within_the_window_then_another(world):
    world.deliver(mail(VIEWER, BODY))
    world.poll()
    at(world, NOW + 29 * DAY)
    world.deliver(mail(VIEWER, "Did you delete it?\n"))
    world.poll()
    assert len(letters(world)) == 1
    assert withheld(world) == ["direct_reply_recent"]

    at(world, NOW + 30 * DAY)  # policy.direct_reply_window_days = 30 (the default)
    world.deliver(mail(VIEWER, "Hello again, please delete my data.\n"))
    world.poll()
    assert len(letters(world)) == 2
    assert [r.status for r in requests(world)] == ["needs_review"] * 3, "every request still goes to a person"


def test_the_window_is_configurable(world_with):
    w = world_with(direct_reply_window_days=3)
    w.deliver(mail(VIEWER, BODY))
    w.poll()
    at(w, NOW + 3 * DAY)
    w.deliver(mail(VIEWER, BODY))
    w.poll()
    assert len(letters(w)) == 2


def test_spellings_of_one_address_get_one_letter(world):
    for sender in ("Jane.Viewer@Mail.Example", "jane.viewer+privacy@mail.example", "JANE.VIEWER@MAIL.EXAMPLE",
                   VIEWER):
        world.deliver(mail(sender, BODY))
    world.poll()
    (letter,) = letters(world)
    assert letter["To"] == "Jane.Viewer@mail.example"  # the first, as written (the parser lower-cases domains)
    assert withheld(world) == ["direct_reply_recent"] * 3


def test_two_viewers_each_get_their_own_letter(world):
    world.deliver(mail(VIEWER, BODY))
    world.deliver(mail("samuel.k@other-mail.example", BODY))
    world.poll()
    assert sorted(m["To"] for m in letters(world)) == [VIEWER, "samuel.k@other-mail.example"]


# ---------------------------------------------------------------- who never gets it


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Authentication-Results": f"{AUTHSERV}; dkim=fail header.d=mail.example; dmarc=fail header.from=mail.example"},
         "direct_reply_unauthenticated"),
        ({"Authentication-Results": "mx.attacker.example; dmarc=pass header.from=mail.example"},  # not our MX
         "direct_reply_unauthenticated"),
        ({"Authentication-Results": f"{AUTHSERV}; dkim=pass header.d=mail.example"},  # no DMARC verdict: not enough
         "direct_reply_unauthenticated"),
        ({"Authentication-Results": f"{AUTHSERV}; dmarc=pass header.from=mail.example; dmarc=fail header.from=mail.example"},
         "direct_reply_unauthenticated"),  # trusted results disagree
        (dmarc("other.example"), "direct_reply_domain_mismatch"),
        (dmarc("example"), "direct_reply_domain_mismatch"),  # a parent domain is another domain
        ({"Authentication-Results": f"{AUTHSERV}; dmarc=pass header.from=mail.example; dmarc=pass header.from=evil.example"},
         "direct_reply_domain_mismatch"),
        ({**dmarc("mail.example"), "X-Auto-Response-Suppress": "OOF, AutoReply"}, "direct_reply_automatic"),
        ({**dmarc("mail.example"), "List-Unsubscribe": "<mailto:unsubscribe@mail.example>"}, "direct_reply_automatic"),
        ({**dmarc("mail.example"), "Auto-Submitted": "auto-replied"}, "direct_reply_automatic"),
        ({**dmarc("mail.example"), "Precedence": "bulk"}, "direct_reply_automatic"),
    ],
    ids=["dmarc fail", "untrusted authserv-id", "aligned dkim only", "conflicting dmarc", "dmarc for another domain",
         "dmarc for the parent domain", "a second dmarc pass for another domain", "X-Auto-Response-Suppress",
         "List-Unsubscribe", "Auto-Submitted", "Precedence: bulk"],
)
def test_no_letter_without_own_domain_dmarc_or_to_a_machine(world, headers, code):
    world.deliver(mail(VIEWER, BODY, headers=headers))
    world.poll()
    assert letters(world) == [] and world.replies() == []
    assert withheld(world) == [code]
    (request,) = requests(world)
    assert request.status in ("needs_review", "ignored")


@pytest.mark.parametrize("name", ["sisimai/arf-01.eml", "sisimai/lhost-amavis-01.eml", "sisimai/lhost-gmail-01.eml",
                                  "flufl/dsn_01.txt", "flufl/yahoo_01.txt"])
def test_real_automatic_mail_gets_no_letter_even_with_a_dmarc_pass(world, name):
    raw = (AUTOMATIC / name).read_bytes()
    sender = parse_message(raw).from_address
    assert sender is not None
    newline = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
    world.deliver(f"Authentication-Results: {AUTHSERV}; dmarc=pass header.from={sender.rpartition('@')[2]}"
                  .encode() + newline + raw)
    world.poll()
    assert world.replies() == []
    assert [r.status for r in requests(world)] == ["ignored"]
    assert withheld(world) == ["direct_reply_automatic"]


@pytest.mark.parametrize("sender", ["privacy@analytics.example", "colleague@analytics.example",
                                    "Colleague@Analytics.Example"])
def test_no_letter_to_our_own_address_or_domain(world, sender):
    world.deliver(mail(sender, BODY))
    world.poll()
    assert world.replies() == []
    assert withheld(world) == ["direct_reply_our_address"]


def test_no_letter_in_answer_to_our_own_letter(world):
    world.deliver(mail(VIEWER, BODY))
    world.poll()
    (ours,) = letters(world)
    at(world, NOW + 40 * DAY)  # the window has passed: only the thread stops it
    world.deliver(mail(VIEWER, "But I want it deleted!\n", subject=f"Re: {ours['Subject']}",
                       headers={"In-Reply-To": ours["Message-ID"], "References": ours["Message-ID"]}))
    world.poll()
    assert len(letters(world)) == 1
    assert withheld(world) == ["direct_reply_thread"]


def test_in_the_controller_role_the_letter_does_not_apply(world_with):
    w = world_with(role="controller")
    w.deliver(mail(VIEWER, BODY))
    w.poll()
    assert w.replies() == []
    (request,) = requests(w)
    assert (request.status, request.reason_code) == ("needs_review", "unknown_sender")  # today's review
    assert withheld(w) == ["direct_reply_controller"]


def test_a_tenants_sender_never_gets_the_letter(world):
    world.deliver(mail("dpo@acme.example", "Please erase.\nViewer ID: viewer-00001\n"))
    world.deliver(mail("dpo@acme.example", "Please erase.\n", headers={"X-Auto-Response-Suppress": "All"}))
    world.poll()
    assert letters(world) == [] and withheld(world) == []


def test_the_letter_is_never_an_ordinary_reply_and_ordinary_replies_never_go_to_a_direct_requester(world):
    world.deliver(mail(VIEWER, BODY))
    world.poll()
    with world.state.session() as session:
        (request,) = session.scalars(sa.select(ErasureRequest))
        for kind in ("acknowledgement", "no_data_found", "needs_information"):
            assert queue_reply(session, world.config, request, ReplySpec(kind), world.desk.renderer, now=NOW) is None
            assert queue_reply(session, world.config, request, ReplySpec(kind), world.desk.renderer, now=NOW,
                               data_free_to=VIEWER) is None
        assert queue_reply(session, world.config, request, ReplySpec("direct_request"), world.desk.renderer,
                           now=NOW) is None
        assert queue_reply(session, world.config, request, ReplySpec("direct_request"), world.desk.renderer,
                           now=NOW, data_free_to="someone@else.example") is None
        session.rollback()
    # An officer's rejection of a direct request sends nothing either.
    world.desk.reject(requests(world)[0].reference, reason="Not a customer's request.")
    world.poll()
    assert len(world.replies()) == 1


# ---------------------------------------------------------------- what the letter says


def test_the_letter_says_who_we_are_and_where_to_go_and_nothing_about_any_data(world):
    world.deliver(mail(VIEWER, BODY, subject="Delete viewer-00003 now, Jane Q. Viewer"))
    world.deliver(mail("samuel.k@other-mail.example", "Viewer ID: viewer-00004\nSam\n", subject="GDPR erasure"))
    world.poll()
    first, second = sorted(letters(world), key=lambda m: m["To"])
    for letter in (first, second):
        text = letter.get_body(("plain",)).get_content()
        html = letter.get_body(("html",)).get_content()
        words = " ".join(text.split())
        for needed in ("processor", "service provider", "on behalf of the services that use us",
                       "cannot identify anyone from an email address", "contact the service (the website or app)",
                       "make the request to us"):
            assert needed in words, needed
            assert needed in " ".join(re.sub(r"<[^>]+>", " ", html).split()), needed
        whole = (str(letter["Subject"]) + text + html).lower()
        for never in ("viewer-0000", "viewer id", "jane", "samuel", "delete viewer", "gdpr erasure",
                      "no data", "found", "we hold", "we do not hold", "erased", "deleted", "removed", "record",
                      "match", "acme", "globex", "env_", "due", "days"):
            assert never not in whole, never
    # Everyone gets the same words: only the reference (and the date it reached us) differ.
    def normal(m):
        body = m.get_body(("plain",)).get_content()
        return re.sub(r"ER-\d{4}-\d{6}", "REF", body)
    assert normal(first) == normal(second)


def test_the_letter_goes_through_the_outbox_and_its_per_recipient_cap(world):
    world.config = dataclasses.replace(world.config, delivery=dataclasses.replace(world.config.delivery,
                                                                                  max_per_recipient_per_day=0))
    world.desk.config = world.config
    world.deliver(mail(VIEWER, BODY))
    world.poll()
    with world.state.session() as session:
        (row,) = session.scalars(sa.select(OutboxMessage))
        assert (row.kind, row.status) == ("direct_request", "parked")


# ---------------------------------------------------------------- the pure verdict


def test_the_verdict_is_none_for_a_tenants_sender_or_no_sender(world):
    tenant = parse_message(mail("dpo@acme.example", BODY))
    assert direct_reply(tenant, world.config) is None
    no_from = parse_message(b"Subject: hi\r\n\r\nViewer ID: x\r\n")
    assert direct_reply(no_from, world.config) is None
    assert direct_reply(parse_message(mail(VIEWER, BODY)), world.config) == DirectReply(VIEWER, "direct_reply_allowed")


def test_authentication_being_optional_does_not_open_the_letter(world_with):
    w = world_with(require_authentication=False)
    verdict = direct_reply(parse_message(mail(VIEWER, BODY, authenticated=False)), w.config)
    assert verdict == DirectReply(None, "direct_reply_unauthenticated")


# ---------------------------------------------------------------- over IMAP


def test_over_imap_the_letter_goes_once(imap_world):
    w = imap_world
    w.dovecot.deliver(w.user, [mail(VIEWER, BODY), mail("Jane.Viewer+x@mail.example", BODY),
                               mail(VIEWER, BODY, authenticated=False)], folder="Requests")
    result = poll_once(w.config)
    assert result.fetched == 3
    assert sorted(o.status for o in result.outcomes) == ["needs_review"] * 3
    assert [m["To"] for m in letters(w)] == [VIEWER]
    assert sorted(withheld(w)) == ["direct_reply_recent", "direct_reply_unauthenticated"]


# ---------------------------------------------------------------- the template


def test_the_template_uses_no_fact_about_the_request_but_its_reference_and_date():
    assert _variables("direct_request") == {"reference", "received_date", "controller"}


def test_a_helpdesk_echoing_the_letter_is_recognised_as_our_own_words():
    _, text, _ = TemplateRenderer().render("direct_request", sample_context("direct_request", "gdpr"))
    assert echoes_our_letters("Thank you for contacting support. We received your message:\n\n" + text)
