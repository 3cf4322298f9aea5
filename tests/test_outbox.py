"""The outbox against a real SMTP server: at least once, never re-worded, parked with a reason."""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from typer.testing import CliRunner

from erasure.delivery import SmtpTransport, retry_delay
from erasure.models import OutboxMessage
from erasure.notify import deliver
from tests.world import NOW, mail, make_world


def queue_one(w, viewer="viewer-00001"):
    w.deliver(mail("dpo@acme.example", f"Viewer ID: {viewer}\n"))
    with w.source() as source:
        w.desk.poll(source)  # queues the reply, sends nothing


def outbox(w):
    with w.state.session() as session:
        return session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()


def send(w, server, at=NOW):
    transport = SmtpTransport(server.settings(), server.password)
    try:
        return deliver(w.state, transport, now=lambda: at, retry_delay=retry_delay)
    finally:
        transport.close()


def test_a_reply_goes_to_the_requester_only(world, any_smtp_server):
    queue_one(world)
    report = send(world, any_smtp_server)
    assert report.sent == 1
    (got,) = any_smtp_server.received
    assert got.rcpt_tos == ["dpo@acme.example"]
    assert got.message_id == outbox(world)[0].message_id
    assert outbox(world)[0].status == "sent"


def test_4xx_is_retried_later_and_then_sent(world, smtp_server):
    queue_one(world)
    smtp_server.handler.answer_next("451 4.3.0 try again later")
    report = send(world, smtp_server)
    (m,) = outbox(world)
    assert (report.deferred, m.status, m.attempts) == (1, "queued", 1)
    assert m.next_attempt_at == NOW + retry_delay(1)
    assert "451" in m.last_error
    assert send(world, smtp_server).sent == 0  # not due yet
    report = send(world, smtp_server, at=NOW + retry_delay(1))
    (m,) = outbox(world)
    assert (report.sent, m.status, m.attempts) == (1, "sent", 2)
    assert [r.message_id for r in smtp_server.received] == [m.message_id]


def test_5xx_is_parked_with_the_reason_and_can_be_retried(world, smtp_server):
    queue_one(world)
    smtp_server.handler.answer_next("550 5.1.1 mailbox unavailable", at="RCPT")
    report = send(world, smtp_server)
    (m,) = outbox(world)
    assert (report.parked, m.status) == (1, "parked")
    assert "550 5.1.1 mailbox unavailable" in m.last_error
    assert smtp_server.received == []


def test_a_connection_dropped_after_data_resends_the_same_message(world, smtp_server):
    queue_one(world)
    smtp_server.handler.drop_next(at="DATA")
    report = send(world, smtp_server)
    assert report.deferred == 1
    send(world, smtp_server, at=NOW + dt.timedelta(days=1))
    first, second = smtp_server.received
    assert first.message_id == second.message_id == outbox(world)[0].message_id
    assert first.message.get_body(("plain",)).get_content() == second.message.get_body(("plain",)).get_content()


def test_an_unreachable_server_leaves_every_reply_queued(world, smtp_server):
    queue_one(world, "viewer-00001")
    queue_one(world, "viewer-00002")
    smtp_server.stop()
    report = send(world, smtp_server)
    assert report.sent == 0 and report.unavailable
    assert [(m.status, m.attempts) for m in outbox(world)] == [("queued", 0), ("queued", 0)]


def test_replies_to_one_address_are_held_past_the_daily_limit(tmp_path, monkeypatch):
    w = make_world(tmp_path, monkeypatch)
    w.desk.config = dataclasses.replace(
        w.config, delivery=dataclasses.replace(w.config.delivery, max_per_recipient_per_day=2))
    for i in range(1, 4):
        queue_one(w, f"viewer-0000{i}")
    statuses = [m.status for m in outbox(w)]
    # An authenticated customer is not parked: the third reply waits for the run's digest letter.
    assert statuses == ["queued", "queued", "digest"]
    assert "max_per_recipient_per_day" in outbox(w)[2].last_error
    for i in range(4, 7):  # an address an officer typed keeps the strict cap
        w.desk.add_manual(tenant="acme", viewer_ids=[f"viewer-0000{i}"], requester="caller@phoned.example")
    assert [m.status for m in outbox(w) if m.recipient == "caller@phoned.example"] == ["queued", "queued", "parked"]
    w.state.close()


def test_officer_sees_parked_replies_and_retries_them(tmp_path, monkeypatch, smtp_server):
    w = make_world(tmp_path, monkeypatch)
    queue_one(w)
    smtp_server.handler.answer_next("554 5.7.1 rejected", at="DATA")
    send(w, smtp_server)
    config = tmp_path / "erasure.toml"
    config.write_text(
        "[state]\nurl = \"sqlite:///state.db\"\n"
        f"[delivery]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {smtp_server.port}\nsecurity = \"none\"\n"
        "from_address = \"privacy@analytics.example\"\n"
        "[policy]\ntime_zone = \"UTC\"\n"
    )
    from erasure.cli import app

    runner = CliRunner()
    listing = runner.invoke(app, ["--config", str(config), "outbox", "list", "--status", "parked"])
    assert listing.exit_code == 0 and "554 5.7.1 rejected" in listing.output
    retry = runner.invoke(app, ["--config", str(config), "outbox", "retry", "--actor", "dpo-jane"])
    assert retry.exit_code == 0, retry.output
    assert "1 sent" in retry.output
    assert [m.status for m in outbox(w)] == ["sent"]
    from erasure.models import AuditEvent

    with w.state.session() as session:
        released = session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "reply_released")).all()
    assert [e.actor for e in released] == ["dpo-jane"]
    w.state.close()


def test_a_retry_is_recorded_with_the_officer_who_released_the_reply(world, smtp_server):
    from erasure import audit
    from erasure.models import AuditEvent
    from erasure.outbox import list_outbox, retry_outbox

    queue_one(world)
    assert retry_outbox(world.state, actor="dpo-jane") == 1  # queued and due already: nothing changes, nothing recorded
    smtp_server.handler.answer_next("554 5.7.1 rejected", at="DATA")
    send(world, smtp_server)
    (parked,) = list_outbox(world.state, status="parked")
    assert retry_outbox(world.state, [parked.id + 1], actor="dpo-jane") == 0  # another id: nothing released
    assert retry_outbox(world.state, [parked.id], actor="dpo-jane") == 1
    smtp_server.handler.answer_next("451 4.3.0 try again later")
    assert send(world, smtp_server).deferred == 1
    assert retry_outbox(world.state, [parked.id], actor="dpo-joe") == 1  # deferred: due now instead of later
    assert retry_outbox(world.state, [parked.id], actor="dpo-joe") == 1  # nothing left to change
    with world.state.session() as session:
        events = session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "reply_released")).all()
        assert audit.verify(session).ok
    assert [(e.actor, e.request_ref, e.data) for e in events] == [
        ("dpo-jane", parked.request, f'{{"kind":"{parked.kind}","outbox_id":{parked.id},"was":"parked"}}'),
        ("dpo-joe", parked.request, f'{{"kind":"{parked.kind}","outbox_id":{parked.id},"was":"deferred"}}'),
    ]
    assert [m.status for m in list_outbox(world.state)] == ["queued"]
    assert send(world, smtp_server).sent == 1  # due at once, though the 451 asked for a later attempt
    assert [m.status for m in list_outbox(world.state, status="sent")] == ["sent"]
