"""The view store: tenant-scoped, exact, atomic deletion of a viewer's views.

This is the module that actually removes people's data, so it is built around
four promises, each enforced here rather than left to callers:

* **Exact.** A viewer id matches only the identical string: never a pattern,
  never a case or accent variant, never the same id with trailing spaces. Values
  always travel as bound parameters; identifiers come only from the
  configuration and are quoted by SQLAlchemy.
* **Scoped.** Every statement that touches a viewer-keyed table also requires
  the row's tenant column to be one of the requester's environments. Child
  tables are reached only through their parent's matched rows.
* **Atomic and verified.** One request is one store transaction: children are
  deleted before parents, then the matched rows are counted again inside the
  same transaction; anything left means the transaction rolls back and the
  request goes to review (:class:`StoreVerificationError`).
* **Set-based.** Statements delete by predicate in batches; rows are never
  loaded into Python one by one (on MariaDB/MySQL one SELECT per batch fetches
  the matched parents' keys, so the statements after it go by key).

What differs between SQLite, PostgreSQL and MariaDB/MySQL (batch limits, how
exactness is obtained, how lock and statement timeouts are set, how a child
delete is written so the server uses its indexes) lives in one small
``_Dialect`` subclass per family; everything else is shared.
"""

from __future__ import annotations

import difflib
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Self

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from erasure.config import Config, StoreSettings, StoreTable, read_secret
from erasure.errors import ErasureError, StoreError, StoreUnavailableError, StoreVerificationError

__all__ = [
    "ErasureResult",
    "StoreVerificationError",
    "Target",
    "ViewStore",
    "batches",
    "unique_in_order",
]


@dataclass(frozen=True)
class Target:
    """One request's deletion target: these viewer ids, in these environments only."""

    key: str
    environments: tuple[str, ...]
    viewer_ids: tuple[str, ...]


@dataclass(frozen=True)
class ErasureResult:
    """Rows deleted (or, on a dry run, that would be) per configured table: the evidence for the audit trail."""

    key: str
    counts: dict[str, int]
    dry_run: bool

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# ---------------------------------------------------------------- pure helpers


def unique_in_order(values: Iterable[str]) -> list[str]:
    """Drop exact duplicates, keeping first occurrences (case variants stay distinct)."""
    return list(dict.fromkeys(values))


def batches(values: Sequence[Any], max_count: int, max_bytes: int | None = None) -> Iterator[list[Any]]:
    """Split ``values`` into consecutive batches of at most ``max_count`` items.

    ``max_bytes`` additionally bounds the encoded size of a batch, for drivers
    (PyMySQL) that inline parameters into the statement text, where the limit
    is the server's ``max_allowed_packet`` rather than a parameter count.
    """
    if max_count < 1:
        raise ValueError("max_count must be at least 1")
    if max_bytes is None:
        for start in range(0, len(values), max_count):
            yield list(values[start : start + max_count])
        return
    batch: list[Any] = []
    size = 0
    for value in values:
        cost = len(str(value).encode("utf-8")) + 8
        if batch and (len(batch) >= max_count or size + cost > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(value)
        size += cost
    if batch:
        yield batch


def _validated(target: Target) -> tuple[list[str], list[str]]:
    """The target's environments and distinct ids, or a StoreError saying what is wrong.

    Refusing here, before any SQL, is what keeps an empty scope from ever
    becoming an unscoped delete.
    """
    envs = unique_in_order(target.environments)
    if not envs:
        raise StoreError(f"request {target.key}: no environments to scope the deletion to; configure the tenant's environments")
    ids = unique_in_order(target.viewer_ids)
    for value in [*envs, *ids]:
        if not isinstance(value, str) or value == "":
            raise StoreError(f"request {target.key}: viewer ids and environments must be non-empty strings, got {value!r}; send the request to review")
        if "\x00" in value:
            raise StoreError(f"request {target.key}: an id contains a NUL character, which no store can hold; send the request to review")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise StoreError(f"request {target.key}: an id is not valid Unicode text ({value!r}); send the request to review") from None
    return envs, ids


# ---------------------------------------------------------------- table plan


@dataclass
class _Node:
    """One configured table, its reflected columns and its place in the parent tree."""

    index: int
    config: StoreTable
    table: sa.TableClause
    parent: _Node | None = None
    children: list[_Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1

    def col(self, name: str | None) -> sa.ColumnClause[Any]:
        assert name is not None
        return self.table.c[name]

    def descendants(self) -> list[_Node]:
        """Every table below this one, deepest first: the order deletes must run in."""
        out: list[_Node] = []
        stack = list(self.children)
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(node.children)
        return sorted(out, key=lambda n: -n.depth)


@dataclass
class _Plan:
    nodes: list[_Node]
    warnings: list[str]

    @property
    def roots(self) -> list[_Node]:
        return [n for n in self.nodes if n.parent is None]

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def zero(self) -> dict[str, int]:
        return {n.name: 0 for n in self.nodes}


def _belongs(node: _Node, top: _Node, top_pred: ColumnElement[bool]) -> ColumnElement[bool]:
    """Predicate on ``node``: its row hangs (through parent keys) off a ``top`` row matching ``top_pred``.

    Written as nested ``IN (SELECT key ...)`` subqueries: SQLite probes the
    child's ``parent_key`` index per subquery value and PostgreSQL plans a
    semi-join. Keys are compared with the store's own equality, which is the
    same equality its primary keys are unique under.
    """
    if node is top:
        return top_pred
    assert node.parent is not None
    parent = node.parent
    keys = sa.select(parent.col(parent.config.key)).where(_belongs(parent, top, top_pred)).correlate(None)
    return node.col(node.config.parent_key).in_(keys)


def _join_conditions(node: _Node, top: _Node) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    n = node
    while n is not top:
        assert n.parent is not None
        conds.append(n.col(n.config.parent_key) == n.parent.col(n.parent.config.key))
        n = n.parent
    return conds


# ---------------------------------------------------------------- dialects


class _Dialect:
    """What one database family does differently; the shared algorithm lives in ViewStore."""

    name = "generic"
    resolve_keys_first = False

    def loose_pred(self, root: _Node, envs: list[str], ids: list[str]) -> ColumnElement[bool] | None:
        """A cheaper predicate matching a superset of the exact one, if the dialect has such a thing."""
        return None

    def install(self, engine: Engine, settings: StoreSettings) -> None:
        """Hook engine events (once per engine)."""

    def prepare(self, conn: Connection, settings: StoreSettings) -> None:
        """Set lock and statement timeouts for the transaction that just began."""

    def release(self, conn: Connection) -> None:
        """Undo per-transaction connection state that would outlive the transaction."""

    def id_batches(self, conn: Connection, values: Sequence[Any], fixed_params: int) -> Iterator[list[Any]]:
        raise NotImplementedError

    def exact_in(self, col: sa.ColumnClause[Any], values: list[str]) -> ColumnElement[bool]:
        raise NotImplementedError

    def exact_text(self, col: sa.ColumnClause[Any]) -> ColumnElement[Any]:
        """The column as its exact text, so DISTINCT and GROUP BY never merge case or space variants."""
        return col

    def key_in(self, col: sa.ColumnClause[Any], values: list[Any]) -> ColumnElement[bool]:
        """Native equality on keys (purge chunks, MySQL erasure by key); batches keep it under the parameter limit."""
        return col.in_(values)

    def delete_below(self, node: _Node, top: _Node, top_pred: ColumnElement[bool]) -> sa.Delete:
        return sa.delete(node.table).where(_belongs(node, top, top_pred))

    def delete_chunk(self, node: _Node, pred: ColumnElement[bool], limit: int) -> sa.Delete:
        raise NotImplementedError

    def is_temporary(self, exc: sa_exc.DBAPIError) -> bool:
        return bool(exc.connection_invalidated) or isinstance(exc, sa_exc.OperationalError)

    def schema_problems(self, conn: Connection, node: _Node, columns: list[str]) -> list[str]:
        """Dialect-specific reasons exact matching cannot be guaranteed on these columns."""
        return []


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


class _SQLite(_Dialect):
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

    def delete_chunk(self, node: _Node, pred: ColumnElement[bool], limit: int) -> sa.Delete:
        rowid: sa.ColumnClause[Any] = sa.column("rowid", _selectable=node.table)
        return sa.delete(node.table).where(rowid.in_(sa.select(rowid).where(pred).limit(limit).correlate(None)))

    def is_temporary(self, exc: sa_exc.DBAPIError) -> bool:
        text = str(exc.orig).lower()
        return bool(exc.connection_invalidated) or (
            isinstance(exc, sa_exc.OperationalError)
            and any(s in text for s in ("locked", "busy", "interrupted", "unable to open", "disk i/o"))
        )


class _PostgreSQL(_Dialect):
    """PostgreSQL (psycopg 3).

    * Ids go as one array parameter, ``col = ANY(:ids)``: a single bound value
      regardless of how many ids, so the 65535-parameter limit of the wire
      protocol never applies and the statement text stays constant.
    * ``SET LOCAL`` semantics via ``set_config(..., true)``: lock and
      statement timeouts last exactly as long as the transaction, so pooled
      connections go back unchanged.
    * Equality under PostgreSQL's deterministic collations is byte equality,
      hence exact; ``erasure init`` refuses columns with a nondeterministic
      (e.g. case-insensitive ICU) collation.
    """

    name = "postgresql"
    MAX_BATCH = 100_000

    def prepare(self, conn: Connection, settings: StoreSettings) -> None:
        conn.execute(
            sa.select(
                sa.func.set_config("lock_timeout", _pg_interval(settings.lock_timeout_seconds, zero_means_no_wait=True), True),
                sa.func.set_config("statement_timeout", _pg_interval(settings.statement_timeout_seconds), True),
            )
        )

    def id_batches(self, conn: Connection, values: Sequence[Any], fixed_params: int) -> Iterator[list[Any]]:
        return batches(values, self.MAX_BATCH)

    def exact_in(self, col: sa.ColumnClause[Any], values: list[str]) -> ColumnElement[bool]:
        return col == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(sa.Text())))

    def key_in(self, col: sa.ColumnClause[Any], values: list[Any]) -> ColumnElement[bool]:
        # Keys may be of any type; an expanding IN lets the driver type each value.
        return col.in_(values)

    def delete_chunk(self, node: _Node, pred: ColumnElement[bool], limit: int) -> sa.Delete:
        ctid: sa.ColumnClause[Any] = sa.column("ctid", _selectable=node.table)
        return sa.delete(node.table).where(ctid == sa.any_(sa.func.array(sa.select(ctid).where(pred).limit(limit).correlate(None).scalar_subquery())))

    def schema_problems(self, conn: Connection, node: _Node, columns: list[str]) -> list[str]:
        rows = conn.execute(
            sa.text(
                "SELECT a.attname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation "
                "WHERE a.attrelid = to_regclass(:t) AND a.attname = ANY(:cols) AND NOT c.collisdeterministic"
            ),
            {"t": _pg_quote(node.name), "cols": columns},
        ).scalars().all()
        return [f"column {node.name}.{c} uses a nondeterministic collation, so '=' is not exact; give it a deterministic collation" for c in rows]


def _pg_interval(seconds: int, *, zero_means_no_wait: bool = False) -> str:
    # PostgreSQL reads 0 as "no limit"; a lock timeout of 0 in our config means
    # "do not wait", which is the shortest positive value.
    if seconds > 0:
        return f"{int(seconds)}s"
    return "1ms" if zero_means_no_wait else "0"


def _pg_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Utf8mb4Bytes(FunctionElement[str]):
    """``CAST(CONVERT(col USING utf8mb4) AS BINARY)``: the id's exact bytes, whatever the column's charset."""

    name = "utf8mb4_bytes"
    inherit_cache = True
    type = sa.String()


@compiles(_Utf8mb4Bytes)
def _compile_utf8mb4_bytes(element: _Utf8mb4Bytes, compiler: Any, **kw: Any) -> str:
    return f"CAST(CONVERT({compiler.process(element.clauses, **kw)} USING utf8mb4) AS BINARY)"


class _MySQL(_Dialect):
    """MariaDB and MySQL (PyMySQL).

    * Their default collations are case- and accent-insensitive and PAD SPACE
      (``'abc' = 'ABC ' = 'àbc'``). Each id and environment is therefore matched
      twice: ``col IN (...)`` lets the server use the (environment, viewer)
      index to find candidates, and ``CAST(CONVERT(col USING utf8mb4) AS
      BINARY) IN (...)`` keeps only the byte-identical ones. Binary strings
      compare without padding, so trailing spaces count. The connection
      charset is forced to utf8mb4 so parameters arrive as the same bytes.
    * Single-table ``DELETE ... WHERE k IN (SELECT ...)`` is not turned into a
      semi-join by MariaDB before 11.1 / MySQL before 8.0.21 and scans the
      whole child table; children are deleted with a multi-table
      ``DELETE child FROM child, parent WHERE ...`` join instead, which uses
      the parent_key index.
    * PyMySQL inlines parameters client-side, so the limit is the statement
      size (``max_allowed_packet``), not a parameter count: batches are
      bounded by bytes as well as by number.
    * ``innodb_lock_wait_timeout`` bounds row-lock waits (at least 1 s: the
      server's minimum, so a lock timeout of 0 waits one second); MariaDB's
      ``max_statement_time`` (MySQL: ``max_execution_time``, SELECT only)
      bounds statements. Both are session variables, set at each transaction.
    """

    name = "mysql"
    MAX_BATCH = 5_000
    # Sending ids costs (PyMySQL escapes each one, twice per exact predicate):
    # the matched parents are selected FOR UPDATE once per batch and the rest
    # of the work goes by their keys, and the recount first tries the
    # index-only (collation-loose) predicate, whose zero proves the exact zero.
    resolve_keys_first = True

    def loose_pred(self, root: _Node, envs: list[str], ids: list[str]) -> ColumnElement[bool] | None:
        return sa.and_(root.col(root.config.tenant_column).in_(envs), root.col(root.config.viewer_column).in_(ids))

    def __init__(self) -> None:
        self._packet: int | None = None

    def prepare(self, conn: Connection, settings: StoreSettings) -> None:
        conn.execute(sa.text("SET SESSION innodb_lock_wait_timeout = :n"), {"n": max(1, settings.lock_timeout_seconds)})
        # is_mariadb is known only once the dialect has seen a server.
        if getattr(conn.dialect, "is_mariadb", False):
            conn.execute(sa.text("SET SESSION max_statement_time = :n"), {"n": max(0, settings.statement_timeout_seconds)})
        else:
            conn.execute(sa.text("SET SESSION max_execution_time = :n"), {"n": max(0, settings.statement_timeout_seconds) * 1000})

    def id_batches(self, conn: Connection, values: Sequence[Any], fixed_params: int) -> Iterator[list[Any]]:
        if self._packet is None:
            self._packet = int(conn.execute(sa.text("SELECT @@max_allowed_packet")).scalar_one())
        # Each id appears twice (index + binary check); keep a wide margin for the rest.
        return batches(values, self.MAX_BATCH, max_bytes=self._packet // 8)

    def exact_in(self, col: sa.ColumnClause[Any], values: list[str]) -> ColumnElement[bool]:
        return sa.and_(col.in_(values), _Utf8mb4Bytes(col).in_(values))

    def exact_text(self, col: sa.ColumnClause[Any]) -> ColumnElement[Any]:
        return _Utf8mb4Bytes(col)

    def delete_below(self, node: _Node, top: _Node, top_pred: ColumnElement[bool]) -> sa.Delete:
        return sa.delete(node.table).where(*_join_conditions(node, top), top_pred)

    def delete_chunk(self, node: _Node, pred: ColumnElement[bool], limit: int) -> sa.Delete:
        return sa.delete(node.table).where(pred).with_dialect_options(mysql_limit=limit)

    # Lock wait, deadlock, statement time limits, too many connections, query
    # interrupted, server gone; 2000+ are client-side connection errors.
    TEMPORARY: ClassVar[frozenset[int]] = frozenset({1040, 1205, 1213, 1317, 1969, 3024, 2002, 2003, 2006, 2013})

    def is_temporary(self, exc: sa_exc.DBAPIError) -> bool:
        code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
        return bool(exc.connection_invalidated) or code in self.TEMPORARY or (isinstance(code, int) and 2000 <= code < 3000)


def _dialect_for(engine: Engine) -> _Dialect:
    name = engine.dialect.name
    if name == "sqlite":
        return _SQLite()
    if name == "postgresql":
        return _PostgreSQL()
    if name in ("mysql", "mariadb"):
        return _MySQL()
    raise StoreError(f"store.url uses {name!r}, which the view store does not support; use sqlite, postgresql+psycopg or mysql+pymysql")


# ---------------------------------------------------------------- the store


class ViewStore:
    """The configured view store: count, erase and purge, one transaction at a time.

    The schema is reflected once, on first use, so that a configuration that
    does not match the database fails with a message naming the key to fix
    rather than with SQL errors in the middle of an erasure.
    """

    @classmethod
    def from_config(cls, config: Config) -> ViewStore:
        """The configured view store, a relative SQLite path taken from the config file's folder."""
        from erasure.state import resolve_sqlite_url

        return cls(dataclasses.replace(config.store, url=resolve_sqlite_url(config.store.url, config.base_dir)))

    def __init__(self, settings: StoreSettings, *, engine: Engine | None = None) -> None:
        self.settings = settings
        self._owns_engine = engine is None
        self._engine = engine if engine is not None else _create_engine(settings)
        self._safe_url = self._engine.url.render_as_string(hide_password=True)
        self._dialect = _dialect_for(self._engine)
        self._dialect.install(self._engine, settings)
        self._plan_cache: _Plan | None = None

    # -- lifecycle

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def table_names(self) -> list[str]:
        """The configured tables, in configuration order (the keys of every result's counts)."""
        return [t.name for t in self.settings.tables]

    def close(self) -> None:
        """Release pooled connections (only those of an engine this store created)."""
        if self._owns_engine:
            self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema

    def check_schema(self) -> list[str]:
        """Reflect the real schema against ``[[store.tables]]``; returns warnings about missing indexes.

        Raises StoreError naming the missing table or column and the config key
        that refers to it. ``erasure init`` calls this; every other method runs
        it once before its first statement.
        """
        self._plan_cache = None
        return list(self._plan().warnings)

    def _plan(self) -> _Plan:
        if self._plan_cache is None:
            self._plan_cache = self._reflect()
        return self._plan_cache

    def _reflect(self) -> _Plan:
        tables = self.settings.tables
        if not tables:
            raise StoreError("no [[store.tables]] configured; describe at least the table holding views (see config.example.toml)")
        # The tree itself (names once, parents with keys, no loops) was checked
        # when the configuration was loaded, where the key path is known.
        self._check_sqlite_file()
        notes: list[str] = []
        with self._transaction(write=False) as conn:
            insp = sa.inspect(conn)
            present = insp.get_table_names()
            nodes: list[_Node] = []
            for i, cfg in enumerate(tables):
                where = f"store.tables[{i}]"
                if cfg.name not in present:
                    close = difflib.get_close_matches(cfg.name, present, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else f"; tables present: {', '.join(sorted(present)) or 'none'}"
                    raise StoreError(f"view store {self._safe_url} has no table {cfg.name!r} ({where}.name){hint}")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", sa_exc.SAWarning)  # exotic types elsewhere in the table are not our concern
                    columns = {c["name"]: c["type"] for c in insp.get_columns(cfg.name)}
                wanted = [("viewer_column", cfg.viewer_column), ("tenant_column", cfg.tenant_column), ("key", cfg.key),
                          ("time_column", cfg.time_column), ("parent_key", cfg.parent_key)]
                for key, col in wanted:
                    if col is not None and col not in columns:
                        close = difflib.get_close_matches(col, list(columns), n=1)
                        hint = f"; did you mean {close[0]!r}?" if close else f"; columns: {', '.join(columns)}"
                        raise StoreError(f"table {cfg.name!r} has no column {col!r} ({where}.{key}){hint}")
                for key, col in wanted[:2]:
                    if col is not None and not isinstance(columns[col], sa.String):
                        raise StoreError(
                            f"{where}.{key} = {col!r} is a {columns[col]} column; viewer ids and environments are text, "
                            "matched exactly as strings — name a text column"
                        )
                    if col is not None and isinstance(columns[col], sa.CHAR) and self._dialect.name != "sqlite":
                        notes.append(
                            f"table {cfg.name!r}: {col} is a fixed-width CHAR column, which drops trailing spaces; "
                            "ids that differ only in trailing spaces cannot be told apart (VARCHAR/TEXT keeps them)"
                        )
                if cfg.time_column is not None and not isinstance(columns[cfg.time_column], (sa.DateTime, sa.Date)):
                    raise StoreError(
                        f"{where}.time_column = {cfg.time_column!r} is a {columns[cfg.time_column]} column, not a date/time; "
                        "the retention purge compares it with a timestamp — name a DATETIME/TIMESTAMP column"
                    )
                used = [c for _, c in wanted if c is not None]
                table = sa.table(cfg.name, *[sa.column(c, columns[c]) for c in dict.fromkeys(used)])
                nodes.append(_Node(index=i, config=cfg, table=table))
                indexes, unique = _table_indexes(insp, cfg.name)
                notes.extend(_index_warnings(cfg, indexes))
                if cfg.key and any(t.parent == cfg.name for t in tables) and [cfg.key] not in unique:
                    # Children are found through this key; were it shared by two
                    # rows (say, of two tenants), one request would reach both.
                    raise StoreError(
                        f"{where}.key = {cfg.key!r} is neither the primary key nor a unique column of {cfg.name!r}; "
                        "child tables are reached through it, so it must identify one row — make it unique or name the right column"
                    )
            by_name = {n.name: n for n in nodes}
            for node in nodes:
                if node.config.parent is not None:
                    node.parent = by_name[node.config.parent]
                    node.parent.children.append(node)
            for node in nodes:
                exact_cols = [c for c in (node.config.viewer_column, node.config.tenant_column) if c]
                problems = self._dialect.schema_problems(conn, node, exact_cols) if exact_cols else []
                if problems:
                    raise StoreError(f"store.tables[{node.index}]: " + "; ".join(problems))
        return _Plan(nodes=nodes, warnings=notes)

    def _check_sqlite_file(self) -> None:
        """A missing SQLite file is a wrong store.url, not an empty store: say so instead of creating one."""
        url = self._engine.url
        db = url.database
        if url.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
            return
        if not Path(db).exists():
            raise StoreError(f"store.url points to {db}, which does not exist; fix store.url (a relative SQLite path in the config starts at the config file's folder)")

    # -- reading ids

    def distinct_viewer_ids(self, environments: Sequence[str], *, chunk: int = 5000) -> Iterator[str]:
        """Every distinct viewer id in these environments, root table by root table, streamed.

        A server-side cursor (psycopg named cursor, PyMySQL SSCursor; SQLite
        steps lazily anyway) fetches ``chunk`` rows at a time, so memory stays
        bounded however many viewers there are. Ids are read as their exact
        text and environments matched exactly, as erasure matches them; an id
        present in two root tables is yielded once per table.
        """
        envs = list(dict.fromkeys(environments))
        if not envs:
            return
        for root in self._plan().roots:
            viewer = self._dialect.exact_text(root.col(root.config.viewer_column))
            stmt = sa.select(viewer).distinct().where(self._dialect.exact_in(root.col(root.config.tenant_column), envs))
            try:
                with self._engine.connect() as conn:
                    result = conn.execution_options(stream_results=True, yield_per=chunk).execute(stmt)
                    for value in result.scalars():
                        if value is not None:
                            yield bytes(value).decode("utf-8") if isinstance(value, (bytes, bytearray, memoryview)) else str(value)
            except sa_exc.DBAPIError as exc:
                raise self._wrap(exc) from exc

    # -- erasure

    def count(self, target: Target) -> ErasureResult:
        """How many rows per table an erasure of ``target`` would delete (deletes nothing)."""
        envs, ids = _validated(target)
        plan = self._plan()
        with self._transaction(write=False) as conn:
            counts = self._count_in(conn, plan, envs, ids)
        return ErasureResult(key=target.key, counts=counts, dry_run=True)

    def erase(self, target: Target) -> ErasureResult:
        """Delete every row of ``target`` in one transaction; the counts are the evidence.

        Raises StoreVerificationError if rows still match after deleting (rolled
        back: send the request to review) and StoreUnavailableError when a lock
        or the server was not available in time (rolled back: retry later).
        Running it again after a crash deletes whatever is left. A dry run
        calls :meth:`count` instead.
        """
        envs, ids = _validated(target)
        plan = self._plan()
        with self._transaction(write=True) as conn:
            counts = self._erase_in(conn, plan, target.key, envs, ids)
        return ErasureResult(key=target.key, counts=counts, dry_run=False)

    def erase_many(self, targets: Sequence[Target]) -> list[ErasureResult | ErasureError]:
        """Erase several requests in one transaction (group commit), falling back to one at a time.

        Committing once for many small requests saves a disk flush each. If
        anything in the group fails, the whole group rolls back and every target
        is retried alone, so one bad request cannot hold the others hostage or
        leave them half done. Results come back in the order of ``targets``.
        """
        if not targets:
            return []
        if len(targets) > 1:
            try:
                checked = [(t, *_validated(t)) for t in targets]
                plan = self._plan()
                with self._transaction(write=True) as conn:
                    results = [
                        ErasureResult(key=t.key, counts=self._erase_in(conn, plan, t.key, envs, ids), dry_run=False)
                        for t, envs, ids in checked
                    ]
                return list(results)
            except ErasureError:
                pass  # rolled back; each target is retried below and reports its own error
        out: list[ErasureResult | ErasureError] = []
        for target in targets:
            try:
                out.append(self.erase(target))
            except ErasureError as exc:
                out.append(exc)
        return out

    def _root_pred(self, root: _Node, envs: list[str], ids: list[str]) -> ColumnElement[bool]:
        d = self._dialect
        return sa.and_(d.exact_in(root.col(root.config.tenant_column), envs), d.exact_in(root.col(root.config.viewer_column), ids))

    def _count(self, conn: Connection, node: _Node, pred: ColumnElement[bool]) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(node.table).where(pred)).scalar_one())

    def _count_in(self, conn: Connection, plan: _Plan, envs: list[str], ids: list[str]) -> dict[str, int]:
        counts = plan.zero()
        for root in plan.roots:
            for batch in self._dialect.id_batches(conn, ids, len(envs)):
                pred = self._root_pred(root, envs, batch)
                counts[root.name] += self._count(conn, root, pred)
                for node in root.descendants():
                    counts[node.name] += self._count(conn, node, _belongs(node, root, pred))
        return counts

    def _erase_in(self, conn: Connection, plan: _Plan, key: str, envs: list[str], ids: list[str]) -> dict[str, int]:
        counts = plan.zero()
        d = self._dialect
        for root in plan.roots:
            below = root.descendants()
            for batch in d.id_batches(conn, ids, len(envs)):
                pred = self._root_pred(root, envs, batch)
                if d.resolve_keys_first and below:
                    # Lock the matched parents and learn their keys once; every
                    # later statement is then a key lookup (see _MySQL).
                    keycol = root.col(root.config.key)
                    keys = conn.execute(sa.select(keycol).where(pred).with_for_update()).scalars().all()
                    scope = d.exact_in(root.col(root.config.tenant_column), envs)  # kept on every statement, as everywhere
                    for kbatch in d.id_batches(conn, keys, len(envs)):
                        self._delete_family(conn, root, below, sa.and_(d.key_in(keycol, kbatch), scope), counts, key)
                else:
                    self._delete_family(conn, root, below, pred, counts, key)
        # Recount every root only after all of them are done, so rows that one
        # deletion caused to appear in another table are caught as well.
        for root in plan.roots:
            for batch in d.id_batches(conn, ids, len(envs)):
                left = self._count_left(conn, root, envs, batch)
                if left:
                    raise StoreVerificationError(
                        f"request {key}: {left} row(s) of {root.name!r} still matched after deleting; "
                        "the erasure was rolled back — review the request (rows may be arriving concurrently)"
                    )
        return counts

    def _delete_family(self, conn: Connection, root: _Node, below: list[_Node], pred: ColumnElement[bool],
                       counts: dict[str, int], key: str) -> None:
        """Delete the root rows matching ``pred`` and everything below them, deepest first."""
        d = self._dialect
        for node in below:
            counts[node.name] += _rowcount(conn.execute(d.delete_below(node, root, pred)), node.name)
        # Children are checked while their parents still exist: once the
        # parents are gone, a child left behind could no longer be found.
        for node in below:
            left = self._count(conn, node, _belongs(node, root, pred))
            if left:
                raise StoreVerificationError(
                    f"request {key}: {left} row(s) of {node.name!r} still matched after deleting; "
                    "the erasure was rolled back — review the request (rows may be arriving concurrently)"
                )
        counts[root.name] += _rowcount(conn.execute(sa.delete(root.table).where(pred)), root.name)

    def _count_left(self, conn: Connection, root: _Node, envs: list[str], batch: list[str]) -> int:
        """Rows of ``root`` still matching exactly; a cheaper superset check first where the dialect has one."""
        loose = self._dialect.loose_pred(root, envs, batch)
        if loose is not None and self._count(conn, root, loose) == 0:
            return 0
        return self._count(conn, root, self._root_pred(root, envs, batch))

    # -- retention

    def purge_older_than(
        self,
        cutoff: datetime,
        *,
        chunk_size: int = 10_000,
        dry_run: bool = False,
        progress: Callable[[str, int], None] | None = None,
    ) -> dict[str, int]:
        """Delete rows older than ``cutoff`` in every table with a ``time_column``, chunk by chunk.

        A row goes when its own time is before the cutoff or when it belongs to
        a parent that does (events of an old view go with the view even if
        they are a little younger). Each chunk is its own short transaction, so
        the purge never holds locks for long and can be interrupted and re-run;
        ``progress(table, rows_deleted_so_far)`` is called after each chunk.
        If a chunk fails, the error raised carries ``partial_counts``: what the
        committed chunks deleted. Naive cutoffs are taken as UTC; time columns
        are compared in UTC.
        """
        if chunk_size < 1:
            raise StoreError("chunk_size must be at least 1")
        plan = self._plan()
        counts = plan.zero()
        try:
            return self._purge(plan, counts, cutoff, chunk_size=chunk_size, dry_run=dry_run, progress=progress)
        except ErasureError as exc:
            # Chunks already committed stay deleted; say how far it got so the
            # audit trail and the operator see it, then re-running finishes the job.
            exc.partial_counts = dict(counts)  # type: ignore[attr-defined]
            raise

    def _purge(self, plan: _Plan, counts: dict[str, int], cutoff: datetime, *, chunk_size: int, dry_run: bool,
               progress: Callable[[str, int], None] | None) -> dict[str, int]:
        origins = sorted((n for n in plan.nodes if n.config.time_column), key=lambda n: n.depth)
        if dry_run:
            with self._transaction(write=False) as conn:
                for node in plan.nodes:
                    conds = [_belongs(node, o, self._older(o, cutoff)) for o in origins if o is node or _is_below(node, o)]
                    if conds:
                        counts[node.name] = self._count(conn, node, sa.or_(*conds))
            return counts
        for origin in origins:
            while True:
                with self._transaction(write=True) as conn:
                    chunk = self._purge_chunk(conn, origin, cutoff, chunk_size)
                # Counted only once committed: a failed chunk deleted nothing.
                if chunk[origin.name] == 0:
                    break
                for name, n in chunk.items():
                    counts[name] += n
                if progress is not None:
                    progress(origin.name, counts[origin.name])
        return counts

    def _purge_chunk(self, conn: Connection, origin: _Node, cutoff: datetime, chunk_size: int) -> dict[str, int]:
        """Delete up to ``chunk_size`` old rows of ``origin`` and everything below them; rows deleted per table."""
        d = self._dialect
        old = self._older(origin, cutoff)
        below = origin.descendants()
        chunk = {origin.name: 0, **{n.name: 0 for n in below}}
        if not below:
            chunk[origin.name] = _rowcount(conn.execute(d.delete_chunk(origin, old, chunk_size)), origin.name)
            return chunk
        # Children need their parents' keys, so the chunk is picked by key first.
        keycol = origin.col(origin.config.key)
        keys = conn.execute(sa.select(keycol).where(old).limit(chunk_size)).scalars().all()
        for batch in d.id_batches(conn, keys, 1):
            kpred = d.key_in(keycol, batch)
            for node in below:
                chunk[node.name] += _rowcount(conn.execute(d.delete_below(node, origin, kpred)), node.name)
            chunk[origin.name] += _rowcount(conn.execute(sa.delete(origin.table).where(kpred, old)), origin.name)
        if keys and chunk[origin.name] == 0:  # looping again would pick the same rows forever
            raise StoreError(f"retention purge of {origin.name!r} selected rows it could not delete; check that {origin.name}.{origin.config.key} is unique")
        return chunk

    def _older(self, node: _Node, cutoff: datetime) -> ColumnElement[bool]:
        col = node.col(node.config.time_column)
        return col < _cutoff_for(col.type, cutoff)

    # -- plumbing

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        """One store transaction with its timeouts; driver errors become StoreError / StoreUnavailableError."""
        try:
            with self._engine.connect() as conn:
                conn = conn.execution_options(erasure_write=write)
                with conn.begin():
                    try:
                        self._dialect.prepare(conn, self.settings)
                        yield conn
                    finally:
                        self._dialect.release(conn)
        except sa_exc.DBAPIError as exc:
            raise self._wrap(exc) from exc

    def _wrap(self, exc: sa_exc.DBAPIError) -> StoreError:
        detail = " ".join(str(exc.orig).split())[:300] if exc.orig is not None else str(exc)
        if self._dialect.is_temporary(exc):
            return StoreUnavailableError(
                f"view store {self._safe_url} is busy or unreachable ({detail}); the transaction was rolled back, "
                f"nothing was deleted by this attempt — it is retried on the next run (if this persists, check the server, "
                f"store.lock_timeout_seconds = {self.settings.lock_timeout_seconds} and "
                f"store.statement_timeout_seconds = {self.settings.statement_timeout_seconds})"
            )
        return StoreError(
            f"view store {self._safe_url} refused the statement ({detail}); the transaction was rolled back — "
            "check [[store.tables]] against the database with `erasure init`"
        )


def _rowcount(result: sa.CursorResult[Any], table: str) -> int:
    n = result.rowcount
    if n is None or n < 0:
        raise StoreError(f"the driver did not report how many rows of {table!r} were deleted; counts are required as evidence, use a supported driver")
    return int(n)


def _is_below(node: _Node, ancestor: _Node) -> bool:
    n = node.parent
    while n is not None:
        if n is ancestor:
            return True
        n = n.parent
    return False


def _table_indexes(insp: Any, name: str) -> tuple[list[list[str | None]], list[list[str | None]]]:
    """(every index's columns, the unique ones' columns), primary key and unique constraints included."""
    indexes: list[list[str | None]] = []
    unique: list[list[str | None]] = []
    for ix in insp.get_indexes(name):
        cols = list(ix.get("column_names") or [])
        indexes.append(cols)
        if ix.get("unique"):
            unique.append(cols)
    pk = insp.get_pk_constraint(name).get("constrained_columns") or []
    if pk:
        indexes.append(list(pk))
        unique.append(list(pk))
    try:
        for u in insp.get_unique_constraints(name):
            indexes.append(list(u.get("column_names") or []))
            unique.append(list(u.get("column_names") or []))
    except NotImplementedError:  # pragma: no cover - every supported dialect implements it
        pass
    return indexes, unique


def _index_warnings(cfg: StoreTable, indexes: list[list[str | None]]) -> list[str]:
    """Warn when the columns erasure and purge filter on have no index that starts with them."""

    def starts_with(*options: tuple[str, ...]) -> bool:
        return any(tuple(ix[: len(opt)]) == opt for ix in indexes for opt in options)

    out: list[str] = []
    if cfg.viewer_column and cfg.tenant_column:
        v, t = cfg.viewer_column, cfg.tenant_column
        if not starts_with((t, v), (v,)):
            out.append(
                f"table {cfg.name!r}: no index starts with ({t}, {v}) or ({v}); every erasure will scan the whole table "
                f"— consider CREATE INDEX ix_{cfg.name}_{t}_{v} ON {cfg.name} ({t}, {v})"
            )
    if cfg.parent_key and not starts_with((cfg.parent_key,)):
        out.append(
            f"table {cfg.name!r}: no index starts with ({cfg.parent_key}); deleting its rows scans the whole table "
            f"— consider CREATE INDEX ix_{cfg.name}_{cfg.parent_key} ON {cfg.name} ({cfg.parent_key})"
        )
    if cfg.key and not starts_with((cfg.key,)):
        out.append(f"table {cfg.name!r}: no index or primary key on ({cfg.key}); child rows are found through it")
    if cfg.time_column and cfg.parent is None and not starts_with((cfg.time_column,)):
        out.append(f"table {cfg.name!r}: no index starts with ({cfg.time_column}); the retention purge will scan the whole table per chunk")
    return out


def _cutoff_for(column_type: Any, cutoff: datetime) -> datetime:
    """The cutoff as the column stores time: aware UTC for tz-aware columns, naive UTC otherwise."""
    utc = cutoff.replace(tzinfo=UTC) if cutoff.tzinfo is None else cutoff.astimezone(UTC)
    if getattr(column_type, "timezone", False):
        return utc
    return utc.replace(tzinfo=None)


def _create_engine(settings: StoreSettings) -> Engine:
    """An engine for store.url, with the password from store.password_env and utf8mb4 forced on MySQL."""
    try:
        url = make_url(settings.url)
    except sa_exc.ArgumentError as exc:
        raise StoreError(f"store.url = {settings.url!r} is not a SQLAlchemy URL ({exc}); e.g. sqlite:///views.db") from exc
    if settings.password_env:
        url = url.set(password=read_secret(settings.password_env, "store.password_env"))
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() in ("mysql", "mariadb"):
        # Exact matching compares utf8mb4 bytes; parameters must arrive in utf8mb4.
        url = url.update_query_dict({"charset": "utf8mb4"})
    if url.get_backend_name() != "sqlite":
        kwargs["pool_pre_ping"] = True
    try:
        return sa.create_engine(url, **kwargs)
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as exc:
        raise StoreError(
            f"cannot use store.url {url.render_as_string(hide_password=True)}: {exc}; "
            "use sqlite:///..., postgresql+psycopg://... or mysql+pymysql://... (install erasure[postgres] / erasure[mysql])"
        ) from exc
