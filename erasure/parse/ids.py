"""Viewer ids: the documented grammar in text and attachments, and the checks every id passes."""

from __future__ import annotations

import csv
import io
import re
import unicodedata

from erasure.parse.problems import CONTROL_CATEGORIES, Collector, single_line

_LABEL_RE = re.compile(
    r"^[ \t]*(?:[-*\u2022][ \t]+)?viewer[ _-]?id(?P<plural>s)?[ \t]*(?:[:=]|[-\u2013\u2014])[ \t]*(?P<value>.*)$",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^(?:[-*\u2022]|\d{1,4}[.)])[ \t]+")
_QUOTE_PAIRS = {'"': '"', "'": "'", "`": "`", "\u201c": "\u201d"}


def clean_id(value: str) -> str:
    """Trim, and drop one pair of surrounding quotes/backticks (documented)."""
    v = value.strip(" \t\r\n")
    if len(v) >= 2 and _QUOTE_PAIRS.get(v[0]) == v[-1]:
        v = v[1:-1].strip(" \t")
    return v


def ids_from_text(text: str, ids: list[str]) -> None:
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = _LABEL_RE.match(lines[i])
        i += 1
        if m is None:
            continue
        value = m.group("value")
        if value.strip():
            if m.group("plural"):
                ids.extend(clean_id(v) for v in re.split(r"[,;]", value) if v.strip())
            else:
                ids.append(clean_id(value))
            continue
        # Label alone on its line: a list follows, one id a line, until a blank line or another label.
        while i < len(lines) and lines[i].strip() and not _LABEL_RE.match(lines[i]):
            item = _BULLET.sub("", lines[i].strip(" \t"), count=1)
            ids.append(clean_id(item))
            i += 1


_CSV_HEADERS = {"viewer_id", "viewer id", "viewerid", "viewer-id"}


def _csv_rows(content: str, delimiter: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    return [row for row in reader if any(cell.strip() for cell in row)]


def _ids_from_csv(name: str, content: str, out: Collector) -> list[str]:
    """The viewer_id column (comma, semicolon or tab separated, as spreadsheets export), or one id a line."""
    hint = re.match(r"sep=(.)\r?\n", content)  # Excel's delimiter hint line
    delimiters = [hint.group(1)] if hint else [",", ";", "\t"]
    if hint:
        content = content[hint.end() :]
    try:
        tables = [_csv_rows(content, d) for d in delimiters]
    except csv.Error as exc:
        out.add("attachment_unreadable", f"the attachment {name} is not valid CSV ({exc})")
        return []
    for rows in tables:
        if not rows:
            return []
        matches = [i for i, cell in enumerate(rows[0]) if cell.strip().lower() in _CSV_HEADERS]
        if len(matches) > 1:
            out.add("attachment_ambiguous", f"the attachment {name} has more than one viewer_id column")
            return []
        if matches:
            col = matches[0]
            return [clean_id(row[col]) for row in rows[1:] if col < len(row) and row[col].strip()]
    rows = tables[0]
    if all(len(row) == 1 for row in rows):
        return [clean_id(row[0]) for row in rows]
    out.add("attachment_no_viewer_id_column", f"the attachment {name} has several columns but none is called viewer_id")
    return []


def ids_from_attachment(name: str, kind: str, content: str, ids: list[str], out: Collector) -> None:
    if not content.strip():
        return
    if kind == "csv":
        ids.extend(_ids_from_csv(name, content, out))
        return
    lines = [line for line in content.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()]
    if lines and lines[0].strip().lower() in _CSV_HEADERS:
        lines = lines[1:]  # a "viewer_id" heading is not an id
    ids.extend(clean_id(line) for line in lines)


_SEPARATORS = re.compile(r"[\s,;]")


def checked_ids(ids: list[str], out: Collector, max_len: int, max_ids: int) -> tuple[str, ...]:
    """Exact ids, de-duplicated in order; every doubtful one becomes a Problem instead of an id."""
    good: list[str] = []
    seen: set[str] = set()
    for raw_id in ids:
        value = raw_id
        if not value:
            continue
        if "\ufffd" in value:
            out.add("viewer_id_undecodable", "a viewer id contains bytes that could not be decoded")
            continue
        if any(unicodedata.category(c) in CONTROL_CATEGORIES for c in value if c not in " \t"):
            out.add("viewer_id_control_chars", "a viewer id contains control or invisible (zero-width, bidi) characters")
            continue
        if len(value) > max_len:
            out.add("viewer_id_too_long", f"a viewer id is longer than {max_len} characters")
            continue
        if _SEPARATORS.search(value):
            out.add("viewer_id_ambiguous", f"{single_line(value, 80)!r} contains a space, comma or semicolon: one id or several?")
            continue
        if value not in seen:
            seen.add(value)
            good.append(value)
    if len(good) > max_ids:
        out.add("too_many_viewer_ids", f"the request names {len(good)} viewer ids; more than {max_ids} need a person")
    return tuple(good)
