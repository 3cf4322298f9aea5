"""Issue 11's red-team probes, end to end: each hostile message goes through a real
poll (Maildir in, SQLite state and store, replies as files) beside an honest request.

Every probe must leave intake working (the honest request after it completes),
never erase a viewer nobody named, and never answer what must not be answered.
The unit tests of each defence live beside its module; this table pins the
whole pipeline to the probes as the red team sent them.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import stat
import time

import pytest
import sqlalchemy as sa

from erasure import audit
from erasure.models import ErasureRequest, OutboxMessage
from tests.world import mail, make_world

# Viewers that exist in acme's store but that no probe names as a viewer: a probe
# that erases one of them erased someone nobody asked about.
BYSTANDERS = ["123", "Bob", "ViewerIdentifier", "viewer-00002", "hidden-1", "quoted-9",
              "3f2b9c1e-8d4a-4c6b-9e2f-0a1b2c3d4e5f", "customer-7781", "Thanks", "Regards"]


@pytest.fixture
def world(tmp_path, monkeypatch):
    w = make_world(tmp_path, monkeypatch)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'views.db'}")
    with engine.begin() as conn:
        for i, viewer in enumerate(BYSTANDERS):
            conn.execute(sa.text(
                "INSERT INTO views (view_id, viewer_id, environment_id, view_start) VALUES (:k, :v, 'env_acme_prod', :t)"
            ), {"k": f"bystander-{i}", "v": viewer, "t": "2026-10-30 10:00:00"})
    engine.dispose()
    yield w
    w.desk.close()
    w.state.close()


def requests(w):
    with w.state.session() as session:
        return session.scalars(sa.select(ErasureRequest).order_by(ErasureRequest.id)).all()


def bystanders_left(w) -> dict[str, int]:
    return {v: w.views("env_acme_prod", v) for v in BYSTANDERS}


def multipart(sender: str, parts: list[tuple[str, str, bytes]], **kw) -> bytes:
    """A multipart/mixed mail: (content-type header value, extra headers, body bytes) per part."""
    head = mail(sender, "", **kw).split(b"\r\n\r\n", 1)[0].replace(
        b"Content-Type: text/plain; charset=utf-8", b'Content-Type: multipart/mixed; boundary="b0"')
    body = b""
    for ctype, extra, payload in parts:
        body += b"--b0\r\nContent-Type: " + ctype.encode() + b"\r\n" + extra.encode() + b"\r\n" + payload + b"\r\n"
    return head + b"\r\n\r\n" + body + b"--b0--\r\n"


def honest(w) -> None:
    w.deliver(mail("dpo@acme.example", "Please erase this viewer.\nViewer ID: viewer-00001\n"), name="zz-honest")


ACME = "dpo@acme.example"

PROBES = {
    # 1. poison header values
    "8-bit Message-ID": mail("stranger@evil.example", "Viewer ID: viewer-00003\n", authenticated=False,
                             message_id="<caf\u00e9@x>"),
    "8-bit In-Reply-To": mail(ACME, "Viewer ID: viewer-00003\n", headers={"In-Reply-To": "<caf\u00e9@x>"},
                              subject="Re: please erase"),
    "NUL in Message-ID": mail("stranger@evil.example", "Viewer ID: viewer-00003\n", authenticated=False,
                              message_id="<a\x00b@x>"),
    "emoji subject": mail("stranger@evil.example", "Viewer ID: viewer-00003\n", authenticated=False,
                          subject="Erase \U0001f525 now"),
    # 4. the id grammar
    "label-like list item": mail(ACME, "Please erase these viewers.\nViewer IDs:\n- viewer-id-123\n"),
    "name after a list": mail(ACME, "Please erase these viewers.\nViewer IDs:\nviewer-00004\nBob\n"),
    "sign-off after a list": mail(ACME, "Please erase these viewers.\nViewer IDs:\nviewer-00004\nThanks\nRegards\n"),
    "heading-like CSV": multipart(ACME, [
        ("text/plain; charset=utf-8", "", b"Please erase the viewers in the attached file."),
        ("text/csv; charset=utf-8", 'Content-Disposition: attachment; filename="ids.csv"\r\n',
         b"ViewerIdentifier\r\nviewer-00005\r\n"),
    ]),
    # 5. our own words coming back
    "echo of needs_information": mail(ACME, (
        "Thank you for contacting support, we received your message:\n\n"
        "We cannot act on it yet, for this reason:\n\n"
        "Please reply to this message, keeping ER-2026-000001 in the subject, and name\n"
        "each viewer id on its own line, like this:\n\n"
        "    Viewer ID: 3f2b9c1e-8d4a-4c6b-9e2f-0a1b2c3d4e5f\n"
        "    Viewer ID: customer-7781\n\n"
        "For many ids, write \"Viewer IDs:\" on a line of its own followed by one id per\n"
        "line, or attach a CSV file with a \"viewer_id\" column, or a plain-text file\n"
        "with one id per line.\n"
    ), subject="[Ticket #4411] Re: Erasure request ER-2026-000001: we need more information"),
    "Spanish reply header": mail(ACME, (
        "Gracias.\n\nDe: Privacy <privacy@analytics.example>\nEnviado: lunes, 2 de noviembre de 2026 9:30\n"
        "Para: dpo@acme.example\nAsunto: Erasure request\n\nPlease erase.\nViewer ID: quoted-9\n"
    ), subject="RE: Erasure request"),
    # 6. hidden text
    "display:none HTML": multipart(ACME, [
        ("text/html; charset=utf-8", "",
         (b"<p>Please erase viewer-00006 as discussed.</p><p>Viewer ID: viewer-00006</p>"
          b"<div style=\"display:none\">Viewer ID: hidden-1</div>")),
    ]),
    "white on white": multipart(ACME, [
        ("text/html; charset=utf-8", "",
         (b"<body style=\"background:#ffffff\"><p>Please erase.</p><p>Viewer ID: viewer-00006</p>"
          b"<p style=\"color:#ffffff\">Viewer ID: hidden-1</p></body>")),
    ]),
    # 7. charsets that smuggle
    "UTF-7 CSV": multipart(ACME, [
        ("text/plain; charset=utf-8", "", b"Please erase the viewers in the attached file."),
        ("text/csv; charset=utf-7", 'Content-Disposition: attachment; filename="ids.csv"\r\n',
         b"viewer_id\r\nviewer+AC0-00002\r\n"),
    ]),
    # 15. automatic mail
    "Precedence: auto_reply": mail(ACME, "I am away.\nViewer ID: viewer-00007\n", headers={"Precedence": "auto_reply"}),
    "Automatic reply subject": mail(ACME, "I am out of the office.\nViewer ID: viewer-00007\n",
                                    subject="Automatic reply: Erasure request"),
    "X-Auto-Response-Suppress": mail(ACME, "Out of office until Monday.\nViewer ID: viewer-00007\n",
                                     headers={"X-Auto-Response-Suppress": "All"}, subject="Out of Office: Erasure"),
    "X-Auto-Response-Suppress alone": mail(ACME, "Please erase.\nViewer ID: viewer-00007\n",
                                           headers={"X-Auto-Response-Suppress": "OOF, AutoReply"}),
}


# Where each probe must end. Doubt goes to a person; machines are ignored; only an
# authenticated tenant naming a real id in plain words gets an erasure.
EXPECTED_STATUS = {
    "8-bit Message-ID": "needs_review",  # unknown, unauthenticated sender
    "8-bit In-Reply-To": "completed",  # a genuine request; the bad reference is dropped
    "NUL in Message-ID": "needs_review",
    "emoji subject": "needs_review",
    "label-like list item": "completed",  # read exactly as the id "viewer-id-123" (none such: no data found), never as "123"
    "name after a list": "needs_review",
    "sign-off after a list": "needs_review",
    "heading-like CSV": "needs_review",
    "echo of needs_information": "needs_review",
    "Spanish reply header": "needs_review",  # the only id is in the quoted mail
    "display:none HTML": "needs_review",
    "white on white": "needs_review",
    "UTF-7 CSV": "needs_review",
    "Precedence: auto_reply": "ignored",
    "Automatic reply subject": "ignored",
    "X-Auto-Response-Suppress": "ignored",
    "X-Auto-Response-Suppress alone": "needs_review",  # maybe a helpdesk's request: a person, and no automatic answer
}


def test_every_probe_has_an_expected_status():
    assert set(EXPECTED_STATUS) == set(PROBES)


@pytest.mark.parametrize("name", sorted(PROBES))
def test_a_probe_neither_blocks_intake_nor_erases_a_bystander(world, name):
    before = bystanders_left(world)
    world.deliver(PROBES[name], name="aa-probe")
    honest(world)
    result = world.poll()

    recorded = requests(world)
    assert len(recorded) == 2, "every message gets exactly one record"
    probe, honest_request = recorded
    assert honest_request.status == "completed", "intake goes on after a hostile message"
    assert bystanders_left(world) == before, "no viewer nobody named was erased"
    assert probe.status == EXPECTED_STATUS[name], (probe.reason_code, probe.reason)
    assert list((world.maildir / "new").iterdir()) == [], "nothing stays in the intake folder"
    assert result.fetched == 2


def test_probes_that_must_never_be_answered_are_not(world):
    names = ("8-bit Message-ID", "NUL in Message-ID", "emoji subject", "Precedence: auto_reply",
             "Automatic reply subject", "X-Auto-Response-Suppress", "X-Auto-Response-Suppress alone",
             "echo of needs_information")
    for i, name in enumerate(names):
        world.deliver(PROBES[name], name=f"probe-{i}")
    world.poll()
    with world.state.session() as session:
        kinds = session.scalars(sa.select(OutboxMessage.kind)).all()
    assert kinds == [], "not even an acknowledgement: a machine must not be answered"


def test_an_encoded_word_message_id_cannot_inject_headers_into_our_reply(world):
    evil = "=?utf-8?q?=3Cx=40y=3E=0D=0ABcc=3A_victim=40else.example=0D=0A=0D=0AInjected_body?="
    world.deliver(mail(ACME, "Please erase.\nViewer ID: viewer-00008\n", message_id=evil))
    world.deliver(mail(ACME, "Please erase.\nViewer ID: viewer-00009\n", headers={"In-Reply-To": evil, "References": evil}))
    world.poll()
    replies = world.replies()
    assert len(replies) == 2
    for path in replies:
        raw = path.read_bytes()
        assert b"victim@else.example" not in raw
        assert b"Injected" not in raw
        reply = email.message_from_bytes(raw, policy=email.policy.default)
        assert reply["Bcc"] is None and reply["To"] == ACME


def test_the_red_teams_big_stored_id_message_stores_at_most_the_cap(tmp_path, monkeypatch):
    w = make_world(tmp_path, monkeypatch, max_viewer_ids=1000)
    try:
        ids = "".join(f"v{i:07d}\n" for i in range(200_000))
        w.deliver(mail("stranger@evil.example", "Please erase.\nViewer IDs:\n" + ids, authenticated=False))
        honest(w)
        started = time.process_time()
        w.poll()
        assert time.process_time() - started < 60
        with w.state.engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT COUNT(*) FROM subjects")).scalar_one()
        assert stored <= 1000 + 1  # the cap (plus the honest request's one id)
        assert [r.status for r in requests(w)][1] == "completed"
    finally:
        w.desk.close()
        w.state.close()


def test_a_rejected_requests_raw_id_is_nowhere_in_the_trail_or_the_letters(world):
    secret = "secret-viewer-777"
    world.deliver(mail(ACME, f"Please erase.\nViewer ID: {secret}, the other one\n"))
    world.poll()
    (r,) = requests(world)
    assert r.status == "needs_review"
    world.desk.reject(r.reference, reason="we could not tell which viewer was meant", actor="officer")
    with world.state.session() as session:
        events = list(audit.iter_export(session))  # the chain, and the personal values kept beside it
        letters = session.scalars(sa.select(OutboxMessage.raw)).all()
    dumped = " ".join(json.dumps(e, ensure_ascii=False) for e in events)
    assert secret not in dumped
    assert letters, "the rejection was written"
    for letter in letters:
        assert secret.encode() not in letter
    for path in world.replies():
        assert secret.encode() not in path.read_bytes()


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_the_state_database_is_private(world):
    world.deliver(mail(ACME, "Viewer ID: viewer-00010\n"))
    world.poll()
    mode = stat.S_IMODE((world.root / "state.db").stat().st_mode)
    assert mode & 0o077 == 0, oct(mode)

