""".xlsx attachments: the first sheet's viewer_id column, read without evaluating anything, within bounds.

Workbooks are built with openpyxl (as Excel would save them), and some parts
are written by hand where Excel writes what openpyxl cannot (shared formulas,
hidden rows from a filter, lying zip directories).
"""

from __future__ import annotations

import datetime as dt
import io
import math
import time
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from openpyxl.utils.exceptions import IllegalCharacterError

from erasure.config import config_from_dict
from erasure.parse import parse_message
from erasure.parse.budget import ParseBudget, ParseWorker
from erasure.parse.ids import RESERVED_EXAMPLE_IDS, clean_id
from erasure.parse.spreadsheet import (
    MAX_XLSX_MEMBER_BYTES,
    MAX_XLSX_TOTAL_BYTES,
    XLSX_CONTENT_TYPE,
)
from erasure.verify import REASONS, decide
from tests.world import with_attachment


def xlsx(rows: list[list[Any]], *, build: Callable[[Any, Any], None] | None = None, sheets: int = 1) -> bytes:
    """A workbook whose first sheet holds ``rows`` (None for an empty cell), saved as Excel saves .xlsx."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Viewers"
    for row in rows:
        ws.append(row)
    for n in range(1, sheets):
        wb.create_sheet(f"Sheet{n + 1}")
    if build is not None:
        build(wb, ws)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def attached(data: bytes, *, filename: str = "viewers.xlsx", content_type: str = XLSX_CONTENT_TYPE) -> bytes:
    return with_attachment(data, filename=filename, content_type=content_type,
                           text="Please erase the viewers in the attached workbook.")


def codes(message) -> set[str]:  # type: ignore[no-untyped-def]
    return {p.code for p in message.problems}


def read(data: bytes, **kw: Any):  # type: ignore[no-untyped-def]
    return parse_message(attached(data, **kw))


# ---------------------------------------------------------------- what is read

def _number_format(fmt: str, rows: range) -> Callable[[Any, Any], None]:
    def build(wb: Any, ws: Any) -> None:
        for r in rows:
            ws.cell(r, 1).number_format = fmt
    return build


@pytest.mark.parametrize(
    "rows, build, expected",
    [
        ([["viewer_id", "name"], ["viewer-00001", "Zoé Müller"], ["viewer-00002", "山田太郎"]], None,
         ("viewer-00001", "viewer-00002")),
        ([["Name", "Viewer IDs", "Notes"], ["Zoé", "viewer-00001", None], [None, None, None], ["Bob", "viewer-00002", "x"]],
         None, ("viewer-00001", "viewer-00002")),
        ([["viewer_id"], [12345], [987654321012345]], None, ("12345", "987654321012345")),  # numbers as Excel shows them
        ([["viewer_id"], [12345.0], [7.0]], None, ("12345", "7")),  # whole floats: 12345, never 12345.0
        ([["viewer_id"], ["00042"], ["  padded  "]], None, ("00042", "padded")),  # text cells keep leading zeros
        ([["viewer-00001"], ["viewer-00002"]], None, ("viewer-00001", "viewer-00002")),  # one column, no heading
        ([["viewer_id"], ["viewer-00001"], [None], ["viewer-00002"]], None, ("viewer-00001", "viewer-00002")),
        ([[None, None], [None, "viewer_id"], [None, "viewer-00001"]], None, ("viewer-00001",)),  # table not at A1
        ([["viewer_id", "amount"], ["viewer-00001", "=SUM(1,2)"]], None, ("viewer-00001",)),  # formulas elsewhere: ignored
        ([["viewer_id"], [42]], _number_format("0", range(2, 3)), ("42",)),
        ([["viewer_id"], [42]], _number_format("@", range(2, 3)), ("42",)),
    ],
    ids=["text", "heading-not-first-blank-rows", "int", "whole-float", "leading-zeros",
         "one-column", "gap", "offset-table", "formula-in-other-column", "format-0", "format-text"],
)
def test_workbooks_are_read_as_the_customer_sees_them(rows: list[list[Any]], build: Any, expected: tuple[str, ...]) -> None:
    message = read(xlsx(rows, build=build))
    assert message.viewer_ids == expected
    assert message.problems == ()


def test_a_text_cell_that_starts_with_an_equals_sign_is_text() -> None:
    """Only a cell with a formula element is a formula; text typed as '=x (with Excel's apostrophe) is an id."""
    data = _with_sheet_xml('<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>viewer_id</t></is></c></row>'
                           '<row r="2"><c r="A2" t="inlineStr"><is><t>=v-1</t></is></c></row></sheetData>')
    message = read(data)
    assert message.viewer_ids == ("=v-1",) and message.problems == ()


def test_the_content_type_alone_makes_a_workbook() -> None:
    message = read(xlsx([["viewer_id"], ["viewer-00001"]]), filename="export", content_type=XLSX_CONTENT_TYPE)
    assert message.viewer_ids == ("viewer-00001",) and message.problems == ()
    message = read(xlsx([["viewer_id"], ["viewer-00001"]]), content_type="application/octet-stream")
    assert message.viewer_ids == ("viewer-00001",) and message.problems == ()


# ---------------------------------------------------------------- near misses: review

def _formula(cell: str, text: str) -> Callable[[Any, Any], None]:
    def build(wb: Any, ws: Any) -> None:
        ws[cell] = text
    return build


def _hide_row(n: int) -> Callable[[Any, Any], None]:
    def build(wb: Any, ws: Any) -> None:
        ws.row_dimensions[n].hidden = True
    return build


def _hide_column(letter: str) -> Callable[[Any, Any], None]:
    def build(wb: Any, ws: Any) -> None:
        ws.column_dimensions[letter].hidden = True
    return build


def _hide_sheet(wb: Any, ws: Any) -> None:
    wb.create_sheet("Visible")
    wb.active = 1
    ws.sheet_state = "hidden"


def _second_sheet_with(value: Any) -> Callable[[Any, Any], None]:
    def build(wb: Any, ws: Any) -> None:
        wb.create_sheet("More")["B7"] = value
    return build


NEAR_MISSES = [
    ("formula-id", [["viewer_id"], ["viewer-00001"], [None]], _formula("A3", '=CONCAT("viewer-","00002")'), "attachment_formula"),
    ("formula-heading-column-ref", [["viewer_id"], [None]], _formula("A2", "=B2"), "attachment_formula"),
    ("scientific", [["viewer_id"], [1.2e15]], None, "viewer_id_number_mangled"),
    ("16-digits", [["viewer_id"], [1234567890123450]], None, "viewer_id_number_mangled"),
    ("fraction", [["viewer_id"], [12.5]], None, "viewer_id_number_mangled"),
    ("date", [["viewer_id"], [dt.datetime(2026, 3, 1)]], None, "viewer_id_number_mangled"),
    ("bool", [["viewer_id"], [True]], None, "viewer_id_number_mangled"),
    ("zero-padded-format", [["viewer_id"], [42]], _number_format("00000", range(2, 3)), "viewer_id_number_mangled"),
    ("thousands-format", [["viewer_id"], [12345]], _number_format("#,##0", range(2, 3)), "viewer_id_number_mangled"),
    ("scientific-text", [["viewer_id"], ["1.23457E+15"]], None, "viewer_id_number_mangled"),
    ("hidden-row", [["viewer_id"], ["viewer-00001"], ["viewer-00002"]], _hide_row(3), "attachment_hidden_cells"),
    ("hidden-id-column", [["name", "viewer_id"], ["Zoé", "viewer-00001"]], _hide_column("B"), "attachment_hidden_cells"),
    ("hidden-first-sheet", [["viewer_id"], ["viewer-00001"]], _hide_sheet, "attachment_hidden_cells"),
    ("second-sheet-data", [["viewer_id"], ["viewer-00001"]], _second_sheet_with("viewer-00009"), "attachment_several_sheets"),
    ("second-sheet-number", [["viewer_id"], ["viewer-00001"]], _second_sheet_with(7), "attachment_several_sheets"),
    ("two-id-columns", [["viewer_id", "Viewer ID"], ["a-1", "b-2"]], None, "attachment_ambiguous"),
    ("no-id-column", [["name", "email"], ["Zoé", "z@example.com"]], None, "attachment_no_viewer_id_column"),
    ("heading-like", [["ViewerIdentifier"], ["viewer-00001"]], None, "attachment_header_unclear"),
    ("ragged-one-column", [["viewer-00001"], ["viewer-00002", "note"]], None, "attachment_no_viewer_id_column"),
    ("reserved-example", [["viewer_id"], [min(RESERVED_EXAMPLE_IDS)]], None, "viewer_id_reserved_example"),
    ("control-chars", [["viewer_id"], ["viewer\u200b-00001"]], None, "viewer_id_control_chars"),
]


@pytest.mark.parametrize("rows, build, code", [r[1:] for r in NEAR_MISSES], ids=[r[0] for r in NEAR_MISSES])
def test_near_misses_go_to_review(rows: list[list[Any]], build: Any, code: str) -> None:
    message = read(xlsx(rows, build=build))
    assert code in codes(message), message.problems
    assert code in REASONS
    decision = decide(message, config_from_dict({
        "tenants": [{"name": "acme", "senders": ["@acme.example"], "environments": ["env_acme_prod"]}],
        "policy": {"trusted_authserv_ids": ["mx.test.example"], "time_zone": "UTC"},
        "delivery": {"from_address": "privacy@privacy.example"},
    }))
    assert decision.outcome == "review"


def test_a_formula_is_never_evaluated_nor_its_cached_value_trusted() -> None:
    """Excel stores a formula's last result beside it: the id it shows could be anything."""
    data = _with_sheet_xml(
        '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>viewer_id</t></is></c></row>'
        '<row r="2"><c r="A2" t="str"><f>"viewer-"&amp;"00001"</f><v>viewer-00001</v></c></row>'
        '<row r="3"><c r="A3"><f t="shared" ref="A3:A4" si="0">ROW()*1000</f><v>3000</v></c></row>'
        '<row r="4"><c r="A4"><f t="shared" si="0"/><v>4000</v></c></row></sheetData>')
    message = read(data)
    assert message.viewer_ids == ()
    assert "attachment_formula" in codes(message)


def test_problem_texts_name_the_workbook_never_the_cell_value() -> None:
    message = read(xlsx([["viewer_id"], ["zQsecret-1"], [1.2e15]], build=_formula("A4", '="zQsecret-2"')))
    texts = " ".join(p.text for p in message.problems)
    assert "viewers.xlsx" in texts and "zQsecret" not in texts and "1.2" not in texts


@pytest.mark.parametrize(
    "filename, content_type, named",
    [
        ("viewers.xls", "application/vnd.ms-excel", "Excel 97-2003 workbook (.xls)"),
        ("viewers.ods", "application/vnd.oasis.opendocument.spreadsheet", "OpenDocument spreadsheet (.ods)"),
        ("viewers.numbers", "application/x-iwork-numbers-sffnumbers", "Numbers spreadsheet (.numbers)"),
        ("viewers.xlsm", "application/vnd.ms-excel.sheet.macroEnabled.12", "macro-enabled Excel workbook (.xlsm)"),
        ("viewers.xlsb", "application/vnd.ms-excel.sheet.binary.macroEnabled.12", "binary Excel workbook (.xlsb)"),
        ("scan.pdf", "application/pdf", "PDF document"),
        ("blob", "application/x-something", "of type application/x-something"),
    ],
)
def test_other_formats_go_to_review_named(filename: str, content_type: str, named: str) -> None:
    message = read(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), filename=filename, content_type=content_type)
    (problem,) = [p for p in message.problems if p.code == "attachment_unreadable"]
    assert named in problem.text and filename.split(".")[0] in problem.text
    assert message.viewer_ids == ()


@pytest.mark.parametrize(
    "data",
    [
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2000),  # a password-protected workbook is an OLE file
        b"PK\x03\x04" + bytes(100),  # a broken zip
        b"viewer_id\nviewer-00001\n",  # a CSV named .xlsx
        b"",
    ],
    ids=["encrypted", "broken-zip", "csv-named-xlsx", "empty"],
)
def test_what_is_not_a_workbook_goes_to_review(data: bytes) -> None:
    message = read(data)
    assert message.viewer_ids == ()
    assert "attachment_unreadable" in codes(message)


# ---------------------------------------------------------------- bounds: zip bombs, hostile XML, the budget

def _with_sheet_xml(sheet_data: str, *, extra: str = "") -> bytes:
    """A real workbook whose first sheet's XML is replaced (what Excel or a forger may write)."""
    source = zipfile.ZipFile(io.BytesIO(xlsx([["x"]])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                body = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                        f'{extra}{sheet_data}</worksheet>').encode()
            target.writestr(info.filename, body)
    return out.getvalue()


def test_a_zip_bomb_is_refused_from_its_directory_before_inflating() -> None:
    bomb = _with_sheet_xml("<sheetData>" + "<row/>" * (MAX_XLSX_MEMBER_BYTES // 6 + 10) + "</sheetData>")
    assert len(bomb) < 1_000_000  # small on the wire
    started = time.process_time()
    message = read(bomb)
    assert time.process_time() - started < 1.0
    assert "attachment_too_large" in codes(message)


def test_many_parts_that_add_up_are_refused() -> None:
    source = zipfile.ZipFile(io.BytesIO(xlsx([["viewer_id"], ["viewer-00001"]])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
        for n in range(MAX_XLSX_TOTAL_BYTES // MAX_XLSX_MEMBER_BYTES + 1):
            target.writestr(f"xl/media/pad{n}.bin", bytes(MAX_XLSX_MEMBER_BYTES - 1))
    message = read(out.getvalue())
    assert "attachment_too_large" in codes(message) and message.viewer_ids == ()


def test_a_directory_that_understates_a_size_never_inflates_past_it() -> None:
    """zipfile stops a member at its declared size and then fails its CRC: a lie is unreadable, not large."""
    data = bytearray(_with_sheet_xml("<sheetData>" + '<row><c t="inlineStr"><is><t>a</t></is></c></row>' * 50_000
                                     + "</sheetData>"))
    # the central directory entry of the sheet says it inflates to 1000 bytes
    name = b"xl/worksheets/sheet1.xml"
    pos, rewritten = 0, 0
    while (pos := data.find(b"PK\x01\x02", pos)) != -1:
        name_len = int.from_bytes(data[pos + 28:pos + 30], "little")
        if data[pos + 46:pos + 46 + name_len] == name:
            data[pos + 24:pos + 28] = (1000).to_bytes(4, "little")
            rewritten += 1
        pos += 4
    assert rewritten == 1
    message = read(bytes(data))
    assert message.viewer_ids == ()
    assert codes(message) & {"attachment_unreadable", "attachment_no_viewer_id_column"}


def test_entity_expansion_is_refused() -> None:
    laughs = ('<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
              '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>')
    data = _with_sheet_xml('<sheetData><row><c t="inlineStr"><is><t>&lol3;</t></is></c></row></sheetData>')
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                body = body.replace(b"<worksheet", laughs.encode() + b"<worksheet", 1)
            target.writestr(info.filename, body)
    message = read(out.getvalue())
    assert message.viewer_ids == ()
    assert "attachment_unreadable" in codes(message)


def test_far_away_cells_cost_nothing() -> None:
    """A cell at XFD1048576 does not make a million rows of sixteen thousand cells."""
    data = _with_sheet_xml(
        '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>viewer_id</t></is></c></row>'
        '<row r="2"><c r="A2" t="inlineStr"><is><t>viewer-00001</t></is></c></row>'
        '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData>',
        extra='<dimension ref="A1:XFD1048576"/><cols><col min="2" max="16384" width="9"/></cols>')
    started = time.process_time()
    message = read(data)
    assert time.process_time() - started < 1.0
    assert message.viewer_ids == ("viewer-00001",) and message.problems == ()


@pytest.mark.slow
def test_a_large_real_workbook_reads_within_the_parse_budget() -> None:
    """100,000 ids with two more columns (5 MB as Excel writes it) in the budget worker: 20 s, 512 MB."""
    rows = [["viewer_id", "name", "last_seen"]] + [[f"3f2a9c1e-8d4a-4c6b-9e2f-{i:012d}", f"Viewer {i}", 45000 + i % 300]
                                                     for i in range(100_000)]
    data = xlsx(rows)
    assert len(data) < 5_000_000
    with ParseWorker(ParseBudget(timeout_seconds=20, memory_mb=512)) as worker:
        started = time.monotonic()
        message = worker.parse(attached(data), max_viewer_ids=100_000, max_attachment_bytes=5_000_000)
        elapsed = time.monotonic() - started
    assert "parse_budget_exceeded" not in codes(message)
    assert len(message.viewer_ids) == 100_000 and message.problems == ()
    assert elapsed < 20


# ---------------------------------------------------------------- never a different id

TEXT_ID = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=20)
NUMBER_ID = st.one_of(st.integers(-10**17, 10**17), st.floats(allow_nan=True, allow_infinity=True))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(TEXT_ID, NUMBER_ID), min_size=1, max_size=5))
def test_a_cell_is_read_as_its_text_or_the_request_goes_to_review(values: list[Any]) -> None:
    try:
        data = xlsx([["viewer_id"], *([v] for v in values)])
    except IllegalCharacterError:  # characters XML cannot hold: not a workbook Excel writes
        return
    message = read(data)
    if message.problems:
        return
    expected: list[str] = []
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            continue  # openpyxl writes inf and nan as an empty value: an empty cell
        text = str(int(v)) if isinstance(v, (int, float)) else clean_id(v)
        if text and text not in expected:
            expected.append(text)
    assert list(message.viewer_ids) == expected
