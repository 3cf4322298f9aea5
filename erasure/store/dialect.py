"""The contract of a database family: what a dialect may do differently, and the batching it shares.

Separate from the package's ``__init__`` (the boundary and ``ViewStore``) so
that each family module imports this and nothing above it: ``ViewStore``
chooses a family, a family never reaches back into ``ViewStore``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from erasure.config import StoreSettings
from erasure.store.plan import Node, belongs


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


class Dialect:
    """What one database family does differently; the shared algorithm lives in ViewStore.

    One subclass per family, in its own module (``sqlite``, ``postgresql``,
    ``mysql``); a new family (ClickHouse) is a new module and a branch in
    ``_dialect_for``. Whatever a subclass changes, the four promises above
    hold: only how the SQL keeps them differs.
    """

    name = "generic"
    resolve_keys_first = False

    def loose_pred(self, root: Node, envs: list[str], ids: list[str]) -> ColumnElement[bool] | None:
        """A cheaper predicate matching a superset of the exact one, if the dialect has such a thing."""
        return None

    def install(self, engine: Engine, settings: StoreSettings) -> None:
        """Hook engine events (once per engine)."""

    def prepare(self, conn: Connection, settings: StoreSettings) -> None:
        """Set lock and statement timeouts for the transaction that just began."""

    def release(self, conn: Connection) -> None:
        """Undo per-transaction connection state that would outlive the transaction."""

    def id_batches(self, conn: Connection, values: Sequence[Any], fixed_params: int) -> Iterator[list[Any]]:
        """``values`` in batches one statement can carry, ``fixed_params`` parameters being taken already."""
        raise NotImplementedError

    def exact_in(self, col: sa.ColumnClause[Any], values: list[str]) -> ColumnElement[bool]:
        """``col`` is one of ``values``, byte for byte, whatever the column's collation."""
        raise NotImplementedError

    def exact_text(self, col: sa.ColumnClause[Any]) -> ColumnElement[Any]:
        """The column as its exact text, so DISTINCT and GROUP BY never merge case or space variants."""
        return col

    def key_in(self, col: sa.ColumnClause[Any], values: list[Any]) -> ColumnElement[bool]:
        """Native equality on keys (purge chunks, MySQL erasure by key); batches keep it under the parameter limit."""
        return col.in_(values)

    def delete_below(self, node: Node, top: Node, top_pred: ColumnElement[bool]) -> sa.Delete:
        """Delete the rows of ``node`` that hang off ``top`` rows matching ``top_pred``."""
        return sa.delete(node.table).where(belongs(node, top, top_pred))

    def delete_chunk(self, node: Node, pred: ColumnElement[bool], limit: int) -> sa.Delete:
        """Delete at most ``limit`` rows of ``node`` matching ``pred``: one short retention-purge transaction."""
        raise NotImplementedError

    def is_temporary(self, exc: sa_exc.DBAPIError) -> bool:
        """A lock, timeout or lost server (retry on a later run) rather than a statement the store refuses."""
        return bool(exc.connection_invalidated) or isinstance(exc, sa_exc.OperationalError)

    def schema_problems(self, conn: Connection, node: Node, columns: list[str]) -> list[str]:
        """Dialect-specific reasons exact matching cannot be guaranteed on these columns."""
        return []
