"""Raw email bytes -> what the request asks for, or why a person must look.

This module deletes nothing and trusts nothing: it only reads. It is pure
(bytes in, value out) and never raises, because a mailbox will sooner or later
deliver every kind of broken, hostile or automatic mail, and one bad message
must neither stop the pipeline nor be silently lost. Anything it cannot read
with certainty becomes a ``Problem`` that sends the request to review.

What customers may write is documented in the README ("How customers format
requests"); the grammar here is exactly that and nothing cleverer:

* ``Viewer ID: x`` / ``viewer_id=x`` / ``viewer id - x``: one id, the rest of
  the line, trimmed;
* ``Viewer IDs:`` followed by one id a line (optionally bulleted), until a
  blank line; ``Viewer IDs: a, b`` on one line is split on commas/semicolons;
* a CSV attachment with a ``viewer_id`` column, or a CSV/TXT attachment with
  one id a line.

An id that still contains a space, comma or semicolon is ambiguous (one id or
several?) and goes to review, as do ids with control, format (zero-width,
bidi) or undecodable characters, and over-long ids. Ids are never patterns:
``%`` is the viewer whose id is the percent sign.

Quoted replies (``>`` lines, ``On ... wrote:`` and everything after it,
forwarded/original-message blocks) and signatures (after ``-- ``) are never
read as requests, so a customer's reply quoting an old request cannot restart it.
Erasure words about the mail itself ("delete this e-mail" in a confidentiality
footer) do not make a request. Any named file is a file, whatever its
disposition: CSV and TXT are read, anything else (PDF, images attached as
files, forwarded messages) sends the request to review rather than being
skipped silently.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import html.parser
import io
import re
import unicodedata
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import Any, Iterable, Literal

Kind = Literal["erasure", "access", "other"]

# Limits that keep parsing linear and bounded on hostile input. RFC 5322 allows
# 998 characters a line; folded fields may be longer, but no honest header is
# 16 KiB (the stdlib's header parser is super-linear on long encoded-word runs).
MAX_HEADER_FIELD_BYTES = 16 * 1024
MAX_HEADER_FIELDS = 1000
MAX_MIME_PARTS = 200
MAX_MIME_DEPTH = 20
MAX_DELIMITER_LINES = 2000  # lines starting "--" before the body is not parsed at all
MAX_SUBJECT_CHARS = 998
MAX_REFERENCES = 50
MAX_BODY_TEXT_CHARS = 64 * 1024  # kept on ParsedMessage for display and policy hints
DEFAULT_MAX_ATTACHMENT_BYTES = 5_000_000


@dataclass(frozen=True)
class Problem:
    """Why a request cannot go ahead unattended: a stable code and a sentence for the officer."""

    code: str
    text: str


@dataclass(frozen=True)
class ParsedMessage:
    """Everything policy needs to know about one email, read without trusting it."""

    message_id: str | None
    references: tuple[str, ...]
    subject: str
    from_address: str | None
    from_problem: Problem | None
    return_path: str | None
    automatic: Problem | None
    auth_results: tuple[str, ...]
    kind: Kind
    regulation: Literal["gdpr", "ccpa"] | None
    viewer_ids: tuple[str, ...]
    problems: tuple[Problem, ...]
    defects: tuple[str, ...]
    body_sha256: str
    # Added beyond the workflow contract:
    body_text: str = ""  # the unquoted text that was read (capped), for `requests show` and tenant hints
    attachments: tuple[str, ...] = field(default=())  # file names (sanitised) of attachments that were read


# ---------------------------------------------------------------- entry point


def parse_message(
    raw: bytes,
    *,
    max_viewer_id_length: int = 256,
    max_viewer_ids: int = 100_000,
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
) -> ParsedMessage:
    """Read one raw message; any failure becomes a review Problem, never an exception."""
    digest = hashlib.sha256(raw if isinstance(raw, (bytes, bytearray)) else b"").hexdigest()
    try:
        return _parse(bytes(raw), digest, max_viewer_id_length, max_viewer_ids, max_attachment_bytes)
    except Exception as exc:  # the contract: a decision for every input, never a crash
        return _unreadable(digest, f"the message could not be read ({type(exc).__name__}); a person must look at it")


def _unreadable(digest: str, text: str) -> ParsedMessage:
    problem = Problem("unparseable", text)
    return ParsedMessage(
        message_id=None, references=(), subject="", from_address=None,
        from_problem=Problem("from_unreadable", "the From header could not be read"),
        return_path=None, automatic=None, auth_results=(), kind="other", regulation=None,
        viewer_ids=(), problems=(problem,), defects=(), body_sha256=digest,
    )


class _Collector:
    """Problems and defects gathered while reading, de-duplicated in order."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.defects: list[str] = []

    def add(self, code: str, text: str) -> None:
        if all(p.code != code for p in self.problems):
            self.problems.append(Problem(code, text))

    def defect(self, items: object) -> None:
        for d in items or ():  # type: ignore[attr-defined]
            name = type(d).__name__
            if name not in self.defects:
                self.defects.append(name)


def _parse(raw: bytes, digest: str, max_len: int, max_ids: int, max_attachment: int) -> ParsedMessage:
    out = _Collector()
    fields, separator, body = _split_header_fields(raw)
    from_count = sum(1 for name, _ in fields if name.lower() == "from")
    kept: list[bytes] = []
    for name, value in fields:
        if len(value) > MAX_HEADER_FIELD_BYTES:
            out.add("header_too_long", f"the {_safe_name(name)} header is longer than {MAX_HEADER_FIELD_BYTES} bytes and was not read")
        elif len(kept) >= MAX_HEADER_FIELDS:
            out.add("too_many_headers", f"the message has more than {MAX_HEADER_FIELDS} header fields; the rest were not read")
        else:
            kept.append(value)
    cleaned = b"".join(kept) + separator + body

    parser = BytesParser(policy=policy.default)
    # The stdlib parses every MIME part (and recurses per level) before we can
    # count them, so a body with very many delimiter-like lines is not parsed:
    # headers only, and a person looks at it.
    if len(re.findall(rb"(?m)^--", body[: 50 * 1024 * 1024])) > MAX_DELIMITER_LINES:
        out.add("too_many_parts", f"the message has more than {MAX_DELIMITER_LINES} MIME delimiter lines; the body was not read")
        msg = parser.parsebytes(b"".join(kept) + b"\r\n", headersonly=True)
    else:
        try:
            msg = parser.parsebytes(cleaned)
        except RecursionError:
            out.add("mime_too_deep", "the MIME structure is nested too deeply to read")
            msg = parser.parsebytes(b"".join(kept) + b"\r\n", headersonly=True)
    assert isinstance(msg, EmailMessage)
    out.defect(getattr(msg, "defects", ()))

    subject = _subject(msg, out)
    from_address, from_problem = _from_address(msg, from_count, out)
    return_path = _return_path(msg)
    automatic = _automatic(msg, return_path)
    message_ids = _raw_values(msg, "Message-ID")
    message_id = _message_id(message_ids[0]) if message_ids else None
    references = _references(message_id, msg)
    auth_results = tuple(_unfold(v) for v in _raw_values(msg, "Authentication-Results"))

    texts, attachments = _read_parts(msg, out, max_attachment)
    request_text = "\n".join(_unquoted(t) for t in texts)
    ids: list[str] = []
    _ids_from_text(request_text, ids)
    for name, kind_of_file, content in attachments:
        _ids_from_attachment(name, kind_of_file, content, ids, out)
    viewer_ids = _checked_ids(ids, out, max_len, max_ids)

    words = subject + "\n" + request_text
    kind = _kind(words, out)
    regulation = _regulation(words, out)

    return ParsedMessage(
        message_id=message_id,
        references=references,
        subject=subject,
        from_address=from_address,
        from_problem=from_problem,
        return_path=return_path,
        automatic=automatic,
        auth_results=auth_results,
        kind=kind,
        regulation=regulation,
        viewer_ids=viewer_ids,
        problems=tuple(out.problems),
        defects=tuple(out.defects),
        body_sha256=digest,
        body_text=request_text[:MAX_BODY_TEXT_CHARS],
        attachments=tuple(name for name, _, _ in attachments),
    )


# ---------------------------------------------------------------- headers


def _split_header_fields(raw: bytes) -> tuple[list[tuple[str, bytes]], bytes, bytes]:
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


def _safe_name(name: str) -> str:
    cleaned = "".join(c for c in name if c.isprintable())[:60]
    return cleaned or "(unnamed)"


def _raw_values(msg: Message, name: str) -> list[str]:
    """Header values as they arrived (not decoded), because parsing must be our own."""
    try:
        return [str(v) for k, v in msg.raw_items() if k.lower() == name.lower()]
    except Exception:
        return []


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]*", " ", value).strip()


def _header_text(msg: Message, name: str, out: _Collector) -> str | None:
    """The stdlib's decoded value of a header, or None; a parse failure becomes a defect."""
    try:
        value = msg.get(name)
        if value is None:
            return None
        out.defect(getattr(value, "defects", ()))
        return str(value)
    except Exception as exc:
        out.defect([exc])
        raws = _raw_values(msg, name)
        return _unfold(raws[0]) if raws else None


_CONTROL_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def _single_line(text: str, limit: int) -> str:
    """Control and format characters removed, whitespace collapsed: safe to show and to echo."""
    kept = []
    for ch in text:
        if ch.isspace():
            kept.append(" ")
        elif unicodedata.category(ch) not in _CONTROL_CATEGORIES:
            kept.append(ch)
    return re.sub(r" +", " ", "".join(kept)).strip()[:limit]


def _subject(msg: Message, out: _Collector) -> str:
    value = _header_text(msg, "Subject", out)
    return _single_line(value or "", MAX_SUBJECT_CHARS)


# Strict address grammar (CVE-2023-27043: lenient parsers read
# "alice@example.org(<bob@example.com>" as bob). We accept only a bare
# addr-spec or "display name <addr-spec>", dot-atom local part, ASCII LDH
# domain with at least one dot, and no comments anywhere.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})+"
_ADDR_SPEC = rf"(?P<addr>{_LOCAL}@{_DOMAIN})"
_QUOTED_NAME = r'"(?:[^"\\\r\n]|\\[^\r\n])*"'
_NAME_WORD = r"[^\"<>()\[\]\\,;:@\s]+"  # atoms, encoded words, UTF-8
_PLAIN_NAME = rf"{_NAME_WORD}(?:[ \t]+{_NAME_WORD})*"  # unambiguous, so matching stays linear
_DISPLAY = rf"(?:{_QUOTED_NAME}|{_PLAIN_NAME})"
_STRICT_FROM = re.compile(rf"\s*(?:{_ADDR_SPEC}|(?:{_DISPLAY}\s*)?<{_ADDR_SPEC.replace('addr', 'addr2')}>)\s*")


def strict_address(value: str) -> str | None:
    """The one addr-spec in a From-style value, or None unless the value is unambiguous."""
    m = _STRICT_FROM.fullmatch(_unfold(value))
    if m is None:
        return None
    addr = m.group("addr") or m.group("addr2")
    if len(addr) > 254:
        return None
    local, domain = addr.rsplit("@", 1)
    if len(local) > 64:
        return None
    return f"{local}@{domain.lower()}"


def _from_address(msg: Message, wire_count: int, out: _Collector) -> tuple[str | None, Problem | None]:
    raws = _raw_values(msg, "From")
    count = max(wire_count, len(raws))
    if count == 0:
        return None, Problem("from_missing", "the message has no From header")
    if count > 1:
        return None, Problem("from_multiple", f"the message has {count} From headers; the sender is ambiguous")
    if not raws:  # present on the wire but not read (oversized, or past the header limit)
        return None, Problem("from_unreadable", "the From header could not be read")
    ours = strict_address(raws[0])
    if ours is None:
        why = "the From header is not exactly one plain address (comments, groups, several addresses or bad syntax)"
        return None, Problem("from_invalid", why)
    # Belt and braces: the stdlib must read the same single address without complaint.
    try:
        header: Any = msg["From"]
        addresses = header.addresses
        defects = header.defects
    except Exception:
        return None, Problem("from_invalid", "the From header could not be parsed")
    if defects or len(addresses) != 1 or addresses[0].addr_spec.lower() != ours.lower():
        out.defect(defects)
        return None, Problem("from_invalid", "the From header does not parse to exactly one unambiguous address")
    return ours, None


def _return_path(msg: Message) -> str | None:
    raws = _raw_values(msg, "Return-Path")
    if not raws:
        return None
    values = [_unfold(v) for v in raws]
    if any(re.fullmatch(r"<\s*>", v) for v in values):
        return ""
    v = values[-1]
    m = re.fullmatch(r"<([^<>\s]*)>", v)
    return _single_line(m.group(1) if m else v, 320)


def _message_id(value: str | None) -> str | None:
    if value is None:
        return None
    m = re.search(r"<[^<>\s]{1,994}>", value)
    return m.group(0) if m else None


def _references(message_id: str | None, msg: Message) -> tuple[str, ...]:
    refs: list[str] = [message_id] if message_id else []
    for name in ("References", "In-Reply-To"):
        for value in _raw_values(msg, name):
            for ref in re.findall(r"<[^<>\s]{1,994}>", value):
                if ref not in refs and len(refs) < MAX_REFERENCES:
                    refs.append(ref)
    return tuple(refs)


# Only the RFC 5321 system mailboxes. "noreply@" is deliberately not here: a
# tenant's ticketing system may send genuine requests from such an address.
_SYSTEM_SENDER = re.compile(r"(?<![\w.+-])(mailer-daemon|postmaster)(?=@|[\s>)\"]|$)", re.IGNORECASE)


def _automatic(msg: Message, return_path: str | None) -> Problem | None:
    """Why this is mail from a machine (never answer it, never act on it), or None."""
    for value in _raw_values(msg, "Auto-Submitted"):
        token = re.split(r"[;(\s]", _unfold(value).lower(), maxsplit=1)[0]
        if token != "no":
            return Problem("auto_submitted", f"Auto-Submitted: {_single_line(_unfold(value), 60)}")
    for name in ("X-Autoreply", "X-Autorespond"):
        if _raw_values(msg, name):
            return Problem("auto_submitted", f"the message carries an {name} header")
    for value in _raw_values(msg, "Precedence"):
        token = _unfold(value).lower()
        if token in ("bulk", "junk", "list"):
            return Problem("bulk_mail", f"Precedence: {token}")
    if _raw_values(msg, "List-Id"):
        return Problem("mailing_list", "the message came through a mailing list (List-Id)")
    if return_path == "":
        return Problem("null_return_path", "the message has a null return path (<>), as bounces do")
    try:
        content_type = msg.get_content_type()
    except Exception:
        content_type = ""
    if content_type == "multipart/report":
        return Problem("delivery_report", "the message is a delivery or disposition report (multipart/report)")
    # Read leniently on purpose: bounces often have From headers the strict
    # grammar refuses ("MAILER-DAEMON@host (Mail Delivery System)", or no domain).
    for value in _raw_values(msg, "From"):
        m = _SYSTEM_SENDER.search(_unfold(value))
        if m:
            return Problem("system_sender", f"the sender is {m.group(1)}, a mail system address")
    return None


# ---------------------------------------------------------------- bodies


def _walk(msg: Message, out: _Collector) -> list[Message]:
    """Leaf parts in order, without recursion, bounded in depth and count."""
    leaves: list[Message] = []
    stack: list[tuple[Message, int]] = [(msg, 0)]
    seen = 0
    while stack:
        part, depth = stack.pop()
        seen += 1
        if seen > MAX_MIME_PARTS:
            out.add("too_many_parts", f"the message has more than {MAX_MIME_PARTS} MIME parts; the rest were not read")
            break
        if depth > MAX_MIME_DEPTH:
            out.add("mime_too_deep", f"the MIME structure is nested more than {MAX_MIME_DEPTH} levels deep; the inner parts were not read")
            continue
        out.defect(getattr(part, "defects", ()))
        if part.is_multipart() and not _content_type(part).startswith("message/"):
            payload = part.get_payload()
            if isinstance(payload, list):
                children = [c for c in payload if isinstance(c, Message)]
                if _content_type(part) == "multipart/alternative":
                    children = [_preferred_alternative(children)] if children else []
                for child in reversed(children):
                    stack.append((child, depth + 1))
            continue
        leaves.append(part)
    return leaves


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def _preferred_alternative(children: list[Message]) -> Message:
    """text/plain when offered (what the sender typed), else the first HTML, else the first part."""
    for wanted in ("text/plain", "text/html"):
        for child in children:
            if _content_type(child) == wanted and not _is_attachment(child):
                return child
    for child in children:
        if child.is_multipart():
            return child
    return children[0]


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    return str(name) if name else None


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _is_attachment(part: Message) -> bool:
    """A file rather than the text of the mail. Clients disagree on "inline" (Apple Mail
    marks attached files inline), so a file name is enough to make a part a file."""
    return _disposition(part) == "attachment" or _filename(part) is not None


def _payload(part: Message, out: _Collector) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:
        out.defect([exc])
        return b""
    return data if isinstance(data, bytes) else b""


def _charset(part: Message) -> str | None:
    try:
        name = part.get_content_charset()
    except Exception:
        return None
    if not name:
        return None
    try:
        encoding = codecs.lookup(name).name
        b"a".decode(encoding, "replace")  # rejects codecs that are not text encodings (base64, zlib...)
    except (LookupError, ValueError):
        return None
    return encoding


def _decode_text(data: bytes, declared: str | None, out: _Collector) -> str:
    """Bytes -> text, tolerating wrong and unknown charsets; undecodable bytes become U+FFFD."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode("utf-8-sig" if encoding == "utf-8" else encoding, "replace")
    candidates = [declared] if declared else []
    candidates.append("utf-8")
    for encoding in candidates:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    out.defect([_UndecodableTextDefect()])
    try:
        return data.decode(declared or "utf-8", "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


class _UndecodableTextDefect(Exception):
    """Text whose bytes fit neither its declared charset nor UTF-8."""


def _read_parts(msg: Message, out: _Collector, max_attachment: int) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The readable body texts and the id-bearing attachments (name, "csv"|"txt", text), in order."""
    texts: list[str] = []
    attachments: list[tuple[str, str, str]] = []
    for part in _walk(msg, out):
        ctype = _content_type(part)
        name = _filename(part)
        if ctype.startswith("message/"):
            # A forwarded message is not the sender's own words, but it may hold ids
            # the sender meant: a person decides rather than us silently skipping them.
            if ctype == "message/rfc822":
                out.add("forwarded_message", "the message contains a forwarded message, which is not read as a request")
            continue
        if ctype in _IGNORED_TYPES or (ctype.startswith("image/") and _disposition(part) != "attachment"):
            continue  # signatures, business cards, logos and inline pictures: never a request
        if not _is_attachment(part) and ctype in ("text/plain", "text/html"):
            data = _payload(part, out)
            if len(data) > max_attachment:
                out.add("body_too_large", f"a {ctype} body part is larger than {max_attachment} bytes and was not read")
                continue
            text = _decode_text(data, _charset(part), out)
            texts.append(html_to_text(text) if ctype == "text/html" else text)
            continue
        # Anything else is a file: read when it is CSV or plain text, otherwise a person looks.
        kind = _attachment_kind(ctype, name)
        shown = _safe_name(name or ctype)
        if kind is None:
            out.add("attachment_unreadable", f"the attachment {shown} is not CSV or plain text and was not read")
            continue
        data = _payload(part, out)
        if len(data) > max_attachment:
            out.add("attachment_too_large", f"the attachment {shown} is larger than {max_attachment} bytes and was not read")
            continue
        content = _decode_attachment(data, _charset(part), shown, out)
        if content is not None:
            attachments.append((shown, kind, content))
    return texts, attachments


_IGNORED_TYPES = {
    "application/pkcs7-signature",
    "application/x-pkcs7-signature",
    "application/pgp-signature",
    "application/pgp-keys",
    "text/vcard",
    "text/x-vcard",
    "text/directory",
    "text/calendar",
}


def _attachment_kind(ctype: str, name: str | None) -> str | None:
    lowered = (name or "").lower()
    if ctype in ("text/csv", "application/csv", "text/comma-separated-values") or lowered.endswith(".csv"):
        return "csv"
    if ctype == "text/plain" or lowered.endswith(".txt"):
        return "txt"
    return None


def _decode_attachment(data: bytes, declared: str | None, shown: str, out: _Collector) -> str | None:
    """Attachments are decoded strictly: a wrongly decoded id would erase the wrong viewer (or none)."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                break
    else:
        for encoding in ([declared] if declared else []) + ["utf-8"]:
            try:
                return data.decode(encoding)
            except (UnicodeDecodeError, LookupError):
                continue
    out.add("attachment_undecodable", f"the attachment {shown} is neither UTF-8 nor UTF-16 (nor its declared charset) and was not read")
    return None


class _HTMLText(html.parser.HTMLParser):
    """Visible text of an HTML body, with blockquotes marked as quotes so they are not read."""

    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "pre", "hr", "blockquote", "dd", "dt"}
    _SKIP = {"script", "style", "head", "title", "template"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.quote_depth = 0
        self.skip_depth = 0
        self.quote_stack: list[bool] = []

    def _newline(self) -> None:
        self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skip_depth += 1
        if tag in self._BLOCK:
            self._newline()
        if tag in ("blockquote", "div"):
            classes = " ".join(v or "" for k, v in attrs if k == "class")
            quoting = tag == "blockquote" or "gmail_quote" in classes or "moz-cite-prefix" in classes
            self.quote_stack.append(quoting)
            self.quote_depth += quoting

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self.skip_depth:
            self.skip_depth -= 1
        if tag in ("blockquote", "div") and self.quote_stack:
            self.quote_depth -= self.quote_stack.pop()
        if tag in self._BLOCK:
            self._newline()

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        parts = data.replace("\r", "").split("\n")
        for i, piece in enumerate(parts):
            if i:
                self._newline()
            if self.quote_depth and not self.lines[-1].startswith(">"):
                self.lines[-1] = "> " + self.lines[-1]
            self.lines[-1] += piece


def html_to_text(markup: str) -> str:
    """HTML body -> plain text, good enough to find the documented id lines in it."""
    parser = _HTMLText()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:
        return re.sub(r"<[^>]*>", " ", markup)
    lines = [re.sub(r"[ \t\xa0]+", " ", line).strip() for line in parser.lines]
    return "\n".join(lines)


# ---------------------------------------------------------------- reading the request

_QUOTE_START = re.compile(
    r"^\s*(?:-{2,}\s*Original Message\s*-{2,}|_{10,}|-{2,}\s*Forwarded message\s*-{2,}|Begin forwarded message:"
    r"|-{2,}\s*Weitergeleitete Nachricht\s*-{2,})\s*$",
    re.IGNORECASE,
)
_ON_WROTE = re.compile(
    r"^\s*(?:On\b.{0,300}\bwrote|Am\b.{0,300}\bschrieb\b.{0,200}|Le\b.{0,300}\ba\s+[ée]crit\s*)\s*:\s*$",
    re.IGNORECASE,
)
_HEADER_BLOCK_FROM = re.compile(r"^\s*\*?(?:From|Von|De)\s*:\*?\s+\S", re.IGNORECASE)
_HEADER_BLOCK_NEXT = re.compile(r"^\s*\*?(?:Sent|Date|Gesendet|Datum|Envoy[ée])\s*:", re.IGNORECASE)
_SIGNATURE = re.compile(r"^-- ?$")


def _unquoted(text: str) -> str:
    """The sender's own words: stop at a quoted reply, forwarded block or signature; drop '>' lines."""
    kept: list[str] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for i, line in enumerate(lines):
        if _SIGNATURE.match(line) or _QUOTE_START.match(line) or _ON_WROTE.match(line):
            break
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        # "On Mon, 1 Jan 2024 at 10:00, Alice <a@x>\nwrote:" (wrapped by the mail client)
        if re.match(r"^\s*On\b", line, re.IGNORECASE) and re.fullmatch(r"\s*(?:.{0,200}\s)?wrote:\s*", nxt, re.IGNORECASE):
            break
        # Outlook quotes without a separator line: "From: ...", then "Sent: ..." (or Date:).
        if _HEADER_BLOCK_FROM.match(line) and _HEADER_BLOCK_NEXT.match(nxt):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept)


_LABEL_RE = re.compile(
    r"^[ \t]*(?:[-*\u2022][ \t]+)?viewer[ _-]?id(?P<plural>s)?[ \t]*(?:[:=]|[-\u2013\u2014])[ \t]*(?P<value>.*)$",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^(?:[-*\u2022]|\d{1,4}[.)])[ \t]+")
_QUOTE_PAIRS = {'"': '"', "'": "'", "`": "`", "\u201c": "\u201d"}


def _clean_id(value: str) -> str:
    """Trim, and drop one pair of surrounding quotes/backticks (documented)."""
    v = value.strip(" \t\r\n")
    if len(v) >= 2 and _QUOTE_PAIRS.get(v[0]) == v[-1]:
        v = v[1:-1].strip(" \t")
    return v


def _ids_from_text(text: str, ids: list[str]) -> None:
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
                ids.extend(_clean_id(v) for v in re.split(r"[,;]", value) if v.strip())
            else:
                ids.append(_clean_id(value))
            continue
        # Label alone on its line: a list follows, one id a line, until a blank line or another label.
        while i < len(lines) and lines[i].strip() and not _LABEL_RE.match(lines[i]):
            item = _BULLET.sub("", lines[i].strip(" \t"), count=1)
            ids.append(_clean_id(item))
            i += 1


_CSV_HEADERS = {"viewer_id", "viewer id", "viewerid", "viewer-id"}


def _csv_rows(content: str, delimiter: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    return [row for row in reader if any(cell.strip() for cell in row)]


def _ids_from_csv(name: str, content: str, out: _Collector) -> list[str]:
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
            return [_clean_id(row[col]) for row in rows[1:] if col < len(row) and row[col].strip()]
    rows = tables[0]
    if all(len(row) == 1 for row in rows):
        return [_clean_id(row[0]) for row in rows]
    out.add("attachment_no_viewer_id_column", f"the attachment {name} has several columns but none is called viewer_id")
    return []


def _ids_from_attachment(name: str, kind: str, content: str, ids: list[str], out: _Collector) -> None:
    if not content.strip():
        return
    if kind == "csv":
        ids.extend(_ids_from_csv(name, content, out))
        return
    lines = [line for line in content.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()]
    if lines and lines[0].strip().lower() in _CSV_HEADERS:
        lines = lines[1:]  # a "viewer_id" heading is not an id
    ids.extend(_clean_id(line) for line in lines)


_SEPARATORS = re.compile(r"[\s,;]")


def _checked_ids(ids: list[str], out: _Collector, max_len: int, max_ids: int) -> tuple[str, ...]:
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
        if any(unicodedata.category(c) in _CONTROL_CATEGORIES for c in value if c not in " \t"):
            out.add("viewer_id_control_chars", "a viewer id contains control or invisible (zero-width, bidi) characters")
            continue
        if len(value) > max_len:
            out.add("viewer_id_too_long", f"a viewer id is longer than {max_len} characters")
            continue
        if _SEPARATORS.search(value):
            out.add("viewer_id_ambiguous", f"{_single_line(value, 80)!r} contains a space, comma or semicolon: one id or several?")
            continue
        if value not in seen:
            seen.add(value)
            good.append(value)
    if len(good) > max_ids:
        out.add("too_many_viewer_ids", f"the request names {len(good)} viewer ids; more than {max_ids} need a person")
    return tuple(good)


# ---------------------------------------------------------------- kind and regulation

_ERASURE_WORDS = re.compile(
    r"\b(?:eras(?:e|ed|ure|ing)|delet(?:e|ed|ion|ing)|remov(?:e|al|ing)|forget|forgotten|"
    r"right to delete|article\s*17|art\.?\s*17|1798\.105|l[öo]sch\w*|supprim\w*|suppression)\b",
    re.IGNORECASE,
)
_ACCESS_WORDS = re.compile(
    r"\b(?:access\s+request|access\s+to\s+(?:[\w'\u2019]+\s+){0,3}data|right\s+(?:of|to)\s+access|subject\s+access|"
    r"(?:data\s+)?export\s+(?:of\s+)?(?:\w+\s+){0,2}data|data\s+export|copy\s+of|portab\w*|right\s+to\s+know|dsar|"
    r"article\s*(?:15|20)|art\.?\s*(?:15|20)|1798\.(?:100|110|115)|auskunft)\b",
    re.IGNORECASE,
)
_NEGATED = re.compile(
    r"\b(?:do\s+not|don'?t|never|not|no\s+need\s+to|stop)\s+(?:\w+\s+){0,2}(?:eras|delet|remov)\w*",
    re.IGNORECASE,
)
_GDPR = re.compile(r"\b(?:u\.?k\.?\s+)?(?:gdpr|dsgvo|rgpd)\b", re.IGNORECASE)
_CCPA = re.compile(r"\b(?:ccpa|cpra|california|cal\.?\s*civ\.?|1798\.\d+)\b", re.IGNORECASE)


# "...please notify the sender and delete this e-mail": confidentiality
# footers must not turn a question about a viewer into an erasure.
_ABOUT_THE_MAIL = re.compile(r"[^.!?\n]{0,80}?\b(?:e-?mails?|messages?|communications?|transmissions?|copies)\b", re.IGNORECASE)


def _asks_for_erasure(words: str) -> bool:
    return any(not _ABOUT_THE_MAIL.match(words, m.end()) for m in _ERASURE_WORDS.finditer(words))


def _kind(words: str, out: _Collector) -> Kind:
    erasure = _asks_for_erasure(words)
    access = _ACCESS_WORDS.search(words) is not None
    if erasure and _NEGATED.search(words):
        out.add("ambiguous_wording", "the text says not to delete something; a person must read it")
    if erasure and access:
        out.add("also_access_request", "the request also asks for access to or a copy of data, which is answered by a person")
    if erasure:
        return "erasure"
    return "access" if access else "other"


def _regulation(words: str, out: _Collector) -> Literal["gdpr", "ccpa"] | None:
    gdpr = _GDPR.search(words) is not None
    ccpa = _CCPA.search(words) is not None
    if gdpr and ccpa:
        out.add("regulation_ambiguous", "the request names both GDPR and CCPA; a person must choose which deadlines apply")
        return None
    return "gdpr" if gdpr else "ccpa" if ccpa else None


def clean_viewer_ids(values: Iterable[str], *, max_length: int = 256,
                     max_count: int = 100_000) -> tuple[tuple[str, ...], tuple[Problem, ...]]:
    """Ids typed by an officer (`requests add`) pass the same checks as ids read from mail."""
    out = _Collector()
    ids = _checked_ids([_clean_id(v) for v in values], out, max_length, max_count)
    return ids, tuple(out.problems)
