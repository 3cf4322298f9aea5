"""A private, throw-away Dovecot for the IMAP tests (pytest plugin).

Each server runs from its own temporary folder on free loopback ports with a
self-signed certificate, so tests exercise real IMAP, IMAPS and STARTTLS without
touching the machine's mail setup. Servers are session-scoped (starting one is
the slow part); tests isolate themselves by asking ``new_user()`` for a fresh
mailbox user. Recipe: /work/shared/recipes/dovecot.md.

When a test that used a server fails, the server's log is attached to the report.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from imapclient import IMAPClient

from erasure.config import MailboxSettings, Security
from tests.services import free_port, missing_service, wait_for_port

PASSWORD = "secret"
USERS_PER_SERVER = 200


def _user_name(n: int) -> str:
    return f"user{n:03d}"

# What Dovecot 2.3 advertises after login, minus the extensions a test wants absent.
FULL_CAPABILITY = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES "
    "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN "
    "NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES "
    "WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW "
    "STATUS=SIZE SAVEDATE LITERAL+ NOTIFY"
)


def capability_without(*names: str) -> str:
    """Dovecot's capability list with ``names`` removed (for fallback-path servers)."""
    drop = {n.upper() for n in names}
    return " ".join(c for c in FULL_CAPABILITY.split() if c.upper() not in drop)


CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/run
instance_name = test-{port}
log_path = {d}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = 0
mail_location = maildir:~/Maildir
mail_fsync = never
# Process titles show each imap process's user and current command (tests watch for IDLE).
verbose_proctitle = yes
{extra}
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
  chroot =
}}
service anvil {{
  chroot =
  # No auth penalty: a wrong-password test must not slow every later login from 127.0.0.1.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


@dataclass
class DovecotServer:
    """One running private Dovecot and the helpers tests need around it."""

    directory: Path
    port: int
    tls_port: int
    name: str
    _user_count: int = field(default=0, repr=False)

    @property
    def ca_file(self) -> str:
        # The certificate is self-signed, so it is its own CA.
        return str(self.directory / "cert.pem")

    @property
    def log(self) -> str:
        try:
            return (self.directory / "dovecot.log").read_text(errors="replace")
        except FileNotFoundError:
            return "(no dovecot.log written)"

    def new_user(self) -> str:
        """A mailbox user no other test has touched (isolation without a restart).

        The users exist from the start: Dovecot re-reads passwd-file at most once
        a second, so users appended while it runs are not reliably seen.
        """
        if self._user_count >= USERS_PER_SERVER:
            raise RuntimeError(f"all {USERS_PER_SERVER} test users of dovecot {self.name} are used; raise USERS_PER_SERVER")
        self._user_count += 1
        return _user_name(self._user_count)

    def settings(
        self,
        user: str,
        security: Security = "none",
        *,
        ca_file: str | None | bool = True,
        folder: str = "INBOX",
        **overrides: object,
    ) -> MailboxSettings:
        """MailboxSettings pointing at this server; ``ca_file=True`` trusts its certificate."""
        values: dict[str, object] = {
            "kind": "imap",
            "host": "127.0.0.1",
            "port": self.tls_port if security == "tls" else self.port,
            "security": security,
            "ca_file": self.ca_file if ca_file is True else (ca_file or None),
            "username": user,
            "password_env": "ERASURE_TEST_IMAP_PASSWORD",
            "folder": folder,
            "timeout_seconds": 10,
        }
        return MailboxSettings(**{**values, **overrides})  # type: ignore[arg-type]

    def client(self, user: str) -> IMAPClient:
        """A plain logged-in client, playing the mail server's other users (MTA, humans)."""
        c = IMAPClient("127.0.0.1", self.port, ssl=False, timeout=10)
        c.login(user, PASSWORD)
        return c

    def deliver(self, user: str, messages: Iterable[bytes], folder: str = "INBOX") -> None:
        """APPEND messages over one connection, bytes exactly as given."""
        with self.client(user) as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            c.multiappend(folder, list(messages))  # one round trip, however many messages

    def mail_pid(self, user: str, *, timeout: float = 10.0) -> int:
        """PID of the running imap process serving ``user`` (login line's ``mpid=``).

        Tests keep one open connection per user; earlier ones (e.g. ``deliver``)
        have logged out and their processes are gone. The log is written by a
        separate process, so poll until a logged-in process is found running.
        """
        pattern = re.compile(rf"Login: user=<{re.escape(user)}>.*?mpid=(\d+)")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # verbose_proctitle puts the user in the title, which guards against pid reuse.
            running = [int(p) for p in pattern.findall(self.log) if _running(int(p)) and user in _title(int(p))]
            if running:
                return running[-1]
            time.sleep(0.02)  # polling for the log writer
        raise AssertionError(f"no running imap process of {user} in the dovecot log:\n{self.log}")

    def master_pid(self, *, timeout: float = 10.0) -> int:
        """The master's pid; its pid file appears a moment after the ports open: poll."""
        pid_file = self.directory / "run" / "master.pid"
        deadline = time.monotonic() + timeout
        while True:
            try:
                return int(pid_file.read_text().strip())
            except (FileNotFoundError, ValueError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dovecot {self.name} wrote no {pid_file}\n{self.log}") from None
                time.sleep(0.02)  # polling for the pid file

    def wait_for_command(self, pid: int, command: str, *, timeout: float = 10.0) -> None:
        """Poll the imap process's title until it shows ``command`` (e.g. "IDLE")."""
        deadline = time.monotonic() + timeout
        title = ""
        while time.monotonic() < deadline:
            title = _title(pid)
            if command in title:
                return
            time.sleep(0.02)  # polling the process title
        raise AssertionError(f"imap process {pid} never showed {command!r}; last title: {title!r}")

    def stop(self) -> None:
        """Kill the master and its children outright.

        A throw-away server needs no graceful shutdown, and Dovecot's takes
        about six seconds (the master waits for its helper processes).
        """
        master = self.master_pid()
        family = [master, *_children(master)]
        for pid in family:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (any(_running(p) for p in family) or _accepts(self.port)):
            time.sleep(0.02)  # polling for the processes to go


def _children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return "(process gone)"


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _dovecot_binary() -> str:
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
    if not found:
        missing_service("dovecot is not installed (apt-get install -y dovecot-imapd)")
        raise AssertionError("unreachable")  # missing_service skips or fails
    for account in ("dovecot", "dovenull"):
        try:
            pwd.getpwnam(account)
        except KeyError:
            missing_service(f"system user {account!r} is missing (installed with dovecot-imapd)")
    if os.geteuid() != 0:
        missing_service("a private Dovecot needs root to switch to the dovecot/dovenull users")
    found_openssl = shutil.which("openssl")
    if not found_openssl:
        missing_service("openssl is not installed (needed for the test certificate)")
    return found


def start_dovecot(name: str, *, capability: str | None = None, tls: bool = True) -> DovecotServer:
    """Start a private Dovecot; ``capability`` overrides what it advertises after login.

    ``tls=False`` gives a server with no TLS at all (no IMAPS port, no STARTTLS).
    """
    binary = _dovecot_binary()
    d = Path(tempfile.mkdtemp(prefix=f"dovecot-{name}-"))
    d.chmod(0o755)
    (d / "mail").mkdir()
    shutil.chown(d / "mail", "dovecot", "dovecot")
    (d / "passwd").write_text("".join(f"{_user_name(n)}:{{PLAIN}}{PASSWORD}::::\n" for n in range(1, USERS_PER_SERVER + 1)))
    (d / "passwd").chmod(0o644)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "key.pem"),
         "-out", str(d / "cert.pem"), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    (d / "key.pem").chmod(0o644)
    (d / "cert.pem").chmod(0o644)
    port, tls_port = free_port(), free_port()
    extra = f"imap_capability = {capability}" if capability is not None else ""
    ssl = f"ssl = yes\nssl_cert = <{d}/cert.pem\nssl_key = <{d}/key.pem" if tls else "ssl = no"
    if not tls:
        tls_port = 0  # Dovecot: port 0 disables the listener
    (d / "dovecot.conf").write_text(CONFIG.format(d=d, port=port, tls_port=tls_port, extra=extra, ssl=ssl))
    server = DovecotServer(directory=d, port=port, tls_port=tls_port, name=name)
    # The daemon inherits stdout/stderr: a file, not a pipe, or run() waits for it to exit.
    with open(d / "startup.log", "w+") as out:
        result = subprocess.run([binary, "-c", str(d / "dovecot.conf")], stdout=out, stderr=out, check=False)
        out.seek(0)
        if result.returncode != 0:
            raise RuntimeError(f"dovecot {name} did not start: {out.read()}\n{server.log}")
    try:
        wait_for_port("127.0.0.1", port)
        if tls:
            wait_for_port("127.0.0.1", tls_port)
        server.master_pid()
    except RuntimeError as exc:
        try:
            server.stop()
        except RuntimeError:
            pass  # no pid file: nothing of ours to stop
        raise RuntimeError(f"dovecot {name} is not listening: {exc}\n{server.log}") from exc
    return server


def _serve(name: str, capability: str | None = None, *, tls: bool = True) -> Iterator[DovecotServer]:
    server = start_dovecot(name, capability=capability, tls=tls)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """Dovecot with its full capabilities (MOVE, UIDPLUS, IDLE)."""
    yield from _serve("full")


@pytest.fixture(scope="session")
def dovecot_without_move() -> Iterator[DovecotServer]:
    """Dovecot advertising UIDPLUS but not MOVE: moves take COPY + UID EXPUNGE."""
    yield from _serve("nomove", capability_without("MOVE"))


@pytest.fixture(scope="session")
def dovecot_without_move_or_uidplus() -> Iterator[DovecotServer]:
    """Dovecot advertising neither MOVE nor UIDPLUS: moves can only copy and flag."""
    yield from _serve("nouidplus", capability_without("MOVE", "UIDPLUS"))


@pytest.fixture(scope="session")
def dovecot_without_tls() -> Iterator[DovecotServer]:
    """Dovecot with TLS switched off: no IMAPS port, no STARTTLS."""
    yield from _serve("notls", tls=False)


DOVECOT_FIXTURES = frozenset({"dovecot", "dovecot_without_move", "dovecot_without_move_or_uidplus", "dovecot_without_tls"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a Dovecot fixture, so `-m "not dovecot"` leaves out exactly those."""
    for item in items:
        if DOVECOT_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.dovecot)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, DovecotServer):
                report.sections.append((f"dovecot {value.name} log ({value.directory})", value.log))
    return report
