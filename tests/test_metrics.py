"""The yearly (CCPA 7102) figures, checked against a table computed by hand (``tests.desk.REGISTER``),
first through the pure functions, then through a real SQLite state database.
"""

from __future__ import annotations

import json

import pytest

from erasure import deadlines
from erasure.errors import ConfigError
from erasure.metrics import (
    DayBin,
    RequestRow,
    backlog_at_month_ends,
    days_histogram,
    days_to_respond,
    load_rows,
    month_ends,
    outcome_of,
    summarize,
    yearly_metrics,
)
from erasure.report import render_html
from tests import desk
from tests.desk import AS_OF, BERLIN, D, at, make_request, rows_in_berlin

state = desk.state
register = desk.register


# ---------------------------------------------------------------- pure functions


def test_outcome_and_days_follow_the_stored_response():
    row = RequestRow(D(2026, 3, 1), "gdpr", "completed", "no_data_found", D(2026, 3, 4))
    assert outcome_of(row) == "no_data_found" and days_to_respond(row) == 3
    assert outcome_of(RequestRow(D(2026, 3, 1), "gdpr", "erasing")) == "open"
    assert days_to_respond(RequestRow(D(2026, 3, 1), "gdpr", "erasing")) is None
    cancelled = RequestRow(D(2026, 3, 1), "gdpr", "cancelled", "cancelled", D(2026, 3, 2))
    assert outcome_of(cancelled) == "cancelled" and days_to_respond(cancelled) is None
    ignored = RequestRow(D(2026, 3, 1), "gdpr", "ignored", "ignored", D(2026, 3, 1))
    assert outcome_of(ignored) == "ignored" and days_to_respond(ignored) is None
    # An answer on the day of receipt takes 0 days, not 1.
    assert days_to_respond(RequestRow(D(2026, 3, 1), "ccpa", "rejected", "rejected", D(2026, 3, 1))) == 0


def test_histogram_bins_are_inclusive_and_the_last_is_open_ended():
    bins = days_histogram([0, 7, 8, 14, 15, 30, 31, 45, 46, 60, 61, 90, 91, 400])
    assert [(b.label, b.count) for b in bins] == [
        ("0\u20137", 2), ("8\u201314", 2), ("15\u201330", 2), ("31\u201345", 2), ("46\u201360", 2),
        ("61\u201390", 2), ("91+", 2),
    ]
    assert days_histogram([]) == tuple(DayBin(b.low, b.high, 0) for b in bins)


def test_month_ends_include_leap_days():
    assert month_ends(2028)[1] == D(2028, 2, 29)
    assert month_ends(2026)[1] == D(2026, 2, 28)
    assert month_ends(2026)[11] == D(2026, 12, 31)


def test_backlog_stops_at_the_report_date():
    rows = [RequestRow(D(2026, 1, 5), "gdpr", "needs_review")]
    points = backlog_at_month_ends(rows, 2026, D(2026, 3, 10))
    assert [p.open for p in points] == [1, 1, 1] + [None] * 9


# ---------------------------------------------------------------- yearly metrics on the hand-computed table


def test_yearly_metrics_match_the_hand_computed_table(register):
    rows = rows_in_berlin(register)
    m = summarize(rows, 2026, as_of=AS_OF, time_zone=BERLIN)
    by = {r.regulation: r.to_json() for r in m.by_regulation}
    assert by["gdpr"] == {"regulation": "gdpr", "received": 4, "complied": 4, "completed": 3, "no_data_found": 1,
                          "denied": 0, "pending": 0, "late": 1, "median_days": 16.5, "mean_days": 16.5}
    assert by["ccpa"] == {"regulation": "ccpa", "received": 3, "complied": 1, "completed": 1, "no_data_found": 0,
                          "denied": 1, "pending": 1, "late": 0, "median_days": 34.0, "mean_days": 34.0}
    assert m.total.to_json() == {"regulation": "all", "received": 7, "complied": 5, "completed": 4,
                                 "no_data_found": 1, "denied": 1, "pending": 1, "late": 1,
                                 "median_days": 16.5, "mean_days": 22.3}
    assert m.total.received == m.total.complied + m.total.denied + m.total.pending
    assert m.ignored == 1 and m.cancelled == 1 and m.not_erasure == 1
    assert [(mc.month, mc.by_regulation) for mc in m.months if mc.total] == [
        (1, {"gdpr": 2, "ccpa": 0}), (2, {"gdpr": 1, "ccpa": 0}), (3, {"gdpr": 0, "ccpa": 2}),
        (11, {"gdpr": 0, "ccpa": 1}), (12, {"gdpr": 1, "ccpa": 0}),
    ]
    assert m.months[3].total == 0  # April: only the ignored auto-reply arrived
    assert m.months[5].total == 0  # June: only the request later cancelled
    assert [b.count for b in m.days_histogram] == [2, 1, 1, 1, 0, 1, 0]
    assert [b.open for b in m.backlog] == [0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 2]
    assert m.complete_year


def test_yearly_metrics_reads_the_state_database(register):
    with register.session() as session:
        m = yearly_metrics(session, 2026, time_zone=BERLIN, today=AS_OF)
    assert (m.total.received, m.total.complied, m.total.denied, m.total.median_days) == (7, 5, 1, 16.5)
    data = json.loads(json.dumps(m.to_json()))
    assert data["by_regulation"]["ccpa"]["pending"] == 1
    assert (data["ignored_automatic_mail"], data["cancelled"]) == (1, 1)


def test_a_request_counts_in_the_year_it_was_received_in_the_office_time_zone(register):
    rows = rows_in_berlin(register)
    m2025 = summarize(rows, 2025, as_of=AS_OF, time_zone=BERLIN)
    # H was received 20 Dec 2025 and answered 8 Jan 2026: a 2025 request, 19 days.
    # G arrived 23:30 UTC on 31 Dec 2025, which was already 1 January in Berlin: a 2026 request.
    assert (m2025.total.received, m2025.total.complied, m2025.total.median_days) == (1, 1, 19.0)
    assert m2025.backlog[-1].open == 1  # H was open on 31 Dec 2025
    with register.session() as session:
        in_utc = summarize(load_rows(session, time_zone="UTC"), 2025, as_of=AS_OF, time_zone="UTC")
    assert in_utc.total.received == 2  # in UTC, G belongs to 2025


def test_a_year_without_requests_gives_zeros_not_errors(state):
    with state.session() as session:
        m = yearly_metrics(session, 2026, time_zone=BERLIN, today=D(2026, 6, 15))
    assert m.total.received == m.total.complied == m.total.denied == m.total.pending == 0
    assert m.total.median_days is None and m.total.mean_days is None
    assert all(mc.total == 0 for mc in m.months)
    assert [b.open for b in m.backlog] == [0] * 6 + [None] * 6
    assert not m.complete_year
    page = render_html(m, generated_at=at("2026-06-15T08:00"))
    assert 'class="bar"' not in page and "year to date" in page
    assert "no requests received" in page and "no request answered yet" in page


def test_only_ignored_mail_is_not_a_request(state):
    with state.session() as session:
        session.add(make_request("X", "gdpr", "other", "ignored", "2026-05-01T08:00", "2026-05-01T08:01",
                                 D(2026, 6, 1), None))
    with state.session() as session:
        m = yearly_metrics(session, 2026, today=D(2026, 12, 31))
    assert (m.total.received, m.ignored, sum(b.open or 0 for b in m.backlog)) == (0, 1, 0)


@pytest.mark.parametrize("year", [0, 1969, 9999, -5])
def test_an_impossible_year_is_a_usage_error(state, year):
    with state.session() as session, pytest.raises(ConfigError, match="--year"):
        yearly_metrics(session, year)


def test_an_unknown_time_zone_is_a_config_error(state):
    with state.session() as session, pytest.raises(ConfigError, match="policy.time_zone"):
        yearly_metrics(session, 2026, time_zone="Mars/Olympus")



@pytest.mark.parametrize(("due_on", "extended_to", "closed", "late"), [
    (D(2026, 4, 1), None, "2026-04-01T08:00", 0),              # answered on the due date: on time
    (D(2026, 4, 1), None, "2026-04-02T08:00", 1),              # the day after: late
    (D(2026, 4, 1), None, "2026-04-01T22:30", 1),              # 00:30 on 2 April in Berlin: late
    (D(2026, 4, 1), D(2026, 6, 1), "2026-04-20T08:00", 0),     # after the original date, within the extension
    (D(2026, 4, 1), D(2026, 6, 1), "2026-06-01T08:00", 0),     # on the extended date
    (D(2026, 4, 1), D(2026, 6, 1), "2026-06-02T08:00", 1),     # after the extended date
])
def test_late_means_answered_after_the_date_that_counts(state, due_on, extended_to, closed, late):
    with state.session() as session:
        session.add(make_request("L", "gdpr", "erasure", "completed", "2026-03-01T08:00", closed, due_on, extended_to))
    with state.session() as session:
        (row,) = load_rows(session, time_zone=BERLIN)
        m = yearly_metrics(session, 2026, time_zone=BERLIN, today=AS_OF)
    assert row.due == deadlines.effective_due(due_on, extended_to)
    assert m.total.late == late == int(deadlines.is_overdue(row.due, row.closed_on))


# ---------------------------------------------------------------- request types and refusal codes (7102(a)(1), (b))


def test_figures_are_given_per_request_type_not_all_as_requests_to_delete(register):
    m = summarize(rows_in_berlin(register), 2026, as_of=AS_OF, time_zone=BERLIN)
    by_type = {t.type: t.to_json() for t in m.by_type}
    assert list(by_type) == ["delete", "know", "other"]
    assert by_type["delete"] == {"type": "delete", "received": 6, "complied": 5, "completed": 4, "no_data_found": 1,
                                 "denied": 0, "pending": 1, "late": 1, "median_days": 22.0, "mean_days": 26.4}
    assert (by_type["know"]["received"], by_type["know"]["denied"], by_type["know"]["median_days"]) == (1, 1, 2.0)
    assert by_type["other"]["received"] == 0
    assert sum(t.figures.received for t in m.by_type) == m.total.received
    assert m.denials_by_code == {"not recorded": 1}  # C was rejected before codes existed
    assert m.all_individuals and "GDPR" in m.all_individuals_statement and "7102(b)" in m.all_individuals_statement


def test_the_statement_is_left_out_when_only_ccpa_requests_are_counted():
    rows = [RequestRow(D(2026, 3, 1), "ccpa", "completed", "completed", D(2026, 3, 2))]
    m = summarize(rows, 2026, as_of=AS_OF)
    assert not m.all_individuals and "7102(b)" not in m.text()
    assert m.to_json()["all_individuals"] is False


def row(outcome: str, *codes: str, kind: str = "erasure") -> RequestRow:
    status = {"open": "needs_review", "no_data_found": "completed"}.get(outcome, outcome)
    return RequestRow(D(2026, 3, 1), "gdpr", status, None if outcome == "open" else outcome, D(2026, 3, 2),
                      kind=kind, refusal_codes=codes)


def test_denials_count_under_each_code_and_partial_refusals_apart():
    rows = [
        row("rejected", "gdpr-17-3-e"),
        row("rejected", "gdpr-17-3-b", "gdpr-17-3-e"),  # two grounds: counted under both
        row("rejected"),  # before codes
        row("rejected", "identity-not-verified", kind="access"),
        row("completed", "gdpr-17-3-e"),  # the rest erased: complied with in part
        row("no_data_found", "manifestly-unfounded"),
        row("open", "gdpr-17-3-a"),  # not decided yet: in neither
        row("cancelled", "gdpr-17-3-a"),
    ]
    m = summarize(rows, 2026, as_of=AS_OF)
    assert m.denials_by_code == {"gdpr-17-3-b": 1, "gdpr-17-3-e": 2, "identity-not-verified": 1, "not recorded": 1}
    assert list(m.denials_by_code) == ["gdpr-17-3-b", "gdpr-17-3-e", "identity-not-verified", "not recorded"]
    assert m.partial_refusals_by_code == {"gdpr-17-3-e": 1, "manifestly-unfounded": 1}
    assert (m.total.denied, m.total.complied) == (4, 2)
    text = m.text()
    assert "denied, by refusal code: gdpr-17-3-b 1, gdpr-17-3-e 2, identity-not-verified 1, not recorded 1" in text
    assert "refused in part (the rest complied with), by refusal code: gdpr-17-3-e 1, manifestly-unfounded 1" in text
    assert "Requests to know" in text and "Requests to delete" in text


def test_load_rows_reads_the_codes_of_the_request_and_of_its_subjects(state):
    from erasure.models import Subject

    full = make_request("R", "gdpr", "erasure", "rejected", "2026-03-02T08:00", "2026-03-04T08:00", D(2026, 4, 2),
                        None, refusal_code="manifestly-unfounded")
    part = make_request("P", "gdpr", "erasure", "completed", "2026-03-02T08:00", "2026-03-04T08:00", D(2026, 4, 2),
                        None)
    part.subjects = [Subject(position=i, viewer_hmac=f"h{i}", key_version=1, refusal_code=code)
                     for i, code in enumerate([None, "gdpr-17-3-e", "gdpr-17-3-e", "gdpr-17-3-b"])]
    with state.session() as session:
        session.add_all([full, part])
    with state.session() as session:
        rows = load_rows(session)
    assert [r.refusal_codes for r in rows] == [("manifestly-unfounded",), ("gdpr-17-3-e", "gdpr-17-3-b")]
    with state.session() as session:
        m = yearly_metrics(session, 2026, today=AS_OF)
    assert m.to_json()["denials_by_code"] == {"manifestly-unfounded": 1}
    assert m.to_json()["partial_refusals_by_code"] == {"gdpr-17-3-b": 1, "gdpr-17-3-e": 1}
