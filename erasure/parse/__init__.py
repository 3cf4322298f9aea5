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
  one id a line, or an .xlsx workbook (its first sheet, parse/spreadsheet.py).

An id that still contains a space, comma or semicolon is ambiguous (one id or
several?) and goes to review, as do ids with control, format (zero-width,
bidi) or undecodable characters, and over-long ids. Ids are never patterns:
``%`` is the viewer whose id is the percent sign.

Quoted replies (``>`` lines, ``On ... wrote:`` and everything after it,
original-message blocks) and signatures (after ``-- ``) are never read as
requests, so a customer's reply quoting an old request cannot restart it.
A forwarded request (the customer forwarding its viewer's mail, inline or as
an attached message/rfc822) is read one level deep: the forwarded message's
own words and files, never the thread quoted below it; a forward inside a
forward, and the copy of a message a bounce or report carries, go to review.
Erasure words about the mail itself ("delete this e-mail" in a confidentiality
footer) do not make a request. Any named file is a file, whatever its
disposition: CSV, TXT and .xlsx are read, anything else (PDF, images attached
as files, Outlook .msg items) sends the request to review rather than being
skipped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Iterable, Literal

from erasure.parse.addresses import from_address_of, return_path_of, strict_address
from erasure.parse.automatic import auto_response_suppressed, machine_signals
from erasure.parse.headers import (
    MAX_HEADER_FIELD_BYTES,
    MAX_HEADER_FIELDS,
    MESSAGE_CONTENT_TYPE,
    capped_part_headers,
    message_id_of,
    parameter_problem,
    raw_values,
    references_of,
    split_header_fields,
    subject_of,
    unfold,
)
from erasure.parse.htmltext import html_to_text
from erasure.parse.ids import (
    IdCollector,
    checked_ids,
    clean_id,
    ids_from_attachment,
    ids_from_text,
)
from erasure.parse.language import Kind, kind_of, regulation_of
from erasure.parse.mime import (
    DEFAULT_MAX_ATTACHMENT_BYTES,
    MAX_DELIMITER_LINES,
    forwarded_attachment,
    read_parts,
    too_many_delimiter_lines,
)
from erasure.parse.problems import Collector, Problem, safe_name
from erasure.parse.quotes import echoes_our_letters, forwarded_message, unquoted
from erasure.parse.received import controller_received_on

__all__ = [
    "DEFAULT_MAX_ATTACHMENT_BYTES", "MAX_HEADER_FIELD_BYTES", "Kind", "ParsedMessage", "Problem",
    "clean_viewer_ids", "html_to_text", "parse_message", "strict_address", "unread_message",
]

MAX_BODY_TEXT_CHARS = 64 * 1024  # kept on ParsedMessage for display and policy hints
#: The wording (intent, negation, regulation, receipt date) is read from at most this much text: a
#: request longer than that is not acted on unread, it goes to a person (``text_too_long``). Ids are
#: still collected from all of it (bounded by policy.max_viewer_ids), for the officer.
MAX_WORDING_CHARS = 128 * 1024


@dataclass(frozen=True)
class ParsedMessage:
    """Everything policy needs to know about one email, read without trusting it."""

    message_id: str | None
    references: tuple[str, ...]
    subject: str
    from_address: str | None
    from_problem: Problem | None
    automatic: Problem | None
    auth_results: tuple[str, ...]
    kind: Kind
    regulation: Literal["gdpr", "ccpa"] | None
    viewer_ids: tuple[str, ...]
    problems: tuple[Problem, ...]
    # Added beyond the workflow contract:
    body_text: str = ""  # the unquoted text that was read (capped), for `requests show` and tenant hints
    forwarded: bool = False  # the request was read (also) from a forwarded message; recorded in the audit trail
    forwarded_from: tuple[str, ...] = ()  # the forwarded messages' senders ("" where not one clear address)
    controller_received_on: date | None = None  # "Received on: ..." (parse/received.py): starts the controller's clock


# ---------------------------------------------------------------- entry point


def parse_message(
    raw: bytes,
    *,
    max_viewer_id_length: int = 256,
    max_viewer_ids: int = 100_000,
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    own_addresses: Iterable[str] = (),
) -> ParsedMessage:
    """Read one raw message; any failure becomes a review Problem, never an exception.

    ``own_addresses``: our reply address(es). A forwarded message sent from one of
    them is one of our own letters coming back, read as a quote (never as a request).
    """
    try:
        own = frozenset(a.strip().lower() for a in own_addresses)
        return _parse(bytes(raw), max_viewer_id_length, max_viewer_ids, max_attachment_bytes, own)
    except MemoryError:  # under the parse budget's memory limit (parse/budget.py)
        return _unreadable("it needed more memory than policy.parse_memory_mb allows",
                           code="parse_budget_exceeded")
    except Exception as exc:  # the contract: a decision for every input, never a crash
        return _unreadable(f"the message could not be read ({type(exc).__name__}); a person must look at it")


def unread_message(raw: bytes, code: str, text: str) -> ParsedMessage:
    """The ParsedMessage of a message that was not read at all (e.g. over the parse budget): review only."""
    return _unreadable(text, code=code)


def _unreadable(text: str, code: str = "unparseable") -> ParsedMessage:
    problem = Problem(code, text)
    return ParsedMessage(
        message_id=None, references=(), subject="", from_address=None,
        from_problem=Problem("from_unreadable", "the From header could not be read"),
        automatic=None, auth_results=(), kind="other", regulation=None,
        viewer_ids=(), problems=(problem,),
    )


def _parse(raw: bytes, max_len: int, max_ids: int, max_attachment: int, own: frozenset[str]) -> ParsedMessage:
    out = Collector()
    fields, separator, body = split_header_fields(raw)
    from_count = sum(1 for name, _ in fields if name.lower() == "from")
    kept: list[bytes] = []
    for name, value in fields:
        if len(value) > MAX_HEADER_FIELD_BYTES:
            out.add("header_too_long", f"the {safe_name(name)} header is longer than {MAX_HEADER_FIELD_BYTES} bytes and was not read")
        elif len(kept) >= MAX_HEADER_FIELDS:
            out.add("too_many_headers", f"the message has more than {MAX_HEADER_FIELDS} header fields; the rest were not read")
        elif (problem := parameter_problem(name, value)) is not None:
            out.add(*problem)
        else:
            kept.append(value)
    head = b"".join(kept)

    parser = BytesParser(policy=policy.default)
    # The stdlib parses every MIME part (and recurses per level) before we can
    # count them, so a body with very many delimiter-like lines is not parsed:
    # headers only, and a person looks at it.
    if too_many_delimiter_lines(body):
        out.add("too_many_parts", f"the message has more than {MAX_DELIMITER_LINES} MIME delimiter lines; the body was not read")
        msg = parser.parsebytes(head + b"\r\n", headersonly=True)
        body = b""
    else:
        # Part headers get the same treatment as the top-level ones before the stdlib's parser sees them.
        body = capped_part_headers(body, out, body_is_message=MESSAGE_CONTENT_TYPE.search(head) is not None)
        try:
            msg = parser.parsebytes(head + separator + body)
        except RecursionError:
            out.add("mime_too_deep", "the MIME structure is nested too deeply to read")
            msg = parser.parsebytes(head + b"\r\n", headersonly=True)
            body = b""
    assert isinstance(msg, EmailMessage)

    subject = subject_of(msg, out)
    from_address, from_problem = from_address_of(msg, from_count, out)
    return_path = return_path_of(msg)
    # The bytes the stdlib was given (capped part headers), never the raw ones.
    automatic, maybe_automatic = machine_signals(msg, return_path, subject, head + separator + body)
    message_ids = raw_values(msg, "Message-ID")
    message_id = message_id_of(message_ids[0]) if message_ids else None
    references = references_of(message_id, msg)
    auth_results = tuple(unfold(v) for v in raw_values(msg, "Authentication-Results"))

    texts, attachments, attached = read_parts(msg, out, max_attachment)
    own_text = "\n".join(unquoted(t) for t in texts)
    # A forwarded request (the customer forwarding its viewer's mail, inline or as an
    # attached message) is read one level deep, with the forwarder's own words; a
    # quoted reply is not. One of our own letters forwarded back is a quote.
    forwards = [f for f in (forwarded_message(t, subject) for t in texts) if f is not None and f.sender not in own]
    for inner in attached:
        forward, files = forwarded_attachment(inner, out, max_attachment)
        if forward.sender not in own:
            forwards.append(forward)
            attachments.extend(files)
    request_text = "\n\n".join([own_text, *(f.text for f in forwards)]) if forwards else own_text
    if echoes_our_letters(request_text):
        out.add("echoes_our_reply", "the message repeats the text of one of our own letters (an automatic "
                "acknowledgement or a copy of our reply); ids in it are not acted on")
    # After the echo check, so the more telling reason comes first.
    suppressed = auto_response_suppressed(msg)
    if suppressed is not None:
        out.add(suppressed.code, suppressed.text)
    if maybe_automatic is not None:
        out.add(maybe_automatic.code, maybe_automatic.text)
    sink = IdCollector(out, max_len, max_ids)
    ids_from_text(request_text, sink)
    for name, kind_of_file, content in attachments:
        ids_from_attachment(name, kind_of_file, content, sink)
    viewer_ids = tuple(sink.ids)

    words = subject + "\n" + request_text
    if len(words) > MAX_WORDING_CHARS:
        out.add("text_too_long", f"the message's text is longer than {MAX_WORDING_CHARS // 1024} KB, so its wording "
                "was not read in full; a person must read it (a long list of ids belongs in a CSV attachment)")
        words = words[:MAX_WORDING_CHARS]
    kind = kind_of(words, out)
    regulation = regulation_of(words, out)
    received_on = controller_received_on(words[len(subject) + 1:], out)

    return ParsedMessage(
        message_id=message_id,
        references=references,
        subject=subject,
        from_address=from_address,
        from_problem=from_problem,
        automatic=automatic,
        auth_results=auth_results,
        kind=kind,
        regulation=regulation,
        viewer_ids=viewer_ids,
        problems=tuple(out.problems),
        body_text=request_text[:MAX_BODY_TEXT_CHARS],
        forwarded=bool(forwards),
        forwarded_from=tuple(f.sender or "" for f in forwards),
        controller_received_on=received_on,
    )


def clean_viewer_ids(values: Iterable[str], *, max_length: int = 256,
                     max_count: int = 100_000) -> tuple[tuple[str, ...], tuple[Problem, ...]]:
    """Ids typed by an officer (`requests add`) pass the same checks as ids read from mail."""
    out = Collector()
    ids = checked_ids([clean_id(v) for v in values], out, max_length, max_count)
    return ids, tuple(out.problems)
