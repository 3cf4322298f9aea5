"""The poll lock: one `erasure poll` at a time per state database, on one host or several.

With a SQLite state database every run is on one host, so the lock is a file
beside the config (``filelock``). With PostgreSQL or MariaDB several hosts may
share the state database (active/passive or active/active), so the lock lives
in that database: a session-level advisory lock (``pg_try_advisory_lock``,
``GET_LOCK``) held on a connection of its own for the whole pass. Two
properties follow from the database, not from us:

* a host that dies (or whose network goes) loses its session, and the server
  releases the lock with it: no stale lock to clean up by hand;
* a lock held on a connection that broke is no lock: the pass checks the
  connection is still alive before each step that must not run twice
  (``still_held``), and stops (exit 75) when it is not.

Not a transaction-level lock: a pass commits many times, and the lock must
outlive every commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from erasure.errors import StateUnavailableError
from erasure.files import PRIVATE_FILE, create_private_file

#: The name every host's lock is derived from; per database, never shared across installations.
LOCK_NAME = "erasure-poll"


class PollLock:
    """A held lock; ``still_held()`` is False once the connection that holds it is gone."""

    def __init__(self, conn: Connection | None) -> None:
        self._conn = conn

    def still_held(self) -> bool:
        if self._conn is None:  # a file lock: held until released
            return True
        try:
            self._conn.exec_driver_sql("SELECT 1")
            return True
        except sa.exc.SQLAlchemyError:  # the driver's error, or the invalidated connection's
            return False


def advisory_key(database: str) -> int:
    """PostgreSQL's lock key: a signed 64-bit number derived from the name (and the database)."""
    digest = hashlib.sha256(f"{LOCK_NAME}:{database}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def mysql_lock_name(database: str) -> str:
    """MariaDB's GET_LOCK names are server-wide (64 characters at most): scoped by the database's name."""
    return f"{LOCK_NAME}:{database}"[:64]


@contextmanager
def poll_lock(engine: Engine, lock_file: Path) -> Iterator[PollLock | None]:
    """Yield a held lock, or None when another run holds it (then do nothing and exit 0)."""
    backend = engine.url.get_backend_name()
    if backend == "sqlite":
        with _file_lock(lock_file) as held:
            yield held
        return
    try:
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except sa.exc.DBAPIError as exc:
        raise StateUnavailableError(f"cannot reach the state database to take the poll lock: {_short(exc)}") from exc
    try:
        database = engine.url.database or ""
        if backend == "postgresql":
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": advisory_key(database)}).scalar()
        else:
            got = conn.execute(sa.text("SELECT GET_LOCK(:n, 0)"), {"n": mysql_lock_name(database)}).scalar()
        if not got:
            yield None
            return
        try:
            yield PollLock(conn)
        finally:
            _release(conn, backend, database)
    except sa.exc.SQLAlchemyError as exc:
        raise StateUnavailableError(f"the state database went away while holding the poll lock: {_short(exc)}") from exc
    finally:
        conn.close()


def _release(conn: Connection, backend: str, database: str) -> None:
    """Release explicitly; if the connection is already gone, the server released it with the session."""
    try:
        if backend == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": advisory_key(database)})
        else:
            conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": mysql_lock_name(database)})
    except sa.exc.SQLAlchemyError:
        conn.invalidate()


@contextmanager
def _file_lock(path: Path) -> Iterator[PollLock | None]:
    try:
        create_private_file(path)  # 0600 whatever the umask; filelock keeps it so (mode=)
    except OSError:
        pass  # a lock that cannot be made fails below, naming the path
    lock = filelock.FileLock(str(path), timeout=0, mode=PRIVATE_FILE)
    try:
        lock.acquire()
    except filelock.Timeout:
        yield None
        return
    try:
        yield PollLock(None)
    finally:
        lock.release()


def _short(exc: BaseException) -> str:
    return " ".join(str(getattr(exc, "orig", exc) or exc).split())[:300]
