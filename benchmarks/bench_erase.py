"""Erasure speed against a raw-SQL baseline, measured in the same run.

    python benchmarks/bench_erase.py [--viewers N] [--views-per-viewer N] [--ids K] [--repeat R]

Builds one SQLite view store with synthetic views (erasure.viewschema), copies
it per trial, and times, on identical copies:

- baseline: the two plain DELETE statements a DBA would write with sqlite3
  (children through a subquery, then the views), one transaction, no checks;
- erasure: ``ViewStore.erase`` (tenant-scoped, exact BINARY matching, batched
  binds, recount-to-zero verification, one transaction).

Prints the median of each and their ratio (erasure / baseline). No target is
asserted here: the numbers go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from erasure.config import StoreSettings, StoreTable  # noqa: E402
from erasure.store import Target, ViewStore  # noqa: E402
from erasure.viewschema import create_demo_schema, fill_synthetic_views  # noqa: E402

ENVS = ["env_a", "env_b"]
TABLES = (
    StoreTable(name="views", viewer_column="viewer_id", tenant_column="environment_id", key="view_id", time_column="view_start"),
    StoreTable(name="view_events", parent="views", parent_key="view_id", time_column="ts"),
)


def build(path: Path, viewers: int, views_per_viewer: int) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    create_demo_schema(engine)
    fill_synthetic_views(engine, {"a": ENVS, "b": ["env_other"]}, viewer_ids_per_env=viewers,
                         views_per_viewer=views_per_viewer, seed=3, now=dt.datetime(2026, 11, 1))
    engine.dispose()


def baseline(path: Path, ids: list[str]) -> int:
    con = sqlite3.connect(path)
    try:
        with con:
            marks_e = ",".join("?" * len(ENVS))
            marks_i = ",".join("?" * len(ids))
            where = f"environment_id IN ({marks_e}) AND viewer_id IN ({marks_i})"
            cur = con.execute(
                f"DELETE FROM view_events WHERE view_id IN (SELECT view_id FROM views WHERE {where})", [*ENVS, *ids])
            n = cur.rowcount
            n += con.execute(f"DELETE FROM views WHERE {where}", [*ENVS, *ids]).rowcount
        return n
    finally:
        con.close()


def with_erasure(path: Path, ids: list[str]) -> int:
    store = ViewStore(StoreSettings(url=f"sqlite:///{path}", tables=TABLES))
    try:
        return store.erase(Target("bench", tuple(ENVS), tuple(ids))).total
    finally:
        store.close()


def trial(source: Path, work: Path, fn, ids: list[str]) -> tuple[float, int]:
    shutil.copyfile(source, work)
    start = time.perf_counter()
    n = fn(work, ids)
    return time.perf_counter() - start, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--viewers", type=int, default=5000, help="viewer ids per environment")
    ap.add_argument("--views-per-viewer", type=int, default=4)
    ap.add_argument("--ids", type=int, default=1000, help="viewer ids named by the request")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source, work = Path(tmp) / "views.db", Path(tmp) / "work.db"
        build(source, args.viewers, args.views_per_viewer)
        ids = [f"viewer-{i:05d}" for i in range(1, args.ids + 1)]
        results = {}
        for name, fn in (("baseline", baseline), ("erasure", with_erasure)):
            times, counts = zip(*(trial(source, work, fn, ids) for _ in range(args.repeat)))
            assert len(set(counts)) == 1, counts
            results[name] = (statistics.median(times), counts[0])
        (tb, nb), (te, ne) = results["baseline"], results["erasure"]
        assert nb == ne, f"baseline deleted {nb} rows, erasure {ne}"
        print(f"store: sqlite, {args.viewers * len(ENVS) * args.views_per_viewer} views in scope "
              f"(+{args.viewers * args.views_per_viewer} in another tenant), request naming {args.ids} ids, "
              f"{nb} rows deleted, median of {args.repeat}")
        print(f"baseline (raw DELETE):     {tb * 1000:8.1f} ms")
        print(f"erasure  (ViewStore.erase): {te * 1000:8.1f} ms")
        print(f"ratio erasure/baseline:    {te / tb:8.2f}x")


if __name__ == "__main__":
    main()
