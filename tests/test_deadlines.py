"""Deadlines: GDPR Art. 12(3) months, CCPA 7021 days and business days, office time zones.

Expected dates in the tables are worked out by hand from a calendar, not by
calling the code under test; the comment on a row says why it is interesting.
"""

from __future__ import annotations

import calendar
import itertools
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC as UTC_ZONE
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure.config import PolicySettings, config_from_dict
from erasure.deadlines import (
    Deadlines,
    add_business_days,
    add_months,
    days_left,
    deadlines_for,
    extension_allowed,
    format_date,
    is_overdue,
    number_in_words,
    parse_holidays,
    receipt_time,
    received_date,
)
from erasure.errors import ConfigError

UTC = PolicySettings(time_zone="UTC")
BERLIN = PolicySettings(time_zone="Europe/Berlin")
LOS_ANGELES = PolicySettings(time_zone="America/Los_Angeles")

THANKSGIVING_2026 = ("2026-11-26", "2026-11-27")  # Thursday and Friday
WINTER_2026 = ("2026-12-25", "2027-01-01")  # both Fridays


def d(text: str) -> date:
    return date.fromisoformat(text)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC_ZONE)


def noon(text: str) -> datetime:
    """Midday UTC: the same calendar date in every office time zone used below."""
    return utc(f"{text}T12:00")


# ---------------------------------------------------------------- GDPR


GDPR_CASES = [
    # received, respond_by, extended_to (two further months from respond_by)
    pytest.param("2026-03-15", "2026-04-15", "2026-06-15", id="mid-month-same-date"),
    pytest.param("2026-01-31", "2026-02-28", "2026-04-28", id="jan31-to-feb28-non-leap"),
    pytest.param("2024-01-31", "2024-02-29", "2024-04-29", id="jan31-to-feb29-leap"),
    pytest.param("2026-01-29", "2026-02-28", "2026-04-28", id="jan29-non-leap-clamps"),
    pytest.param("2024-01-29", "2024-02-29", "2024-04-29", id="jan29-leap-exists"),
    pytest.param("2026-01-28", "2026-02-28", "2026-04-28", id="jan28-exists-in-every-feb"),
    pytest.param("2026-02-28", "2026-03-28", "2026-05-28", id="feb28-stays-28-not-month-end"),
    pytest.param("2024-02-29", "2024-03-29", "2024-05-29", id="leap-day-received"),
    pytest.param("2026-03-31", "2026-04-30", "2026-06-30", id="mar31-to-apr30"),
    pytest.param("2026-05-31", "2026-06-30", "2026-08-30", id="extension-chains-from-clamped-date"),
    pytest.param("2026-10-31", "2026-11-30", "2027-01-30", id="extension-crosses-year"),
    pytest.param("2026-11-30", "2026-12-30", "2027-02-28", id="extension-into-short-feb"),
    pytest.param("2027-11-30", "2027-12-30", "2028-02-29", id="extension-into-leap-feb"),
    pytest.param("2026-12-15", "2027-01-15", "2027-03-15", id="dec-to-jan-year-change"),
    pytest.param("2026-12-31", "2027-01-31", "2027-03-31", id="dec31-to-jan31"),
    pytest.param("2100-01-31", "2100-02-28", "2100-04-28", id="century-not-leap"),
    pytest.param("2000-01-31", "2000-02-29", "2000-04-29", id="400-year-leap"),
    pytest.param("2026-01-01", "2026-02-01", "2026-04-01", id="first-of-month"),
]


@pytest.mark.parametrize(("received", "respond_by", "extended_to"), GDPR_CASES)
def test_gdpr_answer_is_due_the_same_date_next_month_or_its_last_day(received: str, respond_by: str, extended_to: str) -> None:
    deadlines = deadlines_for("gdpr", noon(received), UTC)
    assert deadlines == Deadlines(received_on=d(received), acknowledge_by=None, respond_by=d(respond_by), extended_to=None)
    assert deadlines.due == d(respond_by)


@pytest.mark.parametrize(("received", "respond_by", "extended_to"), GDPR_CASES)
def test_gdpr_extension_adds_two_months_to_the_original_due_date(received: str, respond_by: str, extended_to: str) -> None:
    deadlines = deadlines_for("gdpr", noon(received), UTC, extended=True)
    assert deadlines.respond_by == d(respond_by)
    assert deadlines.extended_to == d(extended_to)
    assert deadlines.due == d(extended_to)


def test_gdpr_extension_counted_from_due_date_is_earlier_than_three_months_from_receipt() -> None:
    # The documented choice: 31 Jan -> 28 Feb -> 28 Apr, not 30 Apr.
    deadlines = deadlines_for("gdpr", noon("2026-01-31"), UTC, extended=True)
    assert deadlines.extended_to == d("2026-04-28")
    assert add_months(d("2026-01-31"), 3) == d("2026-04-30")


def test_gdpr_due_date_on_a_weekend_is_not_moved_to_the_next_working_day() -> None:
    # 28 February 2026 is a Saturday; the earlier date is never late.
    assert d("2026-02-28").weekday() == 5
    assert deadlines_for("gdpr", noon("2026-01-31"), UTC).respond_by == d("2026-02-28")


def test_gdpr_extension_length_comes_from_the_policy() -> None:
    policy = PolicySettings(gdpr_extension_months=1)
    assert deadlines_for("gdpr", noon("2026-03-15"), policy, extended=True).extended_to == d("2026-05-15")


def test_gdpr_ignores_ccpa_holidays_and_has_no_acknowledgement_date() -> None:
    policy = PolicySettings(holidays=("2026-04-15",))
    deadlines = deadlines_for("gdpr", noon("2026-03-15"), policy)
    assert deadlines.acknowledge_by is None
    assert deadlines.respond_by == d("2026-04-15")


# ---------------------------------------------------------------- CCPA


CCPA_CASES = [
    # received, holidays, acknowledge_by (10 business days), respond_by (+45), extended_to (+45 more)
    pytest.param("2026-03-02", (), "2026-03-16", "2026-04-16", "2026-05-31", id="monday-two-weeks"),
    pytest.param("2026-03-06", (), "2026-03-20", "2026-04-20", "2026-06-04", id="friday-counts-from-monday"),
    pytest.param("2026-03-07", (), "2026-03-20", "2026-04-21", "2026-06-05", id="saturday-first-business-day-monday"),
    pytest.param("2026-03-08", (), "2026-03-20", "2026-04-22", "2026-06-06", id="sunday-first-business-day-monday"),
    pytest.param("2026-11-23", (), "2026-12-07", "2027-01-07", "2027-02-21", id="thanksgiving-week-no-holidays"),
    pytest.param("2026-11-23", THANKSGIVING_2026, "2026-12-09", "2027-01-07", "2027-02-21", id="thanksgiving-holidays-skipped"),
    pytest.param("2026-11-26", THANKSGIVING_2026, "2026-12-11", "2027-01-10", "2027-02-24", id="received-on-a-holiday"),
    pytest.param("2026-12-24", (), "2027-01-07", "2027-02-07", "2027-03-24", id="dec-to-jan-no-holidays"),
    pytest.param("2026-12-24", WINTER_2026, "2027-01-11", "2027-02-07", "2027-03-24", id="christmas-and-new-year-skipped"),
    pytest.param("2026-03-02", ("2026-03-14", "2026-03-15"), "2026-03-16", "2026-04-16", "2026-05-31", id="holiday-on-weekend-changes-nothing"),
    pytest.param("2024-02-01", (), "2024-02-15", "2024-03-17", "2024-05-01", id="leap-february"),
    pytest.param("2026-02-01", (), "2026-02-13", "2026-03-18", "2026-05-02", id="non-leap-february"),
]


@pytest.mark.parametrize(("received", "holidays", "acknowledge_by", "respond_by", "extended_to"), CCPA_CASES)
def test_ccpa_acknowledge_in_business_days_answer_in_calendar_days(
    received: str, holidays: tuple[str, ...], acknowledge_by: str, respond_by: str, extended_to: str
) -> None:
    policy = PolicySettings(holidays=holidays)
    deadlines = deadlines_for("ccpa", noon(received), policy)
    assert deadlines == Deadlines(
        received_on=d(received), acknowledge_by=d(acknowledge_by), respond_by=d(respond_by), extended_to=None
    )


@pytest.mark.parametrize(("received", "holidays", "acknowledge_by", "respond_by", "extended_to"), CCPA_CASES)
def test_ccpa_extension_ends_ninety_days_after_receipt(
    received: str, holidays: tuple[str, ...], acknowledge_by: str, respond_by: str, extended_to: str
) -> None:
    deadlines = deadlines_for("ccpa", noon(received), PolicySettings(holidays=holidays), extended=True)
    assert deadlines.extended_to == d(extended_to)
    assert deadlines.due == d(extended_to)
    assert (deadlines.due - d(received)).days == 90


def test_ccpa_day_of_receipt_is_day_zero() -> None:
    deadlines = deadlines_for("ccpa", noon("2026-03-02"), UTC)
    assert (deadlines.respond_by - deadlines.received_on).days == 45


def test_ccpa_periods_come_from_the_policy() -> None:
    policy = PolicySettings(ccpa_days=30, ccpa_extension_days=15, ack_business_days=5)
    deadlines = deadlines_for("ccpa", noon("2026-03-02"), policy, extended=True)
    assert deadlines.acknowledge_by == d("2026-03-09")
    assert deadlines.respond_by == d("2026-04-01")
    assert deadlines.extended_to == d("2026-04-16")


def test_holidays_from_a_loaded_config_are_used() -> None:
    config = config_from_dict({"policy": {"holidays": list(THANKSGIVING_2026), "time_zone": "America/Los_Angeles"}})
    assert deadlines_for("ccpa", noon("2026-11-23"), config.policy).acknowledge_by == d("2026-12-09")


# ---------------------------------------------------------------- business days


BUSINESS_DAY_CASES = [
    # start, days, holidays, expected
    pytest.param("2026-03-06", 0, (), "2026-03-06", id="zero-days-is-the-same-day"),
    pytest.param("2026-03-02", 1, (), "2026-03-03", id="next-day"),
    pytest.param("2026-03-06", 1, (), "2026-03-09", id="friday-plus-one-is-monday"),
    pytest.param("2026-03-07", 1, (), "2026-03-09", id="saturday-plus-one-is-monday"),
    pytest.param("2026-03-06", 1, ("2026-03-09",), "2026-03-10", id="holiday-monday-skipped"),
    pytest.param("2026-03-02", 5, (), "2026-03-09", id="one-week"),
    pytest.param("2026-12-24", 2, WINTER_2026, "2026-12-29", id="christmas-friday-skipped"),
    pytest.param("2026-12-31", 1, WINTER_2026, "2027-01-04", id="new-year-and-weekend-skipped"),
]


@pytest.mark.parametrize(("start", "days", "holidays", "expected"), BUSINESS_DAY_CASES)
def test_add_business_days_skips_weekends_and_holidays(start: str, days: int, holidays: tuple[str, ...], expected: str) -> None:
    assert add_business_days(d(start), days, [d(h) for h in holidays]) == d(expected)


def test_add_business_days_accepts_any_iterable_of_holidays() -> None:
    holidays = (d(h) for h in THANKSGIVING_2026)  # a generator, consumed once
    assert add_business_days(d("2026-11-25"), 1, holidays) == d("2026-11-30")


def test_negative_business_days_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        add_business_days(d("2026-03-02"), -1, ())


# ---------------------------------------------------------------- time zones


TIME_ZONE_CASES = [
    # instant (UTC unless it carries an offset), office zone, office-local date
    pytest.param(utc("2026-03-31T23:30"), "Europe/Berlin", "2026-04-01", id="berlin-already-next-day"),
    pytest.param(utc("2026-03-31T23:30"), "America/Los_Angeles", "2026-03-31", id="los-angeles-same-day"),
    pytest.param(utc("2026-03-31T23:30"), "UTC", "2026-03-31", id="utc"),
    pytest.param(datetime(2026, 3, 31, 23, 30), "Europe/Berlin", "2026-04-01", id="naive-is-utc"),
    pytest.param(datetime(2026, 4, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))), "UTC", "2026-03-31", id="offset-input-converted"),
    pytest.param(utc("2026-03-28T23:30"), "Europe/Berlin", "2026-03-29", id="berlin-before-spring-dst-cet"),
    pytest.param(utc("2026-03-29T22:30"), "Europe/Berlin", "2026-03-30", id="berlin-after-spring-dst-cest"),
    pytest.param(utc("2026-10-24T22:30"), "Europe/Berlin", "2026-10-25", id="berlin-before-autumn-dst-cest"),
    pytest.param(utc("2026-10-25T22:30"), "Europe/Berlin", "2026-10-25", id="berlin-after-autumn-dst-cet"),
    pytest.param(utc("2026-03-09T07:30"), "America/Los_Angeles", "2026-03-09", id="los-angeles-after-spring-dst-pdt"),
    pytest.param(utc("2026-11-02T07:30"), "America/Los_Angeles", "2026-11-01", id="los-angeles-after-autumn-dst-pst"),
    pytest.param(utc("2026-03-31T18:29:59"), "Asia/Kolkata", "2026-03-31", id="half-hour-offset-before-midnight"),
    pytest.param(utc("2026-03-31T18:30"), "Asia/Kolkata", "2026-04-01", id="half-hour-offset-at-midnight"),
    pytest.param(utc("2026-12-31T15:00"), "Asia/Tokyo", "2027-01-01", id="tokyo-new-year"),
    pytest.param(utc("2027-01-01T10:00"), "Pacific/Pago_Pago", "2026-12-31", id="samoa-still-old-year"),
]


@pytest.mark.parametrize(("instant", "zone", "local_date"), TIME_ZONE_CASES)
def test_received_date_is_the_office_local_calendar_date(instant: datetime, zone: str, local_date: str) -> None:
    assert received_date(instant, PolicySettings(time_zone=zone)) == d(local_date)


@pytest.mark.parametrize(
    ("policy", "received_on", "respond_by"),
    [
        pytest.param(BERLIN, "2026-04-01", "2026-05-01", id="berlin"),
        pytest.param(LOS_ANGELES, "2026-03-31", "2026-04-30", id="los-angeles"),
    ],
)
def test_gdpr_due_date_follows_the_office_time_zone(policy: PolicySettings, received_on: str, respond_by: str) -> None:
    deadlines = deadlines_for("gdpr", utc("2026-03-31T23:30"), policy)
    assert deadlines.received_on == d(received_on)
    assert deadlines.respond_by == d(respond_by)


@pytest.mark.parametrize(
    ("policy", "received_on", "acknowledge_by", "respond_by"),
    [
        # Friday evening in California is Saturday morning in Berlin.
        pytest.param(LOS_ANGELES, "2026-03-06", "2026-03-20", "2026-04-20", id="los-angeles-friday"),
        pytest.param(BERLIN, "2026-03-07", "2026-03-20", "2026-04-21", id="berlin-saturday"),
    ],
)
def test_ccpa_dates_follow_the_office_time_zone(policy: PolicySettings, received_on: str, acknowledge_by: str, respond_by: str) -> None:
    deadlines = deadlines_for("ccpa", utc("2026-03-06T23:30"), policy)
    assert (deadlines.received_on, deadlines.acknowledge_by, deadlines.respond_by) == (
        d(received_on),
        d(acknowledge_by),
        d(respond_by),
    )


@pytest.fixture
def server_in_new_york() -> Iterator[None]:
    """The host's own zone must not leak into deadlines: pretend the server runs in New York."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is POSIX-only")
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def test_naive_times_are_utc_whatever_the_server_zone(server_in_new_york: None) -> None:
    # 02:30 UTC on 1 April is still 31 March in New York; the office is in UTC.
    assert received_date(datetime(2026, 4, 1, 2, 30), UTC) == d("2026-04-01")
    assert receipt_time(None, datetime(2026, 4, 1, 2, 30)) == utc("2026-04-01T02:30")


# ---------------------------------------------------------------- receipt time


def test_receipt_time_prefers_the_mailbox_arrival() -> None:
    assert receipt_time(utc("2026-03-31T23:30"), utc("2026-04-01T08:00")) == utc("2026-03-31T23:30")


def test_receipt_time_falls_back_to_intake() -> None:
    assert receipt_time(None, utc("2026-04-01T08:00")) == utc("2026-04-01T08:00")


def test_receipt_time_takes_the_earlier_when_the_arrival_clock_is_ahead() -> None:
    assert receipt_time(utc("2026-04-01T08:05"), utc("2026-04-01T08:00")) == utc("2026-04-01T08:00")


def test_receipt_time_treats_naive_times_as_utc() -> None:
    assert receipt_time(datetime(2026, 3, 31, 23, 30), utc("2026-04-01T08:00")) == utc("2026-03-31T23:30")


# ---------------------------------------------------------------- overdue


@pytest.mark.parametrize(
    ("due", "today", "left", "overdue"),
    [
        pytest.param("2026-04-15", "2026-04-01", 14, False, id="two-weeks-left"),
        pytest.param("2026-04-15", "2026-04-14", 1, False, id="day-before"),
        pytest.param("2026-04-15", "2026-04-15", 0, False, id="due-date-itself-is-on-time"),
        pytest.param("2026-04-15", "2026-04-16", -1, True, id="day-after-is-overdue"),
        pytest.param("2026-12-31", "2027-01-02", -2, True, id="overdue-across-year"),
        pytest.param("2024-03-01", "2024-02-28", 2, False, id="leap-day-counts"),
    ],
)
def test_days_left_and_overdue(due: str, today: str, left: int, overdue: bool) -> None:
    assert days_left(d(due), d(today)) == left
    assert is_overdue(d(due), d(today)) is overdue


def test_extension_allowed_only_once_and_only_within_the_original_period() -> None:
    original = deadlines_for("gdpr", noon("2026-03-15"), UTC)
    extended = deadlines_for("gdpr", noon("2026-03-15"), UTC, extended=True)
    assert extension_allowed(original, d("2026-04-15"))
    assert not extension_allowed(original, d("2026-04-16"))
    assert not extension_allowed(extended, d("2026-04-01"))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "zone",
    [
        pytest.param("Mars/Olympus", id="unknown"),
        pytest.param("", id="empty"),
        pytest.param("../etc/passwd", id="path-traversal"),
    ],
)
def test_unknown_time_zone_is_a_config_error_naming_the_key(zone: str) -> None:
    with pytest.raises(ConfigError, match=rf"policy\.time_zone = {re.escape(repr(zone))} is not an IANA time zone"):
        received_date(utc("2026-03-31T23:30"), PolicySettings(time_zone=zone))


def test_bad_holiday_is_a_config_error_naming_the_entry() -> None:
    policy = PolicySettings(holidays=("2026-11-26", "2026-11-31"))
    with pytest.raises(ConfigError, match=r"policy\.holidays\[1\] = '2026-11-31' is not a date; write it as \"YYYY-MM-DD\""):
        deadlines_for("ccpa", noon("2026-11-23"), policy)


def test_parse_holidays_returns_dates() -> None:
    assert parse_holidays(THANKSGIVING_2026) == {d("2026-11-26"), d("2026-11-27")}


def test_unknown_regulation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown regulation 'lgpd'"):
        deadlines_for("lgpd", noon("2026-03-15"), UTC)  # type: ignore[arg-type]


def test_a_date_is_not_a_receipt_time() -> None:
    with pytest.raises(TypeError, match="expected a datetime"):
        received_date(d("2026-03-15"), UTC)  # type: ignore[arg-type]


def test_add_months_past_year_9999_says_so() -> None:
    with pytest.raises(ValueError, match="outside the calendar"):
        add_months(d("9999-12-31"), 1)


# ---------------------------------------------------------------- add_months


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        pytest.param("2026-01-31", 1, "2026-02-28", id="clamp-to-feb"),
        pytest.param("2026-01-31", 2, "2026-03-31", id="no-clamp-when-date-exists"),
        pytest.param("2026-11-15", 2, "2027-01-15", id="year-change"),
        pytest.param("2026-03-31", -1, "2026-02-28", id="backwards-clamps"),
        pytest.param("2027-01-15", -2, "2026-11-15", id="backwards-year-change"),
        pytest.param("2024-02-29", 12, "2025-02-28", id="leap-day-plus-a-year"),
        pytest.param("2024-02-29", 48, "2028-02-29", id="leap-day-plus-four-years"),
        pytest.param("2026-05-17", 0, "2026-05-17", id="zero"),
        pytest.param("2026-12-31", 24, "2028-12-31", id="record-retention-24-months"),
    ],
)
def test_add_months(start: str, months: int, expected: str) -> None:
    assert add_months(d(start), months) == d(expected)


# ---------------------------------------------------------------- wording for letters


@pytest.mark.parametrize(
    ("day", "text"),
    [
        pytest.param("2026-11-29", "29 November 2026", id="example"),
        pytest.param("2027-01-01", "1 January 2027", id="no-leading-zero"),
        pytest.param("2024-02-29", "29 February 2024", id="leap-day"),
        pytest.param("2026-05-09", "9 May 2026", id="may"),
        pytest.param("2026-09-30", "30 September 2026", id="september"),
    ],
)
def test_format_date(day: str, text: str) -> None:
    assert format_date(d(day)) == text


def test_format_date_names_every_month_in_english() -> None:
    names = [format_date(date(2026, m, 1)).split()[1] for m in range(1, 13)]
    assert names == [
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ]  # fmt: skip


NINES = "nine hundred and ninety-nine"
LARGE_SCALES = ("quintillion", "quadrillion", "trillion", "billion", "million", "thousand")


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (1, "one"),
        (7, "seven"),
        (13, "thirteen"),
        (20, "twenty"),
        (21, "twenty-one"),
        (45, "forty-five"),
        (99, "ninety-nine"),
        (100, "one hundred"),
        (101, "one hundred and one"),
        (110, "one hundred and ten"),
        (999, "nine hundred and ninety-nine"),
        (1000, "one thousand"),
        (1001, "one thousand and one"),
        (1010, "one thousand and ten"),
        (1100, "one thousand one hundred"),
        (1234, "one thousand two hundred and thirty-four"),
        (10_000, "ten thousand"),
        (12_003, "twelve thousand and three"),
        (100_000, "one hundred thousand"),
        (1_000_000, "one million"),
        (1_000_001, "one million and one"),
        (1_001_000, "one million one thousand"),
        (2_000_100, "two million one hundred"),
        (10**9, "one billion"),
        (10**12, "one trillion"),
        (10**12 + 3, "one trillion and three"),
        (999_999_999_999, " ".join(f"{NINES} {scale}" for scale in ("billion", "million", "thousand", ""))[:-1]),
        (10**21 - 1, " ".join(f"{NINES} {scale}" for scale in (*LARGE_SCALES, ""))[:-1]),
    ],
    ids=lambda v: str(v) if isinstance(v, int) else None,
)
def test_number_in_words(n: int, words: str) -> None:
    assert number_in_words(n) == words


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        pytest.param(-1, ValueError, "negative", id="negative"),
        pytest.param(10**21, ValueError, "too large", id="too-large"),
        pytest.param(True, TypeError, "expected an int", id="bool"),
        pytest.param(3.0, TypeError, "expected an int", id="float"),
    ],
)
def test_number_in_words_refuses_what_is_not_a_count(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        number_in_words(value)  # type: ignore[arg-type]


# ---------------------------------------------------------------- properties


dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31))
zones = st.sampled_from(
    ["UTC", "Europe/Berlin", "Europe/London", "America/Los_Angeles", "America/New_York",
     "Asia/Kolkata", "Asia/Tokyo", "Australia/Lord_Howe", "Pacific/Kiritimati", "Pacific/Pago_Pago"]
)  # fmt: skip
instants = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC_ZONE))
holiday_sets = st.frozensets(st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31)), max_size=12)


@given(dates, st.integers(min_value=-1200, max_value=1200))
def test_add_months_never_raises_and_keeps_the_date_or_the_month_end(start: date, months: int) -> None:
    result = add_months(start, months)
    assert (result.year * 12 + result.month) - (start.year * 12 + start.month) == months
    assert result.day == min(start.day, calendar.monthrange(result.year, result.month)[1])


@given(dates, dates, st.integers(min_value=-24, max_value=24))
def test_add_months_keeps_order(a: date, b: date, months: int) -> None:
    low, high = sorted((a, b))
    assert add_months(low, months) <= add_months(high, months)


@given(instants, zones)
def test_gdpr_answer_due_28_to_31_days_after_receipt(instant: datetime, zone: str) -> None:
    deadlines = deadlines_for("gdpr", instant, PolicySettings(time_zone=zone), extended=True)
    assert 28 <= (deadlines.respond_by - deadlines.received_on).days <= 31
    assert deadlines.received_on < deadlines.respond_by < deadlines.due
    # Counting the extension from the due date is never later than three months from receipt.
    assert deadlines.due <= add_months(deadlines.received_on, 3)


@given(instants, zones, holiday_sets)
def test_ccpa_due_dates_are_after_receipt(instant: datetime, zone: str, holidays: frozenset[date]) -> None:
    policy = PolicySettings(time_zone=zone, holidays=tuple(h.isoformat() for h in holidays))
    deadlines = deadlines_for("ccpa", instant, policy, extended=True)
    assert deadlines.acknowledge_by is not None
    assert deadlines.received_on < deadlines.acknowledge_by < deadlines.respond_by < deadlines.due
    assert (deadlines.due - deadlines.received_on).days == 90


@given(dates, st.integers(min_value=0, max_value=30), holiday_sets)
def test_business_days_land_on_a_business_day_after_exactly_that_many(start: date, days: int, holidays: frozenset[date]) -> None:
    end = add_business_days(start, days, holidays)
    between = [start + timedelta(days=i) for i in range(1, (end - start).days + 1)]
    assert sum(1 for day in between if day.weekday() < 5 and day not in holidays) == days
    if days:
        assert end.weekday() < 5 and end not in holidays


@given(instants, zones)
def test_office_date_is_within_a_day_of_the_utc_date(instant: datetime, zone: str) -> None:
    local = received_date(instant, PolicySettings(time_zone=zone))
    assert abs((local - instant.date()).days) <= 1


@given(dates, dates)
def test_overdue_exactly_when_no_days_are_left(due: date, today: date) -> None:
    assert is_overdue(due, today) == (days_left(due, today) < 0)


_SMALL = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)  # fmt: skip
_DECADES = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_VALUES = {word: i for i, word in enumerate(_SMALL)} | {word: 10 * i for i, word in enumerate(_DECADES, start=2)}
_SCALE_VALUES = {word: 1000**i for i, word in enumerate(reversed(LARGE_SCALES), start=1)}


def _read_words(words: str) -> int:
    """An independent reader for the words, so the writer can be checked both ways."""
    total = current = 0
    for token in words.replace("-", " ").split():
        if token == "and":
            continue
        if token == "hundred":
            current *= 100
        elif token in _SCALE_VALUES:
            total += current * _SCALE_VALUES[token]
            current = 0
        else:
            current += _VALUES[token]
    return total + current


@given(st.integers(min_value=0, max_value=10**21 - 1) | st.integers(min_value=0, max_value=10**13))
def test_number_in_words_reads_back_as_the_same_number(n: int) -> None:
    words = number_in_words(n)
    assert _read_words(words) == n
    tokens = words.split(" ")
    assert "" not in tokens and tokens[0] != "and" and tokens[-1] != "and"
    assert all(not (a == b == "and") for a, b in itertools.pairwise(tokens))
    assert (n == 0) == ("zero" in words)
