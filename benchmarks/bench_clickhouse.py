"""ClickHouse erasure (one group of requests) against hand-written deletes, on a large chdb table.

    python benchmarks/bench_clickhouse.py [--views N] [--requests K] [--mode auto|lightweight|mutation]

Builds, in one throw-away chdb folder, two identical databases of N views
(three environments, ~N/3 viewers) with one event per view, then erases the
same K single-viewer requests of one tenant:

- erasure: ``ClickHouseStore.erase_many`` — one group: counts per request
  (the evidence), the shared-key guard, one delete per table (events first,
  through the views' keys), waits on system.mutations, verifies zero left;
- baseline: the two statements a DBA would type for the same ids (events by a
  subquery on views, then views), no counts, no checks.

Prints both times, the ratio, delete statements (mutations) issued, and how
much the active parts grew on disk (lightweight deletes add a row mask; a
mutation rewrites the parts). Not part of the test suite; numbers go to
docs/clickhouse.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from erasure.config import StoreSettings, StoreTable  # noqa: E402
from erasure.store import Target  # noqa: E402
from erasure.store.clickhouse import ChdbConn, ClickHouseStore, literal  # noqa: E402

TENANT = ("env_a", "env_b")
TABLES = (
    StoreTable(name="views", viewer_column="viewer_id", tenant_column="environment_id", key="view_id", time_column="view_start"),
    StoreTable(name="view_events", parent="views", parent_key="view_id", time_column="ts"),
)


def build(conn: ChdbConn, db: str, views: int) -> None:
    conn.rows(f"CREATE DATABASE {db}")
    conn.rows(f"CREATE TABLE {db}.views (view_id String, environment_id String, viewer_id String, view_start DateTime, "
              "video_title String) ENGINE = MergeTree PARTITION BY toYYYYMM(view_start) ORDER BY (environment_id, viewer_id)")
    conn.rows(f"CREATE TABLE {db}.view_events (event_id String, view_id String, ts DateTime, event_type String) "
              "ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY view_id")
    conn.rows(f"INSERT INTO {db}.views SELECT concat('v', toString(number)), ['env_a', 'env_b', 'env_other'][number % 3 + 1], "
              f"concat('viewer-', toString(intDiv(number, 3) % {max(views // 9, 1)})), "
              "toDateTime('2026-11-01 00:00:00') - (number % 200) * 86400, 'Sintel' FROM numbers(" + str(views) + ")")
    conn.rows(f"INSERT INTO {db}.view_events SELECT concat('e', toString(number)), concat('v', toString(number)), "
              "toDateTime('2026-11-01 00:00:00') - (number % 200) * 86400, 'playing' FROM numbers(" + str(views) + ")")


def disk(conn: ChdbConn, db: str) -> int:
    return int(conn.rows(f"SELECT sum(bytes_on_disk) FROM system.parts WHERE database = '{db}' AND active")[0][0])


def mutations(conn: ChdbConn, db: str) -> int:
    return int(conn.rows(f"SELECT count() FROM system.mutations WHERE database = '{db}'")[0][0])


def baseline(conn: ChdbConn, db: str, ids: list[str], lightweight: bool) -> None:
    where = f"environment_id IN {literal(TENANT)} AND viewer_id IN {literal(tuple(ids))}"
    for table, pred in (("view_events", f"view_id IN (SELECT view_id FROM {db}.views WHERE {where})"), ("views", where)):
        sql = f"DELETE FROM {db}.{table} WHERE {pred}" if lightweight else f"ALTER TABLE {db}.{table} DELETE WHERE {pred}"
        conn.rows(sql)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--views", type=int, default=10_000_000)
    ap.add_argument("--requests", type=int, default=1_000)
    ap.add_argument("--mode", choices=["auto", "lightweight", "mutation"], default="auto")
    args = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="erasure-bench-chdb-")
    conn = ChdbConn(folder)
    try:
        t0 = time.perf_counter()
        for db in ("erasure_run", "baseline_run"):
            build(conn, db, args.views)
        print(f"built 2 x {args.views:,} views + {args.views:,} events in {time.perf_counter() - t0:.1f}s")
        viewers = max(args.views // 9, 1)
        ids = [f"viewer-{(i * 7919) % viewers}" for i in range(args.requests)]
        targets = [Target(f"R{i}", TENANT, (v,)) for i, v in enumerate(ids)]

        before = disk(conn, "erasure_run")
        store = ClickHouseStore(StoreSettings(url=f"chdb:///{folder}?database=erasure_run", tables=TABLES, delete_mode=args.mode))
        store.check_schema()
        t0 = time.perf_counter()
        results = store.erase_many(targets)
        t_erasure = time.perf_counter() - t0
        failed = [r for r in results if isinstance(r, Exception)]
        rows = sum(r.total for r in results if not isinstance(r, Exception))
        lightweight = store._reflect().lightweight
        issued = store.deletes_issued
        store.close()

        b_before = disk(conn, "baseline_run")
        t0 = time.perf_counter()
        baseline(conn, "baseline_run", ids, lightweight)
        t_base = time.perf_counter() - t0
        left = {db: int(conn.rows(f"SELECT count() FROM {db}.views")[0][0]) for db in ("erasure_run", "baseline_run")}

        print(f"{args.requests} requests, delete mode {'lightweight' if lightweight else 'mutation'}: {rows:,} rows erased, "
              f"{len(failed)} failed, views left {left}")
        print(f"erasure  : {t_erasure:8.2f}s  delete statements {issued}, mutations recorded {mutations(conn, 'erasure_run')}, "
              f"active parts {before / 1e6:.1f} MB -> {disk(conn, 'erasure_run') / 1e6:.1f} MB")
        print(f"baseline : {t_base:8.2f}s  delete statements 2, mutations recorded {mutations(conn, 'baseline_run')}, "
              f"active parts {b_before / 1e6:.1f} MB -> {disk(conn, 'baseline_run') / 1e6:.1f} MB")
        print(f"ratio erasure/baseline: {t_erasure / t_base:.2f}")
    finally:
        conn.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
