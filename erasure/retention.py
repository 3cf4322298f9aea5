"""Retention: views are kept at most ``policy.retention_days`` (100 by default),
and closed request records at most ``policy.record_retention_months``.

The privacy FAQ promises that view data is deleted after 100 days. This
module turns "N days" into a cutoff and asks the view store to delete, chunk
by chunk, every row older than it; ``cli.py``'s ``erasure retention purge``
prints the progress and the :class:`PurgeResult`, and the workflow records it
in the audit trail. The purge is independent of tenants: age alone decides.

The register itself (requests, their subjects and replies) is pruned by
:func:`prune_records` once a request has been closed for the retention
period (11 CCR 7101); its audit events stay, without their personal values
(see erasure/personal.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import delete, select, update

from erasure import audit, personal
from erasure.config import PolicySettings
from erasure.deadlines import add_months, received_date
from erasure.errors import ConfigError
from erasure.models import (
    ErasureRequest,
    MailboxMessage,
    OutboxMessage,
    RequestStatus,
    Subject,
)
from erasure.state import State
from erasure.store import ViewStore


@dataclass(frozen=True)
class PurgeResult:
    """What one purge deleted (or, on a dry run, would delete) per table, and the cutoff it used."""

    cutoff: datetime
    counts: dict[str, int]
    dry_run: bool

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def retention_cutoff(now: datetime, days: int) -> datetime:
    """The instant before which rows are older than ``days`` days, in UTC.

    Whole days of 24 hours back from ``now``: a view that started 100 days and
    one second ago goes, one that started exactly 100 days ago stays until the
    next run. A naive ``now`` is taken as UTC, like every time in the store.
    """
    if days < 1:
        raise ConfigError(f"retention days must be at least 1, not {days}; set policy.retention_days or pass --days N")
    aware = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    return aware - timedelta(days=days)


def purge(
    store: ViewStore,
    *,
    days: int,
    now: datetime | None = None,
    chunk_size: int = 10_000,
    dry_run: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> PurgeResult:
    """Delete everything older than ``days`` days (``--dry-run``: count only)."""
    cutoff = retention_cutoff(now or datetime.now(UTC), days)
    counts = store.purge_older_than(cutoff, chunk_size=chunk_size, dry_run=dry_run, progress=progress)
    return PurgeResult(cutoff=cutoff, counts=counts, dry_run=dry_run)


def prune_records(state: State, policy: PolicySettings, *, now: datetime, dry_run: bool = False) -> list[str]:
    """Delete request records closed more than ``policy.record_retention_months`` ago (11 CCR 7101).

    With a record go its personal values in the audit trail (``audit_personal``:
    the requester's address, reasons), and so do those of events that belong to
    no request once they are as old as the cutoff. The chain itself does not
    change: it holds only salted digests of those values, so it still verifies.
    One ``records_pruned`` event lists the references and how many values went;
    each pruned value keeps a tombstone naming that event. Returns the
    references pruned (or, on a dry run, that would be).
    """
    cutoff_day = add_months(received_date(now, policy), -policy.record_retention_months)
    cutoff = datetime.combine(cutoff_day, time(), tzinfo=UTC)
    with state.session() as session:
        rows = session.execute(
            select(ErasureRequest.id, ErasureRequest.reference)
            .where(ErasureRequest.status.in_(list(RequestStatus.CLOSED)), ErasureRequest.closed_at < cutoff)
            .order_by(ErasureRequest.id)
        ).all()
        ids = [r.id for r in rows]
        refs = [r.reference or str(r.id) for r in rows]
        if dry_run:
            return refs
        values = personal.due(session, refs=[r.reference for r in rows if r.reference],
                              before_seq=personal.first_seq_at_or_after(session, cutoff))
        if not ids and not values:
            return refs
        for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
            session.execute(delete(OutboxMessage).where(OutboxMessage.request_id.in_(chunk)))
            session.execute(delete(Subject).where(Subject.request_id.in_(chunk)))
            session.execute(update(MailboxMessage).where(MailboxMessage.request_id.in_(chunk)).values(request_id=None))
            session.execute(delete(ErasureRequest).where(ErasureRequest.id.in_(chunk)))
        event = audit.record(session, "records_pruned", now=now,
                             reason=f"closed before {cutoff_day}, past policy.record_retention_months",
                             data={"count": len(refs), "references": refs, "personal_values": len(values)})
        personal.forget(session, values, by_seq=event.seq)
    return refs
