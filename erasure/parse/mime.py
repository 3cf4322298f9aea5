"""The MIME tree: which parts are the text of the mail, which are files, and how to decode them."""

from __future__ import annotations

import codecs
import itertools
import re
from email.message import Message

from erasure.parse.headers import UNREAD_PART_TYPE
from erasure.parse.htmltext import html_to_text
from erasure.parse.problems import Collector, safe_name

MAX_MIME_PARTS = 200
MAX_MIME_DEPTH = 20
MAX_DELIMITER_LINES = 2000  # lines starting "--" before the body is not parsed at all
DEFAULT_MAX_ATTACHMENT_BYTES = 5_000_000


_DELIMITER_LINE = re.compile(rb"(?<![^\r\n])--")  # after CRLF, LF or a lone CR: all end lines for the stdlib


def too_many_delimiter_lines(body: bytes) -> bool:
    """More than MAX_DELIMITER_LINES lines starting "--" (possible MIME delimiters)? Counted before
    the stdlib builds a part for each, and only as far as the limit."""
    return sum(1 for _ in itertools.islice(_DELIMITER_LINE.finditer(body), MAX_DELIMITER_LINES + 1)) > MAX_DELIMITER_LINES


def _walk(msg: Message, out: Collector) -> list[Message]:
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


def _payload(part: Message, out: Collector) -> bytes:
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


def _decode_text(data: bytes, declared: str | None, out: Collector) -> str:
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


def read_parts(msg: Message, out: Collector, max_attachment: int) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The readable body texts and the id-bearing attachments (name, "csv"|"txt", text), in order."""
    texts: list[str] = []
    attachments: list[tuple[str, str, str]] = []
    for part in _walk(msg, out):
        ctype = _content_type(part)
        name = _filename(part)
        if ctype == UNREAD_PART_TYPE:
            continue  # its headers were over a cap (headers.capped_part_headers); the Problem is recorded
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
        shown = safe_name(name or ctype)
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


def _decode_attachment(data: bytes, declared: str | None, shown: str, out: Collector) -> str | None:
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
