"""The request state machine end to end on embedded parts: Maildir in, SQLite store, .eml replies out."""

from __future__ import annotations

import ast
import datetime as dt
import email
import email.policy
import pathlib
import sqlite3

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import selectinload

import erasure
from erasure import audit, transitions
from erasure.deadlines import deadlines_for
from erasure.errors import InvalidTransitionError
from erasure.mailbox import IncomingMessage, MessageRef
from erasure.models import AuditEvent, ErasureRequest, MailboxMessage, OutboxMessage, Subject
from erasure.models import RequestStatus as S
from erasure.transitions import TRANSITIONS
from tests.world import NOW, make_world, mail


def requests(w):
    with w.state.session() as session:
        stmt = sa.select(ErasureRequest).options(selectinload(ErasureRequest.replies), selectinload(ErasureRequest.subjects))
        return session.scalars(stmt.order_by(ErasureRequest.id)).all()


def only_request(w):
    (r,) = requests(w)
    return r


def read_reply(path):
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def test_a_genuine_request_erases_the_tenants_views_only(world):
    assert world.views("env_acme_prod", "viewer-00001") == 3
    assert world.views("env_globex", "viewer-00001") == 3
    world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00001\n"))
    result = world.poll()
    r = only_request(world)
    assert (r.status, r.response, r.tenant) == ("completed", "completed", "acme")
    assert world.views(viewer="viewer-00001") == 3  # globex's views of the same id are untouched
    assert world.views("env_globex", "viewer-00001") == 3
    assert r.rows_erased == 6 * 4  # 6 views in two acme environments, each with 3 events
    assert [o.status for o in result.outcomes] == ["completed"]
    assert not result.needs_attention


def test_the_reply_threads_and_is_marked_automatic(world):
    world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00002\n", subject="Please erase", message_id="<q1@acme.example>"))
    world.poll()
    (path,) = world.replies()
    reply = read_reply(path)
    r = only_request(world)
    assert reply["To"] == "dpo@acme.example"
    assert reply["In-Reply-To"] == "<q1@acme.example>"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["Message-ID"] == f"<{r.reference}.completed@analytics.example>"
    assert r.reference in reply["Subject"]


def test_the_message_moves_to_processed_and_is_not_taken_twice(world):
    world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00003\n"))
    world.poll()
    assert list((world.maildir / "new").iterdir()) == []
    assert len(list((world.maildir / ".Processed" / "cur").iterdir())) == 1
    second = world.poll()
    assert second.fetched == 0 and len(requests(world)) == 1 and len(world.replies()) == 1


def test_a_crash_between_commit_and_move_does_not_create_a_second_request(world):
    world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00004\n"))
    with world.source() as source:
        (incoming,) = list(source.fetch(source.pending()))
        world.desk.intake(source.name, incoming)  # committed; then the "crash": never moved
    result = world.poll()
    assert result.duplicates == 1 and result.fetched == 0
    assert len(requests(world)) == 1
    assert only_request(world).status == "completed"  # the recorded request still went forward
    assert list((world.maildir / "new").iterdir()) == []


def test_the_same_bytes_under_a_new_key_are_recognised(world):
    raw = mail("dpo@acme.example", "Viewer ID: viewer-00005\n")
    world.deliver(raw, "first.test")
    world.poll()
    world.deliver(raw, "second.test")  # e.g. after UIDVALIDITY changed, the same message again
    result = world.poll()
    assert result.duplicates == 1 and len(requests(world)) == 1 and len(world.replies()) == 1


def test_a_crash_after_the_store_committed_completes_without_saying_no_data(world):
    world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00006\n"))
    with world.source() as source:
        (incoming,) = list(source.fetch(source.pending()))
        request_id, _, _ = world.desk.intake(source.name, incoming)
    with world.state.session() as session:
        r = session.get(ErasureRequest, request_id)
        world.desk._classify(session, r)  # -> erasing, match count recorded
        assert r.status == "erasing"
        target = world.desk._target(r)
    world.desk.stores["default"].erase(target)  # the store commits, then the process dies
    outcome = world.desk.advance(request_id)
    assert outcome.status == "completed" and outcome.rows_erased == 24
    with world.state.session() as session:
        r = session.get(ErasureRequest, request_id)
        assert r.response == "completed"
        assert [m.kind for m in r.replies] == ["completed"]


@pytest.mark.parametrize(
    ("raw", "status", "replies"),
    [
        # only the data-free "ask the service you used" letter (tests/test_direct_requests.py)
        (mail("someone@unknown.example", "Viewer ID: viewer-00001\n"), "needs_review", ["direct_request"]),
        (mail("dpo@acme.example", "Viewer ID: viewer-00001\n", authenticated=False), "needs_review", []),
        (mail("dpo@acme.example", "Please delete our user's data.\n"), "needs_review", ["needs_information"]),
        (mail("dpo@acme.example", "Viewer ID: viewer-00001\n", headers={"Auto-Submitted": "auto-replied"}), "ignored", []),
    ],
    ids=["unknown-sender", "unauthenticated", "no-viewer-id", "auto-reply"],
)
def test_doubtful_mail_is_never_erased(world, raw, status, replies):
    world.deliver(raw)
    result = world.poll()
    r = only_request(world)
    assert r.status == status
    assert [m.kind for m in r.replies] == replies
    assert world.views(viewer="viewer-00001") == 9
    assert result.needs_attention == (status == "needs_review")
    folder = ".Review"
    assert len(list((world.maildir / folder / "cur").iterdir())) == 1


def test_an_officer_can_approve_a_review_case_naming_the_tenant(world):
    world.deliver(mail("someone@unknown.example", "Viewer ID: viewer-00007\n"))
    world.poll()
    r = only_request(world)
    with pytest.raises(InvalidTransitionError, match="approve it with --tenant"):
        world.desk.approve(r.reference, actor="alice")
    outcome = world.desk.approve(r.reference, actor="alice", tenant="globex")
    assert outcome.status == "completed"
    assert world.views("env_globex", "viewer-00007") == 0
    assert world.views("env_acme_prod", "viewer-00007") == 3
    with world.state.session() as session:
        found = audit.find_viewer(session, {1: b"test-key"}, "globex", "viewer-00007")
        assert [f.reference for f in found] == [r.reference]
        assert audit.find_viewer(session, {1: b"test-key"}, "acme", "viewer-00007") == []


def test_large_erasures_wait_for_approval(tmp_path, monkeypatch):
    w = make_world(tmp_path, monkeypatch, auto_approve_max_views=5)
    ids = "".join(f"Viewer ID: viewer-0000{i}\n" for i in range(1, 4))  # 18 views in acme
    w.deliver(mail("dpo@acme.example", ids))
    w.poll()
    r = only_request(w)
    assert r.status == "awaiting_approval" and r.match_count == 18 * 4
    assert [m.kind for m in r.replies] == ["acknowledgement"]
    assert w.views("env_acme_prod") == 30
    outcome = w.desk.approve(r.reference, actor="alice")
    assert outcome.status == "completed"
    assert w.views("env_acme_prod", "viewer-00001") == 0
    w.state.close()


def test_rejection_tells_the_requester_why(world):
    world.deliver(mail("someone@unknown.example", "Viewer ID: viewer-00001\n"))
    world.poll()
    r = only_request(world)
    outcome = world.desk.reject(r.reference, reason="We could not verify the sender.", actor="alice")
    assert outcome.status == "rejected"
    with pytest.raises(InvalidTransitionError, match="already rejected"):
        world.desk.reject(r.reference, reason="again", actor="alice")


def test_extension_is_once_and_recorded(world):
    w = world
    w.deliver(mail("someone@unknown.example", "Viewer ID: viewer-00002\n"))  # held for review
    w.poll()
    held = [r for r in requests(w) if r.status == "needs_review"][0]
    outcome = w.desk.extend(held.reference, reason="Several systems to check.", actor="alice")
    assert outcome.status == "needs_review"
    with w.state.session() as session:
        r = session.get(ErasureRequest, held.id)
        assert r.extended_to is not None and r.extended_to > r.due_on
    with pytest.raises(InvalidTransitionError, match="already extended"):
        w.desk.extend(held.reference, reason="again", actor="alice")


def test_manual_intake_goes_through_the_same_pipeline(world):
    outcome = world.desk.add_manual(tenant="acme", viewer_ids=["viewer-00008"], regulation="ccpa",
                                    requester="dpo@acme.example", actor="alice")
    assert outcome.status == "completed" and outcome.rows_erased == 24
    with world.state.session() as session:
        r = session.scalar(sa.select(ErasureRequest))
        assert (r.channel, r.regulation) == ("manual", "ccpa")
        assert r.acknowledge_by is not None


def test_dry_run_changes_nothing(world):
    world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00001\n"))
    result = world.poll(dry_run=True)
    assert [(o.status, o.match_count) for o in result.outcomes] == [("erasing", 24)]
    assert requests(world) == []
    assert world.views(viewer="viewer-00001") == 9
    assert len(list((world.maildir / "new").iterdir())) == 1


def test_no_raw_viewer_id_or_body_text_is_left_after_closing(world):
    secret_id = "viewer-00009"
    world.deliver(mail("dpo@acme.example", f"Confidential note 7f3a.\nViewer ID: {secret_id}\n"))
    world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00010\n", headers={"Auto-Submitted": "auto-replied"}))
    world.poll()
    assert {r.status for r in requests(world)} == {"completed", "ignored"}
    world.state.close()
    dump = "\n".join(sqlite3.connect(world.root / "state.db").iterdump())
    assert secret_id not in dump and "viewer-00010" not in dump
    assert "Confidential note" not in dump


def test_every_step_is_in_an_intact_audit_chain(world):
    world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00001\n"))
    world.deliver(mail("someone@unknown.example", "Viewer ID: viewer-00001\n"))
    world.poll()
    with world.state.session() as session:
        assert audit.verify(session).ok
        events = [e.event for e in audit.iter_events(session)]
    for step in ("received", "verified", "erasing", "erased", "completed", "reply_queued", "reply_sent", "needs_review"):
        assert step in events


def test_the_outbox_holds_rendered_bytes_once(world):
    world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00001\n"))
    world.poll()
    with world.state.session() as session:
        (m,) = session.scalars(sa.select(OutboxMessage)).all()
        assert m.status == "sent" and m.attempts == 1
        sent = read_reply(world.replies()[0])
        assert sent["Message-ID"] == m.message_id
        assert sent.get_body(("plain",)).get_content() == email.message_from_bytes(
            m.raw, policy=email.policy.default).get_body(("plain",)).get_content()
    with world.state.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(MailboxMessage)) == 1


def test_request_records_are_pruned_after_the_retention_period(world, monkeypatch):

    world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00001\n"))
    world.deliver(mail("someone@unknown.example", "Viewer ID: viewer-00002\n"))  # stays open
    world.poll()
    assert world.desk.prune_records() == []  # too recent
    later = world.desk.now() + dt.timedelta(days=2 * 366)
    monkeypatch.setattr(world.desk, "now", lambda: later)
    assert world.desk.prune_records(dry_run=True) == ["ER-2026-000001"]
    assert world.desk.prune_records() == ["ER-2026-000001"]
    assert [r.status for r in requests(world)] == ["needs_review"]  # open requests are never pruned
    with world.state.session() as session:
        assert audit.verify(session).ok
        last = list(audit.iter_events(session))[-1]
        assert last.event == "records_pruned" and "ER-2026-000001" in last.data


def test_audit_find_uses_retired_keys_after_a_rotation(world):
    world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00003\n"))
    world.poll()
    with world.state.session() as session:
        assert audit.find_viewer(session, {2: b"new-key"}, "acme", "viewer-00003") == []
        found = audit.find_viewer(session, {2: b"new-key", 1: b"test-key"}, "acme", "viewer-00003")
        assert [f.status for f in found] == ["completed"]


def test_logs_never_carry_raw_viewer_ids(world, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00004\n"))
    world.poll()
    assert caplog.records  # the run did log
    assert "viewer-00004" not in caplog.text


def test_cancel_only_before_erasure(world):
    world.deliver(mail("someone@unknown.example", "Viewer ID: viewer-00001\n"))
    world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00002\n"))
    world.poll()
    review, done = requests(world)
    outcome = world.desk.cancel(review.reference, reason="withdrawn by phone", actor="alice")
    assert outcome.status == "cancelled"
    with pytest.raises(InvalidTransitionError, match="only requests not yet erasing"):
        world.desk.cancel(done.reference, reason="too late", actor="alice")
    with world.state.session() as session:
        assert all(s.viewer_id is None for s in session.get(ErasureRequest, review.id).subjects)


def test_a_thank_you_to_our_reply_is_not_answered(world):
    world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00001\n"))
    world.poll()
    (ours,) = world.replies()
    our_id = read_reply(ours)["Message-ID"]
    world.deliver(mail("dpo@acme.example", "Thanks a lot!\n", subject="Re: your erasure request",
                       headers={"In-Reply-To": our_id, "References": our_id}))
    world.poll()
    first, thanks = requests(world)
    assert (thanks.status, thanks.reason_code) == ("needs_review", "reply_to_our_reply")
    assert thanks.replies == [] and len(world.replies()) == 1


def test_csv_attachments_leave_no_trace_after_closing(world):
    from email.message import EmailMessage

    msg = EmailMessage()
    for k, v in {"Return-Path": "<dpo@acme.example>", "From": "dpo@acme.example", "To": "privacy@analytics.example",
                 "Subject": "Erasure request", "Message-ID": "<csv1@acme.example>",
                 "Authentication-Results": "mx.test.example; dkim=pass header.d=acme.example; dmarc=pass header.from=acme.example"}.items():
        msg[k] = v
    msg.set_content("Please erase the viewers in the attached file (GDPR).\n")
    msg.add_attachment("viewer_id,note\nviewer-00005,secret-note-4471\nviewer-00006,other\n".encode(),
                       maintype="text", subtype="csv", filename="ids.csv")
    world.deliver(msg.as_bytes())
    world.poll()
    r = only_request(world)
    assert (r.status, r.rows_erased) == ("completed", 48)
    world.state.close()
    dump = "\n".join(sqlite3.connect(world.root / "state.db").iterdump())
    for trace in ("viewer-00005", "viewer-00006", "secret-note-4471", "viewer_id,note"):
        assert trace not in dump


def test_an_erasure_finished_twice_completes_and_answers_once(world):
    world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00002\n"))
    with world.source() as source:
        (incoming,) = list(source.fetch(source.pending()))
        request_id, _, _ = world.desk.intake(source.name, incoming)
    assert world.desk._classify_id(request_id) == "erasing"
    # an officer's approve and a cron poll both reach the erasing request
    assert world.desk._erase_group([request_id]) == {}
    assert world.desk._erase_group([request_id]) == {}
    (r,) = requests(world)
    assert r.status == "completed" and r.rows_erased == 24
    assert [m.kind for m in r.replies] == ["completed"]
    with world.state.session() as session:
        assert [e.event for e in audit.iter_events(session)].count("completed") == 1


def test_with_auto_approve_off_every_erasure_waits_for_an_officer(tmp_path, monkeypatch):
    w = make_world(tmp_path, monkeypatch, auto_approve=False)
    w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00001\n"))
    w.poll()
    r = only_request(w)
    held = next(e for e in _events(w) if e.event == "awaiting_approval")
    with w.state.session() as session:
        reason, _data = audit.shown(session, held)
    assert r.status == "awaiting_approval" and reason == "policy.auto_approve is off"
    assert w.views(viewer="viewer-00001") == 9
    assert w.desk.approve(r.reference, actor="alice").status == "completed"
    w.state.close()


def _events(w):
    with w.state.session() as session:
        return list(audit.iter_events(session))


# ---------------------------------------------------------------- the transition table (house-workflow)


def _request_in(session, status, n):
    """A bare request row in ``status``, holding one raw viewer id."""
    r = ErasureRequest(
        reference=f"ER-T-{n:04d}", channel="manual", status=status, planned="erase", kind="erasure",
        regulation="gdpr", tenant="acme", received_at=NOW, due_on=NOW.date(), created_at=NOW, updated_at=NOW,
    )
    r.subjects.append(Subject(position=0, viewer_id="viewer-00001", viewer_hmac="0" * 64, key_version=1))
    session.add(r)
    session.flush()
    return r


def test_every_state_and_step_is_either_taken_as_the_table_says_or_refused(world):
    """Walk the whole table: each (state, step) pair moves and records, or is refused and changes nothing."""
    later = NOW + dt.timedelta(hours=1)
    pairs = [(state, step) for state in S.ALL for step in TRANSITIONS]
    with world.state.session() as session:
        for n, (state, step) in enumerate(pairs):
            rule = TRANSITIONS[step]
            request = _request_in(session, state, n)
            before = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
            if state in rule.sources:
                transitions.move(session, request, step, now=later, data={"n": n})
                assert request.status == (rule.to if rule.to is not None else state)
                assert request.updated_at == later
                assert (request.closed_at == later) == rule.closes
                assert (request.subjects[0].viewer_id is None) == rule.closes
                assert request.response == (rule.to if rule.closes else None)
                event = list(audit.iter_events(session))[-1]
                assert (event.event, event.request_ref, event.data) == (rule.event, request.reference, f'{{"n":{n}}}')
            else:
                with pytest.raises(InvalidTransitionError) as refused:
                    transitions.move(session, request, step, now=later)
                # Names the request, the state it is in, and what would have been allowed.
                already = "already " if state in S.CLOSED else ""
                assert str(refused.value) == f"{request.reference} is {already}{state}; {rule.allowed}"
                assert request.status == state and request.updated_at == NOW and request.closed_at is None
                assert request.subjects[0].viewer_id == "viewer-00001"
                assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == before
        assert audit.verify(session).ok


def test_the_table_closes_exactly_the_steps_into_closed_states():
    for step, rule in TRANSITIONS.items():
        assert rule.sources and rule.sources <= set(S.OPEN), step  # nothing leaves a closed state
        assert rule.closes == (rule.to in S.CLOSED), step
        assert rule.to is None or rule.to in S.ALL, step


def test_no_module_but_transitions_assigns_a_request_status():
    """Every status change goes through ``transitions.move``: a scan of the package's source.

    ``status`` assignments elsewhere are allowed only on outbox rows (named ``row``
    in notify.py and digest.py), which have their own states.
    """
    root = pathlib.Path(erasure.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            for target in targets:
                for t in ast.walk(target):
                    if isinstance(t, ast.Attribute) and t.attr == "status":
                        owner = ast.unparse(t.value)
                        found.append((path.relative_to(root).as_posix(), owner))
    assert found, "the scan found no assignment at all: it is broken"
    strays = [(f, o) for f, o in found if f != "transitions.py" and (f, o) not in {("notify.py", "row"), ("digest.py", "row")}]
    assert strays == []
    assert ("transitions.py", "request") in found


def test_an_extension_after_the_deadline_is_refused(world, monkeypatch):
    world.deliver(mail("someone@unknown.example", "Viewer ID: viewer-00002\n"))  # held for review
    world.poll()
    held = only_request(world)
    late = dt.datetime.combine(held.due_on + dt.timedelta(days=1), dt.time(12), tzinfo=dt.UTC)
    monkeypatch.setattr(world.desk, "now", lambda: late)
    with pytest.raises(InvalidTransitionError, match="before the deadline"):
        world.desk.extend(held.reference, reason="too late", actor="alice")
    assert only_request(world).extended_to is None


@pytest.mark.parametrize("ahead", [dt.timedelta(seconds=1), dt.timedelta(hours=20), dt.timedelta(days=40),
                                   dt.timedelta(days=400)])
def test_a_future_dated_message_is_due_from_its_intake_not_its_internaldate(world, ahead):
    """A skewed server INTERNALDATE after the intake must not push the deadline later."""
    raw = mail("dpo@acme.example", "Viewer ID: viewer-00001\n")
    ref = MessageRef(key=f"future:{ahead}", uid=None, uidvalidity=None, size=len(raw), internal_date=NOW + ahead)
    request_id, _, _ = world.desk.intake("test", IncomingMessage(ref=ref, raw=raw))
    with world.state.session() as session:
        r = session.get(ErasureRequest, request_id)
        expected = deadlines_for(r.regulation, NOW, world.config.policy)
        assert (r.received_at, r.due_on) == (NOW, expected.respond_by)


def test_a_message_that_arrived_before_intake_is_due_from_its_arrival(world):
    raw = mail("dpo@acme.example", "Viewer ID: viewer-00001\n")
    arrived = NOW - dt.timedelta(days=3)
    ref = MessageRef(key="past", uid=None, uidvalidity=None, size=len(raw), internal_date=arrived)
    request_id, _, _ = world.desk.intake("test", IncomingMessage(ref=ref, raw=raw))
    with world.state.session() as session:
        r = session.get(ErasureRequest, request_id)
        assert (r.received_at, r.due_on) == (arrived, deadlines_for(r.regulation, arrived, world.config.policy).respond_by)
