"""Letters read as written for the customer: every reason code has customer words, and no officer words leak.

``verify.REASONS`` is written for the privacy officer ("a person must look",
"the requester should be asked for one"); ``replies.CUSTOMER_TEXTS`` is what a
letter says. These tests hold the two tables together and read the rendered
letters the way the customer's privacy team will.
"""

from __future__ import annotations

import email
import email.policy
import re

import pytest
import sqlalchemy as sa

from erasure.models import ErasureRequest, OutboxMessage
from erasure.notify import TemplateRenderer
from erasure.replies import ASK_FOR_INFORMATION, CUSTOMER_TEXTS, customer_text
from erasure.verify import REASONS
from tests.test_templates import sample_context
from tests.world import mail

# Words that belong to the officer's side of the desk, to our configuration or to
# the parser's vocabulary: none may appear in what a customer reads.
REVIEWER_WORDS = [
    "a person", "officer", "review", "requester should", "the requester", "the sender", "must look",
    "must read", "must check", "policy.", "mailbox.", "[[tenants]]", "configured", "configuration",
    "authserv", "dmarc", "dkim", "parser", "problem", "tenant", "not read automatically", "suspicious",
    "documented formats",
]
WORD_PATTERN = re.compile("|".join(re.escape(w) for w in REVIEWER_WORDS), re.IGNORECASE)
RENDERER = TemplateRenderer()
REGULATIONS = ("gdpr", "ccpa")


def test_every_reason_code_has_a_customer_entry_and_no_other() -> None:
    assert set(CUSTOMER_TEXTS) == set(REASONS)


@pytest.mark.parametrize("code", sorted(ASK_FOR_INFORMATION))
def test_every_code_that_asks_the_customer_has_words_for_the_customer(code: str) -> None:
    text = CUSTOMER_TEXTS[code]
    assert text, f"{code} sends a needs_information letter but has no customer text"
    assert customer_text(code) == text


def test_codes_never_told_include_every_sender_that_gets_no_letter() -> None:
    for code in ("unauthenticated", "unknown_sender", "bad_from", "automatic_mail", "echoes_our_reply",
                 "auto_response_suppressed", "hidden_text"):
        assert CUSTOMER_TEXTS[code] is None, code
        assert code not in ASK_FOR_INFORMATION


@pytest.mark.parametrize("code", sorted(c for c, t in CUSTOMER_TEXTS.items() if t))
def test_no_customer_text_uses_reviewer_words(code: str) -> None:
    text = CUSTOMER_TEXTS[code]
    assert text is not None
    assert WORD_PATTERN.search(text) is None, (code, WORD_PATTERN.search(text))
    assert text != REASONS[code]
    assert text[0].isupper() and text.endswith("."), code  # a sentence, as it stands alone in a letter


def test_the_reviewer_word_check_is_not_vacuous() -> None:
    """The officer's texts do use those words: the check above would catch them leaking."""
    caught = [code for code in ASK_FOR_INFORMATION if WORD_PATTERN.search(REASONS[code])]
    assert "no_viewer_id" in caught
    assert WORD_PATTERN.search("the requester should be asked for one")


def test_an_unknown_or_missing_code_gets_general_customer_words_never_the_officers() -> None:
    for code in (None, "", "some_future_code", "unauthenticated"):
        text = customer_text(code)
        assert text and WORD_PATTERN.search(text) is None


@pytest.mark.parametrize("regulation", REGULATIONS)
@pytest.mark.parametrize("code", sorted(ASK_FOR_INFORMATION))
def test_the_needs_information_letter_reads_as_written_for_the_customer(code: str, regulation: str) -> None:
    context = sample_context("needs_information", regulation, missing=customer_text(code))
    subject, text, html = RENDERER.render("needs_information", context)
    customer = CUSTOMER_TEXTS[code]
    assert customer is not None
    flat_text = " ".join(text.split())
    assert customer in flat_text
    html_text = " ".join(re.sub(r"<[^>]+>", " ", html).replace("&#34;", '"').replace("&#39;", "'").split())
    assert customer in html_text
    officer = REASONS[code]
    for letter in (subject, flat_text, html_text):
        assert officer not in letter
        assert WORD_PATTERN.search(letter) is None, (code, WORD_PATTERN.search(letter))


def test_the_letter_a_customer_gets_for_a_request_without_ids_carries_customer_words(world) -> None:
    """End to end: the workflow fills the letter from the customer table, not from the decision's reason."""
    world.deliver(mail("dpo@acme.example", "Please delete our user's data.\n"))
    world.poll()
    with world.state.session() as session:
        (request,) = session.scalars(sa.select(ErasureRequest)).all()
        assert request.reason_code == "no_viewer_id"
        assert request.reason.startswith(REASONS["no_viewer_id"])  # the officer still sees the officer's words
        (raw,) = [m.raw for m in session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "needs_information"))]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    bodies = [part.get_content() for part in message.walk() if part.get_content_maintype() == "text"]
    assert len(bodies) == 2
    for body in bodies:
        flat = " ".join(re.sub(r"<[^>]+>", " ", body).split())
        assert CUSTOMER_TEXTS["no_viewer_id"] in flat
        assert "requester should" not in flat and "documented formats" not in flat


@pytest.mark.parametrize("regulation", REGULATIONS)
@pytest.mark.parametrize("kind", ["acknowledgement", "completed", "no_data_found", "needs_information", "rejected", "extended"])
def test_no_packaged_letter_speaks_the_officers_language(kind: str, regulation: str) -> None:
    """The letters' own words too: officer-written reasons (reject, extend) are the officer's to word."""
    context = sample_context(kind, regulation)
    for key in ("reasons", "missing"):
        if key in context:
            context[key] = "Your request names viewer ids we could not find."
    subject, text, html = RENDERER.render(kind, context)
    html_text = re.sub(r"<[^>]+>", " ", html)
    for letter in (subject, text, html_text):
        assert WORD_PATTERN.search(letter) is None, (kind, WORD_PATTERN.search(letter))
