"""The state database: the same Alembic migrations, models and audit chain on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from erasure import audit
from erasure.models import Base
from erasure.state import current_revision, head_revision, open_state


@pytest.fixture
def state_url(store_url):
    """A fresh, empty database on each backend (the store fixtures make and drop it)."""
    return store_url


def test_migrations_reach_head_and_match_the_models(state_url):
    state = open_state(state_url)
    try:
        assert current_revision(state.engine) == head_revision()
        with state.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        open_state(state_url).close()  # migrating again is a no-op
    finally:
        state.close()


def test_timestamps_keep_microseconds_so_the_chain_verifies(state_url):
    state = open_state(state_url)
    at = dt.datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=dt.timezone.utc)
    try:
        with state.session() as session:
            for i in range(3):
                audit.record(session, "received", reason=f"é{i}", data={"n": i}, now=at + dt.timedelta(microseconds=i))
        with state.session() as session:
            result = audit.verify(session)
            events = list(audit.iter_events(session))
        assert result.ok, result.problem
        assert events[1].at == at + dt.timedelta(microseconds=1)
        assert events[1].at.tzinfo is not None
    finally:
        state.close()


def test_a_state_database_locked_by_another_writer_is_a_temporary_failure(tmp_path):
    import sqlite3

    from erasure.errors import StateUnavailableError

    state = open_state(f"sqlite:///{tmp_path / 'state.db'}", busy_timeout=0.2)
    other = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process is writing
        with pytest.raises(StateUnavailableError, match="unreachable or busy"):
            with state.session() as session:
                audit.record(session, "received")
        other.execute("ROLLBACK")
        with state.session() as session:  # free again: the same call succeeds
            audit.record(session, "received")
        with state.session() as session:
            assert audit.verify(session).events == 1
    finally:
        other.close()
        state.close()


def _migrator(engine):
    """migrate(command.upgrade | command.downgrade, revision) on this engine, one transaction a step."""
    from erasure.state import _alembic_config

    cfg = _alembic_config()

    def migrate(step, target):
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            step(cfg, target)

    return migrate


@contextlib.contextmanager
def migrating(url: str):
    """(engine, migrate) on a fresh state database; on leaving, upgraded back to head (checked) and disposed."""
    from alembic import command

    from erasure.state import make_engine

    engine = make_engine(url)
    migrate = _migrator(engine)
    try:
        yield engine, migrate
        migrate(command.upgrade, "head")
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_0004_drops_last_uid_and_keeps_each_sources_cursor(state_url):
    import sqlalchemy as sa
    from alembic import command

    from erasure.state import make_engine

    engine = make_engine(state_url)
    migrate = _migrator(engine)

    def columns():
        return {c["name"] for c in sa.inspect(engine).get_columns("mailbox_cursor")}

    try:
        migrate(command.upgrade, "0003")
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO mailbox_cursor (source, uidvalidity, last_uid) VALUES ('imap://a', 7, 42)"))
        migrate(command.upgrade, "0004")
        assert "last_uid" not in columns()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT source, uidvalidity FROM mailbox_cursor")).all() == [("imap://a", 7)]
        migrate(command.downgrade, "0003")
        assert "last_uid" in columns()
        migrate(command.upgrade, "head")
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_0005_adds_a_nullable_controller_due_on_and_takes_it_back(state_url):
    import sqlalchemy as sa
    from alembic import command

    with migrating(state_url) as (engine, migrate):
        def columns():
            return {c["name"]: c for c in sa.inspect(engine).get_columns("requests")}

        migrate(command.upgrade, "0004")
        assert "controller_due_on" not in columns()
        migrate(command.upgrade, "0005")
        column = columns()["controller_due_on"]
        assert column["nullable"] and isinstance(column["type"], sa.Date)  # earlier requests have none
        migrate(command.downgrade, "0004")
        assert "controller_due_on" not in columns()


def test_0009_adds_legal_holds_and_held_from_and_takes_them_back(state_url):
    import sqlalchemy as sa
    from alembic import command

    with migrating(state_url) as (engine, migrate):
        def tables():
            return set(sa.inspect(engine).get_table_names())

        def request_columns():
            return {c["name"]: c for c in sa.inspect(engine).get_columns("requests")}

        migrate(command.upgrade, "0008")
        assert "legal_holds" not in tables() and "held_from" not in request_columns()
        migrate(command.upgrade, "0009")
        assert "legal_holds" in tables() and request_columns()["held_from"]["nullable"]
        holds = {c["name"]: c for c in sa.inspect(engine).get_columns("legal_holds")}
        assert holds["viewer_hmac"]["nullable"] and not holds["reason"]["nullable"]  # a tenant hold has no viewer
        migrate(command.downgrade, "0008")
        assert "legal_holds" not in tables() and "held_from" not in request_columns()


def test_0011_adds_the_audit_checkpoint_and_takes_it_back(state_url):
    import sqlalchemy as sa
    from alembic import command

    with migrating(state_url) as (engine, migrate):
        migrate(command.upgrade, "0010")
        assert "audit_checkpoint" not in sa.inspect(engine).get_table_names()
        migrate(command.upgrade, "0011")
        assert "audit_checkpoint" in sa.inspect(engine).get_table_names()
        migrate(command.downgrade, "0010")
        assert "audit_checkpoint" not in sa.inspect(engine).get_table_names()
