"""Several view stores: a request is complete only when every system that holds viewer data is erased.

The world here has two stores on real backends (SQLite + SQLite, SQLite +
PostgreSQL, PostgreSQL + MariaDB): "eu-ingest" holds both tenants' views,
"analytics" holds only acme's (its tables lack globex's environments). The
same viewer ids exist in both tenants, in both stores. Every assertion about
views reads the store databases themselves.
"""

from __future__ import annotations

import dataclasses
import re
import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from erasure.cli import app
from erasure.config import config_from_dict
from erasure.errors import ConfigError
from erasure.models import AuditEvent, ErasureRequest, StoreProgress
from erasure.state import open_state
from erasure.status import status
from erasure.viewschema import create_demo_schema, fill_synthetic_views
from erasure.workflow import Desk
from tests.world import KEY_ENV, NOW, TENANTS, World, config_dict, mail

TABLES = [
    {"name": "views", "viewer_column": "viewer_id", "tenant_column": "environment_id", "key": "view_id",
     "time_column": "view_start"},
    {"name": "view_events", "parent": "views", "parent_key": "view_id", "time_column": "ts"},
]

PAIRS = [
    pytest.param(("sqlite", "sqlite"), id="sqlite+sqlite"),
    pytest.param(("sqlite", "postgres"), id="sqlite+postgres", marks=pytest.mark.postgres),
    pytest.param(("postgres", "mysql"), id="postgres+mysql", marks=[pytest.mark.postgres, pytest.mark.mysql]),
]


def two_store_config(urls: dict[str, str], **policy: object) -> dict:
    raw = config_dict(Path("."), **policy)
    del raw["store"]
    raw["stores"] = [
        {"name": "eu-ingest", "description": "EU ingest, Frankfurt", "url": urls["eu-ingest"], "retention_days": 30,
         "tables": TABLES},
        {"name": "analytics", "description": "analytics, United States", "url": urls["analytics"], "tables": TABLES},
    ]
    return raw


def _fill(url: str, tenants: dict[str, list[str]], seed: int) -> None:
    engine = sa.create_engine(url)
    try:
        create_demo_schema(engine)
        fill_synthetic_views(engine, tenants, viewer_ids_per_env=10, views_per_viewer=3, seed=seed, now=NOW,
                             max_age_days=60)
    finally:
        engine.dispose()


@dataclasses.dataclass
class Stores:
    """The two stores' URLs, read directly by the tests."""

    urls: dict[str, str]

    def views(self, store: str, *, env: str | None = None, viewer: str | None = None, table: str = "views") -> int:
        engine = sa.create_engine(self.urls[store], poolclass=sa.pool.NullPool)
        where, params = [], {}
        if table == "views":
            if env:
                where.append("environment_id = :e")
                params["e"] = env
            if viewer:
                where.append("viewer_id = :v")
                params["v"] = viewer
            sql = "SELECT COUNT(*) FROM views" + (" WHERE " + " AND ".join(where) if where else "")
        else:  # events of the matching views
            sql = ("SELECT COUNT(*) FROM view_events e JOIN views v ON v.view_id = e.view_id "
                   "WHERE v.environment_id = :e AND v.viewer_id = :v")
            params = {"e": env, "v": viewer}
        try:
            with engine.connect() as conn:
                return int(conn.execute(sa.text(sql), params).scalar_one())
        finally:
            engine.dispose()

    def acme(self, store: str, viewer: str) -> int:
        return sum(self.views(store, env=e, viewer=viewer) for e in TENANTS["acme"])


def make_two_store_world(root: Path, monkeypatch: pytest.MonkeyPatch, urls: dict[str, str],
                         **policy: object) -> tuple[World, Stores]:
    monkeypatch.setenv(KEY_ENV, "test-key")
    for sub in ("new", "cur", "tmp"):
        (root / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
    _fill(urls["eu-ingest"], TENANTS, seed=1)
    _fill(urls["analytics"], {"acme": TENANTS["acme"]}, seed=2)  # globex's views never reach analytics
    config = config_from_dict(two_store_config(urls, **policy), base_dir=root)
    state = open_state(config.state.url, base_dir=root)
    return World(root, config, state, Desk(config, state, now=lambda: NOW)), Stores(urls)


def _url(backend: str, name: str, tmp_path: Path, databases) -> str:  # type: ignore[no-untyped-def]
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'{name}.db'}"
    return databases.fresh(backend).render_as_string(hide_password=False)


@pytest.fixture(params=PAIRS)
def two(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _store_databases) -> Iterator[tuple[World, Stores]]:  # type: ignore[no-untyped-def]
    first, second = request.param
    urls = {"eu-ingest": _url(first, "eu-ingest", tmp_path, _store_databases),
            "analytics": _url(second, "analytics", tmp_path, _store_databases)}
    w, stores = make_two_store_world(tmp_path, monkeypatch, urls)
    yield w, stores
    w.desk.close()
    w.state.close()


@pytest.fixture
def sqlite_two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, Stores]]:
    urls = {n: f"sqlite:///{tmp_path / f'{n}.db'}" for n in ("eu-ingest", "analytics")}
    w, stores = make_two_store_world(tmp_path, monkeypatch, urls)
    yield w, stores
    w.desk.close()
    w.state.close()


def the_request(w: World) -> ErasureRequest:
    with w.state.session() as session:
        (r,) = session.scalars(sa.select(ErasureRequest)).all()
        r.stores  # noqa: B018 (loaded before the session closes)
        return r


def progress_rows(w: World) -> dict[str, StoreProgress]:
    with w.state.session() as session:
        return {p.store: p for p in session.scalars(sa.select(StoreProgress))}


def erased_events(w: World) -> list[dict]:
    with w.state.session() as session:
        return [json.loads(e.data) for e in session.scalars(
            sa.select(AuditEvent).where(AuditEvent.event == "erased").order_by(AuditEvent.seq))]


# ---------------------------------------------------------------- erasure across stores


def test_a_request_completes_only_when_every_store_is_erased(two: tuple[World, Stores]) -> None:
    w, stores = two
    before = {s: stores.acme(s, "viewer-00001") for s in ("eu-ingest", "analytics")}
    globex_before = stores.views("eu-ingest", env="env_globex", viewer="viewer-00001")
    assert all(before.values()) and globex_before
    w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00001\n"))
    w.poll()
    r = the_request(w)
    assert (r.status, r.response) == ("completed", "completed")
    for store in ("eu-ingest", "analytics"):
        assert stores.acme(store, "viewer-00001") == 0
        assert sum(stores.views(store, env=e, viewer="viewer-00001", table="view_events") for e in TENANTS["acme"]) == 0
    # Cross-tenant: the same id in globex's environment is untouched.
    assert stores.views("eu-ingest", env="env_globex", viewer="viewer-00001") == globex_before
    rows = progress_rows(w)
    assert {s: (p.state, json.loads(p.counts)["views"]) for s, p in rows.items()} == {
        "eu-ingest": ("verified", before["eu-ingest"]), "analytics": ("verified", before["analytics"])}
    events = erased_events(w)
    assert [(e["store"], e["description"], e["counts"]["views"]) for e in events] == [
        ("eu-ingest", "EU ingest, Frankfurt", before["eu-ingest"]),
        ("analytics", "analytics, United States", before["analytics"])]
    assert r.rows_erased == sum(e["total"] for e in events)


def test_requests_show_and_json_give_counts_per_store(sqlite_two: tuple[World, Stores]) -> None:
    w, stores = sqlite_two
    w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00002\n"))
    w.poll()
    detail = w.desk.find(the_request(w).reference or "").to_json()
    assert [(s["store"], s["description"], s["state"]) for s in detail["stores"]] == [
        ("eu-ingest", "EU ingest, Frankfurt", "verified"), ("analytics", "analytics, United States", "verified")]
    assert all(set(s["counts"]) == {"views", "view_events"} and s["rows_erased"] > 0 for s in detail["stores"])
    assert sum(s["rows_erased"] for s in detail["stores"]) == detail["rows_erased"]


def test_a_store_whose_tables_lack_the_tenants_environments_is_verified_with_nothing(
        sqlite_two: tuple[World, Stores]) -> None:
    w, stores = sqlite_two
    before = stores.views("eu-ingest", env="env_globex", viewer="viewer-00003")
    assert before and stores.views("analytics", env="env_globex") == 0
    w.deliver(mail("privacy@globex.example", "Viewer ID: viewer-00003\n"))
    w.poll()
    assert (the_request(w).status, the_request(w).response) == ("completed", "completed")
    assert stores.views("eu-ingest", env="env_globex", viewer="viewer-00003") == 0
    rows = progress_rows(w)
    assert (rows["analytics"].state, rows["analytics"].rows_erased) == ("verified", 0)
    assert rows["eu-ingest"].rows_erased == before * 4  # each view has three events


def test_no_data_found_only_when_every_store_found_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    urls = {n: f"sqlite:///{tmp_path / f'{n}.db'}" for n in ("eu-ingest", "analytics")}
    w, stores = make_two_store_world(tmp_path, monkeypatch, urls)
    # An id that only the analytics store still holds (the EU ingest's 30 days have passed for it).
    engine = sa.create_engine(urls["eu-ingest"])
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM view_events WHERE view_id IN (SELECT view_id FROM views WHERE viewer_id = 'viewer-00004')"))
        conn.execute(sa.text("DELETE FROM views WHERE viewer_id = 'viewer-00004'"))
    engine.dispose()
    assert stores.acme("analytics", "viewer-00004") > 0
    w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00004\n"))
    w.deliver(mail("dpo@acme.example", "Viewer ID: nobody-anywhere\n"))
    w.poll()
    with w.state.session() as session:
        responses = [r.response for r in session.scalars(sa.select(ErasureRequest).order_by(ErasureRequest.id))]
    assert responses == ["completed", "no_data_found"]
    assert stores.acme("analytics", "viewer-00004") == 0
    w.desk.close()
    w.state.close()


def test_the_approval_threshold_counts_views_in_every_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    urls = {n: f"sqlite:///{tmp_path / f'{n}.db'}" for n in ("eu-ingest", "analytics")}
    probe, stores = make_two_store_world(tmp_path / "probe", monkeypatch, {
        n: f"sqlite:///{tmp_path / f'probe-{n}.db'}" for n in urls})
    per_store = [stores.acme(s, "viewer-00005") for s in ("eu-ingest", "analytics")]
    probe.desk.close()
    probe.state.close()
    # Each store alone is within the threshold; together they are over it.
    w, stores = make_two_store_world(tmp_path, monkeypatch, urls, auto_approve_max_views=max(per_store))
    w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00005\n"))
    w.poll()
    r = the_request(w)
    assert r.status == "awaiting_approval"
    (held,) = [e for e in w.desk.find(r.reference or "").to_json()["events"] if "views" in e["data"]]
    assert held["data"]["views"] == sum(per_store) and str(sum(per_store)) in held["reason"]
    assert {s: c["views"] for s, c in held["data"]["by_store"].items()} == dict(zip(("eu-ingest", "analytics"), per_store))
    assert [stores.acme(s, "viewer-00005") for s in ("eu-ingest", "analytics")] == per_store  # nothing erased yet
    w.desk.close()
    w.state.close()


# ---------------------------------------------------------------- a store that is down


def _lock(path: Path, mode: str = "IMMEDIATE") -> sqlite3.Connection:
    """Hold the SQLite file's write lock (IMMEDIATE: reads still work) or all of it (EXCLUSIVE),
    as a long-running writer or a stuck server would."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    conn.execute(f"BEGIN {mode}")
    return conn


def test_one_store_down_for_several_runs_then_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    urls = {n: f"sqlite:///{tmp_path / f'{n}.db'}" for n in ("eu-ingest", "analytics")}
    raw = two_store_config(urls)
    raw["stores"][1]["lock_timeout_seconds"] = 0
    monkeypatch.setenv(KEY_ENV, "test-key")
    w, stores = make_two_store_world(tmp_path, monkeypatch, urls)
    clock = [NOW]
    w.desk.close()
    w.desk = Desk(config_from_dict(raw, base_dir=tmp_path), w.state, now=lambda: clock[0])
    analytics_before = stores.acme("analytics", "viewer-00006")
    lock = _lock(tmp_path / "analytics.db")
    try:
        w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00006\n"))
        for run in range(3):
            clock[0] = NOW + dt.timedelta(hours=12 * run)
            result = w.poll()
            assert result.needs_attention
            r = the_request(w)
            assert r.status == "erasing" and r.response is None
            rows = progress_rows(w)
            assert (rows["eu-ingest"].state, rows["analytics"].state) == ("verified", "pending")
            assert rows["analytics"].attempts == run + 1 and "locked" in (rows["analytics"].last_error or "")
            assert stores.acme("eu-ingest", "viewer-00006") == 0  # the store that answered went ahead
        assert [e["store"] for e in erased_events(w)] == ["eu-ingest"]  # erased once, not once per run
        assert w.replies() == [] or all("completed" not in p.name for p in w.replies())
        with w.state.session() as session:
            report = status(session, today=clock[0].date(), config=w.desk.config, now=clock[0] + dt.timedelta(hours=1))
        (failing,) = report.failing_stores
        assert failing.store == "analytics" and failing.requests == (r.reference,)
        assert any("'analytics'" in p for p in report.problems)
    finally:
        lock.close()
    w.poll()  # the store is back
    r = the_request(w)
    assert (r.status, r.response) == ("completed", "completed")
    assert stores.acme("analytics", "viewer-00006") == 0 and analytics_before > 0
    assert [e["store"] for e in erased_events(w)] == ["eu-ingest", "analytics"]
    assert progress_rows(w)["analytics"].failing_since is None
    w.desk.close()
    w.state.close()


def test_a_store_that_cannot_count_holds_the_request_before_anything_is_erased(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The approval threshold counts every store, so a request is not classified on part of the count."""
    urls = {n: f"sqlite:///{tmp_path / f'{n}.db'}" for n in ("eu-ingest", "analytics")}
    w, stores = make_two_store_world(tmp_path, monkeypatch, urls)
    before = {s: stores.acme(s, "viewer-00009") for s in urls}
    lock = _lock(tmp_path / "analytics.db", "EXCLUSIVE")
    try:
        w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00009\n"))
        assert w.poll().needs_attention
        assert the_request(w).status == "received" and progress_rows(w) == {}
    finally:
        lock.close()
    assert {s: stores.acme(s, "viewer-00009") for s in urls} == before  # nothing erased anywhere
    w.poll()
    assert the_request(w).response == "completed"
    assert {s: stores.acme(s, "viewer-00009") for s in urls} == {s: 0 for s in urls}
    w.desk.close()
    w.state.close()


# ---------------------------------------------------------------- a kill between the two stores' commits

KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from erasure.config import load_config
    from erasure.workflow import Desk
    from erasure.mailbox import MaildirSource

    root, where = Path(sys.argv[1]), sys.argv[2]
    config = load_config(root / "erasure.toml")
    desk = Desk.open(config)
    real = desk._store_erased
    stores = desk.stores

    def die_after(request_id, store, result):
        if store == "eu-ingest" and where == "before-state":
            os.kill(os.getpid(), signal.SIGKILL)  # the store committed; the state never hears of it
        real(request_id, store, result)
        if store == "eu-ingest" and where == "after-state":
            os.kill(os.getpid(), signal.SIGKILL)  # eu-ingest is recorded; analytics never started

    desk._store_erased = die_after
    with MaildirSource(root / "Maildir") as source:
        desk.poll(source)
""")


@pytest.mark.parametrize("where", ["before-state", "after-state"])
def test_a_kill_between_the_two_stores_commits_resumes_without_erasing_twice(
        where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tomli_w

    urls = {n: f"sqlite:///{tmp_path / f'{n}.db'}" for n in ("eu-ingest", "analytics")}
    w, stores = make_two_store_world(tmp_path, monkeypatch, urls)
    (tmp_path / "erasure.toml").write_bytes(tomli_w.dumps(two_store_config(urls)).encode())
    before = {s: stores.acme(s, "viewer-00007") for s in ("eu-ingest", "analytics")}
    w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00007\n"))
    killed = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path), where], env={**os.environ},
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert stores.acme("eu-ingest", "viewer-00007") == 0  # the first store's commit happened
    assert stores.acme("analytics", "viewer-00007") == before["analytics"]  # the second's did not
    assert the_request(w).status == "erasing"
    w.poll()  # the next run resumes
    r = the_request(w)
    assert (r.status, r.response) == ("completed", "completed")
    assert stores.acme("analytics", "viewer-00007") == 0
    events = erased_events(w)
    assert [e["store"] for e in events] == ["eu-ingest", "analytics"]  # one answer per store
    eu = events[0]
    assert eu["resumed"] is (where == "before-state")
    # Either way the eu-ingest figure is what was there: counted before erasing, or as deleted.
    eu_views = before["eu-ingest"]
    assert eu["total"] == eu_views * 4
    assert r.rows_erased == (before["eu-ingest"] + before["analytics"]) * 4
    w.desk.close()
    w.state.close()


# ---------------------------------------------------------------- retention and suppression per store


def test_retention_purge_uses_each_stores_own_period(sqlite_two: tuple[World, Stores]) -> None:
    from erasure.runner import purge

    w, stores = sqlite_two
    cutoffs = {"eu-ingest": NOW - dt.timedelta(days=30), "analytics": NOW - dt.timedelta(days=100)}

    def old(store: str) -> int:
        engine = sa.create_engine(stores.urls[store])
        try:
            with engine.connect() as conn:
                return int(conn.execute(sa.text("SELECT COUNT(*) FROM views WHERE view_start < :c"),
                                        {"c": cutoffs[store].replace(tzinfo=None)}).scalar_one())
        finally:
            engine.dispose()

    expected = {s: old(s) for s in cutoffs}
    assert expected["eu-ingest"] > 0 and expected["analytics"] == 0  # views go back 60 days
    results = purge(w.config, now=NOW)
    assert {s: r.counts["views"] for s, r in results.items()} == expected
    assert old("eu-ingest") == 0
    with w.state.session() as session:
        purges = [json.loads(e.data) for e in session.scalars(
            sa.select(AuditEvent).where(AuditEvent.event == "retention_purge"))]
    assert [(p["store"], p["days"]) for p in purges] == [("eu-ingest", 30), ("analytics", 100)]


def test_the_suppression_sweep_covers_every_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from erasure.suppression import sweep_configured

    urls = {n: f"sqlite:///{tmp_path / f'{n}.db'}" for n in ("eu-ingest", "analytics")}
    w, stores = make_two_store_world(tmp_path, monkeypatch, urls, suppression=True)
    w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00008\n"))
    w.poll()
    assert the_request(w).response == "completed"
    for url in urls.values():  # the viewer comes back, in both systems
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO views (view_id, environment_id, viewer_id, view_start) "
                                 "VALUES ('again-1', 'env_acme_prod', 'viewer-00008', :t)"), {"t": NOW.replace(tzinfo=None)})
        engine.dispose()
    results = sweep_configured(w.config, now=NOW)
    assert [(r.store, r.total) for r in results] == [("eu-ingest", 1), ("analytics", 1)]
    assert stores.acme("eu-ingest", "viewer-00008") == 0 and stores.acme("analytics", "viewer-00008") == 0
    w.desk.close()
    w.state.close()


# ---------------------------------------------------------------- configuration


def _config(tmp_path: Path, stores: list[dict], **extra: object) -> dict:
    raw = config_dict(tmp_path)
    del raw["store"]
    raw["stores"] = stores
    raw.update(extra)
    return raw


def _store(name: str, url: str, **kw: object) -> dict:
    return {"name": name, "url": url, "tables": TABLES, **kw}


@pytest.mark.parametrize(("stores", "extra", "message"), [
    ([_store("eu", "sqlite:///a.db"), _store("eu", "sqlite:///b.db")], {}, "stores[1].name = 'eu' is used twice"),
    ([_store("eu", "sqlite:///a.db"), {"name": "us", "url": "sqlite:///b.db"}], {}, "stores[1] ('us') has no viewer table"),
    ([_store("eu", "sqlite:///a.db"), {"name": "us", "url": "sqlite:///b.db", "tables": [TABLES[1] | {"parent": "views"}]}],
     {}, "parent = 'views' is not a configured table"),
    ([_store("eu", "sqlite:///a.db"), _store("us", "sqlite:///./a.db")], {}, "stores[1].url names the same database as stores[0].url"),
    ([_store("eu", "postgresql+psycopg://alice@db.example/views"), _store("us", "postgresql+psycopg://bob@DB.example:5432/views")],
     {}, "stores[1].url names the same database as stores[0].url"),
    ([_store("eu", "sqlite:///state.db")], {}, "state.url and stores[0].url name the same SQLite file"),
    ([_store("EU Ingest", "sqlite:///a.db")], {}, "stores[0].name = 'EU Ingest' is not a store name"),
    ([_store("eu", "mysql+pymysql://root@127.0.0.1:99999/x")], {}, "stores[0].url"),
    ([_store("eu", "sqlite:///a.db")], {"store": {"url": "sqlite:///b.db"}}, "both [store] and [[stores]] are set"),
])
def test_bad_store_lists_are_usage_errors_naming_the_key(tmp_path: Path, stores: list[dict], extra: dict,
                                                        message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        config_from_dict(_config(tmp_path, stores, **extra), base_dir=tmp_path)


def test_near_misses_that_are_different_databases_load(tmp_path: Path) -> None:
    config = config_from_dict(_config(tmp_path, [
        _store("eu-ingest", "postgresql+psycopg://u@db.example:5432/views"),
        _store("analytics", "postgresql+psycopg://u@db.example:5433/views"),  # another server
        _store("archive", "postgresql+psycopg://u@db.example:5432/views_archive"),  # another database
        _store("local", "sqlite:///views.db"),
    ]), base_dir=tmp_path)
    assert [s.name for s in config.stores] == ["eu-ingest", "analytics", "archive", "local"]


def test_a_single_store_section_is_the_store_named_default(tmp_path: Path) -> None:
    config = config_from_dict(config_dict(tmp_path), base_dir=tmp_path)
    assert [s.name for s in config.stores] == ["default"] and config.stores[0].tables == config.store.tables


def test_a_bad_store_list_exits_2_from_the_cli(tmp_path: Path) -> None:
    import tomli_w

    path = tmp_path / "erasure.toml"
    path.write_bytes(tomli_w.dumps(_config(tmp_path, [_store("eu", "sqlite:///a.db"),
                                                      _store("eu", "sqlite:///b.db")])).encode())
    result = CliRunner().invoke(app, ["--config", str(path), "status"])
    assert result.exit_code == 2 and "stores[1].name = 'eu' is used twice" in result.output


def test_init_checks_every_store_and_names_the_one_at_fault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tomli_w

    monkeypatch.setenv(KEY_ENV, "test-key")
    for name in ("eu-ingest", "analytics"):
        engine = sa.create_engine(f"sqlite:///{tmp_path / f'{name}.db'}")
        create_demo_schema(engine)
        engine.dispose()
    raw = two_store_config({n: f"sqlite:///{n}.db" for n in ("eu-ingest", "analytics")})
    raw["stores"][1]["tables"] = [TABLES[0] | {"viewer_column": "viewer_uuid"}]
    path = tmp_path / "erasure.toml"
    path.write_bytes(tomli_w.dumps(raw).encode())
    result = CliRunner().invoke(app, ["--config", str(path), "init"])
    assert result.exit_code != 0
    assert "view store 'eu-ingest' (stores[0]): 2 table(s) checked" in result.output
    assert "view store 'analytics' (stores[1])" in result.output and "viewer_uuid" in result.output


# ---------------------------------------------------------------- the demo's two stores, through the CLI


def test_the_demo_shows_per_store_evidence_and_a_dry_run_counts_store_by_store(tmp_path: Path) -> None:
    d = tmp_path / "demo"
    runner = CliRunner()
    demo = runner.invoke(app, ["demo", "--dir", str(d)])
    assert demo.exit_code == 0, demo.output
    assert "eu-ingest: 16 views, 48 view_events; analytics: 16 views, 48 view_events" in demo.output
    env = {"ERASURE_DEMO_AUDIT_KEY": "demo-only-audit-key-not-secret"}
    shown = runner.invoke(app, ["--config", str(d / "erasure.toml"), "requests", "show", "ER-2026-000001"], env=env)
    assert "store:      eu-ingest (EU ingest, Frankfurt): verified, 64 row(s): 16 from views, 48 from view_events" in shown.output
    assert "store:      analytics (analytics, United States): verified" in shown.output
    import email
    import email.policy

    letter = email.message_from_bytes((d / "replies" / "ER-2026-000001.completed@analytics.example.eml").read_bytes(),
                                      policy=email.policy.default)
    for part in ("plain", "html"):
        body = " ".join(letter.get_body((part,)).get_content().split())
        assert "in the 2 systems that hold viewer data, by system and table" in body
        assert body.index("EU ingest, Frankfurt") < body.index("analytics, United States")
        assert "16" in body and "48" in body
    from erasure.demo import sample_mail

    (_name, first), *_ = sample_mail(dt.datetime.now(dt.UTC))
    (d / "Maildir" / "new" / "again.eml").write_bytes(first.replace(b"Message-ID: <", b"Message-ID: <again-"))
    dry = runner.invoke(app, ["--config", str(d / "erasure.toml"), "poll", "--dry-run"], env=env)
    assert re.search(r"\d+ matching rows \(\d+ in eu-ingest, \d+ in analytics\)", dry.output), dry.output


def test_a_store_taken_out_of_the_config_while_a_request_waits_on_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The request completes on the stores that remain and were verified, naming what each erased."""
    urls = {n: f"sqlite:///{tmp_path / f'{n}.db'}" for n in ("eu-ingest", "analytics")}
    raw = two_store_config(urls)
    raw["stores"][1]["lock_timeout_seconds"] = 0
    w, stores = make_two_store_world(tmp_path, monkeypatch, urls)
    w.desk.close()
    w.desk = Desk(config_from_dict(raw, base_dir=tmp_path), w.state, now=lambda: NOW)
    lock = _lock(tmp_path / "analytics.db")
    try:
        w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00003\n"))
        w.poll()
        assert the_request(w).status == "erasing"
    finally:
        lock.close()
    only_eu = two_store_config(urls)
    only_eu["stores"] = only_eu["stores"][:1]
    w.desk.close()
    w.desk = Desk(config_from_dict(only_eu, base_dir=tmp_path), w.state, now=lambda: NOW)
    w.poll()
    r = the_request(w)
    assert (r.status, r.response) == ("completed", "completed") and stores.acme("eu-ingest", "viewer-00003") == 0
    assert [e["store"] for e in erased_events(w)] == ["eu-ingest"]
    w.desk.close()
    w.state.close()
