"""The append-only, hash-chained audit trail.

Each event stores the SHA-256 of a canonical encoding of itself, and that
encoding includes the previous event's hash, so editing, deleting, reordering or
inserting any event breaks every hash after it. Events are written in the same
state-database transaction as the state change they record: there is never a
change without its event, nor an event for a change that was rolled back.

Viewer ids never appear here in the clear: only as HMAC-SHA256 under a key the
operator holds (``audit.hmac_key_env``), scoped by tenant so the same id in two
tenants gives two different values.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Literal

import sqlalchemy as sa
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from erasure import personal
from erasure.errors import UsageError
from erasure.models import AuditCheckpoint, AuditEvent, AuditLock, ErasureRequest, Subject
from erasure.parse.headers import storable

GENESIS = "0" * 64
SYSTEM = "system"

#: Columns of `audit export`, in order; documented in docs/audit.md.
EXPORT_FIELDS = ("seq", "at", "actor", "event", "request_ref", "tenant", "reason", "data", "prev_hash", "hash",
                 "personal")


def viewer_hmac(key: bytes, tenant: str, viewer_id: str) -> str:
    """The only form in which a viewer id is kept after its request closes."""
    msg = tenant.encode("utf-8") + b"\x00" + viewer_id.encode("utf-8")
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


#: Ids shorter than this are not masked inside free text: "a" or "abc" occur in every
#: sentence, and masking them would garble reasons without hiding anything.
MIN_MASKED_ID_LENGTH = 4
WITHHELD = "(withheld: this text named a viewer id; see the request's masked subjects)"


def masked_viewer_id(viewer_id: str | None, digest: str = "") -> str:
    """Enough of an id for an officer to recognise it, too little to reuse it.

    The one masking rule: `requests show`, reasons in the audit trail and
    letters all use it, so a raw id appears in none of them.
    """
    if viewer_id is None:
        return f"hmac:{digest[:12]}"
    if len(viewer_id) <= 4:
        return "*" * len(viewer_id)
    return f"{viewer_id[:2]}{'*' * min(len(viewer_id) - 4, 8)}{viewer_id[-2:]}"


def without_viewer_ids(text: str, viewer_ids: Iterable[str]) -> str:
    """The text with each of these raw ids (of MIN_MASKED_ID_LENGTH or more) masked.

    Defence in depth where free text (reasons, an officer's words) enters the
    audit trail or a letter. If masking cannot remove an id (an id that is its own
    masked form, like ``ab*cd``), the whole text is withheld instead.
    """
    present = sorted({v for v in viewer_ids if len(v) >= MIN_MASKED_ID_LENGTH and v in text}, key=len, reverse=True)
    if not present:
        return text
    pattern = re.compile("|".join(re.escape(v) for v in present))
    for _ in range(3):
        text = pattern.sub(lambda m: masked_viewer_id(m.group(0)), text)
        if pattern.search(text) is None:
            return text
    return WITHHELD


def format_time(at: dt.datetime) -> str:
    """Fixed-width UTC time: part of the hashed encoding, so it must never vary."""
    return at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(
    *,
    seq: int,
    at: dt.datetime,
    actor: str,
    event: str,
    request_ref: str | None,
    tenant: str | None,
    reason: str | None,
    data: str,
    prev_hash: str,
) -> bytes:
    """The bytes that are hashed: sorted-key JSON, UTF-8, no whitespace."""
    doc = {
        "seq": seq,
        "at": format_time(at),
        "actor": actor,
        "event": event,
        "request_ref": request_ref,
        "tenant": tenant,
        "reason": reason,
        "data": data,
        "prev_hash": prev_hash,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


HASHED_FIELDS = ("seq", "at", "actor", "event", "request_ref", "tenant", "reason", "data", "prev_hash")
CHAIN_FIELDS = (*HASHED_FIELDS, "hash")


def _fields(row: AuditEvent | dict[str, Any]) -> dict[str, Any]:
    """An event as a dict, whether it comes from the database or from an export."""
    return row if isinstance(row, dict) else {k: getattr(row, k) for k in CHAIN_FIELDS}


def event_hash(row: AuditEvent | dict[str, Any]) -> str:
    fields = _fields(row)
    return hashlib.sha256(canonical(**{k: fields[k] for k in HASHED_FIELDS})).hexdigest()


def encode_data(data: dict[str, Any] | None) -> str:
    return json.dumps(data or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record(
    session: Session,
    event: str,
    *,
    actor: str = SYSTEM,
    request: ErasureRequest | None = None,
    tenant: str | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction.

    ``reason`` and the personal keys of ``data`` (``personal.PERSONAL_DATA_KEYS``:
    addresses, an officer's words) are kept beside the chain in
    ``audit_personal``, pruned with the request record; the event holds their
    salted digests. Callers pass plain values and need not know.

    Writers first lock the one ``audit_lock`` row (a no-op on SQLite, whose
    writers are serialized anyway), then read the newest event with FOR UPDATE,
    so two writers cannot both extend the same head; the primary key on ``seq``
    is the backstop.
    """
    session.execute(select(AuditLock.id).where(AuditLock.id == 1).with_for_update())  # see AuditLock
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1).with_for_update()
    ).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    # Normalised before hashing (the state boundary's guard, applied here so the
    # hash covers exactly what is stored): a header value with 8-bit bytes or NUL
    # in an event's reason or data must neither break the INSERT nor the chain.
    actor = storable(actor, 100) or SYSTEM
    # Personal values (the reason, addresses in data) go beside the chain, which
    # keeps only their salted digests: see erasure/personal.py.
    chain = personal.split(reason, data)
    request_ref = request.reference if request is not None else None
    row = AuditEvent(
        seq=seq,
        at=(now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc),
        actor=actor,
        event=event,
        request_ref=request_ref,
        tenant=tenant if tenant is not None else (request.tenant if request is not None else None),
        reason=chain.reason,
        data=storable(encode_data(chain.data), multiline=True),
        prev_hash=prev,
    )
    row.hash = event_hash(row)
    session.add(row)
    personal.keep(session, seq, request_ref, chain.values)
    session.flush()
    return row


@dataclass(frozen=True)
class ChainHead:
    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> ChainHead:
        seq, sep, digest = text.partition(":")
        if not sep or not seq.isdigit() or len(digest) != 64:
            raise UsageError(f"expected head as SEQ:HASH (from `erasure audit head`), got {text!r}")
        return cls(int(seq), digest.lower())


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    events: int
    head: ChainHead | None
    first_bad_seq: int | None = None
    problem: str | None = None


def head(session: Session) -> ChainHead | None:
    last = session.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
    return ChainHead(last.seq, last.hash) if last else None


def verify_events(rows: Iterable[AuditEvent | dict[str, Any]], expect_head: ChainHead | None = None,
                  *, start: ChainHead | None = None) -> VerifyResult:
    """Recompute the chain over events in storage order; pure, so exports verify the same way.

    ``start``: a head already found intact; ``rows`` are then the events after
    it, and ``events`` in the result still counts the whole chain.
    """
    prev = start.hash if start else GENESIS
    expected_seq = start.seq + 1 if start else 1
    count = start.seq if start else 0
    last: ChainHead | None = start
    seen_expected = expect_head is None or (start is not None and expect_head.seq <= start.seq)
    for row in rows:
        fields = _fields(row)
        seq = fields["seq"]
        count += 1
        if seq != expected_seq:
            return VerifyResult(False, count, last, expected_seq, f"event {expected_seq} is missing (found {seq} next)")
        if fields["prev_hash"] != prev:
            return VerifyResult(False, count, last, seq, f"event {seq} does not link to event {seq - 1}")
        digest = event_hash(fields)
        if digest != fields["hash"]:
            return VerifyResult(False, count, last, seq, f"event {seq} was altered (its hash does not match its content)")
        if expect_head is not None and seq == expect_head.seq:
            if digest != expect_head.hash:
                return VerifyResult(False, count, last, seq, f"event {seq} differs from the expected head {expect_head}")
            seen_expected = True
        prev = digest
        last = ChainHead(seq, digest)
        expected_seq += 1
    if not seen_expected:
        assert expect_head is not None
        return VerifyResult(
            False, count, last, (last.seq + 1) if last else 1,
            f"the trail ends at {last.seq if last else 0}, before the expected head {expect_head.seq}: events were removed",
        )
    return VerifyResult(True, count, last)


def iter_event_batches(
    session: Session,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    request_ref: str | None = None,
    batch: int = 1000,
) -> Iterator[list[AuditEvent]]:
    """Events in order, a batch at a time, in constant memory (keyset pagination, not OFFSET)."""
    after = 0
    while True:
        stmt = select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(batch)
        if since is not None:
            stmt = stmt.where(AuditEvent.at >= since)
        if until is not None:
            stmt = stmt.where(AuditEvent.at < until)
        if request_ref is not None:
            stmt = stmt.where(AuditEvent.request_ref == request_ref)
        rows = list(session.scalars(stmt).all())
        if not rows:
            return
        yield rows
        after = rows[-1].seq
        session.expunge_all()


def iter_events(
    session: Session,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    request_ref: str | None = None,
    batch: int = 1000,
) -> Iterator[AuditEvent]:
    """Stream events in order in constant memory. Never reads ``audit_personal``: verify stays one scan."""
    for rows in iter_event_batches(session, since=since, until=until, request_ref=request_ref, batch=batch):
        yield from rows


def iter_export(
    session: Session,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    request_ref: str | None = None,
    batch: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Events as export rows: the chain's fields as stored, plus ``personal`` (one side-table query a batch)."""
    for rows in iter_event_batches(session, since=since, until=until, request_ref=request_ref, batch=batch):
        fields = personal.revealed(session, [r.seq for r in rows])
        for row in rows:
            yield event_dict(row, fields.get(row.seq, {}))


#: json.dumps(..., ensure_ascii=False)'s own string encoder (its C implementation when available).
_json_string = json.encoder.encode_basestring  # type: ignore[attr-defined]


def fast_canonical(seq: int, at_text: str, actor: str, event: str, request_ref: str | None, tenant: str | None,
                   reason: str | None, data: str, prev_hash: str) -> bytes:
    """``canonical`` assembled by hand, byte for byte the same (a property test pins it): the keys in
    sorted order, each string through json's own encoder. About four times faster, for `audit verify`."""
    enc = _json_string
    return (
        f'{{"actor":{enc(actor)},"at":{enc(at_text)},"data":{enc(data)},"event":{enc(event)},'
        f'"prev_hash":{enc(prev_hash)},"reason":{"null" if reason is None else enc(reason)},'
        f'"request_ref":{"null" if request_ref is None else enc(request_ref)},"seq":{seq},'
        f'"tenant":{"null" if tenant is None else enc(tenant)}}}'
    ).encode("utf-8")


def stored_time_text(value: str | dt.datetime) -> str:
    """A stored event time as ``format_time`` writes it, read without the ORM's conversions.

    SQLite keeps ``YYYY-MM-DD HH:MM:SS.ffffff`` (SQLAlchemy always writes the
    microseconds); PostgreSQL and MariaDB return a naive UTC datetime.
    """
    if isinstance(value, str):
        return value.replace(" ", "T", 1) + "Z"
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


_CHAIN_COLUMNS = (AuditEvent.seq, AuditEvent.actor, AuditEvent.event, AuditEvent.request_ref, AuditEvent.tenant,
                  AuditEvent.reason, AuditEvent.data, AuditEvent.prev_hash, AuditEvent.hash)


def _chain_rows(session: Session, batch: int = 10_000) -> Iterator[Any]:
    """(seq, at, actor, ..., hash) tuples in order, in batches, with no ORM objects and no time conversion."""
    raw_at = sa.type_coerce(AuditEvent.__table__.c.at,
                            sa.String() if session.get_bind().dialect.name == "sqlite" else sa.DateTime())
    conn = session.connection()  # Core rows: the ORM's loading machinery would double the cost
    after = 0
    while True:
        rows = conn.execute(
            select(*_CHAIN_COLUMNS, raw_at).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        after = rows[-1][0]


def _verify_stored(session: Session, expect_head: ChainHead | None) -> VerifyResult:
    """``verify_events`` over the stored chain, fast: plain tuples and ``fast_canonical``."""
    prev, expected_seq, count, last = GENESIS, 1, 0, None
    sha256 = hashlib.sha256
    for seq, actor, event, request_ref, tenant, reason, data, prev_hash, stored, at in _chain_rows(session):
        count += 1
        if seq != expected_seq:
            return VerifyResult(False, count, last, expected_seq, f"event {expected_seq} is missing (found {seq} next)")
        if prev_hash != prev:
            return VerifyResult(False, count, last, seq, f"event {seq} does not link to event {seq - 1}")
        digest = sha256(fast_canonical(seq, stored_time_text(at), actor, event, request_ref, tenant, reason, data,
                                       prev_hash)).hexdigest()
        if digest != stored:
            return VerifyResult(False, count, last, seq, f"event {seq} was altered (its hash does not match its content)")
        if expect_head is not None and seq == expect_head.seq and digest != expect_head.hash:
            return VerifyResult(False, count, last, seq, f"event {seq} differs from the expected head {expect_head}")
        prev, last, expected_seq = digest, ChainHead(seq, digest), expected_seq + 1
    if expect_head is not None and (last is None or last.seq < expect_head.seq):
        return VerifyResult(
            False, count, last, (last.seq + 1) if last else 1,
            f"the trail ends at {last.seq if last else 0}, before the expected head {expect_head.seq}: events were removed",
        )
    return VerifyResult(True, count, last)


def verify(session: Session, expect_head: ChainHead | None = None, *, now: dt.datetime | None = None) -> VerifyResult:
    """The whole chain, from its first event; an intact chain moves the checkpoint `status` starts from."""
    result = _verify_stored(session, expect_head)
    if result.ok and result.head is not None:
        _save_checkpoint(session, result.head, now)
    return result


def verify_since_checkpoint(session: Session, *, now: dt.datetime | None = None) -> tuple[VerifyResult, ChainHead | None]:
    """Only the events after the last verified checkpoint (`erasure status`); (result, the checkpoint used).

    The checkpoint event must still be there with the hash it had: an event
    rewritten or removed at or before it shows here too. An edit further back
    is found only by `erasure audit verify` (the whole chain) or by comparing
    `audit head` with a head kept elsewhere.
    """
    row = session.get(AuditCheckpoint, 1)
    if row is None:
        return verify(session, now=now), None
    start = ChainHead(row.seq, row.hash)
    at = session.get(AuditEvent, start.seq)
    if at is None or at.hash != start.hash or event_hash(at) != start.hash:
        why = "missing" if at is None else "its hash changed" if at.hash != start.hash else "its content changed"
        return VerifyResult(False, start.seq, None, start.seq,
                            f"event {start.seq} no longer matches the chain as last verified ({why}); "
                            "run `erasure audit verify`"), start
    after = (e for batch in _batches_after(session, start.seq) for e in batch)
    result = verify_events(after, start=start)
    if result.ok and result.head is not None and result.head.seq > start.seq:
        _save_checkpoint(session, result.head, now)
    return result, start


def _batches_after(session: Session, seq: int, batch: int = 1000) -> Iterator[list[AuditEvent]]:
    after = seq
    while True:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq)
                                    .limit(batch)).all())
        if not rows:
            return
        yield rows
        after = rows[-1].seq
        session.expunge_all()


def _save_checkpoint(session: Session, at: ChainHead, now: dt.datetime | None) -> None:
    row = session.get(AuditCheckpoint, 1)
    when = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    if row is None:
        session.add(AuditCheckpoint(id=1, seq=at.seq, hash=at.hash, verified_at=when))
    elif at.seq >= row.seq:
        row.seq, row.hash, row.verified_at = at.seq, at.hash, when
    session.flush()


def event_dict(row: AuditEvent, fields: dict[str, personal.Revealed] | None = None) -> dict[str, Any]:
    """An event as exported: the chain's fields exactly as hashed, and its personal values beside them.

    ``personal`` maps each personal field (``reason``, ``data.<key>``) to
    ``{"value", "salt"}`` while it exists, so anyone can check it against the
    digest in the chain, or to ``{"pruned": true, "pruned_by", "pruned_at"}``.
    """
    return {
        "seq": row.seq,
        "at": format_time(row.at),
        "actor": row.actor,
        "event": row.event,
        "request_ref": row.request_ref,
        "tenant": row.tenant,
        "reason": row.reason,
        "data": row.data,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
        "personal": {f: r.to_json() for f, r in sorted((fields or {}).items())},
    }


def shown(session: Session, row: AuditEvent) -> tuple[str | None, dict[str, Any]]:
    """One event's reason and data as people read them: values while kept, "pruned" after."""
    fields = personal.revealed(session, [row.seq]).get(row.seq, {})
    return personal.shown(row.reason, json.loads(row.data), fields)


def export_lines(rows: Iterable[dict[str, Any]], fmt: Literal["csv", "jsonl"]) -> Iterator[str]:
    """Export text, line by line, with the chain fields so an auditor can re-verify it.

    ``rows`` come from :func:`iter_export`. In CSV the ``personal`` column is its
    JSON object as text.
    """
    if fmt == "jsonl":
        for row in rows:
            yield json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "personal": json.dumps(row["personal"], ensure_ascii=False, sort_keys=True)})
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    if buf.getvalue():
        yield buf.getvalue()


def parse_export_time(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Finding:
    """One request that named the viewer id asked about."""

    reference: str | None
    status: str
    received_at: dt.datetime
    closed_at: dt.datetime | None
    rows_erased: int | None
    refusal_code: str | None = None  # an officer refused this id in the request: its views were kept


def find_viewer(session: Session, keys: dict[int, bytes], tenant: str, viewer_id: str) -> list[Finding]:
    """Answer "was this viewer erased, when, by which request" without storing the id.

    ``keys`` maps key versions to keys, so subjects hashed before a key rotation
    are still found while the retired key is available.
    """
    matches = [
        (Subject.key_version == version) & (Subject.viewer_hmac == viewer_hmac(key, tenant, viewer_id))
        for version, key in keys.items()
    ]
    rows = session.execute(
        select(ErasureRequest, Subject.refusal_code)
        .join(Subject, Subject.request_id == ErasureRequest.id)
        .where(or_(*matches), ErasureRequest.tenant == tenant)
        .order_by(ErasureRequest.received_at, ErasureRequest.id)
    )
    found: dict[int, Finding] = {}
    for r, code in rows:
        found.setdefault(r.id, Finding(r.reference, r.status, r.received_at, r.closed_at, r.rows_erased, code))
    return list(found.values())
