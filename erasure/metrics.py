"""The yearly figures a business must be able to publish (CCPA regulations, 11 CCR 7102(a)).

Definitions (also printed in the report and in the README):

* A request belongs to the year in which it was **received**, counted in the
  office time zone (``policy.time_zone``), the same day deadlines count from.
  Its outcome is the one known when the report is generated; requests still
  open then are shown as *pending*. So ``received = complied + denied + pending``.
* **Complied with (in whole or in part)** = responses ``completed`` (views were
  erased) plus ``no_data_found`` (the request was answered: no data could be
  identified for the viewer ids given). Both are shown separately as well.
* **Denied** = ``rejected`` by an officer (reasons given, Art. 12(4) GDPR,
  7022(f) CCPA). A request whose ids were refused only in part, the rest
  erased, is complied with in part. **Denials by code** count rejected requests
  under each refusal code (``erasure.refusals``) they were refused on (one
  request refused on two grounds counts under both); ``not recorded`` is a
  rejection from before codes existed. Refusals in part are counted apart.
* **Request type** (7102(a)(1)(A)-(C)): ``kind`` ``erasure`` is a request to
  delete, ``access`` a request to know, anything else *other*. Every figure is
  given per type; the regulation tables add the types up.
* **All individuals** (7102(b)): when GDPR requests are counted too, the
  figures cover requests from all individuals, not only California consumers,
  and the report says so.
* **Days to respond** = office-local date of closing minus office-local date of
  receipt, for completed, no_data_found and rejected requests (so an answer on
  the day of receipt takes 0 days). Median and mean are over those requests.
* **Late** = answered after the date that counted (:func:`deadlines.effective_due`,
  judged by :func:`deadlines.is_overdue` on the date of the answer).
* **Ignored automatic mail** (auto-replies, bounces: status ``ignored``) is not
  a request; it is left out of every count above and shown on its own line.
* **Cancelled** requests (withdrawn by an officer before erasure began, because
  the requester withdrew them or they were entered twice) are left out of the
  counts too, since duplicates would inflate them, and shown on their own line.

Everything that computes a number is a pure function over :class:`RequestRow`
tuples, tested directly; only :func:`load_rows` (and :func:`yearly_metrics`,
which calls it) reads the database. The charts are drawn by
:mod:`erasure.charts`, the HTML page by :mod:`erasure.report`.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.deadlines import effective_due, is_overdue, office_zone
from erasure.errors import ConfigError
from erasure.refusals import REFUSALS
from erasure.models import ErasureRequest, RequestStatus, Subject

__all__ = [
    "DAY_BINS",
    "REGULATION_LABELS",
    "Backlog",
    "DayBin",
    "Metrics",
    "MonthCount",
    "RegulationMetrics",
    "REQUEST_TYPES",
    "RequestRow",
    "TypeMetrics",
    "request_type",
    "backlog_at_month_ends",
    "refusal_counts",
    "days_histogram",
    "days_to_respond",
    "format_days",
    "load_rows",
    "month_ends",
    "outcome_of",
    "regulation_metrics",
    "requests_per_month",
    "summarize",
    "yearly_metrics",
]

S = RequestStatus

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

#: How each regulation is named on the officer's screens: table, charts and the morning status.
REGULATION_LABELS = {"gdpr": "GDPR", "ccpa": "CCPA"}

#: The 7102(a)(1) request types this tool receives, in the order the regulation lists them,
#: with the request ``kind`` each stands for (any other kind is ``other``).
REQUEST_TYPES = {"delete": "Requests to delete", "know": "Requests to know", "other": "Other requests"}
_TYPE_OF_KIND = {"erasure": "delete", "access": "know"}

#: A rejection recorded before refusal codes existed.
NOT_RECORDED = "not recorded"


# ================================================================ rows


@dataclass(frozen=True)
class RequestRow:
    """What the metrics need of one request, with dates already in the office time zone."""

    received_on: dt.date
    regulation: str
    status: str
    response: str | None = None
    closed_on: dt.date | None = None
    due: dt.date | None = None  # deadlines.effective_due: the extended date once given
    kind: str = "erasure"
    # Refusal codes (erasure.refusals): a full rejection's, and those of ids refused in part.
    refusal_codes: tuple[str, ...] = ()


def request_type(row: RequestRow) -> str:
    """``delete``, ``know`` or ``other``: the 7102(a)(1) type a request counts under."""
    return _TYPE_OF_KIND.get(row.kind, "other")


def _local_date(moment: dt.datetime, zone: ZoneInfo) -> dt.date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(zone).date()


def load_rows(session: Session, *, time_zone: str = "UTC") -> list[RequestRow]:
    """Every request as a :class:`RequestRow`, in receipt order.

    The whole register is read: the state database keeps request records for
    24 months (7101), so this is thousands of rows, not millions, and the
    backlog chart needs requests from earlier years that were still open.
    """
    zone = office_zone(time_zone)
    codes: dict[int, list[str]] = {}
    for request_id, code in session.execute(
        select(Subject.request_id, Subject.refusal_code).where(Subject.refusal_code.is_not(None))
    ):
        codes.setdefault(request_id, []).append(code)
    stmt = select(
        ErasureRequest.id,
        ErasureRequest.refusal_code,
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
            due=effective_due(r.due_on, r.extended_to),
            kind=r.kind,
            refusal_codes=tuple(dict.fromkeys(c for c in (r.refusal_code, *codes.get(r.id, ())) if c)),
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
class TypeMetrics:
    """The 7102(a) figures for one request type (all regulations counted)."""

    type: str  # a key of REQUEST_TYPES
    figures: RegulationMetrics

    @property
    def label(self) -> str:
        return REQUEST_TYPES.get(self.type, self.type)

    def to_json(self) -> dict[str, Any]:
        data = self.figures.to_json()
        del data["regulation"]
        return {"type": self.type, **data}


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
    by_type: tuple[TypeMetrics, ...] = ()
    denials_by_code: dict[str, int] = field(default_factory=dict)
    partial_refusals_by_code: dict[str, int] = field(default_factory=dict)

    @property
    def all_individuals(self) -> bool:
        """True when requests under another law than the CCPA are in the figures (the 7102(b) statement)."""
        return any(r.received for r in self.by_regulation if r.regulation != "ccpa")

    @property
    def all_individuals_statement(self) -> str:
        """What 7102(b) asks a business to state when its figures are not limited to California consumers."""
        laws = ", ".join(r.label for r in self.by_regulation if r.received and r.regulation != "ccpa")
        return (f"These figures count requests from all individuals, including requests made under the {laws}, "
                "not only requests from California consumers (11 CCR \u00a7 7102(b)); the CCPA row counts the "
                "requests made under the CCPA. The figures for requests from consumers alone are compiled on request.")

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
             str(r.pending), str(r.late), format_days(r.median_days, "-"), format_days(r.mean_days, "-")]
            for r in (*self.by_regulation, self.total)
        ]
        widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]

        def line(cells: list[str]) -> str:
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        types = [
            [t.label, str(t.figures.received), str(t.figures.complied), str(t.figures.completed),
             str(t.figures.no_data_found), str(t.figures.denied), str(t.figures.pending), str(t.figures.late),
             format_days(t.figures.median_days, "-"), format_days(t.figures.mean_days, "-")]
            for t in self.by_type
        ]
        widths = [max(w, *(len(row[i]) for row in types)) if types else w for i, w in enumerate(widths)]
        period = "" if self.complete_year else " (year to date)"
        denials = ", ".join(f"{code} {n}" for code, n in self.denials_by_code.items()) or "none"
        partial = ", ".join(f"{code} {n}" for code, n in self.partial_refusals_by_code.items()) or "none"
        return "\n".join([
            f"Requests received in {self.year}{period}, {self.time_zone} dates, outcomes as of {self.as_of.isoformat()}",
            line(["request type", *headers[1:]]),
            line(["-" * w for w in widths]),
            *(line(row) for row in types),
            "",
            line(headers),
            line(["-" * w for w in widths]),
            *(line(row) for row in table),
            f"denied, by refusal code: {denials}",
            f"refused in part (the rest complied with), by refusal code: {partial}",
            f"not counted above: {self.ignored} ignored automatic mail, {self.cancelled} cancelled",
            ("complied = completed + no data found; denied = rejected; "
             "days to respond = date answered - date received (answered requests only)"),
            *([self.all_individuals_statement] if self.all_individuals else []),
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
            "by_type": {t.type: t.to_json() for t in self.by_type},
            "denials_by_code": dict(self.denials_by_code),
            "partial_refusals_by_code": dict(self.partial_refusals_by_code),
            "all_individuals": self.all_individuals,
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


def refusal_counts(rows: Iterable[RequestRow]) -> tuple[dict[str, int], dict[str, int]]:
    """(denials, refusals in part) by refusal code, in the order of ``erasure.refusals``.

    A rejected request counts once under each code it was refused on (``not
    recorded`` when it has none); a request complied with but with ids refused
    counts under each code of those ids.
    """
    denied: Counter[str] = Counter()
    partial: Counter[str] = Counter()
    for row in rows:
        outcome = outcome_of(row)
        if outcome == "rejected":
            denied.update(row.refusal_codes or (NOT_RECORDED,))
        elif outcome in COMPLIED and row.refusal_codes:
            partial.update(row.refusal_codes)
    order = {code: i for i, code in enumerate([*REFUSALS, NOT_RECORDED])}

    def ordered(c: Counter[str]) -> dict[str, int]:
        return dict(sorted(c.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))

    return ordered(denied), ordered(partial)


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
    denials, partial = refusal_counts(requests)
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
        by_type=tuple(TypeMetrics(t, regulation_metrics([r for r in requests if request_type(r) == t], "all"))
                      for t in REQUEST_TYPES),
        denials_by_code=denials,
        partial_refusals_by_code=partial,
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



def format_days(value: float | None, none: str = "\u2013") -> str:
    """A median or mean of days as people write it: "16.5", but "34" rather than "34.0"."""
    if value is None:
        return none
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
