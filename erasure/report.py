"""The privacy officer's desk: the morning status screen and the yearly report.

Two readers, two shapes:

* :func:`status` answers "does anything need me today?": counts by state,
  overdue and nearly due requests, CCPA acknowledgements missed, parked
  replies, the last successful poll and the audit chain. Its ``needs_attention`` drives the exit code of
  ``erasure status``, so cron or a monitoring check can alert on it.
* :func:`yearly_metrics` and :func:`render_html` produce the figures a business
  must be able to publish every year (CCPA regulations, 11 CCR 7102(a)) and a
  few operational charts, as one self-contained HTML file: inline SVG, no
  script, no fonts, stylesheets or images from anywhere else, so it can be
  mailed, archived and opened offline.

Definitions (also printed in the report and in the README):

* A request belongs to the year in which it was **received**, counted in the
  office time zone (``policy.time_zone``), the same day deadlines count from.
  Its outcome is the one known when the report is generated; requests still
  open then are shown as *pending*. So ``received = complied + denied + pending``.
* **Complied with (in whole or in part)** = responses ``completed`` (views were
  erased) plus ``no_data_found`` (the request was answered: no data could be
  identified for the viewer ids given). Both are shown separately as well.
* **Denied** = ``rejected`` by an officer (reasons given, Art. 12(4) GDPR,
  7022(f) CCPA).
* **Days to respond** = office-local date of closing minus office-local date of
  receipt, for completed, no_data_found and rejected requests (so an answer on
  the day of receipt takes 0 days). Median and mean are over those requests.
* **Ignored automatic mail** (auto-replies, bounces: status ``ignored``) is not
  a request; it is left out of every count above and shown on its own line.
* **Cancelled** requests (withdrawn by an officer before erasure began, because
  the requester withdrew them or they were entered twice) are left out of the
  counts too, since duplicates would inflate them, and shown on their own line.

Everything that computes a number is a pure function over :class:`RequestRow`
tuples, tested directly; only :func:`load_rows` and :func:`status` read the
database.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure import audit
from erasure.config import Config
from erasure.deadlines import days_left, is_overdue, office_zone
from erasure.errors import ConfigError
from erasure.models import ErasureRequest, MailboxCursor, OutboxMessage, RequestStatus

__all__ = [
    "DAY_BINS",
    "Backlog",
    "DayBin",
    "DueItem",
    "Metrics",
    "MonthCount",
    "ParkedReply",
    "PollState",
    "RegulationMetrics",
    "RequestRow",
    "StatusReport",
    "backlog_at_month_ends",
    "days_histogram",
    "days_to_respond",
    "load_rows",
    "month_ends",
    "nice_ticks",
    "outcome_of",
    "regulation_metrics",
    "render_html",
    "requests_per_month",
    "status",
    "summarize",
    "yearly_metrics",
]

S = RequestStatus

#: How long after the last successful poll `erasure status` calls the mailbox stale.
#: Cron runs `poll` every few minutes; a day without one success is an outage.
POLL_STALE_AFTER = dt.timedelta(hours=24)

#: "Due this week": open requests due within this many days from today (today included).
DUE_SOON_DAYS = 7

#: Requests withdrawn by an officer before erasure began (the requester withdrew
#: them, or they were entered twice). Spelled out here so this module also reads
#: state databases from before the state existed.
CANCELLED = "cancelled"

#: Outcomes left out of the published counts, each shown on its own line instead:
#: automatic mail is not a request; a cancelled one was withdrawn or a duplicate.
NOT_COUNTED = ("ignored", CANCELLED)

#: Outcomes that are answers to the requester, and so count for "days to respond".
RESPONDED = ("completed", "no_data_found", "rejected")
COMPLIED = ("completed", "no_data_found")

#: Histogram bins for days to respond, chosen around the legal periods:
#: one week, two weeks, one month (GDPR), 45 days (CCPA), 60, 90 (CCPA extended).
DAY_BINS: tuple[tuple[int, int | None], ...] = ((0, 7), (8, 14), (15, 30), (31, 45), (46, 60), (61, 90), (91, None))

REGULATION_LABELS = {"gdpr": "GDPR", "ccpa": "CCPA"}
_COLOURS = {"gdpr": "#2f6db5", "ccpa": "#d9822b"}
_OTHER_COLOUR = "#6b8e23"
_BAR_COLOUR = "#5a6f8a"
_LINE_COLOUR = "#b03a48"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# ================================================================ rows


@dataclass(frozen=True)
class RequestRow:
    """What the metrics need of one request, with dates already in the office time zone."""

    received_on: dt.date
    regulation: str
    status: str
    response: str | None = None
    closed_on: dt.date | None = None
    due: dt.date | None = None
    kind: str = "erasure"


def _local_date(moment: dt.datetime, zone: ZoneInfo) -> dt.date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(zone).date()


def load_rows(session: Session, *, time_zone: str = "UTC") -> list[RequestRow]:
    """Every request as a :class:`RequestRow`, in receipt order.

    The whole register is read: the state database keeps request records for
    24 months (7101), so this is thousands of rows, not millions, and the
    backlog chart needs requests from earlier years that were still open.
    """
    zone = office_zone(time_zone)
    stmt = select(
        ErasureRequest.received_at,
        ErasureRequest.regulation,
        ErasureRequest.status,
        ErasureRequest.response,
        ErasureRequest.closed_at,
        ErasureRequest.due_on,
        ErasureRequest.extended_to,
        ErasureRequest.kind,
    ).order_by(ErasureRequest.received_at, ErasureRequest.id)
    return [
        RequestRow(
            received_on=_local_date(r.received_at, zone),
            regulation=r.regulation,
            status=r.status,
            response=r.response,
            closed_on=_local_date(r.closed_at, zone) if r.closed_at is not None else None,
            due=r.extended_to or r.due_on,
            kind=r.kind,
        )
        for r in session.execute(stmt)
    ]


def outcome_of(row: RequestRow) -> str:
    """``open``, ``completed``, ``no_data_found``, ``rejected``, ``ignored`` (or another closed response as stored).

    The ``response`` column says how a closed request was answered; the status
    is the fallback for rows closed before it was written.
    """
    if row.status in S.OPEN:
        return "open"
    if row.status == S.IGNORED or row.response == "ignored":
        return "ignored"
    if row.status == CANCELLED or row.response == CANCELLED:
        return CANCELLED
    return row.response or row.status


def days_to_respond(row: RequestRow) -> int | None:
    """Office-local closing date minus receipt date, for answered requests; None otherwise."""
    if outcome_of(row) not in RESPONDED or row.closed_on is None:
        return None
    return (row.closed_on - row.received_on).days


# ================================================================ yearly metrics


@dataclass(frozen=True)
class RegulationMetrics:
    """The 7102(a) figures for one regulation (or ``all``) and one year of receipt."""

    regulation: str
    received: int
    complied: int
    completed: int
    no_data_found: int
    denied: int
    pending: int
    late: int
    median_days: float | None
    mean_days: float | None

    @property
    def label(self) -> str:
        return "All" if self.regulation == "all" else REGULATION_LABELS.get(self.regulation, self.regulation.upper())

    def to_json(self) -> dict[str, Any]:
        return {
            "regulation": self.regulation,
            "received": self.received,
            "complied": self.complied,
            "completed": self.completed,
            "no_data_found": self.no_data_found,
            "denied": self.denied,
            "pending": self.pending,
            "late": self.late,
            "median_days": self.median_days,
            "mean_days": self.mean_days,
        }


@dataclass(frozen=True)
class MonthCount:
    month: int
    by_regulation: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_regulation.values())


@dataclass(frozen=True)
class DayBin:
    low: int
    high: int | None
    count: int

    @property
    def label(self) -> str:
        return f"{self.low}+" if self.high is None else f"{self.low}\u2013{self.high}"


@dataclass(frozen=True)
class Backlog:
    """Requests open at the end of a month; ``open`` is None for month ends after the report date."""

    month_end: dt.date
    open: int | None


@dataclass(frozen=True)
class Metrics:
    year: int
    as_of: dt.date
    time_zone: str
    regulations: tuple[str, ...]
    by_regulation: tuple[RegulationMetrics, ...]
    total: RegulationMetrics
    ignored: int
    cancelled: int
    not_erasure: int
    months: tuple[MonthCount, ...]
    days_histogram: tuple[DayBin, ...]
    backlog: tuple[Backlog, ...]

    @property
    def complete_year(self) -> bool:
        """False while the year is still running: the figures are then year-to-date."""
        return self.as_of > dt.date(self.year, 12, 31)

    def text(self) -> str:
        """The 7102(a) table for a terminal; the charts are in the HTML report."""
        headers = ["regulation", "received", "complied", "completed", "no data", "denied", "pending", "late",
                   "median days", "mean days"]
        table = [
            [r.label, str(r.received), str(r.complied), str(r.completed), str(r.no_data_found), str(r.denied),
             str(r.pending), str(r.late), _fmt_days(r.median_days, "-"), _fmt_days(r.mean_days, "-")]
            for r in (*self.by_regulation, self.total)
        ]
        widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]

        def line(cells: list[str]) -> str:
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        period = "" if self.complete_year else " (year to date)"
        return "\n".join([
            f"Requests received in {self.year}{period}, {self.time_zone} dates, outcomes as of {self.as_of.isoformat()}",
            line(headers),
            line(["-" * w for w in widths]),
            *(line(row) for row in table),
            f"not counted above: {self.ignored} ignored automatic mail, {self.cancelled} cancelled",
            "complied = completed + no data found; denied = rejected; "
            "days to respond = date answered - date received (answered requests only)",
        ])

    def to_json(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "as_of": self.as_of.isoformat(),
            "complete_year": self.complete_year,
            "time_zone": self.time_zone,
            "total": self.total.to_json(),
            "by_regulation": {m.regulation: m.to_json() for m in self.by_regulation},
            "ignored_automatic_mail": self.ignored,
            "cancelled": self.cancelled,
            "not_erasure_requests": self.not_erasure,
            "requests_per_month": [
                {"month": f"{self.year}-{m.month:02d}", **{r: m.by_regulation.get(r, 0) for r in self.regulations}}
                for m in self.months
            ],
            "days_to_respond_histogram": [{"low": b.low, "high": b.high, "count": b.count} for b in self.days_histogram],
            "backlog": [{"month_end": b.month_end.isoformat(), "open": b.open} for b in self.backlog],
        }


def _in_year(row: RequestRow, year: int) -> bool:
    return row.received_on.year == year


def regulation_metrics(rows: Iterable[RequestRow], regulation: str) -> RegulationMetrics:
    """The 7102(a) figures over ``rows`` (already one year's, without ignored mail)."""
    rows = list(rows)
    outcomes = Counter(outcome_of(r) for r in rows)
    days = [d for d in (days_to_respond(r) for r in rows) if d is not None]
    late = sum(
        1 for r in rows
        if outcome_of(r) in RESPONDED and r.closed_on is not None and r.due is not None and is_overdue(r.due, r.closed_on)
    )
    return RegulationMetrics(
        regulation=regulation,
        received=len(rows),
        complied=outcomes["completed"] + outcomes["no_data_found"],
        completed=outcomes["completed"],
        no_data_found=outcomes["no_data_found"],
        denied=outcomes["rejected"],
        pending=outcomes["open"],
        late=late,
        median_days=float(statistics.median(days)) if days else None,
        mean_days=round(statistics.fmean(days), 1) if days else None,
    )


def requests_per_month(rows: Iterable[RequestRow], year: int, regulations: Sequence[str]) -> tuple[MonthCount, ...]:
    """Requests received in each month of ``year``, by regulation (ignored and cancelled excluded)."""
    counts = Counter(
        (r.received_on.month, r.regulation) for r in rows if _in_year(r, year) and outcome_of(r) not in NOT_COUNTED
    )
    return tuple(MonthCount(m, {reg: counts[(m, reg)] for reg in regulations}) for m in range(1, 13))


def days_histogram(days: Iterable[int], bins: Sequence[tuple[int, int | None]] = DAY_BINS) -> tuple[DayBin, ...]:
    """How many answers took 0-7 days, 8-14, ... (bounds inclusive; the last bin is open-ended)."""
    counts = [0] * len(bins)
    for d in days:
        for i, (low, high) in enumerate(bins):
            if d >= low and (high is None or d <= high):
                counts[i] += 1
                break
    return tuple(DayBin(low, high, n) for (low, high), n in zip(bins, counts))


def month_ends(year: int) -> list[dt.date]:
    return [dt.date(year + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1) for m in range(1, 13)]


def backlog_at_month_ends(rows: Iterable[RequestRow], year: int, as_of: dt.date) -> tuple[Backlog, ...]:
    """Requests open at the end of each month of ``year``, whatever year they arrived in.

    A request is open at the end of day E when it was received on or before E
    and not closed by then; a request later cancelled was open until then, so it
    counts (automatic mail, closed on arrival, does not). The current month's point is "today" rather than a
    month end in the future, which nobody can know yet; later months have none.
    """
    rows = [r for r in rows if outcome_of(r) != "ignored"]
    points: list[Backlog] = []
    for end in month_ends(year):
        if end.replace(day=1) > as_of:
            points.append(Backlog(end, None))
            continue
        at = min(end, as_of)
        n = sum(1 for r in rows if r.received_on <= at and _open_after(r, at))
        points.append(Backlog(end, n))
    return tuple(points)


def _open_after(row: RequestRow, day: dt.date) -> bool:
    """Still unanswered at the end of ``day``."""
    if row.closed_on is not None:
        return row.closed_on > day
    return row.status in S.OPEN


def summarize(rows: Sequence[RequestRow], year: int, *, as_of: dt.date, time_zone: str = "UTC") -> Metrics:
    """All yearly figures and chart data from plain rows: the pure core of :func:`yearly_metrics`."""
    of_year = [r for r in rows if _in_year(r, year)]
    requests = [r for r in of_year if outcome_of(r) not in NOT_COUNTED]
    present = {r.regulation for r in requests}
    regulations = tuple(["gdpr", "ccpa"] + sorted(present - {"gdpr", "ccpa"}))
    days = [d for d in (days_to_respond(r) for r in requests) if d is not None]
    return Metrics(
        year=year,
        as_of=as_of,
        time_zone=time_zone,
        regulations=regulations,
        by_regulation=tuple(regulation_metrics([r for r in requests if r.regulation == reg], reg) for reg in regulations),
        total=regulation_metrics(requests, "all"),
        ignored=sum(1 for r in of_year if outcome_of(r) == "ignored"),
        cancelled=sum(1 for r in of_year if outcome_of(r) == CANCELLED),
        not_erasure=sum(1 for r in requests if r.kind != "erasure"),
        months=requests_per_month(requests, year, regulations),
        days_histogram=days_histogram(days),
        backlog=backlog_at_month_ends(rows, year, as_of),
    )


def _check_year(year: int) -> None:
    if not 1970 <= year <= 9998:
        raise ConfigError(f"--year {year}: give a calendar year between 1970 and 9998, such as 2026")


def yearly_metrics(
    session: Session, year: int, *, time_zone: str = "UTC", today: dt.date | None = None
) -> Metrics:
    """The figures for requests received in ``year``, as known ``today`` (office-local date).

    ``today`` defaults to the current date in ``time_zone``; pass it to get a
    report that does not depend on when it runs.
    """
    _check_year(year)
    zone = office_zone(time_zone)
    as_of = today or dt.datetime.now(zone).date()
    return summarize(load_rows(session, time_zone=time_zone), year, as_of=as_of, time_zone=time_zone)


# ================================================================ status


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
    unacknowledged: tuple[DueItem, ...] = ()
    poll_stale_after: dt.timedelta = POLL_STALE_AFTER
    due_soon_days: int = DUE_SOON_DAYS

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
        if self.unacknowledged:
            found.append(f"{len(self.unacknowledged)} CCPA request(s) past their acknowledgement date with no reply sent")
        if self.parked:
            found.append(f"{len(self.parked)} reply(ies) parked; see `erasure outbox list --status parked`")
        for p in self.polls:
            if p.problem_now:
                found.append(f"the last poll of {p.source} had problems; see `erasure status` and the review folder")
        if self.poll_stale:
            last = self.last_success_at
            found.append("no successful poll yet; run `erasure poll` and check cron" if last is None else
                         f"no successful poll since {_utc(last)}; run `erasure poll` to see why")
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
            "parked_replies": [p.to_json() for p in self.parked],
            "polls": [p.to_json() for p in self.polls],
            "last_success_at": self.last_success_at.isoformat() if self.last_success_at else None,
            "poll_stale": self.poll_stale,
            "audit": {
                "ok": self.audit.ok,
                "events": self.audit.events,
                "head": str(self.audit.head) if self.audit.head else None,
                "first_bad_seq": self.audit.first_bad_seq,
                "problem": self.audit.problem,
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
        lines.append("parked replies: " + ("none" if not self.parked else str(len(self.parked))))
        lines += [f"  #{p.id} {p.reference} {p.kind} to {p.recipient}" + (f": {p.problem}" if p.problem else "")
                  for p in self.parked]
        last = self.last_success_at
        lines.append("last successful poll: " + (_utc(last) if last else "never") + (" (STALE)" if self.poll_stale else ""))
        attempted = [p.last_poll_at for p in self.polls if p.last_poll_at is not None]
        if attempted and (last is None or max(attempted) > last):
            lines.append(f"last poll attempt: {_utc(max(attempted))} (did not finish)")
        lines += [f"last poll problem ({p.source}, {_utc(p.last_problem_at)}): {_short(p.last_problem)}"
                  for p in self.polls if p.last_problem is not None and p.last_problem_at is not None]
        if self.audit.ok:
            lines.append(f"audit trail: intact, {self.audit.events} event(s), head {self.audit.head or 'empty'}")
        else:
            lines.append(f"audit trail: BROKEN at event {self.audit.first_bad_seq}: {self.audit.problem}")
        problems = self.problems
        lines.append("needs attention: " + ("; ".join(problems) if problems else "nothing"))
        return "\n".join(lines)


def _short(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[:limit] + " [...]"


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


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
    now = now or dt.datetime.now(dt.timezone.utc)
    counts = {s: 0 for s in S.ALL}
    for state, n in session.execute(
        select(ErasureRequest.status, func.count()).group_by(ErasureRequest.status)
    ):
        counts[state] = n
    open_rows = session.execute(
        select(ErasureRequest.id, ErasureRequest.reference, ErasureRequest.tenant, ErasureRequest.regulation,
               ErasureRequest.status, ErasureRequest.due_on, ErasureRequest.extended_to)
        .where(ErasureRequest.status.in_(list(S.OPEN)))
        .order_by(ErasureRequest.due_on, ErasureRequest.id)
    ).all()
    items = sorted(
        (
            DueItem(reference=r.reference or str(r.id), tenant=r.tenant, regulation=r.regulation, status=r.status,
                    due=r.extended_to or r.due_on, days_left=days_left(r.extended_to or r.due_on, today),
                    extended=r.extended_to is not None)
            for r in open_rows
        ),
        key=lambda i: (i.due, i.reference),
    )
    overdue = tuple(i for i in items if is_overdue(i.due, today))
    unacknowledged = _unacknowledged(session, today)
    due_soon = tuple(i for i in items if 0 <= i.days_left < due_soon_days)
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
    chain = audit.verify(session)
    return StatusReport(
        today=today, now=now, time_zone=config.policy.time_zone, counts=counts, overdue=overdue,
        due_soon=due_soon, parked=parked, polls=polls, audit=chain, unacknowledged=unacknowledged,
        poll_stale_after=poll_stale_after, due_soon_days=due_soon_days,
    )


def _unacknowledged(session: Session, today: dt.date) -> tuple[DueItem, ...]:
    """Open CCPA requests past ``acknowledge_by`` to which no reply has been sent yet.

    7021(a) wants receipt confirmed within 10 business days. Any reply sent
    (acknowledgement, a request for information, the answer itself) confirms
    it; a queued or parked one does not. Requests the tool may not answer
    (``reply_allowed`` false: unverified senders) are left to the review list.
    """
    replied = select(OutboxMessage.id).where(
        OutboxMessage.request_id == ErasureRequest.id, OutboxMessage.status == "sent"
    ).exists()
    rows = session.scalars(
        select(ErasureRequest)
        .where(
            ErasureRequest.status.in_(list(S.OPEN)),
            ErasureRequest.acknowledge_by.is_not(None),
            ErasureRequest.acknowledge_by < today,
            ErasureRequest.reply_allowed.is_(True),
            ~replied,
        )
        .order_by(ErasureRequest.acknowledge_by, ErasureRequest.id)
    )
    return tuple(
        DueItem(reference=r.reference or str(r.id), tenant=r.tenant, regulation=r.regulation, status=r.status,
                due=r.acknowledge_by, days_left=days_left(r.acknowledge_by, today), extended=False)  # type: ignore[arg-type]
        for r in rows
    )


# ================================================================ HTML


@dataclass(frozen=True)
class _Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str
    title: str
    css: str = "bar"


@dataclass(frozen=True)
class _Text:
    x: float
    y: float
    text: str
    anchor: str = "middle"
    css: str = "tick"


@dataclass(frozen=True)
class _Line:
    x1: float
    y1: float
    x2: float
    y2: float
    css: str = "grid"


@dataclass
class Chart:
    """One SVG chart as plain shapes; the template only draws what is here."""

    id: str
    title: str
    description: str
    width: int = 720
    height: int = 280
    rects: list[_Rect] = field(default_factory=list)
    texts: list[_Text] = field(default_factory=list)
    lines: list[_Line] = field(default_factory=list)
    polyline: str = ""
    points: list[tuple[float, float, str]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)


# Plot area inside each chart.
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 40, 36


def nice_ticks(top: int) -> list[int]:
    """Whole-number axis ticks from 0 to at least ``top`` in steps of 1, 2 or 5 x 10^k."""
    top = max(top, 1)
    raw = top / 4
    magnitude = 1
    while magnitude * 10 <= raw:
        magnitude *= 10
    step = next((m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), 10 * magnitude)
    step = max(int(step), 1)
    ticks = list(range(0, top + step, step))
    return ticks if ticks[-1] >= top else ticks + [ticks[-1] + step]


def _axes(chart: Chart, ticks: list[int], labels: Sequence[str]) -> tuple[float, float, float]:
    """Grid lines, y tick labels and x labels; returns (plot height, scale per unit, slot width)."""
    plot_h = chart.height - _TOP - _BOTTOM
    plot_w = chart.width - _LEFT - _RIGHT
    scale = plot_h / ticks[-1]
    for t in ticks:
        y = _TOP + plot_h - t * scale
        chart.lines.append(_Line(_LEFT, y, chart.width - _RIGHT, y, "grid" if t else "axis"))
        chart.texts.append(_Text(_LEFT - 6, y + 4, str(t), "end"))
    slot = plot_w / len(labels)
    for i, label in enumerate(labels):
        chart.texts.append(_Text(_LEFT + slot * (i + 0.5), chart.height - _BOTTOM + 16, label))
    return plot_h, scale, slot


def _value_label(chart: Chart, bar: _Rect, n: int) -> None:
    chart.texts.append(_Text(round(bar.x + bar.width / 2, 2), round(bar.y - 4, 2), str(n), "middle", "value"))


def _empty_note(chart: Chart, text: str) -> None:
    """Say so when a chart has nothing to draw, rather than leave an empty frame."""
    if not chart.rects:
        chart.texts.append(_Text(chart.width / 2, chart.height / 2, text, "middle", "empty"))


def month_chart(metrics: Metrics) -> Chart:
    chart = Chart("per-month", f"Requests received per month, {metrics.year}",
                  "Bars per month, one per regulation; ignored automatic mail is not counted.")
    regs = [r for r in metrics.regulations if r in ("gdpr", "ccpa") or any(m.by_regulation.get(r) for m in metrics.months)]
    top = max((m.by_regulation.get(r, 0) for m in metrics.months for r in regs), default=0)
    plot_h, scale, slot = _axes(chart, nice_ticks(top), _MONTHS)
    bar_w = slot * 0.8 / len(regs)
    for i, month in enumerate(metrics.months):
        for j, reg in enumerate(regs):
            n = month.by_regulation.get(reg, 0)
            if not n:
                continue
            h = n * scale
            chart.rects.append(_Rect(
                round(_LEFT + slot * i + slot * 0.1 + bar_w * j, 2), round(_TOP + plot_h - h, 2), round(bar_w, 2),
                round(h, 2), _COLOURS.get(reg, _OTHER_COLOUR),
                f"{_MONTHS[month.month - 1]} {metrics.year}, {REGULATION_LABELS.get(reg, reg.upper())}: {n}",
            ))
            _value_label(chart, chart.rects[-1], n)
    chart.legend = [(REGULATION_LABELS.get(r, r.upper()), _COLOURS.get(r, _OTHER_COLOUR)) for r in regs]
    _empty_note(chart, "no requests received")
    return chart


def days_chart(metrics: Metrics) -> Chart:
    chart = Chart("days-to-respond", f"Days to respond, requests received in {metrics.year}",
                  "How many answered requests (complied with or denied) took how many days, "
                  "from the date of receipt to the date of the answer.")
    bins = metrics.days_histogram
    plot_h, scale, slot = _axes(chart, nice_ticks(max((b.count for b in bins), default=0)), [b.label for b in bins])
    for i, b in enumerate(bins):
        if not b.count:
            continue
        h = b.count * scale
        chart.rects.append(_Rect(round(_LEFT + slot * i + slot * 0.1, 2), round(_TOP + plot_h - h, 2),
                                 round(slot * 0.8, 2), round(h, 2), _BAR_COLOUR, f"{b.label} days: {b.count}"))
        _value_label(chart, chart.rects[-1], b.count)
    chart.texts.append(_Text(chart.width / 2, chart.height - 4, "days", "middle", "axis-label"))
    _empty_note(chart, "no request answered yet")
    return chart


def backlog_chart(metrics: Metrics) -> Chart:
    chart = Chart("backlog", f"Open requests at each month end, {metrics.year}",
                  "Requests received but not yet answered at the end of each month (the current month: today).")
    known = [b for b in metrics.backlog if b.open is not None]
    plot_h, scale, slot = _axes(chart, nice_ticks(max((b.open or 0 for b in known), default=0)), _MONTHS)
    for i, b in enumerate(metrics.backlog):
        if b.open is None:
            continue
        x, y = round(_LEFT + slot * (i + 0.5), 2), round(_TOP + plot_h - b.open * scale, 2)
        chart.points.append((x, y, f"{b.month_end.isoformat()}: {b.open} open"))
    chart.polyline = " ".join(f"{x},{y}" for x, y, _ in chart.points)
    return chart


def _template() -> jinja2.Template:
    env = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    source = importlib.resources.files("erasure").joinpath("report_template.html").read_text(encoding="utf-8")
    return env.from_string(source)


def _fmt_days(value: float | None, none: str = "\u2013") -> str:
    if value is None:
        return none
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def render_html(metrics: Metrics, *, generated_at: dt.datetime, organisation: str = "") -> str:
    """The yearly report as one HTML document with inline SVG charts and no external references."""
    return _template().render(
        m=metrics,
        organisation=organisation,
        generated_at=_utc(generated_at),
        charts=[month_chart(metrics), days_chart(metrics), backlog_chart(metrics)],
        fmt_days=_fmt_days,
        line_colour=_LINE_COLOUR,
        labels=REGULATION_LABELS,
    )
