"""Header fields read on the wire: split before the stdlib sees them, then read as values."""

from __future__ import annotations

import re
from email.message import Message

from erasure.parse.problems import Collector, safe_name, single_line

# Limits that keep parsing linear and bounded on hostile input. RFC 5322 allows
# 998 characters a line; folded fields may be longer, but no honest header is
# 16 KiB (the stdlib's header parser is super-linear on long encoded-word runs).
MAX_HEADER_FIELD_BYTES = 16 * 1024
MAX_HEADER_FIELDS = 1000
MAX_SUBJECT_CHARS = 998
MAX_REFERENCES = 50


# Two line ends in a row, each CRLF, LF or a lone CR, as the stdlib's parser reads them.
_BLANK_LINE = re.compile(rb"(\r\n|\r(?!\n)|\n)(\r\n|\r(?!\n)|\n)")


def split_header_fields(raw: bytes) -> tuple[list[tuple[str, bytes]], bytes, bytes]:
    """Split the header block into whole fields (with folding) before the stdlib sees it.

    Done by hand so that oversized fields can be left out *before* the stdlib's
    header parser (super-linear on some inputs) touches them, and so that the
    number of From fields is counted on the wire, not after any repair.
    """
    m = _BLANK_LINE.search(raw)
    if m is None:
        head, separator, body = raw, b"", b""
    else:
        # The first line end closes the last header line; the second is the blank separator line.
        head, separator, body = raw[: m.end(1)], raw[m.start(2) : m.end(2)], raw[m.end() :]
    pieces: list[tuple[str, list[bytes]]] = []
    for line in head.splitlines(keepends=True):
        if pieces and line[:1] in (b" ", b"\t"):
            pieces[-1][1].append(line)  # folded continuation (lists: no quadratic re-copying)
        else:
            name = line.split(b":", 1)[0].strip().decode("ascii", "replace") if b":" in line else ""
            pieces.append((name, [line]))
    fields = [(name, b"".join(lines)) for name, lines in pieces]
    if fields and not fields[-1][1].endswith((b"\n", b"\r")):
        name, value = fields[-1]
        fields[-1] = (name, value + b"\r\n")
    return fields, separator, body


def raw_values(msg: Message, name: str) -> list[str]:
    """Header values as they arrived (not decoded), because parsing must be our own."""
    try:
        return [str(v) for k, v in msg.raw_items() if k.lower() == name.lower()]
    except Exception:
        return []


def unfold(value: str) -> str:
    return re.sub(r"(?:\r\n|\r|\n)[ \t]*", " ", value).strip()  # bare CR too: some mail arrives CR-only


def header_text(msg: Message, name: str, out: Collector) -> str | None:
    """The stdlib's decoded value of a header, or None; if the stdlib cannot decode it, the raw unfolded value."""
    try:
        value = msg.get(name)
        if value is None:
            return None
        return str(value)
    except Exception:
        raws = raw_values(msg, name)
        return unfold(raws[0]) if raws else None


def subject_of(msg: Message, out: Collector) -> str:
    """The decoded subject on one line: no controls, no lone surrogates (8-bit bytes), bounded."""
    value = header_text(msg, "Subject", out)
    return storable(single_line(value or "", MAX_SUBJECT_CHARS)) or ""


# RFC 5322 section 3.6.4: msg-id = "<" id-left "@" id-right ">", here without the
# obsolete and quoted forms: id-left is a dot-atom-text, id-right a dot-atom-text
# or a no-fold-literal. Printable ASCII only, so an 8-bit or control byte is no id.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_MSG_ID = re.compile(rf"<{_DOT_ATOM}@(?:{_DOT_ATOM}|\[[\x21-\x5a\x5e-\x7e]*\])>")
_MSG_ID_CANDIDATE = re.compile(r"<[^<>]*>")
#: Longest msg-id kept: fits the state columns (255) and any header line (998).
MAX_MESSAGE_ID_CHARS = 250


def valid_message_id(value: str | None) -> str | None:
    """``value`` if it is exactly one well-formed ``<local@domain>`` msg-id, else None.

    Every Message-ID that is stored, and every id our replies carry in
    In-Reply-To and References, passes through here: what the requester wrote
    is never trusted in a header we send. Besides RFC 5322 syntax, an id holding
    an encoded-word opener ``=?`` is refused, because Python's header code
    (3.11/3.12) decodes encoded words in unstructured fields, and a decoded CRLF
    would split our reply's header.
    """
    if value is None or len(value) > MAX_MESSAGE_ID_CHARS or "=?" in value:
        return None
    return value if _MSG_ID.fullmatch(value) else None


def message_ids_in(value: str) -> list[str]:
    """The valid msg-ids in a header value, in order; anything else in it is ignored."""
    found: list[str] = []
    for m in _MSG_ID_CANDIDATE.finditer(value):
        valid = valid_message_id(m.group(0))
        if valid is not None and valid not in found:
            found.append(valid)
    return found


def message_id_of(value: str | None) -> str | None:
    """The message's own id: the first valid msg-id in its Message-ID field, or None.

    None (no threading) is the safe answer for an 8-bit, NUL-bearing, nested,
    encoded or over-long id: a reply is still sent, just not threaded.
    """
    if value is None:
        return None
    ids = message_ids_in(value)
    return ids[0] if ids else None


def references_of(message_id: str | None, msg: Message) -> tuple[str, ...]:
    """The thread: the message's own id, then valid ids from References and In-Reply-To (bounded)."""
    refs: list[str] = [message_id] if message_id else []
    for name in ("References", "In-Reply-To"):
        for value in raw_values(msg, name):
            for ref in message_ids_in(value):
                if ref not in refs and len(refs) < MAX_REFERENCES:
                    refs.append(ref)
    return tuple(refs)


# ---------------------------------------------------------------- part headers
#
# The stdlib parses every MIME part's headers while it builds the tree (it needs
# each part's Content-Type and boundary) and again when we ask for a file name,
# and its header parser is super-linear in the number of parameters, RFC 2231
# segments and encoded words (a 224 KB attachment header took 9 s and 1.9 GB).
# So part headers are checked on the raw bytes first, before the stdlib sees
# them. An honest part has a handful of short fields with a few parameters.

MAX_PART_HEADER_FIELD_BYTES = 8 * 1024
MAX_PART_HEADER_FIELDS = 50
MAX_HEADER_PARAMETERS = 30  # parameters in one field, RFC 2231 continuation segments included
# All part header blocks together: honest mail has a few hundred bytes and a
# few parameters a part (and at most MAX_MIME_PARTS parts); these keep the
# stdlib's total work small however the load is spread over the parts.
MAX_PART_HEADER_BYTES = 64 * 1024
MAX_PART_PARAMETERS = 500
# What an over-the-cap part's header block is replaced with: a leaf the reader skips.
UNREAD_PART_TYPE = "application/x-erasure-unread"
_UNREAD_BLOCK = f"Content-Type: {UNREAD_PART_TYPE}\r\n".encode()

_DELIMITER_CANDIDATE = re.compile(rb"(?<![^\r\n])--")  # a line starting "--" (any of CR, LF, CRLF ends lines)
_LINE_END = re.compile(rb"\r\n|\r|\n")
_HEADER_LINE = re.compile(rb"[\041-\071\073-\176]*:|From ")  # the stdlib's own test for a header line
_SEGMENT = re.compile(rb"\*[0-9]+\*?[ \t]*=")
MESSAGE_CONTENT_TYPE = re.compile(rb"(?i)(?<![^\r\n])content-type[ \t]*:[ \t\r\n]*message/")


# The fields the stdlib reads as "value; name=value; ..." (its ParameterizedMIMEHeader).
PARAMETERIZED_FIELDS = frozenset({"content-type", "content-disposition"})


def parameter_count(name: str, value: bytes) -> int:
    """Parameters in a Content-Type or Content-Disposition field (0 for any other field)."""
    if name.lower() not in PARAMETERIZED_FIELDS:
        return 0
    return value.count(b";")  # an over-count (";" inside quotes) only errs towards review


def parameter_problem(name: str, value: bytes, consequence: str = "and was not read") -> tuple[str, str] | None:
    """A (code, text) Problem when one Content-Type or Content-Disposition has more parameters than anyone honest writes."""
    params = parameter_count(name, value)
    segments = len(_SEGMENT.findall(value)) if params > MAX_HEADER_PARAMETERS // 2 else 0
    if params > MAX_HEADER_PARAMETERS or segments > MAX_HEADER_PARAMETERS:
        what = "RFC 2231 continuation segments" if segments > MAX_HEADER_PARAMETERS // 2 else "parameters"
        return ("too_many_header_parameters",
                f"a {safe_name(name)} header has more than {MAX_HEADER_PARAMETERS} {what} {consequence}")
    return None


def _header_block(buf: bytes, start: int) -> tuple[int, int, list[tuple[str, int]]]:
    """The header lines from ``start``: (end of the block, start of what follows, [(name, size)]).

    Follows the stdlib's feedparser: a block ends at a blank line (which is
    skipped) or at the first line that is neither a header nor a continuation.
    """
    fields: list[tuple[str, int]] = []
    pos = start
    n = len(buf)
    while pos < n:
        m = _LINE_END.search(buf, pos)
        eol, nxt = (m.start(), m.end()) if m else (n, n)
        if eol == pos:  # blank line: the headers are over
            return pos, nxt, fields
        first = buf[pos : pos + 1]
        if first in (b" ", b"\t") and fields:
            name, size = fields[-1]
            fields[-1] = (name, size + nxt - pos)
        elif _HEADER_LINE.match(buf, pos):
            colon = buf.find(b":", pos, eol)
            fields.append((buf[pos : max(colon, pos)].strip().decode("ascii", "replace"), nxt - pos))
        else:
            return pos, pos, fields
        pos = nxt
    return pos, pos, fields


def _block_problem(buf: bytes, start: int, fields: list[tuple[str, int]]) -> tuple[tuple[str, str] | None, int]:
    """(the Problem of one part's header block, or None; its number of parameters)."""
    if len(fields) > MAX_PART_HEADER_FIELDS:
        return ("too_many_part_headers",
                f"a MIME part has more than {MAX_PART_HEADER_FIELDS} header fields and was not read"), 0
    pos = start
    params = 0
    for name, size in fields:
        value = buf[pos : pos + size]
        pos += size
        if size > MAX_PART_HEADER_FIELD_BYTES:
            return ("part_header_too_long",
                    f"a MIME part's {safe_name(name)} header is longer than {MAX_PART_HEADER_FIELD_BYTES} bytes; the part was not read"), params
        problem = parameter_problem(name, value, "in a MIME part; the part was not read")
        if problem is not None:
            return problem, params
        params += parameter_count(name, value)
    return None, params


def capped_part_headers(body: bytes, out: Collector, *, body_is_message: bool = False) -> bytes:
    """The body with every over-the-cap MIME part header block replaced, before the stdlib parses it.

    Every line starting "--" is taken as a possible delimiter (without working
    out which boundaries are real, so a hidden or RFC 2231-encoded boundary
    cannot slip a part past the check); the header lines after it are checked
    for size, count and parameters. A block over a cap becomes a bare
    ``UNREAD_PART_TYPE`` header: the stdlib sees a small leaf, the reader skips
    it, and the Problem sends the request to review. Blocks under the caps are
    left byte for byte. ``body_is_message``: the body starts with headers of its
    own (a top-level message/rfc822), as do the bodies of message/* parts.
    """
    pieces: list[bytes] = []
    copied = 0  # body[:copied] is in pieces (or replaced)
    scanned = 0  # positions before this were inside a block already checked
    total = params = 0
    starts: list[int] = [0] if body_is_message else []
    candidates = _DELIMITER_CANDIDATE.finditer(body)
    while True:
        if starts:
            start = starts.pop()
        else:
            m = next(candidates, None)
            if m is None:
                break
            if m.start() < scanned:
                continue
            eol = _LINE_END.search(body, m.start())
            start = eol.end() if eol else len(body)
        end, after, fields = _header_block(body, start)
        scanned = max(scanned, end)
        if not fields:
            continue
        total += end - start
        problem, count = _block_problem(body, start, fields)
        params += count
        if problem is None and total > MAX_PART_HEADER_BYTES:
            problem = ("part_header_too_long",
                       f"the MIME part headers add up to more than {MAX_PART_HEADER_BYTES} bytes; the rest were not read")
        if problem is None and params > MAX_PART_PARAMETERS:
            problem = ("too_many_header_parameters",
                       f"the MIME part headers have more than {MAX_PART_PARAMETERS} parameters in all; the rest were not read")
        if problem is not None:
            out.add(*problem)
            pieces += [body[copied:start], _UNREAD_BLOCK]
            copied = end
        elif MESSAGE_CONTENT_TYPE.search(body, start, end):
            starts.append(after)  # a message/* part: its body begins with the inner message's headers
    if not pieces:
        return body
    pieces.append(body[copied:])
    return b"".join(pieces)


_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROLS_SINGLE = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROLS_MULTI = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def storable(value: str | None, limit: int | None = None, *, multiline: bool = False) -> str | None:
    """Text that every state database can hold, whatever a message carried.

    8-bit header bytes arrive from the stdlib as lone surrogates (valid in no
    encoding), PostgreSQL refuses NUL, and a column has a length: so lone
    surrogates become U+FFFD, control characters go (line breaks and tabs become
    spaces unless ``multiline``), and the text is cut to ``limit`` characters.
    Pure and idempotent, so the state boundary can apply it to a value twice.
    """
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    text = _SURROGATES.sub("\ufffd", text)
    if multiline:
        text = _CONTROLS_MULTI.sub("", text)
    else:
        text = _CONTROLS_SINGLE.sub(lambda m: " " if m.group(0) in "\t\r\n" else "", text)
    return text if limit is None else text[:limit]
