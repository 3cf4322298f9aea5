"""pytest plugin: a fresh, empty view-store database on each real backend.

``store_url`` is parametrized over sqlite / postgres / mysql. Each test gets a
database with a random name, created on the server named by
``tests.services.PG_URL`` / ``MYSQL_URL`` and dropped afterwards, so tests
never see each other's rows and never touch a database they did not make.
A server that cannot be reached skips locally and fails under CI=true.

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


def _server_database(server_url: str, what: str, drop_sql: str) -> Iterator[URL]:
    name = f"erasure_test_{secrets.token_hex(6)}"
    admin = _admin_engine(server_url, what)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")  # random hex name, not user input
        try:
            yield make_url(server_url).set(database=name)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(drop_sql.format(name=name))
    finally:
        admin.dispose()


def fresh_database(backend: str, tmp_path: Path) -> Iterator[URL]:
    """Create an empty database on ``backend``; yields its URL and drops it when done."""
    if backend == "sqlite":
        yield make_url(f"sqlite:///{tmp_path / 'views.db'}")
    elif backend == "postgres":
        # WITH (FORCE): a test that failed mid-transaction must not leave the drop hanging.
        yield from _server_database(PG_URL, "PostgreSQL", "DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    elif backend == "mysql":
        yield from _server_database(MYSQL_URL, "MariaDB/MySQL", "DROP DATABASE IF EXISTS {name}")
    else:  # pragma: no cover
        raise ValueError(backend)


@pytest.fixture(params=BACKENDS)
def store_backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend this test instance runs on: sqlite, postgres or mysql."""
    return request.param


@pytest.fixture
def store_url(store_backend: str, tmp_path: Path) -> Iterator[str]:
    """SQLAlchemy URL (password included) of a fresh, empty database on each backend."""
    for url in fresh_database(store_backend, tmp_path):
        yield url.render_as_string(hide_password=False)
