"""Personal data of the audit trail, kept beside the chain so that it can be pruned.

The chain must never change (every later hash depends on every earlier event),
yet letters promise that request records are kept only
``policy.record_retention_months``. So an event holds none of its personal
values: for each one it holds ``sha256:<hex>`` of a random salt followed by the
value, and the value and its salt sit in ``audit_personal``, one row per event
and field. ``retention.prune_records`` prunes those rows with their request
record: value and salt go, a tombstone naming the ``records_pruned`` event stays.
Once the salt is gone the digest cannot be matched against a list of addresses,
and the chain still verifies, because it never covered the values themselves.

What is personal (decided here, for every caller of ``audit.record``):
- ``reason``, always: free text written by an officer or built from a message
  (an address, a name, an SMTP error quoting the recipient);
- the values of :data:`PERSONAL_DATA_KEYS` in an event's ``data`` (top level):
  the requester's address (``from``, ``requester``), letters' recipients, an
  officer's reason inside the data.
The officer's login (``actor``) stays in the chain: it is who decided, the
accountability the trail exists for (GDPR Art. 5(2)); it belongs to the
operator's staff, not to a requester, and is kept as long as the trail.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session, aliased

from erasure.models import TEXT_CHARS, AuditEvent, PersonalValue
from erasure.parse.headers import storable

DIGEST_PREFIX = "sha256:"
REASON = "reason"
DATA_PREFIX = "data."

#: Keys of an event's ``data`` whose values are personal. Generous on purpose:
#: a new call that records ``data={"recipient": ...}`` is covered without change.
PERSONAL_DATA_KEYS = frozenset({
    "from", "requester", "sender", "reply_to", "to", "recipient", "recipients", "letters_to", "address",
    "contact", "reason", "reasons", "note", "comment", "subject", "name",
})


def new_salt() -> str:
    """128 random bits as 32 hex characters: one salt per value, so equal values never share a digest."""
    return secrets.token_hex(16)


def salted_digest(salt: str, value: str) -> str:
    """What the chain holds for a personal value: ``sha256:`` + SHA-256 over the UTF-8 of salt + value."""
    return DIGEST_PREFIX + hashlib.sha256((salt + value).encode("utf-8")).hexdigest()


def as_text(value: Any) -> str:
    """The value as stored: text as it is, anything else as compact JSON; cut like the column cuts."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return storable(text, TEXT_CHARS, multiline=True) or ""


@dataclass(frozen=True)
class Split:
    """An event's reason and data as the chain holds them, and the values that go beside it."""

    reason: str | None
    data: dict[str, Any]
    values: tuple[tuple[str, str, str], ...]  # (field, value, salt)


def split(reason: str | None, data: dict[str, Any] | None, *, salt: Callable[[], str] = new_salt) -> Split:
    """Replace every personal value by its salted digest. Pure apart from the salts."""
    values: list[tuple[str, str, str]] = []

    def digest(field: str, raw: Any) -> str:
        text, s = as_text(raw), salt()
        values.append((field, text, s))
        return salted_digest(s, text)

    chain_reason = None if reason is None else digest(REASON, reason)
    chain_data = {
        k: (digest(DATA_PREFIX + k, v) if k in PERSONAL_DATA_KEYS and v is not None else v)
        for k, v in (data or {}).items()
    }
    return Split(chain_reason, chain_data, tuple(values))


def keep(session: Session, seq: int, request_ref: str | None, values: Iterable[tuple[str, str, str]]) -> None:
    """Store an event's personal values beside it (the caller's transaction)."""
    session.add_all(PersonalValue(seq=seq, field=f, request_ref=request_ref, value=v, salt=s) for f, v, s in values)


@dataclass(frozen=True)
class Revealed:
    """One personal field of an event: its value while it exists, else when and by which event it was pruned."""

    field: str
    value: str | None
    salt: str | None
    pruned_by: int | None = None
    pruned_at: dt.datetime | None = None

    @property
    def text(self) -> str:
        """The value, or what the officer reads in its place once it is gone."""
        if self.value is not None:
            return self.value
        when = f" on {self.pruned_at:%Y-%m-%d}" if self.pruned_at else ""
        return f"(pruned{when} by audit event {self.pruned_by})"

    def to_json(self) -> dict[str, Any]:
        if self.value is not None:
            return {"value": self.value, "salt": self.salt}
        return {"pruned": True, "pruned_by": self.pruned_by,
                "pruned_at": self.pruned_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                if self.pruned_at else None}


def revealed(session: Session, seqs: Sequence[int]) -> dict[int, dict[str, Revealed]]:
    """The personal fields of these events, by seq and field: one query, whatever the number of events."""
    if not seqs:
        return {}
    pruner = aliased(AuditEvent)
    rows = session.execute(
        select(PersonalValue, pruner.at)
        .outerjoin(pruner, pruner.seq == PersonalValue.pruned_seq)
        .where(PersonalValue.seq.in_(list(seqs)))
    ).all()
    found: dict[int, dict[str, Revealed]] = {}
    for p, pruned_at in rows:
        found.setdefault(p.seq, {})[p.field] = Revealed(p.field, p.value, p.salt, p.pruned_seq, pruned_at)
    return found


def shown(reason: str | None, data: dict[str, Any], fields: dict[str, Revealed]) -> tuple[str | None, dict[str, Any]]:
    """An event's reason and data for people: each digest replaced by its value, or by "pruned"."""
    if REASON in fields:
        reason = fields[REASON].text
    data = dict(data)
    for field, r in fields.items():
        if field.startswith(DATA_PREFIX) and field[len(DATA_PREFIX):] in data:
            data[field[len(DATA_PREFIX):]] = r.text
    return reason, data


def due(session: Session, *, refs: Sequence[str], before_seq: int) -> list[int]:
    """Ids of the values to prune now: those of these requests, and those of request-less events before ``before_seq``."""
    ids: list[int] = []
    alive = PersonalValue.pruned_seq.is_(None)
    for chunk in (list(refs[i:i + 500]) for i in range(0, len(refs), 500)):
        ids += session.scalars(select(PersonalValue.id).where(alive, PersonalValue.request_ref.in_(chunk))).all()
    ids += session.scalars(select(PersonalValue.id).where(
        alive, and_(PersonalValue.request_ref.is_(None), PersonalValue.seq < before_seq))).all()
    return ids


def forget(session: Session, ids: Sequence[int], *, by_seq: int) -> None:
    """Prune these values: value and salt go, a tombstone naming the pruning event stays."""
    for chunk in (list(ids[i:i + 500]) for i in range(0, len(ids), 500)):
        session.execute(update(PersonalValue).where(PersonalValue.id.in_(chunk))
                        .values(value=None, salt=None, pruned_seq=by_seq))


def first_seq_at_or_after(session: Session, cutoff: dt.datetime) -> int:
    """The seq of the first event at or after ``cutoff`` (one past the last event before it)."""
    last_before = session.scalar(select(func.max(AuditEvent.seq)).where(AuditEvent.at < cutoff))
    return (last_before or 0) + 1


def pruned_by(session: Session, request_ref: str) -> tuple[int, dt.datetime, str] | None:
    """The event (seq, time, name) that pruned this request's values, if any did.

    ``records_pruned``, or ``chain_rewritten`` for a request pruned before
    migration 0010, whose values the migration pruned at once.
    """
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.at, AuditEvent.event)
        .join(PersonalValue, PersonalValue.pruned_seq == AuditEvent.seq)
        .where(PersonalValue.request_ref == request_ref).limit(1)
    ).first()
    return (row.seq, row.at, row.event) if row else None
