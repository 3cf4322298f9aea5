"""Deadlines in the processor role: the controller's clock (GDPR Art. 28(3)(e), CCPA service providers).

Expected dates are worked out by hand from a calendar; the comment on a row
says why it is interesting.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure.config import PolicySettings
from erasure.deadlines import (
    controller_due_date,
    controller_receipt_problem,
    deadlines_for,
    request_dates,
)

PROCESSOR = PolicySettings(role="processor", processor_response_days=10)
CONTROLLER = PolicySettings(role="controller")


def at(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("regulation", "controller_received", "ours", "controller_due", "due"),
    [
        # The case: the viewer wrote on 20 Nov, the customer forwarded it on 15 Dec
        # (day 25 of its month). Our own 10 days (25 Dec) would be late; its month ends 20 Dec.
        ("gdpr", date(2026, 11, 20), date(2026, 12, 15), date(2026, 12, 20), date(2026, 12, 20)),
        # Forwarded promptly: our own 10 days come first.
        ("gdpr", date(2026, 11, 20), date(2026, 11, 21), date(2026, 12, 20), date(2026, 12, 1)),
        # Same day: 10 days < one month.
        ("gdpr", date(2026, 3, 2), date(2026, 3, 2), date(2026, 4, 2), date(2026, 3, 12)),
        # Month end: 31 January + 1 month = 28 February (2027 is not a leap year); forwarded 25 Feb.
        ("gdpr", date(2027, 1, 31), date(2027, 2, 25), date(2027, 2, 28), date(2027, 2, 28)),
        # Leap year: 31 January 2028 -> 29 February 2028.
        ("gdpr", date(2028, 1, 31), date(2028, 2, 24), date(2028, 2, 29), date(2028, 2, 29)),
        # 31 March -> 30 April; forwarded 28 April: due 30 April, not 8 May.
        ("gdpr", date(2026, 3, 31), date(2026, 4, 28), date(2026, 4, 30), date(2026, 4, 30)),
        # Across the year: 15 December -> 15 January.
        ("gdpr", date(2026, 12, 15), date(2027, 1, 10), date(2027, 1, 15), date(2027, 1, 15)),
        # Forwarded after the controller's month had already ended: due that (past) day, never later.
        ("gdpr", date(2026, 9, 1), date(2026, 10, 5), date(2026, 10, 1), date(2026, 10, 1)),
        # CCPA: 45 calendar days, receipt is day 0. 1 Nov + 45 = 16 Dec; forwarded 10 Dec -> 16 Dec.
        ("ccpa", date(2026, 11, 1), date(2026, 12, 10), date(2026, 12, 16), date(2026, 12, 16)),
        # CCPA forwarded on day 2: our 10 days (13 Nov) come first.
        ("ccpa", date(2026, 11, 1), date(2026, 11, 3), date(2026, 12, 16), date(2026, 11, 13)),
        # CCPA across February: 20 Jan 2027 + 45 = 6 Mar 2027.
        ("ccpa", date(2027, 1, 20), date(2027, 3, 1), date(2027, 3, 6), date(2027, 3, 6)),
    ],
)
def test_a_processor_is_due_by_the_earlier_of_the_controllers_deadline_and_its_own(
        regulation, controller_received, ours, controller_due, due):
    dates = request_dates(regulation, at(ours), PROCESSOR, controller_received_on=controller_received)
    assert controller_due_date(regulation, controller_received, PROCESSOR) == controller_due
    assert dates.controller_due_on == controller_due
    assert dates.controller_received_on == controller_received
    assert dates.due_on == due
    assert dates.deadlines == deadlines_for(regulation, at(ours), PROCESSOR)  # ack and extensions: from our receipt


@pytest.mark.parametrize("regulation", ["gdpr", "ccpa"])
def test_without_the_controllers_date_the_due_date_is_unchanged(regulation):
    received = at(date(2026, 11, 20))
    for policy in (PROCESSOR, CONTROLLER):
        dates = request_dates(regulation, received, policy)
        assert dates.due_on == deadlines_for(regulation, received, policy).respond_by
        assert dates.controller_due_on is None and dates.controller_received_on is None


def test_processor_response_days_is_the_contracts_period():
    policy = PolicySettings(role="processor", processor_response_days=3)
    dates = request_dates("gdpr", at(date(2026, 11, 27)), policy, controller_received_on=date(2026, 11, 26))
    assert dates.due_on == date(2026, 11, 30)  # 27 Nov + 3; receipt is day 0


@pytest.mark.parametrize(
    ("controller_received", "ours", "due"),
    [
        (date(2026, 11, 10), date(2026, 11, 20), date(2026, 12, 10)),  # a letter logged before it was typed in
        (date(2026, 11, 20), date(2026, 11, 20), date(2026, 12, 20)),  # same day: the ordinary month
        (date(2026, 1, 31), date(2026, 2, 3), date(2026, 2, 28)),  # month end from the earlier receipt
    ],
)
def test_a_controller_counts_from_the_earlier_receipt_and_ignores_the_processor_period(controller_received, ours, due):
    dates = request_dates("gdpr", at(ours), CONTROLLER, controller_received_on=controller_received)
    assert dates.due_on == due == dates.controller_due_on


def test_a_controller_receipt_after_ours_is_a_problem_not_a_guess():
    assert controller_receipt_problem(date(2026, 11, 20), date(2026, 11, 20)) is None
    assert controller_receipt_problem(date(2026, 11, 19), date(2026, 11, 20)) is None
    problem = controller_receipt_problem(date(2026, 11, 21), date(2026, 11, 20))
    assert problem is not None and "2026-11-21" in problem and "2026-11-20" in problem


@given(
    regulation=st.sampled_from(["gdpr", "ccpa"]),
    ours=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    lag=st.integers(min_value=0, max_value=400),
    days=st.integers(min_value=1, max_value=90),
)
def test_the_processors_due_date_never_passes_either_deadline(regulation, ours, lag, days):
    policy = PolicySettings(role="processor", processor_response_days=days)
    controller_received = ours - timedelta(days=lag)
    dates = request_dates(regulation, at(ours), policy, controller_received_on=controller_received)
    assert dates.due_on <= dates.controller_due_on
    assert dates.due_on <= ours + timedelta(days=days)
    assert dates.due_on in (dates.controller_due_on, ours + timedelta(days=days))
