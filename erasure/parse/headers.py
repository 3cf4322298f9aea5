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
    value = header_text(msg, "Subject", out)
    return single_line(value or "", MAX_SUBJECT_CHARS)


def message_id_of(value: str | None) -> str | None:
    if value is None:
        return None
    m = re.search(r"<[^<>\s]{1,994}>", value)
    return m.group(0) if m else None


def references_of(message_id: str | None, msg: Message) -> tuple[str, ...]:
    refs: list[str] = [message_id] if message_id else []
    for name in ("References", "In-Reply-To"):
        for value in raw_values(msg, name):
            for ref in re.findall(r"<[^<>\s]{1,994}>", value):
                if ref not in refs and len(refs) < MAX_REFERENCES:
                    refs.append(ref)
    return tuple(refs)
