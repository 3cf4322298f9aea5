"""audit_personal: personal values out of the hash chain, beside it, pruned with the requests

Revision ID: 0010
Revises: 0009

Until now audit events held requesters' addresses (`received`: data.from,
data.requester), addresses and names inside reasons, and officers' free-text
reasons, and pruning a request record left all of them in the chain for ever.
From now on an event holds `sha256:<hex>` of a random salt and the value;
value and salt sit in `audit_personal` and are pruned with the request record
(see erasure/personal.py).

Old events' hashes covered the plain values, so moving them changes every hash
from the first such event on. This migration therefore:
1. verifies the old chain first and refuses to go on if it is broken (a rewrite
   must never launder a tampered trail);
2. rewrites every event in seq order: personal values replaced by salted
   digests (values and salts into `audit_personal`), prev_hash and hash
   recomputed; seq, at, actor, event, request_ref and tenant stay as they were;
3. prunes at once (a tombstone, no value, no salt) the values of requests whose
   record was already pruned: those should have gone already;
4. appends one `chain_rewritten` event whose data names the old head
   (`old_head`: seq and hash), so a head kept elsewhere before the upgrade can
   still be related to the new chain.

Self-contained on purpose (the key list, digest and canonical encoding are frozen
copies of erasure.personal and erasure.audit as of this revision): a migration
must mean the same thing however the code changes later.

Downgrade puts back the values still kept (pruned ones stay digests), rewrites
the chain the same way, records another `chain_rewritten` event and drops the table.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

GENESIS = "0" * 64
TEXT_CHARS = 16_000
REASON = "reason"
DATA_PREFIX = "data."
PERSONAL_DATA_KEYS = frozenset({
    "from", "requester", "sender", "reply_to", "to", "recipient", "recipients", "letters_to", "address",
    "contact", "reason", "reasons", "note", "comment", "subject", "name",
})
BATCH = 1000

events = sa.table(
    "audit_events",
    sa.column("seq", sa.Integer), sa.column("at", sa.DateTime), sa.column("actor", sa.String),
    sa.column("event", sa.String), sa.column("request_ref", sa.String), sa.column("tenant", sa.String),
    sa.column("reason", sa.Text), sa.column("data", sa.Text), sa.column("prev_hash", sa.String),
    sa.column("hash", sa.String),
)
values_table = sa.table(
    "audit_personal",
    sa.column("id", sa.Integer), sa.column("seq", sa.Integer), sa.column("field", sa.String),
    sa.column("request_ref", sa.String), sa.column("value", sa.Text), sa.column("salt", sa.String),
    sa.column("pruned_seq", sa.Integer),
)
requests = sa.table("requests", sa.column("reference", sa.String))


class ChainBrokenError(RuntimeError):
    """The chain did not verify before the rewrite; rewriting it would hide the damage."""


def _hash(row: dict[str, Any]) -> str:
    doc = {
        "seq": row["seq"], "at": row["at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "actor": row["actor"],
        "event": row["event"], "request_ref": row["request_ref"], "tenant": row["tenant"],
        "reason": row["reason"], "data": row["data"], "prev_hash": row["prev_hash"],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")).hexdigest()


def _encode(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


# parse.headers.storable(multiline=True) as of this revision: a value taken out of an
# old event's JSON may hold a control character its escape hid, which PostgreSQL refuses.
_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _as_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return _CONTROLS.sub("", _SURROGATES.sub("\ufffd", text))[:TEXT_CHARS]


def _digest(salt: str, value: str) -> str:
    return "sha256:" + hashlib.sha256((salt + value).encode("utf-8")).hexdigest()


# A transform takes an event (as stored) and the personal rows already kept for it,
# and returns its new reason, its new data text, and the rows to insert.
Moved = list[tuple[str, str, str]]  # (field, value, salt)
Transform = Callable[[dict[str, Any], dict[str, str]], tuple[str | None, str, Moved]]


def _to_digests(row: dict[str, Any], _kept: dict[str, str]) -> tuple[str | None, str, Moved]:
    """Upgrade: each personal value out, its salted digest in."""
    moved: Moved = []

    def out(field: str, value: Any) -> str:
        text, salt = _as_text(value), secrets.token_hex(16)
        moved.append((field, text, salt))
        return _digest(salt, text)

    reason = row["reason"]
    if reason is not None:
        reason = out(REASON, reason)
    data_text = row["data"]
    try:
        data = json.loads(data_text)
    except ValueError:
        data = None
    if isinstance(data, dict) and any(k in PERSONAL_DATA_KEYS and v is not None for k, v in data.items()):
        data = {k: (out(DATA_PREFIX + k, v) if k in PERSONAL_DATA_KEYS and v is not None else v) for k, v in data.items()}
        data_text = _encode(data)
    return reason, data_text, moved


def _to_values(row: dict[str, Any], kept: dict[str, str]) -> tuple[str | None, str, Moved]:
    """Downgrade: each digest whose value is still kept replaced by that value."""
    reason = kept.get(REASON, row["reason"])
    data_text = row["data"]
    personal_keys = {f[len(DATA_PREFIX):]: v for f, v in kept.items() if f.startswith(DATA_PREFIX)}
    if personal_keys:
        data = json.loads(data_text)
        data_text = _encode({k: personal_keys.get(k, v) for k, v in data.items()})
    return reason, data_text, []


def _batches(conn: sa.Connection) -> Iterator[list[dict[str, Any]]]:
    """The events in seq order, as dicts, a batch at a time."""
    after = 0
    while True:
        rows = [dict(r._mapping) for r in conn.execute(
            sa.select(events).where(events.c.seq > after).order_by(events.c.seq).limit(BATCH))]
        if not rows:
            return
        yield rows
        after = rows[-1]["seq"]


def _verify(conn: sa.Connection, what: str) -> None:
    """Refuse to touch a chain that does not verify (before any table is created: MariaDB's DDL is not transactional)."""
    prev, expected = GENESIS, 1
    for rows in _batches(conn):
        for row in rows:
            if row["seq"] != expected or row["prev_hash"] != prev or _hash(row) != row["hash"]:
                raise ChainBrokenError(
                    f"migration {revision}: the audit chain does not verify at event {expected} ({what} refused: "
                    "rewriting it would hide the damage). Run `erasure audit verify` with the version you "
                    "upgraded from, investigate, and restore the state database from a backup before upgrading."
                )
            prev, expected = row["hash"], expected + 1


def _rewrite(conn: sa.Connection, transform: Transform, *, what: str, pruned_refs: bool) -> None:
    """Rewrite the (verified) chain through ``transform`` and append `chain_rewritten` naming the old head."""
    last_seq = conn.execute(sa.select(sa.func.max(events.c.seq))).scalar()
    if last_seq is None:
        return
    closing_seq = last_seq + 1
    known_refs = set(conn.execute(sa.select(requests.c.reference)).scalars()) if pruned_refs else set()
    update = (events.update().where(events.c.seq == sa.bindparam("b_seq"))
              .values(reason=sa.bindparam("b_reason"), data=sa.bindparam("b_data"),
                      prev_hash=sa.bindparam("b_prev"), hash=sa.bindparam("b_hash")))
    old_prev = new_prev = GENESIS
    rewritten = moved_count = pruned_count = 0
    for rows in _batches(conn):
        kept: dict[int, dict[str, str]] = {}
        if not pruned_refs:  # downgrade: the values still kept for this batch
            for p in conn.execute(sa.select(values_table.c.seq, values_table.c.field, values_table.c.value).where(
                    values_table.c.seq.between(rows[0]["seq"], rows[-1]["seq"]), values_table.c.value.is_not(None))):
                kept.setdefault(p.seq, {})[p.field] = p.value
        updates, inserts = [], []
        for row in rows:
            seq = row["seq"]
            old_prev = row["hash"]  # verified by _verify just before
            reason, data_text, moved = transform(row, kept.get(seq, {}))
            new = {**row, "reason": reason, "data": data_text, "prev_hash": new_prev}
            new["hash"] = _hash(new)
            if new["hash"] != row["hash"]:
                updates.append({"b_seq": seq, "b_reason": reason, "b_data": data_text,
                                "b_prev": new_prev, "b_hash": new["hash"]})
                rewritten += 1
            new_prev = new["hash"]
            gone = row["request_ref"] is not None and row["request_ref"] not in known_refs
            for field, text, salt in moved:
                # A request already pruned: its values should have gone then; a tombstone only.
                inserts.append({"seq": seq, "field": field, "request_ref": row["request_ref"],
                                "value": None if gone else text, "salt": None if gone else salt,
                                "pruned_seq": closing_seq if gone else None})
                moved_count += 1
                pruned_count += gone
        if updates:
            conn.execute(update, updates)
        if inserts:
            conn.execute(values_table.insert(), inserts)
    closing = {
        "seq": closing_seq, "at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), "actor": "system",
        "event": "chain_rewritten", "request_ref": None, "tenant": None, "reason": None,
        "data": _encode({"migration": revision, "what": what, "old_head": {"seq": last_seq, "hash": old_prev},
                         "events_rewritten": rewritten, "personal_values": moved_count,
                         "pruned_at_once": pruned_count}),
        "prev_hash": new_prev,
    }
    closing["hash"] = _hash(closing)
    conn.execute(events.insert(), [closing])


def upgrade() -> None:
    _verify(op.get_bind(), "moving personal values out")
    op.create_table(
        'audit_personal',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('field', sa.String(length=64), nullable=False),
        sa.Column('request_ref', sa.String(length=32), nullable=True),
        sa.Column('value', sa.Text(), nullable=True),
        sa.Column('salt', sa.String(length=64), nullable=True),
        sa.Column('pruned_seq', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('seq', 'field', name='uq_audit_personal_seq_field'),
        # Like every state table since 0002: utf8mb4, binary collation, whatever the database default.
        mysql_charset='utf8mb4', mysql_collate='utf8mb4_bin',
    )
    with op.batch_alter_table('audit_personal', schema=None) as batch_op:
        batch_op.create_index('ix_audit_personal_request_ref', ['request_ref'], unique=False)
    _rewrite(op.get_bind(), _to_digests, what="personal values moved to audit_personal", pruned_refs=True)


def downgrade() -> None:
    _verify(op.get_bind(), "putting personal values back")
    _rewrite(op.get_bind(), _to_values, what="personal values put back into the chain", pruned_refs=False)
    with op.batch_alter_table('audit_personal', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_personal_request_ref')
    op.drop_table('audit_personal')
