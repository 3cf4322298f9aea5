"""The audit trail's hash chain: any edit, deletion, reordering or insertion is found, at the right event."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from erasure import audit
from erasure.errors import UsageError
from erasure.models import AuditEvent
from erasure.state import open_state

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def state(tmp_path):
    s = open_state(f"sqlite:///{tmp_path / 'state.db'}")
    with s.session() as session:
        for i in range(1, 11):
            audit.record(session, "received", actor="system", tenant="acme", reason=f"event {i}",
                         data={"i": i, "text": "é✓"}, now=T0 + dt.timedelta(minutes=i))
    yield s
    s.close()


def verify(state, head=None):
    with state.session() as session:
        return audit.verify(session, head)


def test_an_untouched_chain_verifies(state):
    result = verify(state)
    assert result.ok and result.events == 10 and result.head.seq == 10


def test_events_link_to_their_predecessor(state):
    with state.session() as session:
        rows = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert rows[0].prev_hash == audit.GENESIS
        assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:]))


@pytest.mark.parametrize(
    ("probe", "bad_seq"),
    [
        ("UPDATE audit_events SET reason = 'edited' WHERE seq = 4", 4),
        ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 10", 10),
        ("UPDATE audit_events SET data = '{}' WHERE seq = 1", 1),
        ("UPDATE audit_events SET at = '2020-01-01 00:00:00.000000' WHERE seq = 7", 7),
        ("DELETE FROM audit_events WHERE seq = 5", 5),
        # reorder: swap the contents of 3 and 6 (keeping their seq numbers)
        ("UPDATE audit_events SET seq = 1003 WHERE seq = 3; UPDATE audit_events SET seq = 3 WHERE seq = 6;"
         " UPDATE audit_events SET seq = 6 WHERE seq = 1003", 3),
    ],
    ids=["edit-reason", "edit-actor", "edit-data", "edit-time", "delete", "reorder"],
)
def test_tampering_is_found_at_the_right_event(state, probe, bad_seq):
    with state.engine.begin() as conn:
        for statement in probe.split(";"):
            conn.execute(sa.text(statement))
    result = verify(state)
    assert not result.ok
    assert result.first_bad_seq == bad_seq


def test_an_inserted_event_is_found(state):
    # Renumber 6..10 to 7..11 and insert a forged, self-consistent event 6.
    with state.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET seq = seq + 100 WHERE seq >= 6"))
        conn.execute(sa.text("UPDATE audit_events SET seq = seq - 99 WHERE seq >= 100"))
        prev = conn.execute(sa.text("SELECT hash FROM audit_events WHERE seq = 5")).scalar_one()
    forged = {"seq": 6, "at": T0, "actor": "mallory", "event": "erased", "request_ref": None, "tenant": None,
              "reason": None, "data": "{}", "prev_hash": prev}
    forged["hash"] = audit.event_hash(forged)
    with state.session() as session:
        session.add(AuditEvent(**forged))
    result = verify(state)
    assert not result.ok and result.first_bad_seq == 7


def test_a_flipped_bit_in_a_hash_is_found(state):
    with state.engine.begin() as conn:
        h = conn.execute(sa.text("SELECT hash FROM audit_events WHERE seq = 8")).scalar_one()
        flipped = ("1" if h[0] == "0" else "0") + h[1:]
        conn.execute(sa.text("UPDATE audit_events SET hash = :h WHERE seq = 8"), {"h": flipped})
    result = verify(state)
    assert not result.ok and result.first_bad_seq == 8


def test_a_cut_tail_is_found_against_the_expected_head(state):
    with state.session() as session:
        head = audit.head(session)
    with state.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_events WHERE seq > 7"))
    assert verify(state).ok  # a clean cut leaves a consistent chain...
    result = verify(state, head)  # ...that the head kept elsewhere exposes
    assert not result.ok and result.first_bad_seq == 8


def test_a_rebuilt_tail_is_found_against_the_expected_head(state):
    with state.session() as session:
        head = audit.head(session)
    with state.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_events WHERE seq > 8"))
        conn.execute(sa.text("DELETE FROM audit_personal WHERE seq > 8"))  # the forger cleans up both
    with state.session() as session:
        audit.record(session, "received", reason="forged", now=T0)
        audit.record(session, "received", reason="forged", now=T0)
    assert verify(state).ok
    result = verify(state, head)
    assert not result.ok and result.first_bad_seq == 10


def test_head_parses_only_seq_colon_hash():
    assert audit.ChainHead.parse("12:" + "a" * 64) == audit.ChainHead(12, "a" * 64)
    with pytest.raises(UsageError, match="SEQ:HASH"):  # a wrong option value: exit 2
        audit.ChainHead.parse("12-abc")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_verifies_on_its_own(state, fmt):
    with state.session() as session:
        text = "".join(audit.export_lines(audit.iter_export(session, batch=3), fmt))
    if fmt == "jsonl":
        rows = [json.loads(line) for line in text.splitlines()]
    else:
        rows = [dict(r, seq=int(r["seq"])) for r in csv.DictReader(io.StringIO(text))]
        for r in rows:
            r.update({k: (v or None) for k, v in r.items() if k in ("request_ref", "tenant", "reason")})
    for r in rows:
        r["at"] = audit.parse_export_time(r["at"])
    assert len(rows) == 10
    assert audit.verify_events(rows).ok
    rows[2]["reason"] = "edited"
    assert audit.verify_events(rows).first_bad_seq == 3


def test_export_filters_by_time(state):
    with state.session() as session:
        events = list(audit.iter_events(session, since=T0 + dt.timedelta(minutes=3), until=T0 + dt.timedelta(minutes=6)))
    assert [e.seq for e in events] == [3, 4, 5]


def test_viewer_hmac_is_keyed_and_tenant_scoped():
    a = audit.viewer_hmac(b"k1", "acme", "viewer-1")
    assert a != audit.viewer_hmac(b"k2", "acme", "viewer-1")
    assert a != audit.viewer_hmac(b"k1", "globex", "viewer-1")
    assert a == audit.viewer_hmac(b"k1", "acme", "viewer-1") and "viewer-1" not in a


# ---------------------------------------------------------------- the fast canonical encoding `audit verify` uses

_texts = st.one_of(st.none(), st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))


@given(seq=st.integers(1, 2**40), actor=st.text(max_size=20, alphabet=st.characters(blacklist_categories=("Cs",))),
       event=st.text(max_size=20, alphabet=st.characters(blacklist_categories=("Cs",))), request_ref=_texts,
       tenant=_texts, reason=_texts, data=st.text(max_size=60, alphabet=st.characters(blacklist_categories=("Cs",))),
       micro=st.integers(0, 999_999))
def test_the_fast_canonical_encoding_is_byte_for_byte_the_canonical_one(seq, actor, event, request_ref, tenant,
                                                                       reason, data, micro):
    at = dt.datetime(2026, 11, 29, 7, 0, 5, micro, tzinfo=dt.timezone.utc)
    fields = dict(seq=seq, actor=actor, event=event, request_ref=request_ref, tenant=tenant, reason=reason, data=data,
                  prev_hash="ab" * 32)
    slow = audit.canonical(at=at, **fields)
    for stored in (at.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f"), at.replace(tzinfo=None), at):
        assert audit.fast_canonical(at_text=audit.stored_time_text(stored), **fields) == slow
