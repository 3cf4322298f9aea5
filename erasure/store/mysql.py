"""MariaDB and MySQL (PyMySQL): exact matching on top of case-, accent- and space-insensitive collations.

Its own module because this family needs the most help to be exact and fast:
every id is compared twice (through the index, then as utf8mb4 bytes), parents
are resolved to keys first, children are deleted through a multi-table join,
and batches are bounded by the server's packet size rather than a count.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from erasure.config import StoreSettings
from erasure.store.dialect import Dialect, batches
from erasure.store.plan import Node, join_conditions


class _Utf8mb4Bytes(FunctionElement[str]):
    """``CAST(CONVERT(col USING utf8mb4) AS BINARY)``: the id's exact bytes, whatever the column's charset."""

    name = "utf8mb4_bytes"
    inherit_cache = True
    type = sa.String()


@compiles(_Utf8mb4Bytes)
def _compile_utf8mb4_bytes(element: _Utf8mb4Bytes, compiler: Any, **kw: Any) -> str:
    return f"CAST(CONVERT({compiler.process(element.clauses, **kw)} USING utf8mb4) AS BINARY)"


class MySQLDialect(Dialect):
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

    def loose_pred(self, root: Node, envs: list[str], ids: list[str]) -> ColumnElement[bool] | None:
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

    def delete_below(self, node: Node, top: Node, top_pred: ColumnElement[bool]) -> sa.Delete:
        return sa.delete(node.table).where(*join_conditions(node, top), top_pred)

    def delete_chunk(self, node: Node, pred: ColumnElement[bool], limit: int) -> sa.Delete:
        return sa.delete(node.table).where(pred).with_dialect_options(mysql_limit=limit)

    # Lock wait, deadlock, statement time limits, too many connections, query
    # interrupted, server gone; 2000+ are client-side connection errors.
    TEMPORARY: ClassVar[frozenset[int]] = frozenset({1040, 1205, 1213, 1317, 1969, 3024, 2002, 2003, 2006, 2013})

    def is_temporary(self, exc: sa_exc.DBAPIError) -> bool:
        code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
        return bool(exc.connection_invalidated) or code in self.TEMPORARY or (isinstance(code, int) and 2000 <= code < 3000)
