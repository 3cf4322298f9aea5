"""The SVG chart kit: round axis ticks, and bars as tall as their counts."""

from __future__ import annotations

import pytest

from erasure.charts import nice_ticks


@pytest.mark.parametrize(("top", "ticks"), [(0, [0, 1]), (1, [0, 1]), (3, [0, 1, 2, 3]), (7, [0, 2, 4, 6, 8]),
                                            (10, [0, 5, 10]), (37, [0, 10, 20, 30, 40]), (1234, [0, 500, 1000, 1500])])
def test_axis_ticks_are_round_numbers_reaching_the_top(top, ticks):
    assert nice_ticks(top) == ticks

