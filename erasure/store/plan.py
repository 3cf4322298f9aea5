"""The configured tables as a tree, and the predicates that reach a child's rows through its parents.

A child table has no viewer or tenant column of its own: its rows are the
erasure's only through the parent rows they hang off. That reachability, and
the order deletes must run in (deepest first), is the one piece of SQL shape
every database family shares, so it lives here; the store's algorithm and
each dialect build on it. The tree itself was validated when the
configuration was loaded (``config._check_store_tables``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from erasure.config import StoreTable


@dataclass
class Node:
    """One configured table, its reflected columns and its place in the parent tree."""

    index: int
    config: StoreTable
    table: sa.TableClause
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1

    def col(self, name: str | None) -> sa.ColumnClause[Any]:
        assert name is not None
        return self.table.c[name]

    def descendants(self) -> list[Node]:
        """Every table below this one, deepest first: the order deletes must run in."""
        out: list[Node] = []
        stack = list(self.children)
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(node.children)
        return sorted(out, key=lambda n: -n.depth)


@dataclass
class Plan:
    """The reflected tables in configuration order, and what the schema check found worth a warning."""

    nodes: list[Node]
    warnings: list[str]

    @property
    def roots(self) -> list[Node]:
        return [n for n in self.nodes if n.parent is None]

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def zero(self) -> dict[str, int]:
        return {n.name: 0 for n in self.nodes}


def belongs(node: Node, top: Node, top_pred: ColumnElement[bool]) -> ColumnElement[bool]:
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
    keys = sa.select(parent.col(parent.config.key)).where(belongs(parent, top, top_pred)).correlate(None)
    return node.col(node.config.parent_key).in_(keys)


def join_conditions(node: Node, top: Node) -> list[ColumnElement[bool]]:
    """``node`` joined up to ``top`` key by key: the WHERE of a multi-table DELETE (see the MySQL dialect)."""
    conds: list[ColumnElement[bool]] = []
    n = node
    while n is not top:
        assert n.parent is not None
        conds.append(n.col(n.config.parent_key) == n.parent.col(n.parent.config.key))
        n = n.parent
    return conds



def is_below(node: Node, ancestor: Node) -> bool:
    """Whether ``ancestor`` is somewhere up ``node``'s parent chain (its rows go when the ancestor's do)."""
    n = node.parent
    while n is not None:
        if n is ancestor:
            return True
        n = n.parent
    return False
