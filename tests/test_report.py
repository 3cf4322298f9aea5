"""The yearly report as one HTML page: self-contained, escaped, with the figures and definitions,
and opened in headless Chromium to see that the charts are drawn.
"""

from __future__ import annotations

import html.parser
import json
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from erasure.metrics import yearly_metrics
from erasure.report import render_html
from tests import desk
from tests.desk import AS_OF, BERLIN, at, needs_desk_commands, run_cli
from tests.services import missing_service

state = desk.state
register = desk.register
config_file = desk.config_file


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


def test_the_html_report_breaks_figures_down_by_request_type_and_denials_by_code(report_page):
    assert '<tr data-type="delete"><td>Requests to delete</td><td>6</td><td>5</td>' in report_page
    assert '<tr data-type="know"><td>Requests to know</td><td>1</td><td>0</td>' in report_page
    assert '<tr data-code="not recorded"><td>not recorded</td><td></td>' in report_page
    assert 'id="all-individuals"' in report_page and "11 CCR \u00a7 7102(b)" in report_page
    assert "Requests to delete personal information received" not in report_page  # not all of them are
