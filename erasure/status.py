"""The morning screen: "does anything need me today?"

:func:`status` reads, in one session, the counts by state, overdue and nearly
due requests, CCPA acknowledgements missed, parked replies, the last
successful poll and the audit chain. Its ``needs_attention`` drives the exit
code of ``erasure status``, so cron or a monitoring check can alert on it.

What "due" and "overdue" mean is decided in :mod:`erasure.deadlines`
(:func:`~erasure.deadlines.effective_due`, :func:`~erasure.deadlines.days_left`,
:func:`~erasure.deadlines.is_overdue`); this module only asks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure import audit, holds
from erasure.config import Config
from erasure.deadlines import days_left, effective_due, is_overdue
from erasure.metrics import REGULATION_LABELS
from erasure.models import AuditEvent, ErasureRequest, MailboxCursor, OutboxMessage, RequestStatus, StoreProgress

__all__ = [
    "DUE_SOON_DAYS",
    "POLL_STALE_AFTER",
    "STORE_FAILING_AFTER",
    "DueItem",
    "FailingStore",
    "ParkedReply",
    "PollState",
    "StatusReport",
    "UnacknowledgedItem",
    "acknowledgement_fix",
    "format_utc",
    "status",
]

S = RequestStatus

#: How long after the last successful poll `erasure status` calls the mailbox stale.
#: Cron runs `poll` every few minutes; a day without one success is an outage.
POLL_STALE_AFTER = dt.timedelta(hours=24)

#: "Due this week": open requests due within this many days from today (today included).
DUE_SOON_DAYS = 7


@dataclass(frozen=True)
class DueItem:
    reference: str
    tenant: str | None
    regulation: str
    status: str
    due: dt.date
    days_left: int
    extended: bool

    def to_json(self) -> dict[str, Any]:
        return {"reference": self.reference, "tenant": self.tenant, "regulation": self.regulation,
                "status": self.status, "due": self.due.isoformat(), "days_left": self.days_left,
                "extended": self.extended}


#: The audit event an officer's `requests acknowledge` writes: receipt confirmed by other means.
ACKNOWLEDGED_BY_OFFICER = "acknowledged_by_officer"


@dataclass(frozen=True)
class UnacknowledgedItem(DueItem):
    """A CCPA request past its acknowledgement date with nothing sent; ``due`` is that date.

    ``answerable`` is false for a request the tool may not answer by itself (an
    unknown or unauthenticated sender, a direct requester): only a person can
    confirm its receipt. ``fix`` says what to do.
    """

    answerable: bool = True
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        return super().to_json() | {"answerable": self.answerable, "fix": self.fix}


def acknowledgement_fix(reference: str, *, answerable: bool) -> str:
    """What the officer does about one missed CCPA acknowledgement (7021(a))."""
    record = f'then record it: `erasure requests acknowledge {reference} --note "how and when"`'
    if answerable:
        return (f"no reply to it has gone out: check `erasure outbox list` (a parked reply: `erasure outbox retry`), "
                f"or acknowledge by other means, {record}")
    return f"we may not answer this sender automatically: acknowledge by other means, {record}"


@dataclass(frozen=True)
class ParkedReply:
    id: int
    reference: str
    kind: str
    recipient: str
    problem: str | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "request": self.reference, "kind": self.kind, "to": self.recipient,
                "problem": self.problem}


@dataclass(frozen=True)
class FailingStore:
    """A view store that has failed, for requests still waiting on it, since ``since``."""

    store: str
    requests: tuple[str, ...]
    since: dt.datetime
    last_error: str | None

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "requests": list(self.requests), "since": self.since.isoformat(),
                "last_error": self.last_error}


#: A store failing for longer than this is flagged: erasure requests wait on it.
STORE_FAILING_AFTER = dt.timedelta(days=1)


@dataclass(frozen=True)
class PollState:
    source: str
    last_poll_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_problem: str | None = None
    last_problem_at: dt.datetime | None = None

    @property
    def problem_now(self) -> bool:
        """The latest pass (finished or not) had problems: quarantined mail, a failed move, a crash."""
        return self.last_problem is not None and self.last_problem_at == self.last_poll_at

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source,
                "last_poll_at": self.last_poll_at.isoformat() if self.last_poll_at else None,
                "last_success_at": self.last_success_at.isoformat() if self.last_success_at else None,
                "last_problem": self.last_problem,
                "last_problem_at": self.last_problem_at.isoformat() if self.last_problem_at else None}


@dataclass(frozen=True)
class StatusReport:
    """One screen for the morning; ``needs_attention`` is what an alert should fire on."""

    today: dt.date
    now: dt.datetime
    time_zone: str
    counts: dict[str, int]
    overdue: tuple[DueItem, ...]
    due_soon: tuple[DueItem, ...]
    parked: tuple[ParkedReply, ...]
    polls: tuple[PollState, ...]
    audit: audit.VerifyResult
    unacknowledged: tuple[UnacknowledgedItem, ...] = ()
    poll_stale_after: dt.timedelta = POLL_STALE_AFTER
    due_soon_days: int = DUE_SOON_DAYS
    # Open requests whose controller's own deadline (processor role) is within due_soon_days or past;
    # ``due`` is that deadline.
    controller_deadline: tuple[DueItem, ...] = ()
    # View stores that have failed for over STORE_FAILING_AFTER for requests still `erasing`.
    failing_stores: tuple[FailingStore, ...] = ()
    # Active legal holds, each with the open requests it covers (erasure.holds).
    legal_holds: tuple[holds.HoldView, ...] = ()
    # The audit chain was checked from this event on (the last verified checkpoint; 0: all of it).
    audit_checked_from: int = 0

    @property
    def last_success_at(self) -> dt.datetime | None:
        times = [p.last_success_at for p in self.polls if p.last_success_at is not None]
        return max(times) if times else None

    @property
    def poll_stale(self) -> bool:
        """No poll has succeeded within ``poll_stale_after`` (or ever): mail may be piling up unread."""
        last = self.last_success_at
        return last is None or self.now - last > self.poll_stale_after

    @property
    def problems(self) -> list[str]:
        """Why this report needs attention, one short line each; empty when all is well."""
        found: list[str] = []
        if self.overdue:
            found.append(f"{len(self.overdue)} request(s) overdue")
        if self.counts.get(S.NEEDS_REVIEW):
            found.append(f"{self.counts[S.NEEDS_REVIEW]} request(s) need review")
        if self.counts.get(S.AWAITING_APPROVAL):
            found.append(f"{self.counts[S.AWAITING_APPROVAL]} request(s) await approval")
        if late := [i for i in self.controller_deadline if i.days_left < 0]:
            found.append(f"{len(late)} request(s) past the controller's own deadline; tell the customer")
        if self.unacknowledged:
            found.append(f"{len(self.unacknowledged)} CCPA request(s) past their acknowledgement date with no reply "
                         "sent; acknowledge by other means, then `erasure requests acknowledge REF`")
        for f in self.failing_stores:
            found.append(f"view store {f.store!r} has failed since {format_utc(f.since)} for {len(f.requests)} "
                         f"request(s) still erasing: {_short(f.last_error or 'no error recorded', 200)}; "
                         "check the store, then `erasure poll` resumes them")
        if self.parked:
            found.append(f"{len(self.parked)} reply(ies) parked; see `erasure outbox list --status parked`")
        for p in self.polls:
            if p.problem_now:
                found.append(f"the last poll of {p.source} had problems; see `erasure status` and the review folder")
        if self.poll_stale:
            last = self.last_success_at
            found.append("no successful poll yet; run `erasure poll` and check cron" if last is None else
                         f"no successful poll since {format_utc(last)}; run `erasure poll` to see why")
        if not self.audit.ok:
            found.append(f"audit trail broken at event {self.audit.first_bad_seq}: {self.audit.problem}")
        return found

    @property
    def needs_attention(self) -> bool:
        return bool(self.problems)

    def to_json(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "time_zone": self.time_zone,
            "counts": dict(self.counts),
            "open": sum(self.counts.get(s, 0) for s in S.OPEN),
            "overdue": [i.to_json() for i in self.overdue],
            "due_soon": [i.to_json() for i in self.due_soon],
            "due_soon_days": self.due_soon_days,
            "unacknowledged": [i.to_json() for i in self.unacknowledged],
            "controller_deadline": [i.to_json() for i in self.controller_deadline],
            "failing_stores": [f.to_json() for f in self.failing_stores],
            "parked_replies": [p.to_json() for p in self.parked],
            "legal_holds": [h.to_json() for h in self.legal_holds],
            "polls": [p.to_json() for p in self.polls],
            "last_success_at": self.last_success_at.isoformat() if self.last_success_at else None,
            "poll_stale": self.poll_stale,
            "audit": {
                "ok": self.audit.ok,
                "events": self.audit.events,
                "head": str(self.audit.head) if self.audit.head else None,
                "first_bad_seq": self.audit.first_bad_seq,
                "problem": self.audit.problem,
                "checked_from": self.audit_checked_from,
            },
            "needs_attention": self.needs_attention,
            "problems": self.problems,
        }

    def text(self) -> str:
        """The terminal screen: plain text, readable in a cron mail too."""
        c = self.counts
        lines = [
            f"erasure status, {self.today.isoformat()} ({self.time_zone})",
            "open:   " + ", ".join(f"{c.get(s, 0)} {s.replace('_', ' ')}" for s in S.OPEN),
            "closed: " + ", ".join(f"{c.get(s, 0)} {s}" for s in S.CLOSED),
        ]

        def items(title: str, rows: Sequence[DueItem]) -> None:
            lines.append(f"{title}: " + ("none" if not rows else str(len(rows))))
            for i in rows:
                when = (f"{-i.days_left} day(s) late" if i.days_left < 0 else
                        "due today" if i.days_left == 0 else f"{i.days_left} day(s) left")
                lines.append(f"  {i.reference}  {i.tenant or '-'}  {REGULATION_LABELS.get(i.regulation, i.regulation)}"
                             f"  {i.status}  due {i.due.isoformat()}{' (extended)' if i.extended else ''}  {when}")

        items("overdue", self.overdue)
        items(f"due within {self.due_soon_days} days", self.due_soon)
        if self.unacknowledged:
            items("not acknowledged in time (CCPA 7021(a))", self.unacknowledged)
            lines += [f"    {i.reference}: {i.fix}" for i in self.unacknowledged]
        if self.controller_deadline:
            items(f"will pass the controller's deadline (within {self.due_soon_days} days or past)",
                  self.controller_deadline)
        for f in self.failing_stores:
            lines.append(f"view store {f.store} failing since {format_utc(f.since)}: {', '.join(f.requests)}")
        lines.append("legal holds: " + ("none" if not self.legal_holds else str(len(self.legal_holds))))
        lines += [f"  {h.ref}  {h.scope}  holding {len(h.holding)} request(s)"
                  + (f" ({', '.join(h.holding)})" if h.holding else "") + f": {_short(h.reason, 120)}"
                  for h in self.legal_holds]
        lines.append("parked replies: " + ("none" if not self.parked else str(len(self.parked))))
        lines += [f"  #{p.id} {p.reference} {p.kind} to {p.recipient}" + (f": {p.problem}" if p.problem else "")
                  for p in self.parked]
        last = self.last_success_at
        lines.append("last successful poll: " + (format_utc(last) if last else "never") + (" (STALE)" if self.poll_stale else ""))
        attempted = [p.last_poll_at for p in self.polls if p.last_poll_at is not None]
        if attempted and (last is None or max(attempted) > last):
            lines.append(f"last poll attempt: {format_utc(max(attempted))} (did not finish)")
        lines += [f"last poll problem ({p.source}, {format_utc(p.last_problem_at)}): {_short(p.last_problem)}"
                  for p in self.polls if p.last_problem is not None and p.last_problem_at is not None]
        if self.audit.ok:
            since = (f"; checked since event {self.audit_checked_from}, `erasure audit verify` checks it all"
                     if self.audit_checked_from else "")
            lines.append(f"audit trail: intact, {self.audit.events} event(s), head {self.audit.head or 'empty'}{since}")
        else:
            lines.append(f"audit trail: BROKEN at event {self.audit.first_bad_seq}: {self.audit.problem}")
        problems = self.problems
        lines.append("needs attention: " + ("; ".join(problems) if problems else "nothing"))
        return "\n".join(lines)


def _short(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[:limit] + " [...]"


def format_utc(moment: dt.datetime) -> str:
    """A moment as the officer's screens print it: to the minute, in UTC, whatever the office zone."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def status(
    session: Session,
    *,
    today: dt.date,
    config: Config,
    now: dt.datetime | None = None,
    poll_stale_after: dt.timedelta = POLL_STALE_AFTER,
    due_soon_days: int = DUE_SOON_DAYS,
) -> StatusReport:
    """Everything the morning screen shows, read in one session.

    ``today`` is the office-local date (``deadlines.received_date(now,
    config.policy)``), the same calendar the due dates were computed in;
    ``now`` (default: the clock) only judges how old the last poll is.
    The audit chain is verified in full, last, because verifying detaches the
    session's objects.
    """
    now = now or dt.datetime.now(dt.UTC)
    counts = {s: 0 for s in S.ALL}
    for state, n in session.execute(
        select(ErasureRequest.status, func.count()).group_by(ErasureRequest.status)
    ):
        counts[state] = n
    open_rows = session.execute(
        select(ErasureRequest.id, ErasureRequest.reference, ErasureRequest.tenant, ErasureRequest.regulation,
               ErasureRequest.status, ErasureRequest.due_on, ErasureRequest.extended_to,
               ErasureRequest.controller_due_on)
        .where(ErasureRequest.status.in_(list(S.OPEN)))
        .order_by(ErasureRequest.due_on, ErasureRequest.id)
    ).all()
    items = sorted((_due_item(r, today) for r in open_rows), key=lambda i: (i.due, i.reference))
    overdue = tuple(i for i in items if is_overdue(i.due, today))
    unacknowledged = _unacknowledged(session, today)
    due_soon = tuple(i for i in items if not is_overdue(i.due, today) and i.days_left < due_soon_days)
    controller_deadline = tuple(sorted(
        (i for r in open_rows if (i := _controller_item(r, today)) is not None and i.days_left < due_soon_days),
        key=lambda i: (i.due, i.reference)))
    parked = tuple(
        ParkedReply(id=m.id, reference=ref or str(m.request_id), kind=m.kind, recipient=m.recipient, problem=m.last_error)
        for m, ref in session.execute(
            select(OutboxMessage, ErasureRequest.reference)
            .join(ErasureRequest, ErasureRequest.id == OutboxMessage.request_id)
            .where(OutboxMessage.status == "parked")
            .order_by(OutboxMessage.id)
        )
    )
    polls = tuple(
        PollState(c.source, c.last_poll_at, c.last_success_at, c.last_problem, c.last_problem_at)
        for c in session.scalars(select(MailboxCursor).order_by(MailboxCursor.source))
    )
    failing = _failing_stores(session, now)
    legal_holds = tuple(holds.list_holds(session, config.audit_keys))
    chain, checkpoint = audit.verify_since_checkpoint(session, now=now)
    return StatusReport(
        today=today, now=now, time_zone=config.policy.time_zone, counts=counts, overdue=overdue,
        due_soon=due_soon, parked=parked, polls=polls, audit=chain, unacknowledged=unacknowledged,
        poll_stale_after=poll_stale_after, due_soon_days=due_soon_days, controller_deadline=controller_deadline,
        failing_stores=failing,
        legal_holds=legal_holds,
        audit_checked_from=checkpoint.seq if checkpoint else 0,
    )


def _failing_stores(session: Session, now: dt.datetime) -> tuple[FailingStore, ...]:
    """Stores whose part of an `erasing` request has failed for over a day, oldest failure first."""
    rows = session.execute(
        select(StoreProgress.store, StoreProgress.failing_since, StoreProgress.last_error, ErasureRequest.reference)
        .join(ErasureRequest, ErasureRequest.id == StoreProgress.request_id)
        .where(ErasureRequest.status == S.ERASING, StoreProgress.state == "pending",
               StoreProgress.failing_since.is_not(None), StoreProgress.failing_since < now - STORE_FAILING_AFTER)
        .order_by(StoreProgress.store, StoreProgress.failing_since)
    ).all()
    by_store: dict[str, list[Any]] = {}
    for row in rows:
        by_store.setdefault(row.store, []).append(row)
    return tuple(
        FailingStore(store=name, requests=tuple(r.reference or "?" for r in group), since=group[0].failing_since,
                     last_error=max(group, key=lambda r: r.failing_since).last_error)
        for name, group in sorted(by_store.items(), key=lambda kv: kv[1][0].failing_since)
    )


def _due_item(row: Any, today: dt.date) -> DueItem:
    """An open request on the screen, due on the date that counts now (the extended one, once given).

    ``row`` is one row of the query in :func:`status` (``Any``: its ``Row`` type differs between SQLAlchemy 2.0 and 2.1).
    """
    due = effective_due(row.due_on, row.extended_to)
    return DueItem(reference=row.reference or str(row.id), tenant=row.tenant, regulation=row.regulation,
                   status=row.status, due=due, days_left=days_left(due, today), extended=row.extended_to is not None)


def _controller_item(row: Any, today: dt.date) -> DueItem | None:
    """An open request by its controller's own deadline (processor role), when that is known.

    A processor's due date is never later than the controller's (deadlines.request_dates),
    but an extension, or a request forwarded late, can bring the customer's date near
    or past while ours still looks fine: the officer sees both.
    """
    if row.controller_due_on is None:
        return None
    due = row.controller_due_on
    return DueItem(reference=row.reference or str(row.id), tenant=row.tenant, regulation=row.regulation,
                   status=row.status, due=due, days_left=days_left(due, today), extended=row.extended_to is not None)


def _unacknowledged(session: Session, today: dt.date) -> tuple[UnacknowledgedItem, ...]:
    """Open CCPA requests past ``acknowledge_by`` to which nothing has been sent and no officer confirmed receipt.

    7021(a) wants receipt confirmed within 10 business days. Any reply sent
    (acknowledgement, a request for information, the answer itself, the
    data-free letter to a direct requester) confirms it; a queued or parked
    one does not. Requests the tool may not answer (``reply_allowed`` false:
    unknown or unauthenticated senders, direct requesters) are listed too,
    because the duty does not go away when the tool cannot write: an officer
    confirms receipt by other means and records it (`requests acknowledge`).
    """
    replied = select(OutboxMessage.id).where(
        OutboxMessage.request_id == ErasureRequest.id, OutboxMessage.status == "sent"
    ).exists()
    confirmed = select(AuditEvent.seq).where(
        AuditEvent.request_ref == ErasureRequest.reference, AuditEvent.event == ACKNOWLEDGED_BY_OFFICER
    ).exists()
    rows = session.scalars(
        select(ErasureRequest)
        .where(
            ErasureRequest.status.in_(list(S.OPEN)),
            ErasureRequest.acknowledge_by.is_not(None),
            ~replied,
            ~confirmed,
        )
        .order_by(ErasureRequest.acknowledge_by, ErasureRequest.id)
    )
    return tuple(
        UnacknowledgedItem(reference=ref, tenant=r.tenant, regulation=r.regulation, status=r.status,
                           due=ack, days_left=days_left(ack, today), extended=False,
                           answerable=bool(r.reply_allowed),
                           fix=acknowledgement_fix(ref, answerable=bool(r.reply_allowed)))
        for r in rows
        if (ack := r.acknowledge_by) is not None and is_overdue(ack, today) and (ref := r.reference or str(r.id))
    )
