"""Where the real services the tests need come from, and what happens when one is missing.

Locally a missing server skips its tests with a message naming what was tried;
under ``CI=true`` the same absence fails the run, so CI can never go green by
silently testing less.
"""

from __future__ import annotations

import os
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

PG_URL = os.environ.get("ERASURE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MYSQL_URL = os.environ.get("ERASURE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql")


def missing_service(what: str) -> None:
    """Skip (locally) or fail (CI) because ``what`` is not available; never returns."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: a missing service is a failure, not a skip)", pytrace=False)
    pytest.skip(what)


def free_port() -> int:
    """A free loopback TCP port (bound then released; the caller binds it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, *, timeout: float = 20.0, process=None) -> None:
    """Poll until something accepts on host:port (never a blind sleep)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server process exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # polling interval, not a wait for readiness
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout}s")
