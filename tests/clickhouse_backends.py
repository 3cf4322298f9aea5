"""pytest plugin: an empty ClickHouse database on each real ClickHouse engine.

``ch`` is parametrised over three engines, each started once per session:

* ``chdb`` — the embedded current ClickHouse (lightweight ``DELETE FROM``);
* ``server`` — Debian's clickhouse-server 18.16 (``ALTER TABLE ... DELETE`` mutations only);
* ``cluster`` — two 18.16 servers, one shard each, the configured tables
  being ``Distributed`` tables over ``*_local`` tables on both shards.

Each test gets a database with a fresh random name, dropped afterwards. A
missing engine skips locally and fails under CI=true.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from erasure.store.clickhouse import ident, render
from tests import clickhouse_servers
from tests.services import missing_service

CH_BACKENDS = [pytest.param("chdb", id="chdb"), pytest.param("server", id="ch18"), pytest.param("cluster", id="ch-cluster")]

NOW = datetime(2026, 11, 1, 12, 0, 0)

VIEWS = ("view_id String, environment_id String, viewer_id String, view_start DateTime, video_title String",
         "PARTITION BY toYYYYMM(view_start) ORDER BY (environment_id, viewer_id)", "cityHash64(viewer_id)")
VIEW_EVENTS = ("event_id String, view_id String, ts DateTime, event_type String",
               "PARTITION BY toYYYYMM(ts) ORDER BY view_id", "cityHash64(event_id)")


@dataclass
class CH:
    """One test's database on one engine, and the test's own view of its rows."""

    kind: str
    database: str
    url: str
    _exec: Any
    servers: list[clickhouse_servers.Server] = field(default_factory=list)

    def q(self, sql: str, params: dict | None = None) -> list[tuple]:
        return self._exec(sql, params)

    def on_each(self, sql: str) -> None:
        """Run DDL on the engine, or on every shard of the cluster."""
        if self.kind != "cluster":
            self.q(sql)
            return
        from clickhouse_driver import Client

        for s in self.servers:
            c = Client(host="127.0.0.1", port=s.tcp)
            try:
                c.execute(sql)
            finally:
                c.disconnect()

    def create_table(self, name: str, spec: tuple[str, str, str], engine: str = "MergeTree") -> None:
        columns, layout, shard_key = spec
        db = ident(self.database)
        if self.kind != "cluster":
            self.q(f"CREATE TABLE {db}.{ident(name)} ({columns}) ENGINE = {engine} {layout if engine == 'MergeTree' else ''}")
            return
        self.on_each(f"CREATE TABLE {db}.{ident(name + '_local')} ({columns}) ENGINE = {engine} {layout if engine == 'MergeTree' else ''}")
        self.on_each(f"CREATE TABLE {db}.{ident(name)} AS {db}.{ident(name + '_local')} "
                     f"ENGINE = Distributed({clickhouse_servers.CLUSTER}, {self.database}, {name}_local, {shard_key})")

    def create_demo(self) -> None:
        self.create_table("views", VIEWS)
        self.create_table("view_events", VIEW_EVENTS)

    def insert(self, table: str, rows: list[tuple]) -> None:
        if not rows:
            return
        sql = f"INSERT INTO {ident(self.database)}.{ident(table)} VALUES"
        if self.kind == "chdb":
            self.q(sql + " " + ", ".join(render("%(r)s", {"r": r}) for r in rows))
        else:  # clickhouse-driver sends the rows as a data block (insert_distributed_sync: on every shard at once)
            self._exec(sql, rows)

    def add_views(self, rows: list[tuple[str, str, str]], *, events_per_view: int = 2, at: datetime = NOW) -> None:
        self.insert("views", [(v, env, viewer, at, "Sintel") for v, env, viewer in rows])
        self.insert("view_events", [(f"{v}-e{i}", v, at + timedelta(seconds=i), "playing")
                                    for v, _, _ in rows for i in range(events_per_view)])

    def remaining_views(self) -> set[tuple[str, str, str]]:
        return {tuple(r) for r in self.q(f"SELECT view_id, environment_id, viewer_id FROM {ident(self.database)}.views")}

    def remaining_event_views(self) -> set[str]:
        return {r[0] for r in self.q(f"SELECT DISTINCT view_id FROM {ident(self.database)}.view_events")}

    def counts(self, *tables: str) -> dict[str, int]:
        return {t: int(self.q(f"SELECT count() FROM {ident(self.database)}.{ident(t)}")[0][0]) for t in tables or ("views", "view_events")}

    def stored_rows(self, table: str) -> int:
        """Rows held in the table's active parts (deleted-but-masked rows included), on every shard."""
        sql = "SELECT sum(rows) FROM system.parts WHERE database = %(d)s AND table = %(t)s AND active"
        if self.kind != "cluster":
            return int(self.q(sql, {"d": self.database, "t": table})[0][0])
        from clickhouse_driver import Client

        total = 0
        for s in self.servers:
            c = Client(host="127.0.0.1", port=s.tcp)
            try:
                total += int(c.execute(sql, {"d": self.database, "t": table + "_local"})[0][0])
            finally:
                c.disconnect()
        return total

    def per_shard(self, table: str) -> list[int]:
        from clickhouse_driver import Client

        out = []
        for s in self.servers:
            c = Client(host="127.0.0.1", port=s.tcp)
            try:
                out.append(int(c.execute(f"SELECT count() FROM {ident(self.database)}.{ident(table + '_local')}")[0][0]))
            finally:
                c.disconnect()
        return out


class _Engines:
    """The session's engines, started on first use."""

    def __init__(self) -> None:
        self.cluster: clickhouse_servers.Cluster | None = None
        self.chdb_dir: str | None = None
        self._chdb: Any = None
        self._clients: dict[int, Any] = {}

    def servers(self) -> clickhouse_servers.Cluster:
        if self.cluster is None:
            why = clickhouse_servers.available()
            if why:
                missing_service(f"ClickHouse server: {why}")
            try:
                import clickhouse_driver  # noqa: F401
            except ImportError:
                missing_service("clickhouse-driver is not installed (pip install -e '.[test]')")
            self.cluster = clickhouse_servers.Cluster.start()
        return self.cluster

    def client(self, port: int) -> Any:
        from clickhouse_driver import Client

        if port not in self._clients:
            self._clients[port] = Client(host="127.0.0.1", port=port, settings={"insert_distributed_sync": 1})
        return self._clients[port]

    def chdb(self) -> Any:
        if self._chdb is None:
            try:
                import chdb  # noqa: F401
            except ImportError:
                missing_service("chdb is not installed (pip install -e '.[test]')")
            from erasure.store.clickhouse import ChdbConn

            self.chdb_dir = tempfile.mkdtemp(prefix="erasure-chdb-")
            self._chdb = ChdbConn(self.chdb_dir)  # shared with the stores the tests open on the same folder
        return self._chdb

    def close(self) -> None:
        for c in self._clients.values():
            c.disconnect()
        if self._chdb is not None:
            self._chdb.close()
        if self.cluster is not None:
            self.cluster.stop()
        if self.chdb_dir:
            import shutil

            shutil.rmtree(self.chdb_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def _ch_engines() -> Iterator[_Engines]:
    engines = _Engines()
    yield engines
    engines.close()


def make_ch(kind: str, engines: _Engines) -> CH:
    database = f"erasure_{secrets.token_hex(5)}"
    if kind == "chdb":
        run = engines.chdb().rows
        run(f"CREATE DATABASE {database}")
        return CH(kind, database, f"chdb:///{engines.chdb_dir}?database={database}", run)
    cluster = engines.servers()
    main = engines.client(cluster.servers[0].tcp)

    def run(sql: str, params: Any = None) -> list[tuple]:
        result = main.execute(sql, params)
        return list(result) if isinstance(result, list) else []  # an INSERT returns the number of rows

    ch = CH(kind, database, cluster.servers[0].url(database), run, servers=cluster.servers)
    ch.on_each(f"CREATE DATABASE {database}") if kind == "cluster" else run(f"CREATE DATABASE {database}")
    return ch


@pytest.fixture(params=CH_BACKENDS)
def ch(request: pytest.FixtureRequest, _ch_engines: _Engines) -> Iterator[CH]:
    """An empty database on each ClickHouse engine, with the demo tables (views, view_events)."""
    c = make_ch(request.param, _ch_engines)
    c.create_demo()
    yield c
    try:
        c.on_each(f"DROP DATABASE IF EXISTS {c.database}") if c.kind == "cluster" else c.q(f"DROP DATABASE IF EXISTS {c.database}")
    except Exception:  # a test that broke a table must not hide its own failure
        pass


def chdb_path(url: str) -> Path:
    return Path(url.removeprefix("chdb://").split("?")[0])
