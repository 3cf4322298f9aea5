"""Several hosts: the poll lock lives in a PostgreSQL or MariaDB state database.

Two `erasure poll` processes, each with its own config folder (its own lock
file), share one state database, one Dovecot mailbox and one SMTP server:
no message is taken twice, no reply sent twice, no request erased twice.
"""

from __future__ import annotations

import dataclasses

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
import tomli_w

from erasure.errors import StateUnavailableError
from erasure.models import AuditEvent, ErasureRequest, MailboxMessage
from erasure.polllock import poll_lock
from erasure.state import make_engine
from erasure.viewschema import create_demo_schema, fill_synthetic_views
from tests.dovecot_server import PASSWORD
from tests.smtp_server import SmtpTestServer
from tests.world import KEY_ENV, NOW, TENANTS, config_dict, mail

SERVERS = [
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]


@pytest.fixture(params=SERVERS)
def state_url(request, _store_databases) -> str:  # type: ignore[no-untyped-def]
    """An empty database on a real server, for the state (its name is random per run)."""
    return _store_databases.fresh(request.param).render_as_string(hide_password=False)


def test_a_second_lock_on_the_same_database_is_refused_until_the_first_is_released(state_url: str,
                                                                                     tmp_path: Path) -> None:
    one, two = make_engine(state_url), make_engine(state_url)
    try:
        with poll_lock(one, tmp_path / "a.lock") as first:
            assert first is not None and first.still_held()
            with poll_lock(two, tmp_path / "b.lock") as second:  # another host: its own lock file
                assert second is None
        with poll_lock(two, tmp_path / "b.lock") as again:
            assert again is not None
    finally:
        one.dispose()
        two.dispose()


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from erasure.polllock import poll_lock
    from erasure.state import make_engine
    with poll_lock(make_engine(sys.argv[1]), Path(sys.argv[2])) as lock:
        print("held" if lock else "refused", flush=True)
        sys.stdin.read()  # until killed
""")


def test_a_lock_held_by_a_dead_host_goes_with_its_session(state_url: str, tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, state_url, str(tmp_path / "dead.lock")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        engine = make_engine(state_url)
        with poll_lock(engine, tmp_path / "mine.lock") as lock:
            assert lock is None
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        # The server notices the closed socket and ends the session; poll until it has (no sleeping).
        for _ in range(2000):
            with poll_lock(engine, tmp_path / "mine.lock") as lock:
                if lock is not None:
                    break
        assert lock is not None
        engine.dispose()
    finally:
        holder.kill()


def _kill_connection(state_url: str, lock) -> None:  # type: ignore[no-untyped-def]
    """End the lock's session from outside, as a server restart or failover would."""
    pid = lock._conn.exec_driver_sql(  # noqa: SLF001 (the test reaches the one connection that holds it)
        "SELECT pg_backend_pid()" if state_url.startswith("postgresql") else "SELECT CONNECTION_ID()").scalar()
    admin = sa.create_engine(state_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})" if state_url.startswith("postgresql")
                             else f"KILL {int(pid)}")
    admin.dispose()


def test_a_pass_that_loses_its_lock_stops_with_a_temporary_error(state_url: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.world import make_world

    w = make_world(tmp_path, monkeypatch)
    engine = make_engine(state_url)
    try:
        with poll_lock(engine, tmp_path / "x.lock") as lock:
            assert lock is not None
            _kill_connection(state_url, lock)
            assert not lock.still_held()
            w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00001\n"))
            with w.source() as source, pytest.raises(StateUnavailableError, match="lost the poll lock"):
                w.desk.poll(source, lock_held=lock.still_held)
    finally:
        engine.dispose()
        w.desk.close()
        w.state.close()
    with w.state.session() as session:  # nothing was taken: the message is still there for the next run
        assert session.scalar(sa.select(sa.func.count()).select_from(MailboxMessage)) == 0


def _host_config(root: Path, state_url: str, views: Path, mailbox, delivery) -> Path:  # type: ignore[no-untyped-def]
    root.mkdir()
    raw = config_dict(root)
    raw["state"]["url"] = state_url
    raw["store"]["url"] = f"sqlite:///{views}"
    raw["mailbox"] = {k: v for k, v in dataclasses.asdict(mailbox).items() if v is not None}
    raw["delivery"] = {k: v for k, v in dataclasses.asdict(delivery).items() if v is not None}
    (root / "erasure.toml").write_text(tomli_w.dumps(raw))
    return root / "erasure.toml"


def test_two_hosts_polling_one_state_database_take_each_message_once(
        state_url: str, tmp_path: Path, dovecot, smtp_server: SmtpTestServer) -> None:  # type: ignore[no-untyped-def]
    views = tmp_path / "views.db"
    engine = sa.create_engine(f"sqlite:///{views}")
    create_demo_schema(engine)
    fill_synthetic_views(engine, TENANTS, viewer_ids_per_env=10, views_per_viewer=3, seed=1, now=NOW, max_age_days=60)
    engine.dispose()
    user = dovecot.new_user()
    mailbox = dovecot.settings(user, "starttls")
    delivery = smtp_server.settings(from_address="privacy@analytics.example")
    hosts = [_host_config(tmp_path / f"host-{n}", state_url, views, mailbox, delivery) for n in ("a", "b")]
    env = {**os.environ, KEY_ENV: "test-key", "ERASURE_TEST_IMAP_PASSWORD": PASSWORD}
    sent = 0
    for round_ in range(3):
        batch = [mail("dpo@acme.example", f"Viewer ID: viewer-{round_ * 3 + i + 1:05d}\n") for i in range(3)]
        batch.append(mail("someone@unknown.example", "Viewer ID: viewer-00009\n"))  # review, never answered
        dovecot.deliver(user, batch)
        sent += len(batch)
        runs = [subprocess.Popen([sys.executable, "-m", "erasure", "--config", str(h), "poll"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for h in hosts]
        for run in runs:
            out, err = run.communicate(timeout=300)
            assert run.returncode in (0, 1), err  # 1: the unknown sender's request awaits review
    state = sa.create_engine(state_url, poolclass=sa.pool.NullPool)
    with state.connect() as conn:
        taken = conn.execute(sa.select(MailboxMessage.message_id)).scalars().all()
        requests = conn.execute(sa.select(ErasureRequest.reference, ErasureRequest.status)).all()
        erased = Counter(conn.execute(sa.select(AuditEvent.request_ref).where(AuditEvent.event == "erased")).scalars())
    state.dispose()
    assert len(taken) == len(set(taken)) == sent  # every message once
    assert len(requests) == sent
    assert Counter(status for _, status in requests) == {"completed": 9, "needs_review": 3}
    assert set(erased.values()) == {1} and len(erased) == 9  # every request erased once, in the one store
    ids = Counter(m.message_id for m in smtp_server.received)
    assert ids and set(ids.values()) == {1}  # no reply sent twice
    assert len([i for i in ids if ".completed" in i]) == 9
    with dovecot.client(user) as c:  # nothing left behind in the intake folder
        c.select_folder("INBOX", readonly=True)
        assert c.search("ALL") == []

