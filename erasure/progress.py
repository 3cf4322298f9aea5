"""Per-store progress of an erasure: which stores are done, what each erased.

Pure bookkeeping over ``StoreProgress`` rows inside the caller's transaction;
the workflow decides when to call it. The one rule that makes a crash between
two stores harmless lives here: a store whose retry finds nothing left, after
rows were counted on the way into ``erasing``, was erased by the run that
crashed, so it is recorded with that count rather than as "nothing found".
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.models import ErasureRequest, RequestStatus, StoreProgress
from erasure.store import ErasureResult
from erasure.store.stores import Counted

PENDING = "pending"
VERIFIED = "verified"

#: The key a resumed store's counts are recorded under: what was counted, not what the retry found.
COUNTED_BEFORE = "counted before erasing"


@dataclass(frozen=True)
class StoreOutcome:
    """One store's part of a request, as letters, `requests show` and `--json` give it."""

    store: str
    description: str
    state: str
    counts: dict[str, int]
    total: int
    attempts: int
    last_error: str | None

    def to_json(self) -> dict[str, object]:
        return {"store": self.store, "description": self.description, "state": self.state,
                "counts": self.counts, "total": self.total, "attempts": self.attempts,
                "last_error": self.last_error}


def rows_by_store(request: ErasureRequest) -> dict[str, StoreProgress]:
    return {row.store: row for row in request.stores}


def start(request: ErasureRequest, counted: Counted | None, stores: Sequence[str]) -> None:
    """Every configured store becomes pending, with what it counts now (entering or re-entering ``erasing``).

    A store verified in an earlier attempt is erased again too: views may have
    arrived since, and the evidence adds up (``counts`` accumulate).
    """
    rows = rows_by_store(request)
    for name in stores:
        row = rows.get(name)
        if row is None:
            row = StoreProgress(store=name, attempts=0, resumed=False, rows_erased=0, counts="{}")
            request.stores.append(row)
        row.state = PENDING
        row.match_count = counted.by_store[name].total if counted is not None else None


def ensure_rows(request: ErasureRequest, stores: Sequence[str]) -> None:
    """Rows for stores added to the config while a request was ``erasing`` (or requests from before rows existed).

    With one store, the request's own count is that store's count, so a
    request that was mid-erasure when the tool was upgraded still resumes right.
    """
    rows = rows_by_store(request)
    for name in stores:
        if name not in rows:
            match = request.match_count if len(stores) == 1 else None
            request.stores.append(StoreProgress(store=name, state=PENDING, match_count=match, attempts=0,
                                                resumed=False, rows_erased=0, counts="{}"))


def pending_requests(session: Session, store: str, request_ids: Iterable[int]) -> list[int]:
    """Of ``request_ids``, those still ``erasing`` whose part in ``store`` is not yet verified."""
    ids = list(request_ids)
    if not ids:
        return []
    done = set(session.scalars(
        select(StoreProgress.request_id).where(StoreProgress.store == store, StoreProgress.state == VERIFIED,
                                               StoreProgress.request_id.in_(ids))
    ))
    erasing = set(session.scalars(
        select(ErasureRequest.id).where(ErasureRequest.id.in_(ids), ErasureRequest.status == RequestStatus.ERASING)
    ))
    return [i for i in ids if i in erasing and i not in done]


def counts_of(row: StoreProgress) -> dict[str, int]:
    return {k: int(v) for k, v in json.loads(row.counts or "{}").items()}


def record_erased(row: StoreProgress, result: ErasureResult, now: dt.datetime) -> tuple[dict[str, int], int, bool]:
    """Mark the store verified; returns (counts, rows, resumed) for this attempt, as the audit event records it."""
    resumed = result.total == 0 and bool(row.match_count)
    counts = {COUNTED_BEFORE: int(row.match_count or 0)} if resumed else dict(result.counts)
    total = add_evidence(row, counts)
    row.resumed = row.resumed or resumed
    row.state = VERIFIED
    row.attempts += 1
    row.last_attempt_at = now
    row.verified_at = now
    row.failing_since = None
    row.last_error = None
    return counts, total, resumed


def add_evidence(row: StoreProgress, counts: dict[str, int]) -> int:
    """Add one erasure's rows per table to the store's evidence; returns the rows it adds."""
    merged = counts_of(row)
    for table, n in counts.items():
        merged[table] = merged.get(table, 0) + n
    row.counts = json.dumps(merged)  # configuration order, as letters and `requests show` list tables
    total = sum(counts.values())
    row.rows_erased = (row.rows_erased or 0) + total
    return total


def add_late_evidence(row: StoreProgress, counts: dict[str, int]) -> None:
    """Rows deleted by a concurrent run that committed its state after this store was verified.

    When the verification was a resumed one (it found nothing left and fell
    back on the count taken before erasing), that count stood for exactly
    these rows: the real per-table figures replace it instead of adding to it.
    """
    if row.resumed and COUNTED_BEFORE in counts_of(row):
        before = counts_of(row)
        stood_for = before.pop(COUNTED_BEFORE)
        total = sum(counts.values())
        row.counts = json.dumps(before, sort_keys=True)
        row.rows_erased = (row.rows_erased or 0) - stood_for
        add_evidence(row, counts if total >= stood_for else {**counts, COUNTED_BEFORE: stood_for - total})
        return
    add_evidence(row, counts)


def record_failure(row: StoreProgress, error: str, now: dt.datetime) -> None:
    """A store that could not be reached stays pending; how long it has failed is what `status` flags."""
    row.attempts += 1
    row.last_attempt_at = now
    row.last_error = error
    if row.failing_since is None:
        row.failing_since = now


def all_verified(request: ErasureRequest, stores: Sequence[str]) -> bool:
    rows = rows_by_store(request)
    return all(name in rows and rows[name].state == VERIFIED for name in stores)


def outcomes(request: ErasureRequest, stores: Sequence[str], descriptions: dict[str, str]) -> list[StoreOutcome]:
    """The request's part in each configured store (and in any store no longer configured that holds evidence)."""
    rows = rows_by_store(request)
    names = list(stores) + [n for n in rows if n not in stores]
    return [
        StoreOutcome(store=name, description=descriptions.get(name, ""),
                     state=rows[name].state if name in rows else PENDING,
                     counts=counts_of(rows[name]) if name in rows else {},
                     total=int(rows[name].rows_erased or 0) if name in rows else 0,
                     attempts=rows[name].attempts if name in rows else 0,
                     last_error=rows[name].last_error if name in rows else None)
        for name in names
    ]
