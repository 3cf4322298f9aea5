"""PostgreSQL (psycopg 3): ids as one array parameter, transaction-scoped timeouts, collations checked.

Its own module because PostgreSQL's tricks are its own: ``= ANY(array)``
sidesteps the wire protocol's parameter limit, ``set_config(..., true)`` gives
timeouts that end with the transaction, ``ctid`` picks a purge chunk, and a
nondeterministic (ICU) collation is the one way ``=`` stops being exact there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from erasure.config import StoreSettings
from erasure.store.dialect import Dialect, batches
from erasure.store.plan import Node


class PostgreSQLDialect(Dialect):
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

    def delete_chunk(self, node: Node, pred: ColumnElement[bool], limit: int) -> sa.Delete:
        ctid: sa.ColumnClause[Any] = sa.column("ctid", _selectable=node.table)
        return sa.delete(node.table).where(ctid == sa.any_(sa.func.array(sa.select(ctid).where(pred).limit(limit).correlate(None).scalar_subquery())))

    def schema_problems(self, conn: Connection, node: Node, columns: list[str]) -> list[str]:
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
