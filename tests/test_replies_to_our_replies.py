"""A reply to one of our letters is never acknowledged: that is how two machines start a loop.

It is still read. Naming no id, it goes to a person (``reply_to_our_reply``).
Naming ids, it is a follow-up and is decided like any request; only letters
that carry a decision (a completion, an officer's answer) go out.
"""

from __future__ import annotations

import email
import email.policy

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from erasure.models import ErasureRequest
from tests.world import World, mail, make_world


@pytest.fixture(params=["always", "unless_done"])
def world(request, tmp_path, monkeypatch):
    w = make_world(tmp_path, monkeypatch, acknowledge=request.param)
    yield w
    w.desk.close()
    w.state.close()


def requests(w: World) -> list[ErasureRequest]:
    with w.state.session() as session:
        stmt = sa.select(ErasureRequest).options(selectinload(ErasureRequest.replies)).order_by(ErasureRequest.id)
        return list(session.scalars(stmt).all())


def our_first_letter(w: World) -> str:
    w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00001\n"))
    w.poll()
    first = w.replies()[0]
    return email.message_from_bytes(first.read_bytes(), policy=email.policy.default)["Message-ID"]


FOLLOW_UPS = [
    # (body, expected status, expected reason) of a message answering our letter
    ("Thanks! Please also erase this one.\nViewer ID: viewer-00002\n", "completed", "ok"),
    ("Thanks. Could you also send me a copy of the data first?\nViewer ID: viewer-00003\n", "needs_review",
     "also_access_request"),
]


@pytest.mark.parametrize("body, status, reason", FOLLOW_UPS)
def test_a_follow_up_naming_ids_is_decided_but_never_acknowledged(world, body, status, reason):
    ours = our_first_letter(world)
    letters_before = len(world.replies())
    world.deliver(mail("dpo@acme.example", body, subject="Re: Your erasure request",
                       headers={"In-Reply-To": ours, "References": ours}))
    world.poll()
    follow_up = requests(world)[-1]
    assert (follow_up.status, follow_up.reason_code) == (status, reason)
    assert "acknowledgement" not in {r.kind for r in follow_up.replies}
    if status == "completed":  # processed: the answer that carries the decision is sent
        assert world.views("env_acme_prod", "viewer-00002") == 0
        assert [r.kind for r in follow_up.replies] == ["completed"]
        assert len(world.replies()) == letters_before + 1
    else:  # left to a person, who answers; nothing automatic goes out
        assert follow_up.replies == [] and len(world.replies()) == letters_before
        assert follow_up.reply_allowed  # the officer's answer may still be sent


@pytest.mark.parametrize("body, status, reason", FOLLOW_UPS)
def test_the_same_message_not_answering_us_is_acknowledged_as_usual(world, body, status, reason):
    """Control for the test above: the References header alone makes the difference."""
    world.deliver(mail("dpo@acme.example", body, subject="Erasure request"))
    world.poll()
    (request,) = requests(world)
    assert request.status == status
    kinds = [r.kind for r in request.replies]
    assert "acknowledgement" in kinds or kinds == ["completed"]
    if status != "completed":
        assert "acknowledgement" in kinds


def test_a_reply_naming_no_id_goes_to_a_person_and_gets_nothing(world):
    ours = our_first_letter(world)
    letters_before = len(world.replies())
    world.deliver(mail("dpo@acme.example", "Thank you, much appreciated.\n", subject="Re: Your erasure request",
                       headers={"In-Reply-To": ours, "References": ours}))
    world.poll()
    thanks = requests(world)[-1]
    assert (thanks.status, thanks.reason_code, thanks.replies) == ("needs_review", "reply_to_our_reply", [])
    assert len(world.replies()) == letters_before


def test_references_to_mail_that_is_not_ours_change_nothing(world):
    world.deliver(mail("dpo@acme.example", "Please erase.\nViewer ID: viewer-00004\n", subject="Re: Erasure",
                       headers={"In-Reply-To": "<someone-else@acme.example>", "References": "<someone-else@acme.example>"}))
    world.poll()
    (request,) = requests(world)
    assert request.status == "completed"
    expected = ["acknowledgement", "completed"] if world.config.policy.acknowledge == "always" else ["completed"]
    assert sorted(r.kind for r in request.replies) == sorted(expected)
