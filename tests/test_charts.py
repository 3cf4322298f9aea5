"""The SVG chart kit: round axis ticks, and bars as tall as their counts."""

from __future__ import annotations

import datetime as dt

import pytest

from erasure.charts import backlog_chart, days_chart, month_chart, nice_ticks
from erasure.metrics import RequestRow, summarize


@pytest.mark.parametrize(("top", "ticks"), [(0, [0, 1]), (1, [0, 1]), (3, [0, 1, 2, 3]), (7, [0, 2, 4, 6, 8]),
                                            (10, [0, 5, 10]), (37, [0, 10, 20, 30, 40]), (1234, [0, 500, 1000, 1500])])
def test_axis_ticks_are_round_numbers_reaching_the_top(top, ticks):
    assert nice_ticks(top) == ticks



def rows(*received: tuple[int, str]) -> list[RequestRow]:
    return [RequestRow(dt.date(2026, month, 5), regulation, "erasing") for month, regulation in received]


def test_bars_stand_on_the_axis_as_tall_as_their_counts():
    m = summarize(rows((1, "gdpr"), (1, "gdpr"), (3, "ccpa")), 2026, as_of=dt.date(2026, 6, 1))
    chart = month_chart(m)
    heights = {r.title: r.height for r in chart.rects}
    assert set(heights) == {"Jan 2026, GDPR: 2", "Mar 2026, CCPA: 1"}
    assert heights["Jan 2026, GDPR: 2"] == pytest.approx(2 * heights["Mar 2026, CCPA: 1"])
    assert len({round(r.y + r.height, 1) for r in chart.rects}) == 1  # one baseline
    assert [label for label, _ in chart.legend] == ["GDPR", "CCPA"]
    # The backlog line has a point for each month that has ended (or is running), none for the future.
    assert len(backlog_chart(m).points) == 6


def test_an_empty_chart_says_so():
    m = summarize([], 2026, as_of=dt.date(2026, 6, 1))
    for chart, note in ((month_chart(m), "no requests received"), (days_chart(m), "no request answered yet")):
        assert chart.rects == [] and note in [t.text for t in chart.texts]
