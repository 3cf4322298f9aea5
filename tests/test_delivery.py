"""Delivery backends against a real SMTP server (aiosmtpd), a real folder and a real stream.

What matters: a reply reaches exactly its one recipient, never anyone a
requester's text names; a refused reply is parked with the server's reason; a
reply that may or may not have arrived is retried with the same Message-ID.
"""

from __future__ import annotations

import email.policy
import email.utils
import io
import socket
import threading
from datetime import timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from erasure.config import DeliverySettings
from erasure.delivery import (
    ConsoleTransport,
    DeliveryPermanentError,
    DeliveryTemporaryError,
    DeliveryUnavailableError,
    DirectoryTransport,
    SmtpTransport,
    eml_file_name,
    make_transport,
    retry_delay,
)
from erasure.errors import ConfigError, DeliveryError, TemporaryError
from tests.services import free_port
from tests.smtp_server import SmtpTestServer

TO = "alice@customer.example"
FROM = "privacy@erasure.test"


def reply(
    *,
    to: str = TO,
    subject: str = "Your erasure request ER-2026-000042",
    message_id: str | None = "<ER-2026-000042.ack@erasure.test>",
    body: str = "We received your request ER-2026-000042.\n",
) -> EmailMessage:
    """A reply shaped like the ones notify.py builds."""
    message = EmailMessage()
    message["From"] = f"Privacy Desk <{FROM}>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = email.utils.format_datetime(email.utils.localtime())
    if message_id:
        message["Message-ID"] = message_id
    message["In-Reply-To"] = "<request-1@customer.example>"
    message["Auto-Submitted"] = "auto-replied"
    message.set_content(body)
    message.add_alternative(f"<html><body><p>{body}</p></body></html>", subtype="html")
    return message


def smtp_transport(server: SmtpTestServer, **overrides: object) -> SmtpTransport:
    return SmtpTransport(server.settings(**overrides), server.password)


def inject_raw_subject(message: EmailMessage, raw: str) -> EmailMessage:
    """Store a Subject the way a buggy builder could: bypassing EmailMessage's own check."""
    del message["Subject"]
    message.set_raw("Subject", raw)
    return message


# ---------------------------------------------------------------- SMTP: the happy path


def test_every_server_variant_receives_the_reply_for_exactly_its_to_address(any_smtp_server: SmtpTestServer) -> None:
    with smtp_transport(any_smtp_server) as transport:
        receipt = transport.send(reply())

    assert receipt.startswith("250 ")
    [got] = any_smtp_server.received
    assert got.rcpt_tos == [TO]
    assert got.mail_from == FROM
    assert got.tls is (any_smtp_server.security != "none")
    assert got.login == (any_smtp_server.username or None)
    assert got.message_id == "<ER-2026-000042.ack@erasure.test>"
    assert got.message["Subject"] == "Your erasure request ER-2026-000042"
    assert got.message.get_body(("plain",)).get_content() == "We received your request ER-2026-000042.\n"


def test_one_connection_carries_many_replies(smtp_server_auth: SmtpTestServer) -> None:
    with smtp_transport(smtp_server_auth) as transport:
        for n in range(3):
            transport.send(reply(message_id=f"<n{n}@erasure.test>"))

    peers = {m.peer for m in smtp_server_auth.received}
    assert len(smtp_server_auth.received) == 3
    assert len(peers) == 1


def test_reconnects_when_the_relay_closed_a_reused_connection(smtp_server_starttls: SmtpTestServer) -> None:
    with smtp_transport(smtp_server_starttls) as transport:
        transport.send(reply(message_id="<first@erasure.test>"))
        smtp_server_starttls.handler.drop_next(at="MAIL")
        receipt = transport.send(reply(message_id="<second@erasure.test>"))

    assert receipt.startswith("250 ")
    first, second = smtp_server_starttls.received
    assert second.message_id == "<second@erasure.test>"
    assert first.peer != second.peer


def test_reconnects_when_the_relay_says_421_on_a_reused_connection(smtp_server: SmtpTestServer) -> None:
    with smtp_transport(smtp_server) as transport:
        transport.send(reply(message_id="<first@erasure.test>"))
        smtp_server.handler.answer_next("421 4.4.2 idle timeout", at="MAIL")
        transport.send(reply(message_id="<second@erasure.test>"))

    assert smtp_server.handler.message_ids == ["<first@erasure.test>", "<second@erasure.test>"]


def test_eight_bit_body_is_announced_and_arrives_intact(smtp_server: SmtpTestServer) -> None:
    text = "Ihre Anfrage wurde gelöscht — «ER-2026-000042» ✓\n"
    message = reply(body=text)
    message.get_body(("plain",)).set_content(text, cte="8bit")

    with smtp_transport(smtp_server) as transport:
        transport.send(message)

    [got] = smtp_server.received
    assert "BODY=8BITMIME" in got.mail_options
    assert got.message.get_body(("plain",)).get_content() == text


def test_non_ascii_recipient_uses_smtputf8(smtp_server: SmtpTestServer) -> None:
    with smtp_transport(smtp_server) as transport:
        transport.send(reply(to="jörg@kunde.example"))

    [got] = smtp_server.received
    assert got.rcpt_tos == ["jörg@kunde.example"]
    assert "SMTPUTF8" in got.mail_options


# ---------------------------------------------------------------- SMTP: failures


def test_4xx_is_temporary_and_the_retry_succeeds(smtp_server: SmtpTestServer) -> None:
    smtp_server.handler.answer_next("451 4.7.1 greylisted, try again later")
    message = reply()
    with smtp_transport(smtp_server) as transport:
        with pytest.raises(DeliveryTemporaryError, match="451 4.7.1 greylisted") as failure:
            transport.send(message)
        assert not isinstance(failure.value, DeliveryUnavailableError)  # this message only: go on with others
        assert smtp_server.received == []

        receipt = transport.send(message)

    assert receipt.startswith("250 ")
    assert smtp_server.handler.message_ids == ["<ER-2026-000042.ack@erasure.test>"]


def test_4xx_at_rcpt_is_temporary_and_the_connection_stays_usable(smtp_server: SmtpTestServer) -> None:
    smtp_server.handler.answer_next("452 4.2.2 mailbox full", at="RCPT")
    with smtp_transport(smtp_server) as transport:
        with pytest.raises(DeliveryTemporaryError, match="452 4.2.2 mailbox full at RCPT TO"):
            transport.send(reply(message_id="<a@erasure.test>"))
        transport.send(reply(message_id="<b@erasure.test>"))

    assert smtp_server.handler.message_ids == ["<b@erasure.test>"]


@pytest.mark.parametrize("phase", ["RCPT", "DATA"])
def test_5xx_is_permanent_and_carries_the_servers_reason(smtp_server: SmtpTestServer, phase: str) -> None:
    smtp_server.handler.answer_next("550 5.1.1 <alice@customer.example>: mailbox unavailable", at=phase)
    with smtp_transport(smtp_server) as transport:
        with pytest.raises(DeliveryPermanentError) as failure:
            transport.send(reply(message_id="<refused@erasure.test>"))
        transport.send(reply(message_id="<next@erasure.test>"))  # the next reply is not held up

    assert "550 5.1.1 <alice@customer.example>: mailbox unavailable" in str(failure.value)
    assert not isinstance(failure.value, TemporaryError)
    assert smtp_server.handler.message_ids == ["<next@erasure.test>"]


def test_5xx_for_the_sender_stops_the_run_instead_of_parking_every_reply(smtp_server: SmtpTestServer) -> None:
    smtp_server.handler.answer_next("553 5.7.1 <privacy@erasure.test>: sender address not owned by user", at="MAIL")
    with smtp_transport(smtp_server) as transport:
        with pytest.raises(DeliveryUnavailableError, match="553 5.7.1.*delivery.from_address"):
            transport.send(reply())
    assert smtp_server.received == []


def test_a_message_too_big_for_the_relay_is_parked(smtp_server: SmtpTestServer) -> None:
    smtp_server.handler.answer_next("552 5.3.4 message size exceeds fixed limit", at="MAIL")
    with smtp_transport(smtp_server) as transport:
        with pytest.raises(DeliveryPermanentError, match="552 5.3.4"):
            transport.send(reply())


def test_a_relay_that_requires_starttls_is_not_answered_by_parking(smtp_server_starttls: SmtpTestServer) -> None:
    with smtp_transport(smtp_server_starttls, security="none") as transport:
        with pytest.raises(DeliveryUnavailableError, match="530"):
            transport.send(reply())
    assert smtp_server_starttls.received == []


def test_an_unreadable_ca_file_is_a_config_error_before_any_mail(smtp_server_tls: SmtpTestServer, tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(ConfigError, match="delivery.ca_file"):
        smtp_transport(smtp_server_tls, ca_file=str(bogus))


def test_connection_dropped_after_data_is_retried_with_the_same_message_id(smtp_server_tls: SmtpTestServer) -> None:
    smtp_server_tls.handler.drop_next()
    message = reply()
    with smtp_transport(smtp_server_tls) as transport:
        with pytest.raises(DeliveryTemporaryError, match="may have accepted"):
            transport.send(message)
        receipt = transport.send(message)  # reconnects by itself

    assert receipt.startswith("250 ")
    first, retry = smtp_server_tls.received
    assert first.dropped and not retry.dropped
    assert first.message_id == retry.message_id == "<ER-2026-000042.ack@erasure.test>"
    assert first.data == retry.data


def test_connection_refused_is_temporary(tmp_path: Path) -> None:
    settings = DeliverySettings(kind="smtp", host="127.0.0.1", port=free_port(), security="none", timeout_seconds=5)
    with SmtpTransport(settings, None) as transport:
        with pytest.raises(DeliveryUnavailableError, match="cannot reach SMTP server 127.0.0.1") as failure:
            transport.send(reply())
    assert isinstance(failure.value, TemporaryError)


def test_a_server_that_never_greets_times_out(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_stay_silent() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_and_stay_silent, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        settings = DeliverySettings(kind="smtp", host="127.0.0.1", port=port, security="none", timeout_seconds=1)
        with pytest.raises(DeliveryUnavailableError, match="timed out"):
            SmtpTransport(settings, None).send(reply())
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def test_starttls_never_falls_back_to_clear_text(smtp_server: SmtpTestServer) -> None:
    with smtp_transport(smtp_server, security="starttls") as transport:
        with pytest.raises(DeliveryUnavailableError, match="does not offer STARTTLS"):
            transport.send(reply())
    assert smtp_server.received == []


def test_an_untrusted_certificate_is_refused(smtp_server_tls: SmtpTestServer) -> None:
    with smtp_transport(smtp_server_tls, ca_file=None) as transport:
        with pytest.raises(DeliveryUnavailableError, match="certificate not trusted.*delivery.ca_file"):
            transport.send(reply())
    assert smtp_server_tls.received == []


def test_a_wrong_password_stops_the_run_and_is_not_echoed(smtp_server_auth: SmtpTestServer) -> None:
    with SmtpTransport(smtp_server_auth.settings(password_env="SMTP_PW"), "wrong-horse") as transport:
        with pytest.raises(DeliveryUnavailableError, match="refused the login for 'relay-user'.*SMTP_PW") as failure:
            transport.send(reply())
    assert "wrong-horse" not in str(failure.value)
    assert smtp_server_auth.received == []


def test_a_password_is_never_sent_in_clear_to_a_remote_host() -> None:
    settings = DeliverySettings(kind="smtp", host="smtp.example.net", security="none", username="u")
    with pytest.raises(ConfigError, match='security = "none" would send the SMTP password'):
        SmtpTransport(settings, "pw")


def test_close_is_idempotent_and_quiet_after_the_server_went_away(smtp_server: SmtpTestServer) -> None:
    transport = smtp_transport(smtp_server)
    transport.send(reply())
    smtp_server.stop()
    transport.close()
    transport.close()
    assert len(smtp_server.received) == 1


# ---------------------------------------------------------------- header injection

HOSTILE_BUT_SINGLE_LINE_SUBJECTS = [
    "Re: erase me Bcc: evil@attacker.example",
    "Re: %0d%0aBcc: evil@attacker.example",
    "Re: Ünïcødé Cc: evil@attacker.example " + "To: evil@attacker.example " * 12,
    "Re: " + "x" * 300 + " Bcc: evil@attacker.example",
]


@pytest.mark.parametrize("subject", HOSTILE_BUT_SINGLE_LINE_SUBJECTS)
def test_hostile_subjects_yield_one_subject_and_one_recipient(smtp_server: SmtpTestServer, subject: str) -> None:
    with smtp_transport(smtp_server) as transport:
        transport.send(reply(subject=subject))

    [got] = smtp_server.received
    received = got.message
    assert got.rcpt_tos == [TO]
    assert len(received.get_all("Subject")) == 1
    assert received["Subject"] == subject
    assert received.get_all("Bcc") is None and received.get_all("Cc") is None
    assert len(received.get_all("To")) == 1 and received["To"].addresses[0].addr_spec == TO


@pytest.mark.parametrize(
    "raw_subject",
    [
        "Re: erase me\r\nBcc: evil@attacker.example",
        "Re: erase me\nBcc: evil@attacker.example",
        "Re: erase me\rBcc: evil@attacker.example",
        "Re: erase me\u2028Bcc: evil@attacker.example",
        "Re: erase me\x85Bcc: evil@attacker.example",
    ],
)
def test_a_line_break_in_a_header_value_is_refused_before_anything_is_sent(
    smtp_server: SmtpTestServer, tmp_path: Path, raw_subject: str
) -> None:
    stream = io.StringIO()
    transports = [smtp_transport(smtp_server), DirectoryTransport(tmp_path / "out"), ConsoleTransport(stream)]
    for transport in transports:
        with pytest.raises(DeliveryPermanentError, match="Subject header contains a line break"):
            transport.send(inject_raw_subject(reply(), raw_subject))
        transport.close()

    assert smtp_server.received == []
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert stream.getvalue() == ""


def test_an_encoded_word_hiding_a_line_break_is_refused(smtp_server: SmtpTestServer) -> None:
    # EmailMessage decodes RFC 2047 words in a value it is given: a requester's
    # subject quoted verbatim can smuggle CR LF in that way.
    with smtp_transport(smtp_server) as transport:
        with pytest.raises(DeliveryPermanentError, match="line break"):
            transport.send(reply(subject="Re: =?utf-8?q?x=0D=0ABcc:_evil@attacker.example?="))
    assert smtp_server.received == []


def test_a_line_break_in_a_mime_part_header_is_refused(smtp_server: SmtpTestServer) -> None:
    message = reply()
    message.add_attachment(b"id\n", maintype="text", subtype="csv", filename="ids.csv")
    attachment = list(message.iter_attachments())[0]
    attachment.set_raw("X-Note", "ok\r\nBcc: evil@attacker.example")
    with smtp_transport(smtp_server) as transport:
        with pytest.raises(DeliveryPermanentError, match="X-Note header contains a line break"):
            transport.send(message)
    assert smtp_server.received == []


def test_legitimately_folded_headers_are_not_mistaken_for_injection(smtp_server: SmtpTestServer) -> None:
    raw = b"From: privacy@erasure.test\r\nTo: alice@customer.example\r\nSubject: a long\r\n folded subject\r\nMessage-ID: <f@erasure.test>\r\n\r\nbody\r\n"
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    with smtp_transport(smtp_server) as transport:
        transport.send(message)
    assert smtp_server.received[0].message["Subject"] == "a long folded subject"


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("To", "alice@customer.example, evil@attacker.example", "2 recipients"),
        ("Cc", "evil@attacker.example", "Cc header"),
        ("Bcc", "evil@attacker.example", "Bcc header"),
        ("Resent-To", "evil@attacker.example", "Resent-To header"),
    ],
)
def test_replies_go_to_exactly_one_address(smtp_server: SmtpTestServer, header: str, value: str, reason: str) -> None:
    message = reply()
    del message[header]
    message[header] = value
    with smtp_transport(smtp_server) as transport:
        with pytest.raises(DeliveryPermanentError, match=reason):
            transport.send(message)
    assert smtp_server.received == []


def test_reply_to_never_becomes_a_recipient(smtp_server: SmtpTestServer) -> None:
    message = reply()
    message["Reply-To"] = "evil@attacker.example"
    with smtp_transport(smtp_server) as transport:
        transport.send(message)
    assert smtp_server.received[0].rcpt_tos == [TO]


def test_a_reply_without_message_id_is_refused(smtp_server: SmtpTestServer, tmp_path: Path) -> None:
    for transport in (smtp_transport(smtp_server), DirectoryTransport(tmp_path)):
        with pytest.raises(DeliveryPermanentError, match="no Message-ID"):
            transport.send(reply(message_id=None))
    assert smtp_server.received == []


# ---------------------------------------------------------------- directory


def test_directory_writes_one_eml_per_message_id(tmp_path: Path) -> None:
    transport = DirectoryTransport(tmp_path / "outbox")
    path = Path(transport.send(reply()))
    again = Path(transport.send(reply(body="same reply, sent again after a crash\n")))

    assert path == again == tmp_path / "outbox" / "ER-2026-000042.ack@erasure.test.eml"
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == [path.name]  # no temp files left
    written = BytesParser(policy=email.policy.default).parsebytes(path.read_bytes().replace(b"\r\n", b"\n"))
    assert written["To"] == TO
    assert written.get_body(("plain",)).get_content() == "same reply, sent again after a crash\n"


def test_directory_file_names_are_safe_and_distinct(tmp_path: Path) -> None:
    transport = DirectoryTransport(tmp_path)
    paths = [Path(transport.send(reply(message_id=mid))) for mid in ("<../../etc/x@h>", "<.._.._etc_x@h>", "<a b@h>")]

    assert len(set(paths)) == 3
    assert all(p.parent == tmp_path and p.exists() for p in paths)
    assert eml_file_name("<plain.id@host>") == "plain.id@host.eml"
    assert "/" not in eml_file_name("<../../etc/x@h>")


def test_directory_that_cannot_be_written_is_a_temporary_error(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(DeliveryUnavailableError, match="delivery.directory"):
        DirectoryTransport(blocker).send(reply())


# ---------------------------------------------------------------- console


def test_console_prints_a_readable_reply_without_terminal_controls() -> None:
    stream = io.StringIO()
    transport = ConsoleTransport(stream)
    receipt = transport.send(reply(subject="Re: \x1b[2J\x1b]0;pwned\x07 hello", body="Line one\nLine \x1b[31mtwo\n"))

    out = stream.getvalue()
    assert receipt == f"printed (to {TO})"
    assert f"To: {TO}" in out
    assert "Line one\nLine" in out
    assert "\x1b" not in out and "\x07" not in out
    assert "hello" in out


# ---------------------------------------------------------------- factory and retry policy


def test_make_transport_reads_the_password_from_the_named_variable(
    smtp_server_auth: SmtpTestServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ERASURE_TEST_SMTP_PW", smtp_server_auth.password or "")
    settings = smtp_server_auth.settings(password_env="ERASURE_TEST_SMTP_PW")
    transport = make_transport(settings, base_dir=tmp_path, stream=io.StringIO())
    try:
        transport.send(reply())
    finally:
        transport.close()
    assert smtp_server_auth.received[0].login == "relay-user"


def test_make_transport_names_a_missing_password_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ERASURE_TEST_UNSET_PW", raising=False)
    settings = DeliverySettings(kind="smtp", username="u", password_env="ERASURE_TEST_UNSET_PW")
    with pytest.raises(ConfigError, match="delivery.password_env names ERASURE_TEST_UNSET_PW, which is not set"):
        make_transport(settings, base_dir=tmp_path, stream=io.StringIO())


def test_make_transport_resolves_directory_against_the_config_folder(tmp_path: Path) -> None:
    transport = make_transport(DeliverySettings(kind="directory", directory="replies"), base_dir=tmp_path, stream=io.StringIO())
    assert Path(transport.send(reply())).parent == tmp_path / "replies"
    console = make_transport(DeliverySettings(kind="console"), base_dir=tmp_path, stream=io.StringIO())
    assert isinstance(console, ConsoleTransport)


def test_retry_delay_backs_off_and_is_capped() -> None:
    delays = [retry_delay(n) for n in range(1, 9)]
    assert delays[0] == timedelta(minutes=5)
    assert delays == sorted(delays)
    assert delays[-1] == delays[-2] == timedelta(hours=12)
    assert retry_delay(0) == retry_delay(1)
    assert retry_delay(10_000) == timedelta(hours=12)


def test_delivery_errors_share_the_library_base() -> None:
    assert issubclass(DeliveryTemporaryError, DeliveryError)
    assert issubclass(DeliveryPermanentError, DeliveryError)
    assert issubclass(DeliveryUnavailableError, TemporaryError)


@pytest.mark.parametrize(
    "to",
    ['"Doe, Alice" <alice@customer.example>', "Alice Doe <alice@customer.example>", "Jörg Müller <alice@customer.example>"],
)
def test_display_names_do_not_change_the_one_recipient(smtp_server: SmtpTestServer, to: str) -> None:
    with smtp_transport(smtp_server) as transport:
        transport.send(reply(to=to))
    [got] = smtp_server.received
    assert got.rcpt_tos == [TO]
    assert got.message["To"].addresses[0].addr_spec == TO


def test_a_reply_stored_as_bytes_and_parsed_back_is_sent_byte_for_byte(smtp_server: SmtpTestServer, tmp_path: Path) -> None:
    # The outbox stores the rendered bytes and parses them again for each
    # attempt; folded headers must pass the checks and the wire must carry
    # exactly what was stored.
    built = reply(
        to="Jörg Müller <alice@customer.example>",
        subject="Erasure request ER-2026-000042: we need more time (new date 28 February 2027) Ünïcødé",
        body="Hallo Jörg,\n.leading dot line\n",
    )
    built["References"] = " ".join(f"<ref{i}@a-rather-long-domain-name.example>" for i in range(6))
    stored = built.as_bytes(policy=email.policy.SMTP)
    assert b"\r\n " in stored  # really folded
    parsed = BytesParser(policy=email.policy.SMTP).parsebytes(stored)

    with smtp_transport(smtp_server) as transport:
        transport.send(parsed)
    eml = Path(DirectoryTransport(tmp_path).send(parsed))

    assert smtp_server.received[0].data == stored
    assert eml.read_bytes() == stored
