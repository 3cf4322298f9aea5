"""pytest plugin: a fresh, empty view-store database on each real backend.

``store_url`` is parametrized over sqlite / postgres / mysql. SQLite gets a new
file per test. On the servers named by ``tests.services.PG_URL`` /
``MYSQL_URL`` the run creates one database with a random name per server,
empties it before every test (so tests never see each other's rows) and drops
it when the run ends; no test touches a database it did not make. A server
that cannot be reached skips locally and fails under CI=true.

MariaDB databases are created with the server's default character set and
collation on purpose (utf8mb4_general_ci: case- and accent-insensitive, PAD
SPACE), because that is what exact matching has to survive in production.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from tests.services import MYSQL_URL, PG_URL, missing_service

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]


def _admin_engine(url: str, what: str) -> sa.Engine:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any failure to reach the server means "service missing"
        engine.dispose()
        missing_service(f"{what} not reachable at {make_url(url).render_as_string(hide_password=True)}: {type(exc).__name__}")
    return engine


class _ServerDatabases:
    """One random-named database per server for the whole run, emptied before each test.

    Creating a PostgreSQL database costs about half a second; emptying one
    costs milliseconds. Every database made here is dropped at the end of the run.
    """

    def __init__(self) -> None:
        self._made: dict[str, tuple[sa.Engine, str, str]] = {}

    def fresh(self, backend: str) -> URL:
        """The run's database on ``backend``, created on first use and emptied now."""
        if backend not in self._made:
            server, what = (PG_URL, "PostgreSQL") if backend == "postgres" else (MYSQL_URL, "MariaDB/MySQL")
            admin = _admin_engine(server, what)
            name = f"erasure_test_{secrets.token_hex(6)}"
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")  # random hex name, never user input
            self._made[backend] = (admin, server, name)
        admin, server, name = self._made[backend]
        url = make_url(server).set(database=name)
        self._empty(backend, url)
        return url

    @staticmethod
    def _empty(backend: str, url: URL) -> None:
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                if backend == "postgres":
                    conn.exec_driver_sql("SET lock_timeout = '10s'")  # a leaked transaction fails loudly, never hangs
                    conn.exec_driver_sql("DROP SCHEMA public CASCADE")
                    conn.exec_driver_sql("CREATE SCHEMA public")
                else:
                    # Dropping and re-making the database is one step, whatever the test created.
                    name = url.database
                    conn.exec_driver_sql("SET SESSION lock_wait_timeout = 10")
                    conn.exec_driver_sql(f"DROP DATABASE {name}")
                    conn.exec_driver_sql(f"CREATE DATABASE {name}")
        finally:
            engine.dispose()

    def drop_all(self) -> None:
        for backend, (admin, _, name) in self._made.items():
            drop = f"DROP DATABASE IF EXISTS {name}" + (" WITH (FORCE)" if backend == "postgres" else "")
            with admin.connect() as conn:
                conn.exec_driver_sql(drop)
            admin.dispose()
        self._made.clear()


@pytest.fixture(scope="session")
def _store_databases() -> Iterator[_ServerDatabases]:
    dbs = _ServerDatabases()
    yield dbs
    dbs.drop_all()


@pytest.fixture(params=BACKENDS)
def store_backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend this test instance runs on: sqlite, postgres or mysql."""
    return request.param


@pytest.fixture
def store_url(store_backend: str, tmp_path: Path, _store_databases: _ServerDatabases) -> str:
    """SQLAlchemy URL (password included) of an empty database on each backend.

    SQLite gets a new file per test; the servers get the run's own database,
    emptied of every table (and, on PostgreSQL, function) first.
    """
    if store_backend == "sqlite":
        return f"sqlite:///{tmp_path / 'views.db'}"
    return _store_databases.fresh(store_backend).render_as_string(hide_password=False)


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    """A plain engine on the fresh database, with the demo schema; the test's own view of the rows."""
    from erasure.viewschema import create_demo_schema

    eng = sa.create_engine(store_url)
    create_demo_schema(eng)
    yield eng
    eng.dispose()
