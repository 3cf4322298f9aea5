"""The schema check: ``[[store.tables]]`` against the tables, columns and indexes the database really has.

Its own module because it is the one place that reads the database's
catalogue rather than its rows: a configuration that does not match the
database must fail here, before the first statement, with a message naming
the key to fix, not with SQL errors in the middle of an erasure. Family
quirks (PostgreSQL's nondeterministic collations) come from the dialect's
``schema_problems``.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from erasure.config import StoreTable
from erasure.errors import StoreError
from erasure.store.plan import Node, Plan

if TYPE_CHECKING:
    from erasure.store.dialect import Dialect


def require_columns(cfg: StoreTable, columns: Sequence[str] | dict[str, Any], where: str) -> list[tuple[str, str | None]]:
    """Every column ``cfg`` names exists (a StoreError naming the key and the nearest column otherwise);
    returns (config key, column) in the order viewer, tenant, key, time, parent key. Every store family
    checks its configured columns through this one rule."""
    wanted = [("viewer_column", cfg.viewer_column), ("tenant_column", cfg.tenant_column), ("key", cfg.key),
              ("time_column", cfg.time_column), ("parent_key", cfg.parent_key)]
    for key, col in wanted:
        if col is not None and col not in columns:
            close = difflib.get_close_matches(col, list(columns), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; columns: {', '.join(columns)}"
            raise StoreError(f"table {cfg.name!r} has no column {col!r} ({where}.{key}){hint}")
    return wanted


def reflect(conn: Connection, tables: Sequence[StoreTable], dialect: Dialect, safe_url: str) -> Plan:
    """The plan for ``tables``, checked against the schema the database really has.

    Raises StoreError naming the missing table or column, or the column of the
    wrong kind, with the config key that refers to it; returns the plan with
    warnings about missing indexes and CHAR columns.
    """
    notes: list[str] = []
    insp = sa.inspect(conn)
    present = insp.get_table_names()
    nodes: list[Node] = []
    for i, cfg in enumerate(tables):
        where = f"store.tables[{i}]"
        if cfg.name not in present:
            close = difflib.get_close_matches(cfg.name, present, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; tables present: {', '.join(sorted(present)) or 'none'}"
            raise StoreError(f"view store {safe_url} has no table {cfg.name!r} ({where}.name){hint}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sa_exc.SAWarning)  # exotic types elsewhere in the table are not our concern
            columns = {c["name"]: c["type"] for c in insp.get_columns(cfg.name)}
        wanted = require_columns(cfg, columns, where)
        for key, col in wanted[:2]:
            if col is not None and not isinstance(columns[col], sa.String):
                raise StoreError(
                    f"{where}.{key} = {col!r} is a {columns[col]} column; viewer ids and environments are text, "
                    "matched exactly as strings — name a text column"
                )
            if col is not None and isinstance(columns[col], sa.CHAR) and dialect.name != "sqlite":
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
        nodes.append(Node(index=i, config=cfg, table=table))
        indexes, unique = table_indexes(insp, cfg.name)
        notes.extend(index_warnings(cfg, indexes))
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
        problems = dialect.schema_problems(conn, node, exact_cols) if exact_cols else []
        if problems:
            raise StoreError(f"store.tables[{node.index}]: " + "; ".join(problems))
    return Plan(nodes=nodes, warnings=notes)


def table_indexes(insp: Any, name: str) -> tuple[list[list[str | None]], list[list[str | None]]]:
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


def index_warnings(cfg: StoreTable, indexes: list[list[str | None]]) -> list[str]:
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
