"""A customer's reply to our `needs_information` letter, naming the ids, completes the
request that asked for them instead of opening a second one (issue 13)."""

from __future__ import annotations

import pytest
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


# ---------------------------------------------------------------- replies in Finnish and Czech (issue 13)

#: Our letter as a mail client quotes it when it adds no '>' marks (an HTML reply's text):
#: only the attribution line says where the customer's own words end. Its example ids
#: must never be read.
OUR_LETTER_QUOTED = ("We cannot act on it yet, for this reason:\n\nThe request names no viewer id.\n\n"
                     "Please reply to this message and name each viewer id on its own line, like this:\n\n"
                     "    Viewer ID: 3f2b9c1e-8d4a-4c6b-9e2f-0a1b2c3d4e5f\n    Viewer ID: customer-7781\n")

ATTRIBUTIONS = {
    "fi, Gmail": "ma 2.11.2026 klo 9.12 Privacy <privacy@analytics.example> kirjoitti:",
    "fi, Thunderbird": "Privacy kirjoitti 2.11.2026 klo 9.12:",
    "cs, Thunderbird": "Dne 2. 11. 2026 v 9:12 Privacy napsal(a):",
    "cs, Gmail": "po 2. 11. 2026 v 9:12 odesílatel Privacy <privacy@analytics.example> napsal:",
}
NEW_IDS = {
    "fi": "Hei,\n\nalla pyytämänne katsojatunnus. Poistakaa sen tiedot.\n\nViewer ID: viewer-00005\n\nTerveisin\nLiisa\n\n",
    "cs": "Dobrý den,\n\nzasíláme požadovaný identifikátor diváka. Prosíme o výmaz jeho údajů.\n\n"
          "Viewer ID: viewer-00005\n\nS pozdravem\nJana\n\n",
}
NO_IDS = {
    "fi": "Kiitos tiedosta, selvitämme asian katsojan kanssa.\n\nTerveisin\nLiisa\n\n",
    "cs": "Děkujeme, ověříme to u diváka a ozveme se.\n\nS pozdravem\nJana\n\n",
}


def quoting_reply(w, letter_id, own_words, attribution):
    w.deliver(mail("dpo@acme.example", own_words + attribution + "\n" + OUR_LETTER_QUOTED,
                   subject="Re: Erasure request: we need more information",
                   headers={"In-Reply-To": letter_id, "References": letter_id}))
    return w.poll()


@pytest.mark.parametrize("client", sorted(ATTRIBUTIONS))
def test_a_finnish_or_czech_reply_with_the_ids_completes_the_request(world, client):
    letter_id = asked(world)
    quoting_reply(world, letter_id, NEW_IDS[client[:2]], ATTRIBUTIONS[client])
    (request,) = requests(world)
    assert (request.status, request.response) == ("completed", "completed")
    assert world.views("env_acme_prod", "viewer-00005") == 0


@pytest.mark.parametrize("client", sorted(ATTRIBUTIONS))
def test_a_finnish_or_czech_reply_without_ids_is_never_answered(world, client):
    letter_id = asked(world)
    quoting_reply(world, letter_id, NO_IDS[client[:2]], ATTRIBUTIONS[client])
    first, second = requests(world)
    assert first.status == "needs_review"  # still waiting for the ids
    assert (second.status, second.reason_code) == ("needs_review", "reply_to_our_reply")
    with world.state.session() as session:
        kinds = session.scalars(sa.select(OutboxMessage.kind).order_by(OutboxMessage.id)).all()
    assert kinds == ["needs_information"]  # nothing went out to the reply
