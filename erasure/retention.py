"""The retention purge: views are kept at most ``policy.retention_days`` (100 by default).

The privacy FAQ promises that view data is deleted after 100 days. This
module turns "N days" into a cutoff and asks the view store to delete, chunk
by chunk, every row older than it; ``cli.py``'s ``erasure retention purge``
prints the progress and the :class:`PurgeResult`, and the workflow records it
in the audit trail. The purge is independent of tenants: age alone decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from erasure.errors import ConfigError
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
