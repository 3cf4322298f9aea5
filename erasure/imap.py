"""The privacy mailbox over IMAP: list what is waiting, fetch it, file it away.

Messages are never deleted by this module and never marked read while being
fetched (``BODY.PEEK[]``): a message leaves the intake folder only by being
moved to the processed or review folder, after the workflow has recorded it.
Everything is addressed by UID *and* UIDVALIDITY, so a folder that was
recreated on the server can never make us move a message we did not read.

Every network failure becomes a ``MailboxUnavailableError`` (cron exit 75: try
again later); refusals that a retry will not fix (bad password, missing folder,
untrusted certificate) become a ``MailboxError`` that says what to change.
"""

from __future__ import annotations

import logging
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self, TypeVar
from urllib.parse import quote

from imapclient import IMAPClient
from imapclient.exceptions import (
    CapabilityError,
    IMAPClientAbortError,
    IMAPClientError,
    LoginError,
)

from erasure.config import MailboxSettings, is_loopback_host
from erasure.errors import (
    ConfigError,
    MailboxError,
    MailboxLoginError,
    MailboxUnavailableError,
)
from erasure.mailbox import Destination, IncomingMessage, MessageRef

log = logging.getLogger(__name__)

# ------------------------------------------------------------- pure helpers

T = TypeVar("T")

#: UIDs per metadata FETCH in ``pending()``: keeps command lines far below
#: server limits (Dovecot: 64 KiB) while listing thousands of messages quickly.
METADATA_BATCH = 1000


#: An empty IDLE check returning this long before its deadline did not time out.
IDLE_EARLY_RETURN_SECONDS = 0.05


@dataclass(frozen=True)
class ServerFeatures:
    """What the server can do, decided once from its CAPABILITY list.

    Kept in one place so every code path asks the same question the same way.
    """

    move: bool
    uidplus: bool
    idle: bool
    starttls: bool  # advertised before login only; after login servers drop it

    @classmethod
    def from_capabilities(cls, capabilities: Iterable[bytes | str]) -> ServerFeatures:
        caps = {(c.decode("ascii", "replace") if isinstance(c, bytes) else c).upper() for c in capabilities}
        return cls(move="MOVE" in caps, uidplus="UIDPLUS" in caps, idle="IDLE" in caps, starttls="STARTTLS" in caps)


def message_key(folder: str, uidvalidity: int, uid: int) -> str:
    """The state database's key for one message; UIDVALIDITY makes reused UIDs distinct."""
    return f"imap:{folder}:{uidvalidity}:{uid}"


def source_name(settings: MailboxSettings) -> str:
    """How this mailbox is named in logs and reports (never includes the password)."""
    return f"imap://{quote(settings.username, safe='')}@{settings.host}:{effective_port(settings)}/{settings.folder}"


def effective_port(settings: MailboxSettings) -> int:
    if settings.port:
        return settings.port
    return 993 if settings.security == "tls" else 143


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    size = max(1, size)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def to_utc(value: datetime | None) -> datetime | None:
    """INTERNALDATE as timezone-aware UTC; a naive value is taken to be UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def reports_new_mail(responses: Iterable[tuple[object, ...]]) -> bool:
    """True when IDLE/NOOP responses include ``* n EXISTS`` or ``* n RECENT`` with n > 0.

    ``* 0 RECENT`` is routine after other changes; a spurious EXISTS only costs
    one extra ``pending()``, a missed one a delayed request, so EXISTS always counts.
    """
    for response in responses:
        if len(response) < 2 or not isinstance(response[0], int):
            continue
        if response[1] == b"EXISTS" or (response[1] == b"RECENT" and response[0] > 0):
            return True
    return False


def backoff_delays(first: float = 1.0, maximum: float = 300.0, *, jitter: float = 0.1) -> Iterator[float]:
    """Seconds to wait before each reconnection attempt: doubling, capped, slightly jittered.

    Jitter keeps several watchers from reconnecting to a recovering server in
    lockstep. Infinite: the caller decides when to give up.
    """
    delay = first
    while True:
        yield delay * (1 + random.uniform(-jitter, jitter)) if jitter else delay
        delay = min(delay * 2, maximum)


# ------------------------------------------------------------- the source

_NETWORK_ERRORS = (OSError, IMAPClientAbortError, EOFError)  # socket.timeout and ssl.SSLError are OSErrors


class ImapSource:
    """The intake folder of one IMAP account (see the module docstring for the guarantees).

    Connects, logs in and selects the intake folder on construction, so a
    misconfiguration fails before anything is read. Not thread-safe: one
    connection, one command at a time.
    """

    def __init__(self, settings: MailboxSettings, password: str) -> None:
        self.settings = settings
        self.name = source_name(settings)
        self._where = f"{settings.host}:{effective_port(settings)}"
        self._folders = {"processed": settings.processed_folder, "review": settings.review_folder}
        self._known_folders: set[str] = set()
        if settings.folder in (settings.processed_folder, settings.review_folder):
            raise ConfigError(
                f"mailbox.folder = {settings.folder!r} is also a destination folder; "
                "mailbox.processed_folder and mailbox.review_folder must differ from it, "
                "or handled mail would be read again on every run"
            )
        if settings.security == "none" and not is_loopback_host(settings.host):
            raise ConfigError(
                f'mailbox.security = "none" would send the IMAP password to {settings.host} unencrypted; '
                'use "tls" or "starttls" (plain IMAP is allowed only on loopback, for tests)'
            )
        self._client = self._connect()
        try:
            self._login(password)
            self.features = ServerFeatures.from_capabilities(self._call("read the server's capabilities", self._client.capabilities))
            self.uidvalidity = self._select()
        except BaseException:
            self.close()
            raise

    # ---- connection

    def _tls_context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=self.settings.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"mailbox.ca_file = {self.settings.ca_file!r} cannot be read as PEM certificates: {exc}") from exc

    def _connect(self) -> IMAPClient:
        s = self.settings
        implicit_tls = s.security == "tls"
        context = self._tls_context() if s.security in ("tls", "starttls") else None
        try:
            client = IMAPClient(
                s.host, port=effective_port(s), ssl=implicit_tls, ssl_context=context, timeout=s.timeout_seconds
            )
        except ssl.SSLCertVerificationError as exc:
            raise self._certificate_error(exc) from exc
        except socket.gaierror as exc:
            raise MailboxUnavailableError(
                f"cannot resolve IMAP host {s.host!r} ({exc.strerror}); check mailbox.host and DNS, then run again"
            ) from exc
        except ssl.SSLError as exc:
            raise self._handshake_error(exc) from exc
        except TimeoutError as exc:
            raise self._unavailable(
                "connect to", exc, hint='if that port expects TLS from the start, set mailbox.security = "tls"'
            ) from exc
        except (*_NETWORK_ERRORS, IMAPClientError) as exc:
            raise self._unavailable("connect to", exc) from exc
        client.normalise_times = False  # keep INTERNALDATE's zone; we convert to UTC ourselves
        if s.security == "starttls":
            no_starttls = MailboxError(
                f"IMAP server {self._where} does not offer STARTTLS; "
                'use mailbox.security = "tls" (and its port, usually 993) instead'
            )
            try:
                if not ServerFeatures.from_capabilities(client.capabilities()).starttls:
                    self._drop(client)
                    raise no_starttls
                client.starttls(context)
            except CapabilityError as exc:
                self._drop(client)
                raise no_starttls from exc
            except ssl.SSLCertVerificationError as exc:
                self._drop(client)
                raise self._certificate_error(exc) from exc
            except ssl.SSLError as exc:
                self._drop(client)
                raise self._handshake_error(exc) from exc
            except (*_NETWORK_ERRORS, IMAPClientError) as exc:
                self._drop(client)
                raise self._unavailable("start TLS with", exc) from exc
        return client

    def _certificate_error(self, exc: ssl.SSLCertVerificationError) -> MailboxError:
        hint = (
            "check that mailbox.ca_file holds the CA that signed the server's certificate"
            if self.settings.ca_file
            else "if the server uses a private CA, set mailbox.ca_file to its PEM file"
        )
        return MailboxError(
            f"the TLS certificate of IMAP server {self._where} could not be verified "
            f"({exc.verify_message or exc.reason}); {hint}, and check mailbox.host matches the certificate"
        )

    def _handshake_error(self, exc: ssl.SSLError) -> MailboxError:
        """TLS that fails before any certificate is checked: almost always security/port mismatch."""
        if isinstance(exc, ssl.SSLCertVerificationError):
            return self._certificate_error(exc)
        return MailboxError(
            f"TLS with IMAP server {self._where} failed ({exc.reason or exc}); check that mailbox.security "
            f'matches mailbox.port ("tls" is usually port 993, "starttls" port 143)'
        )

    def _login(self, password: str) -> None:
        s = self.settings
        try:
            self._client.login(s.username, password)
        except LoginError as exc:
            # imapclient turns every failure during LOGIN into LoginError, a dropped
            # connection included; and a server whose password backend is down says so.
            if isinstance(exc.__context__, _NETWORK_ERRORS):
                raise self._unavailable("log in to", exc.__context__) from exc
            if "[UNAVAILABLE]" in str(exc):
                raise MailboxUnavailableError(
                    f"IMAP server {self._where} cannot check passwords right now ({_server_text(exc)}); run again later"
                ) from exc
            env = s.password_env or "(mailbox.password_env is not set)"
            raise MailboxLoginError(
                f"IMAP server {self._where} refused the login of user {s.username!r} ({_server_text(exc)}); "
                f"check mailbox.username and the password in the environment variable named by "
                f"mailbox.password_env ({env})"
            ) from exc
        except _NETWORK_ERRORS as exc:
            raise self._unavailable("log in to", exc) from exc

    def _select(self) -> int:
        folder = self.settings.folder
        try:
            info = self._client.select_folder(folder)
        except _NETWORK_ERRORS as exc:
            raise self._unavailable(f"open folder {folder!r} on", exc) from exc
        except IMAPClientError as exc:
            raise MailboxError(
                f"cannot open intake folder {folder!r} on {self._where} ({_server_text(exc)}); "
                "create it on the server or correct mailbox.folder"
            ) from exc
        uidvalidity = info.get(b"UIDVALIDITY")
        if not isinstance(uidvalidity, int):
            raise MailboxError(f"IMAP server {self._where} sent no UIDVALIDITY for {folder!r}; it cannot be used safely")
        self._known_folders.add(folder)
        return uidvalidity

    def _unavailable(self, action: str, exc: BaseException, *, hint: str = "") -> MailboxUnavailableError:
        if isinstance(exc, TimeoutError):
            why = f"no answer within {self.settings.timeout_seconds}s (mailbox.timeout_seconds)"
        elif isinstance(exc, ConnectionRefusedError):
            why = "connection refused; is the server running and mailbox.port right?"
        else:
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        hint = f"; {hint}" if hint else ""
        return MailboxUnavailableError(f"could not {action} IMAP server {self._where}: {why}{hint}; run again later")

    def _call(self, action: str, fn: Callable[..., T], *args: object) -> T:
        """Run one IMAP command, turning socket trouble into MailboxUnavailableError."""
        try:
            return fn(*args)
        except _NETWORK_ERRORS as exc:
            raise self._unavailable(action, exc) from exc
        except IMAPClientError as exc:
            raise MailboxError(f"IMAP server {self._where} refused to {action}: {_server_text(exc)}") from exc

    @staticmethod
    def _drop(client: IMAPClient) -> None:
        try:
            client.shutdown()
        except Exception:  # noqa: BLE001, S110 - closing a broken connection: nothing left to report
            pass

    # ---- the MailSource interface

    def pending(self) -> list[MessageRef]:
        """Every message waiting in the intake folder, oldest UID first.

        Messages flagged ``\\Deleted`` are left out: they are on their way out,
        either copied away by our own move on a server without MOVE/UIDPLUS, or
        deleted on purpose by another client.
        """
        uids = sorted(self._call("search the intake folder", self._client.search, ["UNDELETED"]))
        refs: list[MessageRef] = []
        for batch in chunked(uids, METADATA_BATCH):
            data = self._call("read message sizes", self._client.fetch, list(batch), ["RFC822.SIZE", "INTERNALDATE"])
            for uid in batch:
                item = data.get(uid)
                if item is None:  # expunged by someone else between SEARCH and FETCH
                    continue
                refs.append(
                    MessageRef(
                        key=message_key(self.settings.folder, self.uidvalidity, uid),
                        uid=uid,
                        uidvalidity=self.uidvalidity,
                        size=int(item[b"RFC822.SIZE"]),
                        internal_date=to_utc(item.get(b"INTERNALDATE")),
                    )
                )
        return refs

    def fetch(self, refs: Sequence[MessageRef]) -> Iterator[IncomingMessage]:
        """The messages' bytes, ``batch_size`` per round trip, in the order given.

        Oversized messages are yielded with ``raw=None`` and never downloaded, so
        one huge attachment cannot exhaust memory or stall the run; they can
        still be moved to review. Uses ``BODY.PEEK[]`` so nothing is marked read.
        A message that vanished since ``pending()`` is skipped (and logged):
        it is no longer in the mailbox to be processed.
        """
        limit = self.settings.max_message_bytes
        for ref in refs:
            self._check_current(ref, "fetch")
        for chunk in chunked(refs, self.settings.batch_size):
            wanted = [r.uid for r in chunk if r.size <= limit and r.uid is not None]
            data = (
                self._call("fetch messages", self._client.fetch, wanted, ["BODY.PEEK[]"]) if wanted else {}
            )
            for ref in chunk:
                if ref.size > limit:
                    yield IncomingMessage(ref=ref, raw=None)
                    continue
                item = data.get(ref.uid)  # type: ignore[arg-type]
                raw = item.get(b"BODY[]") if item else None
                if raw is None:
                    log.warning("message %s disappeared from %s before it was fetched", ref.key, self.name)
                    continue
                yield IncomingMessage(ref=ref, raw=bytes(raw))

    def move(self, ref: MessageRef, destination: Destination) -> None:
        """File a message away: UID MOVE, else UID COPY + \\Deleted + UID EXPUNGE.

        Idempotent: a message already gone from the intake folder is not an
        error. Only the message itself is ever expunged (UID EXPUNGE), never a
        plain EXPUNGE that would also remove other clients' deleted mail.
        Messages filed as processed are marked ``\\Seen``; review stays unread
        so a person notices it.

        On a server with neither MOVE nor UIDPLUS, the message is copied and
        flagged ``\\Deleted`` and ``\\Seen`` but stays in the intake folder until
        someone (or the server's own expunge policy) removes it; ``pending()``
        skips it meanwhile. A plain EXPUNGE is never issued.
        """
        if destination not in self._folders:
            raise ValueError(f"destination must be 'processed' or 'review', not {destination!r}")
        self._check_current(ref, "move")
        uid = ref.uid
        assert uid is not None  # guaranteed by _check_current
        target = self._folders[destination]
        self._ensure_folder(target)
        flags = self._call("read message flags", self._client.get_flags, [uid]).get(uid)
        if flags is None:
            return  # already moved (or removed by someone else): nothing to do
        if destination == "processed":
            self._call("mark the message read", self._client.add_flags, [uid], [b"\\Seen"])
        if self.features.move:
            self._call(f"move the message to {target!r}", self._client.move, [uid], target)
        elif self.features.uidplus:
            self._call(f"copy the message to {target!r}", self._client.copy, [uid], target)
            self._call("flag the message deleted", self._client.add_flags, [uid], [b"\\Deleted"])
            self._call("expunge the moved message", self._client.uid_expunge, [uid])
        else:
            if b"\\Deleted" in flags:
                return  # copied on an earlier run; copying again would duplicate it
            self._call(f"copy the message to {target!r}", self._client.copy, [uid], target)
            self._call("flag the message deleted", self._client.add_flags, [uid], [b"\\Deleted", b"\\Seen"])

    def check_folders(self) -> tuple[str, str, str]:
        """`erasure init`: the intake folder is open (checked on connecting); the processed and
        review folders exist, created now if missing, as the first move would. Returns all three."""
        for folder in self._folders.values():
            self._ensure_folder(folder)
        return (self.settings.folder, self.settings.processed_folder, self.settings.review_folder)

    def wait_for_new(self, timeout_seconds: float) -> bool:
        """Block in IDLE until the server reports new mail (True) or the timeout passes (False).

        For ``poll --watch``: the caller re-issues it in a loop and reconnects
        (runner.watch_forever, with ``backoff_delays``) on MailboxUnavailableError. Servers drop IDLE
        after about 30 minutes, so keep ``timeout_seconds`` well below that; and
        since mail landing in the instant between the NOOP and IDLE may only be
        reported at the server's next check, the caller should run ``pending()``
        after every return, True or False.
        """
        if not self.features.idle:
            raise MailboxError(f"IMAP server {self._where} does not support IDLE; run `erasure poll` from cron instead of --watch")
        deadline = time.monotonic() + max(0.0, timeout_seconds)
        # Mail that arrived since the last command is reported by the next command,
        # not by IDLE (Dovecot tells only of changes after IDLE starts): ask first.
        _, responses = self._call("check for new mail", self._client.noop)
        if reports_new_mail(responses):
            return True
        self._call("start IDLE", self._client.idle)
        # On an error the connection is in an unknown state: no DONE, the caller reconnects.
        seen_new = False
        while not seen_new:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            responses = self._call("wait for new mail", self._client.idle_check, left)
            if any(r and r[0] == b"BYE" for r in responses):
                raise MailboxUnavailableError(f"IMAP server {self._where} closed the connection during IDLE; run again later")
            seen_new = reports_new_mail(responses)
            if not responses and deadline - time.monotonic() > IDLE_EARLY_RETURN_SECONDS:
                # imapclient returns early and empty when the server hung up (it
                # swallows the EOF); ending IDLE tells a dead connection from a live one.
                _, late = self._call("end IDLE", self._client.idle_done)
                if reports_new_mail(late):
                    return True
                self._call("restart IDLE", self._client.idle)
        _, late = self._call("end IDLE", self._client.idle_done)
        return seen_new or reports_new_mail(late)

    def close(self) -> None:
        """Log out; never raises (the connection may already be gone)."""
        client = getattr(self, "_client", None)
        if client is None:
            return
        self._client = None  # type: ignore[assignment]
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - a dead connection cannot be logged out of; just drop it
            self._drop(client)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- internals

    def _check_current(self, ref: MessageRef, action: str) -> None:
        """Refuse refs from another folder generation: their UIDs may now name other messages."""
        if ref.uid is None or ref.uidvalidity is None:
            raise MailboxError(f"cannot {action} {ref.key}: it is not an IMAP message (no UID)")
        if ref.key != message_key(self.settings.folder, ref.uidvalidity, ref.uid):
            # Folders created in the same second can share a UIDVALIDITY (Dovecot), so the key decides.
            raise MailboxError(
                f"cannot {action} {ref.key}: it was listed from another folder than {self.settings.folder!r} "
                "(was mailbox.folder changed?); run poll again to list the folder afresh"
            )
        if ref.uidvalidity != self.uidvalidity:
            raise MailboxError(
                f"cannot {action} {ref.key}: folder {self.settings.folder!r} on {self._where} was recreated "
                f"(UIDVALIDITY is now {self.uidvalidity}, was {ref.uidvalidity}), so UID {ref.uid} may be another "
                "message; run poll again to list the folder afresh"
            )

    def _ensure_folder(self, folder: str) -> None:
        if folder in self._known_folders:
            return
        if not self._call(f"look up folder {folder!r}", self._client.folder_exists, folder):
            try:
                self._client.create_folder(folder)
            except _NETWORK_ERRORS as exc:
                raise self._unavailable(f"create folder {folder!r} on", exc) from exc
            except IMAPClientError as exc:
                # Another run may have created it a moment ago; only a real failure counts.
                if not self._call(f"look up folder {folder!r}", self._client.folder_exists, folder):
                    raise MailboxError(
                        f"cannot create folder {folder!r} on {self._where} ({_server_text(exc)}); "
                        "create it by hand or change mailbox.processed_folder / mailbox.review_folder"
                    ) from exc
        self._known_folders.add(folder)


def _server_text(exc: BaseException) -> str:
    """The server's own words from an imaplib error, as text."""
    text = str(exc)
    if text.startswith(("b'", 'b"')):
        text = text[2:-1]
    return text or type(exc).__name__
