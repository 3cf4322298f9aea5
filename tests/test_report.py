"""The officer's desk: the morning status screen and the yearly (CCPA 7102) report.

The figures are checked against a table computed by hand (see ``REGISTER``),
first through the pure functions, then through a real SQLite state database,
and the HTML is opened in headless Chromium to see that the charts are drawn.
"""

from __future__ import annotations

import datetime as dt
import html.parser
import json
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from erasure import audit
from erasure.charts import nice_ticks
from erasure.config import config_from_dict
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
from erasure.models import ErasureRequest, MailboxCursor, OutboxMessage, RequestStatus
from erasure.report import render_html
from erasure.state import open_state
from erasure.status import status
from tests.services import missing_service

UTC = dt.UTC
BERLIN = "Europe/Berlin"
D = dt.date


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# ---------------------------------------------------------------- the hand-computed register
#
# Office time zone Europe/Berlin (UTC+1 in winter, +2 in summer). Columns:
# name, regulation, kind, status/response, received (UTC), closed (UTC), due_on, extended_to.
#
#  name reg  received (Berlin)  closed (Berlin)   outcome        days  due         late
#  A    gdpr 2026-01-10         2026-01-21        completed      11    2026-02-10  no
#  G    gdpr 2026-01-01 00:30   2026-01-02        completed       1    2026-02-01  no   (2025-12-31 23:30 UTC!)
#  B    gdpr 2026-02-01         2026-03-05        no_data_found  32    2026-03-01  YES
#  C    ccpa 2026-03-02         2026-03-04        rejected        2    2026-04-16  no   (kind access)
#  D    ccpa 2026-03-15         2026-05-20        completed      66    ext. 2026-05-29 no
#  F    gdpr 2026-04-01         2026-04-01        ignored         -    automatic mail, not a request
#  K    gdpr 2026-06-10         2026-06-12        cancelled       -    withdrawn: not counted, shown apart
#  E    ccpa 2026-11-20         open (needs_review)                  2027-01-04
#  I    gdpr 2026-12-10         2027-01-01 00:30  completed      22    2027-01-10  no   (closed 2026-12-31 23:30 UTC)
#  H    ccpa 2025-12-20         2026-01-08        completed      19    2026-02-03  no   (a 2025 request)
#
# 2026, as of 2027-01-15:
#   GDPR: received 4 (A G B I), complied 4 (3 completed + 1 no data), denied 0, pending 0, late 1,
#         days [1, 11, 22, 32]: median 16.5, mean 16.5
#   CCPA: received 3 (C D E), complied 1, denied 1, pending 1, late 0, days [2, 66]: median 34, mean 34
#   All:  received 7, complied 5, denied 1, pending 1, late 1,
#         days [1, 2, 11, 22, 32, 66]: median 16.5, mean 22.33 -> 22.3
#   ignored automatic mail 1 (F); cancelled 1 (K); not erasure 1 (C)
#   per month: Jan gdpr 2, Feb gdpr 1, Mar ccpa 2, Nov ccpa 1, Dec gdpr 1; April 0 (F), June 0 (K)
#   histogram: 0-7: 2, 8-14: 1, 15-30: 1, 31-45: 1, 46-60: 0, 61-90: 1, 91+: 0
#   open at month ends: Jan 0, Feb 1 (B), Mar 1 (D), Apr 1 (D), May..Oct 0, Nov 1 (E), Dec 2 (E, I)

REGISTER = [
    # name, regulation, kind, outcome, received_at, closed_at, due_on, extended_to
    ("A", "gdpr", "erasure", "completed", "2026-01-10T09:00", "2026-01-21T10:00", D(2026, 2, 10), None),
    ("G", "gdpr", "erasure", "completed", "2025-12-31T23:30", "2026-01-02T10:00", D(2026, 2, 1), None),
    ("B", "gdpr", "erasure", "no_data_found", "2026-02-01T12:00", "2026-03-05T12:00", D(2026, 3, 1), None),
    ("C", "ccpa", "access", "rejected", "2026-03-02T08:00", "2026-03-04T08:00", D(2026, 4, 16), None),
    ("D", "ccpa", "erasure", "completed", "2026-03-15T08:00", "2026-05-20T08:00", D(2026, 4, 29), D(2026, 5, 29)),
    ("F", "gdpr", "other", "ignored", "2026-04-01T08:00", "2026-04-01T08:05", D(2026, 5, 1), None),
    ("K", "gdpr", "erasure", "cancelled", "2026-06-10T08:00", "2026-06-12T08:00", D(2026, 7, 10), None),
    ("E", "ccpa", "erasure", "needs_review", "2026-11-20T08:00", None, D(2027, 1, 4), None),
    ("I", "gdpr", "erasure", "completed", "2026-12-10T08:00", "2026-12-31T23:30", D(2027, 1, 10), None),
    ("H", "ccpa", "erasure", "completed", "2025-12-20T10:00", "2026-01-08T10:00", D(2026, 2, 3), None),
]

STATUS_OF = {"completed": "completed", "no_data_found": "completed", "rejected": "rejected", "ignored": "ignored",
             "cancelled": "cancelled"}
AS_OF = D(2027, 1, 15)


def make_request(name, regulation, kind, outcome, received, closed, due_on, extended_to, **extra) -> ErasureRequest:
    received_at = at(received)
    return ErasureRequest(
        reference=f"ER-TEST-{name}",
        channel="email",
        status=STATUS_OF.get(outcome, outcome),
        planned="ignore" if outcome == "ignored" else "erase",
        kind=kind,
        regulation=regulation,
        tenant=extra.pop("tenant", "acme"),
        received_at=received_at,
        due_on=due_on,
        extended_to=extended_to,
        response=outcome if outcome in STATUS_OF else None,
        closed_at=at(closed) if closed else None,
        created_at=received_at,
        updated_at=at(closed) if closed else received_at,
        **extra,
    )


@pytest.fixture
def state(tmp_path):
    s = open_state(f"sqlite:///{tmp_path / 's.db'}")
    yield s
    s.close()


@pytest.fixture
def register(state):
    with state.session() as session:
        session.add_all(make_request(*row) for row in REGISTER)
    return state


def rows_in_berlin(state) -> list[RequestRow]:
    with state.session() as session:
        return load_rows(session, time_zone=BERLIN)


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


@pytest.mark.parametrize(("top", "ticks"), [(0, [0, 1]), (1, [0, 1]), (3, [0, 1, 2, 3]), (7, [0, 2, 4, 6, 8]),
                                            (10, [0, 5, 10]), (37, [0, 10, 20, 30, 40]), (1234, [0, 500, 1000, 1500])])
def test_axis_ticks_are_round_numbers_reaching_the_top(top, ticks):
    assert nice_ticks(top) == ticks


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


# ---------------------------------------------------------------- HTML


class SvgCollector(html.parser.HTMLParser):
    """Elements and attributes inside each <figure id=...>, as a browser (or the template) wrote them."""

    def __init__(self) -> None:
        super().__init__()
        self.figure: str | None = None
        self.found: dict[str, list[tuple[str, dict[str, str]]]] = {}
        self.external: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        for key in ("src", "href", "xlink:href"):
            if key in a:
                self.external.append(a[key])
        if tag == "figure":
            self.figure = a.get("id")
            self.found[self.figure] = []
        elif self.figure is not None:
            self.found[self.figure].append((tag, a))

    def handle_endtag(self, tag):
        if tag == "figure":
            self.figure = None


def collect(page: str) -> SvgCollector:
    parser = SvgCollector()
    parser.feed(page)
    return parser


def bars(found, figure: str) -> list[dict[str, str]]:
    return [a for tag, a in found[figure] if tag == "rect" and a.get("class") == "bar"]


@pytest.fixture
def report_page(register) -> str:
    with register.session() as session:
        m = yearly_metrics(session, 2026, time_zone=BERLIN, today=AS_OF)
    return render_html(m, generated_at=at("2027-01-15T07:00"), organisation="Acme <Video> & Co")


def test_the_html_report_is_self_contained(report_page):
    parsed = collect(report_page)
    assert parsed.external == []  # no stylesheet, font, image or script from anywhere
    assert "script" not in parsed.tags and "link" not in parsed.tags and "img" not in parsed.tags
    assert "http://" not in report_page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in report_page and "@import" not in report_page and "url(" not in report_page


def test_the_html_report_escapes_what_it_is_given(report_page):
    assert "Acme &lt;Video&gt; &amp; Co" in report_page and "<Video>" not in report_page


def test_the_html_report_shows_the_figures_and_definitions(report_page):
    for text in ("Complied with (in whole or in part)", "Denied", "Median days to respond", "7102(a)",
                 "Ignored automatic mail", "Days to respond", "no data found"):
        assert text in report_page
    assert '<tr class="total" data-regulation="all"><td>All</td><td>7</td><td>5</td>' in report_page
    assert "22.3" in report_page and "16.5" in report_page
    assert "Automatic mail ignored (auto-replies, bounces; not requests, not counted above): 1." in report_page
    assert "Requests cancelled (withdrawn before erasure began, or entered twice; not counted above): 1." in report_page


def test_chart_bars_are_proportional_to_the_counts(report_page):
    found = collect(report_page).found
    month_bars = bars(found, "per-month")
    assert len(month_bars) == 5  # one per non-zero (month, regulation)
    heights = sorted(float(b["height"]) for b in month_bars)
    assert heights[-1] == pytest.approx(2 * heights[0])  # Jan GDPR 2 and Mar CCPA 2 vs the 1s
    assert {b["fill"] for b in month_bars} == {"#2f6db5", "#d9822b"}
    assert len(bars(found, "days-to-respond")) == 5
    line = [a for tag, a in found["backlog"] if tag == "polyline"]
    assert len(line) == 1 and len(line[0]["points"].split()) == 12


# ---------------------------------------------------------------- in a real browser


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        missing_service("chromium is not installed (Debian: apt-get install chromium)")
    return path


def run_chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=90, check=False,
    )


def png_pixels(data: bytes) -> tuple[int, int, int, bytes]:
    """Width, height, bytes per pixel and the unfiltered 8-bit pixel rows of a non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if ctype == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif ctype == b"IDAT":
            idat += chunk
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and interlace == 0 and colour in (2, 6)
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    out, prev = bytearray(), bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(stride):
                line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a, b, c = (line[i - bpp] if i >= bpp else 0), prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        out += line
        prev = line
    return width, height, bpp, bytes(out)


def test_chromium_draws_the_charts(tmp_path, report_page):
    browser = chromium()
    page = tmp_path / "report.html"
    page.write_text(report_page, encoding="utf-8")
    dom = run_chromium(browser, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = collect(dom.stdout).found
    # The browser parsed the inline SVG into elements: every chart has its marks, with real size.
    for figure, minimum in (("per-month", 5), ("days-to-respond", 5)):
        drawn = [b for b in bars(found, figure) if float(b["height"]) > 0 and float(b["width"]) > 0]
        assert len(drawn) >= minimum, f"{figure}: {len(drawn)} bars drawn"
    assert any(tag == "polyline" for tag, _ in found["backlog"])
    assert sum(1 for tag, _ in found["backlog"] if tag == "circle") == 12


def test_chromium_paints_the_bars_in_their_colours(tmp_path, register):
    """A screenshot of the first chart holds pixels in the GDPR and CCPA bar colours."""
    browser = chromium()
    with register.session() as session:
        m = yearly_metrics(session, 2026, time_zone=BERLIN, today=AS_OF)
    page = tmp_path / "report.html"
    page.write_text(render_html(m, generated_at=at("2027-01-15T07:00")), encoding="utf-8")
    shot = tmp_path / "shot.png"
    # Tall enough for the whole first chart, with room for other fonts; small enough to decode in pure Python.
    result = run_chromium(browser, tmp_path / "profile", f"--screenshot={shot}", "--window-size=800,1700",
                          "--hide-scrollbars", page.as_uri())
    assert shot.exists(), result.stderr[-2000:]
    width, height, bpp, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (800, 1700)
    colours = Counter(pixels[i:i + 3] for i in range(0, len(pixels), bpp))
    legend_key = 12 * 12  # the legend's colour squares alone would give this many
    assert colours[bytes.fromhex("2f6db5")] > 5 * legend_key  # GDPR bars: 2 + 1 + 1 requests
    assert colours[bytes.fromhex("d9822b")] > 5 * legend_key  # CCPA bars: 2 + 1 requests


# ---------------------------------------------------------------- status


TODAY = D(2026, 11, 29)
NOW = at("2026-11-29T07:00")
CONFIG = config_from_dict({"policy": {"time_zone": BERLIN}})


def desk_request(name, status_, due_on, extended_to=None, regulation="gdpr", **extra) -> ErasureRequest:
    closed = status_ in RequestStatus.CLOSED
    return make_request(name, regulation, "erasure", {"completed": "completed"}.get(status_, status_),
                        "2026-10-20T08:00", "2026-10-25T08:00" if closed else None, due_on, extended_to, **extra)


def add_poll(session, last_success: dt.datetime | None, source="maildir:/srv/privacy") -> None:
    session.add(MailboxCursor(source=source, last_poll_at=NOW - dt.timedelta(minutes=2), last_success_at=last_success))


def test_status_lists_what_needs_the_officer_today(state):
    with state.session() as session:
        late = desk_request("LATE", "needs_review", D(2026, 11, 20))
        session.add_all([
            late,
            desk_request("TODAY", "erasing", D(2026, 11, 29)),
            desk_request("SOON", "awaiting_approval", D(2026, 12, 5), regulation="ccpa"),
            desk_request("LATER", "erasing", D(2026, 12, 6)),  # 7 days left: not "this week"
            desk_request("EXT", "needs_review", D(2026, 11, 25), extended_to=D(2027, 1, 25)),
            desk_request("DONE", "completed", D(2026, 11, 1)),  # closed: never overdue
        ])
        session.flush()
        session.add(OutboxMessage(request_id=late.id, kind="needs_information", message_id="<m1@x>",
                                  recipient="privacy@acme.example", raw=b"...", status="parked", attempts=5,
                                  last_error="550 mailbox unavailable", created_at=NOW))
        add_poll(session, NOW - dt.timedelta(minutes=2))
        audit.record(session, "received", request=late, now=NOW)
    with state.session() as session:
        report = status(session, today=TODAY, config=CONFIG, now=NOW)
    assert set(report.counts) == set(RequestStatus.ALL)  # every state, 0 when none
    assert {s: n for s, n in report.counts.items() if n} == {"needs_review": 2, "awaiting_approval": 1, "erasing": 2,
                                                             "completed": 1}
    assert [(i.reference, i.days_left) for i in report.overdue] == [("ER-TEST-LATE", -9)]
    assert [(i.reference, i.days_left) for i in report.due_soon] == [("ER-TEST-TODAY", 0), ("ER-TEST-SOON", 6)]
    assert [(p.reference, p.problem) for p in report.parked] == [("ER-TEST-LATE", "550 mailbox unavailable")]
    assert not report.poll_stale and report.audit.ok
    assert report.needs_attention
    assert report.problems == [
        "1 request(s) overdue", "2 request(s) need review", "1 request(s) await approval",
        "1 reply(ies) parked; see `erasure outbox list --status parked`",
    ]
    data = json.loads(json.dumps(report.to_json()))
    assert data["open"] == 5 and data["needs_attention"] is True
    assert data["overdue"][0] == {"reference": "ER-TEST-LATE", "tenant": "acme", "regulation": "gdpr",
                                  "status": "needs_review", "due": "2026-11-20", "days_left": -9, "extended": False}
    assert data["parked_replies"][0]["to"] == "privacy@acme.example"
    assert data["audit"]["events"] == 1 and data["last_success_at"] == "2026-11-29T06:58:00+00:00"
    text = report.text()
    assert "ER-TEST-LATE  acme  GDPR  needs_review  due 2026-11-20  9 day(s) late" in text
    assert "ER-TEST-TODAY" in text and "due today" in text and "ER-TEST-EXT" not in text
    assert "needs attention: 1 request(s) overdue" in text


def test_a_quiet_morning_needs_no_attention(state):
    with state.session() as session:
        session.add_all([desk_request("DONE", "completed", D(2026, 11, 1)),
                         desk_request("LATER", "erasing", D(2026, 12, 20))])
        add_poll(session, NOW - dt.timedelta(hours=23))
    with state.session() as session:
        report = status(session, today=TODAY, config=CONFIG, now=NOW)
    assert report.problems == [] and not report.needs_attention
    assert report.text().endswith("needs attention: nothing")
    assert report.to_json()["audit"] == {"ok": True, "events": 0, "head": None, "first_bad_seq": None, "problem": None}


def test_an_empty_state_database_has_never_polled(state):
    with state.session() as session:
        report = status(session, today=TODAY, config=CONFIG, now=NOW)
    assert sum(report.counts.values()) == 0
    assert report.poll_stale and report.problems == ["no successful poll yet; run `erasure poll` and check cron"]
    assert "last successful poll: never (STALE)" in report.text()


def test_a_poll_that_keeps_failing_needs_attention(state):
    with state.session() as session:
        add_poll(session, NOW - dt.timedelta(hours=25), source="imap:a")
        add_poll(session, None, source="imap:b")
    with state.session() as session:
        report = status(session, today=TODAY, config=CONFIG, now=NOW)
    assert report.last_success_at == NOW - dt.timedelta(hours=25)
    assert report.problems == ["no successful poll since 2026-11-28 06:00 UTC; run `erasure poll` to see why"]


def test_a_broken_audit_chain_needs_attention(state):
    with state.session() as session:
        add_poll(session, NOW)
        for i in range(3):
            audit.record(session, "received", reason=f"event {i}", now=NOW)
    with state.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_events SET reason = 'edited' WHERE seq = 2")
    with state.session() as session:
        report = status(session, today=TODAY, config=CONFIG, now=NOW)
    assert report.needs_attention and not report.audit.ok
    assert report.problems == ["audit trail broken at event 2: event 2 was altered (its hash does not match its content)"]
    assert report.to_json()["audit"]["first_bad_seq"] == 2


def test_ccpa_requests_without_a_reply_past_their_acknowledgement_date_need_attention(state):
    ack = D(2026, 11, 27)
    with state.session() as session:
        silent = desk_request("SILENT", "needs_review", D(2026, 12, 20), regulation="ccpa",
                              acknowledge_by=ack, reply_allowed=True)
        answered = desk_request("ANSWERED", "awaiting_approval", D(2026, 12, 20), regulation="ccpa",
                                acknowledge_by=ack, reply_allowed=True)
        queued = desk_request("QUEUED", "awaiting_approval", D(2026, 12, 20), regulation="ccpa",
                              acknowledge_by=ack, reply_allowed=True)
        session.add_all([
            silent, answered, queued,
            desk_request("UNVERIFIED", "needs_review", D(2026, 12, 20), regulation="ccpa",
                         acknowledge_by=ack, reply_allowed=False),
            desk_request("NOT-YET", "erasing", D(2026, 12, 20), regulation="ccpa",
                         acknowledge_by=TODAY, reply_allowed=True),
            desk_request("GDPR", "erasing", D(2026, 12, 20), reply_allowed=True),
        ])
        session.flush()
        for request, state_ in ((answered, "sent"), (queued, "queued")):
            session.add(OutboxMessage(request_id=request.id, kind="acknowledgement", message_id=f"<{request.id}@x>",
                                      recipient="privacy@acme.example", raw=b"...", status=state_, attempts=1,
                                      created_at=NOW))
        add_poll(session, NOW)
    with state.session() as session:
        report = status(session, today=TODAY, config=CONFIG, now=NOW)
    assert [(i.reference, i.due, i.days_left) for i in report.unacknowledged] == [
        ("ER-TEST-SILENT", ack, -2), ("ER-TEST-QUEUED", ack, -2),
    ]
    assert "2 CCPA request(s) past their acknowledgement date with no reply sent" in report.problems
    assert [i["reference"] for i in report.to_json()["unacknowledged"]] == ["ER-TEST-SILENT", "ER-TEST-QUEUED"]
    assert "not acknowledged in time (CCPA 7021(a)): 2" in report.text()


# ---------------------------------------------------------------- the commands


def _cli_has_desk_commands() -> bool:
    from erasure import cli

    return hasattr(cli, "status_command") and hasattr(cli, "report_command")


needs_desk_commands = pytest.mark.skipif(
    not _cli_has_desk_commands(), reason="`erasure status` and `erasure report` are not in cli.py yet (merge pending)"
)


@pytest.fixture
def config_file(tmp_path, register):
    path = tmp_path / "erasure.toml"
    path.write_text(f'[state]\nurl = "sqlite:///{tmp_path / "s.db"}"\n[policy]\ntime_zone = "{BERLIN}"\n')
    return path


def run_cli(*args):
    from typer.testing import CliRunner

    from erasure.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@needs_desk_commands
def test_status_exits_1_and_says_why_when_something_needs_attention(config_file):
    result = run_cli("--config", config_file, "status")
    assert result.exit_code == 1, result.output
    assert "needs attention:" in result.output and "no successful poll yet" in result.output
    data = json.loads(run_cli("--config", config_file, "status", "--json").output)
    assert data["needs_attention"] is True and data["counts"]["needs_review"] == 1


@needs_desk_commands
def test_status_exits_0_on_a_quiet_morning(tmp_path):
    config = tmp_path / "erasure.toml"
    config.write_text(f'[state]\nurl = "sqlite:///{tmp_path / "quiet.db"}"\n')
    s = open_state(f"sqlite:///{tmp_path / 'quiet.db'}")
    with s.session() as session:
        add_poll(session, dt.datetime.now(UTC))
    s.close()
    result = run_cli("--config", config, "status")
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("needs attention: nothing")


@needs_desk_commands
def test_report_writes_html_and_prints_json(config_file, tmp_path):
    out = tmp_path / "metrics.html"
    result = run_cli("--config", config_file, "report", "--year", 2026, "--html", out, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["year"], data["total"]["received"], data["total"]["complied"], data["ignored_automatic_mail"]) == (
        2026, 7, 5, 1)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>") and 'class="bar"' in out.read_text()
    text = run_cli("--config", config_file, "report", "--year", 2026)
    assert text.exit_code == 0 and "All" in text.output and "not counted above: 1 ignored automatic mail, 1 cancelled" in text.output


@needs_desk_commands
@pytest.mark.parametrize(("args", "message"), [
    (("--year", "1900"), "--year 1900"),
    (("--year", "2026", "--html", "/nonexistent-dir/x.html"), "cannot write the report"),
])
def test_report_usage_errors_exit_2(config_file, args, message):
    result = run_cli("--config", config_file, "report", *args)
    assert result.exit_code == 2 and message in result.output
