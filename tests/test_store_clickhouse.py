"""ClickHouse stores delete exactly what a request names, in the requester's tenant, and prove it.

The same behaviour as tests/test_store.py, on real ClickHouse engines
(``ch``: chdb with lightweight DELETE, Debian's 18.16 server with mutations,
and a two-shard 18.16 cluster behind Distributed tables). What differs is
what ClickHouse lacks: there is no transaction, so instead of rollbacks these
tests pin down counts taken before deleting, one delete statement per table
per group, waiting for mutations, and verification that nothing is left.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from erasure.config import StoreSettings, StoreTable
from erasure.errors import StoreError, StoreUnavailableError
from erasure.store import ErasureResult, StoreVerificationError, Target
from erasure.store.clickhouse import ClickHouseStore, distributed_target, literal, parse_version, ttl_clause
from erasure.store.stores import open_store
from erasure.viewschema import DEMO_STORE_TABLES
from tests.clickhouse_backends import CH, CH_BACKENDS, NOW
from tests.test_store import ACME, GLOBEX, TRICKY_IDS


def store_for(ch: CH, tables: tuple[StoreTable, ...] = DEMO_STORE_TABLES, **kw: object) -> ClickHouseStore:
    s = open_store(StoreSettings(url=ch.url, tables=tables, **kw))  # type: ignore[arg-type]
    assert isinstance(s, ClickHouseStore)
    return s


# ---------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(("value", "text"), [
    ("abc", "'abc'"), ("o'brien", r"'o\'brien'"), ("back\\slash", r"'back\\slash'"), ("a%", "'a%'"),
    (("a",), "('a')"), ((("e", "v"), ("f", "w")), "(('e', 'v'), ('f', 'w'))"), (datetime(2026, 1, 2, 3, 4, 5), "'2026-01-02 03:04:05'"),
])
def test_values_become_quoted_literals(value: object, text: str) -> None:
    assert literal(value) == text


@pytest.mark.parametrize(("text", "ok"), [("18.16.1", (18, 16)), ("26.9.2.1", (26, 9)), ("24.3", (24, 3)),
                                          ("devel", None), ("", None), ("v23.3", None)])
def test_server_versions_are_read_or_refused_clearly(text: str, ok: tuple[int, int] | None) -> None:
    if ok:
        assert parse_version(text) == ok
    else:
        with pytest.raises(StoreError, match="cannot interpret"):
            parse_version(text)


def test_distributed_definitions_and_ttl_clauses_are_read() -> None:
    assert distributed_target("Distributed(two_shards, db, views_local, cityHash64(viewer_id))") == ("two_shards", "db", "views_local")
    assert distributed_target("Distributed('c', 'd', 't')") == ("c", "d", "t")
    assert ttl_clause("CREATE TABLE t (a DateTime) ENGINE = MergeTree ORDER BY a TTL a + toIntervalDay(100) SETTINGS index_granularity = 8192") \
        == "a + toIntervalDay(100)"
    assert ttl_clause("CREATE TABLE t (a DateTime) ENGINE = MergeTree ORDER BY a") is None


def test_the_url_scheme_picks_the_store_class(tmp_path) -> None:
    from erasure.store import ViewStore

    assert isinstance(open_store(StoreSettings(url=f"chdb:///{tmp_path}", tables=DEMO_STORE_TABLES)), ClickHouseStore)
    assert isinstance(open_store(StoreSettings(url="clickhouse://default@127.0.0.1:9/db", tables=DEMO_STORE_TABLES)), ClickHouseStore)
    assert isinstance(open_store(StoreSettings(url=f"sqlite:///{tmp_path / 'v.db'}", tables=DEMO_STORE_TABLES)), ViewStore)


# ---------------------------------------------------------------- erasure


def test_erase_deletes_the_viewers_views_and_their_events(ch: CH) -> None:
    ch.add_views([("v1", ACME[0], "alice"), ("v2", ACME[1], "alice"), ("v3", ACME[0], "bob")])

    with store_for(ch) as s:
        result = s.erase(Target("REQ-1", ACME, ("alice",)))

    assert result == ErasureResult("REQ-1", {"views": 2, "view_events": 4}, dry_run=False)
    assert ch.remaining_views() == {("v3", ACME[0], "bob")}
    assert ch.remaining_event_views() == {"v3"}
    if ch.kind == "cluster":  # every shard's local table, not just what the Distributed table shows
        assert sum(ch.per_shard("views")) == 1 and sum(ch.per_shard("view_events")) == 2


def test_same_viewer_id_in_another_tenant_is_kept(ch: CH) -> None:
    ch.add_views([("v1", ACME[0], "user-42"), ("v2", GLOBEX[0], "user-42"), ("v3", "ENV_ACME_PROD", "user-42")])

    with store_for(ch) as s:
        result = s.erase(Target("REQ-1", (ACME[0],), ("user-42",)))

    assert result.counts == {"views": 1, "view_events": 2}
    assert ch.remaining_views() == {("v2", GLOBEX[0], "user-42"), ("v3", "ENV_ACME_PROD", "user-42")}
    assert ch.remaining_event_views() == {"v2", "v3"}


def test_ids_match_exactly_never_as_patterns_or_variants(ch: CH) -> None:
    ch.add_views([(f"v{i:03d}", ACME[0], viewer) for i, viewer in enumerate(TRICKY_IDS)], events_per_view=1)
    left = set(TRICKY_IDS)

    with store_for(ch) as s:
        for asked in (["abc"], ["a%", "a_c"], ["abc "], ["o'brien", 'say "hi"', "back\\slash"], ["ss", "日本"], ["ABC", "àbc"]):
            result = s.erase(Target("REQ", ACME, tuple(asked)))
            left -= set(asked)
            assert result.counts == {"views": len(asked), "view_events": len(asked)}, asked
            assert {viewer for _, _, viewer in ch.remaining_views()} == left, asked

    assert left == {"Abc", " abc", "a%c", "ß"}


def test_count_reports_what_erase_then_deletes_and_deletes_nothing(ch: CH) -> None:
    ch.add_views([("v1", ACME[0], "alice"), ("v2", ACME[1], "alice"), ("v3", GLOBEX[0], "alice")], events_per_view=3)
    target = Target("REQ-1", ACME, ("alice", "nobody"))

    with store_for(ch) as s:
        counted = s.count(target)
        assert ch.counts() == {"views": 3, "view_events": 9}
        assert s.deletes_issued == 0
        assert s.erase(target).counts == counted.counts == {"views": 2, "view_events": 6}


@pytest.mark.parametrize("bad", [Target("R", (), ("alice",)), Target("R", ACME, ("",)), Target("R", ACME, ("a\x00b",))])
def test_unscoped_or_malformed_targets_are_refused_before_any_statement(ch: CH, bad: Target) -> None:
    ch.add_views([("v1", ACME[0], "alice")])
    with store_for(ch) as s:
        with pytest.raises(StoreError, match="request R"):
            s.erase(bad)
        assert s.deletes_issued == 0
    assert ch.counts() == {"views": 1, "view_events": 2}


def test_a_group_is_one_delete_per_table_and_each_request_gets_its_own_counts(ch: CH) -> None:
    ch.add_views([("v1", ACME[0], "alice"), ("v2", ACME[0], "bob"), ("v3", GLOBEX[0], "carol"), ("v4", ACME[0], "dave"),
                  ("v5", GLOBEX[0], "alice"), ("v6", ACME[1], "bob")])
    targets = [Target("R1", ACME, ("alice",)), Target("R2", ACME, ("bob", "zed")), Target("R3", GLOBEX, ("carol",)),
               Target("R4", (), ("dave",))]

    with store_for(ch) as s:
        results = s.erase_many(targets)
        copies = 2 if ch.kind == "cluster" else 1  # one statement per table on each shard
        assert s.deletes_issued == 2 * copies

    assert [(r.key, r.counts) for r in results if isinstance(r, ErasureResult)] == [
        ("R1", {"views": 1, "view_events": 2}), ("R2", {"views": 2, "view_events": 4}), ("R3", {"views": 1, "view_events": 2})]
    assert isinstance(results[3], StoreError)  # malformed: refused alone, the others went ahead
    assert ch.remaining_views() == {("v4", ACME[0], "dave"), ("v5", GLOBEX[0], "alice")}


def test_optimize_final_leaves_no_deleted_row_in_the_active_parts(ch: CH) -> None:
    """Lightweight deletes only mask rows and mutations leave old parts behind; OPTIMIZE FINAL rewrites now."""
    ch.add_views([("v1", ACME[0], "alice"), ("v2", ACME[0], "bob"), ("v3", ACME[1], "alice")])
    with store_for(ch, optimize_final=True) as s:
        assert s.erase(Target("R", ACME, ("alice",))).counts == {"views": 2, "view_events": 4}
    assert ch.stored_rows("views") == 1  # rows physically in the table's active parts, not just visible


def test_nothing_matched_issues_no_delete(ch: CH) -> None:
    ch.add_views([("v1", ACME[0], "alice")])
    with store_for(ch) as s:
        assert s.erase(Target("R", ACME, ("bob",))).counts == {"views": 0, "view_events": 0}
        assert s.deletes_issued == 0


def test_children_at_any_depth_are_reached_through_their_parents_keys(ch: CH) -> None:
    ch.create_table("event_notes", ("note_id UInt32, event_id String, body String", "ORDER BY event_id", "note_id"))
    ch.add_views([("v1", ACME[0], "alice"), ("v2", ACME[0], "bob"), ("v3", GLOBEX[0], "alice")])
    ch.insert("event_notes", [(i, e, "x") for i, e in enumerate(["v1-e0", "v1-e0", "v1-e1", "v2-e0", "v3-e0"], start=1)])
    tables = (DEMO_STORE_TABLES[0], StoreTable(name="view_events", parent="views", parent_key="view_id", key="event_id"),
              StoreTable(name="event_notes", parent="view_events", parent_key="event_id"))

    with store_for(ch, tables) as s:
        assert s.count(Target("R", ACME, ("alice",))).counts == {"views": 1, "view_events": 2, "event_notes": 3}
        assert s.erase(Target("R", ACME, ("alice",))).counts == {"views": 1, "view_events": 2, "event_notes": 3}

    assert sorted(r[0] for r in ch.q(f"SELECT event_id FROM {ch.database}.event_notes")) == ["v2-e0", "v3-e0"]


def test_a_parent_key_shared_with_another_tenant_stops_the_erasure_before_deleting(ch: CH) -> None:
    """ClickHouse cannot make view_id unique; a shared key would take the other tenant's events too."""
    ch.add_views([("v1", ACME[0], "alice"), ("v1", GLOBEX[0], "zoe")])
    with store_for(ch) as s:
        with pytest.raises(StoreVerificationError, match="share a view_id"):
            s.erase(Target("R", ACME, ("alice",)))
        assert s.deletes_issued == 0
    assert ch.counts() == {"views": 2, "view_events": 4}


def test_rerun_after_a_crash_deletes_what_is_left_and_reports_it(ch: CH) -> None:
    ch.add_views([("v1", ACME[0], "alice")])
    with store_for(ch) as s:
        assert s.erase(Target("R", ACME, ("alice",))).total == 3
        ch.add_views([("v9", ACME[1], "alice")], events_per_view=1)  # a late view under the erased id
        assert s.erase(Target("R", ACME, ("alice",))).counts == {"views": 1, "view_events": 1}
        assert s.erase(Target("R", ACME, ("alice",))).counts == {"views": 0, "view_events": 0}


@pytest.mark.parametrize("seed", [1, 2])
def test_rows_left_match_a_plain_python_computation(ch: CH, seed: int) -> None:
    rng = random.Random(seed)
    envs = ["env_a1", "env_a2", "env_b1", "ENV_A1", "env_c1"]
    tenants = {"a": ("env_a1", "env_a2"), "b": ("env_b1",), "c": ("env_c1", "ENV_A1")}
    pool = ["u1", "U1", "u1 ", "u_1", "u%", "ü1", "u'1", "x", "X", "y", "zz", "z"]
    rows = [(f"v{i:05d}", rng.choice(envs), rng.choice(pool)) for i in range(rng.randrange(100, 200))]
    ch.add_views(rows, events_per_view=0)
    ev = [(f"{v}-{k}", v, NOW, "playing") for v, _, _ in rows for k in range(rng.randrange(4))]
    ch.insert("view_events", ev)
    targets = [Target(f"R{k}", tenants[t], tuple(rng.sample(pool, rng.randrange(1, 5)))) for k, t in enumerate(rng.choices(list(tenants), k=4))]

    with store_for(ch) as s:
        erased = [s.erase(targets[0])] + list(s.erase_many(targets[1:]))

    gone = {v for v, env, viewer in rows for t in targets if env in t.environments and viewer in t.viewer_ids}
    assert ch.remaining_views() == {r for r in rows if r[0] not in gone}
    assert ch.remaining_event_views() == {e[1] for e in ev} - gone
    assert sum(r.counts["views"] for r in erased if isinstance(r, ErasureResult)) == len(gone)
    assert sum(r.counts["view_events"] for r in erased if isinstance(r, ErasureResult)) == sum(1 for e in ev if e[1] in gone)


def test_distinct_viewer_ids_pages_through_one_tenant(ch: CH) -> None:
    ch.add_views([(f"v{i}", ACME[i % 2], f"viewer-{i % 7}") for i in range(30)] + [("g1", GLOBEX[0], "globex-only")], events_per_view=0)
    with store_for(ch) as s:
        assert sorted(s.distinct_viewer_ids(ACME, chunk=3)) == sorted(f"viewer-{i}" for i in range(7))
        assert list(s.distinct_viewer_ids(())) == []


# ---------------------------------------------------------------- retention


def test_purge_drops_old_partitions_and_deletes_the_rest_with_their_events(ch: CH) -> None:
    # Monthly partitions: April is all old (dropped whole); July holds rows on both sides of the cutoff (a mutation).
    old, edge, july, new = NOW - timedelta(days=200), NOW - timedelta(days=101), NOW - timedelta(days=94), NOW - timedelta(days=5)
    ch.add_views([("v-old", ACME[0], "a")], at=old)
    ch.add_views([("v-edge", ACME[0], "b")], at=edge)
    ch.add_views([("v-july", ACME[0], "b")], at=july)
    ch.add_views([("v-new", ACME[0], "c")], at=new)
    cutoff = NOW - timedelta(days=100)

    with store_for(ch) as s:
        assert s.purge_older_than(cutoff, dry_run=True) == {"views": 2, "view_events": 4}
        assert ch.counts() == {"views": 4, "view_events": 8}
        assert s.purge_older_than(cutoff) == {"views": 2, "view_events": 4}
        copies = 2 if ch.kind == "cluster" else 1
        assert s.deletes_issued <= 4 * copies  # per table: a partition drop and one delete, never one per row
        assert s.purge_older_than(cutoff) == {"views": 0, "view_events": 0}

    assert ch.remaining_views() == {("v-july", ACME[0], "b"), ("v-new", ACME[0], "c")}
    assert ch.remaining_event_views() == {"v-july", "v-new"}
    if ch.kind != "cluster":
        months = {r[0] for r in ch.q(f"SELECT DISTINCT partition FROM system.parts WHERE database = '{ch.database}' "
                                     "AND table = 'views' AND active")}
        assert months == {"202607", "202610"}  # April's partition is gone, not just emptied


# ---------------------------------------------------------------- schema check


def test_demo_tables_pass_the_check(ch: CH) -> None:
    with store_for(ch) as s:
        assert s.check_schema() == []


def test_a_missing_table_or_column_is_named_with_its_config_key(ch: CH) -> None:
    wrong_table = (StoreTable(name="vews", viewer_column="viewer_id", tenant_column="environment_id", key="view_id"),)
    wrong_column = (DEMO_STORE_TABLES[0], StoreTable(name="view_events", parent="views", parent_key="view_key"))
    with store_for(ch, wrong_table) as s, pytest.raises(StoreError, match=r"no table 'vews' .*\(store.tables\[0\].name\); did you mean 'views'"):
        s.check_schema()
    with store_for(ch, wrong_column) as s, pytest.raises(StoreError, match=r"no column 'view_key' \(store.tables\[1\].parent_key\)"):
        s.erase(Target("R", ACME, ("alice",)))


def test_an_engine_that_cannot_delete_rows_is_refused(ch: CH) -> None:
    ch.create_table("plays", ("env String, viewer String", "", "rand()"), engine="Log")
    with store_for(ch, (StoreTable(name="plays", viewer_column="viewer", tenant_column="env"),)) as s:
        with pytest.raises(StoreError, match="Log engine, which cannot delete single rows"):
            s.check_schema()


@pytest.mark.parametrize("ch", [CH_BACKENDS[0]], indirect=True)  # TTL clauses arrived after 18.16
def test_a_table_ttl_is_reported(ch: CH) -> None:
    ch.q(f"CREATE TABLE {ch.database}.plays (env String, viewer String, at DateTime) ENGINE = MergeTree ORDER BY (env, viewer) "
         "TTL at + INTERVAL 100 DAY")
    with store_for(ch, (StoreTable(name="plays", viewer_column="viewer", tenant_column="env", time_column="at"),)) as s:
        (note,) = s.check_schema()
    assert "TTL at + toIntervalDay(100)" in note


def test_lightweight_mode_on_a_server_without_it_is_refused() -> None:
    from erasure.store.clickhouse import LIGHTWEIGHT_VERSION

    s = ClickHouseStore(StoreSettings(url="clickhouse://default@127.0.0.1:9/db", tables=DEMO_STORE_TABLES, delete_mode="lightweight"))
    with pytest.raises(StoreError, match='delete_mode = "lightweight", but ClickHouse 18.16.1 has no lightweight DELETE'):
        s._lightweight((18, 16), "18.16.1")
    assert s._lightweight(LIGHTWEIGHT_VERSION, "23.3") is True


def test_an_unreachable_server_is_a_temporary_error() -> None:
    from tests.services import free_port

    with ClickHouseStore(StoreSettings(url=f"clickhouse://default@127.0.0.1:{free_port()}/db", tables=DEMO_STORE_TABLES)) as s:
        with pytest.raises(StoreUnavailableError, match="retried on the next run"):
            s.count(Target("R", ACME, ("alice",)))


# ---------------------------------------------------------------- mutations that do not finish, shards that are down


SERVER = [pytest.param("server", id="ch18")]


@pytest.mark.parametrize("ch", SERVER, indirect=True)
def test_a_mutation_still_running_at_the_timeout_leaves_the_erasure_pending_and_the_next_run_finishes(ch: CH) -> None:
    """18.16 reports no failure: a mutation that cannot finish just stays undone and blocks the table."""
    ch.add_views([("v1", ACME[0], "alice"), ("v2", ACME[0], "bob")])
    ch.q(f"ALTER TABLE {ch.database}.view_events DELETE WHERE throwIf(event_id = 'v2-e0') = 0")  # never finishes

    with store_for(ch, mutation_timeout_seconds=1) as s:
        with pytest.raises(StoreUnavailableError, match=r"still running after 1 s .*the next run waits for it"):
            s.erase(Target("R", ACME, ("alice",)))
        assert s.deletes_issued == 0  # nothing queued behind the stuck mutation
    assert ch.counts() == {"views": 2, "view_events": 4}

    _clear_stuck_mutations(ch, "view_events")  # what an operator does (recipe: no KILL MUTATION in 18.16)
    with store_for(ch, mutation_timeout_seconds=1) as s:
        assert s.erase(Target("R", ACME, ("alice",))).counts == {"views": 1, "view_events": 2}
    assert ch.remaining_views() == {("v2", ACME[0], "bob")}


def _clear_stuck_mutations(ch: CH, table: str) -> None:
    folder = ch.servers[0].dir / "data" / "data" / ch.database / table
    ch.q(f"DETACH TABLE {ch.database}.{table}")
    for f in folder.glob("mutation_*.txt"):
        f.unlink()
    ch.q(f"ATTACH TABLE {ch.database}.{table}")


@pytest.mark.parametrize("ch", [pytest.param("cluster", id="ch-cluster")], indirect=True)
def test_a_shard_that_is_down_leaves_the_erasure_pending_with_nothing_deleted(ch: CH) -> None:
    from tests.services import free_port

    ch.add_views([("v1", ACME[0], "alice"), ("v2", ACME[0], "bob")])
    shards = (ch.servers[0].address, f"127.0.0.1:{free_port()}")  # the second shard's server is not running
    with store_for(ch, shards=shards) as s:
        with pytest.raises(StoreUnavailableError, match="unreachable"):
            s.erase(Target("R", ACME, ("alice",)))
        assert s.deletes_issued == 0
    assert ch.counts() == {"views": 2, "view_events": 4}
    with store_for(ch, shards=tuple(srv.address for srv in ch.servers)) as s:
        assert s.erase(Target("R", ACME, ("alice",))).counts == {"views": 1, "view_events": 2}


# ---------------------------------------------------------------- the workflow: a kill between the mutation and the state commit

KILLER = """
import os, signal, sys
from pathlib import Path
from erasure.config import load_config
from erasure.workflow import Desk
from erasure.mailbox import MaildirSource

root = Path(sys.argv[1])
desk = Desk.open(load_config(root / "erasure.toml"))
real = desk._store_erased

def die(request_id, store, result):
    os.kill(os.getpid(), signal.SIGKILL)  # the mutation is done and verified; the state never hears of it

desk._store_erased = die
with MaildirSource(root / "Maildir") as source:
    desk.poll(source)
"""


@pytest.mark.parametrize("ch", [pytest.param("server", id="ch18"), pytest.param("cluster", id="ch-cluster")], indirect=True)
def test_a_kill_after_the_mutation_resumes_on_the_next_run_without_deleting_more(ch: CH, tmp_path, monkeypatch) -> None:
    import json
    import os
    import signal
    import subprocess
    import sys

    import sqlalchemy as sa
    import tomli_w

    from erasure.config import config_from_dict
    from erasure.models import AuditEvent, ErasureRequest
    from erasure.state import open_state
    from erasure.workflow import Desk
    from tests.world import KEY_ENV, TENANTS, World, config_dict, mail
    from tests.world import NOW as AWARE_NOW

    monkeypatch.setenv(KEY_ENV, "test-key")
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "Maildir" / sub).mkdir(parents=True)
    acme, globex = TENANTS["acme"], TENANTS["globex"]
    ch.add_views([("a1", acme[0], "viewer-7"), ("a2", acme[1], "viewer-7"), ("a3", acme[0], "viewer-8"),
                  ("g1", globex[0], "viewer-7"), ("a4", acme[0], "VIEWER-7")])
    raw = config_dict(tmp_path)
    raw["store"]["url"] = ch.url
    (tmp_path / "erasure.toml").write_bytes(tomli_w.dumps(raw).encode())
    config = config_from_dict(raw, base_dir=tmp_path)
    state = open_state(config.state.url, base_dir=tmp_path)
    w = World(tmp_path, config, state, Desk(config, state, now=lambda: AWARE_NOW))
    w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-7\n"))

    killed = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path)], env={**os.environ}, capture_output=True, text=True, timeout=120)

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with state.session() as session:
        assert session.scalars(sa.select(ErasureRequest.status)).one() == "erasing"
    kept = {("a3", acme[0], "viewer-8"), ("g1", globex[0], "viewer-7"), ("a4", acme[0], "VIEWER-7")}
    assert ch.remaining_views() == kept  # the mutation ran; nothing else went

    w.poll()  # the next run finds nothing left, verifies, and completes with the counts taken before erasing

    with state.session() as session:
        r = session.scalars(sa.select(ErasureRequest)).one()
        assert (r.status, r.response, r.rows_erased) == ("completed", "completed", 6)
        (erased,) = [json.loads(e.data) for e in session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "erased"))]
    assert erased["resumed"] is True
    assert ch.remaining_views() == kept
    w.desk.close()
    state.close()


@pytest.mark.parametrize("ch", [CH_BACKENDS[0]], indirect=True)
def test_init_checks_a_clickhouse_store_and_names_what_is_missing(ch: CH, tmp_path) -> None:
    from erasure.config import config_from_dict
    from erasure.runner import check_stores
    from tests.world import config_dict

    raw = config_dict(tmp_path)
    raw["store"]["url"] = ch.url
    said: list[str] = []
    assert check_stores(config_from_dict(raw, base_dir=tmp_path), echo=said.append) == []
    assert said == ["view store: 2 table(s) checked"]

    raw["store"]["tables"][1]["name"] = "view_event"
    with pytest.raises(StoreError, match=r"no table 'view_event' .*\(store.tables\[1\].name\); did you mean 'view_events'"):
        check_stores(config_from_dict(raw, base_dir=tmp_path), echo=said.append)
