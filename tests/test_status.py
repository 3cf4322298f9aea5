"""The morning screen: what needs the officer today, and the exit code an alert fires on."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from erasure import audit, deadlines
from erasure.config import config_from_dict
from erasure.models import AuditEvent, ErasureRequest, MailboxCursor, OutboxMessage, RequestStatus
from erasure.state import open_state
from erasure.status import status
from erasure.workflow import Desk
from tests import desk
from tests.desk import BERLIN, UTC, D, at, make_request, needs_desk_commands, run_cli

state = desk.state
register = desk.register
config_file = desk.config_file


# ---------------------------------------------------------------- status


TODAY = D(2026, 11, 29)
NOW = at("2026-11-29T07:00")
CONFIG = config_from_dict({"policy": {"time_zone": BERLIN}})


def desk_request(name, status_, due_on, extended_to=None, regulation="gdpr", **extra) -> ErasureRequest:
    closed = status_ in RequestStatus.CLOSED
    return make_request(name, regulation, "erasure", {"completed": "completed"}.get(status_, status_),
                        "2026-10-20T08:00", "2026-10-25T08:00" if closed else None, due_on, extended_to, **extra)


def add_poll(session, last_success: dt.datetime | None, source="maildir:/srv/privacy") -> None:
    session.add(MailboxCursor(source=source, last_poll_at=NOW - dt.timedelta(minutes=2), last_success_at=last_success))


def test_status_lists_what_needs_the_officer_today(state):
    with state.session() as session:
        late = desk_request("LATE", "needs_review", D(2026, 11, 20))
        session.add_all([
            late,
            desk_request("TODAY", "erasing", D(2026, 11, 29)),
            desk_request("SOON", "awaiting_approval", D(2026, 12, 5), regulation="ccpa"),
            desk_request("LATER", "erasing", D(2026, 12, 6)),  # 7 days left: not "this week"
            desk_request("EXT", "needs_review", D(2026, 11, 25), extended_to=D(2027, 1, 25)),
            desk_request("DONE", "completed", D(2026, 11, 1)),  # closed: never overdue
        ])
        session.flush()
        session.add(OutboxMessage(request_id=late.id, kind="needs_information", message_id="<m1@x>",
                                  recipient="privacy@acme.example", raw=b"...", status="parked", attempts=5,
                                  last_error="550 mailbox unavailable", created_at=NOW))
        add_poll(session, NOW - dt.timedelta(minutes=2))
        audit.record(session, "received", request=late, now=NOW)
    with state.session() as session:
        report = status(session, today=TODAY, config=CONFIG, now=NOW)
    assert set(report.counts) == set(RequestStatus.ALL)  # every state, 0 when none
    assert {s: n for s, n in report.counts.items() if n} == {"needs_review": 2, "awaiting_approval": 1, "erasing": 2,
                                                             "completed": 1}
    assert [(i.reference, i.days_left) for i in report.overdue] == [("ER-TEST-LATE", -9)]
    assert [(i.reference, i.days_left) for i in report.due_soon] == [("ER-TEST-TODAY", 0), ("ER-TEST-SOON", 6)]
    assert [(p.reference, p.problem) for p in report.parked] == [("ER-TEST-LATE", "550 mailbox unavailable")]
    assert not report.poll_stale and report.audit.ok
    assert report.needs_attention
    assert report.problems == [
        "1 request(s) overdue", "2 request(s) need review", "1 request(s) await approval",
        "1 reply(ies) parked; see `erasure outbox list --status parked`",
    ]
    data = json.loads(json.dumps(report.to_json()))
    assert data["open"] == 5 and data["needs_attention"] is True
    assert data["overdue"][0] == {"reference": "ER-TEST-LATE", "tenant": "acme", "regulation": "gdpr",
                                  "status": "needs_review", "due": "2026-11-20", "days_left": -9, "extended": False}
    assert data["parked_replies"][0]["to"] == "privacy@acme.example"
    assert data["audit"]["events"] == 1 and data["last_success_at"] == "2026-11-29T06:58:00+00:00"
    text = report.text()
    assert "ER-TEST-LATE  acme  GDPR  needs_review  due 2026-11-20  9 day(s) late" in text
    assert "ER-TEST-TODAY" in text and "due today" in text and "ER-TEST-EXT" not in text
    assert "needs attention: 1 request(s) overdue" in text


def test_a_quiet_morning_needs_no_attention(state):
    with state.session() as session:
        session.add_all([desk_request("DONE", "completed", D(2026, 11, 1)),
                         desk_request("LATER", "erasing", D(2026, 12, 20))])
        add_poll(session, NOW - dt.timedelta(hours=23))
    with state.session() as session:
        report = status(session, today=TODAY, config=CONFIG, now=NOW)
    assert report.problems == [] and not report.needs_attention
    assert report.text().endswith("needs attention: nothing")
    assert report.to_json()["audit"] == {"ok": True, "events": 0, "head": None, "first_bad_seq": None, "problem": None,
                                         "checked_from": 0}


def test_an_empty_state_database_has_never_polled(state):
    with state.session() as session:
        report = status(session, today=TODAY, config=CONFIG, now=NOW)
    assert sum(report.counts.values()) == 0
    assert report.poll_stale and report.problems == ["no successful poll yet; run `erasure poll` and check cron"]
    assert "last successful poll: never (STALE)" in report.text()


def test_a_poll_that_keeps_failing_needs_attention(state):
    with state.session() as session:
        add_poll(session, NOW - dt.timedelta(hours=25), source="imap:a")
        add_poll(session, None, source="imap:b")
    with state.session() as session:
        report = status(session, today=TODAY, config=CONFIG, now=NOW)
    assert report.last_success_at == NOW - dt.timedelta(hours=25)
    assert report.problems == ["no successful poll since 2026-11-28 06:00 UTC; run `erasure poll` to see why"]


def test_a_broken_audit_chain_needs_attention(state):
    with state.session() as session:
        add_poll(session, NOW)
        for i in range(3):
            audit.record(session, "received", reason=f"event {i}", now=NOW)
    with state.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_events SET reason = 'edited' WHERE seq = 2")
    with state.session() as session:
        report = status(session, today=TODAY, config=CONFIG, now=NOW)
    assert report.needs_attention and not report.audit.ok
    assert report.problems == ["audit trail broken at event 2: event 2 was altered (its hash does not match its content)"]
    assert report.to_json()["audit"]["first_bad_seq"] == 2


def test_ccpa_requests_without_a_reply_past_their_acknowledgement_date_need_attention(state):
    ack = D(2026, 11, 27)
    with state.session() as session:
        silent = desk_request("SILENT", "needs_review", D(2026, 12, 20), regulation="ccpa",
                              acknowledge_by=ack, reply_allowed=True)
        answered = desk_request("ANSWERED", "awaiting_approval", D(2026, 12, 20), regulation="ccpa",
                                acknowledge_by=ack, reply_allowed=True)
        queued = desk_request("QUEUED", "awaiting_approval", D(2026, 12, 20), regulation="ccpa",
                              acknowledge_by=ack, reply_allowed=True)
        session.add_all([
            silent, answered, queued,
            desk_request("UNVERIFIED", "needs_review", D(2026, 12, 20), regulation="ccpa",
                         acknowledge_by=ack, reply_allowed=False),
            desk_request("NOT-YET", "erasing", D(2026, 12, 20), regulation="ccpa",
                         acknowledge_by=TODAY, reply_allowed=True),
            desk_request("GDPR", "erasing", D(2026, 12, 20), reply_allowed=True),
        ])
        session.flush()
        for request, state_ in ((answered, "sent"), (queued, "queued")):
            session.add(OutboxMessage(request_id=request.id, kind="acknowledgement", message_id=f"<{request.id}@x>",
                                      recipient="privacy@acme.example", raw=b"...", status=state_, attempts=1,
                                      created_at=NOW))
        add_poll(session, NOW)
    with state.session() as session:
        report = status(session, today=TODAY, config=CONFIG, now=NOW)
    # UNVERIFIED (a sender we may not answer, e.g. a viewer writing to us directly) is listed too:
    # the duty to confirm receipt does not go away when the tool cannot write.
    assert [(i.reference, i.due, i.days_left, i.answerable) for i in report.unacknowledged] == [
        ("ER-TEST-SILENT", ack, -2, True), ("ER-TEST-QUEUED", ack, -2, True), ("ER-TEST-UNVERIFIED", ack, -2, False),
    ]
    assert ("3 CCPA request(s) past their acknowledgement date with no reply sent; acknowledge by other means, "
            "then `erasure requests acknowledge REF`") in report.problems
    unacknowledged = report.to_json()["unacknowledged"]
    assert [i["reference"] for i in unacknowledged] == ["ER-TEST-SILENT", "ER-TEST-QUEUED", "ER-TEST-UNVERIFIED"]
    assert unacknowledged[2]["answerable"] is False
    assert unacknowledged[2]["fix"] == (
        "we may not answer this sender automatically: acknowledge by other means, then record it: "
        '`erasure requests acknowledge ER-TEST-UNVERIFIED --note "how and when"`')
    assert "`erasure outbox list`" in unacknowledged[0]["fix"]
    text = report.text()
    assert "not acknowledged in time (CCPA 7021(a)): 3" in text
    assert '    ER-TEST-UNVERIFIED: we may not answer this sender automatically: acknowledge by other means' in text


def test_an_acknowledgement_recorded_by_an_officer_clears_the_missed_acknowledgement(state):
    ack = D(2026, 11, 27)
    with state.session() as session:
        session.add(desk_request("DIRECT", "needs_review", D(2026, 12, 20), regulation="ccpa",
                                 acknowledge_by=ack, reply_allowed=False))
        add_poll(session, NOW)
    desk_ = Desk(CONFIG, state, now=lambda: NOW)
    with pytest.raises(Exception, match="--note"):
        desk_.record_acknowledgement("ER-TEST-DIRECT", note="  ", actor="dpo")
    desk_.record_acknowledgement("ER-TEST-DIRECT", note="Wrote to the viewer from privacy@ on 2026-11-28.", actor="dpo")
    with state.session() as session:
        report = status(session, today=TODAY, config=CONFIG, now=NOW)
        assert report.unacknowledged == ()
        events = [(e.event, e.actor, audit.shown(session, e)[0]) for e in session.scalars(
            sa.select(AuditEvent).where(AuditEvent.request_ref == "ER-TEST-DIRECT"))]
    assert events == [("acknowledged_by_officer", "dpo", "Wrote to the viewer from privacy@ on 2026-11-28.")]



@needs_desk_commands
def test_status_exits_1_and_says_why_when_something_needs_attention(config_file):
    result = run_cli("--config", config_file, "status")
    assert result.exit_code == 1, result.output
    assert "needs attention:" in result.output and "no successful poll yet" in result.output
    data = json.loads(run_cli("--config", config_file, "status", "--json").output)
    assert data["needs_attention"] is True and data["counts"]["needs_review"] == 1


@needs_desk_commands
def test_status_exits_0_on_a_quiet_morning(tmp_path):
    config = tmp_path / "erasure.toml"
    config.write_text(f'[state]\nurl = "sqlite:///{tmp_path / "quiet.db"}"\n[policy]\ntime_zone = "UTC"\n')
    s = open_state(f"sqlite:///{tmp_path / 'quiet.db'}")
    with s.session() as session:
        add_poll(session, dt.datetime.now(UTC))
    s.close()
    result = run_cli("--config", config, "status")
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("needs attention: nothing")




# ---------------------------------------------------------------- the date that counts, around the edges


@pytest.mark.parametrize(("due_on", "extended_to", "due", "days_left", "overdue", "soon"), [
    (D(2026, 11, 28), None, D(2026, 11, 28), -1, True, False),          # a day late
    (D(2026, 11, 29), None, D(2026, 11, 29), 0, False, True),           # due today is on time
    (D(2026, 12, 5), None, D(2026, 12, 5), 6, False, True),             # last day of "this week"
    (D(2026, 12, 6), None, D(2026, 12, 6), 7, False, False),            # a week away: neither
    (D(2026, 11, 20), D(2026, 12, 1), D(2026, 12, 1), 2, False, True),  # original date passed, extension counts
    (D(2026, 10, 29), D(2026, 11, 28), D(2026, 11, 28), -1, True, False),  # extended date passed
    (D(2026, 10, 29), D(2026, 11, 29), D(2026, 11, 29), 0, False, True),   # extended date is today
])
def test_status_judges_each_request_by_the_date_that_counts(state, due_on, extended_to, due, days_left, overdue, soon):
    with state.session() as session:
        session.add(desk_request("EDGE", "erasing", due_on, extended_to))
        add_poll(session, NOW)
    with state.session() as session:
        report = status(session, today=TODAY, config=CONFIG, now=NOW)
    listed = [*report.overdue, *report.due_soon]
    assert [(i.due, i.days_left, i.extended) for i in listed] == (
        [(due, days_left, extended_to is not None)] if overdue or soon else []
    )
    assert (bool(report.overdue), bool(report.due_soon)) == (overdue, soon)
    # The same answers as the one set of rules in deadlines.py.
    assert due == deadlines.effective_due(due_on, extended_to)
    assert days_left == deadlines.days_left(due, TODAY) and overdue == deadlines.is_overdue(due, TODAY)


@pytest.mark.parametrize(("acknowledge_by", "listed"), [
    (D(2026, 11, 28), True),   # yesterday: missed
    (D(2026, 11, 29), False),  # today: still in time
    (D(2026, 11, 30), False),
])
def test_a_ccpa_acknowledgement_is_missed_from_the_day_after_its_date(state, acknowledge_by, listed):
    with state.session() as session:
        session.add(desk_request("ACK", "needs_review", D(2026, 12, 20), regulation="ccpa",
                                 acknowledge_by=acknowledge_by, reply_allowed=True))
        add_poll(session, NOW)
    with state.session() as session:
        report = status(session, today=TODAY, config=CONFIG, now=NOW)
    assert [(i.due, i.days_left) for i in report.unacknowledged] == (
        [(acknowledge_by, deadlines.days_left(acknowledge_by, TODAY))] if listed else []
    )
    assert listed == deadlines.is_overdue(acknowledge_by, TODAY)


@needs_desk_commands
def test_requests_acknowledge_records_receipt_confirmed_by_other_means(config_file):
    result = run_cli("--config", config_file, "requests", "acknowledge", "ER-TEST-E", "--note", "Phoned the DPO.",
                     "--actor", "alice")
    assert result.exit_code == 0, result.output
    assert result.output == "ER-TEST-E: needs_review, receipt confirmed by other means\n"
    closed = run_cli("--config", config_file, "requests", "acknowledge", "ER-TEST-A", "--note", "x")
    assert closed.exit_code == 2 and "already completed; only open requests need an acknowledgement" in closed.output
    missing = run_cli("--config", config_file, "requests", "acknowledge", "ER-TEST-E")
    assert missing.exit_code == 2 and "--note" in missing.output


# ---------------------------------------------------------------- the audit chain from a verified checkpoint


def _events(state, n: int, start: int = 0) -> None:
    with state.session() as session:
        for i in range(start, start + n):
            audit.record(session, "received", reason=f"event {i}", now=NOW)


def _status(state):
    with state.session() as session:
        return status(session, today=TODAY, config=CONFIG, now=NOW)


def test_status_checks_the_chain_from_its_last_verified_checkpoint(state):
    _events(state, 5)
    first = _status(state)
    assert first.audit.ok and first.audit_checked_from == 0 and first.audit.events == 5  # the whole chain, once
    _events(state, 3, start=5)
    second = _status(state)
    assert second.audit.ok and second.audit_checked_from == 5 and second.audit.events == 8
    assert str(second.audit.head) == str(_head(state))
    assert "checked since event 5" in second.text()


def _head(state):
    with state.session() as session:
        return audit.head(session)


@pytest.mark.parametrize(("edited", "status_sees_it"), [
    (7, True),   # after the checkpoint: checked again by every status
    (5, True),   # the checkpoint event itself: its hash no longer matches
    (3, False),  # before the checkpoint: only the whole-chain `audit verify` finds it
])
def test_an_edit_is_found_by_status_or_by_the_full_verification(state, edited, status_sees_it):
    _events(state, 5)
    assert _status(state).audit.ok  # checkpoint at 5
    _events(state, 3, start=5)
    with state.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE audit_events SET data = '{{\"x\":1}}' WHERE seq = {edited}")
    report = _status(state)
    assert (not report.audit.ok) is status_sees_it
    if status_sees_it:
        assert report.audit.first_bad_seq == edited and report.needs_attention
    with state.session() as session:
        full = audit.verify(session)
    assert not full.ok and full.first_bad_seq == edited


def test_a_removed_tail_is_found_at_the_checkpoint(state):
    _events(state, 6)
    assert _status(state).audit.ok
    with state.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_events WHERE seq >= 4")
    report = _status(state)
    assert not report.audit.ok and "event 6 no longer matches" in report.audit.problem and "missing" in report.audit.problem
