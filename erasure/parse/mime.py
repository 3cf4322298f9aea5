"""The MIME tree: which parts are the text of the mail, which are files, and how to decode them."""

from __future__ import annotations

import codecs
import importlib
import itertools
import re
from email.message import Message

from charset_normalizer import from_bytes

from erasure.parse.addresses import strict_address
from erasure.parse.headers import UNREAD_PART_TYPE, raw_values
from erasure.parse.htmltext import read_html
from erasure.parse.ids import IdCollector, ids_from_attachment, ids_from_text
from erasure.parse.problems import Collector, safe_name
from erasure.parse.quotes import Forwarded, unquoted
from erasure.parse.spreadsheet import XLSX_CONTENT_TYPE

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
    """text/plain when offered (what the sender typed), else HTML, else the first part.

    A child offers what its main text is: a multipart/related stands for its
    root (HTML with inline pictures), a multipart/mixed for its first part (a
    text with files attached), a nested multipart/alternative for its own
    choice; so plain text inside a wrapper still wins over bare HTML.
    """
    offers = [_offers(child) for child in children]
    for wanted in ("text/plain", "text/html"):
        for child, offered in zip(children, offers):
            if offered == wanted:
                return child
    for child in children:
        if child.is_multipart():
            return child
    return children[0]


def _offers(part: Message, depth: int = 0) -> str | None:
    """The content type of the text a part stands for, or None (a file, or no text)."""
    ctype = _content_type(part)
    if not part.is_multipart():
        return None if _is_attachment(part) else ctype
    if ctype.startswith("message/") or depth > 3:
        return None
    payload = part.get_payload()
    children = [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []
    if not children:
        return None
    if ctype == "multipart/alternative":
        offers = {_offers(c, depth + 1) for c in children[:MAX_MIME_PARTS]}
        return next((t for t in ("text/plain", "text/html") if t in offers), None)
    return _offers(children[0], depth + 1)


_COMPARE_MAX_IDS = 100_000  # beyond any policy.max_viewer_ids an operator sets: the sets compared are whole
_COMPARE_MAX_ID_LENGTH = 4096


def ids_disagree(first: str, second: str) -> bool:
    """Do two alternatives of one message name different viewer ids?

    A person sees one alternative (most clients show the HTML) while we read
    the other (the plain text), so ids must agree between them. Each is read
    as a request is read (quotes cut, the documented grammar); they disagree
    only if the id sets differ both as laid out and with blank lines dropped,
    because an HTML rendering puts paragraph gaps where the plain text has none
    (Outlook writes every line as a paragraph) and a gap ends an id list.
    """

    def id_set(text: str) -> set[str]:
        # A scratch collector: its problems are the main reading's to report.
        sink = IdCollector(Collector(), max_len=_COMPARE_MAX_ID_LENGTH, max_ids=_COMPARE_MAX_IDS)
        ids_from_text(unquoted(text), sink)
        return set(sink.ids)

    def packed(text: str) -> str:
        return "\n".join(line for line in text.split("\n") if line.strip())

    return id_set(first) != id_set(second) and id_set(packed(first)) != id_set(packed(second))


def _check_alternatives(msg: Message, out: Collector, max_bytes: int) -> None:
    """Every multipart/alternative that is read: its other text alternatives must name the same ids."""
    stack: list[tuple[Message, int]] = [(msg, 0)]
    seen = 0
    while stack:
        part, depth = stack.pop()
        seen += 1
        if seen > MAX_MIME_PARTS or depth > MAX_MIME_DEPTH:
            return  # read_parts has said so already
        ctype = _content_type(part)
        if not part.is_multipart() or ctype.startswith("message/"):
            continue
        payload = part.get_payload()
        children = [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []
        if ctype != "multipart/alternative" or not children:
            stack.extend((c, depth + 1) for c in children)
            continue
        chosen = _preferred_alternative(children)
        stack.append((chosen, depth + 1))
        chosen_text = _alternative_text(chosen, out, max_bytes)
        for other in children:
            if other is chosen:
                continue
            other_text = _alternative_text(other, out, max_bytes)
            if chosen_text is not None and other_text is not None and ids_disagree(chosen_text, other_text):
                out.add("alternatives_disagree", "the plain-text and HTML versions of the message name different viewer ids")


def _alternative_text(part: Message, out: Collector, max_bytes: int) -> str | None:
    """The body text in one alternative (its text/plain and text/html parts, not its files); None if it has none."""
    texts: list[str] = []
    stack: list[tuple[Message, int]] = [(part, 0)]
    seen = 0
    while stack and seen < MAX_MIME_PARTS:
        node, depth = stack.pop()
        seen += 1
        ctype = _content_type(node)
        if node.is_multipart():
            payload = node.get_payload()
            if depth < MAX_MIME_DEPTH and not ctype.startswith("message/") and isinstance(payload, list):
                children = [c for c in payload if isinstance(c, Message)]
                if ctype == "multipart/alternative" and children:
                    children = [_preferred_alternative(children)]  # a nested choice is read as a reader gets it
                stack.extend((c, depth + 1) for c in reversed(children))
            continue
        if ctype in ("text/plain", "text/html") and not _is_attachment(node):
            data = _payload(node, out)
            if len(data) > max_bytes:
                out.add("body_too_large", f"a {ctype} body part is larger than {max_bytes} bytes and was not read")
                return None
            texts.append(_body_text(_decode_text(data, _charset(node), out), ctype, out))
    return "\n".join(texts) if texts else None


def _body_text(text: str, ctype: str, out: Collector) -> str:
    """Decoded body text -> what a person reads in it; HTML hiding text, or too tangled to tell, goes to review."""
    if ctype != "text/html":
        return text
    reading = read_html(text)
    if reading.hidden:
        out.add("hidden_text", "the HTML hides text from the reader (" + "; ".join(reading.hidden)[:200] + "); hidden text is not read")
    if reading.too_complex:
        out.add("html_too_complex", "the HTML is nested or styled beyond what is read safely; a person must look at it")
    return reading.text


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
    except Exception:
        return b""
    return data if isinstance(data, bytes) else b""


# Charsets a body or file may declare. Each maps every byte string made of ASCII
# to the same ASCII text (tests/test_parse.py proves it), so an id typed in ASCII
# reads as itself. Refused: anything that shifts state with ASCII bytes (UTF-7's
# "+AC0-" is "-", HZ's "~{", ISO-2022's escapes), Python's non-charset codecs
# (unicode-escape, punycode, idna...), Shift_JIS-2004 (0x5C is the yen sign),
# and every name we do not know.
ALLOWED_CHARSETS = frozenset(
    {"utf-8", "ascii", "cp874", "tis-620", "koi8-r", "koi8-u", "koi8-t"}
    | {f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16)}
    | {f"cp{n}" for n in range(1250, 1259)}
    | {"shift_jis", "cp932", "euc_jp", "gb2312", "gbk", "gb18030", "big5", "big5hkscs", "euc_kr", "cp949"}
    | {"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"}
)
# Names mail clients use that Python does not know (WHATWG Encoding Standard labels).
_CHARSET_ALIASES = {"windows-874": "cp874", "windows-31j": "cp932", "iso-8859-8-i": "iso8859-8", "x-sjis": "shift_jis",
                    "x-euc-jp": "euc_jp", "x-gbk": "gbk"}
# Without a byte-order mark, UTF-16 and UTF-32 are big-endian (RFC 2781 section 4.3).
_NO_BOM = {"utf-16": "utf-16-be", "utf-32": "utf-32-be"}


def allowed_charset(name: str) -> str | None:
    """The Python codec for a declared charset on the allow-list, or None: the charset is refused."""
    label = name.strip().lower()
    try:
        codec = codecs.lookup(_CHARSET_ALIASES.get(label, label)).name
    except (LookupError, ValueError, TypeError):
        return None
    return codec if codec in ALLOWED_CHARSETS else None


def _charset(part: Message) -> str | None:
    """The declared charset as written (None when none is declared)."""
    try:
        name = part.get_content_charset()
    except Exception:
        return "(unreadable)"
    return str(name) if name else None


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),  # before UTF-16's: FF FE 00 00 starts with FF FE
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)


def _encodings(data: bytes, declared: str | None) -> tuple[str, ...] | None:
    """The encodings to try, in order; None when the declared charset is refused."""
    codec = allowed_charset(declared) if declared is not None else "utf-8"
    if codec is None:
        return None
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return (encoding,)
    return (_NO_BOM.get(codec, codec), "utf-8")


def _refused(declared: str) -> str:
    return f"declares the charset {safe_name(declared)!r}, which is not on the list of charsets we read (it can disguise characters)"


def _decode_text(data: bytes, declared: str | None, out: Collector) -> str:
    """Bytes -> text, tolerating wrong charsets (undecodable bytes become U+FFFD), refusing dangerous ones."""
    encodings = _encodings(data, declared)
    if encodings is None:
        assert declared is not None
        out.add("charset_refused", f"a body part {_refused(declared)}; it was read as ASCII only")
        # Read as the bytes show, never through the refused codec: "viewer+AC0-1" stays
        # just that, and the words still tell the officer what the mail is about.
        return data.decode("ascii", "replace")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode(encodings[0], "replace")  # undecodable bytes become U+FFFD, which the id readers refuse


Attachment = tuple[str, str, str | bytes]

#: Parts that make a message a report about another message (a bounce, a feedback report,
#: a read receipt): the message attached to a report is the one it reports on, never a forward.
REPORT_PART_TYPES = frozenset({
    "message/delivery-status", "message/global-delivery-status", "message/feedback-report",
    "message/disposition-notification", "message/global-disposition-notification", "text/rfc822-headers",
    "message/global-headers",
})
#: An Outlook item saved as a file (.msg): a compound binary file that only a GPL library reads
#: (extract-msg); never read here.
OUTLOOK_ITEM_TYPE = "application/vnd.ms-outlook"


def read_parts(msg: Message, out: Collector, max_attachment: int, *, forwarded: bool = False
               ) -> tuple[list[str], list[Attachment], list[Message]]:
    """The readable body texts, the id-bearing attachments (name, "csv"|"txt", text, or name, "xlsx", bytes)
    and the attached messages to read as forwards, in order.

    An attached message (message/rfc822: Thunderbird's and Apple Mail's "forward as
    attachment", an .eml attached in Outlook) is the customer's forward of its viewer's
    request, and is read as an inline forward is (``forwarded_attachment``), one level
    deep: inside a forwarded message (``forwarded``) a further attached message is not
    read, and a person looks. A report's attached message (a bounce's copy of the mail
    that bounced) is what it reports on: not read, and a person looks.
    """
    texts: list[str] = []
    attachments: list[Attachment] = []
    messages: list[Message] = []
    leaves = _walk(msg, out)
    report = _content_type(msg) == "multipart/report" or any(_content_type(p) in REPORT_PART_TYPES for p in leaves)
    for part in leaves:
        ctype = _content_type(part)
        name = _filename(part)
        if ctype == UNREAD_PART_TYPE:
            continue  # its headers were over a cap (headers.capped_part_headers); the Problem is recorded
        if ctype.startswith("message/"):
            if ctype != "message/rfc822":
                continue
            inner = _attached_message(part)
            if inner is not None and not forwarded and not report:
                messages.append(inner)
            elif forwarded:
                out.add("forwarded_message", "the forwarded message has a message attached to it in turn, which is "
                        "not read: a forward is read one level deep")
            else:
                # Not a forward we can read: a person decides rather than us silently skipping its ids.
                out.add("forwarded_message", "the message contains an attached message that is not read as a "
                        "request (a report's copy of the message it reports on, or one that cannot be read)")
            continue
        if ctype == OUTLOOK_ITEM_TYPE or (name or "").lower().endswith(".msg"):
            out.add("attachment_outlook_message", f"the attachment {safe_name(name or ctype)} is an Outlook item (.msg), "
                    "which is not read; the customer is asked to forward the request inline or as an .eml file")
            continue
        if ctype in _IGNORED_TYPES or (ctype.startswith("image/") and _disposition(part) != "attachment"):
            continue  # signatures, business cards, logos and inline pictures: never a request
        if not _is_attachment(part) and ctype in ("text/plain", "text/html"):
            data = _payload(part, out)
            if len(data) > max_attachment:
                out.add("body_too_large", f"a {ctype} body part is larger than {max_attachment} bytes and was not read")
                continue
            texts.append(_body_text(_decode_text(data, _charset(part), out), ctype, out))
            continue
        # Anything else is a file: read when it is CSV or plain text, otherwise a person looks.
        kind = _attachment_kind(ctype, name)
        shown = safe_name(name or ctype)
        if kind is None:
            out.add("attachment_unreadable", f"the attachment {shown} is {_unread_format(ctype, name)}, not CSV, "
                    ".xlsx or plain text, and was not read")
            continue
        data = _payload(part, out)
        if len(data) > max_attachment:
            out.add("attachment_too_large", f"the attachment {shown} is larger than {max_attachment} bytes and was not read")
            continue
        if kind == "xlsx":
            attachments.append((shown, kind, data))  # read by ids.ids_from_attachment, rows at a time
            continue
        content = _decode_attachment(data, _charset(part), shown, kind, out)
        if content is not None:
            attachments.append((shown, kind, content))
    _check_alternatives(msg, out, max_attachment)
    return texts, attachments, messages


def _attached_message(part: Message) -> Message | None:
    """The message inside a message/rfc822 part, or None when the stdlib could not read one."""
    try:
        payload = part.get_payload()
    except Exception:
        return None
    if isinstance(payload, list) and len(payload) == 1 and isinstance(payload[0], Message):
        return payload[0]
    return None


def forwarded_attachment(inner: Message, out: Collector, max_attachment: int) -> tuple[Forwarded, list[Attachment]]:
    """An attached message read as a forward: its own words (quotes and signature cut) and its files.

    The same reading as an inline forward (``quotes.forwarded_message``): the
    forwarded request itself, one level deep, never the thread quoted below it.
    Its sender is its one plain From address (None otherwise), so that one of our
    own letters attached back to us is recognised as ours.
    """
    texts, attachments, _ = read_parts(inner, out, max_attachment, forwarded=True)
    froms = raw_values(inner, "From")
    sender = strict_address(froms[0]) if len(froms) == 1 else None
    return Forwarded("\n".join(unquoted(t) for t in texts), sender.lower() if sender else None), attachments


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


#: File name endings and content types of the files read, by kind. The name decides first:
#: Windows labels .csv files application/vnd.ms-excel.
_KINDS_BY_ENDING = ((".csv", "csv"), (".txt", "txt"), (".xlsx", "xlsx"))
_KINDS_BY_TYPE = {
    "text/csv": "csv", "application/csv": "csv", "text/comma-separated-values": "csv",
    "text/plain": "txt",
    XLSX_CONTENT_TYPE: "xlsx",
}
#: Files customers send that are not read, named so the officer knows what came.
_UNREAD_FORMATS = (
    (".xls", "an Excel 97-2003 workbook (.xls)"),
    (".xlsm", "a macro-enabled Excel workbook (.xlsm)"),
    (".xlsb", "a binary Excel workbook (.xlsb)"),
    (".ods", "an OpenDocument spreadsheet (.ods)"),
    (".numbers", "a Numbers spreadsheet (.numbers)"),
    (".pdf", "a PDF document"),
    (".docx", "a Word document"),
    (".doc", "a Word 97-2003 document"),
    (".zip", "a zip archive"),
)


def _attachment_kind(ctype: str, name: str | None) -> str | None:
    """"csv", "txt" or "xlsx" for a file we read, else None."""
    lowered = (name or "").lower()
    for ending, kind in _KINDS_BY_ENDING:
        if lowered.endswith(ending):
            return kind
    if any(lowered.endswith(ending) for ending, _ in _UNREAD_FORMATS):
        return None
    return _KINDS_BY_TYPE.get(ctype)


def _unread_format(ctype: str, name: str | None) -> str:
    lowered = (name or "").lower()
    return next((what for ending, what in _UNREAD_FORMATS if lowered.endswith(ending)), f"of type {safe_name(ctype)}")


def _decode_attachment(data: bytes, declared: str | None, shown: str, kind: str, out: Collector) -> str | None:
    """Attachments are decoded strictly: a wrongly decoded id would erase the wrong viewer (or none).

    A byte-order mark or a declared charset on the allow-list decides (with
    UTF-8 as the fallback, as before). With neither, the file is read as UTF-8
    when it is UTF-8 and holds no NUL byte (text never does: NULs mean UTF-16
    or UTF-32 without a mark); otherwise its encoding is guessed
    (``_guessed_text``), which is how Excel's cp1252 and Shift_JIS exports
    arrive.
    """
    encodings = _encodings(data, declared)
    if encodings is None:
        assert declared is not None
        out.add("charset_refused", f"the attachment {shown} {_refused(declared)}; it was not read")
        return None
    marked = any(data.startswith(bom) for bom, _ in _BOMS)
    if declared is None and not marked:
        if not _looks_wide(data):
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return _guessed_text(data, shown, kind, out)
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    out.add("attachment_undecodable", f"the attachment {shown} is neither UTF-8 nor UTF-16 (nor its declared charset) and was not read")
    return None


def _looks_wide(data: bytes) -> bool:
    """UTF-16 or UTF-32 without a byte-order mark? Text of any kind in them is at least a quarter NUL bytes
    (the high bytes of delimiters, line ends and ASCII ids); a stray NUL in UTF-8 is just a bad character."""
    return data.count(b"\x00") * 4 >= len(data) > 0


#: Above this share of characters out of place (charset-normalizer's "chaos")
#: a reading is not text: no reading under it means the guess has no confidence.
#: Above the library's default (0.2), which a short, real cp1252 export with
#: "Ñúñez, José" and "déjà vu" exceeds (0.23); random bytes stay far above it.
GUESS_MAX_CHAOS = 0.4
_WIDE = frozenset({"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"})


def _is_wide(name: str) -> bool:
    try:
        return codecs.lookup(name).name in _WIDE
    except LookupError:
        return False


def _keeps_ascii_bytes(names: list[str]) -> bool:
    """Does one of these codecs (which decode this file identically) read every ASCII byte as itself, byte by byte?

    True for the allow-list less UTF-16/32 (whose units are wider than a byte)
    and for any single-byte table codec whose lower half is ASCII (Mac Roman,
    the DOS code pages...). In such a reading an id made of ASCII bytes is the
    same id, and the delimiters, quotes and line ends are the same bytes,
    because no allowed multibyte charset uses them, nor any ASCII byte that
    would make a character read as ASCII, inside a character
    (tests/test_attachments.py checks both claims).
    """
    for name in names:
        try:
            codec = codecs.lookup(name).name
        except LookupError:
            continue
        if codec in ALLOWED_CHARSETS and codec not in _WIDE:
            return True
        try:
            table = getattr(importlib.import_module("encodings." + codec.replace("-", "_")), "decoding_table", None)
        except ImportError:
            table = None
        if isinstance(table, str) and len(table) == 256 and table[:128] == "".join(map(chr, range(128))):
            return True
    return False


def _scratch_ids(shown: str, kind: str, text: str) -> list[str] | None:
    """The ids a decoded file names (None: more than can be compared); its problems are the main reading's to report."""
    sink = IdCollector(Collector(), max_len=_COMPARE_MAX_ID_LENGTH, max_ids=_COMPARE_MAX_IDS)
    ids_from_attachment(shown, kind, text, sink)
    return None if sink.full else sink.ids


def _guessed_text(data: bytes, shown: str, kind: str, out: Collector) -> str | None:
    """A file with no charset and no byte-order mark that is not UTF-8: read only if the guess cannot matter.

    charset-normalizer lists the plausible readings (each with the encodings
    that give the very same text). The file is decoded with the first
    plausible encoding on the allow-list; when none is (a Mac Roman export),
    ISO-8859-1 stands in, reading every byte and keeping ASCII ones. It is read
    only if every viewer id in it is ASCII: ids are ASCII in practice, and
    ASCII ids read alike in every encoding that keeps ASCII bytes, whereas an
    id with other letters is only as right as the guess (the detector, sure of
    Shift_JIS, would read cp1252's "¡à¡" as "｡爍"), so a person looks.
    Readings that do not keep ASCII bytes (UTF-16 guessed from NUL bytes, or
    what the detector knows beyond our list) must name the same ids. No
    reading that looks like text at all (more than ``GUESS_MAX_CHAOS`` out of
    place), or only readings that change ASCII bytes: review.
    """
    matches = list(from_bytes(data, threshold=GUESS_MAX_CHAOS))
    if not matches:
        out.add("attachment_undecodable", f"the attachment {shown} declares no charset, is not UTF-8 and does not read "
                "as text in any encoding we recognise; it was not read")
        return None
    wide = _looks_wide(data)
    readings: list[tuple[str | None, bool, str, str]] = []  # (allowed codec, keeps ASCII bytes, text, name)
    for match in matches:
        names = [match.encoding, *match.could_be_from_charset]
        if _is_wide(match.encoding) != wide:
            continue  # UTF-16/32 only for NUL-heavy bytes (no delimiter or line end is possible otherwise), and only they
        allowed = next((codec for codec in map(allowed_charset, names) if codec is not None), None)
        try:
            text = data.decode(allowed or match.encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        readings.append((allowed, _keeps_ascii_bytes(names), text, safe_name(allowed or match.encoding)))
    chosen = next((r for r in readings if r[0] is not None), None)
    if chosen is None and any(r[1] for r in readings):
        # Only readings we do not decode with (Mac Roman, the DOS code pages...), some keeping ASCII bytes:
        # ISO-8859-1 reads every byte and keeps ASCII ones, so it stands in for reading ASCII ids.
        chosen = ("iso8859-1", True, data.decode("iso8859-1"), "ISO-8859-1")
    if chosen is None:
        seen = ", ".join(r[3] for r in readings[:3]) or "nothing"
        out.add("attachment_encoding_unclear", f"the attachment {shown} declares no charset and is not UTF-8; it reads "
                f"as {seen}, none of which is on the list of charsets we read; it was not read")
        return None
    ids = _scratch_ids(shown, kind, chosen[2])
    if ids is None:
        out.add("attachment_encoding_unclear", f"the attachment {shown} declares no charset and is not UTF-8, and names "
                "too many viewer ids to check that its likely encodings agree on them; it was not read")
        return None
    if not all(i.isascii() for i in ids):
        out.add("attachment_encoding_unclear", f"the attachment {shown} declares no charset and is not UTF-8, and a "
                f"viewer id in it is not ASCII: read as {chosen[3]} by a guess, it may be another id; it was not read")
        return None
    for other in readings:
        if other is chosen or other[1]:
            continue
        if _scratch_ids(shown, kind, other[2]) != ids:
            out.add("attachment_encoding_unclear", f"the attachment {shown} declares no charset and is not UTF-8; it reads "
                    f"as {chosen[3]} or {other[3]}, which give different viewer ids; it was not read")
            return None
    return chosen[2]
