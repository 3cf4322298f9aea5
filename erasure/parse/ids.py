"""Viewer ids: the documented grammar in text and attachments, and the checks every id passes.

An id read wrongly erases a viewer nobody named, so the grammar is small,
written down here and in the README ("How customers format requests"), and
followed exactly. Where a message does not fit it, the request goes to a
person (a ``Problem``); the parser never guesses.

The grammar, line by line over the sender's own words (quotes and signatures
already cut off by ``quotes.unquoted``):

Label line
    optional indentation, an optional bullet (``-``, ``*``, ``•`` and a space),
    then a label, then a separator: ``:`` or ``=`` (spaces around it
    optional), or a dash (``-``, ``–``, ``—``) with a space on *both* sides.
    ``viewer-id-123`` is therefore not a label: it is an id that happens to
    start with the word (read as one inside a list, flagged as
    ``viewer_id_label_unclear`` outside one).
    The labels are data (``erasure/parse/languages.py``, one table per
    language): ``viewer id`` / ``viewer_id`` / ``viewer-id`` / ``viewerid`` in
    every language (customers mostly keep the English term), optionally plural
    (``ids``, Dutch/Danish ``id's``/``id'er``), and each language's own
    (``Zuschauer-ID``, ``identifiant viewer``/``spectateur``, ``ID del
    espectador``/``visor``, ``ID spettatore``, ``kijker-ID``, ``ID do
    espectador``, ``ID widza``, ``tittar-ID``, ``seer-ID``, ``katsojatunnus``,
    ``ID diváka``, with their plurals). Labels match ignoring case and accents,
    with any typographic space (NBSP, narrow NBSP, thin space) read as a space,
    so French typography's ``Viewer ID : x`` is a label. The id itself is cut
    from the original line, never folded, and typographic spaces around it are
    trimmed.
Value on the label line
    singular label: the rest of the line is one id; plural label
    (``Viewer IDs: a, b; c``): the rest is split on commas and semicolons.
    One pair of surrounding quotes or backticks is dropped.
Introducing sentence
    a line of prose that *ends* with a label and a colon, perhaps with one of
    the language's words between them ("Please delete all data for the
    following viewer IDs:", "…zu den folgenden Viewer-IDs:", "…die folgenden
    Zuschauer-IDs zu löschen:", "…les identifiants viewer suivants :", "…the
    viewer IDs below:"), starts a list exactly as a label alone does. Without
    the label there is no list: "the following viewers:" or "the following
    ids:" followed by lines reads nothing (the request then has no id and goes
    to a person). A label followed by an id *inside* a sentence ("please also
    delete viewer ID: abc") is not read and sends the request to review
    (``viewer_id_in_sentence``): it is too easy to miss one id in a paragraph
    while erasing the others.
List
    a label or an introducing sentence with nothing after the colon starts a list: one id a line,
    each optionally bulleted (``-``, ``*``, ``•``, ``·``, ``–`` or ``1.``,
    ``1)`` followed by a space). The list ends at the first blank line, at the
    next label line, or at the end of the text. Nothing else ends it: a line
    inside the list that is not an id (it contains a space, such as a sentence
    or "Kind regards, Bob"; it is a bare word or name made of letters only,
    such as "Thanks" or "Bob"; it is a separator such as ``---``) sends the
    whole request to review (``viewer_id_list_unclear``) and is not read as an
    id. Ids made of letters only must therefore be written on ``Viewer ID:``
    lines or sent in a file.
    A ``Viewer IDs:`` line with no id right under it (a blank line, or the end
    of the text) is ``viewer_id_list_unclear`` too: HTML mail that puts each
    line in its own paragraph would otherwise lose every id after the first.
Lines after labelled ids or a finished list
    are prose, except that when the first non-blank line after a label with a
    value, or after a list's closing blank line, is id-shaped (no space, not a
    bare word), the request goes to review (``viewer_id_unlabelled``):
    "Viewer ID: a-1" followed by "b-2", or a list with a blank line in the
    middle, probably named more ids than the grammar reads.
Bare UUID lines
    a UUID alone on a line (perhaps bulleted) outside a list is never read (a
    guess: is it a viewer, a session, a ticket?), but it is not ignored either:
    the request goes to review (``viewer_id_bare_uuid``).
Dates, phone numbers, ticket numbers
    an id read from text that has the shape of a date (``2026-11-02``,
    ``02.11.2026``, ``11/02/26``), a phone number (``+49-30-1234567``,
    ``(030)1234567``) or a ticket number (``#4411``) goes to review
    (``viewer_id_unlikely_shape``). Most such lines never get that far: ones
    with a space ("Ticket #4411", "+49 30 1234567") are sentences, which end a
    list with ``viewer_id_list_unclear`` or are prose outside one. A reference
    such as ``ER-2026-000123`` looks like an id and is read as one only where
    the customer put it as one: on a ``Viewer ID:`` line or in a list (right
    after labelled ids it is ``viewer_id_unlabelled``). Near-misses are tabled
    in tests/test_parse_ids.py (``PROSE_CASES``).
Sentence punctuation
    an id read from text that ends in ``.``, ``:``, ``!`` or ``?`` goes to
    review (``viewer_id_trailing_punctuation``): "Viewer ID: abc." may be the
    id ``abc`` at the end of a sentence or the id ``abc.``. Files are data, so
    the rule does not apply to attachments.
CSV attachment
    the first non-empty row is the heading row. A cell exactly equal (ignoring
    case and surrounding spaces) to a known heading (``viewer_id``,
    ``viewer id``, ``viewer-id``, ``viewerid`` and their plurals) names the
    column; two such cells -> review. Comma, semicolon or tab separated, or as
    an Excel ``sep=`` line says.
One-column CSV or TXT attachment (no heading cell found)
    one id a line. The first line is a heading (skipped) only when it is
    exactly a known heading; when it merely looks like one (letters, spaces,
    ``_`` or ``-`` only, and containing "viewer", "id", "user" or "visitor",
    e.g. ``ViewerIdentifier``) the request goes to review
    (``attachment_header_unclear``); otherwise it is an id. A CSV with several
    columns and no known heading goes to review. A TXT file whose first line
    is tab-separated cells, one exactly a known heading (Excel's "Unicode
    Text"), is read as a tab-separated CSV.
XLSX attachment
    the first sheet's rows, read by the same heading rules as CSV (the first
    non-empty row is the heading row); the cells are read by
    ``parse/spreadsheet.py``, which sends formulas, numbers Excel may have
    changed, and hidden cells to review. In any file, an id in Excel's
    scientific notation (``1.23457E+15``) is a number Excel has rounded:
    ``viewer_id_number_mangled``.

Every id then passes the same checks (``IdCollector.add``): no control or
invisible characters, no undecodable bytes, not over-long, no space, comma or
semicolon (one id or several?), not one of the example ids printed in our own
letters (``RESERVED_EXAMPLE_IDS``: a helpdesk echoing our letter must not
erase "viewers" we made up). Ids are never patterns: ``%`` is the viewer whose
id is the percent sign.

Reading stops at ``max_ids`` distinct ids: the collector keeps no more than
that, notes that there were more (``too_many_viewer_ids``), and the readers
stop, so a hostile message with a million ids costs time and memory in
proportion to the cap, not to the message.

No problem text ever contains an id, not even a rejected one: problem texts
end up in the audit trail and in letters, which must not carry raw ids.
"""

from __future__ import annotations

import csv
import itertools
import re
import unicodedata
from collections.abc import Iterator

from erasure.parse.languages import LANGUAGES, TYPOGRAPHIC_SPACES, fold
from erasure.parse.problems import CONTROL_CATEGORIES, Collector
from erasure.parse.spreadsheet import CellProblem, xlsx_rows

#: Example ids printed in our packaged letters (templates/) and the README. A message
#: naming one echoes our own words (an auto-acknowledgement quoting our letter, or a
#: customer copying the example): it is never acted on. The one place they are listed;
#: tests/test_parse_ids.py fails when a packaged template shows an id not listed here.
RESERVED_EXAMPLE_IDS = frozenset({
    "3f2b9c1e-8d4a-4c6b-9e2f-0a1b2c3d4e5f",
    "customer-7781",
    "3f2a-77c1",
    "9b10-0042",
})

#: Cells and first lines that name the viewer id column (compared lower-cased and trimmed).
KNOWN_HEADINGS = frozenset({
    "viewer_id", "viewer id", "viewer-id", "viewerid",
    "viewer_ids", "viewer ids", "viewer-ids", "viewerids",
})
_HEADING_HINTS = ("viewer", "id", "user", "visitor")
_HEADING_SHAPE = re.compile(r"[^\W\d_]+(?:[ _-]+[^\W\d_]+)*[ \t]*:?")

# Labels of every language we read (erasure/parse/languages.py), matched on the folded line
# (case, accents, typographic spaces ignored); plural labels first, so "Viewer IDs" is not "Viewer ID" + "s".
_SINGULAR = "|".join(f"(?:{w})" for w in dict.fromkeys(w for lang in LANGUAGES.values() for w in lang.labels))
_PLURAL = "|".join(f"(?:{w})" for w in dict.fromkeys(w for lang in LANGUAGES.values() for w in lang.plural_labels))
_AFTER_LABEL = "|".join(
    f"(?:{w})" for w in sorted(dict.fromkeys(w for lang in LANGUAGES.values() for w in lang.after_label), key=len, reverse=True)
)
_LABEL_WORDS = rf"(?:(?P<plural>{_PLURAL})|(?:{_SINGULAR}))"
_SEPARATOR = r"(?:[ \t]*[:=]|[ \t]+[-\u2013\u2014](?=[ \t]|$))"
_LABEL_RE = re.compile(rf"^[ \t]*(?:[-*\u2022][ \t]+)?{_LABEL_WORDS}{_SEPARATOR}[ \t]*(?P<value>.*)$")
# Starts like a label but runs straight on into an id: "viewer-id-123", "viewer_id5", "Zuschauer-ID-7".
_LABEL_LIKE = re.compile(rf"^[ \t]*(?:[-*\u2022][ \t]+)?(?:{_PLURAL}|{_SINGULAR})s?[-_.#\d]")
# A sentence that introduces a list: words, then a label, perhaps "suivants"/"below", then a colon
# ending the line ("Please delete all data for the following viewer IDs:", "...les identifiants viewer suivants :").
_INTRODUCTION = re.compile(rf"(?:\w.*?)?(?<![\w-]){_LABEL_WORDS}(?:[ \t]+(?:{_AFTER_LABEL}))?[ \t]*:[ \t]*$")
# A label with a value inside a sentence ("please delete viewer ID: abc-1"): not read, sent to a person.
_LABEL_IN_SENTENCE = re.compile(rf"\w.*?(?<![\w-]){_LABEL_WORDS}(?:[ \t]+(?:{_AFTER_LABEL}))?[ \t]*[:=][ \t]*\S")
# Shapes of things that are not viewer ids though they have no space: dates, phone numbers, ticket numbers.
_UNLIKELY_ID = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}(?:T[\d:.]+Z?)?"      # 2026-11-02, 2026-11-02T10:00Z
    r"|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}"            # 02.11.2026, 11/02/26
    r"|\d{4}/\d{1,2}/\d{1,2}"                       # 2026/11/02
    r"|\+\d{1,3}[-./()\d]{6,}"                       # +49-30-1234567 (not 0049...: zero-padded ids exist)
    r"|\(\d{2,5}\)[-./\d]{5,}"                      # (030)1234567
    r"|#\d+",                                      # #4411
    re.IGNORECASE,
)
# A UUID alone on a line (perhaps bulleted): never read outside a list, but never ignored either.
_BARE_UUID = re.compile(r"[ \t]*(?:(?:[-*\u2022\u00b7\u2013]|\d{1,4}[.)])[ \t]+)?[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}[ \t]*",
                        re.IGNORECASE)
_BULLET = re.compile(r"^(?:[-*\u2022\u00b7\u2013]|\d{1,4}[.)])[ \t\u00a0\u202f\u2009]+")
_QUOTE_PAIRS = {'"': '"', "'": "'", "`": "`", "\u201c": "\u201d", "\u2018": "\u2019"}
_WHITESPACE = re.compile(r"\s")
_SEPARATORS = re.compile(r"[\s,;]")
# A bare word or name: letters, optionally joined by - ' . (Thanks, Bob, Jean-Luc, O'Brien),
# with any sentence punctuation after it (Thanks!, Cheers,).
_WORD_LIKE = re.compile(r"[^\W\d_]+(?:[-'\u2019.][^\W\d_]+)*[.,;:!?]*")
_RULE_LINE = re.compile(r"[-_=~#.\u2013\u2014]+|\*{2,}")
_SENTENCE_END = (".", ":", "!", "?")


def clean_id(value: str) -> str:
    """Trim, and drop one pair of surrounding quotes/backticks (documented)."""
    v = value.strip(" \t\r\n")
    if len(v) >= 2 and _QUOTE_PAIRS.get(v[0]) == v[-1]:
        v = v[1:-1].strip(" \t")
    return v


class IdCollector:
    """The ids of one request: checked, de-duplicated in first-seen order, and capped.

    The cap bounds what is *read*, not only what is acted on: once ``max_ids``
    distinct ids are held, ``full`` is set, the problem is recorded and the
    readers stop, so memory and time stay proportional to the cap.
    """

    def __init__(self, out: Collector, max_len: int, max_ids: int) -> None:
        self.out = out
        self.max_len = max_len
        self.max_ids = max_ids
        self.ids: list[str] = []
        self._seen: set[str] = set()
        self.full = False

    def add(self, value: str) -> None:
        out = self.out
        if self.full or not value:
            return
        if "\ufffd" in value:
            out.add("viewer_id_undecodable", "a viewer id contains bytes that could not be decoded")
            return
        if any(unicodedata.category(c) in CONTROL_CATEGORIES for c in value if c not in " \t"):
            out.add("viewer_id_control_chars", "a viewer id contains control or invisible (zero-width, bidi) characters")
            return
        if len(value) > self.max_len:
            out.add("viewer_id_too_long", f"a viewer id is longer than {self.max_len} characters")
            return
        if _SEPARATORS.search(value):
            out.add("viewer_id_ambiguous", "a viewer id contains a space, comma or semicolon: one id or several?")
            return
        if value.lower() in RESERVED_EXAMPLE_IDS:
            out.add("viewer_id_reserved_example",
                    "a viewer id is one of the examples printed in our own letters; the message probably echoes one of them")
            return
        if value in self._seen:
            return
        if len(self.ids) >= self.max_ids:
            self.full = True
            out.add("too_many_viewer_ids",
                    f"the request names more than {self.max_ids} viewer ids; reading stopped there and a person must look")
            return
        self._seen.add(value)
        self.ids.append(value)


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")  # CRLF, LF or a lone CR ends a line


def _lines_with_ends(text: str) -> Iterator[str]:
    """Lines one at a time, each with its own ending, without a list of a million lines.

    Every line-ending style counts (CRLF, LF, and the lone CR of classic Mac
    and of some spreadsheet exports), as the csv module's universal newlines do.
    """
    for m in _LINE.finditer(text):
        yield m.group(0)


def _lines(text: str) -> Iterator[str]:
    """Lines one at a time, without their endings."""
    for line in _lines_with_ends(text):
        yield line.rstrip("\r\n")


def _text_id(value: str, sink: IdCollector) -> None:
    value = value.strip(_TEXT_SPACES)
    if value.endswith(_SENTENCE_END):
        sink.out.add("viewer_id_trailing_punctuation",
                     "a viewer id in the text ends in sentence punctuation (. : ! ?): part of the id or of the sentence?")
        return
    if _UNLIKELY_ID.fullmatch(value):
        sink.out.add("viewer_id_unlikely_shape",
                     "a viewer id in the text has the shape of a date, a phone number or a ticket number; "
                     "put only viewer ids under the label")
        return
    sink.add(value)


# Trimmed from ids in the text: HTML's &nbsp; and French typography leave these around words.
_TEXT_SPACES = " \t" + TYPOGRAPHIC_SPACES


def _item(line: str) -> str:
    return clean_id(_BULLET.sub("", line.strip(_TEXT_SPACES), count=1).strip(_TEXT_SPACES))


def _not_an_id(item: str) -> bool:
    """A sentence, a bare word or name, or a separator line: never read as an id from a list."""
    return bool(_WHITESPACE.search(item) or _WORD_LIKE.fullmatch(item) or _RULE_LINE.fullmatch(item))


def _list_item(line: str, sink: IdCollector) -> None:
    item = _item(line)
    if _not_an_id(item):
        sink.out.add("viewer_id_list_unclear", _LIST_UNCLEAR)
        return
    _text_id(item, sink)


_LIST_UNCLEAR = (
    "a list of viewer ids is unclear: a line in it is not an id (a sentence, a name or sign-off, a separator), "
    "or no id follows the 'Viewer IDs:' line; put one id a line right under it and end the list with a blank line"
)


def _label_of(line: str) -> tuple[re.Match[str] | None, str]:
    """The label match on the folded line (same length as the line), and the line folded."""
    folded = fold(line)
    return _LABEL_RE.match(folded), folded


def ids_from_text(text: str, sink: IdCollector) -> None:
    """Label lines, introducing sentences and lists, exactly as the module docstring describes."""
    in_list = False
    items = 0  # lines read in the current list
    watch_next = False  # the first non-blank line after a labelled id or a finished list
    for line in _lines(text):
        if sink.full:
            return
        label, folded = _label_of(line)
        blank = not line.strip(_TEXT_SPACES)
        if watch_next and not blank:
            watch_next = False
            if label is None and not _not_an_id(_item(line)):
                sink.out.add("viewer_id_unlabelled",
                             "a line that looks like an id follows labelled ids or a list without a label of its own; "
                             "put every id under one 'Viewer IDs:' line, one id a line, with no blank lines between")
        if in_list:
            if label is None and not blank:
                items += 1
                _list_item(line, sink)
                continue
            in_list = False  # a blank line or the next label ends the list
            if blank:
                if items == 0:  # "Viewer IDs:", a blank line, then (perhaps) the ids
                    sink.out.add("viewer_id_list_unclear", _LIST_UNCLEAR)
                watch_next = True
                continue
        if label is None:
            _prose_line(line, folded, sink)
            if _INTRODUCTION.match(folded):  # "...for the following viewer IDs:": a list follows
                in_list, items = True, 0
            continue
        value = line[label.start("value"):]  # from the original line: ids are never folded
        if not value.strip(_TEXT_SPACES):
            in_list, items = True, 0
            continue
        watch_next = True
        if label.group("plural"):
            for part in re.split(r"[,;]", value):
                if part.strip(_TEXT_SPACES):
                    _text_id(clean_id(part.strip(_TEXT_SPACES)), sink)
        else:
            _text_id(clean_id(value.strip(_TEXT_SPACES)), sink)
    if in_list and items == 0:
        sink.out.add("viewer_id_list_unclear", _LIST_UNCLEAR)


def _prose_line(line: str, folded: str, sink: IdCollector) -> None:
    """A line outside lists that is not a label line: the near-misses that send the request to a person."""
    if _LABEL_LIKE.match(folded):
        sink.out.add("viewer_id_label_unclear",
                     "a line starts like a viewer id label but has no separator (e.g. viewer-id-123 on its own); "
                     "write each id as 'Viewer ID: <id>'")
    elif _LABEL_IN_SENTENCE.match(folded):
        sink.out.add("viewer_id_in_sentence",
                     "a viewer id follows its label inside a sentence (e.g. 'please delete viewer ID: abc'); "
                     "write each id on a line of its own as 'Viewer ID: <id>', or list them under 'Viewer IDs:'")
    elif _BARE_UUID.fullmatch(line):
        sink.out.add("viewer_id_bare_uuid",
                     "a line that looks like an id (a UUID) stands on its own, without a label or an introducing "
                     "sentence; put every id under one 'Viewer IDs:' line, one id a line, with no blank lines between")


def _is_heading(cell: str) -> bool:
    return cell.strip().lower() in KNOWN_HEADINGS


def _looks_like_heading(cell: str) -> bool:
    value = cell.strip()
    return bool(_HEADING_SHAPE.fullmatch(value)) and any(h in value.lower() for h in _HEADING_HINTS)


def _rows(content: str, delimiter: str) -> Iterator[list[str]]:
    """Non-empty rows, read lazily (the csv module accepts any iterable of lines)."""
    for row in csv.reader(_lines_with_ends(content), delimiter=delimiter):
        if any(cell.strip() for cell in row):
            yield row


def _one_column(name: str, first_lines: Iterator[str], sink: IdCollector) -> None:
    """One id a line; the first line may be a heading (see the module docstring)."""
    first = True
    for line in first_lines:
        if sink.full:
            return
        if first:
            first = False
            if _is_heading(line):
                continue
            if _looks_like_heading(line):
                sink.out.add("attachment_header_unclear",
                             f"the first line of the attachment {name} looks like a column heading but is not "
                             "'viewer_id'; heading or id?")
                continue
        _file_id(clean_id(line), sink)


def _ids_from_csv(name: str, content: str, sink: IdCollector, delimiters: list[str] | None = None) -> None:
    """The viewer_id column (comma, semicolon or tab separated, as spreadsheets export), or one id a line."""
    out = sink.out
    hint = re.match(r"sep=(.)\r?\n", content)  # Excel's delimiter hint line
    delimiters = [hint.group(1)] if hint else delimiters or [",", ";", "\t"]
    if hint:
        content = content[hint.end() :]
    try:
        for delimiter in delimiters:
            header = next(_rows(content, delimiter), None)
            if header is None:
                return
            matches = [i for i, cell in enumerate(header) if _is_heading(cell)]
            if len(matches) > 1:
                out.add("attachment_ambiguous", f"the attachment {name} has more than one viewer_id column")
                return
            if matches:
                col = matches[0]
                rows = _rows(content, delimiter)
                next(rows)
                for row in rows:
                    if sink.full:
                        return
                    if col < len(row) and row[col].strip():
                        _file_id(clean_id(row[col]), sink)
                return
        if any(len(row) != 1 for row in _rows(content, delimiters[0])):
            out.add("attachment_no_viewer_id_column",
                    f"the attachment {name} has several columns but none is called viewer_id")
            return
        _one_column(name, (row[0] for row in _rows(content, delimiters[0])), sink)
    except csv.Error as exc:
        out.add("attachment_unreadable", f"the attachment {name} is not valid CSV ({exc})")


def _tab_table(content: str) -> bool:
    """A text file whose first non-empty line is tab-separated cells, one of them exactly a known heading."""
    first = next((line for line in _lines(content) if line.strip()), "")
    return "\t" in first and any(_is_heading(cell) for cell in first.split("\t"))


# Excel's scientific display of a long number ("1.23457E+15", "-1,2E+16" with a decimal comma): the id was a
# number Excel rounded. Exactly Excel's shape (capital E, a sign, two or three digits), so that hex ids such
# as "3e45" or "1e10" are still ids.
_SCIENTIFIC = re.compile(r"-?\d(?:[.,]\d+)?E[+-]\d{2,3}")


def _file_id(value: str, sink: IdCollector) -> None:
    """An id read from a file: Excel's scientific notation is a number it has already changed."""
    if _SCIENTIFIC.fullmatch(value):
        sink.out.add("viewer_id_number_mangled", "a viewer id in an attachment is written in scientific notation "
                     "(as Excel shows long numbers), so its digits may have been lost")
        return
    sink.add(value)


def _ids_from_sheet(name: str, rows: Iterator[dict[int, str | CellProblem]], sink: IdCollector) -> None:
    """A spreadsheet's rows, read as a CSV file is: the viewer_id column, or one id a row (module docstring)."""
    out = sink.out

    def read(cell: str | CellProblem, where: str) -> None:
        if isinstance(cell, CellProblem):
            out.add(cell.code, f"a cell{where} of the workbook {name} {cell.text}")
        else:
            _file_id(clean_id(cell), sink)

    header = next(rows, None)
    if header is None:
        return
    matches = [col for col, cell in header.items() if isinstance(cell, str) and _is_heading(cell)]
    if len(matches) > 1:
        out.add("attachment_ambiguous", f"the attachment {name} has more than one viewer_id column")
        return
    if matches:
        col = matches[0]
        for row in rows:
            if sink.full:
                return
            if col in row:
                read(row[col], " in the viewer_id column")
        return
    unknown = next((cell for cell in header.values() if isinstance(cell, CellProblem)), None)
    if unknown is not None and len(header) > 1:  # the heading may be the cell we cannot read (hidden, a formula)
        read(unknown, " in the first row")
        return
    column = next(iter(header)) if len(header) == 1 else None
    first = True
    for row in itertools.chain([header], rows):
        if sink.full:
            return
        if len(row) != 1 or column not in row:
            out.add("attachment_no_viewer_id_column",
                    f"the attachment {name} has several columns but none is called viewer_id")
            return
        cell = row[column]
        if first:
            first = False
            if isinstance(cell, str) and _looks_like_heading(cell):
                out.add("attachment_header_unclear",
                        f"the first line of the attachment {name} looks like a column heading but is not "
                        "'viewer_id'; heading or id?")
                continue
        read(cell, "")


def ids_from_attachment(name: str, kind: str, content: str | bytes, sink: IdCollector) -> None:
    """The ids of one attachment: CSV and text as decoded text, an .xlsx workbook as its bytes."""
    if isinstance(content, bytes):
        if kind == "xlsx":
            _ids_from_sheet(name, xlsx_rows(name, content, sink.out), sink)
        return
    if not content or content.isspace():  # (no .strip(): it would copy a large file)
        return
    if kind == "csv":
        _ids_from_csv(name, content, sink)
        return
    if _tab_table(content):  # Excel's "Unicode Text" (.txt): tab-separated, UTF-16 with a byte-order mark
        _ids_from_csv(name, content, sink, delimiters=["\t"])
        return
    if "\r" in content and "\n" not in content:
        content = content.replace("\r", "\n")  # old Mac line ends
    _one_column(name, (line for line in _lines(content) if line.strip()), sink)


def checked_ids(ids: list[str], out: Collector, max_len: int, max_ids: int) -> tuple[str, ...]:
    """Ids typed by an officer: the same checks as ids read from mail."""
    sink = IdCollector(out, max_len, max_ids)
    for value in ids:
        sink.add(value)
        if sink.full:
            break
    return tuple(sink.ids)
