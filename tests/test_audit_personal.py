"""Personal data out of the chain: the audit trail holds salted digests, the values sit
beside it in audit_personal and are pruned with the request record; the chain still verifies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

import pytest
import sqlalchemy as sa

from erasure import audit, personal
from erasure.errors import RequestNotFoundError
from erasure.models import AuditEvent, PersonalValue
from erasure.register import list_requests, show_request
from erasure.retention import prune_records
from erasure.state import current_revision, head_revision, make_engine, open_state
from tests.world import NOW, ZONE, mail, make_world

ACME = "dpo@acme.example"
STRANGER = "someone@unknown.example"
OTHER_STRANGER = "other.person@unknown.example"
PHONED = "viewer.rep@example.org"
REJECTED_BECAUSE = "Jane Roe (jane.roe@acme.example) told us on the phone that it was sent by mistake"
CANCELLED_BECAUSE = "Withdrawn by Max Mustermann in a letter of 1 November"
EXTENDED_BECAUSE = "Waiting for Erika Musterfrau <erika@acme.example> to confirm the ids"
APPROVED_BECAUSE = "Checked by phone with kim.lee@acme.example: the viewer is theirs"
PERSONAL = (ACME, STRANGER, OTHER_STRANGER, PHONED, "jane.roe@acme.example", "Jane Roe", "Mustermann",
            "Musterfrau", "erika@acme.example", "kim.lee@acme.example", "sent by mistake", "Withdrawn",
            "Waiting for", "Checked by phone")
LATER = NOW + dt.timedelta(days=2 * 366)
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@pytest.fixture
def w(tmp_path, monkeypatch, store_backend, store_url):
    """A world whose state database is on each real backend (SQLite: its own file beside the views)."""
    url = f"sqlite:///{tmp_path / 'state.db'}" if store_backend == "sqlite" else store_url
    world = make_world(tmp_path, monkeypatch, state_url=url)
    yield world
    world.desk.close()
    world.state.close()


def realistic_flow(w) -> dict[str, str]:
    """Mail polled (one erased, three in review), a phoned-in request, and every officer decision with words."""
    w.deliver(mail(ACME, "Please erase.\nViewer ID: viewer-00001\n"))
    w.deliver(mail(STRANGER, "Please erase.\nViewer ID: viewer-00002\n"))
    w.deliver(mail(OTHER_STRANGER, "Please erase.\nViewer ID: viewer-00003\n"))
    w.deliver(mail(ACME, "Please delete all data you hold about our viewer.\n"))  # no id: review
    w.poll()
    w.desk.add_manual(tenant="acme", viewer_ids=["viewer-00006"], requester=PHONED, actor="alice")
    by = {r.requester: r.reference for r in list_requests(w.state, today=NOW.date(), time_zone=ZONE) if r.status == "needs_review"}
    refs = {"stranger": by[STRANGER], "other": by[OTHER_STRANGER], "vague": by[ACME]}
    w.desk.extend(refs["stranger"], reason=EXTENDED_BECAUSE, actor="alice")
    w.desk.reject(refs["stranger"], reason=REJECTED_BECAUSE, actor="alice")
    w.desk.cancel(refs["vague"], reason=CANCELLED_BECAUSE, actor="bob")
    w.desk.approve(refs["other"], tenant="acme", reason=APPROVED_BECAUSE, actor="bob")
    return refs


def chain_text(w) -> list[str]:
    """Every column of every audit event, as text, straight from the table."""
    with w.state.engine.connect() as conn:
        return [" ".join("" if v is None else str(v) for v in row)
                for row in conn.execute(sa.text("SELECT * FROM audit_events ORDER BY seq"))]


def test_no_address_or_officer_text_is_in_the_chain(w):
    realistic_flow(w)
    rows = chain_text(w)
    assert len(rows) > 25
    for row in rows:
        assert not [p for p in PERSONAL if p in row], row
        # Any "@" left is one of our own Message-IDs, never an address.
        assert "@" not in re.sub(r'"message_id":"<[^"]*>"', "", row), row
    with w.state.session() as session:
        events = session.scalars(sa.select(AuditEvent)).all()
        assert all(e.reason is None or DIGEST.fullmatch(e.reason) for e in events)
        values = {p.value for p in session.scalars(sa.select(PersonalValue))}
    assert {ACME, STRANGER, PHONED, REJECTED_BECAUSE, CANCELLED_BECAUSE, EXTENDED_BECAUSE, APPROVED_BECAUSE} <= values


def test_the_officer_reads_the_values_while_the_record_is_kept(w):
    refs = realistic_flow(w)
    shown = w.desk.find(refs["stranger"])
    reasons = [e.reason for e in shown.events]
    assert EXTENDED_BECAUSE in reasons and REJECTED_BECAUSE in reasons
    (received,) = [e for e in shown.events if e.event == "received"]
    assert received.data["from"] == STRANGER


def test_pruning_removes_the_values_and_the_chain_still_verifies(w, monkeypatch):
    refs = realistic_flow(w)
    monkeypatch.setattr(w.desk, "now", lambda: LATER)
    pruned = w.desk.prune_records()
    assert set(refs.values()) <= set(pruned)
    with w.state.session() as session:
        assert audit.verify(session).ok
        kept = session.scalars(sa.select(PersonalValue.value).where(PersonalValue.value.is_not(None))).all()
        (event,) = session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "records_pruned")).all()
        tombstones = session.scalars(sa.select(PersonalValue).where(PersonalValue.pruned_seq.is_not(None))).all()
    assert not [v for v in kept for p in PERSONAL if p in v]  # only the pruning event's own reason is left
    assert json.loads(event.data)["personal_values"] == len(tombstones) > 10
    assert {t.pruned_seq for t in tombstones} == {event.seq}
    with pytest.raises(RequestNotFoundError, match=rf"{refs['stranger']} was pruned on {LATER:%Y-%m-%d} "
                                                   rf"\(audit event {event.seq}, records_pruned\)"):
        w.desk.find(refs["stranger"])


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_the_export_after_pruning_says_what_was_pruned_and_still_verifies(w, monkeypatch, fmt):
    refs = realistic_flow(w)
    monkeypatch.setattr(w.desk, "now", lambda: LATER)
    w.desk.prune_records()
    with w.state.session() as session:
        text = "".join(audit.export_lines(audit.iter_export(session), fmt))
        pruning = session.scalar(sa.select(AuditEvent.seq).where(AuditEvent.event == "records_pruned"))
    if fmt == "jsonl":
        rows = [json.loads(line) for line in text.splitlines()]
    else:
        import csv
        import io

        rows = [dict(r, seq=int(r["seq"]), personal=json.loads(r["personal"])) for r in csv.DictReader(io.StringIO(text))]
        for r in rows:
            r.update({k: (v or None) for k, v in r.items() if k in ("request_ref", "tenant", "reason")})
    assert not [p for p in PERSONAL if p in text]
    rejected = next(r for r in rows if r["event"] == "rejected" and r["request_ref"] == refs["stranger"])
    assert rejected["personal"] == {"reason": {"pruned": True, "pruned_by": pruning,
                                               "pruned_at": audit.format_time(LATER)}}
    received = next(r for r in rows if r["event"] == "received" and r["request_ref"] == refs["stranger"])
    assert received["personal"]["data.from"]["pruned_by"] == pruning
    for r in rows:
        r["at"] = audit.parse_export_time(r["at"])
    assert audit.verify_events(rows).ok


def test_the_export_gives_value_and_salt_so_the_digest_can_be_checked(w):
    realistic_flow(w)
    with w.state.session() as session:
        rows = list(audit.iter_export(session))
    checked = 0
    for row in rows:
        data = json.loads(row["data"])
        for field, kept in row["personal"].items():
            stored = row["reason"] if field == "reason" else data[field.removeprefix("data.")]
            assert stored == personal.salted_digest(kept["salt"], kept["value"])
            checked += 1
    assert checked > 10


def test_the_same_address_gets_a_different_digest_in_every_request(w):
    w.deliver(mail(ACME, "Viewer ID: viewer-00001\n"))
    w.deliver(mail(ACME, "Viewer ID: viewer-00002\n"))
    w.poll()
    with w.state.session() as session:
        received = session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "received")).all()
    digests = [json.loads(e.data)["from"] for e in received]
    assert len(digests) == 2 and digests[0] != digests[1]
    unsalted = "sha256:" + hashlib.sha256(ACME.encode()).hexdigest()
    assert unsalted not in digests  # a list of addresses does not find it


def test_a_new_call_with_reason_and_an_address_is_covered_without_change(w):
    with w.state.session() as session:
        row = audit.record(session, "something_new", actor="carol", reason="asked by pat@acme.example",
                           data={"recipient": "pat@acme.example", "count": 3, "to": None})
        seq = row.seq
    with w.state.session() as session:
        row = session.get(AuditEvent, seq)
        assert "pat@" not in f"{row.reason}{row.data}" and row.actor == "carol"
        assert json.loads(row.data)["count"] == 3 and json.loads(row.data)["to"] is None
        assert audit.shown(session, row) == ("asked by pat@acme.example",
                                             {"recipient": "pat@acme.example", "count": 3, "to": None})


def test_values_of_events_without_a_request_go_once_they_are_as_old(w, monkeypatch):
    with w.state.session() as session:
        audit.record(session, "mailbox_uidvalidity_changed", reason="recreated by ops@analytics.example", now=NOW)
    monkeypatch.setattr(w.desk, "now", lambda: LATER)
    assert w.desk.prune_records() == []  # no request record, yet the old value goes
    with w.state.session() as session:
        assert audit.verify(session).ok
        old = session.scalars(sa.select(PersonalValue).where(PersonalValue.seq == 1)).one()
        assert (old.value, old.salt) == (None, None) and old.pruned_seq == 2


# ---------------------------------------------------------------- migration 0010


def _old_chain(conn, rows):
    """Events written the way every version before 0010 wrote them: plain values, hashed."""
    from erasure.models import UTCDateTime

    table = sa.table("audit_events", *(sa.column(c) for c in ("seq", "actor", "event", "request_ref", "tenant",
                                                              "reason", "data", "prev_hash", "hash")),
                     sa.column("at", UTCDateTime()))
    prev = audit.GENESIS
    for seq, (at, event, ref, reason, data) in enumerate(rows, 1):
        row = {"seq": seq, "at": at, "actor": "alice" if reason else "system", "event": event, "request_ref": ref,
               "tenant": "acme", "reason": reason, "data": audit.encode_data(data), "prev_hash": prev}
        row["hash"] = prev = audit.event_hash(row)
        conn.execute(table.insert(), [row])
    return audit.ChainHead(len(rows), prev)


def _old_request(conn, reference, status, closed_at):
    from erasure.models import UTCDateTime

    table = sa.table("requests", *(sa.column(c) for c in (
        "reference", "channel", "status", "planned", "kind", "regulation", "tenant", "requester", "reply_allowed",
        "subject_line", "reason", "due_on")), *(sa.column(c, UTCDateTime()) for c in (
            "received_at", "closed_at", "created_at", "updated_at")))
    at = dt.datetime(2024, 1, 5, tzinfo=dt.timezone.utc)
    conn.execute(table.insert(), [{
        "reference": reference, "channel": "email", "status": status, "planned": "review", "kind": "erasure",
        "regulation": "gdpr", "tenant": "acme", "requester": "x@acme.example", "reply_allowed": True,
        "subject_line": "", "reason": None, "due_on": dt.date(2024, 2, 5), "received_at": at, "closed_at": closed_at,
        "created_at": at, "updated_at": at}])


def _t(year, month, day):
    return dt.datetime(year, month, day, 10, 0, 0, 123456, tzinfo=dt.timezone.utc)


OLD_EVENTS = [
    (_t(2023, 3, 1), "received", "ER-2023-000007", None, {"channel": "email", "from": "gone@acme.example"}),
    (_t(2023, 3, 2), "needs_review", "ER-2023-000007", "unknown sender gone@acme.example", {"reason_code": "x"}),
    (_t(2024, 1, 5), "received", "ER-2024-000001", None, {"channel": "email", "from": "old.dpo@acme.example\x00"}),  # NUL: escaped in JSON
    (_t(2024, 1, 9), "rejected", "ER-2024-000001", "Told Erika Musterfrau (erika@acme.example) by phone", None),
    (_t(2024, 2, 1), "records_pruned", None, "closed before 2022-02-01", {"references": ["ER-2023-000007"]}),
    (_t(2026, 10, 30), "received", "ER-2026-000002", None, {"channel": "manual", "requester": "still.open@globex.example"}),
    (_t(2026, 10, 30), "needs_review", "ER-2026-000002", "asked by still.open@globex.example", None),
]


def test_0010_moves_old_values_out_rewrites_the_chain_and_pruning_then_works(store_url, tmp_path):
    from alembic import command

    from erasure.config import config_from_dict
    from tests.test_state import _migrator
    from tests.world import config_dict

    engine = make_engine(store_url)
    migrate = _migrator(engine)
    try:
        migrate(command.upgrade, "0009")
        with engine.begin() as conn:
            _old_request(conn, "ER-2024-000001", "rejected", _t(2024, 1, 9))
            _old_request(conn, "ER-2026-000002", "needs_review", None)  # ER-2023-000007 was pruned long ago
            old_head = _old_chain(conn, OLD_EVENTS)
        migrate(command.upgrade, "0010")
        state = open_state(store_url)
        try:
            with state.session() as session:
                assert audit.verify(session).ok
                events = list(audit.iter_events(session))
                values = session.scalars(sa.select(PersonalValue).order_by(PersonalValue.seq)).all()
            closing = events[-1]
            assert (closing.seq, closing.event) == (8, "chain_rewritten")
            data = json.loads(closing.data)
            assert data["old_head"] == {"seq": old_head.seq, "hash": old_head.hash}
            assert (data["personal_values"], data["pruned_at_once"]) == (7, 2)
            text = " ".join(f"{e.reason} {e.data}" for e in events)
            assert "@" not in text and "Musterfrau" not in text
            # The request pruned before the upgrade: its values pruned at once, by the rewrite.
            gone = [v for v in values if v.request_ref == "ER-2023-000007"]
            assert [(v.value, v.salt, v.pruned_seq) for v in gone] == [(None, None, 8)] * 2
            with pytest.raises(RequestNotFoundError, match=r"audit event 8, chain_rewritten"):
                show_request(state, "ER-2023-000007", today=NOW.date(), time_zone=ZONE)
            policy = config_from_dict(config_dict(tmp_path), base_dir=tmp_path).policy
            assert prune_records(state, policy, now=NOW) == ["ER-2024-000001"]
            with state.session() as session:
                assert audit.verify(session).ok
                left = {(v.seq, v.field): v.value for v in session.scalars(sa.select(PersonalValue))}
        finally:
            state.close()
        assert left[(3, "data.from")] is None and left[(4, "reason")] is None  # ER-2024-000001, pruned now
        assert left[(5, "reason")] is None  # an event of no request, as old as the cutoff
        assert left[(6, "data.requester")] == "still.open@globex.example"  # ER-2026-000002 is open: kept
        assert left[(9, "reason")].startswith("closed before 2024-11-02")  # the pruning event's own words
        migrate(command.downgrade, "0009")  # the values still kept go back into a rewritten chain
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT reason, data, event FROM audit_events ORDER BY seq")).all()
        assert "still.open@globex.example" in rows[5].data and "old.dpo" not in rows[2].data
        assert rows[-1].event == "chain_rewritten"
        migrate(command.upgrade, "head")
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_0010_refuses_to_rewrite_a_chain_that_does_not_verify(store_url):
    from alembic import command

    from tests.test_state import _migrator

    engine = make_engine(store_url)
    migrate = _migrator(engine)
    try:
        migrate(command.upgrade, "0009")
        with engine.begin() as conn:
            _old_chain(conn, OLD_EVENTS)
            conn.execute(sa.text("UPDATE audit_events SET reason = 'edited' WHERE seq = 4"))
        with pytest.raises(Exception, match="does not verify at event 4"):
            migrate(command.upgrade, "0010")
        assert current_revision(engine) == "0009"
        assert "audit_personal" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_the_cli_says_a_pruned_request_is_gone_and_its_export_says_what_went(world, monkeypatch):
    import tomli_w
    from typer.testing import CliRunner

    from erasure.cli import app
    from tests.world import KEY_ENV, config_dict

    world.deliver(mail(STRANGER, "Please erase.\nViewer ID: viewer-00002\n"))
    world.poll()
    (ref,) = [r.reference for r in list_requests(world.state, today=NOW.date(), time_zone=ZONE)]
    world.desk.reject(ref, reason=REJECTED_BECAUSE, actor="alice")
    monkeypatch.setattr(world.desk, "now", lambda: LATER)
    world.desk.prune_records()
    path = world.root / "erasure.toml"
    path.write_text(tomli_w.dumps(config_dict(world.root)))

    def cli(*args):
        return CliRunner().invoke(app, ["--config", str(path), *args], env={KEY_ENV: "test-key"})

    shown = cli("requests", "show", ref)
    assert shown.exit_code == 2
    assert f"{ref} was pruned on {LATER:%Y-%m-%d}" in shown.output and f"audit export --request {ref}" in shown.output
    exported = cli("audit", "export", "--request", ref)
    assert exported.exit_code == 0 and "jane.roe" not in exported.output and STRANGER not in exported.output
    rejected = next(json.loads(line) for line in exported.output.splitlines() if '"event": "rejected"' in line)
    assert rejected["personal"]["reason"]["pruned"] is True
    assert cli("audit", "verify").exit_code == 0
