"""Delivery backends: hand a finished reply to SMTP, to a folder of .eml files, or to a stream.

The outbox (``notify.py``) decides *what* to send and *when*; a transport only
sends one message and says how it went, in a way the outbox can act on:

* a receipt string: accepted (for SMTP the server's reply, for files the path);
* ``DeliveryTemporaryError``: nothing is known to be lost, try again later with
  ``retry_delay`` (4xx, refused or dropped connection, timeout). When the
  connection drops *after* the message data was sent the server may already
  have it; the retry carries the same Message-ID, so the duplicate is
  recognisable and harmless;
* ``DeliveryUnavailableError`` (a ``DeliveryTemporaryError``): the server as a
  whole cannot be used right now (unreachable, TLS or login failed), so the
  outbox should stop this run instead of failing every queued message in turn;
* ``DeliveryPermanentError``: this message will never be accepted as it is
  (5xx, or it failed our own checks); park it and show the reason to the officer.

Every transport applies the same checks before anything leaves the process:
exactly one recipient, taken from ``To`` and nothing else; no header value
with a line break in it (header injection); the serialized header block has
exactly the headers the message object has.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import email.policy
import email.utils
import hashlib
import os
import re
import smtplib
import ssl
import tempfile
import unicodedata
from datetime import timedelta
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import NoReturn, Protocol, TextIO

from erasure.config import DeliverySettings, is_loopback_host, read_secret
from erasure.errors import (  # the Delivery*Error classes are re-exported: callers import them from here
    ConfigError,
    DeliveryError,
    DeliveryPermanentError,
    DeliveryTemporaryError,
    DeliveryUnavailableError,
)
from erasure.files import make_private_dirs

__all__ = [
    "CLAIM_LEASE",
    "ConsoleTransport",
    "DeliveryPermanentError",
    "DeliveryTemporaryError",
    "DeliveryUnavailableError",
    "DirectoryTransport",
    "Envelope",
    "RETRY_GIVE_UP_AFTER",
    "RETRY_SCHEDULE",
    "SmtpTransport",
    "Transport",
    "check_message",
    "claim_lease",
    "claim_token",
    "eml_file_name",
    "make_transport",
    "recipient_key",
    "retry_delay",
    "serialize",
]


class Transport(Protocol):
    """Where finished replies go; one instance is used for a whole outbox run."""

    def send(self, message: EmailMessage) -> str: ...

    def check(self) -> str:
        """Reach the destination without sending anything (`erasure check`); says what was checked."""
        ...

    def close(self) -> None: ...


# ---------------------------------------------------------------- retry policy

RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=4),
    timedelta(hours=12),
)
"""Waits after the 1st, 2nd, ... temporary failure; the last one repeats."""

RETRY_GIVE_UP_AFTER = timedelta(days=5)
"""RFC 5321 4.5.4.1 suggests giving up after 4-5 days; the outbox may park a message then."""


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after ``attempts`` failed attempts (1 = first failure).

    Starts short because most 4xx answers are greylisting or a busy relay, then
    backs off so that a long outage does not turn cron into a mail cannon.
    """
    index = min(max(attempts, 1), len(RETRY_SCHEDULE)) - 1
    return RETRY_SCHEDULE[index]


# ---------------------------------------------------------------- claims and counting

CLAIM_LEASE = timedelta(minutes=15)
"""How long a deliverer owns a reply it claimed. Far longer than one send can
take (an SMTP session times out after ``delivery.timeout_seconds`` per step),
so a live deliverer never loses its claim; a deliverer that died mid-send
leaves its reply claimed this long, then any run sends it (same Message-ID)."""


def claim_lease(settings: DeliverySettings) -> timedelta:
    """The lease for this configuration: CLAIM_LEASE, or longer when a slow server may keep one send busy longer.

    One SMTP send is at most about ten timed steps (connect, EHLO, STARTTLS,
    EHLO, AUTH, MAIL, RCPT, DATA, end of data), twice when a stale reused
    connection is replaced; 20 x ``timeout_seconds`` covers it.
    """
    return max(CLAIM_LEASE, timedelta(seconds=20 * settings.timeout_seconds))


def claim_token() -> str:
    """Who is delivering: host, process and a random part, unique per delivery run."""
    import secrets
    import socket

    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(6)}"[:100]


def recipient_key(address: str) -> str:
    """The form of an address that the per-recipient reply cap counts by.

    Pure, and deliberately coarser than delivery: two spellings that reach the
    same person must count as one, or a reply storm escapes the cap by case
    (``DPO@`` and ``dpo@``) or by tag (``dpo+1@``, ``dpo+2@``). So: Unicode
    NFKC; the domain case-folded, without a trailing dot, and IDNA A-labels
    (``xn--...``) read as the Unicode they stand for; the local part unquoted,
    case-folded (RFC 5321 lets servers tell cases apart; almost none do) and
    cut at the first ``+`` (sub-addressing). Never used to send: replies go to
    the address exactly as the requester wrote it.
    """
    text = unicodedata.normalize("NFKC", address).strip().strip("<>").strip()
    local, at, domain = text.rpartition("@")
    if not at:
        return text.casefold()[:320]
    if len(local) >= 2 and local[0] == local[-1] == '"':
        local = re.sub(r"\\(.)", r"\1", local[1:-1])
    if "+" in local[1:]:
        local = local[: local.index("+", 1)]
    labels = []
    for label in domain.rstrip(".").split("."):
        if label[:4].lower() == "xn--":
            try:
                label = label.lower().encode("ascii").decode("idna")  # upper case in punycode is a case hint
            except UnicodeError:
                pass  # not a valid A-label: count it as written
        labels.append(label)
    domain = unicodedata.normalize("NFKC", ".".join(labels)).casefold()
    return f"{local.casefold()}@{domain}"[:320]


# ---------------------------------------------------------------- message checks

# Everything str.splitlines() treats as a line break: the email package's own
# header check uses splitlines, and other mail software may split on any of them.
_LINE_BREAKS = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
# A legitimate fold (line break followed by white space) in a parsed header.
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # printable ASCII except ':' (RFC 5322 ftext)
_FORBIDDEN_RECIPIENT_HEADERS = ("cc", "bcc", "resent-to", "resent-cc", "resent-bcc")
_SINGLE_HEADERS = ("from", "to", "subject", "message-id", "date")


@dataclasses.dataclass(frozen=True)
class Envelope:
    """Who the message goes to on the wire, derived from the message alone."""

    recipient: str
    message_id: str | None


def check_message(message: Message) -> Envelope:
    """Refuse anything that could send a reply somewhere other than its one ``To`` address.

    A reply's subject and body quote what a stranger wrote; if a line break
    from that text reached a header, the stranger could add recipients. The
    message object may hide such a break (``EmailMessage.items()`` unfolds raw
    values), so the raw stored values are checked.
    """
    for part in message.walk():  # MIME part headers (e.g. an attachment's file name) too
        for name, value in part.raw_items():
            if not _HEADER_NAME.match(name):
                raise DeliveryPermanentError(f"header name {name!r} is not a valid header name; the reply was not sent")
            text = _FOLD.sub("", str(value))
            if _LINE_BREAKS.search(text):
                raise DeliveryPermanentError(
                    f"the {name} header contains a line break (possible header injection); "
                    "the reply was not sent: check the template and the requester's text it quotes"
                )
    for name in _SINGLE_HEADERS:
        values = message.get_all(name) or []
        if len(values) > 1:
            raise DeliveryPermanentError(f"the reply has {len(values)} {name.title()} headers; exactly one is allowed")
    for name in _FORBIDDEN_RECIPIENT_HEADERS:
        if message.get_all(name):
            raise DeliveryPermanentError(
                f"the reply has a {name.title()} header; replies go to exactly one address, named in To"
            )
    to_values = message.get_all("To") or []
    if not to_values:
        raise DeliveryPermanentError("the reply has no To header; there is nobody to send it to")
    addresses = [addr for _, addr in email.utils.getaddresses([str(v) for v in to_values])]
    if len(addresses) != 1:
        raise DeliveryPermanentError(f"the reply is addressed to {len(addresses)} recipients; exactly one is allowed")
    recipient = addresses[0]
    # EmailMessage headers carry their own (stricter) parse; two parsers that
    # disagree about who a message goes to is reason enough not to send it.
    parsed = [a.addr_spec for v in to_values for a in getattr(v, "addresses", ())]
    if hasattr(to_values[0], "addresses") and parsed != [recipient]:
        raise DeliveryPermanentError(f"the reply's To header {str(to_values[0])!r} is ambiguous; it was not sent")
    if not _plausible_address(recipient):
        raise DeliveryPermanentError(f"the reply's To address {recipient!r} is not a usable mail address")
    message_id = message.get("Message-ID")
    return Envelope(recipient=recipient, message_id=str(message_id).strip() if message_id else None)


def _plausible_address(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain) and not any(c.isspace() or c in "<>()," for c in address)


def serialize(message: Message, policy: email.policy.Policy = email.policy.SMTP) -> bytes:
    """The bytes that go on the wire, with a last check that serializing added no header.

    Older Python versions (before 3.11.10/3.12.5) could write a header value
    containing a line break verbatim; comparing header names before and after
    catches that and any similar surprise in the generator.
    """
    data = message.as_bytes(policy=policy)
    head = BytesHeaderParser(policy=email.policy.compat32).parsebytes(data)
    written = [name.lower() for name in head.keys()]
    expected = [name.lower() for name, _ in message.raw_items()]
    if written != expected:
        raise DeliveryPermanentError(
            "serializing the reply produced headers that the message does not have "
            f"({', '.join(sorted(set(written) - set(expected))) or 'reordered'}); the reply was not sent"
        )
    return data


# ---------------------------------------------------------------- SMTP

_DEFAULT_PORTS = {"tls": 465, "starttls": 587, "none": 25}


def _reply_text(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {' '.join(text.split())}".strip()


class SmtpTransport:
    """Send replies through an SMTP relay, reusing one connection for a whole run.

    TLS is never optional once configured: with ``security = "starttls"`` a
    server that does not offer STARTTLS is an error, not a reason to fall back
    to clear text, and the certificate is always verified (against
    ``ca_file`` when given, else the system store).
    """

    def __init__(self, settings: DeliverySettings, password: str | None) -> None:
        if settings.username and password is None:
            raise ConfigError(
                f"delivery.username is {settings.username!r} but no password was given; "
                "set delivery.password_env to the environment variable holding it"
            )
        if settings.username and settings.security == "none" and not is_loopback_host(settings.host):
            raise ConfigError(
                f"delivery.security = \"none\" would send the SMTP password to {settings.host} in clear text; "
                'use "tls" or "starttls"'
            )
        self._settings = settings
        self._password = password
        self._port = settings.port or _DEFAULT_PORTS[settings.security]
        # EHLO name: the sender's domain. smtplib's default, socket.getfqdn(),
        # does a reverse DNS lookup that can stall for seconds without DNS.
        self._ehlo_name = settings.from_address.rpartition("@")[2] or "localhost"
        self._context = self._tls_context() if settings.security != "none" else None
        self._smtp: smtplib.SMTP | None = None

    @property
    def _where(self) -> str:
        return f"SMTP server {self._settings.host}:{self._port}"

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection

    def check(self) -> str:
        """`erasure check`: connect, greet (STARTTLS and login as configured), say NOOP and leave; sends nothing."""
        smtp = self._connect()
        try:
            smtp.noop()
        finally:
            _quietly_close(smtp)
        return f"{self._where} accepted the connection"

    def _tls_context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=self._settings.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"delivery.ca_file = {self._settings.ca_file!r} cannot be read as PEM certificates: {exc}") from exc

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        timeout = s.timeout_seconds or None
        smtp: smtplib.SMTP | None = None
        try:
            if s.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    s.host, self._port, local_hostname=self._ehlo_name, timeout=timeout, context=self._context
                )
            else:
                smtp = smtplib.SMTP(s.host, self._port, local_hostname=self._ehlo_name, timeout=timeout)
            smtp.ehlo()
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise DeliveryUnavailableError(
                        f"{self._where} does not offer STARTTLS; refusing to send in clear text "
                        '(set delivery.security = "tls" if it expects TLS from the start)'
                    )
                smtp.starttls(context=self._context)
                smtp.ehlo()
            if s.username:
                self._login(smtp)
        except ssl.SSLCertVerificationError as exc:
            _quietly_close(smtp)
            raise DeliveryUnavailableError(
                f"{self._where}: certificate not trusted ({exc.verify_message}); "
                "set delivery.ca_file to the CA that signed it, or fix the host name"
            ) from exc
        except smtplib.SMTPAuthenticationError as exc:
            _quietly_close(smtp)
            raise DeliveryUnavailableError(
                f"{self._where} refused the login for {s.username!r} ({_reply_text(exc.smtp_code, exc.smtp_error)}); "
                f"check delivery.username and the password in ${s.password_env}"
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            _quietly_close(smtp)
            raise DeliveryUnavailableError(f"{self._where}: {exc}; check delivery.security and delivery.username") from exc
        except smtplib.SMTPResponseException as exc:
            _quietly_close(smtp)
            raise DeliveryUnavailableError(
                f"{self._where} refused the session ({_reply_text(exc.smtp_code, exc.smtp_error)}); will retry later"
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:  # refused, reset, timeout, TLS handshake, early disconnect
            _quietly_close(smtp)
            raise DeliveryUnavailableError(f"cannot reach {self._where}: {exc or type(exc).__name__}; will retry later") from exc
        except DeliveryError:
            _quietly_close(smtp)
            raise
        return smtp

    def _login(self, smtp: smtplib.SMTP) -> None:
        user, password = self._settings.username, self._password or ""
        if (user + password).isascii() or not smtp.has_extn("auth"):
            smtp.login(user, password)
            return
        # smtplib encodes credentials as ASCII (UnicodeEncodeError otherwise);
        # RFC 4616 PLAIN is UTF-8, so send it ourselves.
        if "PLAIN" not in smtp.esmtp_features.get("auth", "").upper().split():
            raise smtplib.SMTPNotSupportedError("the password is not ASCII and the server does not offer AUTH PLAIN")
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode("ascii")
        code, resp = smtp.docmd("AUTH", "PLAIN " + token)
        if code != 235:
            raise smtplib.SMTPAuthenticationError(code, resp)

    # -- sending

    def send(self, message: EmailMessage) -> str:
        """Send one reply; a receipt like "250 2.0.0 OK queued as X" on success."""
        envelope = check_message(message)
        if envelope.message_id is None:
            raise DeliveryPermanentError(
                "the reply has no Message-ID; a retried reply must carry the same id so duplicates can be recognised"
            )
        needs_utf8 = not (self._settings.from_address + envelope.recipient).isascii()
        data = serialize(message, email.policy.SMTPUTF8 if needs_utf8 else email.policy.SMTP)

        reused = self._smtp is not None
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            return self._transaction(self._smtp, envelope, data, needs_utf8)
        except _StaleConnection as stale:
            # The server closed the session before we sent anything (typically an
            # idle reused connection): nothing was delivered, so one fresh
            # attempt now is safe.
            self._drop_connection()
            if not reused:
                raise DeliveryUnavailableError(f"{self._where} {stale}; will retry later") from None
        self._smtp = self._connect()
        try:
            return self._transaction(self._smtp, envelope, data, needs_utf8)
        except _StaleConnection as stale:
            self._drop_connection()
            raise DeliveryUnavailableError(f"{self._where} {stale}; will retry later") from None

    def _transaction(self, smtp: smtplib.SMTP, envelope: Envelope, data: bytes, needs_utf8: bool) -> str:
        sender = self._settings.from_address
        options: list[str] = []
        if smtp.has_extn("size"):
            options.append(f"SIZE={len(data)}")
        if any(b > 127 for b in data) and smtp.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        if needs_utf8:
            if not smtp.has_extn("smtputf8"):
                raise DeliveryPermanentError(
                    f"{envelope.recipient!r} or {sender!r} is not plain ASCII and {self._where} does not support SMTPUTF8"
                )
            options.append("SMTPUTF8")

        phase = "MAIL FROM"
        try:
            code, resp = smtp.mail(sender, options)
            if code == 421:
                raise _StaleConnection(f"is closing the session ({_reply_text(code, resp)})")
            if code != 250:
                self._reject(smtp, code, resp, phase)
            phase = "RCPT TO"
            code, resp = smtp.rcpt(envelope.recipient)
            if code not in (250, 251):
                self._reject(smtp, code, resp, phase)
            phase = "DATA"
            code, resp = smtp.data(data)
            if code != 250:
                self._reject(smtp, code, resp, phase, after_data=True)
            return _reply_text(code, resp)
        except (smtplib.SMTPServerDisconnected, ConnectionError) as exc:
            if phase == "MAIL FROM":
                raise _StaleConnection("closed the connection before MAIL FROM") from exc
            self._drop_connection()
            raise DeliveryTemporaryError(
                f"{self._where} dropped the connection during {phase}"
                + ("; it may have accepted the reply already (the retry carries the same Message-ID)" if phase == "DATA" else "")
            ) from exc
        except OSError as exc:  # timeout, reset
            self._drop_connection()
            raise DeliveryTemporaryError(f"{self._where}: {exc or type(exc).__name__} during {phase}; will retry later") from exc
        except smtplib.SMTPResponseException as exc:  # e.g. smtplib's own check of the DATA 354
            self._reject(smtp, exc.smtp_code, exc.smtp_error, phase)

    def _reject(self, smtp: smtplib.SMTP, code: int, resp: bytes | str, phase: str, *, after_data: bool = False) -> NoReturn:
        reply = _reply_text(code, resp)
        if code == 421 or code == -1:  # the server is closing the session (or sent nothing usable)
            self._drop_connection()
            raise DeliveryUnavailableError(f"{self._where} is closing the session at {phase} ({reply}); will retry later")
        if not after_data:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.rset()  # keep the connection usable for the next reply
        if code == 530 or (phase == "MAIL FROM" and code >= 500 and code != 552):
            # Authentication/TLS required, or our sender refused: every reply
            # would meet the same answer, so none of them should be parked.
            raise DeliveryUnavailableError(
                f"{self._where} refuses mail from this session at {phase} ({reply}); "
                "check delivery.from_address, delivery.security and delivery.username"
            )
        if 400 <= code < 500:
            raise DeliveryTemporaryError(f"{self._where} answered {reply} at {phase}; will retry later")
        raise DeliveryPermanentError(f"{self._where} refused the reply at {phase}: {reply}")

    def _drop_connection(self) -> None:
        smtp, self._smtp = self._smtp, None
        _quietly_close(smtp, quit=False)

    def close(self) -> None:
        """Say QUIT politely; never raises (a failed goodbye loses nothing)."""
        smtp, self._smtp = self._smtp, None
        _quietly_close(smtp)


class _StaleConnection(Exception):
    """A reused connection was found closed before anything was sent."""


def _quietly_close(smtp: smtplib.SMTP | None, *, quit: bool = True) -> None:
    if smtp is None:
        return
    if quit:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()
    with contextlib.suppress(OSError):
        smtp.close()


# ---------------------------------------------------------------- directory

_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._@+=-]")


def eml_file_name(message_id: str) -> str:
    """A safe, stable file name for a Message-ID.

    Ids that are already safe map to themselves (easy to find by eye); any id
    that had to be changed gets a short hash so two different ids never share
    a file.
    """
    bare = message_id.strip().strip("<>")
    safe = _UNSAFE_FILE_CHARS.sub("_", bare).lstrip(".")[:180] or "message"
    if safe != bare:
        safe += "-" + hashlib.sha256(message_id.strip().encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return safe + ".eml"


class DirectoryTransport:
    """Write each reply to ``<message-id>.eml`` (demo, testing, or a hand-off to another mailer).

    Written atomically (temporary file, then rename), so a reader never sees a
    half-written reply, and named by Message-ID, so delivering the same reply
    twice leaves one file.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def send(self, message: EmailMessage) -> str:
        envelope = check_message(message)
        if envelope.message_id is None:
            raise DeliveryPermanentError("the reply has no Message-ID, which names its .eml file")
        data = serialize(message)
        target = self.directory / eml_file_name(envelope.message_id)
        tmp_name: str | None = None
        try:
            make_private_dirs(self.directory)
            # mkstemp creates 0600 whatever the umask: replies name the requester and the request.
            fd, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".eml")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, target)
            tmp_name = None
            _fsync_directory(self.directory)
        except OSError as exc:
            raise DeliveryUnavailableError(
                f"cannot write replies to {self.directory}: {exc.strerror or exc}; "
                "check that delivery.directory exists and is writable"
            ) from exc
        finally:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)
        return str(target)

    def check(self) -> str:
        """`erasure check`: the folder exists and this process may write there; writes nothing."""
        existing = self.directory
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent  # made on the first reply, under the nearest folder that exists
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise DeliveryUnavailableError(
                f"cannot write replies to {self.directory}: {existing} is not a writable folder; "
                "correct delivery.directory or its permissions"
            )
        return f"replies are written to {self.directory}" + ("" if existing == self.directory else " (made on the first reply)")

    def close(self) -> None:
        """Nothing to release."""


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------- console

# C0/C1 controls except tab and newline: requester text must not drive the officer's terminal.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class ConsoleTransport:
    """Print each reply, readable, to a stream (trying things out; never for production)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.count = 0

    def send(self, message: EmailMessage) -> str:
        envelope = check_message(message)
        serialize(message)  # same checks as the real transports
        lines = [f"----- reply {self.count + 1} -----"]
        for name in ("From", "To", "Subject", "Date", "Message-ID", "In-Reply-To"):
            if message.get(name) is not None:
                lines.append(f"{name}: {message[name]}")
        lines.append("")
        body = message.get_body(("plain",)) if isinstance(message, EmailMessage) else None
        lines.append(body.get_content().rstrip("\n") if body is not None else "(no text/plain part)")
        text = _CONTROL.sub("\N{REPLACEMENT CHARACTER}", "\n".join(lines).replace("\r\n", "\n"))
        self.stream.write(text + "\n")
        self.stream.flush()
        self.count += 1
        return f"printed (to {envelope.recipient})"

    def check(self) -> str:
        """`erasure check`: nothing to connect to."""
        return "replies are printed to the console"

    def close(self) -> None:
        """The stream belongs to the caller; leave it open."""


# ---------------------------------------------------------------- factory


def make_transport(settings: DeliverySettings, *, base_dir: Path, stream: TextIO) -> Transport:
    """The transport ``[delivery]`` asks for, with relative paths resolved against ``base_dir``.

    The SMTP password is read here, from the variable ``delivery.password_env``
    names, so a missing secret is a clear ConfigError before any mail is touched.
    """
    def resolve(value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else Path(base_dir) / p

    if settings.kind == "smtp":
        password = read_secret(settings.password_env, "delivery.password_env") if settings.username else None
        if settings.ca_file:
            settings = dataclasses.replace(settings, ca_file=str(resolve(settings.ca_file)))
        return SmtpTransport(settings, password)
    if settings.kind == "directory":
        return DirectoryTransport(resolve(settings.directory))
    if settings.kind == "console":
        return ConsoleTransport(stream)
    raise ConfigError(f'delivery.kind = {settings.kind!r} is not one of "smtp", "directory", "console"')
