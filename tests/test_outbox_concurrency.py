"""Two deliverers at once (cron `poll` and an officer's `outbox retry`) on each real state database,
against a real SMTP server: every reply goes out exactly once, and a claim left by a deliverer that
died is taken over once its lease runs out, never lost."""

from __future__ import annotations

import collections
import datetime as dt
import json
import threading

import pytest
import sqlalchemy as sa

from erasure import audit
from erasure.config import config_from_dict
from erasure.delivery import CLAIM_LEASE, SmtpTransport, retry_delay
from erasure.models import AuditEvent, OutboxMessage
from erasure.notify import _claim, deliver, requeue
from erasure.state import open_state
from erasure.viewschema import create_demo_schema, fill_synthetic_views
from erasure.workflow import Desk
from tests.world import KEY_ENV, NOW, TENANTS, config_dict, mail

REPLIES = 8


@pytest.fixture
def state_url(store_backend, store_url, tmp_path):
    """The state database on each backend (SQLite: a file of its own, beside the view store)."""
    return f"sqlite:///{tmp_path / 'state.db'}" if store_backend == "sqlite" else store_url


@pytest.fixture
def queued(tmp_path, monkeypatch, state_url):
    """A state database with REPLIES completed requests, each with one reply queued and nothing sent."""
    monkeypatch.setenv(KEY_ENV, "test-key")
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
    views = tmp_path / "views.db"
    engine = sa.create_engine(f"sqlite:///{views}")
    create_demo_schema(engine)
    fill_synthetic_views(engine, TENANTS, viewer_ids_per_env=10, views_per_viewer=3, seed=1, now=NOW, max_age_days=60)
    engine.dispose()
    raw = config_dict(tmp_path)
    raw["state"]["url"] = state_url
    raw["store"]["url"] = f"sqlite:///{views}"
    config = config_from_dict(raw, base_dir=tmp_path)
    state = open_state(config.state.url, base_dir=tmp_path)
    desk = Desk(config, state, now=lambda: NOW)
    for i in range(REPLIES):
        (tmp_path / "Maildir" / "new" / f"{i}.test").write_bytes(
            mail(f"dpo{i}@acme.example", f"Viewer ID: viewer-{i:05d}\n"))
    from erasure.mailbox import MaildirSource

    with MaildirSource(tmp_path / "Maildir") as source:
        desk.poll(source)
    desk.close()
    assert len(rows(state)) == REPLIES
    yield state
    state.close()


def rows(state):
    with state.session() as session:
        return session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()


class GatedTransport(SmtpTransport):
    """A real SMTP transport whose first send waits until the other deliverer is sending too.

    That is the race from the field: both deliverers have read the same queue
    and are inside a send at the same moment. Without claims, both send the
    same reply (PostgreSQL, MariaDB) or one holds the SQLite write lock while
    sending and the other can never reach the gate (the barrier times out).
    """

    def __init__(self, settings, password, gate: threading.Barrier) -> None:
        super().__init__(settings, password)
        self.gate = gate
        self.first = True

    def send(self, message):
        if self.first:
            self.first = False
            self.gate.wait(timeout=30)
        return super().send(message)


def test_two_deliverers_at_once_send_each_reply_exactly_once(queued, state_url, smtp_server):
    gate = threading.Barrier(2)
    reports, errors = [], []

    def deliverer(name: str) -> None:
        state = open_state(state_url)  # its own engine and connections, like a second process
        transport = GatedTransport(smtp_server.settings(), smtp_server.password, gate)
        try:
            reports.append(deliver(state, transport, now=lambda: NOW, retry_delay=retry_delay, worker=name))
        except Exception as exc:  # noqa: BLE001 - surfaced below as a failure
            errors.append(exc)
        finally:
            transport.close()
            state.close()

    done = threading.Event()
    requeued = []

    def officer() -> None:
        """`outbox retry` puts replies back in the queue while both deliver: it must never resurrect a sent one."""
        state = open_state(state_url)
        try:
            while not done.is_set():
                requeued.append(requeue(state))
        except Exception as exc:  # noqa: BLE001 - surfaced below as a failure
            errors.append(exc)
        finally:
            state.close()

    threads = [threading.Thread(target=deliverer, args=(name,)) for name in ("poll", "outbox-retry")]
    retrier = threading.Thread(target=officer)
    retrier.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    done.set()
    retrier.join(timeout=60)
    assert not errors, errors
    assert not any(t.is_alive() for t in [*threads, retrier])
    assert requeued, "the officer's retries ran alongside"
    assert requeue(queued) == 0  # nothing left to put back once all were sent

    sent = collections.Counter(smtp_server.handler.message_ids)
    expected = {r.message_id for r in rows(queued)}
    assert sent == collections.Counter({m: 1 for m in expected})
    assert sum(r.sent for r in reports) == REPLIES
    assert all(r.sent > 0 for r in reports), "both deliverers took part"
    assert [(r.status, r.attempts, r.claimed_by) for r in rows(queued)] == [("sent", 1, None)] * REPLIES
    with queued.session() as session:
        assert audit.verify(session).ok
        events = session.scalars(sa.select(AuditEvent.event).where(AuditEvent.event == "reply_sent")).all()
    assert len(events) == REPLIES


def test_a_claim_left_by_a_crashed_deliverer_is_taken_over_after_the_lease(queued, smtp_server):
    first = rows(queued)[0]
    assert _claim(queued, first.id, "crashed-host:123:dead", NOW, CLAIM_LEASE) is not None  # then it died

    def run(at):
        transport = SmtpTransport(smtp_server.settings(), None)
        try:
            return deliver(queued, transport, now=lambda: at, retry_delay=retry_delay)
        finally:
            transport.close()

    report = run(NOW + CLAIM_LEASE - dt.timedelta(seconds=1))
    assert report.sent == REPLIES - 1
    assert first.message_id not in smtp_server.handler.message_ids  # still someone else's
    (still,) = [r for r in rows(queued) if r.id == first.id]
    assert (still.status, still.claimed_by) == ("queued", "crashed-host:123:dead")

    report = run(NOW + CLAIM_LEASE)
    assert report.sent == 1
    assert collections.Counter(smtp_server.handler.message_ids)[first.message_id] == 1
    assert all(r.status == "sent" and r.claimed_by is None for r in rows(queued))


def test_an_unavailable_server_gives_the_claim_back(queued, smtp_server):
    settings = smtp_server.settings()
    smtp_server.stop()
    transport = SmtpTransport(settings, None)
    report = deliver(queued, transport, now=lambda: NOW, retry_delay=retry_delay)
    assert report.unavailable and report.sent == 0
    assert [(r.status, r.attempts, r.claimed_by, r.claimed_until) for r in rows(queued)] == [
        ("queued", 0, None, None)] * REPLIES


def test_retry_never_requeues_a_reply_that_was_sent(queued, smtp_server):
    transport = SmtpTransport(smtp_server.settings(), None)
    try:
        assert deliver(queued, transport, now=lambda: NOW, retry_delay=retry_delay).sent == REPLIES
        assert requeue(queued) == 0
        assert deliver(queued, transport, now=lambda: NOW, retry_delay=retry_delay).sent == 0
    finally:
        transport.close()
    assert len(smtp_server.handler.message_ids) == REPLIES


@pytest.mark.parametrize(("timeout", "lease"), [
    (0, CLAIM_LEASE), (30, CLAIM_LEASE), (45, CLAIM_LEASE), (46, dt.timedelta(seconds=920)), (300, dt.timedelta(minutes=100)),
])
def test_the_lease_outlasts_the_slowest_send_the_timeout_allows(timeout, lease):
    from erasure.config import DeliverySettings
    from erasure.delivery import claim_lease

    assert claim_lease(DeliverySettings(timeout_seconds=timeout)) == lease


def test_outbox_list_shows_a_reply_being_sent(queued, tmp_path):
    from typer.testing import CliRunner

    from erasure.cli import app

    first = rows(queued)[0]
    _claim(queued, first.id, "host-a:42:abc", NOW, CLAIM_LEASE)
    config = tmp_path / "list.toml"
    config.write_text(f'[state]\nurl = "{queued.engine.url.render_as_string(hide_password=False)}"\n'
                      '[policy]\ntime_zone = "UTC"\n')
    result = CliRunner().invoke(app, ["--config", str(config), "outbox", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = {r["id"]: r for r in json.loads(result.output)}
    assert (listed[first.id]["claimed_by"], listed[first.id]["claimed_until"]) == (
        "host-a:42:abc", (NOW + CLAIM_LEASE).isoformat())
    assert all(r["claimed_by"] is None for i, r in listed.items() if i != first.id)
    text = CliRunner().invoke(app, ["--config", str(config), "outbox", "list"])
    assert "being sent by host-a:42:abc" in text.output
