"""Opening the state database and keeping its schema at the current Alembic head.

Every command calls ``open_state``; it migrates on first use so a new install
needs no separate step, and ``erasure init`` does the same explicitly.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from erasure.errors import StateError, StateUnavailableError

MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def resolve_sqlite_url(url: str, base_dir: Path) -> str:
    """Relative SQLite (and chdb) paths in the config are relative to the config file, not the cwd."""
    parsed = sa.make_url(url)
    # chdb:///folder (ClickHouse embedded) follows the same convention: relative to the config file.
    if parsed.get_backend_name() in ("sqlite", "chdb") and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database).expanduser()
        if not path.is_absolute():
            path = base_dir / path
        return parsed.set(database=str(path)).render_as_string(hide_password=False)
    return url


def _create_private_sqlite_file(url: str) -> None:
    """Create a new SQLite state file 0600 before SQLite does (it would use the umask, often 0644).

    The state database holds requesters' addresses and viewer ids; SQLite gives
    the -wal, -shm and -journal files the database file's mode, so they follow.
    """
    from erasure.files import create_private_file

    database = sa.make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:") and Path(database).parent.is_dir():
        try:
            create_private_file(database)
        except OSError as exc:
            raise StateError(f"state.url: cannot create the SQLite file {database}: {exc.strerror or exc}; "
                             "check that its folder exists and is writable") from exc


def make_engine(url: str, *, base_dir: Path = Path("."), busy_timeout: float = 30.0) -> Engine:
    """An engine with the per-dialect settings the tool relies on.

    SQLite transactions begin IMMEDIATE: every transaction here reads then
    writes, and a deferred one that read a snapshot another writer has since
    changed cannot upgrade (it fails at once instead of waiting). IMMEDIATE
    takes the write lock up front, waits up to ``busy_timeout`` for it, and so
    gives SQLite the serialization that FOR UPDATE gives the servers.
    """
    url = resolve_sqlite_url(url, base_dir)
    try:
        if url.startswith("sqlite"):
            _create_private_sqlite_file(url)
            engine = sa.create_engine(url, connect_args={"timeout": busy_timeout})

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA journal_mode=WAL")
                cur.close()

            @event.listens_for(engine, "begin")
            def _sqlite_begin_immediate(conn):  # type: ignore[no-untyped-def]
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            return engine
        if sa.make_url(url).get_backend_name() in ("mysql", "mariadb"):
            # utf8mb4 on the wire whatever the URL or server default says: the
            # tables are utf8mb4 (migration 0002), and a 3-byte "utf8" or latin1
            # connection would refuse or mangle an emoji subject line.
            return sa.create_engine(url, pool_pre_ping=True, connect_args={"charset": "utf8mb4"})
        return sa.create_engine(url, pool_pre_ping=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise StateError(f"state.url {sa.make_url(url).render_as_string()!r} is not usable: {exc}") from exc
    except ModuleNotFoundError as exc:
        raise StateError(f"state.url needs the Python driver {exc.name!r}; install it (pip install {exc.name})") from exc


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine) -> str:
    """Bring the schema to the newest revision; returns it. Safe to call every run."""
    try:
        if current_revision(engine) == head_revision():
            return head_revision()
        cfg = _alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except sa.exc.OperationalError as exc:
        raise StateUnavailableError(f"cannot reach the state database ({engine.url.render_as_string()}): {exc.orig}") from exc
    return head_revision()


@dataclass
class State:
    """The state database: an engine and a session factory at the current schema."""

    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error.

        A database that is down, or locked by another writer for longer than the
        busy timeout, is a temporary failure (exit 75), not a crash.
        """
        try:
            with self.sessions.begin() as session:
                yield session
        except sa.exc.OperationalError as exc:
            raise StateUnavailableError(
                f"the state database ({self.engine.url.render_as_string()}) is unreachable or busy: {exc.orig}"
            ) from exc

    def close(self) -> None:
        self.engine.dispose()


def open_state(url: str, *, base_dir: Path = Path("."), migrate: bool = True, busy_timeout: float = 30.0) -> State:
    engine = make_engine(url, base_dir=base_dir, busy_timeout=busy_timeout)
    if migrate:
        upgrade(engine)
    return State(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))
