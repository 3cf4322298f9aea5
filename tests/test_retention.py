"""The retention purge deletes what is older than the cutoff, with its children, chunk by chunk."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from erasure.config import StoreSettings, StoreTable
from erasure.errors import ConfigError, StoreUnavailableError
from erasure.retention import purge, retention_cutoff
from erasure.store import ViewStore
from erasure.viewschema import (
    DEMO_STORE_TABLES,
    fill_synthetic_views,
    view_events,
    views,
)

NOW = datetime(2026, 11, 1, 12, 0, 0)


@pytest.fixture
def store(store_url: str, engine: sa.Engine) -> Iterator[ViewStore]:
    s = ViewStore(StoreSettings(url=store_url, tables=DEMO_STORE_TABLES))
    yield s
    s.close()


def rows(engine: sa.Engine, table: sa.Table, *cols: str) -> set[tuple]:
    with engine.connect() as conn:
        return {tuple(r) for r in conn.execute(sa.select(*[table.c[c] for c in cols]))}


def test_cutoff_is_whole_days_back_in_utc() -> None:
    assert retention_cutoff(NOW, 100) == datetime(2026, 7, 24, 12, 0, tzinfo=UTC)
    berlin = datetime(2026, 11, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert retention_cutoff(berlin, 1) == datetime(2026, 10, 31, 12, 0, tzinfo=UTC)
    with pytest.raises(ConfigError, match="--days"):
        retention_cutoff(NOW, 0)


def test_purge_matches_a_python_computation_on_synthetic_data(store: ViewStore, engine: sa.Engine) -> None:
    fill_synthetic_views(engine, {"acme": ["env_acme_prod"], "globex": ["env_globex_prod"]}, 30, 4, seed=7, now=NOW)
    cutoff = NOW - timedelta(days=100)
    all_views = rows(engine, views, "view_id", "view_start")
    all_events = rows(engine, view_events, "event_id", "view_id", "ts")
    old_views = {v for v, start in all_views if start < cutoff}
    expect_events = {e for e, v, ts in all_events if v in old_views or ts < cutoff}
    assert 0 < len(old_views) < len(all_views)  # the data really straddles the cutoff

    dry = purge(store, days=100, now=NOW, dry_run=True)
    seen: list[tuple[str, int]] = []
    done = purge(store, days=100, now=NOW, chunk_size=7, progress=lambda table, n: seen.append((table, n)))

    assert dry.counts == done.counts == {"views": len(old_views), "view_events": len(expect_events)}
    assert rows(engine, views, "view_id") == {(v,) for v, start in all_views if start >= cutoff}
    assert rows(engine, view_events, "event_id") == {(e,) for e, _, _ in all_events} - {(e,) for e in expect_events}
    views_progress = [n for table, n in seen if table == "views"]
    assert views_progress == sorted(views_progress) and views_progress[-1] == len(old_views)
    assert len(views_progress) == -(-len(old_views) // 7)  # one call per chunk of 7
    assert purge(store, days=100, now=NOW).total == 0  # nothing left to do


def test_dry_run_deletes_nothing(store: ViewStore, engine: sa.Engine) -> None:
    fill_synthetic_views(engine, {"acme": ["env_acme_prod"]}, 5, 3, seed=1, now=NOW, max_age_days=300)
    before = (rows(engine, views, "view_id"), rows(engine, view_events, "event_id"))
    result = purge(store, days=100, now=NOW, dry_run=True)
    assert result.dry_run and result.total > 0
    assert (rows(engine, views, "view_id"), rows(engine, view_events, "event_id")) == before


def test_events_of_an_old_view_go_with_it_and_old_orphans_go_too(store: ViewStore, engine: sa.Engine) -> None:
    old, young = NOW - timedelta(days=101), NOW - timedelta(days=99)
    with engine.begin() as conn:
        conn.execute(views.insert(), [
            {"view_id": "old", "environment_id": "e", "viewer_id": "a", "view_start": old},
            {"view_id": "young", "environment_id": "e", "viewer_id": "a", "view_start": young},
        ])
        conn.execute(view_events.insert(), [
            {"event_id": "old-late", "view_id": "old", "ts": young, "event_type": "ended"},  # younger, but its view is old
            {"event_id": "young-1", "view_id": "young", "ts": young, "event_type": "playing"},
            {"event_id": "orphan-old", "view_id": "gone", "ts": old, "event_type": "playing"},
            {"event_id": "orphan-young", "view_id": "gone", "ts": young, "event_type": "playing"},
        ])

    result = store.purge_older_than(NOW - timedelta(days=100))

    assert result == {"views": 1, "view_events": 2}
    assert rows(engine, views, "view_id") == {("young",)}
    assert rows(engine, view_events, "event_id") == {("young-1",), ("orphan-young",)}


def test_a_table_without_key_is_purged_in_chunks(store_url: str, engine: sa.Engine) -> None:
    meta = sa.MetaData()
    logs = sa.Table("player_logs", meta, sa.Column("env", sa.String(20)), sa.Column("viewer", sa.String(20)),
                    sa.Column("at", sa.DateTime), sa.Index("ix_logs_env_viewer", "env", "viewer"), sa.Index("ix_logs_at", "at"))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(logs.insert(), [{"env": "e", "viewer": "a", "at": NOW - timedelta(days=d)} for d in range(0, 200, 10)])
    tables = (StoreTable(name="player_logs", viewer_column="viewer", tenant_column="env", time_column="at"),)
    seen: list[int] = []
    with ViewStore(StoreSettings(url=store_url, tables=tables)) as s:
        assert s.purge_older_than(NOW - timedelta(days=100), chunk_size=3, progress=lambda t, n: seen.append(n)) == {"player_logs": 9}
    assert seen == [3, 6, 9]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(logs)).scalar_one() == 11


def test_aware_cutoffs_compare_in_utc(store: ViewStore, engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(views.insert(), [
            {"view_id": "a", "environment_id": "e", "viewer_id": "x", "view_start": datetime(2026, 1, 1, 11, 30)},
            {"view_id": "b", "environment_id": "e", "viewer_id": "x", "view_start": datetime(2026, 1, 1, 12, 30)},
        ])
    # 13:00 in UTC+1 is 12:00 UTC: only the 11:30 UTC view is older.
    cutoff = datetime(2026, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert store.purge_older_than(cutoff, dry_run=True)["views"] == 1


def test_an_interrupted_purge_reports_what_it_deleted_and_a_rerun_finishes(store_url: str, store: ViewStore, engine: sa.Engine) -> None:
    fill_synthetic_views(engine, {"acme": ["env_acme_prod"]}, 10, 4, seed=3, now=NOW, max_age_days=300)
    old_total = len({v for v, start in rows(engine, views, "view_id", "view_start") if start < NOW - timedelta(days=100)})
    assert old_total > 10
    other = sa.create_engine(store_url)
    try:
        with other.connect() as holder:
            calls: list[int] = []

            def take_a_lock_after_the_first_chunk(table: str, n: int) -> None:
                calls.append(n)
                if len(calls) == 1:  # a writer grabs every row just as the purge starts its second chunk
                    holder.begin()
                    holder.exec_driver_sql("UPDATE views SET video_title = 'busy'")

            slow = ViewStore(StoreSettings(url=store_url, tables=DEMO_STORE_TABLES, lock_timeout_seconds=0))
            with pytest.raises(StoreUnavailableError) as caught:
                slow.purge_older_than(NOW - timedelta(days=100), chunk_size=5, progress=take_a_lock_after_the_first_chunk)
            holder.rollback()
            slow.close()
    finally:
        other.dispose()

    assert caught.value.partial_counts["views"] == 5  # type: ignore[attr-defined]
    assert store.purge_older_than(NOW - timedelta(days=100))["views"] == old_total - 5
