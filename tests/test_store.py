"""The view store deletes exactly what a request names, in the requester's tenant, atomically.

Every test runs on real SQLite, PostgreSQL and MariaDB (``store_url`` makes and
drops a database per test), because exactness, locking and batching are
exactly where the three differ.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from erasure.config import StoreSettings, StoreTable, config_from_dict
from erasure.errors import ConfigError, StoreError, StoreUnavailableError
from erasure.store import (
    ErasureResult,
    StoreVerificationError,
    Target,
    ViewStore,
    batches,
    unique_in_order,
)
from erasure.viewschema import DEMO_STORE_TABLES, view_events, views
from tests.services import free_port
from tests.world import zoned

NOW = datetime(2026, 11, 1, 12, 0, 0)
ACME = ("env_acme_prod", "env_acme_staging")
GLOBEX = ("env_globex_prod",)


@pytest.fixture
def store(store_url: str, engine: sa.Engine) -> Iterator[ViewStore]:
    s = ViewStore(StoreSettings(url=store_url, tables=DEMO_STORE_TABLES, lock_timeout_seconds=1))
    yield s
    s.close()


def add_views(engine: sa.Engine, rows: list[tuple[str, str, str]], *, events_per_view: int = 2) -> None:
    """Insert (view_id, environment_id, viewer_id) rows, each with its events."""
    if not rows:
        return
    with engine.begin() as conn:
        conn.execute(views.insert(), [
            {"view_id": v, "environment_id": env, "viewer_id": viewer, "view_start": NOW, "video_title": "Sintel"}
            for v, env, viewer in rows
        ])
        if events_per_view:
            conn.execute(view_events.insert(), [
                {"event_id": f"{v}-e{i}", "view_id": v, "ts": NOW + timedelta(seconds=i), "event_type": "playing"}
                for v, _, _ in rows for i in range(events_per_view)
            ])


def remaining_views(engine: sa.Engine) -> set[tuple[str, str, str]]:
    with engine.connect() as conn:
        return {tuple(r) for r in conn.execute(sa.select(views.c.view_id, views.c.environment_id, views.c.viewer_id))}


def remaining_event_views(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(view_events.c.view_id).distinct()).scalars())


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in (views, view_events)}


# ---------------------------------------------------------------- the package


def test_every_store_module_says_why_it_exists_and_old_imports_still_work() -> None:
    import importlib
    import pkgutil

    import erasure.delivery
    import erasure.errors
    import erasure.store

    modules = [m.name for m in pkgutil.iter_modules(erasure.store.__path__)]
    assert {"sqlite", "postgresql", "mysql", "plan", "schema", "engine"} <= set(modules)
    for name in modules:
        doc = importlib.import_module(f"erasure.store.{name}").__doc__
        assert doc and len(doc.split()) > 20, name
    # The error classes live in errors.py; the names callers used before still reach the same classes.
    assert erasure.store.StoreVerificationError is erasure.errors.StoreVerificationError
    for name in ("DeliveryTemporaryError", "DeliveryUnavailableError", "DeliveryPermanentError"):
        assert getattr(erasure.delivery, name) is getattr(erasure.errors, name)


# ---------------------------------------------------------------- pure helpers


def test_batches_respect_count_and_byte_limits() -> None:
    assert list(batches(list(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batches(["aaaa", "bbbb", "cc"], 10, max_bytes=24)) == [["aaaa", "bbbb"], ["cc"]]
    assert list(batches([], 5)) == []


def test_unique_in_order_keeps_case_variants_apart() -> None:
    assert unique_in_order(["a", "A", "a", "a "]) == ["a", "A", "a "]


# ---------------------------------------------------------------- erasure


def test_erase_deletes_the_viewers_views_and_their_events(store: ViewStore, engine: sa.Engine) -> None:
    add_views(engine, [("v1", ACME[0], "alice"), ("v2", ACME[1], "alice"), ("v3", ACME[0], "bob")])

    result = store.erase(Target("REQ-1", ACME, ("alice",)))

    assert result == ErasureResult("REQ-1", {"views": 2, "view_events": 4}, dry_run=False)
    assert result.total == 6
    assert remaining_views(engine) == {("v3", ACME[0], "bob")}
    assert remaining_event_views(engine) == {"v3"}


def test_same_viewer_id_in_another_tenant_is_kept(store: ViewStore, engine: sa.Engine) -> None:
    add_views(engine, [("v1", ACME[0], "user-42"), ("v2", GLOBEX[0], "user-42"), ("v3", "ENV_ACME_PROD", "user-42")])

    result = store.erase(Target("REQ-1", (ACME[0],), ("user-42",)))

    assert result.counts == {"views": 1, "view_events": 2}
    # Another tenant's view, and an environment differing only in case, both stay.
    assert remaining_views(engine) == {("v2", GLOBEX[0], "user-42"), ("v3", "ENV_ACME_PROD", "user-42")}
    assert remaining_event_views(engine) == {"v2", "v3"}


TRICKY_IDS = ["abc", "ABC", "Abc", "abc ", " abc", "àbc", "a%", "a_c", "a%c", "o'brien", 'say "hi"', "back\\slash", "ß", "ss", "日本"]


def test_ids_match_exactly_never_as_patterns_or_variants(store: ViewStore, engine: sa.Engine) -> None:
    rows = [(f"v{i:03d}", ACME[0], viewer) for i, viewer in enumerate(TRICKY_IDS)]
    add_views(engine, rows, events_per_view=1)
    left = set(TRICKY_IDS)

    # Each request takes exactly its own ids: no wildcard, case, accent, quote or padding games.
    for asked in (["abc"], ["a%", "a_c"], ["abc "], ["o'brien", 'say "hi"', "back\\slash"], ["ss", "日本"], ["ABC", "àbc"]):
        result = store.erase(Target("REQ", ACME, tuple(asked)))
        left -= set(asked)
        assert result.counts == {"views": len(asked), "view_events": len(asked)}, asked
        assert {viewer for _, _, viewer in remaining_views(engine)} == left, asked

    assert left == {"Abc", " abc", "a%c", "ß"}


def test_count_reports_what_erase_then_deletes_and_deletes_nothing(store: ViewStore, engine: sa.Engine) -> None:
    add_views(engine, [("v1", ACME[0], "alice"), ("v2", ACME[1], "alice"), ("v3", GLOBEX[0], "alice")], events_per_view=3)
    before = counts(engine)
    target = Target("REQ-1", ACME, ("alice", "nobody"))

    counted = store.count(target)

    assert counted == ErasureResult("REQ-1", {"views": 2, "view_events": 6}, dry_run=True)
    assert counts(engine) == before
    assert store.erase(target).counts == counted.counts


def test_no_match_reports_zero_for_every_table(store: ViewStore, engine: sa.Engine) -> None:
    add_views(engine, [("v1", ACME[0], "alice")])
    assert store.erase(Target("REQ-1", ACME, ("bob",))).counts == {"views": 0, "view_events": 0}
    assert store.erase(Target("REQ-2", ACME, ())).counts == {"views": 0, "view_events": 0}
    assert counts(engine) == {"views": 1, "view_events": 2}


def test_rerun_after_a_crash_deletes_what_is_left_and_reports_it(store: ViewStore, engine: sa.Engine) -> None:
    add_views(engine, [("v1", ACME[0], "alice")])
    assert store.erase(Target("REQ-1", ACME, ("alice",))).total == 3
    # Crash after the commit, before the state database recorded it; meanwhile a late view arrived.
    add_views(engine, [("v9", ACME[1], "alice")], events_per_view=1)

    again = store.erase(Target("REQ-1", ACME, ("alice",)))

    assert again.counts == {"views": 1, "view_events": 1}
    assert store.erase(Target("REQ-1", ACME, ("alice",))).counts == {"views": 0, "view_events": 0}


@pytest.mark.parametrize("bad", [Target("R", (), ("alice",)), Target("R", ACME, ("",)), Target("R", ACME, ("a\x00b",))])
def test_unscoped_or_malformed_targets_are_refused_before_any_sql(store: ViewStore, engine: sa.Engine, bad: Target) -> None:
    add_views(engine, [("v1", ACME[0], "alice")])
    with pytest.raises(StoreError, match="request R"):
        store.erase(bad)
    assert counts(engine) == {"views": 1, "view_events": 2}


@pytest.mark.slow
def test_100k_ids_in_one_request(store: ViewStore, engine: sa.Engine) -> None:
    asked = [f"viewer-{i:06d}" for i in range(100_000)]
    # Every 20th asked id has a view; ids just outside the request (and the same ids in another tenant) stay.
    rows = [(f"a{i:06d}", ACME[i % 2], asked[i]) for i in range(0, 100_000, 20)]
    rows += [(f"b{i:06d}", ACME[0], f"viewer-{i:06d}") for i in range(100_000, 101_000)]
    rows += [(f"g{i:06d}", GLOBEX[0], asked[i]) for i in range(0, 100_000, 100)]
    add_views(engine, rows, events_per_view=1)

    result = store.erase(Target("REQ-BIG", ACME, tuple(asked)))

    assert result.counts == {"views": 5_000, "view_events": 5_000}
    assert counts(engine) == {"views": 2_000, "view_events": 2_000}
    assert not any(v.startswith("a") for v, _, _ in remaining_views(engine))


def test_children_at_any_depth_are_deleted_before_their_parents(store_url: str, engine: sa.Engine) -> None:
    meta = sa.MetaData()
    notes = sa.Table("event_notes", meta, sa.Column("note_id", sa.Integer, primary_key=True),
                     sa.Column("event_id", sa.String(80), index=True), sa.Column("body", sa.String(50)))
    meta.create_all(engine)
    add_views(engine, [("v1", ACME[0], "alice"), ("v2", ACME[0], "bob")])
    with engine.begin() as conn:
        conn.execute(notes.insert(), [{"note_id": i, "event_id": e, "body": "x"} for i, e in enumerate(["v1-e0", "v1-e0", "v1-e1", "v2-e0"], start=1)])
    tables = (
        DEMO_STORE_TABLES[0],
        StoreTable(name="view_events", parent="views", parent_key="view_id", key="event_id"),
        StoreTable(name="event_notes", parent="view_events", parent_key="event_id"),
    )

    with ViewStore(StoreSettings(url=store_url, tables=tables)) as s:
        assert s.count(Target("R", ACME, ("alice",))).counts == {"views": 1, "view_events": 2, "event_notes": 3}
        result = s.erase(Target("R", ACME, ("alice",)))

    assert result.counts == {"views": 1, "view_events": 2, "event_notes": 3}
    with engine.connect() as conn:
        assert conn.execute(sa.select(notes.c.event_id)).scalars().all() == ["v2-e0"]


# ---------------------------------------------------------------- locks, atomicity, group commit


def _lock_sql(store_url: str) -> str:
    if store_url.startswith("sqlite"):
        return "UPDATE views SET video_title = 'locked' WHERE view_id = 'v1'"  # takes the database write lock
    return "SELECT view_id FROM views WHERE view_id = 'v1' FOR UPDATE"


def test_a_row_lock_held_elsewhere_times_out_rolls_back_and_is_retried_later(store: ViewStore, store_url: str, engine: sa.Engine) -> None:
    add_views(engine, [("v1", ACME[0], "alice"), ("v2", ACME[1], "alice")])
    other = sa.create_engine(store_url)
    try:
        with other.connect() as holder:
            holder.begin()
            holder.exec_driver_sql(_lock_sql(store_url))

            with pytest.raises(StoreUnavailableError, match="retried on the next run"):
                store.erase(Target("REQ-1", ACME, ("alice",)))

            holder.rollback()
    finally:
        other.dispose()
    assert counts(engine) == {"views": 2, "view_events": 4}  # clean rollback: nothing half-deleted

    assert store.erase(Target("REQ-1", ACME, ("alice",))).counts == {"views": 2, "view_events": 4}
    assert counts(engine) == {"views": 0, "view_events": 0}


def test_group_commit_erases_every_target_in_one_go(store: ViewStore, engine: sa.Engine) -> None:
    add_views(engine, [("v1", ACME[0], "alice"), ("v2", ACME[0], "bob"), ("v3", GLOBEX[0], "carol"), ("v4", ACME[0], "dave")])

    results = store.erase_many([Target("R1", ACME, ("alice",)), Target("R2", ACME, ("bob", "zed")), Target("R3", GLOBEX, ("carol",))])

    assert [(r.key, r.counts) for r in results if isinstance(r, ErasureResult)] == [
        ("R1", {"views": 1, "view_events": 2}), ("R2", {"views": 1, "view_events": 2}), ("R3", {"views": 1, "view_events": 2}),
    ]
    assert remaining_views(engine) == {("v4", ACME[0], "dave")}


def test_a_failing_target_rolls_back_the_group_and_each_is_retried_alone(store_url: str, engine: sa.Engine) -> None:
    store = ViewStore(StoreSettings(url=store_url, tables=DEMO_STORE_TABLES, lock_timeout_seconds=0))  # 0: do not wait
    add_views(engine, [("v1", ACME[0], "alice"), ("v2", GLOBEX[0], "bob"), ("v3", ACME[0], "carol")])
    other = sa.create_engine(store_url)
    try:
        with other.connect() as holder:
            holder.begin()
            if store_url.startswith("sqlite"):
                # SQLite locks the whole database: the group and every retry time out.
                holder.exec_driver_sql(_lock_sql(store_url))
            else:
                holder.exec_driver_sql("SELECT view_id FROM views WHERE view_id = 'v2' FOR UPDATE")
            results = store.erase_many([Target("R1", ACME, ("alice",)), Target("R2", GLOBEX, ("bob",)), Target("R3", ACME, ("carol",))])
            holder.rollback()
    finally:
        other.dispose()
        store.close()

    assert isinstance(results[1], StoreUnavailableError)
    if store_url.startswith("sqlite"):
        assert all(isinstance(r, StoreUnavailableError) for r in results)
        assert counts(engine) == {"views": 3, "view_events": 6}
    else:
        assert [r.counts for r in (results[0], results[2]) if isinstance(r, ErasureResult)] == [{"views": 1, "view_events": 2}] * 2
        assert remaining_views(engine) == {("v2", GLOBEX[0], "bob")}
        assert remaining_event_views(engine) == {"v2"}


def test_an_invalid_target_does_not_stop_the_others(store: ViewStore, engine: sa.Engine) -> None:
    add_views(engine, [("v1", ACME[0], "alice")])
    results = store.erase_many([Target("R1", (), ("alice",)), Target("R2", ACME, ("alice",))])
    assert isinstance(results[0], StoreError)
    assert isinstance(results[1], ErasureResult) and results[1].counts == {"views": 1, "view_events": 2}


_INSERT_AGAIN = "INSERT INTO sessions (environment_id, viewer_id) VALUES (OLD.environment_id, OLD.viewer_id)"
_REAPPEAR = {
    "sqlite": [f"CREATE TRIGGER reappear AFTER DELETE ON views BEGIN {_INSERT_AGAIN}; END"],
    "postgresql": [
        f"CREATE FUNCTION reappear() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {_INSERT_AGAIN}; RETURN OLD; END $$",
        "CREATE TRIGGER reappear AFTER DELETE ON views FOR EACH ROW EXECUTE FUNCTION reappear()",
    ],
    "mysql": [f"CREATE TRIGGER reappear AFTER DELETE ON views FOR EACH ROW {_INSERT_AGAIN}"],
}


def test_rows_that_reappear_before_commit_fail_verification_and_roll_back(store_url: str, engine: sa.Engine) -> None:
    """A writer racing the erasure (here: a trigger) must not let it commit with data left behind."""
    meta = sa.MetaData()
    sa.Table("sessions", meta, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("environment_id", sa.String(64)), sa.Column("viewer_id", sa.String(256)),
             sa.Index("ix_sessions_env_viewer", "environment_id", "viewer_id"))
    meta.create_all(engine)
    with engine.begin() as conn:
        for ddl in _REAPPEAR[engine.dialect.name]:
            conn.exec_driver_sql(ddl)
    add_views(engine, [("v1", ACME[0], "alice")])
    tables = (StoreTable(name="sessions", viewer_column="viewer_id", tenant_column="environment_id"), *DEMO_STORE_TABLES)

    with ViewStore(StoreSettings(url=store_url, tables=tables)) as s:
        with pytest.raises(StoreVerificationError, match="still matched"):
            s.erase(Target("REQ-1", ACME, ("alice",)))

    assert counts(engine) == {"views": 1, "view_events": 2}


# ---------------------------------------------------------------- the table tree (checked once, at config load)

ROOT = {"name": "views", "viewer_column": "viewer_id", "tenant_column": "environment_id", "key": "view_id"}
EVENTS = {"name": "view_events", "parent": "views", "parent_key": "view_id", "key": "event_id"}


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ([ROOT, ROOT], "store.tables[1].name = 'views' is configured twice (also store.tables[0])"),
        ([ROOT, {**EVENTS, "parent": "veiws"}], "store.tables[1].parent = 'veiws' is not a configured table"),
        ([ROOT, {**EVENTS, "parent_key": None}], "store.tables[1].parent_key is required for a child table"),
        ([{**ROOT, "key": None}, EVENTS], "store table 'views' needs `key` (store.tables[0].key) because 'view_events' names it as parent"),
        ([{**ROOT, "tenant_column": None}], "store.tables[0] needs viewer_column and tenant_column"),
        ([{**ROOT, "viewer_column": None}, EVENTS], "store.tables[0] needs viewer_column and tenant_column"),
        ([ROOT, {**EVENTS, "parent": "view_events"}], "store.tables[1].parent: the parent chain view_events -> view_events loops"),
        ([ROOT, {**EVENTS, "parent": "notes"}, {"name": "notes", "parent": "view_events", "parent_key": "event_id", "key": "n"}],
         "store.tables[1].parent: the parent chain view_events -> notes -> view_events loops"),
        ([{"name": "notes", "parent": "view_events", "parent_key": "event_id"}, ROOT, {**EVENTS, "parent": "view_events"}],
         "store.tables[0].parent: the parent chain notes -> view_events -> view_events loops"),
    ],
)
def test_a_wrong_table_tree_is_refused_at_config_load_naming_the_key(tables: list[dict], message: str) -> None:
    clean = [{k: v for k, v in t.items() if v is not None} for t in tables]
    with pytest.raises(ConfigError) as err:
        config_from_dict(zoned({"store": {"tables": clean}}))
    assert message in str(err.value)


@given(st.lists(st.one_of(st.none(), st.integers(0, 5)), min_size=1, max_size=6))
def test_a_tree_is_accepted_exactly_when_every_parent_chain_reaches_a_viewer_table(parents: list[int | None]) -> None:
    """Random parent links among tables t0..tn (an index past the end names a missing table)."""
    tables = [
        {"name": f"t{i}", "key": "id", **({"viewer_column": "v", "tenant_column": "e"} if p is None else {"parent": f"t{p}", "parent_key": "pid"})}
        for i, p in enumerate(parents)
    ]

    def reaches_a_root(i: int) -> bool:
        seen = set()
        while parents[i] is not None:
            if i in seen or parents[i] >= len(parents):  # type: ignore[operator]
                return False
            seen.add(i)
            i = parents[i]  # type: ignore[assignment]
        return True

    if all(reaches_a_root(i) for i in range(len(parents))):
        assert config_from_dict(zoned({"store": {"tables": tables}})).store.tables[0].name == "t0"
    else:
        with pytest.raises(ConfigError, match=r"store\.tables\[\d\]\.parent"):
            config_from_dict(zoned({"store": {"tables": tables}}))


# ---------------------------------------------------------------- schema check


def test_demo_schema_passes_the_check_without_warnings(store: ViewStore) -> None:
    assert store.check_schema() == []


def test_a_missing_table_is_named_with_its_config_key(store_url: str, engine: sa.Engine) -> None:
    tables = (StoreTable(name="vews", viewer_column="viewer_id", tenant_column="environment_id", key="view_id"),)
    with ViewStore(StoreSettings(url=store_url, tables=tables)) as s:
        with pytest.raises(StoreError, match=r"no table 'vews' \(store.tables\[0\].name\); did you mean 'views'"):
            s.check_schema()


def test_a_missing_column_is_named_with_its_config_key(store_url: str, engine: sa.Engine) -> None:
    tables = (DEMO_STORE_TABLES[0], StoreTable(name="view_events", parent="views", parent_key="view_key"))
    with ViewStore(StoreSettings(url=store_url, tables=tables)) as s:
        with pytest.raises(StoreError, match=r"no column 'view_key' \(store.tables\[1\].parent_key\)"):
            s.erase(Target("R", ACME, ("alice",)))


def test_unindexed_viewer_and_tenant_columns_are_warned_about(store_url: str, engine: sa.Engine) -> None:
    meta = sa.MetaData()
    sa.Table("plays", meta, sa.Column("play_id", sa.Integer, primary_key=True),
             sa.Column("env", sa.String(64)), sa.Column("viewer", sa.String(64)))
    meta.create_all(engine)
    tables = (StoreTable(name="plays", viewer_column="viewer", tenant_column="env", key="play_id"),)
    with ViewStore(StoreSettings(url=store_url, tables=tables)) as s:
        notes = s.check_schema()
    assert len(notes) == 1 and "no index starts with (env, viewer)" in notes[0]


def test_an_unreachable_server_is_a_temporary_error_that_says_what_to_do() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    with ViewStore(StoreSettings(url=url, tables=DEMO_STORE_TABLES)) as s:
        with pytest.raises(StoreUnavailableError, match="retried on the next run"):
            s.count(Target("R", ACME, ("alice",)))


def test_a_missing_password_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ERASURE_TEST_NO_SUCH_VAR", raising=False)
    from erasure.errors import ConfigError

    with pytest.raises(ConfigError, match="store.password_env names ERASURE_TEST_NO_SUCH_VAR"):
        ViewStore(StoreSettings(url="postgresql+psycopg://u@127.0.0.1/x", tables=DEMO_STORE_TABLES, password_env="ERASURE_TEST_NO_SUCH_VAR"))


# ---------------------------------------------------------------- oracle


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rows_left_match_a_plain_python_computation(store: ViewStore, engine: sa.Engine, seed: int) -> None:
    rng = random.Random(seed)
    envs = ["env_a1", "env_a2", "env_b1", "ENV_A1", "env_c1"]
    tenants = {"a": ("env_a1", "env_a2"), "b": ("env_b1",), "c": ("env_c1", "ENV_A1")}
    pool = ["u1", "U1", "u1 ", "u_1", "u%", "ü1", "u'1", "x", "X", "y", "zz", "z"]
    rows = [(f"v{i:05d}", rng.choice(envs), rng.choice(pool)) for i in range(rng.randrange(200, 400))]
    add_views(engine, rows, events_per_view=0)
    with engine.begin() as conn:  # a random number of events per view, some views with none
        ev = [{"event_id": f"{v}-{k}", "view_id": v, "ts": NOW, "event_type": "playing"} for v, _, _ in rows for k in range(rng.randrange(4))]
        if ev:
            conn.execute(view_events.insert(), ev)
    targets = [Target(f"R{k}", tenants[t], tuple(rng.sample(pool, rng.randrange(1, 5)))) for k, t in enumerate(rng.choices(list(tenants), k=4))]

    erased = [store.erase(t) for t in targets[:2]] + list(store.erase_many(targets[2:]))

    gone = {v for v, env, viewer in rows for t in targets if env in t.environments and viewer in t.viewer_ids}
    assert remaining_views(engine) == {r for r in rows if r[0] not in gone}
    assert remaining_event_views(engine) == {e["view_id"] for e in ev} - gone
    assert sum(r.counts["views"] for r in erased if isinstance(r, ErasureResult)) == len(gone)
    assert sum(r.counts["view_events"] for r in erased if isinstance(r, ErasureResult)) == sum(1 for e in ev if e["view_id"] in gone)


# ---------------------------------------------------------------- dialect corners


@pytest.mark.parametrize("store_backend", [pytest.param("sqlite", id="sqlite")])
def test_sqlite_nocase_column_still_matches_exactly(store_url: str) -> None:
    eng = sa.create_engine(store_url)
    with eng.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE plays (id INTEGER PRIMARY KEY, env TEXT, viewer TEXT COLLATE NOCASE)")
        conn.exec_driver_sql("CREATE INDEX ix_plays ON plays (env, viewer)")
        conn.exec_driver_sql("INSERT INTO plays (env, viewer) VALUES ('e', 'Alice'), ('e', 'alice'), ('e', 'ALICE')")
    tables = (StoreTable(name="plays", viewer_column="viewer", tenant_column="env"),)
    with ViewStore(StoreSettings(url=store_url, tables=tables)) as s:
        assert s.erase(Target("R", ("e",), ("alice",))).counts == {"plays": 1}
    with eng.connect() as conn:
        assert sorted(conn.exec_driver_sql("SELECT viewer FROM plays").scalars()) == ["ALICE", "Alice"]
    eng.dispose()


@pytest.mark.parametrize("store_backend", [pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)])
def test_postgres_nondeterministic_collation_is_refused(store_url: str) -> None:
    eng = sa.create_engine(store_url)
    with eng.begin() as conn:
        conn.exec_driver_sql("CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)")
        conn.exec_driver_sql("CREATE TABLE plays (id serial PRIMARY KEY, env text, viewer text COLLATE ci)")
    eng.dispose()
    tables = (StoreTable(name="plays", viewer_column="viewer", tenant_column="env"),)
    with ViewStore(StoreSettings(url=store_url, tables=tables)) as s:
        with pytest.raises(StoreError, match=r"store.tables\[0\]: column plays.viewer uses a nondeterministic collation"):
            s.check_schema()


def test_several_stores_can_share_one_engine(store_url: str, engine: sa.Engine) -> None:
    add_views(engine, [("v1", ACME[0], "alice"), ("v2", ACME[0], "bob")])
    settings = StoreSettings(url=store_url, tables=DEMO_STORE_TABLES)
    first, second = ViewStore(settings, engine=engine), ViewStore(settings, engine=engine)
    assert first.erase(Target("R1", ACME, ("alice",))).counts["views"] == 1
    assert second.erase(Target("R2", ACME, ("bob",))).counts["views"] == 1
    assert counts(engine) == {"views": 0, "view_events": 0}


def test_a_parent_key_that_is_not_unique_is_refused(store_url: str, engine: sa.Engine) -> None:
    meta = sa.MetaData()
    sa.Table("sessions", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("session_key", sa.String(20), index=True),
             sa.Column("env", sa.String(20)), sa.Column("viewer", sa.String(20)), sa.Index("ix_s", "env", "viewer"))
    sa.Table("beats", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("session_key", sa.String(20), index=True))
    meta.create_all(engine)
    tables = (StoreTable(name="sessions", viewer_column="viewer", tenant_column="env", key="session_key"),
              StoreTable(name="beats", parent="sessions", parent_key="session_key"))
    with ViewStore(StoreSettings(url=store_url, tables=tables)) as s:
        with pytest.raises(StoreError, match=r"store.tables\[0\].key = 'session_key' is neither the primary key nor a unique column"):
            s.check_schema()


def test_columns_of_the_wrong_kind_are_named_with_their_config_key(store_url: str, engine: sa.Engine) -> None:
    meta = sa.MetaData()
    sa.Table("plays", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("env", sa.String(20)),
             sa.Column("viewer", sa.Integer), sa.Column("at", sa.String(30)), sa.Index("ix_p", "env", "viewer"))
    meta.create_all(engine)
    wrong_viewer = (StoreTable(name="plays", viewer_column="viewer", tenant_column="env"),)
    wrong_time = (StoreTable(name="plays", viewer_column="env", tenant_column="env", time_column="at"),)
    with ViewStore(StoreSettings(url=store_url, tables=wrong_viewer)) as s, pytest.raises(StoreError, match=r"store.tables\[0\].viewer_column = 'viewer' is a"):
        s.check_schema()
    with ViewStore(StoreSettings(url=store_url, tables=wrong_time)) as s, pytest.raises(StoreError, match=r"store.tables\[0\].time_column = 'at' is a"):
        s.check_schema()


def test_a_missing_sqlite_file_is_a_wrong_url_not_an_empty_store(tmp_path) -> None:
    missing = tmp_path / "nope" / "views.db"
    with ViewStore(StoreSettings(url=f"sqlite:///{missing}", tables=DEMO_STORE_TABLES)) as s, pytest.raises(StoreError, match="does not exist; fix store.url"):
        s.check_schema()
    assert not missing.exists()
