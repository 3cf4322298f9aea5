"""What an operator's monitoring reads: the desk's facts as numbers.

``facts`` reads them from the state database in one session (cheap queries
only: the audit chain's head, never a walk over it); ``prometheus_text`` and
``write_textfile`` give them in the Prometheus text format, through
prometheus-client, for a scrape or for node_exporter's textfile collector;
``Facts.to_json`` is what `status --json` carries, so an alert and the morning
screen never disagree.

All gauges: they describe the register as it is now. Figures derived from
request records (rows erased per store and table) shrink when old records are
pruned after ``policy.record_retention_months``; use them for "how much", not
for ``rate()``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest, write_to_textfile
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.config import Config
from erasure.deadlines import days_left, effective_due, is_overdue
from erasure.models import AuditEvent, ErasureRequest, MailboxCursor, OutboxMessage, RequestStatus, StoreProgress
from erasure.status import DUE_SOON_DAYS  # "due soon" means what it means on the status screen

S = RequestStatus



@dataclass(frozen=True)
class PollFacts:
    source: str
    last_success_at: dt.datetime | None
    last_poll_seconds: float | None
    last_poll_fetched: int | None

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source,
                "last_success_at": self.last_success_at.isoformat() if self.last_success_at else None,
                "last_poll_seconds": self.last_poll_seconds, "last_poll_fetched": self.last_poll_fetched}


@dataclass(frozen=True)
class StoreFailure:
    store: str
    requests: int
    since: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "requests": self.requests, "since": self.since.isoformat()}


@dataclass(frozen=True)
class Facts:
    """The numbers monitoring alerts on, read at ``now`` (``today`` is the office-local date)."""

    now: dt.datetime
    requests: dict[tuple[str, str], int]  # (state, tenant or "") -> count
    overdue: int
    due_soon: int
    oldest_open_age_seconds: float | None
    polls: tuple[PollFacts, ...]
    rows_erased: dict[tuple[str, str], int]  # (store, table) -> rows, on the register
    replies: dict[str, int]  # outbox state -> count
    oldest_parked_reply_age_seconds: float | None
    audit_head_seq: int
    store_failures: tuple[StoreFailure, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": [{"state": s, "tenant": t or None, "count": n} for (s, t), n in sorted(self.requests.items())],
            "overdue": self.overdue,
            "due_soon": self.due_soon,
            "oldest_open_age_seconds": self.oldest_open_age_seconds,
            "polls": [p.to_json() for p in self.polls],
            "rows_erased": [{"store": s, "table": t, "rows": n} for (s, t), n in sorted(self.rows_erased.items())],
            "replies": dict(sorted(self.replies.items())),
            "oldest_parked_reply_age_seconds": self.oldest_parked_reply_age_seconds,
            "audit_head_seq": self.audit_head_seq,
            "store_failures": [f.to_json() for f in self.store_failures],
        }


def facts(session: Session, config: Config, *, now: dt.datetime, today: dt.date) -> Facts:
    """Read every fact in one session; nothing here walks the audit chain or the views."""
    requests: Counter[tuple[str, str]] = Counter()
    for state, tenant, n in session.execute(
        select(ErasureRequest.status, ErasureRequest.tenant, func.count())
        .group_by(ErasureRequest.status, ErasureRequest.tenant)
    ):
        requests[(state, tenant or "")] += n
    overdue = due_soon = 0
    oldest: dt.datetime | None = None
    for due_on, extended_to, received_at in session.execute(
        select(ErasureRequest.due_on, ErasureRequest.extended_to, ErasureRequest.received_at)
        .where(ErasureRequest.status.in_(list(S.OPEN)))
    ):
        due = effective_due(due_on, extended_to)
        if is_overdue(due, today):
            overdue += 1
        elif days_left(due, today) < DUE_SOON_DAYS:
            due_soon += 1
        oldest = received_at if oldest is None or received_at < oldest else oldest
    polls = tuple(PollFacts(c.source, c.last_success_at, c.last_poll_seconds, c.last_poll_fetched)
                  for c in session.scalars(select(MailboxCursor).order_by(MailboxCursor.source)))
    rows_erased: Counter[tuple[str, str]] = Counter()
    for store, counts in session.execute(select(StoreProgress.store, StoreProgress.counts)
                                         .where(StoreProgress.counts.is_not(None))):
        for table, n in json.loads(counts or "{}").items():
            rows_erased[(store, table)] += int(n)
    replies = dict(session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all())
    parked_since = session.scalar(select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status == "parked"))
    head = session.scalar(select(func.max(AuditEvent.seq))) or 0
    failures = tuple(
        StoreFailure(store, n, _aware(since)) for store, n, since in session.execute(  # type: ignore[arg-type]
            select(StoreProgress.store, func.count(), func.min(StoreProgress.failing_since))
            .join(ErasureRequest, ErasureRequest.id == StoreProgress.request_id)
            .where(ErasureRequest.status == S.ERASING, StoreProgress.state == "pending",
                   StoreProgress.failing_since.is_not(None))
            .group_by(StoreProgress.store).order_by(StoreProgress.store)
        )
    )
    return Facts(
        now=now, requests=dict(requests), overdue=overdue, due_soon=due_soon,
        oldest_open_age_seconds=_age(now, oldest), polls=polls, rows_erased=dict(rows_erased),
        replies={str(k): int(v) for k, v in replies.items()},
        oldest_parked_reply_age_seconds=_age(now, _aware(parked_since)), audit_head_seq=int(head),
        store_failures=failures,
    )


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    """Aggregates (MIN) come back without the column type's conversion: naive UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


def _age(now: dt.datetime, since: dt.datetime | None) -> float | None:
    return None if since is None else max(0.0, round((now - since).total_seconds(), 3))


def registry(f: Facts, config: Config) -> CollectorRegistry:
    """The facts as Prometheus gauges in a registry of their own (nothing global, nothing left over)."""
    reg = CollectorRegistry(auto_describe=True)

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(f"erasure_{name}", doc, labelnames=labels, registry=reg)

    g = gauge("requests", "Requests on the register by state and tenant (tenant empty when none).", ("state", "tenant"))
    tenants = {t.name for t in config.tenants} | {t for _, t in f.requests}
    for state in S.ALL:  # every state appears, so an alert on "> 0" has a series to read
        for tenant in sorted(tenants):
            g.labels(state=state, tenant=tenant).set(f.requests.get((state, tenant), 0))
    gauge("requests_overdue", "Open requests past their due date (office-local).").set(f.overdue)
    gauge("requests_due_soon", f"Open requests due within {DUE_SOON_DAYS} days, not yet overdue.").set(f.due_soon)
    gauge("oldest_open_request_age_seconds", "Age of the oldest open request; 0 when none is open.").set(
        f.oldest_open_age_seconds or 0)
    last = gauge("last_successful_poll_timestamp_seconds", "When a poll of this mailbox last finished (Unix time).",
                 ("source",))
    duration = gauge("last_poll_duration_seconds", "How long the last finished poll of this mailbox took.", ("source",))
    fetched = gauge("last_poll_messages_fetched", "New messages the last finished poll fetched.", ("source",))
    for p in f.polls:
        if p.last_success_at is not None:
            last.labels(source=p.source).set(p.last_success_at.timestamp())
        if p.last_poll_seconds is not None:
            duration.labels(source=p.source).set(p.last_poll_seconds)
        if p.last_poll_fetched is not None:
            fetched.labels(source=p.source).set(p.last_poll_fetched)
    rows = gauge("rows_erased", "Rows erased per view store and table, for the requests on the register.",
                 ("store", "table"))
    for (store, table), n in sorted(f.rows_erased.items()):
        rows.labels(store=store, table=table).set(n)
    replies = gauge("replies", "Replies in the outbox by state (queued, sent, parked).", ("state",))
    for state in sorted({"queued", "sent", "parked"} | set(f.replies)):
        replies.labels(state=state).set(f.replies.get(state, 0))
    gauge("oldest_parked_reply_age_seconds", "Age of the oldest parked reply; 0 when none is parked.").set(
        f.oldest_parked_reply_age_seconds or 0)
    gauge("audit_head_seq", "Sequence number of the newest audit event.").set(f.audit_head_seq)
    failing = gauge("store_failing_requests", "Requests still erasing whose part in this store has failed.", ("store",))
    since = gauge("store_failing_since_timestamp_seconds", "When this store's oldest pending failure began.", ("store",))
    failed = {x.store: x for x in f.store_failures}
    for store in [s.name for s in config.stores] + [s for s in failed if s not in {x.name for x in config.stores}]:
        failing.labels(store=store).set(failed[store].requests if store in failed else 0)
        if store in failed:
            since.labels(store=store).set(failed[store].since.timestamp())
    gauge("facts_timestamp_seconds", "When these figures were read (Unix time).").set(f.now.timestamp())
    return reg


def prometheus_text(f: Facts, config: Config) -> bytes:
    """The Prometheus text exposition format (what `erasure metrics` prints)."""
    return generate_latest(registry(f, config))


def write_textfile(path: Path, f: Facts, config: Config) -> None:
    """Replace ``path`` atomically (node_exporter must never read half a file)."""
    write_to_textfile(str(path), registry(f, config))
