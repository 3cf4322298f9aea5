"""parse_message: what a customer's email asks for, read without trusting it.

Byte-literal messages keep each rule visible next to its test; the realistic
end-to-end cases live in the .eml corpus (test_email_corpus.py).
"""

from __future__ import annotations

import base64
import codecs
import email
import email.policy
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erasure.parse import (
    MAX_HEADER_FIELD_BYTES,
    ParsedMessage,
    html_to_text,
    parse_message,
    strict_address,
)
from erasure.parse.addresses import return_path_of

T = TypeVar("T")
HANG_LIMIT_SECONDS = 60  # "did not hang", not a speed requirement


def mail(body: str | bytes = "Please erase.\nViewer ID: v-1\n", *, headers: str | bytes = "", subject: str = "GDPR erasure request",
         from_: str = "Alice <privacy@acme.example>", content_type: str = "text/plain; charset=utf-8") -> bytes:
    """A minimal request; pass headers/body to vary one thing at a time."""
    head = f"From: {from_}\nTo: privacy@privacy.example\nSubject: {subject}\nMessage-ID: <m1@acme.example>\nMIME-Version: 1.0\n"
    if content_type:
        head += f"Content-Type: {content_type}\n"
    h = head.encode() + (headers.encode() if isinstance(headers, str) else headers)
    b = body.encode() if isinstance(body, str) else body
    return h + b"\n" + b


def codes(message: ParsedMessage) -> set[str]:
    return {p.code for p in message.problems}


def finishes(fn: Callable[[], T], seconds: float = HANG_LIMIT_SECONDS) -> T:
    """Run fn in a thread and fail (instead of hanging the suite) if it never returns."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # surfaced below as a failure
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"did not return within {seconds} s"
    assert "error" not in box, f"raised {box.get('error')!r}"
    return box["value"]  # type: ignore[return-value]


# ---------------------------------------------------------------- viewer ids in text


@pytest.mark.parametrize(
    "line, expected",
    [
        ("Viewer ID: abc-123", ["abc-123"]),
        ("viewer_id=abc-123", ["abc-123"]),
        ("viewer id - abc-123", ["abc-123"]),
        ("VIEWER-ID:abc-123", ["abc-123"]),
        ("viewerid = abc-123", ["abc-123"]),
        ("Viewer ID \u2013 abc-123", ["abc-123"]),
        ("  Viewer ID:   abc-123   ", ["abc-123"]),
        ('Viewer ID: "abc-123"', ["abc-123"]),
        ("Viewer ID: `abc-123`", ["abc-123"]),
        ("- Viewer ID: abc-123", ["abc-123"]),
        ("Viewer IDs: a1, a2;a3", ["a1", "a2", "a3"]),
        ("Viewer ID: ABC-123", ["ABC-123"]),  # exact: case is kept
        ("Viewer ID: 550e8400-e29b-41d4-a716-446655440000", ["550e8400-e29b-41d4-a716-446655440000"]),
        ("Viewer ID: vi\u00e9wer-\u00fc", ["vi\u00e9wer-\u00fc"]),
        ("my viewer id is abc-123", []),  # only the documented forms are read
        ("Viewer ID:", []),
    ],
)
def test_documented_id_forms(line: str, expected: list[str]) -> None:
    assert list(parse_message(mail(f"Please erase.\n{line}\n")).viewer_ids) == expected


def test_list_under_label_runs_until_blank_line() -> None:
    body = "Please erase.\nViewer IDs:\n- a1\n* a2\n\u2022 a3\n1. a4\n2) a5\n  a6\n\nThanks, a7\n"
    assert parse_message(mail(body)).viewer_ids == ("a1", "a2", "a3", "a4", "a5", "a6")


def test_list_stops_at_next_label() -> None:
    body = "Please erase.\nViewer IDs:\na1\nViewer ID: b1\n"
    assert parse_message(mail(body)).viewer_ids == ("a1", "b1")


def test_ids_are_deduplicated_in_first_seen_order() -> None:
    body = "Please erase.\nViewer ID: b\nViewer ID: a\nViewer ID: b\n"
    assert parse_message(mail(body)).viewer_ids == ("b", "a")


@pytest.mark.parametrize("value", ["%", "*", "_", "viewer_%", ".*", "1'OR'1'='1", "a\\b", "[abc]", "x'--"])
def test_pattern_and_sql_looking_ids_are_exact_strings(value: str) -> None:
    assert parse_message(mail(f"Please erase.\nViewer ID: {value}\n")).viewer_ids == (value,)


@pytest.mark.parametrize(
    "value, code",
    [
        ("ab\u200bcd", "viewer_id_control_chars"),  # zero-width space
        ("ab\u200dcd", "viewer_id_control_chars"),  # zero-width joiner
        ("ab\ufeffcd", "viewer_id_control_chars"),  # BOM / zero-width no-break space
        ("ab\u202ecd", "viewer_id_control_chars"),  # right-to-left override
        ("ab\u2028cd", "viewer_id_control_chars"),  # line separator
        ("ab\x00cd", "viewer_id_control_chars"),
        ("ab\x1bcd", "viewer_id_control_chars"),
        ("ab\x7fcd", "viewer_id_control_chars"),
        ("ab cd", "viewer_id_ambiguous"),
        ("ab,cd", "viewer_id_ambiguous"),
        ("ab\tcd", "viewer_id_ambiguous"),
        ("'; DROP TABLE views; --", "viewer_id_ambiguous"),
        ("x" * 257, "viewer_id_too_long"),
    ],
)
def test_doubtful_ids_become_problems_not_ids(value: str, code: str) -> None:
    message = parse_message(mail(f"Please erase.\nViewer ID: {value}\nViewer ID: good-1\n"))
    assert code in codes(message)
    assert message.viewer_ids == ("good-1",)


def test_undecodable_bytes_in_an_id_are_a_problem() -> None:
    message = parse_message(mail(b"Please erase.\nViewer ID: ab\xffcd\n"))
    assert "viewer_id_undecodable" in codes(message)
    assert message.viewer_ids == ()


def test_id_length_limit_is_a_parameter() -> None:
    body = "Please erase.\nViewer ID: 12345\nViewer ID: 123456\n"
    message = parse_message(mail(body), max_viewer_id_length=5)
    assert message.viewer_ids == ("12345",)
    assert "viewer_id_too_long" in codes(message)


def test_too_many_ids_is_a_problem() -> None:
    body = "Please erase.\nViewer IDs:\n" + "".join(f"id-{i}\n" for i in range(11))
    assert "too_many_viewer_ids" in codes(parse_message(mail(body), max_viewer_ids=10))
    assert "too_many_viewer_ids" not in codes(parse_message(mail(body), max_viewer_ids=11))


# ---------------------------------------------------------------- quoting and signatures


@pytest.mark.parametrize(
    "tail",
    [
        "> Viewer ID: old\n",
        "From: Privacy Desk <privacy@privacy.example>\nSent: Monday, June 2, 2025 10:00\nViewer ID: old\n",
        "Am 2. Juni 2025 um 10:00 schrieb Privacy Desk <privacy@privacy.example>:\nViewer ID: old\n",
        "Le 2 juin 2025 \u00e0 10:00, Privacy Desk a \u00e9crit :\nViewer ID: old\n",
        ">> Viewer ID: old\n",
        "On Mon, 2 Jun 2025, Privacy Desk <privacy@privacy.example> wrote:\nViewer ID: old\n",
        "On Mon, 2 Jun 2025 at 10:00, Privacy Desk\n<privacy@privacy.example> wrote:\nViewer ID: old\n",
        "-----Original Message-----\nViewer ID: old\n",
        "________________________________\nFrom: Desk\nViewer ID: old\n",
        "-- \nAlice\nViewer ID: old\n",
        "--\nAlice\nViewer ID: old\n",
    ],
)
def test_quoted_text_and_signatures_are_not_read(tail: str) -> None:
    message = parse_message(mail("Please erase.\nViewer ID: new\n\n" + tail))
    assert message.viewer_ids == ("new",)
    assert "old" not in message.body_text


@pytest.mark.parametrize("tail", [
    "---------- Forwarded message ---------\nViewer ID: fwd\n",
    "Begin forwarded message:\nViewer ID: fwd\n",
])
def test_a_forwarded_request_is_read_one_level_deep(tail: str) -> None:
    # Issue 13: a processor's requests arrive as forwards (tests/test_parse_forwards.py has the table).
    message = parse_message(mail("Please erase.\nViewer ID: new\n\n" + tail))
    assert (message.viewer_ids, message.forwarded) == (("new", "fwd"), True)


def test_quoted_erasure_words_do_not_make_a_request() -> None:
    message = parse_message(mail("Thanks for the update!\n\n> Please erase.\n> Viewer ID: old\n", subject="Thanks"))
    assert message.kind == "other"
    assert message.viewer_ids == ()


# ---------------------------------------------------------------- MIME


def test_html_only_body_is_converted_to_text() -> None:
    html = "<html><body><p>Please erase (GDPR).</p><p>Viewer&nbsp;ID: <b>h&#45;1</b></p></body></html>"
    message = parse_message(mail(html, content_type="text/html; charset=utf-8"))
    assert message.viewer_ids == ("h-1",)
    assert message.kind == "erasure" and message.regulation == "gdpr"


def test_html_to_text_skips_script_style_and_marks_blockquotes() -> None:
    text = html_to_text(
        "<style>.x{}</style><script>var a='Viewer ID: s';</script><div>Viewer ID: keep</div>"
        "<blockquote>Viewer ID: quoted</blockquote><div class='gmail_quote'>Viewer ID: quoted2</div>"
    )
    assert "Viewer ID: keep" in text.splitlines()
    assert "> Viewer ID: quoted" in text.splitlines()
    assert "> Viewer ID: quoted2" in text.splitlines()
    assert "Viewer ID: s" not in text


def test_multipart_alternative_prefers_plain_text() -> None:
    body = (
        "--b\nContent-Type: text/html\n\n<p>Viewer ID: from-html</p>\n"
        "--b\nContent-Type: text/plain\n\nPlease erase.\nViewer ID: from-plain\n--b--\n"
    )
    message = parse_message(mail(body, content_type='multipart/alternative; boundary="b"'))
    assert message.viewer_ids == ("from-plain",)


@pytest.mark.parametrize(
    "cte, encoded",
    [
        ("quoted-printable", "Please erase.\nViewer ID: caf=C3=A9-=\n1\n"),
        ("base64", base64.encodebytes("Please erase.\nViewer ID: caf\u00e9-1\n".encode()).decode()),
    ],
)
def test_transfer_encodings(cte: str, encoded: str) -> None:
    message = parse_message(mail(encoded, headers=f"Content-Transfer-Encoding: {cte}\n"))
    assert message.viewer_ids == ("caf\u00e9-1",)


@pytest.mark.parametrize("charset", ["iso-8859-1", "windows-1252", "x-no-such-charset", "utf-8"])
def test_charsets_known_unknown_and_wrong_do_not_stop_reading(charset: str) -> None:
    raw = mail("Bitte l\u00f6schen. Please erase.\nViewer ID: cs-1\n".encode("latin-1"), content_type=f"text/plain; charset={charset}")
    message = parse_message(raw)
    assert message.viewer_ids == ("cs-1",)
    assert message.kind == "erasure"


def test_rfc2047_subject_is_decoded() -> None:
    message = parse_message(mail(subject="=?UTF-8?Q?L=C3=B6schung_request?="))
    assert message.subject == "L\u00f6schung request"


def test_subject_header_injection_is_flattened_to_one_line() -> None:
    message = parse_message(mail(subject="=?utf-8?q?Hi=0D=0ABcc:_x@evil.example=0D=0A=0D=0Abody?="))
    assert "\r" not in message.subject and "\n" not in message.subject
    assert message.subject == "Hi Bcc: x@evil.example body"


def test_subject_control_characters_are_removed_and_length_bounded() -> None:
    message = parse_message(mail(subject="=?utf-8?q?a=00b=1Bc=E2=80=8Bd?="))
    assert message.subject == "abcd"
    long = parse_message(mail(subject="x" * 5000))
    assert len(long.subject) <= 998


def test_a_multipart_without_its_boundary_is_read_without_a_crash() -> None:
    raw = mail("no boundary here\n", content_type="multipart/mixed")
    message = parse_message(raw)
    assert message.viewer_ids == () and "unparseable" not in {p.code for p in message.problems}


def test_nul_bytes_outside_ids_are_tolerated() -> None:
    message = parse_message(mail(b"Please\x00 erase.\x00\nViewer ID: n-1\n"))
    assert message.viewer_ids == ("n-1",)


def test_an_attached_message_is_read_as_a_forward() -> None:
    body = "--b\nContent-Type: text/plain\n\nPlease erase, see below.\n--b\nContent-Type: message/rfc822\n\nFrom: x@y.example\n\nViewer ID: fwd\n--b--\n"
    message = parse_message(mail(body, content_type='multipart/mixed; boundary="b"'))
    assert (message.viewer_ids, message.forwarded, message.forwarded_from) == (("fwd",), True, ("x@y.example",))
    assert message.problems == ()


def test_inline_images_are_ignored_other_attachments_flagged() -> None:
    image = "--b\nContent-Type: image/png\nContent-Disposition: inline\nContent-ID: <logo>\n\niVBORw0KGgo=\n"
    text = "--b\nContent-Type: text/plain\n\nPlease erase.\nViewer ID: i-1\n"
    inline = parse_message(mail(text + image + "--b--\n", content_type='multipart/related; boundary="b"'))
    assert inline.viewer_ids == ("i-1",) and inline.problems == ()
    attached = image.replace("inline", 'attachment; filename="scan.png"')
    flagged = parse_message(mail(text + attached + "--b--\n", content_type='multipart/mixed; boundary="b"'))
    assert "attachment_unreadable" in codes(flagged)


# ---------------------------------------------------------------- attachments


def with_attachment(data: bytes, *, filename: str = "ids.csv", content_type: str = "text/csv") -> bytes:
    encoded = base64.encodebytes(data).decode()
    body = (
        "--b\nContent-Type: text/plain\n\nPlease erase the attached viewers.\n"
        f'--b\nContent-Type: {content_type}\nContent-Disposition: attachment; filename="{filename}"\n'
        f"Content-Transfer-Encoding: base64\n\n{encoded}--b--\n"
    )
    return mail(body, content_type='multipart/mixed; boundary="b"')


@pytest.mark.parametrize(
    "data",
    [
        b"viewer_id\nc-1\nc-2\n",
        b"Viewer_ID ,other\nc-1,x\nc-2,y\n",
        b"other,viewer_id\nx,c-1\ny,c-2\n,\n",
        b"c-1\nc-2\n",
        codecs.BOM_UTF8 + b"viewer_id\r\nc-1\r\nc-2\r\n",
        codecs.BOM_UTF8 + b"c-1\nc-2\n",
        b"other;viewer_id\nx;c-1\ny;c-2\n",  # European Excel
        b"sep=;\nviewer_id;other\nc-1;x\nc-2;y\n",
        b"viewer_id\tother\nc-1\tx\nc-2\ty\n",
        "viewer_id\r\nc-1\r\nc-2\r\n".encode("utf-16"),  # BOM + little endian
        codecs.BOM_UTF16_BE + "c-1\nc-2\n".encode("utf-16-be"),
    ],
)
def test_csv_attachments(data: bytes) -> None:
    message = parse_message(with_attachment(data))
    assert message.viewer_ids == ("c-1", "c-2")
    assert message.problems == ()


def test_txt_attachment_one_id_a_line() -> None:
    message = parse_message(with_attachment(b"t-1\n  t-2 \n\nt-3\n", filename="ids.txt", content_type="text/plain"))
    assert message.viewer_ids == ("t-1", "t-2", "t-3")


@pytest.mark.parametrize(
    "data, code",
    [
        (b"user,email\nu1,a@b.example\n", "attachment_no_viewer_id_column"),
        (b"viewer_id,viewer id\na,b\n", "attachment_ambiguous"),
        # not UTF-8 and no charset: the encoding is guessed, and an id that is not ASCII reads
        # differently in the likely encodings (tests/test_attachments.py)
        (b"viewer_id\n\xff\xfe\xfd-not-utf8\n", "attachment_encoding_unclear"),
        (b"viewer_id\nab\x00cd\n", "viewer_id_control_chars"),
    ],
)
def test_bad_csv_attachments_go_to_review(data: bytes, code: str) -> None:
    assert code in codes(parse_message(with_attachment(data)))


def test_attachment_over_the_limit_is_not_read() -> None:
    data = b"viewer_id\n" + b"".join(b"id-%d\n" % i for i in range(200))
    message = parse_message(with_attachment(data), max_attachment_bytes=100)
    assert "attachment_too_large" in codes(message)
    assert message.viewer_ids == ()
    assert parse_message(with_attachment(data)).viewer_ids[:2] == ("id-0", "id-1")


# ---------------------------------------------------------------- kind and regulation


@pytest.mark.parametrize(
    "text, kind",
    [
        ("Please erase all data.", "erasure"),
        ("Please delete the viewer.", "erasure"),
        ("Request for removal of data.", "erasure"),
        ("Right to be forgotten (Art. 17).", "erasure"),
        ("We would like a copy of the data.", "access"),
        ("This is a subject access request.", "access"),
        ("Please provide access to the viewer's data.", "access"),
        ("Data portability request (Article 20).", "access"),
        ("How long do you keep data?", "other"),
        ("Do you sell personal information?", "other"),
    ],
)
def test_kind(text: str, kind: str) -> None:
    assert parse_message(mail(text + "\nViewer ID: k-1\n", subject="Request")).kind == kind


def test_negated_erasure_goes_to_review() -> None:
    message = parse_message(mail("Please do not delete anything yet.\nViewer ID: k-1\n", subject="Hold"))
    assert "ambiguous_wording" in codes(message)


@pytest.mark.parametrize(
    "text, regulation",
    [
        ("Erase under the GDPR.", "gdpr"),
        ("Erase under UK GDPR.", "gdpr"),
        ("Löschung nach DSGVO.", "gdpr"),
        ("Erase under the CCPA.", "ccpa"),
        ("Erase under the CPRA.", "ccpa"),
        ("A California consumer asks us to erase.", "ccpa"),
        ("Cal. Civ. Code 1798.105 erase.", "ccpa"),
        ("Please erase.", None),
    ],
)
def test_regulation(text: str, regulation: str | None) -> None:
    assert parse_message(mail(text + "\nViewer ID: r-1\n", subject="Request")).regulation == regulation


def test_both_regulations_is_a_problem() -> None:
    message = parse_message(mail("Under GDPR and CCPA please erase.\nViewer ID: r-1\n", subject="x"))
    assert message.regulation is None
    assert "regulation_ambiguous" in codes(message)


# ---------------------------------------------------------------- From and other headers


@pytest.mark.parametrize(
    "value, expected",
    [
        ("privacy@acme.example", "privacy@acme.example"),
        ("Alice <privacy@ACME.Example>", "privacy@acme.example"),
        ("Privacy@acme.example", "Privacy@acme.example"),  # local part kept as written
        ('"Admin, Alice" <privacy@acme.example>', "privacy@acme.example"),
        ("=?utf-8?q?Alice?= <privacy@acme.example>", "privacy@acme.example"),
        ("<privacy@acme.example>", "privacy@acme.example"),
        ("alice@example.org(<bob@example.com>", None),  # CVE-2023-27043
        ("bob@example.com (alice@example.org)", None),
        ("alice@example.org, bob@example.com", None),
        ("Team: alice@example.org;", None),
        ('"alice@example.org"@example.com', None),
        ("alice@[192.0.2.1]", None),
        ("alice@localhost", None),
        ("alice", None),
        ("Alice <alice@example.org> <bob@example.com>", None),
        ("Alice <alice@example.org>bob@example.com", None),
        ("", None),
    ],
)
def test_strict_address(value: str, expected: str | None) -> None:
    assert strict_address(value) == expected


def test_from_address_and_its_problems() -> None:
    assert parse_message(mail()).from_address == "privacy@acme.example"
    two = parse_message(mail(headers="From: eve@evil.example\n"))
    assert two.from_address is None and two.from_problem is not None and two.from_problem.code == "from_multiple"
    bad = parse_message(mail(from_="alice@example.org(<privacy@acme.example>"))
    assert bad.from_address is None and bad.from_problem is not None and bad.from_problem.code == "from_invalid"
    missing = parse_message(b"Subject: x\n\nViewer ID: a\n")
    assert missing.from_problem is not None and missing.from_problem.code == "from_missing"


def test_message_id_and_references_for_threading() -> None:
    raw = mail(headers="References: <a@x.example>\n <b@x.example>\nIn-Reply-To: <b@x.example>\n")
    message = parse_message(raw)
    assert message.message_id == "<m1@acme.example>"
    assert message.references == ("<m1@acme.example>", "<a@x.example>", "<b@x.example>")


def test_message_id_never_carries_line_breaks() -> None:
    raw = b"From: a@acme.example\nMessage-ID: =?utf-8?q?<x=0D=0ABcc:_y@z.example>?=\n\nx\n"
    message_id = parse_message(raw).message_id
    assert message_id is None or ("\n" not in message_id and "\r" not in message_id)


def test_authentication_results_are_kept_raw_unfolded_in_order() -> None:
    raw = mail(headers="Authentication-Results: mx.a; dmarc=pass\n header.from=acme.example\nAuthentication-Results: mx.b; none\n")
    assert parse_message(raw).auth_results == ("mx.a; dmarc=pass header.from=acme.example", "mx.b; none")


# ---------------------------------------------------------------- automatic mail


@pytest.mark.parametrize(
    "headers, code",
    [
        ("Auto-Submitted: auto-replied\n", "auto_submitted"),
        ("Auto-Submitted: auto-generated\n", "auto_submitted"),
        ("Auto-Submitted: auto-notified; owner-email=x@y.example\n", "auto_submitted"),
        ("Auto-Submitted: something-new\n", "auto_submitted"),
        ("X-Autoreply: yes\n", "auto_submitted"),
        ("Precedence: bulk\n", "bulk_mail"),
        ("Precedence: junk\n", "bulk_mail"),
        ("Precedence: list\n", "bulk_mail"),
        ("List-Id: <privacy.lists.example>\n", "mailing_list"),
        ("Return-Path: <>\n", "null_return_path"),
        ("Return-Path: < >\n", "null_return_path"),
    ],
)
def test_automatic_mail_is_recognised(headers: str, code: str) -> None:
    message = parse_message(mail(headers=headers))
    assert message.automatic is not None and message.automatic.code == code


@pytest.mark.parametrize("from_", ["MAILER-DAEMON@mx.acme.example", "Postmaster <postmaster@acme.example>",
                                   "MAILER-DAEMON@mx.acme.example (Mail Delivery System)", "MAILER-DAEMON"])
def test_mail_system_senders_are_automatic_when_the_mail_reads_as_a_report(from_: str) -> None:
    report = "This is the mail system at host mx.acme.example.\n\n<bob@acme.example>: 550 5.1.1 User unknown\n"
    message = parse_message(mail(report, from_=from_))
    assert message.automatic is not None and message.automatic.code == "system_sender"
    # Alone, the sender is a marker, not proof: a person may write from postmaster@.
    # The request goes to a person and is never answered automatically.
    person = parse_message(mail(from_=from_))
    assert person.automatic is None and "maybe_automatic" in codes(person)


def test_delivery_reports_are_automatic() -> None:
    raw = mail("--r\nContent-Type: text/plain\n\nfailed\n--r--\n", content_type='multipart/report; report-type=delivery-status; boundary="r"')
    message = parse_message(raw)
    assert message.automatic is not None and message.automatic.code == "delivery_report"


def test_addresses_that_merely_contain_postmaster_are_people() -> None:
    assert parse_message(mail(from_="postmaster-team@acme.example")).automatic is None
    assert parse_message(mail(from_="jane.postmaster@acme.example")).automatic is None


@pytest.mark.parametrize("headers", ["Auto-Submitted: no\n", "Auto-Submitted: No (human)\n", "Precedence: first-class\n", "Return-Path: <a@acme.example>\n"])
def test_human_mail_is_not_automatic(headers: str) -> None:
    assert parse_message(mail(headers=headers)).automatic is None


def test_return_path() -> None:
    def read(headers: str) -> str | None:
        return return_path_of(email.message_from_bytes(mail(headers=headers), policy=email.policy.default))

    assert read("Return-Path: <>\n") == ""
    assert read("Return-Path: <b@acme.example>\n") == "b@acme.example"
    assert read("") is None


# ---------------------------------------------------------------- hostile sizes (bounded, "did not hang")


def test_10k_encoded_words_subject_returns_a_review_reason() -> None:
    subject = " ".join(["=?utf-8?q?erase?="] * 10_000)
    message = finishes(lambda: parse_message(mail(subject=subject)))
    assert "header_too_long" in codes(message)


def test_encoded_words_just_under_the_header_limit_are_still_read() -> None:
    words = (MAX_HEADER_FIELD_BYTES - 100) // len("=?utf-8?q?ab?= ")
    message = finishes(lambda: parse_message(mail(subject=" ".join(["=?utf-8?q?ab?="] * words))))
    assert message.subject.startswith("abab") and "header_too_long" not in codes(message)


def test_2mb_header_line_returns_a_review_reason() -> None:
    message = finishes(lambda: parse_message(mail(headers="X-Filler: " + "A" * 2_000_000 + "\n")))
    assert "header_too_long" in codes(message)
    assert message.viewer_ids == ("v-1",)


def test_2mb_from_line_is_unreadable_not_guessed() -> None:
    message = finishes(lambda: parse_message(b"From: " + b"a" * 2_000_000 + b"@acme.example\n\nViewer ID: a\n"))
    assert message.from_address is None and message.from_problem is not None


def test_very_many_headers() -> None:
    raw = b"".join(b"X-H%d: v\n" % i for i in range(50_000)) + b"From: a@acme.example\n\nx\n"
    message = finishes(lambda: parse_message(raw))
    assert "too_many_headers" in codes(message) and message.from_address is None


@pytest.mark.parametrize("depth", [30, 500, 3000])
def test_deep_multipart_nesting(depth: int) -> None:
    body = "".join(f'Content-Type: multipart/mixed; boundary="n{i}"\n\n--n{i}\n' for i in range(depth))
    body += "Content-Type: text/plain\n\nPlease erase.\nViewer ID: deep\n" + "".join(f"--n{i}--\n" for i in reversed(range(depth)))
    raw = b"From: a@acme.example\nSubject: erase\nMIME-Version: 1.0\n" + body.encode()
    message = finishes(lambda: parse_message(raw))
    assert codes(message) & {"mime_too_deep", "too_many_parts"}
    assert message.viewer_ids == ()


def test_very_many_parts() -> None:
    parts = "".join(f"--b\nContent-Type: text/plain\n\nViewer ID: p{i}\n" for i in range(10_000))
    message = finishes(lambda: parse_message(mail(parts + "--b--\n", content_type='multipart/mixed; boundary="b"')))
    assert "too_many_parts" in codes(message)


def test_pathological_from_display_name() -> None:
    message = finishes(lambda: parse_message(mail(from_=" " * 15_000 + "x")))
    assert message.from_address is None


# ---------------------------------------------------------------- never raises


def header_line() -> st.SearchStrategy[bytes]:
    names = st.sampled_from([b"From", b"Subject", b"Content-Type", b"Content-Transfer-Encoding", b"Auto-Submitted", b"Return-Path",
                             b"Authentication-Results", b"Message-ID", b"References", b"Content-Disposition", b"X-Any"])
    values = st.one_of(
        st.binary(max_size=200),
        st.sampled_from([b"multipart/mixed; boundary=b", b"text/html; charset=utf-16", b"base64", b"quoted-printable",
                         b"=?utf-8?q?=0D=0A?=", b"=?x-bad?b?////?=", b"<>", b"a@b.example(<c@d.example>", b"attachment; filename=a.csv",
                         b"mx.privacy.example; dmarc=pass header.from=acme.example", b"text/plain; charset=base64",
                         b"text/csv; charset=utf-16", b"inline; filename=x.csv", b"image/png", b"message/rfc822",
                         b"multipart/alternative; boundary=b", b"multipart/report; boundary=b", b"text/html"]),
    )
    return st.builds(lambda n, v: n + b": " + v + b"\r\n", names, values)


def body_chunk() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300),
        st.sampled_from([b"--b\r\n", b"--b--\r\n", b"\r\n", b"Viewer ID: x\r\n", b"Viewer IDs:\r\n", b"> q\r\n", b"-- \r\n",
                         b"Content-Type: text/csv\r\nContent-Disposition: attachment\r\n\r\nviewer_id\r\na\r\n", b"\x00\xff\xfe",
                         b"Content-Type: text/html\r\n\r\n<blockquote><p>Viewer ID: h</p>", b"Content-Type: message/rfc822\r\n\r\n",
                         b"Content-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n", b"\xfe\xff\x00v\x00i"]),
    )


messages = st.builds(lambda hs, bs: b"".join(hs) + b"\r\n" + b"".join(bs), st.lists(header_line(), max_size=12), st.lists(body_chunk(), max_size=20))
hostile_settings = settings(max_examples=200, deadline=timedelta(seconds=5), suppress_health_check=[HealthCheck.too_slow])


def assert_is_a_decision(message: ParsedMessage) -> None:
    assert isinstance(message, ParsedMessage)
    assert message.kind in ("erasure", "access", "other")
    assert (message.from_address is None) == (message.from_problem is not None)
    assert all(p.code and p.text for p in message.problems)
    assert all(isinstance(v, str) and v == v.strip() and v for v in message.viewer_ids)
    assert "\n" not in message.subject and "\r" not in message.subject


@hostile_settings
@given(st.binary(max_size=4096))
def test_any_bytes_give_a_decision(raw: bytes) -> None:
    assert_is_a_decision(parse_message(raw))


@hostile_settings
@given(messages)
def test_any_mail_shaped_bytes_give_a_decision(raw: bytes) -> None:
    assert_is_a_decision(parse_message(raw))


# ---------------------------------------------------------------- everyday corporate mail


@pytest.mark.parametrize(
    "footer",
    [
        "If you received this in error, please notify the sender and delete this e-mail.",
        "Please delete this message and all copies from your system.",
        "If you are not the addressee, erase the transmission immediately.",
    ],
)
def test_confidentiality_footers_are_not_erasure_requests(footer: str) -> None:
    message = parse_message(mail(f"What do you store for this viewer?\nViewer ID: q-1\n\nAlice\n{footer}\n", subject="Question"))
    assert message.kind == "other"


def test_a_real_request_with_a_footer_is_still_an_erasure() -> None:
    body = "Please delete all data for this viewer.\nViewer ID: q-1\n\nIf received in error, please delete this e-mail.\n"
    assert parse_message(mail(body, subject="Request")).kind == "erasure"


def test_smime_signature_part_is_not_an_unreadable_attachment() -> None:
    body = (
        "--s\nContent-Type: text/plain\n\nPlease erase.\nViewer ID: sm-1\n"
        '--s\nContent-Type: application/pkcs7-signature; name="smime.p7s"\nContent-Disposition: attachment; filename="smime.p7s"\n\nMIAG\n--s--\n'
    )
    message = parse_message(mail(body, content_type='multipart/signed; protocol="application/pkcs7-signature"; boundary="s"'))
    assert message.viewer_ids == ("sm-1",) and message.problems == ()


def test_txt_attachment_heading_is_not_an_id() -> None:
    message = parse_message(with_attachment(b"viewer_id\nt-1\n", filename="ids.txt", content_type="text/plain"))
    assert message.viewer_ids == ("t-1",)


def test_header_folded_into_very_many_lines() -> None:
    raw = b"From: a@acme.example\nX-Folded: a\n" + b" b\n" * 500_000 + b"\nPlease erase.\nViewer ID: f-1\n"
    message = finishes(lambda: parse_message(raw))
    assert "header_too_long" in codes(message)
    assert message.from_address == "a@acme.example"


@pytest.mark.parametrize("charset", ["base64", "zlib", "rot13", "hex"])
def test_charsets_that_are_not_text_encodings(charset: str) -> None:
    message = parse_message(mail(b"Please erase.\nViewer ID: ch-1\n", content_type=f"text/plain; charset={charset}"))
    assert message.viewer_ids == ("ch-1",)
    assert "unparseable" not in codes(message)


def test_files_marked_inline_are_still_files() -> None:
    body = (
        "--b\nContent-Type: text/plain\n\nPlease erase the viewers in the file.\n"
        "--b\nContent-Type: text/csv\nContent-Disposition: inline; filename=ids.csv\n\nviewer_id\nx1\n"
        "--b\nContent-Type: application/pdf\nContent-Disposition: inline; filename=letter.pdf\n\nJVBE\n--b--\n"
    )
    message = parse_message(mail(body, content_type='multipart/mixed; boundary="b"'))
    assert message.viewer_ids == ("x1",)
    assert "attachment_unreadable" in codes(message)


def test_business_cards_and_calendars_are_ignored() -> None:
    body = (
        "--b\nContent-Type: text/plain\n\nPlease erase.\nViewer ID: v-1\n"
        "--b\nContent-Type: text/vcard; name=alice.vcf\nContent-Disposition: attachment; filename=alice.vcf\n\nBEGIN:VCARD\n--b--\n"
    )
    message = parse_message(mail(body, content_type='multipart/mixed; boundary="b"'))
    assert message.viewer_ids == ("v-1",) and message.problems == ()


# ---------------------------------------------------------------- wording read in full, or not acted on


@pytest.mark.parametrize(("filler_chars", "too_long"), [
    (100_000, False),  # a long but ordinary message
    (127_000, False),  # just under the limit, with the subject and the request lines
    (140_000, True),
    (800_000, True),   # a negation at the very end must never be missed: the request goes to a person
])
def test_wording_longer_than_the_limit_sends_the_request_to_a_person(filler_chars: int, too_long: bool) -> None:
    from erasure.parse import MAX_WORDING_CHARS

    filler = ("Some ordinary sentence about the weather. " * (filler_chars // 42 + 1))[:filler_chars]
    body = "Please erase all data of\nViewer ID: v-1\n\n" + filler + "\n\nActually, do not delete anything.\n"
    parsed = parse_message(mail(body))
    assert ("text_too_long" in codes(parsed)) is too_long
    assert parsed.viewer_ids == ("v-1",)  # the ids are read either way, for the officer
    if not too_long:
        assert len(body) < MAX_WORDING_CHARS and "ambiguous_wording" in codes(parsed)  # the negation was read
