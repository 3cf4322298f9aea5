"""pytest plugin: real SMTP servers (aiosmtpd) on free loopback ports.

Delivery is tested against a server that speaks real SMTP, real TLS and real
AUTH, so what the tests pin down is what a mail relay would see. The handler
records every message exactly as received and can be told to misbehave for the
next N messages (answer 4xx/5xx at MAIL, RCPT or DATA, or drop the connection
after DATA without answering), which is how a flaky relay looks from our side.

Fixtures (function-scoped, each a fresh server):
  ``smtp_server``           plain SMTP, no TLS, no AUTH (loopback only)
  ``smtp_server_tls``       implicit TLS (like port 465)
  ``smtp_server_starttls``  STARTTLS offered and required before MAIL
  ``smtp_server_auth``      STARTTLS + AUTH required (user/password below)
  ``any_smtp_server``       parametrized over all four

Each yields an ``SmtpTestServer``; ``server.settings()`` gives DeliverySettings
pointing at it (``ca_file`` trusts the test CA), ``server.password`` the AUTH
password, ``server.handler.received`` the accepted messages.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import email.policy
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from erasure.config import DeliverySettings, Security
from tests.services import free_port, missing_service

SMTP_USER = "relay-user"
SMTP_PASSWORD = "s3cret-relay-pässword"  # non-ASCII on purpose: AUTH must encode it

DROP = "<drop the connection>"
PHASES = ("MAIL", "RCPT", "DATA")


@dataclass
class ReceivedMessage:
    """One message as the server saw it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str]
    tls: bool
    login: str | None
    peer: tuple[str, int]  # client address: same peer = same connection
    dropped: bool = False  # accepted, but the connection was cut before the reply

    @property
    def message(self) -> EmailMessage:
        """The message parsed as a mail reader would see it (line endings normalised)."""
        return BytesParser(policy=email.policy.default).parsebytes(self.data.replace(b"\r\n", b"\n"))  # type: ignore[return-value]

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class _Scripted:
    phase: str
    reply: str  # an SMTP reply line, or DROP


class RecordingHandler:
    """aiosmtpd handler that records messages and follows a script of failures."""

    def __init__(self) -> None:
        self.received: list[ReceivedMessage] = []
        self.refused: list[tuple[str, str]] = []  # (phase, reply) actually given
        self._script: collections.deque[_Scripted] = collections.deque()
        self._lock = threading.Lock()

    # -- what the test says

    def answer_next(self, reply: str, count: int = 1, *, at: str = "DATA") -> None:
        """Answer ``reply`` (e.g. "451 4.3.0 try later") to the next ``count`` messages at phase ``at``."""
        if at not in PHASES:
            raise ValueError(f"at must be one of {PHASES}")
        if not reply[:1] in ("4", "5"):
            raise ValueError("scripted replies are failures: 4xx or 5xx")
        with self._lock:
            self._script.extend(_Scripted(at, reply) for _ in range(count))

    def drop_next(self, count: int = 1, *, at: str = "DATA") -> None:
        """Close the connection without replying at phase ``at`` for the next ``count`` messages.

        At DATA the message is recorded first (``dropped=True``): the server has
        it, the client cannot know. At MAIL it looks like a relay that closed an
        idle connection.
        """
        if at not in ("MAIL", "DATA"):
            raise ValueError("drop at MAIL or DATA")
        with self._lock:
            self._script.extend(_Scripted(at, DROP) for _ in range(count))

    @property
    def message_ids(self) -> list[str]:
        return [m.message_id for m in self.received]

    # -- aiosmtpd hooks

    def _take(self, phase: str) -> str | None:
        with self._lock:
            if self._script and self._script[0].phase == phase:
                return self._script.popleft().reply
        return None

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]) -> str:
        reply = self._take("MAIL")
        if reply == DROP:
            server.transport.close()
            return "421 (never seen by the client)"
        if reply is not None:
            self.refused.append(("MAIL", reply))
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        reply = self._take("RCPT")
        if reply is not None:
            self.refused.append(("RCPT", reply))
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = self._take("DATA")
        record = ReceivedMessage(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            data=bytes(envelope.original_content),
            mail_options=list(envelope.mail_options),
            tls=session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
            peer=tuple(session.peer[:2]),
            login=session.auth_data.login.decode() if session.authenticated and session.auth_data else None,
        )
        if reply == DROP:
            record.dropped = True
            self.received.append(record)
            server.transport.close()  # the reply is never sent: the client cannot know it was accepted
            return "250 OK (never seen by the client)"
        if reply is not None:
            self.refused.append(("DATA", reply))
            return reply
        self.received.append(record)
        return f"250 2.0.0 OK queued as test{len(self.received)}"


@dataclass
class SmtpTestServer:
    """A running aiosmtpd server and what a client needs to reach it."""

    host: str
    port: int
    security: Security
    handler: RecordingHandler
    ca_file: str | None
    username: str = ""
    password: str | None = None
    controller: Any = field(default=None, repr=False)

    def settings(self, **overrides: Any) -> DeliverySettings:
        base = DeliverySettings(
            kind="smtp",
            host=self.host,
            port=self.port,
            security=self.security,
            ca_file=self.ca_file,
            username=self.username,
            from_address="privacy@erasure.test",
            timeout_seconds=10,
        )
        return dataclasses.replace(base, **overrides)

    @property
    def received(self) -> list[ReceivedMessage]:
        return self.handler.received

    def stop(self) -> None:
        """Stop the server (closing its connections); safe to call twice."""
        if self.controller is not None:
            controller, self.controller = self.controller, None
            with contextlib.suppress(AssertionError):  # aiosmtpd asserts if someone stopped it already
                controller.stop()


@dataclass(frozen=True)
class _Tls:
    server_context: ssl.SSLContext
    ca_file: str


@pytest.fixture(scope="session")
def smtp_tls(tmp_path_factory: pytest.TempPathFactory) -> _Tls:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost."""
    try:
        import trustme
    except ImportError:
        missing_service("trustme is not installed (pip install trustme); needed for the TLS SMTP test servers")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_path: Path = tmp_path_factory.mktemp("smtp-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return _Tls(context, str(ca_path))


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == SMTP_USER
        and auth_data.password.decode("utf-8", "replace") == SMTP_PASSWORD
    )
    # handled=False on failure: aiosmtpd then answers 535 itself (handled=True would leave the client hanging)
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def _start(security: Security, tls: _Tls | None, *, auth: bool = False) -> SmtpTestServer:
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        missing_service("aiosmtpd is not installed (pip install aiosmtpd)")
    handler = RecordingHandler()
    kwargs: dict[str, Any] = {
        "server_hostname": "smtp.erasure.test",  # never socket.getfqdn(): a DNS lookup per start
        "enable_SMTPUTF8": True,
    }
    if security == "tls":
        assert tls is not None
        kwargs["ssl_context"] = tls.server_context
    elif security == "starttls":
        assert tls is not None
        kwargs["tls_context"] = tls.server_context
        kwargs["require_starttls"] = True
    if auth:
        kwargs["authenticator"] = _authenticator
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = True
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()  # returns once the server answered a real connection
    return SmtpTestServer(
        host="127.0.0.1",
        port=port,
        security=security,
        handler=handler,
        ca_file=tls.ca_file if tls else None,
        username=SMTP_USER if auth else "",
        password=SMTP_PASSWORD if auth else None,
        controller=controller,
    )


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    """Plain SMTP on loopback: no TLS, no AUTH."""
    server = _start("none", None)
    yield server
    server.stop()


@pytest.fixture
def smtp_server_tls(smtp_tls: _Tls) -> Iterator[SmtpTestServer]:
    """Implicit TLS from the first byte (submissions port style)."""
    server = _start("tls", smtp_tls)
    yield server
    server.stop()


@pytest.fixture
def smtp_server_starttls(smtp_tls: _Tls) -> Iterator[SmtpTestServer]:
    """STARTTLS offered and required before MAIL FROM."""
    server = _start("starttls", smtp_tls)
    yield server
    server.stop()


@pytest.fixture
def smtp_server_auth(smtp_tls: _Tls) -> Iterator[SmtpTestServer]:
    """STARTTLS, then AUTH (PLAIN/LOGIN) required before MAIL FROM."""
    server = _start("starttls", smtp_tls, auth=True)
    yield server
    server.stop()


@pytest.fixture(params=["plain", "tls", "starttls", "auth"])
def any_smtp_server(request: pytest.FixtureRequest) -> SmtpTestServer:
    """Each server variant in turn."""
    name = {"plain": "smtp_server", "tls": "smtp_server_tls", "starttls": "smtp_server_starttls", "auth": "smtp_server_auth"}
    return request.getfixturevalue(name[request.param])
