"""The opt-in suppression sweep: views that reappear under an erased viewer id are deleted again,
in the erasing tenant only, exactly that id, and only for requests that were carried out."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import sqlite3
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import tomli_w
from typer.testing import CliRunner

from erasure import audit
from erasure.cli import app
from erasure.config import StoreSettings, config_from_dict
from erasure.errors import ConfigError, StoreError
from erasure.models import AuditEvent, ErasureRequest
from erasure.store import ViewStore
from erasure.suppression import suppression_list, sweep
from erasure.viewschema import DEMO_STORE_TABLES, create_demo_schema, view_events, views
from tests.world import KEY_ENV, NOW, World, config_dict, mail, make_world

_ids = itertools.count(1)


def add_views(world: World, env: str, viewer: str, n: int = 1, events: int = 3) -> None:
    """Views the customer's SDK sent after the erasure, each with its events."""
    engine = sa.create_engine(f"sqlite:///{world.root / 'views.db'}")
    start = NOW.replace(tzinfo=None) + dt.timedelta(days=1)
    try:
        with engine.begin() as conn:
            for _ in range(n):
                view_id = f"new-{next(_ids):06d}"
                conn.execute(views.insert().values(view_id=view_id, environment_id=env, viewer_id=viewer, view_start=start))
                for i in range(events):
                    conn.execute(view_events.insert().values(event_id=f"{view_id}-{i}", view_id=view_id, ts=start,
                                                             event_type="heartbeat"))
    finally:
        engine.dispose()


def events_of(world: World, env: str, viewer: str) -> int:
    engine = sa.create_engine(f"sqlite:///{world.root / 'views.db'}")
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(view_events.join(views, view_events.c.view_id == views.c.view_id))
                .where(views.c.environment_id == env, views.c.viewer_id == viewer)
            ).scalar_one()
    finally:
        engine.dispose()


def erase_by_mail(world: World, sender: str, viewer: str) -> None:
    world.deliver(mail(sender, f"Viewer ID: {viewer}\n"))
    world.poll()


def statuses(world: World) -> list[str]:
    with world.state.session() as session:
        return list(session.scalars(sa.select(ErasureRequest.status).order_by(ErasureRequest.id)))


@pytest.fixture
def world(tmp_path, monkeypatch) -> Iterator[World]:
    w = make_world(tmp_path, monkeypatch, suppression=True)
    yield w
    w.desk.close()
    w.state.close()


@pytest.fixture
def erased(world: World) -> World:
    """acme erased viewer-00001; then the SDK sent more views under it, in acme and elsewhere."""
    erase_by_mail(world, "dpo@acme.example", "viewer-00001")
    assert statuses(world) == ["completed"]
    assert world.views(viewer="viewer-00001") == 3  # only globex's are left
    add_views(world, "env_acme_dev", "viewer-00001", n=2)
    add_views(world, "env_acme_prod", "viewer-00001")
    add_views(world, "env_globex", "viewer-00001")
    add_views(world, "env_acme_prod", "VIEWER-00001")
    add_views(world, "env_acme_prod", "viewer-00001 ")
    return world


def run_sweep(world: World, config=None, **kw):
    return sweep(config or world.config, world.state, world.desk.stores["default"], now=NOW, **kw)


# ---------------------------------------------------------------- opt-in


def test_it_is_off_by_default_and_says_how_to_turn_it_on(tmp_path, monkeypatch):
    world = make_world(tmp_path, monkeypatch)
    try:
        erase_by_mail(world, "dpo@acme.example", "viewer-00001")
        add_views(world, "env_acme_prod", "viewer-00001")
        assert world.config.policy.suppression is False
        with pytest.raises(ConfigError, match=r"set `suppression = true` under \[policy\]"):
            run_sweep(world)
        assert world.views("env_acme_prod", "viewer-00001") == 1
        with world.state.session() as session:
            assert session.scalar(sa.select(sa.func.count()).where(AuditEvent.event == "suppression_sweep")) == 0
    finally:
        world.desk.close()
        world.state.close()


def test_poll_does_not_sweep_even_when_it_is_on(erased: World):
    erased.poll()
    assert erased.views("env_acme_dev", "viewer-00001") == 2


# ---------------------------------------------------------------- what goes


def test_a_sweep_deletes_only_the_erasing_tenants_new_views_of_exactly_that_id(erased: World):
    result = run_sweep(erased)
    assert result.dry_run is False
    assert result.tenants["acme"].counts == {"views": 3, "view_events": 9}
    assert result.tenants["acme"].ids_matched == 1
    assert result.tenants["globex"].counts == {"views": 0, "view_events": 0}
    assert result.tenants["globex"].ids_matched == 0
    assert (result.total, result.ids_matched) == (12, 1)
    assert erased.views("env_acme_dev", "viewer-00001") == 0
    assert erased.views("env_acme_prod", "viewer-00001") == 0
    assert events_of(erased, "env_acme_dev", "viewer-00001") == 0
    assert erased.views("env_globex", "viewer-00001") == 4  # globex never asked
    assert events_of(erased, "env_globex", "viewer-00001") == 12
    assert erased.views("env_acme_prod", "VIEWER-00001") == 1  # another id
    assert erased.views("env_acme_prod", "viewer-00001 ") == 1  # another id
    assert erased.views("env_acme_prod", "viewer-00002") == 3


def test_a_second_sweep_finds_nothing_left(erased: World):
    run_sweep(erased)
    again = run_sweep(erased)
    assert again.total == 0
    assert again.ids_matched == 0


def test_a_dry_run_counts_the_same_and_deletes_nothing(erased: World):
    dry = run_sweep(erased, dry_run=True)
    assert dry.dry_run is True
    assert dry.tenants["acme"].counts == {"views": 3, "view_events": 9}
    assert dry.ids_matched == 1
    assert erased.views("env_acme_dev", "viewer-00001") == 2
    assert events_of(erased, "env_acme_dev", "viewer-00001") == 6
    with erased.state.session() as session:
        assert session.scalar(sa.select(sa.func.count()).where(AuditEvent.event == "suppression_sweep")) == 0
    assert run_sweep(erased).tenants["acme"].counts == dry.tenants["acme"].counts


def test_small_batches_delete_the_same(erased: World):
    erase_by_mail(erased, "dpo@acme.example", "viewer-00002")
    erase_by_mail(erased, "dpo@acme.example", "viewer-00003")
    for viewer in ("viewer-00002", "viewer-00003"):
        add_views(erased, "env_acme_prod", viewer)
    result = run_sweep(erased, batch_size=1)
    assert result.tenants["acme"].ids_matched == 3
    assert result.tenants["acme"].counts == {"views": 5, "view_events": 15}
    assert erased.views("env_acme_prod", "viewer-00004") == 3


def test_ids_of_requests_not_carried_out_are_not_suppressed(tmp_path, monkeypatch):
    world = make_world(tmp_path, monkeypatch, suppression=True, auto_approve=False)
    try:
        erase_by_mail(world, "dpo@acme.example", "viewer-00002")  # waits for approval: open
        erase_by_mail(world, "dpo@acme.example", "viewer-00003")
        with world.state.session() as session:
            second = session.scalars(sa.select(ErasureRequest.reference).order_by(ErasureRequest.id)).all()[1]
        world.desk.reject(second, reason="not the account holder", actor="officer")
        assert statuses(world) == ["awaiting_approval", "rejected"]
        assert suppression_list(world.state, ["acme", "globex"]) == {"acme": set(), "globex": set()}
        result = run_sweep(world)
        assert result.total == 0
        assert result.ids_matched == 0
        assert world.views("env_acme_prod", "viewer-00002") == 3
        assert world.views("env_acme_prod", "viewer-00003") == 3
    finally:
        world.desk.close()
        world.state.close()


def test_a_no_data_found_answer_still_suppresses(world: World):
    erase_by_mail(world, "dpo@acme.example", "viewer-99999")  # nothing to erase yet
    with world.state.session() as session:
        assert session.scalar(sa.select(ErasureRequest.response)) == "no_data_found"
    add_views(world, "env_acme_prod", "viewer-99999")
    assert run_sweep(world).tenants["acme"].counts == {"views": 1, "view_events": 3}
    assert world.views(viewer="viewer-99999") == 0


def test_an_id_leaves_the_list_when_its_request_record_is_pruned(erased: World):
    from erasure.workflow import Desk

    later = NOW + dt.timedelta(days=800)  # past policy.record_retention_months (24)
    assert Desk(erased.config, erased.state, now=lambda: later).prune_records() != []
    assert suppression_list(erased.state, ["acme"]) == {"acme": set()}
    assert run_sweep(erased).total == 0


def test_a_sweep_that_stops_half_way_records_what_it_deleted(erased: World):
    erase_by_mail(erased, "dpo@acme.example", "viewer-00002")
    add_views(erased, "env_acme_prod", "viewer-00002")

    def break_the_store_after_the_first_batch(tenant: str, what: str, n: int) -> None:
        if what == "rows deleted":
            engine = sa.create_engine(f"sqlite:///{erased.root / 'views.db'}")
            with engine.begin() as conn:
                conn.execute(sa.text("DROP TABLE view_events"))
            engine.dispose()

    with pytest.raises(StoreError):
        run_sweep(erased, batch_size=1, progress=break_the_store_after_the_first_batch)
    with erased.state.session() as session:
        (event,) = session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "suppression_sweep")).all()
        reason, _data = audit.shown(session, event)
    assert "stopped early (StoreError)" in reason
    done = json.loads(event.data)["tenants"]["acme"]
    assert done["ids_matched"] == 2
    assert sum(done["counts"].values()) in (12, 4)  # the first batch only: viewer-00001 (3 views) or viewer-00002 (1)


# ---------------------------------------------------------------- key rotation


def rotated(world: World, monkeypatch, *, keep_retired: bool):
    """The same installation after rotating to key version 2."""
    monkeypatch.setenv("ERASURE_TEST_AUDIT_KEY_V2", "the-new-key")
    data = config_dict(world.root, suppression=True)
    data["audit"] = {"hmac_key_env": "ERASURE_TEST_AUDIT_KEY_V2", "key_version": 2,
                     "retired_keys": [{"version": 1, "env": KEY_ENV}]}
    if not keep_retired:
        monkeypatch.delenv(KEY_ENV)
    return config_from_dict(data, base_dir=world.root)


def test_subjects_hashed_with_a_retired_key_still_suppress(erased: World, monkeypatch):
    config = rotated(erased, monkeypatch, keep_retired=True)
    assert set(config.audit_keys()) == {1, 2}
    result = run_sweep(erased, config)
    assert result.tenants["acme"].counts == {"views": 3, "view_events": 9}
    assert result.unchecked == {}
    assert erased.views("env_acme_dev", "viewer-00001") == 0


def test_without_the_retired_key_nothing_is_deleted_and_the_result_says_why(erased: World, monkeypatch):
    config = rotated(erased, monkeypatch, keep_retired=False)
    result = run_sweep(erased, config)
    assert result.total == 0
    assert result.unchecked == {1: 1}
    assert erased.views("env_acme_dev", "viewer-00001") == 2


# ---------------------------------------------------------------- evidence


def test_one_audit_event_with_counts_the_chain_verifies_and_the_raw_id_is_nowhere(erased: World):
    run_sweep(erased)
    with erased.state.session() as session:
        (event,) = session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "suppression_sweep")).all()
        assert audit.verify(session).ok
    data = json.loads(event.data)
    assert data["tenants"]["acme"] == {"counts": {"views": 3, "view_events": 9}, "ids_matched": 1, "ids_listed": 1}
    assert data["ids_matched"] == 1 and data["total"] == 12
    assert event.request_ref is None
    erased.state.close()
    with sqlite3.connect(erased.root / "state.db") as conn:
        dump = "\n".join(conn.iterdump())
    assert "suppression_sweep" in dump
    assert "viewer-00001" not in dump.lower()


# ---------------------------------------------------------------- the CLI


def cli(world: World, *args: str):
    toml = world.root / "erasure.toml"
    toml.write_text(tomli_w.dumps(config_dict(world.root, suppression=True)))
    return CliRunner().invoke(app, ["--config", str(toml), *args], env={KEY_ENV: "test-key"})


def test_cli_dry_run_prints_the_counts_and_exits_0(erased: World):
    result = cli(erased, "suppression", "sweep", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "acme: 1 erased viewer id(s) seen again; would delete 3 from views, 9 from view_events" in result.stdout
    assert "would delete 12 row(s) under 1 viewer id(s)" in result.stdout
    assert erased.views("env_acme_dev", "viewer-00001") == 2


def test_cli_sweep_deletes(erased: World):
    result = cli(erased, "suppression", "sweep")
    assert result.exit_code == 0, result.output
    assert "deleted 12 row(s) under 1 viewer id(s)" in result.stdout
    assert erased.views("env_acme_dev", "viewer-00001") == 0


def test_cli_refuses_when_off_with_exit_2(world: World):
    toml = world.root / "erasure.toml"
    toml.write_text(tomli_w.dumps(config_dict(world.root)))
    result = CliRunner().invoke(app, ["--config", str(toml), "suppression", "sweep"], env={KEY_ENV: "test-key"})
    assert result.exit_code == 2
    assert "policy.suppression is off" in result.output


# ---------------------------------------------------------------- reading ids exactly, on every backend


@pytest.fixture
def store(store_url: str) -> Iterator[ViewStore]:
    engine = sa.create_engine(store_url)
    create_demo_schema(engine)
    start = NOW.replace(tzinfo=None)
    rows = [("e1", "abc"), ("e1", "abc"), ("e1", "ABC"), ("e1", "abc "), ("e1", "àbc"), ("e1", "x-1"),
            ("E1", "only-in-E1"), ("e2", "only-in-e2")]
    with engine.begin() as conn:
        conn.execute(views.insert(), [
            {"view_id": f"v{i}", "environment_id": env, "viewer_id": viewer, "view_start": start}
            for i, (env, viewer) in enumerate(rows)
        ])
    engine.dispose()
    s = ViewStore(StoreSettings(url=store_url, tables=DEMO_STORE_TABLES))
    yield s
    s.close()


def test_distinct_ids_are_exact_and_scoped_on_every_backend(store: ViewStore):
    got = list(store.distinct_viewer_ids(("e1",), chunk=2))
    assert sorted(got) == sorted(["abc", "ABC", "abc ", "àbc", "x-1"])


def test_no_environments_reads_nothing(store: ViewStore):
    assert list(store.distinct_viewer_ids(())) == []


def test_cli_exits_1_when_erased_ids_could_not_be_checked(erased: World):
    data = config_dict(erased.root, suppression=True)
    data["audit"] = {"hmac_key_env": "ERASURE_TEST_AUDIT_KEY_V2", "key_version": 2,
                     "retired_keys": [{"version": 1, "env": "ERASURE_TEST_AUDIT_KEY_V1_UNSET"}]}
    toml = erased.root / "erasure.toml"
    toml.write_text(tomli_w.dumps(data))
    result = CliRunner().invoke(app, ["--config", str(toml), "suppression", "sweep"],
                                env={"ERASURE_TEST_AUDIT_KEY_V2": "the-new-key"})
    assert result.exit_code == 1, result.output
    assert "1 erased viewer id(s) hashed with key version 1 were not checked" in result.stderr
    assert erased.views("env_acme_dev", "viewer-00001") == 2
