"""The yearly report as one self-contained HTML file.

The figures come from :mod:`erasure.metrics`, the charts from
:mod:`erasure.charts`; this module only puts them on a page: inline SVG, no
script, no fonts, stylesheets or images from anywhere else, so it can be
mailed, archived and opened offline. The template is
``erasure/report_template.html`` (autoescaped, ``StrictUndefined``).
"""

from __future__ import annotations

import datetime as dt
import importlib.resources

import jinja2

from erasure.charts import LINE_COLOUR, backlog_chart, days_chart, month_chart
from erasure.metrics import REGULATION_LABELS, Metrics, format_days
from erasure.refusals import REFUSALS
from erasure.status import format_utc

__all__ = ["render_html"]


def _template() -> jinja2.Template:
    env = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    source = importlib.resources.files("erasure").joinpath("report_template.html").read_text(encoding="utf-8")
    return env.from_string(source)


def render_html(metrics: Metrics, *, generated_at: dt.datetime, organisation: str = "") -> str:
    """The yearly report as one HTML document with inline SVG charts and no external references."""
    return _template().render(
        m=metrics,
        organisation=organisation,
        generated_at=format_utc(generated_at),
        charts=[month_chart(metrics), days_chart(metrics), backlog_chart(metrics)],
        fmt_days=format_days,
        line_colour=LINE_COLOUR,
        labels=REGULATION_LABELS,
        denial_codes=list(dict.fromkeys([*metrics.denials_by_code, *metrics.partial_refusals_by_code])),
        refusal_titles={code: r.title for code, r in REFUSALS.items()},
    )
