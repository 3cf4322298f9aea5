"""ClickHouse view stores: the same boundary as ``ViewStore``, for a database without transactions.

ClickHouse is where large view tables often live, but it deletes differently
from the SQL families, so it has its own store class rather than a dialect:

* **No transaction, so count, delete, verify.** The rows an erasure will
  delete are counted first (the evidence), then deleted, then counted again;
  anything left is a :class:`StoreVerificationError` (the request goes to
  review). Nothing is ever deleted beyond the exact, tenant-scoped predicate,
  so a run that stops half-way leaves only rows the next run deletes.
* **Deletes are mutations.** ``DELETE FROM`` (lightweight: rows masked at
  once, removed at the next merge) where the server has it, else
  ``ALTER TABLE ... DELETE`` (parts rewritten without the rows); both are
  waited for through ``system.mutations`` with ``mutation_timeout_seconds``.
  A timeout raises :class:`StoreUnavailableError`: the request stays
  ``erasing`` and the next run first waits for the mutation still running,
  then counts what is left — it never queues a second copy.
* **One statement per table per group.** A run's group commit becomes one
  delete per table (children first, reached through their parents' keys),
  whose predicate is ``tenant IN (...) AND viewer IN (...)`` per tenant of the
  group: exact byte comparison, each id only in its own requester's
  environments. Mutations rewrite data parts, so one per id would be ruinous.
* **Clusters.** A configured table that is a ``Distributed`` table is read
  through (counts, verification) but deleted from on every shard's local
  table; verification is then repeated per shard. A shard that is down is a
  temporary failure: the request stays ``erasing``.

Connections: ``clickhouse://user@host:9000/db`` (native protocol, through
``clickhouse-driver``) and ``chdb:///path`` (the embedded engine, through
``chdb``; ``?database=name`` picks the database). Both are optional
dependencies (``pip install erasure[clickhouse]``), imported only when such a
store is opened. Values are rendered as ClickHouse literals by the driver
(``%(name)s``, client-side substitution, as clickhouse-driver always does) or,
for chdb, by :func:`literal` here; identifiers come only from the
configuration and are quoted with backticks.
"""

from __future__ import annotations

import difflib
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol, Self

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from erasure.config import StoreSettings, StoreTable, read_secret
from erasure.errors import ErasureError, StoreError, StoreUnavailableError, StoreVerificationError
from erasure.store import ErasureResult, Target, _validated
from erasure.store.dialect import batches
from erasure.store.engine import setting_name
from erasure.store.plan import Node, Plan, is_below
from erasure.store.schema import require_columns

SCHEMES = ("clickhouse", "chdb")

#: Oldest server the store supports: ALTER TABLE ... DELETE (mutations) arrived in 18.x.
MIN_VERSION = (18, 12)
#: Lightweight DELETE FROM is generally available (no experimental flag) from 23.3 on.
LIGHTWEIGHT_VERSION = (23, 3)
#: Keep each statement well under ClickHouse's max_query_size (256 KiB by default).
MAX_STATEMENT_BYTES = 200_000
MAX_IDS = 20_000

Params = dict[str, Any]


# ---------------------------------------------------------------- literals and identifiers (pure)


def literal(value: Any) -> str:
    """``value`` as a ClickHouse literal: strings quoted with ``\\`` and ``'`` escaped, tuples in parentheses."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, datetime):
        return literal(value.strftime("%Y-%m-%d %H:%M:%S"))
    if isinstance(value, date):
        return literal(value.isoformat())
    if isinstance(value, tuple):
        return "(" + ", ".join(literal(v) for v in value) + ")"
    raise TypeError(f"no ClickHouse literal for {type(value).__name__}")


def render(sql: str, params: Params | None) -> str:
    """``%(name)s`` placeholders replaced by literals (what clickhouse-driver does on the client)."""
    if not params:
        return sql
    return sql % {k: literal(v) for k, v in params.items()}


def ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def parse_version(text: str) -> tuple[int, int]:
    """(major, minor) of ``SELECT version()``; a StoreError for anything that is not ``N.N...``."""
    m = re.fullmatch(r"(\d+)\.(\d+)(\.\d+)*", text.strip())
    if not m:
        raise StoreError(f"the ClickHouse server reports version {text!r}, which erasure cannot interpret; "
                         f"supported: {MIN_VERSION[0]}.{MIN_VERSION[1]} or newer")
    return int(m.group(1)), int(m.group(2))


def distributed_target(engine_full: str) -> tuple[str, str, str]:
    """(cluster, database, table) from a Distributed engine definition ``Distributed(c, db, t[, key])``."""
    m = re.match(r"\s*Distributed\s*\((.*)\)\s*$", engine_full, re.S)
    if not m:
        raise StoreError(f"cannot read the Distributed engine definition {engine_full!r}")
    args = [a.strip().strip("'\"`") for a in _split_args(m.group(1))]
    if len(args) < 3:
        raise StoreError(f"cannot read the Distributed engine definition {engine_full!r}")
    return args[0], args[1], args[2]


def _split_args(text: str) -> list[str]:
    out, depth, cur, quote = [], 0, "", ""
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
            continue
        if ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        cur += ch
    out.append(cur)
    return out


def ttl_clause(create_table_query: str) -> str | None:
    """The table's ``TTL ...`` clause, if its definition has one (up to SETTINGS)."""
    m = re.search(r"\bTTL\b\s+(.*?)(?:\s+SETTINGS\b|$)", create_table_query, re.S)
    return " ".join(m.group(1).split()) if m else None


# ---------------------------------------------------------------- connections


class Conn(Protocol):
    """One server (or the embedded engine): run SQL with ``%(name)s`` parameters, get rows back."""

    where: str

    def rows(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]: ...

    def close(self) -> None: ...


class NativeConn:
    """A ClickHouse server over the native protocol (clickhouse-driver)."""

    def __init__(self, host: str, port: int, *, user: str, password: str, database: str, timeout: int) -> None:
        try:
            from clickhouse_driver import Client
        except ImportError as exc:
            raise StoreError("a clickhouse:// store needs clickhouse-driver; pip install 'erasure[clickhouse]'") from exc
        self.where = f"{host}:{port}"
        self._client = Client(host=host, port=port, user=user, password=password, database=database,
                              connect_timeout=10, send_receive_timeout=max(timeout, 30), sync_request_timeout=10)

    def rows(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        from clickhouse_driver import errors

        try:
            return list(self._client.execute(sql, params or None))
        except errors.ServerException as exc:
            raise StoreError(f"ClickHouse {self.where} refused a statement: {_first_line(exc.message)} (code {exc.code})") from exc
        except (errors.NetworkError, errors.SocketTimeoutError, EOFError, OSError) as exc:
            raise StoreUnavailableError(f"ClickHouse {self.where} is unreachable ({type(exc).__name__}: {_first_line(str(exc))}); "
                                        "nothing more was deleted by this attempt — it is retried on the next run") from exc
        except errors.Error as exc:
            raise StoreError(f"ClickHouse {self.where}: {_first_line(str(exc))}") from exc

    def close(self) -> None:
        # Disconnect first: a server waits ~10 s for connected clients when it stops.
        self._client.disconnect()


#: chdb runs one embedded server per process, and closing any session closes it for every other:
#: sessions are shared per folder and closed when the last user lets go.
_CHDB: dict[str, tuple[Any, int]] = {}


class ChdbConn:
    """The embedded engine (chdb) on a data folder; one folder per process, locked against other processes."""

    def __init__(self, path: str) -> None:
        try:
            from chdb import session
        except ImportError as exc:
            raise StoreError("a chdb:// store needs chdb; pip install 'erasure[clickhouse]'") from exc
        self.where = f"chdb {path}"
        self._path = path
        if path in _CHDB:
            shared, users = _CHDB[path]
            _CHDB[path] = (shared, users + 1)
        else:
            try:
                shared = session.Session(path)
            except RuntimeError as exc:
                raise StoreUnavailableError(f"the chdb folder {path} cannot be opened ({_first_line(str(exc))}); another process "
                                            "may hold it — it is retried on the next run") from exc
            _CHDB[path] = (shared, 1)
        self._session: Any = shared

    def rows(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        text = render(sql, params)
        try:
            result = self._session.query(text, "JSONCompact")
        except Exception as exc:  # chdb raises RuntimeError with the server's message
            raise StoreError(f"chdb refused a statement: {_first_line(str(exc))}") from exc
        data = result.data() if hasattr(result, "data") else str(result)
        if not data.strip():
            return []
        return [tuple(r) for r in json.loads(data)["data"]]

    def close(self) -> None:
        if self._session is None:
            return
        shared, users = _CHDB[self._path]
        if users > 1:
            _CHDB[self._path] = (shared, users - 1)
        else:
            del _CHDB[self._path]
            shared.close()
        self._session = None


def _first_line(text: str) -> str:
    return " ".join(text.split("Stack trace")[0].split())[:300]


# ---------------------------------------------------------------- tables


@dataclass
class Table:
    """A configured table as ClickHouse holds it: where reads go and where deletes go (per shard)."""

    config: StoreTable
    database: str
    name: str
    local_database: str
    local_name: str
    distributed: bool
    columns: dict[str, str]
    partition_key: str
    ttl: str | None

    @property
    def read(self) -> str:
        return f"{ident(self.database)}.{ident(self.name)}"

    @property
    def local(self) -> str:
        return f"{ident(self.local_database)}.{ident(self.local_name)}"


@dataclass
class Layout:
    """The reflected plan plus what ClickHouse adds: each table's storage, the shards, the delete mode."""

    plan: Plan
    tables: dict[str, Table]
    shards: list[str]
    lightweight: bool
    version: str
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- the store


class ClickHouseStore:
    """A ClickHouse (or chdb) view store with ``ViewStore``'s boundary: count, erase, erase_many, purge."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        url = make_url(settings.url)
        self._scheme = url.get_backend_name()
        if self._scheme not in SCHEMES:
            raise StoreError(f"{setting_name(settings, 'url')} = {settings.url!r} is not a ClickHouse URL; "
                             "use clickhouse://user@host:9000/db or chdb:///path")
        self._url = url
        self._safe_url = url.render_as_string(hide_password=True)
        self._password = url.password or ""
        if settings.password_env:
            self._password = read_secret(settings.password_env, setting_name(settings, "password_env"))
        self._conn: Conn | None = None
        self._shard_conns: dict[str, Conn] = {}
        self._layout: Layout | None = None
        #: Statements that delete (DELETE FROM / ALTER ... DELETE / DROP PARTITION), for tests and the benchmark.
        self.deletes_issued = 0

    # -- lifecycle

    @property
    def table_names(self) -> list[str]:
        return [t.name for t in self.settings.tables]

    def close(self) -> None:
        for conn in [*self._shard_conns.values(), *([self._conn] if self._conn else [])]:
            conn.close()
        self._shard_conns.clear()
        self._conn = None
        self._layout = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def database(self) -> str:
        if self._scheme == "chdb":
            return str(self._url.query.get("database") or "default")
        return self._url.database or "default"

    def _main(self) -> Conn:
        if self._conn is None:
            if self._scheme == "chdb":
                path = self._url.database
                if not path:
                    raise StoreError(f"{setting_name(self.settings, 'url')} = {self._safe_url!r} names no folder; e.g. chdb:///var/lib/views")
                self._conn = ChdbConn(path)
            else:
                self._conn = self._native(self._url.host or "localhost", self._url.port or 9000)
        return self._conn

    def _native(self, host: str, port: int) -> NativeConn:
        return NativeConn(host, port, user=self._url.username or "default", password=self._password,
                          database=self.database, timeout=self.settings.statement_timeout_seconds)

    def _shard(self, address: str) -> Conn:
        if address not in self._shard_conns:
            host, _, port = address.rpartition(":")
            self._shard_conns[address] = self._native(host or address, int(port or 9000))
        return self._shard_conns[address]

    # -- schema

    def check_schema(self) -> list[str]:
        """Check ``[[stores.tables]]`` against ``system.tables``/``system.columns``; returns warnings.

        Raises StoreError naming what is missing (table, column, the local
        table on a shard), an engine that cannot delete rows (``Log``,
        ``Memory``...), or a server version erasure does not know.
        """
        self._layout = None
        return list(self._reflect().warnings)

    def _reflect(self) -> Layout:
        if self._layout is not None:
            return self._layout
        settings = self.settings
        if not settings.tables:
            raise StoreError("no [[stores.tables]] configured; describe at least the table holding views (see config.example.toml)")
        conn = self._main()
        version = str(conn.rows("SELECT version()")[0][0])
        major_minor = parse_version(version)
        if major_minor < MIN_VERSION:
            raise StoreError(f"ClickHouse {version} cannot delete rows (mutations need {MIN_VERSION[0]}.{MIN_VERSION[1]}+); upgrade the server")
        lightweight = self._lightweight(major_minor, version)
        notes: list[str] = []
        tables: dict[str, Table] = {}
        nodes: list[Node] = []
        clusters: set[str] = set()
        present = [r[0] for r in conn.rows("SELECT name FROM system.tables WHERE database = %(d)s", {"d": self.database})]
        for i, cfg in enumerate(settings.tables):
            where = f"store.tables[{i}]"
            row = conn.rows("SELECT engine, engine_full, partition_key, create_table_query FROM system.tables "
                            "WHERE database = %(d)s AND name = %(t)s", {"d": self.database, "t": cfg.name})
            if not row:
                close = difflib.get_close_matches(cfg.name, present, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; tables present: {', '.join(sorted(present)) or 'none'}"
                raise StoreError(f"view store {self._safe_url} has no table {cfg.name!r} in database {self.database!r} ({where}.name){hint}")
            engine, engine_full, partition_key, create = (str(x) for x in row[0])
            local_db, local_name, distributed = self.database, cfg.name, engine == "Distributed"
            if distributed:
                cluster, local_db, local_name = distributed_target(engine_full)
                clusters.add(cluster)
                row = None
            columns = {str(n): str(t) for n, t in conn.rows(
                "SELECT name, type FROM system.columns WHERE database = %(d)s AND table = %(t)s", {"d": self.database, "t": cfg.name})}
            if not distributed:
                _check_engine(engine, cfg.name, where)
            table = Table(config=cfg, database=self.database, name=cfg.name, local_database=local_db, local_name=local_name,
                          distributed=distributed, columns=columns, partition_key=partition_key, ttl=ttl_clause(create))
            notes += _check_columns(table, where)
            if table.ttl:
                notes.append(f"table {cfg.name!r} has TTL {table.ttl}: the server also deletes expired rows on its own, at merges")
            tables[cfg.name] = table
            nodes.append(Node(index=i, config=cfg, table=sa.table(cfg.name)))
        by_name = {n.name: n for n in nodes}
        for node in nodes:
            if node.config.parent is not None:
                node.parent = by_name[node.config.parent]
                node.parent.children.append(node)
        shards = self._shards(conn, clusters) if any(t.distributed for t in tables.values()) else []
        for table in tables.values():
            if table.distributed:
                self._check_local(table, shards)
        if any(t.distributed for t in tables.values()) and not all(t.distributed for t in tables.values()):
            raise StoreError("some configured tables are Distributed and some are not; configure the Distributed tables "
                             "of a cluster (or the tables of one server), not a mix")
        self._layout = Layout(plan=Plan(nodes=nodes, warnings=notes), tables=tables, shards=shards,
                              lightweight=lightweight, version=version, warnings=notes)
        return self._layout

    def _lightweight(self, major_minor: tuple[int, int], version: str) -> bool:
        mode = self.settings.delete_mode
        if mode == "mutation":
            return False
        has_it = major_minor >= LIGHTWEIGHT_VERSION
        if mode == "lightweight" and not has_it:
            raise StoreError(f"{setting_name(self.settings, 'delete_mode')} = \"lightweight\", but ClickHouse {version} has no "
                             f"lightweight DELETE (needs {LIGHTWEIGHT_VERSION[0]}.{LIGHTWEIGHT_VERSION[1]}+); use \"mutation\" or \"auto\"")
        return has_it

    def _shards(self, conn: Conn, clusters: set[str]) -> list[str]:
        if self.settings.shards:
            return list(self.settings.shards)
        name = self.settings.cluster or (sorted(clusters)[0] if len(clusters) == 1 else None)
        if name is None:
            raise StoreError(f"the Distributed tables name clusters {', '.join(sorted(clusters))}; set "
                             f"{setting_name(self.settings, 'cluster')} or {setting_name(self.settings, 'shards')}")
        rows = conn.rows("SELECT host_address, port FROM system.clusters WHERE cluster = %(c)s ORDER BY shard_num, replica_num",
                         {"c": name})
        if not rows:
            known = sorted({r[0] for r in conn.rows("SELECT cluster FROM system.clusters")})
            raise StoreError(f"ClickHouse {conn.where} has no cluster {name!r} ({setting_name(self.settings, 'cluster')}); "
                             f"clusters: {', '.join(known) or 'none'}")
        return list(dict.fromkeys(f"{h}:{p}" for h, p in rows))

    def _check_local(self, table: Table, shards: list[str]) -> None:
        for address in shards:
            conn = self._shard(address)
            row = conn.rows("SELECT engine FROM system.tables WHERE database = %(d)s AND name = %(t)s",
                            {"d": table.local_database, "t": table.local_name})
            if not row:
                raise StoreError(f"shard {address} has no table {table.local_database}.{table.local_name}, which the "
                                 f"Distributed table {table.name!r} reads; create it there (or fix cluster/shards)")
            _check_engine(str(row[0][0]), f"{table.local_name} on shard {address}", f"store.tables[{table.config.name}]")

    # -- reading ids

    def distinct_viewer_ids(self, environments: Sequence[str], *, chunk: int = 5000) -> Iterator[str]:
        """Every distinct viewer id in these environments, root table by root table, a page at a time (keyset)."""
        envs = tuple(dict.fromkeys(environments))
        if not envs:
            return
        layout = self._reflect()
        for root in layout.plan.roots:
            t = layout.tables[root.name]
            v, e = ident(root.config.viewer_column or ""), ident(root.config.tenant_column or "")
            last = None
            while True:
                after = f" AND {v} > %(last)s" if last is not None else ""
                page = [r[0] for r in self._main().rows(
                    f"SELECT DISTINCT {v} FROM {t.read} WHERE {e} IN %(envs)s{after} ORDER BY {v} LIMIT {int(chunk)}",
                    {"envs": envs, **({"last": last} if last is not None else {})})]
                yield from (str(x) for x in page)
                if len(page) < chunk:
                    break
                last = page[-1]

    # -- erasure

    def count(self, target: Target) -> ErasureResult:
        """How many rows per table an erasure of ``target`` would delete (deletes nothing)."""
        envs, ids = _validated(target)
        layout = self._reflect()
        (counts,) = self._attributed(layout, [(envs, ids)])
        return ErasureResult(key=target.key, counts=counts, dry_run=True)

    def erase(self, target: Target) -> ErasureResult:
        """Erase one target: count, delete (children first), wait, verify nothing is left."""
        result = self.erase_many([target])[0]
        if isinstance(result, ErasureError):
            raise result
        return result

    def erase_many(self, targets: Sequence[Target]) -> list[ErasureResult | ErasureError]:
        """Erase several requests with one delete per table (group commit); results in the order of ``targets``.

        A target that is malformed gets its own StoreError and the others go on.
        A temporary failure (a mutation still running at the timeout, a shard
        down) is returned for every target of the group: they stay pending and
        the next run resumes. A failed verification retries each target alone,
        so the one at fault is named.
        """
        out: list[ErasureResult | ErasureError | None] = [None] * len(targets)
        checked: list[tuple[int, list[str], list[str]]] = []
        for i, t in enumerate(targets):
            try:
                checked.append((i, *_validated(t)))
            except ErasureError as exc:
                out[i] = exc
        if checked:
            try:
                counts = self._erase_group(targets, checked)
                for (i, _, _), c in zip(checked, counts, strict=True):
                    out[i] = ErasureResult(key=targets[i].key, counts=c, dry_run=False)
            except StoreUnavailableError as exc:
                for i, _, _ in checked:
                    out[i] = exc
            except ErasureError as exc:
                if len(checked) == 1:
                    out[checked[0][0]] = exc
                else:
                    for i, envs, ids in checked:
                        try:
                            (c,) = self._erase_group([targets[i]], [(0, envs, ids)])
                            out[i] = ErasureResult(key=targets[i].key, counts=c, dry_run=False)
                        except ErasureError as one:
                            out[i] = one
        return [r for r in out if r is not None]

    def _erase_group(self, targets: Sequence[Target], checked: list[tuple[int, list[str], list[str]]]) -> list[dict[str, int]]:
        layout = self._reflect()
        keys = ", ".join(targets[i].key for i, _, _ in checked)
        # A mutation left running by an earlier run (timeout, kill) is waited for, never queued twice.
        for table in layout.tables.values():
            self._wait(layout, table, keys)
        scopes = [(envs, ids) for _, envs, ids in checked]
        counts = self._attributed(layout, scopes)
        totals = {name: sum(c[name] for c in counts) for name in layout.plan.names}
        items = _scoped_ids(scopes)
        for root in layout.plan.roots:
            below = root.descendants()
            for batch in batches(items, MAX_IDS, max_bytes=MAX_STATEMENT_BYTES):
                pred, params = self._root_pred(root, batch)
                if below:
                    self._refuse_shared_keys(layout, root, pred, params, keys)
                for node in below:
                    if totals[node.name]:
                        self._delete(layout, layout.tables[node.name], self._belongs(layout, node, root, pred, delete=True), params, keys)
                # Children are checked while their parents still exist: afterwards they could not be found.
                for node in below:
                    left = self._count(layout, node, self._belongs(layout, node, root, pred), params)
                    if left:
                        raise _not_verified(keys, left, node.name)
                if totals[root.name]:
                    self._delete(layout, layout.tables[root.name], pred, params, keys)
        for root in layout.plan.roots:
            for batch in batches(items, MAX_IDS, max_bytes=MAX_STATEMENT_BYTES):
                pred, params = self._root_pred(root, batch)
                left = self._count(layout, root, pred, params)
                left += sum(self._count_local(layout, address, layout.tables[root.name], pred, params) for address in layout.shards)
                if left:
                    raise _not_verified(keys, left, root.name)
        if self.settings.optimize_final:
            for name, n in totals.items():
                if n:
                    self._optimize(layout, layout.tables[name])
        return counts

    # -- predicates and counting

    def _root_pred(self, root: Node, items: list[tuple[tuple[str, ...], str]]) -> tuple[str, Params]:
        """Rows of ``root`` whose viewer id is one of the items' and whose tenant is in *that item's* environments.

        Items are grouped by environment set: a group whose requests all come
        from one tenant is ``tenant IN (...) AND viewer IN (...)``, the cheapest
        form for the server; several tenants are OR-ed, each with its own ids.
        (A ``(tenant, viewer) IN ((...), ...)`` tuple set says the same but
        doubles the cost of a delete on a large table.)
        """
        e, v = ident(root.config.tenant_column or ""), ident(root.config.viewer_column or "")
        by_envs: dict[tuple[str, ...], list[str]] = {}
        for envs, viewer in items:
            by_envs.setdefault(envs, []).append(viewer)
        params: Params = {}
        clauses = []
        for n, (envs, ids) in enumerate(by_envs.items()):
            params[f"e{n}"], params[f"i{n}"] = envs, tuple(ids)
            clauses.append(f"{e} IN %(e{n})s AND {v} IN %(i{n})s")
        if len(clauses) == 1:
            return clauses[0], params
        return " OR ".join(f"({c})" for c in clauses), params

    def _belongs(self, layout: Layout, node: Node, top: Node, top_pred: str, *, delete: bool = False) -> str:
        """``node`` rows hanging (through parent keys) off ``top`` rows matching ``top_pred``.

        The parents are always read through the Distributed tables, so a child
        on one shard finds its parent on another. A read of a Distributed table
        says ``GLOBAL IN`` (the parent keys are gathered once and sent to every
        shard); a delete runs on one shard's local table, where a plain ``IN``
        over the Distributed parent does the same.
        """
        if node is top:
            return top_pred
        assert node.parent is not None
        parent = node.parent
        inner = self._belongs(layout, parent, top, top_pred)
        in_ = "GLOBAL IN" if layout.shards and not delete else "IN"
        return (f"{ident(node.config.parent_key or '')} {in_} (SELECT {ident(parent.config.key or '')} "
                f"FROM {layout.tables[parent.name].read} WHERE {inner})")

    def _count(self, layout: Layout, node: Node, pred: str, params: Params) -> int:
        return int(self._main().rows(f"SELECT count() FROM {layout.tables[node.name].read} WHERE {pred}", params)[0][0])

    def _count_local(self, layout: Layout, address: str, table: Table, pred: str, params: Params) -> int:
        return int(self._shard(address).rows(f"SELECT count() FROM {table.local} WHERE {pred}", params)[0][0])

    def _attributed(self, layout: Layout, scopes: list[tuple[list[str], list[str]]]) -> list[dict[str, int]]:
        """Rows per table for each scope (a group's targets), in one grouped query per table.

        A (tenant, viewer) pair named by two targets of the group counts for
        the first, as if they had been erased one after the other.
        """
        owner: dict[tuple[str, str], int] = {}
        for k, (envs, ids) in enumerate(scopes):
            for pair in ((e, v) for e in envs for v in ids):
                owner.setdefault(pair, k)
        counts = [layout.plan.zero() for _ in scopes]
        if not owner:
            return counts
        conn = self._main()
        for root in layout.plan.roots:
            e, v = ident(root.config.tenant_column or ""), ident(root.config.viewer_column or "")
            for batch in batches(_scoped_ids(scopes), MAX_IDS, max_bytes=MAX_STATEMENT_BYTES):
                pred, params = self._root_pred(root, batch)
                t = layout.tables[root.name]
                if not root.children:
                    for env, viewer, n in conn.rows(f"SELECT {e}, {v}, count() FROM {t.read} WHERE {pred} GROUP BY {e}, {v}", params):
                        counts[owner[(env, viewer)]][root.name] += int(n)
                    continue
                # With children, learn each matched row's key once: a child's rows count for its parent's owner.
                key = ident(root.config.key or "")
                whose: dict[Any, int] = {}
                for k, env, viewer in conn.rows(f"SELECT {key}, {e}, {v} FROM {t.read} WHERE {pred}", params):
                    counts[owner[(env, viewer)]][root.name] += 1
                    whose[k] = owner[(env, viewer)]
                self._attribute_children(layout, root, root, pred, params, whose, counts)
        return counts

    def _attribute_children(self, layout: Layout, root: Node, parent: Node, root_pred: str, params: Params,
                            whose: dict[Any, int], counts: list[dict[str, int]]) -> None:
        conn = self._main()
        for child in parent.children:
            t = layout.tables[child.name]
            pk = ident(child.config.parent_key or "")
            pred = self._belongs(layout, child, root, root_pred)
            if child.children:
                mine: dict[Any, int] = {}
                for k, p in conn.rows(f"SELECT {ident(child.config.key or '')}, {pk} FROM {t.read} WHERE {pred}", params):
                    if p in whose:
                        counts[whose[p]][child.name] += 1
                        mine[k] = whose[p]
                self._attribute_children(layout, root, child, root_pred, params, mine, counts)
            else:
                for p, n in conn.rows(f"SELECT {pk}, count() FROM {t.read} WHERE {pred} GROUP BY {pk}", params):
                    if p in whose:
                        counts[whose[p]][child.name] += int(n)

    def _refuse_shared_keys(self, layout: Layout, root: Node, pred: str, params: Params, keys: str) -> None:
        """Child rows are reached through the parent's key; a key also used by rows outside the request
        (another tenant's, say) would take their children too, so such an erasure stops first."""
        key = ident(root.config.key or "")
        t = layout.tables[root.name]
        shared = int(self._main().rows(
            f"SELECT count() FROM {t.read} WHERE {key} {'GLOBAL IN' if layout.shards else 'IN'} (SELECT {key} FROM {t.read} WHERE {pred}) "
            f"AND NOT ({pred})", params)[0][0])
        if shared:
            raise StoreVerificationError(
                f"request {keys}: {shared} row(s) of {root.name!r} outside the request share a {root.config.key} with matched rows; "
                "their child rows cannot be told apart, so nothing was deleted — review the request and make the key unique")

    # -- deleting and waiting

    def _targets(self, layout: Layout, table: Table) -> list[tuple[Conn, str, str, str]]:
        """(connection, database, table name, qualified name) of every copy a delete must reach."""
        if table.distributed:
            return [(self._shard(a), table.local_database, table.local_name, table.local) for a in layout.shards]
        return [(self._main(), table.database, table.name, table.read)]

    def _delete(self, layout: Layout, table: Table, pred: str, params: Params, keys: str) -> None:
        """One delete statement on each copy of ``table``, then wait until every copy has applied it."""
        copies = self._targets(layout, table)
        for conn, _, _, qualified in copies:
            if layout.lightweight:
                conn.rows(f"DELETE FROM {qualified} WHERE {pred}", params)
            else:
                conn.rows(f"ALTER TABLE {qualified} DELETE WHERE {pred}", params)
            self.deletes_issued += 1
        self._wait(layout, table, keys)

    def _wait(self, layout: Layout, table: Table, keys: str) -> None:
        """Poll ``system.mutations`` until no mutation of ``table`` is running, on every copy.

        18.16 reports no failure reason: a mutation that cannot finish simply
        stays undone, so the timeout is what turns it into "retry later".
        """
        deadline = time.monotonic() + self.settings.mutation_timeout_seconds
        pause = 0.01
        for conn, database, name, _ in self._targets(layout, table):
            while True:
                running = int(conn.rows("SELECT count() FROM system.mutations WHERE database = %(d)s AND table = %(t)s AND NOT is_done",
                                        {"d": database, "t": name})[0][0])
                if not running:
                    break
                if time.monotonic() >= deadline:
                    raise StoreUnavailableError(
                        f"request {keys}: a delete on {database}.{name} ({conn.where}) was still running after "
                        f"{self.settings.mutation_timeout_seconds} s ({setting_name(self.settings, 'mutation_timeout_seconds')}); "
                        "the request stays erasing and the next run waits for it, then verifies — if it never finishes, "
                        "look at system.mutations on that server")
                time.sleep(pause)  # polling interval while the server works, not a guess at how long it takes
                pause = min(pause * 2, 0.5)

    def _optimize(self, layout: Layout, table: Table) -> None:
        for conn, _, _, qualified in self._targets(layout, table):
            conn.rows(f"OPTIMIZE TABLE {qualified} FINAL")

    # -- retention

    def purge_older_than(self, cutoff: datetime, *, chunk_size: int = 10_000, dry_run: bool = False,
                         progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
        """Delete rows older than ``cutoff`` (and rows below them): whole partitions where they are all
        older, else one delete per table; ``chunk_size`` does not apply (each delete is one mutation).

        Children go first, while their parents can still be found. Counts are
        taken before deleting: ClickHouse does not report rows deleted.
        """
        layout = self._reflect()
        plan = layout.plan
        naive = (cutoff.replace(tzinfo=UTC) if cutoff.tzinfo is None else cutoff.astimezone(UTC)).replace(tzinfo=None)
        params: Params = {"cutoff": naive}
        origins = [n for n in plan.nodes if n.config.time_column]
        conds: dict[str, str] = {}
        deletes: dict[str, str] = {}
        for node in plan.nodes:
            mine = [o for o in origins if o is node or is_below(node, o)]
            for out, delete in ((conds, False), (deletes, True)):
                if mine:
                    out[node.name] = " OR ".join(f"({self._belongs(layout, node, o, _older(o), delete=delete)})" for o in mine)
        counts = plan.zero()
        for name, pred in conds.items():
            counts[name] = self._count(layout, next(n for n in plan.nodes if n.name == name), pred, params)
        if dry_run:
            return counts
        for node in sorted((n for n in plan.nodes if n.name in conds), key=lambda n: -n.depth):
            if not counts[node.name]:
                continue
            table = layout.tables[node.name]
            if node.config.time_column and node.config.time_column in table.partition_key:
                self._drop_old_partitions(layout, table, node.config.time_column, naive)
            left = self._count(layout, node, conds[node.name], params)
            if left:
                self._delete(layout, table, deletes[node.name], params, f"(retention {node.name})")
            if progress is not None:
                progress(node.name, counts[node.name])
        return counts

    def _drop_old_partitions(self, layout: Layout, table: Table, time_column: str, cutoff: datetime) -> None:
        """Drop every partition whose newest row is older than the cutoff: immediate, no rewrite."""
        col = ident(time_column)
        for conn, database, name, qualified in self._targets(layout, table):
            old = [r[0] for r in conn.rows(f"SELECT _partition_id FROM {qualified} GROUP BY _partition_id "
                                           f"HAVING max({col}) < toDateTime(%(cutoff)s, 'UTC')", {"cutoff": cutoff})]
            if not old:
                continue
            for (partition,) in conn.rows("SELECT DISTINCT partition FROM system.parts WHERE database = %(d)s AND table = %(t)s "
                                          "AND active AND partition_id IN %(ids)s", {"d": database, "t": name, "ids": tuple(old)}):
                conn.rows(f"ALTER TABLE {qualified} DROP PARTITION {partition}")
                self.deletes_issued += 1


# ---------------------------------------------------------------- checks (pure)


def _check_engine(engine: str, what: str, where: str) -> None:
    if not engine.endswith("MergeTree"):
        raise StoreError(f"table {what!r} ({where}) uses the {engine} engine, which cannot delete single rows; "
                         "erasure needs a *MergeTree table (or a Distributed table over them)")


_TEXT = re.compile(r"^(LowCardinality\()?(Nullable\()?(String|FixedString\(\d+\))\)?\)?$")
_TIME = re.compile(r"^(Nullable\()?(Date|Date32|DateTime|DateTime64)\b")


def _check_columns(table: Table, where: str) -> list[str]:
    cfg, columns = table.config, table.columns
    notes: list[str] = []
    wanted = require_columns(cfg, columns, where)
    for key, col in wanted[:2]:
        if col is None:
            continue
        if not _TEXT.match(columns[col]):
            raise StoreError(f"{where}.{key} = {col!r} is a {columns[col]} column; viewer ids and environments are text, "
                             "matched exactly as strings — name a String column")
        if "FixedString" in columns[col]:
            notes.append(f"table {cfg.name!r}: {col} is {columns[col]}, padded with NUL bytes; an id longer than the width cannot be stored")
    if cfg.time_column is not None and not _TIME.match(columns[cfg.time_column]):
        raise StoreError(f"{where}.time_column = {cfg.time_column!r} is a {columns[cfg.time_column]} column, not a date/time; "
                         "the retention purge compares it with a timestamp — name a DateTime column")
    return notes


def _older(node: Node) -> str:
    # The cutoff is a UTC instant whatever the server's time zone (a bare string would be read in it).
    return f"{ident(node.config.time_column or '')} < toDateTime(%(cutoff)s, 'UTC')"


def _scoped_ids(scopes: list[tuple[list[str], list[str]]]) -> list[tuple[tuple[str, ...], str]]:
    """(environments, viewer id) for every id of every scope, first occurrence kept: what a group deletes."""
    return list(dict.fromkeys((tuple(envs), v) for envs, ids in scopes for v in ids))


def _not_verified(keys: str, left: int, table: str) -> StoreVerificationError:
    return StoreVerificationError(
        f"request {keys}: {left} row(s) of {table!r} still matched after deleting; ClickHouse has no rollback, so what was "
        "deleted stays deleted (only matched rows) — review the request (rows may be arriving concurrently)")


def is_clickhouse_url(url: str) -> bool:
    return url.split(":", 1)[0].lower() in SCHEMES


__all__ = ["ClickHouseStore", "is_clickhouse_url", "literal", "parse_version"]
