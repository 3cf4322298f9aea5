"""When a request must be acknowledged and answered: the one place deadlines are computed.

Every due date the tool shows, sorts by, warns about or writes into a letter
comes from :func:`deadlines_for`, so the register, ``requests list --overdue``
and the reply templates can never disagree about what "late" means.

The rules, and the choices this module makes where the law leaves room:

* **Receipt date.** Periods run from the office-local calendar day on which the
  request was received (``policy.time_zone``). The caller passes the mailbox
  arrival time, else the time of intake (:func:`receipt_time` picks).

* **GDPR, Art. 12(3).** Answer "within one month of receipt". Counted as the
  EU rule on periods (Regulation 1182/71, Art. 3(1) and 3(2)(c)) counts it: the
  period ends on the same date of the following month, or on that month's last
  day when the date does not exist there. The design doc's phrase "day of
  receipt counts as day 1" (the UK ICO's wording) gives the same date: received
  15 March, due 15 April; received 31 January, due 28 (or 29) February. It
  rules out the two plausible mistakes, starting the count the next day
  (16 April) or stopping a day short (14 April).
  Extension: "two further months", counted from the original due date (31 Jan
  -> 28 Feb -> 28 Apr). Counting three months from receipt would give 30 April
  instead; the chained count is never later, so it is the safe reading.

* **CCPA, 11 CCR 7021.** Confirm receipt "no later than 10 business days after
  receipt" and answer "no later than 45 calendar days after receipt"; an
  extension adds up to 45 more, "a maximum total of 90 calendar days from the
  day the request is received". Calendar days are counted the Californian way
  (Civil Code section 10: exclude the first day, include the last), so the day
  of receipt is day 0 and the answer is due on receipt + 45. Business days
  start with the first business day after receipt; Saturdays, Sundays and the
  dates in ``policy.holidays`` are skipped.

* **Processor role (GDPR Art. 28(3)(e); CCPA service provider, 11 CCR 7051).**
  A processor answers its controller, not the data subject: it owes help
  "insofar as this is possible" within the controller's own deadline, which
  started when the data subject wrote to the controller. When the controller
  says when that was (``Received on: YYYY-MM-DD`` in the forwarding mail, or
  ``requests add --received-on``), the controller's legal date is computed with
  the rules above from that day, and our own contractual date is
  ``policy.processor_response_days`` calendar days from our receipt (the data
  processing agreement's period; receipt is day 0, as for CCPA). The request
  is due on the earlier of the two: a request forwarded on day 25 of the
  controller's month is due on the controller's day 30, not on our day 55.
  Without that date only our own receipt is known and the rules above apply
  unchanged. In the controller role the date is the day the request first
  reached the organisation (a letter logged before it was typed in): the
  legal period runs from it when it is earlier.

* **No rolling forward.** Regulation 1182/71 Art. 3(4) and California Civil
  Code sections 10 and 12a both move a deadline that falls on a weekend or holiday to the next
  working day. We do not: the earlier date is never late under either rule,
  and an officer's reminder should not depend on which holidays are configured.

Everything here is a pure function of its arguments: no clock, and no I/O
beyond zoneinfo reading the system's time zone database. Callers
that need "today" take it as ``received_date(now, policy)`` so that overdue
checks use the same office time zone as the due dates.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from erasure.errors import ConfigError
from erasure.vocabulary import Regulation


class DeadlinePolicy(Protocol):
    """The ``[policy]`` settings the deadlines are computed from (config.PolicySettings has them).

    A protocol rather than an import, so config may use this module to check its settings
    at load without the two importing each other.
    """

    @property
    def time_zone(self) -> str: ...
    @property
    def holidays(self) -> tuple[str, ...]: ...
    @property
    def ack_business_days(self) -> int: ...
    @property
    def ccpa_days(self) -> int: ...
    @property
    def ccpa_extension_days(self) -> int: ...
    @property
    def gdpr_extension_months(self) -> int: ...
    @property
    def role(self) -> str: ...
    @property
    def processor_response_days(self) -> int: ...


__all__ = [
    "Deadlines",
    "RequestDates",
    "add_business_days",
    "add_months",
    "controller_due_date",
    "controller_receipt_problem",
    "days_left",
    "deadlines_for",
    "extension_allowed",
    "format_date",
    "is_overdue",
    "number_in_words",
    "parse_holidays",
    "receipt_time",
    "received_date",
    "request_dates",
]

GDPR_MONTHS = 1  # Art. 12(3): "within one month of receipt"; fixed by law, not a setting

_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True)
class Deadlines:
    """The dates one request must meet, all office-local calendar dates.

    An extension has to be announced (with reasons) no later than ``respond_by``
    under both regulations (Art. 12(3) GDPR; 7021(b) CCPA): see
    :func:`extension_allowed`.
    """

    received_on: date
    acknowledge_by: date | None
    respond_by: date
    extended_to: date | None

    @property
    def due(self) -> date:
        """The date that counts now: the extended one once an extension was given."""
        return effective_due(self.respond_by, self.extended_to)


# ---------------------------------------------------------------- receipt


def receipt_time(arrived_at: datetime | None, intake_at: datetime, *, received_on: date | None = None,
                 policy: DeadlinePolicy | None = None) -> datetime:
    """The moment the clock starts: mailbox arrival, else the day an officer says it came, else the time of intake.

    Both regulations count from receipt, and a request is received when it
    reaches the mailbox, not when this tool gets round to reading it. Letters,
    calls and web forms have no arrival time: the officer gives the office-local
    day they arrived (``received_on``, with ``policy`` for the time zone), and the
    request is dated noon of that day (a time every office day has, DST or
    not), or the intake time itself when that is the same day. Without it, the
    intake time is used. If a clock puts the arrival after the intake, the
    earlier of the two is taken: a deadline that starts too early is never
    missed. Naive datetimes are taken as UTC.
    """
    intake = _aware(intake_at)
    if received_on is not None:
        if policy is None:
            raise TypeError("receipt_time(received_on=...) needs the policy for its time zone")
        if received_date(intake, policy) == received_on:
            return intake
        noon = datetime.combine(received_on, time(12), tzinfo=office_zone(policy.time_zone)).astimezone(UTC)
        return min(noon, intake)
    if arrived_at is None:
        return intake
    return min(_aware(arrived_at), intake)


def receipt_date_problem(received_on: date, today: date) -> str | None:
    """Why an officer's receipt date cannot be right, or None: a request cannot reach us after today."""
    if received_on > today:
        return (f"{received_on.isoformat()} is after today ({today.isoformat()}, office time); give the day the "
                "letter, call or form reached us")
    return None


def received_date(received_at: datetime, policy: DeadlinePolicy) -> date:
    """The office-local calendar date of a moment; naive datetimes are UTC.

    Deadlines are counted in whole calendar days where the office is: a mail
    arriving at 23:30 UTC on 31 March reached a Berlin office on 1 April.
    """
    return _aware(received_at).astimezone(office_zone(policy.time_zone)).date()


def _aware(moment: datetime) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"expected a datetime, got {type(moment).__name__} {moment!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    return moment


def office_zone(name: str) -> ZoneInfo:
    """The office time zone named by policy.time_zone; a ConfigError naming the key when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"policy.time_zone = {name!r} is not an IANA time zone; use a name such as \"Europe/Berlin\""
        ) from None


def parse_holidays(values: Iterable[str]) -> frozenset[date]:
    """``policy.holidays`` as dates; a ConfigError names the first bad entry.

    Exposed so that config validation can reject a typo at load time instead
    of at the first CCPA request.
    """
    days: set[date] = set()
    for i, value in enumerate(values):
        try:
            days.add(date.fromisoformat(value))
        except (TypeError, ValueError):
            raise ConfigError(
                f"policy.holidays[{i}] = {value!r} is not a date; write it as \"YYYY-MM-DD\""
            ) from None
    return frozenset(days)


# ---------------------------------------------------------------- deadlines


def deadlines_for(
    regulation: Literal["gdpr", "ccpa"],
    received_at: datetime,
    policy: DeadlinePolicy,
    *,
    extended: bool = False,
) -> Deadlines:
    """The acknowledgement, answer and extended dates for a request received at ``received_at``.

    GDPR Art. 12(3): one month (:func:`add_months`), extended by
    ``policy.gdpr_extension_months`` counted from the original due date; no
    separate acknowledgement duty. CCPA 11 CCR 7021: acknowledge within
    ``policy.ack_business_days`` business days, answer within
    ``policy.ccpa_days`` calendar days (receipt is day 0), extended by
    ``policy.ccpa_extension_days`` counted from the original due date.
    """
    received_on = received_date(received_at, policy)
    if regulation == Regulation.GDPR:
        respond_by = add_months(received_on, GDPR_MONTHS)
        return Deadlines(
            received_on=received_on,
            acknowledge_by=None,
            respond_by=respond_by,
            extended_to=add_months(respond_by, policy.gdpr_extension_months) if extended else None,
        )
    if regulation == Regulation.CCPA:
        respond_by = received_on + timedelta(days=policy.ccpa_days)
        return Deadlines(
            received_on=received_on,
            acknowledge_by=add_business_days(received_on, policy.ack_business_days, parse_holidays(policy.holidays)),
            respond_by=respond_by,
            extended_to=respond_by + timedelta(days=policy.ccpa_extension_days) if extended else None,
        )
    raise ValueError(f"unknown regulation {regulation!r}; expected 'gdpr' or 'ccpa'")


def controller_due_date(regulation: Literal["gdpr", "ccpa"], controller_received_on: date,
                        policy: DeadlinePolicy) -> date:
    """The controller's legal answer date, counted from the day the data subject's request reached it.

    The same rules as :func:`deadlines_for` (GDPR Art. 12(3): one month; CCPA
    7021(b): ``policy.ccpa_days`` calendar days), from the controller's receipt.
    """
    if regulation == Regulation.GDPR:
        return add_months(controller_received_on, GDPR_MONTHS)
    if regulation == Regulation.CCPA:
        return controller_received_on + timedelta(days=policy.ccpa_days)
    raise ValueError(f"unknown regulation {regulation!r}; expected 'gdpr' or 'ccpa'")


def controller_receipt_problem(controller_received_on: date, received_on: date) -> str | None:
    """Why a stated controller receipt date cannot be used, or None.

    A request cannot reach the controller after it reached us: such a date is a
    typo or a lie, and a guess either way would move a legal deadline. Taking
    our own receipt instead would hide the doubt, so a person looks.
    """
    if controller_received_on > received_on:
        return (f"the controller's receipt date {controller_received_on.isoformat()} is after the day the "
                f"request reached us ({received_on.isoformat()}); check the date with the customer")
    return None


@dataclass(frozen=True)
class RequestDates:
    """The dates stored on a new request: ours, and the controller's where it is known."""

    deadlines: Deadlines  # from our receipt; acknowledge_by and extensions are counted from it
    due_on: date  # the date the request must be answered by
    controller_received_on: date | None
    controller_due_on: date | None


def request_dates(
    regulation: Literal["gdpr", "ccpa"],
    received_at: datetime,
    policy: DeadlinePolicy,
    *,
    controller_received_on: date | None = None,
) -> RequestDates:
    """The due date of a new request in the configured role (see the module docstring).

    Processor role with the controller's receipt date known: the earlier of the
    controller's legal date and ``policy.processor_response_days`` from our
    receipt. Controller role: the legal date from the earlier of the two
    receipts. Without the controller's date, :func:`deadlines_for` alone. The
    caller checks :func:`controller_receipt_problem` first; a later controller
    date is never allowed to move the due date later here either.
    """
    own = deadlines_for(regulation, received_at, policy)
    if controller_received_on is None:
        return RequestDates(own, own.respond_by, None, None)
    controller_due = controller_due_date(regulation, controller_received_on, policy)
    if policy.role == "processor":
        ours = own.received_on + timedelta(days=policy.processor_response_days)
        due_on = min(controller_due, ours)
    else:
        due_on = min(controller_due, own.respond_by)
    return RequestDates(own, due_on, controller_received_on, controller_due)


def extension_allowed(deadlines: Deadlines, today: date) -> bool:
    """Whether an extension may still be given today.

    Only once, and only while the original period runs: GDPR Art. 12(3) wants
    the requester told "within one month of receipt", CCPA 7021(b) within the
    first 45 days.
    """
    return deadlines.extended_to is None and today <= deadlines.respond_by


def effective_due(due_on: date, extended_to: date | None) -> date:
    """The date a request must be answered by: the extended date once an extension was given, else the original one."""
    return extended_to or due_on


# ---------------------------------------------------------------- calendar arithmetic


def add_months(d: date, months: int) -> date:
    """The same date ``months`` later, or that month's last day when the date does not exist.

    This is Regulation 1182/71 Art. 3(2)(c) for periods in months (31 January
    + 1 month = 28 February, or 29 in a leap year). Negative ``months`` count
    back the same way, for retention periods.
    """
    index = d.year * 12 + (d.month - 1) + months
    year, month0 = divmod(index, 12)
    if not date.min.year <= year <= date.max.year:
        raise ValueError(f"{d.isoformat()} {months:+d} months is outside the calendar Python can represent")
    month = month0 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def add_business_days(d: date, days: int, holidays: Iterable[date]) -> date:
    """The ``days``-th business day after ``d``: weekends and ``holidays`` do not count.

    CCPA 7021(a) "no later than 10 business days after receiving": the day of
    receipt is not counted even if it is a business day, and a request that
    arrives on a Saturday has the following Monday as its first business day.
    ``days = 0`` returns ``d`` itself.
    """
    if days < 0:
        raise ValueError(f"business days must not be negative, got {days}")
    closed = frozenset(holidays)
    current = d
    counted = 0
    while counted < days:
        current += timedelta(days=1)
        if current.weekday() < 5 and current not in closed:
            counted += 1
    return current


def days_left(due: date, today: date) -> int:
    """Calendar days until ``due``: 0 on the due date itself, negative once overdue."""
    return (due - today).days


def is_overdue(due: date, today: date) -> bool:
    """A request answered on its due date is on time; from the next day on it is late."""
    return today > due


# ---------------------------------------------------------------- wording for letters


def format_date(d: date) -> str:
    """"29 November 2026": unambiguous on both sides of the Atlantic and independent of locale.

    ``strftime`` would follow the process locale, and a legal notice must not
    change language with the server it runs on.
    """
    return f"{d.day} {_MONTH_NAMES[d.month - 1]} {d.year}"


_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
    "seventeen", "eighteen", "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
# Short scale, as in current British and American usage: a billion is 10**9.
_SCALES = ("", "thousand", "million", "billion", "trillion", "quadrillion", "quintillion")
_WORDS_LIMIT = 1000 ** len(_SCALES)


def number_in_words(n: int) -> str:
    """A count in English words for letters ("twelve thousand and three views").

    Figures in a letter can be misread or altered; words next to them cannot.
    British usage: "and" before the last part below a hundred ("one hundred
    and five", "one million and one"), hyphens in 21-99, no commas, short scale.
    Works up to 10**21 - 1; negative numbers are not counts and raise ValueError.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"expected an int, got {type(n).__name__} {n!r}")
    if n < 0:
        raise ValueError(f"cannot write {n} as a count: it is negative")
    if n >= _WORDS_LIMIT:
        raise ValueError(f"{n} is too large to write in words (limit {_WORDS_LIMIT - 1})")
    if n == 0:
        return "zero"
    groups: list[int] = []  # three-digit groups, least significant first
    while n:
        n, group = divmod(n, 1000)
        groups.append(group)
    parts: list[str] = []
    for scale in range(len(groups) - 1, -1, -1):
        group = groups[scale]
        if group == 0:
            continue
        words = _below_thousand(group)
        if scale:
            words = f"{words} {_SCALES[scale]}"
        elif group < 100 and parts:
            words = f"and {words}"
        parts.append(words)
    return " ".join(parts)


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    if not hundreds:
        return _below_hundred(rest)
    if not rest:
        return f"{_ONES[hundreds]} hundred"
    return f"{_ONES[hundreds]} hundred and {_below_hundred(rest)}"


def _below_hundred(n: int) -> str:
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] if not ones else f"{_TENS[tens]}-{_ONES[ones]}"
