"""Header fields read on the wire: split before the stdlib sees them, then read as values."""

from __future__ import annotations

import re
from email.message import Message

from erasure.parse.problems import Collector, single_line

# Limits that keep parsing linear and bounded on hostile input. RFC 5322 allows
# 998 characters a line; folded fields may be longer, but no honest header is
# 16 KiB (the stdlib's header parser is super-linear on long encoded-word runs).
MAX_HEADER_FIELD_BYTES = 16 * 1024
MAX_HEADER_FIELDS = 1000
MAX_SUBJECT_CHARS = 998
MAX_REFERENCES = 50


def split_header_fields(raw: bytes) -> tuple[list[tuple[str, bytes]], bytes, bytes]:
    """Split the header block into whole fields (with folding) before the stdlib sees it.

    Done by hand so that oversized fields can be left out *before* the stdlib's
    header parser (super-linear on some inputs) touches them, and so that the
    number of From fields is counted on the wire, not after any repair.
    """
    m = re.search(rb"\r?\n\r?\n", raw)
    if m is None:
        head, separator, body = raw, b"", b""
    else:
        # The first newline ends the last header line; the second is the blank separator line.
        first_end = m.start() + (2 if raw[m.start() : m.start() + 1] == b"\r" else 1)
        head, separator, body = raw[:first_end], raw[first_end : m.end()], raw[m.end() :]
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
    return re.sub(r"\r?\n[ \t]*", " ", value).strip()


def header_text(msg: Message, name: str, out: Collector) -> str | None:
    """The stdlib's decoded value of a header, or None; a parse failure becomes a defect."""
    try:
        value = msg.get(name)
        if value is None:
            return None
        out.defect(getattr(value, "defects", ()))
        return str(value)
    except Exception as exc:
        out.defect([exc])
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
_CANDIDATE = re.compile(r"<[^<>]*>")
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
    for m in _CANDIDATE.finditer(value):
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
