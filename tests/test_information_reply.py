"""A customer's reply to our `needs_information` letter, naming the ids, completes the
request that asked for them instead of opening a second one (issue 13)."""

from __future__ import annotations

import sqlalchemy as sa

from erasure import audit
from erasure.models import ErasureRequest, OutboxMessage
from tests.world import mail


def requests(w):
    with w.state.session() as session:
        return session.scalars(sa.select(ErasureRequest).order_by(ErasureRequest.id)).all()


def asked(w, sender="dpo@acme.example"):
    """A request naming no id; returns the Message-ID of the letter that asks for them."""
    w.deliver(mail(sender, "Please erase our viewer's data (GDPR).\n", subject="Erasure request"))
    w.poll()
    with w.state.session() as session:
        letter = session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "needs_information")).one()
        return letter.message_id


def answer(w, letter_id, body="Here it is, please erase.\nViewer ID: viewer-00005\n", sender="dpo@acme.example", **kw):
    quoted = "\nOn Mon, 2 Nov 2026, Privacy <privacy@analytics.example> wrote:\n> We cannot act on it yet\n"
    w.deliver(mail(sender, body + quoted, subject="Re: Erasure request: we need more information",
                   headers={"In-Reply-To": letter_id, "References": letter_id}, **kw))
    return w.poll()


def test_the_ids_in_a_reply_complete_the_request_that_asked_for_them(world):
    letter_id = asked(world)
    answer(world, letter_id)
    (request,) = requests(world)
    assert (request.status, request.response) == ("completed", "completed")
    assert world.views("env_acme_prod", "viewer-00005") == 0
    with world.state.session() as session:
        events = [e.event for e in audit.iter_events(session)]
        kinds = session.scalars(sa.select(OutboxMessage.kind).order_by(OutboxMessage.id)).all()
    assert "information_received" in events
    assert kinds == ["needs_information", "completed"]  # no acknowledgement of the reply, no second request
    assert list((world.maildir / "new").iterdir()) == []


def test_a_reply_that_would_not_be_erased_unattended_opens_its_own_request(world):
    letter_id = asked(world)
    answer(world, letter_id, body="Here it is.\nViewer ID: viewer-00005\n", authenticated=False)
    first, second = requests(world)
    assert (first.status, second.status) == ("needs_review", "needs_review")
    assert world.views("env_acme_prod", "viewer-00005") == 3  # untouched


def test_another_tenant_cannot_complete_a_request_by_replying_to_its_letter(world):
    letter_id = asked(world)
    answer(world, letter_id, sender="privacy@globex.example")
    first, second = requests(world)
    assert first.status == "needs_review" and first.tenant == "acme"
    assert second.tenant == "globex"
    assert world.views("env_acme_prod", "viewer-00005") == 3  # acme's views stay


def test_a_closed_request_is_not_reopened_by_a_late_reply(world):
    letter_id = asked(world)
    (request,) = requests(world)
    world.desk.reject(request.reference, reason="withdrawn by the customer", actor="officer")
    answer(world, letter_id)
    first, second = requests(world)
    assert first.status == "rejected"
    assert second.status == "completed"  # a new, ordinary request
