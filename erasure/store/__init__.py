"""The view store: tenant-scoped, exact, atomic deletion of a viewer's views.

This is the package that actually removes people's data, so it is built around
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

This module is the boundary: what callers use (``ViewStore``, ``Target``,
``ErasureResult``) and the shared algorithm, plus the ``Dialect`` base that
says what a database family may do differently (batch limits, how exactness
is obtained, how lock and statement timeouts are set, how a child delete is
written so the server uses its indexes). Each family's subclass lives in its
own module — ``sqlite``, ``postgresql``, ``mysql`` — imported only when a
store of that family is opened. ``plan`` holds the table tree and the
predicates that reach child rows, ``schema`` the check against the real
schema, ``engine`` the URL and driver options.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from erasure.config import Config, StoreSettings
from erasure.errors import (
    ErasureError,
    StoreError,
    StoreUnavailableError,
    StoreVerificationError,
)
from erasure.store.dialect import Dialect, batches
from erasure.store.engine import check_sqlite_file, open_engine
from erasure.store.plan import Node, Plan, belongs, is_below
from erasure.store.schema import reflect

__all__ = [
    "Dialect",
    "ErasureResult",
    "StoreVerificationError",
    "Target",
    "ViewStore",
    "batches",
    "unique_in_order",
]


# ---------------------------------------------------------------- what callers pass and get back


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


def _dialect_for(engine: Engine) -> Dialect:
    """The strategy for the engine's database family; its module is imported only when such a store is opened."""
    name = engine.dialect.name
    if name == "sqlite":
        from erasure.store.sqlite import SQLiteDialect

        return SQLiteDialect()
    if name == "postgresql":
        from erasure.store.postgresql import PostgreSQLDialect

        return PostgreSQLDialect()
    if name in ("mysql", "mariadb"):
        from erasure.store.mysql import MySQLDialect

        return MySQLDialect()
    raise StoreError(f"store.url uses {name!r}, which the view store does not support; use sqlite, postgresql+psycopg or mysql+pymysql")


# ---------------------------------------------------------------- the store


class ViewStore:
    """The configured view store: count, erase and purge, one transaction at a time.

    The schema is reflected once, on first use, so that a configuration that
    does not match the database fails with a message naming the key to fix
    rather than with SQL errors in the middle of an erasure.
    """

    @classmethod
    def from_config(cls, config: Config, name: str | None = None) -> ViewStore:
        """The configured view store called ``name`` (may be left out when there is one), a relative
        SQLite path taken from the config file's folder. Callers that erase use ``Stores``: every store."""
        from erasure.state import resolve_sqlite_url

        if name is None and len(config.stores) != 1:
            raise StoreError(f"{len(config.stores)} view stores are configured; name one of "
                             f"{', '.join(s.name for s in config.stores)}")
        matching = [s for s in config.stores if name is None or s.name == name]
        if not matching:
            raise StoreError(f"no view store named {name!r}; configured: {', '.join(s.name for s in config.stores)}")
        return cls(dataclasses.replace(matching[0], url=resolve_sqlite_url(matching[0].url, config.base_dir)))

    def __init__(self, settings: StoreSettings, *, engine: Engine | None = None) -> None:
        self.settings = settings
        self._owns_engine = engine is None
        self._engine = engine if engine is not None else open_engine(settings)
        self._safe_url = self._engine.url.render_as_string(hide_password=True)
        self._dialect = _dialect_for(self._engine)
        self._dialect.install(self._engine, settings)
        self._plan_cache: Plan | None = None

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

    def _plan(self) -> Plan:
        if self._plan_cache is None:
            self._plan_cache = self._reflect()
        return self._plan_cache

    def _reflect(self) -> Plan:
        tables = self.settings.tables
        if not tables:
            raise StoreError("no [[store.tables]] configured; describe at least the table holding views (see config.example.toml)")
        # The tree itself (names once, parents with keys, no loops) was checked
        # when the configuration was loaded, where the key path is known.
        check_sqlite_file(self._engine.url)
        with self._transaction(write=False) as conn:
            return reflect(conn, tables, self._dialect, self._safe_url)

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

    def _root_pred(self, root: Node, envs: list[str], ids: list[str]) -> ColumnElement[bool]:
        d = self._dialect
        return sa.and_(d.exact_in(root.col(root.config.tenant_column), envs), d.exact_in(root.col(root.config.viewer_column), ids))

    def _count(self, conn: Connection, node: Node, pred: ColumnElement[bool]) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(node.table).where(pred)).scalar_one())

    def _count_in(self, conn: Connection, plan: Plan, envs: list[str], ids: list[str]) -> dict[str, int]:
        counts = plan.zero()
        for root in plan.roots:
            for batch in self._dialect.id_batches(conn, ids, len(envs)):
                pred = self._root_pred(root, envs, batch)
                counts[root.name] += self._count(conn, root, pred)
                for node in root.descendants():
                    counts[node.name] += self._count(conn, node, belongs(node, root, pred))
        return counts

    def _erase_in(self, conn: Connection, plan: Plan, key: str, envs: list[str], ids: list[str]) -> dict[str, int]:
        counts = plan.zero()
        d = self._dialect
        for root in plan.roots:
            below = root.descendants()
            for batch in d.id_batches(conn, ids, len(envs)):
                pred = self._root_pred(root, envs, batch)
                if d.resolve_keys_first and below:
                    # Lock the matched parents and learn their keys once; every
                    # later statement is then a key lookup (see erasure.store.mysql).
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

    def _delete_family(self, conn: Connection, root: Node, below: list[Node], pred: ColumnElement[bool],
                       counts: dict[str, int], key: str) -> None:
        """Delete the root rows matching ``pred`` and everything below them, deepest first."""
        d = self._dialect
        for node in below:
            counts[node.name] += _rowcount(conn.execute(d.delete_below(node, root, pred)), node.name)
        # Children are checked while their parents still exist: once the
        # parents are gone, a child left behind could no longer be found.
        for node in below:
            left = self._count(conn, node, belongs(node, root, pred))
            if left:
                raise StoreVerificationError(
                    f"request {key}: {left} row(s) of {node.name!r} still matched after deleting; "
                    "the erasure was rolled back — review the request (rows may be arriving concurrently)"
                )
        counts[root.name] += _rowcount(conn.execute(sa.delete(root.table).where(pred)), root.name)

    def _count_left(self, conn: Connection, root: Node, envs: list[str], batch: list[str]) -> int:
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

    def _purge(self, plan: Plan, counts: dict[str, int], cutoff: datetime, *, chunk_size: int, dry_run: bool,
               progress: Callable[[str, int], None] | None) -> dict[str, int]:
        origins = sorted((n for n in plan.nodes if n.config.time_column), key=lambda n: n.depth)
        if dry_run:
            with self._transaction(write=False) as conn:
                for node in plan.nodes:
                    conds = [belongs(node, o, self._older(o, cutoff)) for o in origins if o is node or is_below(node, o)]
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

    def _purge_chunk(self, conn: Connection, origin: Node, cutoff: datetime, chunk_size: int) -> dict[str, int]:
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

    def _older(self, node: Node, cutoff: datetime) -> ColumnElement[bool]:
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


def _cutoff_for(column_type: Any, cutoff: datetime) -> datetime:
    """The cutoff as the column stores time: aware UTC for tz-aware columns, naive UTC otherwise."""
    utc = cutoff.replace(tzinfo=UTC) if cutoff.tzinfo is None else cutoff.astimezone(UTC)
    if getattr(column_type, "timezone", False):
        return utc
    return utc.replace(tzinfo=None)
