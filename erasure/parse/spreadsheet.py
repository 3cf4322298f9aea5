"""Excel workbooks (.xlsx): the cells of the first sheet as text, read without evaluating anything.

An .xlsx file is a zip of XML parts. Its bounds are checked on the zip
directory before anything is inflated (a 5 MB attachment can declare gigabytes:
a zip bomb); Python's zipfile then never inflates a member past the size the
directory declares. openpyxl reads the workbook read-only, through defusedxml
(no entity expansion), with formulas as their text: nothing is evaluated,
and a cached result is never trusted.

What a cell of the viewer id column may be (``cell_text``): text, as written;
a whole number in the General format up to 15 digits, as Excel shows it
(``12345``, never ``12345.0``). Anything else sends the request to review,
because the id the customer sees may not be the id the file holds: a formula
or its error value (``attachment_formula``); a number with more than 15
digits, a fraction, scientific notation, a date, TRUE/FALSE, or a number shown
through a format such as ``00000`` (``viewer_id_number_mangled``: Excel keeps
15 significant digits, so a 16-digit id typed into it has already changed).

What a person does not see is not read silently (as with hidden HTML): a cell
in a hidden row or column, or a first sheet that is hidden, is
``attachment_hidden_cells``; a filtered list keeps its hidden rows in the
file. Only the first sheet is read, so data on any other sheet is
``attachment_several_sheets``.

The rows are read with openpyxl's own worksheet parser over the read-only
sheet (as ``ReadOnlyWorksheet`` does), because it yields only the cells the
file holds and each row's attributes (hidden), where the public row iterator
pads every row to the sheet's width and drops row attributes.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from erasure.parse.problems import Collector

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_XLSX_MEMBERS = 1000  # an Excel workbook has a few dozen parts
MAX_XLSX_MEMBER_BYTES = 40 * 1024 * 1024  # one part inflated: the sheet (~150 bytes a row as Excel writes it) or the shared strings
MAX_XLSX_TOTAL_BYTES = 64 * 1024 * 1024  # all parts inflated: what a 5 MB attachment of real data holds, read within the parse budget
MAX_EXACT_DIGITS = 15  # Excel keeps 15 significant digits of a number
MAX_COLUMNS = 16_384  # Excel's XFD
_PLAIN_NUMBER_FORMATS = frozenset({"General", "0", "@"})


@dataclass(frozen=True)
class CellProblem:
    """A cell whose id cannot be known from the file: the code and a sentence without the cell's value."""

    code: str
    text: str


Cell = str | CellProblem
Row = dict[int, Cell]  # column number (1 = A) -> a non-empty cell


def _mangled(what: str) -> CellProblem:
    return CellProblem("viewer_id_number_mangled",
                       f"holds {what}; Excel may have changed the id it stands for (format the column as Text)")


FORMULA = CellProblem("attachment_formula", "holds a formula, which is never evaluated")
ERROR_VALUE = CellProblem("attachment_formula", "holds an error value (#N/A, #REF!...) left by a formula")
HIDDEN = CellProblem("attachment_hidden_cells", "is in a hidden row or column, which the sender may not have seen")


def cell_text(value: Any, data_type: str, number_format: str) -> Cell | None:
    """One cell as an id would be read from it (see the module docstring); None when it is empty."""
    if value is None:
        return None
    if data_type == "f":
        return FORMULA
    if data_type == "e":
        return ERROR_VALUE
    if isinstance(value, str):
        return value if value.strip() else None
    if data_type == "b" or isinstance(value, bool):
        return _mangled("TRUE or FALSE")
    if data_type == "d" or not isinstance(value, (int, float)):
        return _mangled("a date or time")
    if number_format not in _PLAIN_NUMBER_FORMATS:
        return _mangled("a number shown through a number format (such as 00000 or #,##0)")  # the format may hold text
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return _mangled("a number with a fraction or in scientific notation")
        value = int(value)
    if abs(value) >= 10**MAX_EXACT_DIGITS:
        return _mangled(f"a number of more than {MAX_EXACT_DIGITS} digits")
    return str(value)


def _too_large(archive: zipfile.ZipFile) -> str | None:
    """Why the workbook is refused before inflating anything, from its zip directory; None if it is within bounds."""
    infos = archive.infolist()
    if len(infos) > MAX_XLSX_MEMBERS:
        return f"has more than {MAX_XLSX_MEMBERS} parts"
    if any(i.file_size > MAX_XLSX_MEMBER_BYTES for i in infos):
        return f"has a part that inflates to more than {MAX_XLSX_MEMBER_BYTES} bytes"
    if sum(i.file_size for i in infos) > MAX_XLSX_TOTAL_BYTES:
        return f"inflates to more than {MAX_XLSX_TOTAL_BYTES} bytes"
    return None


def _not_plain(archive: zipfile.ZipFile) -> bool:
    """Encrypted parts, or compression Excel never writes (bzip2, LZMA): not read."""
    return any(i.flag_bits & 0x1 or i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
               for i in archive.infolist())


def _hidden_columns(parser: Any) -> set[int]:
    hidden: set[int] = set()
    for attrs in parser.column_dimensions.values():
        if str(attrs.get("hidden", "")).lower() in ("1", "true"):
            first, last = int(attrs.get("min", 0)), min(int(attrs.get("max", 0)), MAX_COLUMNS)
            hidden.update(range(max(first, 1), last + 1))
    return hidden


def _parser(workbook: Any, sheet: Any, source: Any) -> Any:
    """The parser exactly as openpyxl's ReadOnlyWorksheet builds it (formulas as text: data_only is False)."""
    from openpyxl.worksheet._reader import WorkSheetParser

    return WorkSheetParser(source, sheet._shared_strings, data_only=False, epoch=workbook.epoch,
                           date_formats=workbook._date_formats, timedelta_formats=workbook._timedelta_formats)


def _rows(workbook: Any, sheet: Any) -> Iterator[Row]:
    from openpyxl.cell.read_only import ReadOnlyCell

    hidden_sheet = sheet.sheet_state != "visible"
    hidden_columns: set[int] | None = None
    with sheet._get_source() as source:
        parser = _parser(workbook, sheet, source)
        for index, cells in parser.parse():
            attrs = parser.row_dimensions.get(str(index), {})
            hidden_row = hidden_sheet or str(attrs.get("hidden", "")).lower() in ("1", "true")
            if hidden_columns is None:  # <cols> comes before <sheetData>: known by the first row
                hidden_columns = _hidden_columns(parser)
            row: Row = {}
            for cell in cells:
                fmt = "General"
                if cell["data_type"] == "n" and cell["value"] is not None:
                    fmt = ReadOnlyCell(sheet, index, cell["column"], cell["value"], "n", cell["style_id"]).number_format
                text = cell_text(cell["value"], cell["data_type"], fmt)
                if text is not None:
                    row[cell["column"]] = HIDDEN if hidden_row or cell["column"] in hidden_columns else text
            if row:
                yield row


def _has_data(workbook: Any, sheet: Any) -> bool:
    with sheet._get_source() as source:
        for _, cells in _parser(workbook, sheet, source).parse():
            if any(cell_text(c["value"], c["data_type"], "General") is not None for c in cells):
                return True
    return False


def xlsx_rows(name: str, data: bytes, out: Collector) -> Iterator[Row]:
    """The non-empty rows of the workbook's first sheet; anything unreadable is a Problem and ends the rows."""
    # Imported here, not at the top: importing openpyxl costs every command 0.1 s, and few mails hold a workbook.
    from openpyxl import load_workbook

    workbook = None
    try:
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, ValueError, OSError, EOFError):
            out.add("attachment_unreadable", f"the attachment {name} is not a valid .xlsx workbook "
                    "(password-protected workbooks are not zip files and cannot be read); it was not read")
            return
        with archive:
            why = _too_large(archive)
            if why is not None:
                out.add("attachment_too_large", f"the workbook {name} {why}; it was not read")
                return
            if _not_plain(archive):
                out.add("attachment_unreadable", f"the workbook {name} is encrypted or compressed in a way Excel "
                        "does not write; it was not read")
                return
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False, keep_links=False, keep_vba=False)
        sheets = workbook.worksheets
        if not sheets:
            out.add("attachment_unreadable", f"the workbook {name} has no worksheet; it was not read")
            return
        yield from _rows(workbook, sheets[0])
        if any(_has_data(workbook, other) for other in sheets[1:]):
            out.add("attachment_several_sheets", f"the workbook {name} has data on more than one sheet; only the "
                    "first is read, so ids on the others may be missed")
    except MemoryError:
        raise  # the parse budget's to report (parse_message)
    except Exception as exc:  # a hostile or broken workbook: openpyxl and the XML parser raise many kinds
        out.add("attachment_unreadable", f"the workbook {name} could not be read ({type(exc).__name__}); it was not read")
    finally:
        if workbook is not None:
            workbook.close()

