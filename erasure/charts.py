"""A small SVG chart kit for the yearly report: bars, a line, axes with round ticks.

A :class:`Chart` is plain shapes with coordinates already computed; the
template only draws what is there, so every number on a chart is decided (and
tested) here, in pure functions, and the page needs no script and no library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from erasure.metrics import REGULATION_LABELS, Metrics

__all__ = [
    "LINE_COLOUR",
    "Chart",
    "backlog_chart",
    "days_chart",
    "month_chart",
    "nice_ticks",
]

_COLOURS = {"gdpr": "#2f6db5", "ccpa": "#d9822b"}
_OTHER_COLOUR = "#6b8e23"
_BAR_COLOUR = "#5a6f8a"
LINE_COLOUR = "#b03a48"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


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
