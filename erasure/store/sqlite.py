"""SQLite, the embedded default: how erasure gets exactness, lock waits and statement limits from it.

Its own module because SQLite differs from the servers in how a transaction
takes its lock (``BEGIN IMMEDIATE`` through engine events), in having no
statement timeout (a progress handler stands in), in a compiled-in parameter
limit, and in how a column's collation can make ``=`` case-insensitive.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from erasure.config import StoreSettings
from erasure.store.dialect import Dialect, batches
from erasure.store.plan import Node

# The busy timeout per engine, read by the "begin" hook; weak, so a disposed engine is forgotten.
_SQLITE_BUSY_MS: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()


def _sqlite_checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
    # Let SQLAlchemy's "begin" (below) decide how transactions start, instead
    # of pysqlite's implicit deferred BEGIN before the first write.
    dbapi_conn.isolation_level = None


def _sqlite_begin(conn: Connection) -> None:
    busy_ms = _SQLITE_BUSY_MS.get(conn.engine, 5000)
    conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(busy_ms)}")  # an int from the config, not a value from a request
    mode = "IMMEDIATE" if conn.get_execution_options().get("erasure_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


class SQLiteDialect(Dialect):
    """SQLite: the embedded default.

    * Writers take the database lock up front with ``BEGIN IMMEDIATE``: a
      deferred transaction that reads and then writes can fail at once with
      "database is locked" without ever waiting, which would turn ordinary
      contention into a spurious failure. The busy timeout (``PRAGMA
      busy_timeout`` = ``lock_timeout_seconds``) makes that first lock wait.
    * SQLite has no statement timeout; a progress handler interrupts a
      statement that runs past ``statement_timeout_seconds``.
    * Ids are compared with ``COLLATE BINARY`` so that a column declared
      ``COLLATE NOCASE`` cannot turn a request into a case-insensitive match;
      on the usual BINARY column the explicit collation still uses the index.
    * Parameters per statement stay under the library's compiled-in
      ``SQLITE_LIMIT_VARIABLE_NUMBER`` (read at run time, 999 on old builds).
    """

    name = "sqlite"
    MAX_BATCH = 30_000

    def install(self, engine: Engine, settings: StoreSettings) -> None:
        # Several ViewStores may share one engine (the demo does): hook it once,
        # or every transaction would be begun twice; the latest timeout wins.
        first = engine not in _SQLITE_BUSY_MS
        _SQLITE_BUSY_MS[engine] = max(0, settings.lock_timeout_seconds) * 1000
        if first:
            event.listen(engine, "checkout", _sqlite_checkout)
            event.listen(engine, "begin", _sqlite_begin)

    def prepare(self, conn: Connection, settings: StoreSettings) -> None:
        limit = settings.statement_timeout_seconds
        if limit <= 0:
            return
        deadline = time.monotonic() + limit
        conn.connection.driver_connection.set_progress_handler(  # type: ignore[union-attr]
            lambda: 1 if time.monotonic() > deadline else 0, 100_000
        )

    def release(self, conn: Connection) -> None:
        import sqlite3

        try:
            conn.connection.driver_connection.set_progress_handler(None, 0)  # type: ignore[union-attr]
        except (AttributeError, sqlite3.Error):  # the connection is already gone: nothing left to undo
            pass

    def id_batches(self, conn: Connection, values: Sequence[Any], fixed_params: int) -> Iterator[list[Any]]:
        import sqlite3

        try:
            limit = conn.connection.driver_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # type: ignore[union-attr]
        except AttributeError:  # Python < 3.11 or another driver: the historic minimum
            limit = 999
        return batches(values, max(1, min(self.MAX_BATCH, limit - fixed_params - 8)))

    def exact_in(self, col: sa.ColumnClause[Any], values: list[str]) -> ColumnElement[bool]:
        return col.collate("BINARY").in_(values)

    def exact_text(self, col: sa.ColumnClause[Any]) -> ColumnElement[Any]:
        return col.collate("BINARY")

    def delete_chunk(self, node: Node, pred: ColumnElement[bool], limit: int) -> sa.Delete:
        rowid: sa.ColumnClause[Any] = sa.column("rowid", _selectable=node.table)
        return sa.delete(node.table).where(rowid.in_(sa.select(rowid).where(pred).limit(limit).correlate(None)))

    def is_temporary(self, exc: sa_exc.DBAPIError) -> bool:
        text = str(exc.orig).lower()
        return bool(exc.connection_invalidated) or (
            isinstance(exc, sa_exc.OperationalError)
            and any(s in text for s in ("locked", "busy", "interrupted", "unable to open", "disk i/o"))
        )
