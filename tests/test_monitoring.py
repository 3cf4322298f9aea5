"""Monitoring: `erasure metrics` (Prometheus text, textfile refreshed by each poll) and `erasure check`.

Every figure is compared with what the state database itself holds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from erasure import monitoring
from erasure.cli import app
from erasure.config import MonitoringSettings
from erasure.health import check_all
from erasure.models import AuditEvent, ErasureRequest, OutboxMessage, StoreProgress
from erasure.runner import poll_once
from erasure.workflow import Desk
from tests.dovecot_server import PASSWORD
from tests.smtp_server import SmtpTestServer
from tests.services import free_port
from tests.world import KEY_ENV, NOW, World, mail, make_world


def samples(text: bytes | str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition, parsed by prometheus-client's own parser."""
    out = {}
    for family in text_string_to_metric_families(text.decode() if isinstance(text, bytes) else text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def read_facts(w: World, now: dt.datetime = NOW) -> monitoring.Facts:
    with w.state.session() as session:
        return monitoring.facts(session, w.config, now=now, today=now.date())


def polled_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    w = make_world(tmp_path, monkeypatch)
    w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00001\n"))
    w.deliver(mail("privacy@globex.example", "Viewer ID: viewer-00002\n"))
    w.deliver(mail("someone@unknown.example", "Viewer ID: viewer-00003\n"))
    w.deliver(mail("dpo@acme.example", "Please delete our user's data.\n"))
    w.poll()
    return w


def test_metrics_give_the_registers_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = polled_world(tmp_path, monkeypatch)
    got = samples(monitoring.prometheus_text(read_facts(w), w.config))
    with w.state.session() as session:
        by_state = session.execute(sa.select(ErasureRequest.status, ErasureRequest.tenant, sa.func.count())
                                   .group_by(ErasureRequest.status, ErasureRequest.tenant)).all()
        erased: Counter[tuple[str, str]] = Counter()
        for p in session.scalars(sa.select(StoreProgress)):
            for t, n in json.loads(p.counts).items():
                erased[(p.store, t)] += n
        head = session.scalar(sa.select(sa.func.max(AuditEvent.seq)))
        sent = session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "sent"))
    for state, tenant, n in by_state:
        assert got[("erasure_requests", (("state", state), ("tenant", tenant or "")))] == n
    assert got[("erasure_requests", (("state", "rejected"), ("tenant", "acme")))] == 0  # every state has a series
    assert {(k[1][0][1], k[1][1][1]): v for k, v in got.items() if k[0] == "erasure_rows_erased"} == {
        (s, t): n for (s, t), n in erased.items()} and sum(erased.values()) > 0
    assert got[("erasure_audit_head_seq", ())] == head
    assert got[("erasure_replies", (("state", "sent"),))] == sent > 0
    (source,) = {dict(k[1])["source"] for k in got if k[0] == "erasure_last_poll_messages_fetched"}
    assert got[("erasure_last_poll_messages_fetched", (("source", source),))] == 4
    assert got[("erasure_last_poll_duration_seconds", (("source", source),))] >= 0
    assert got[("erasure_last_successful_poll_timestamp_seconds", (("source", source),))] == NOW.timestamp()
    assert got[("erasure_store_failing_requests", (("store", "default"),))] == 0
    w.desk.close()
    w.state.close()


def test_overdue_due_soon_and_the_oldest_open_request_follow_the_clock(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    w = polled_world(tmp_path, monkeypatch)
    with w.state.session() as session:
        open_due = sorted(r.due for r in session.scalars(sa.select(ErasureRequest)) if r.is_open)
    assert open_due, "the unknown sender and the request without ids stay open"
    now = dt.datetime.combine(open_due[0], dt.time(12), tzinfo=dt.UTC) + dt.timedelta(days=1)
    late = read_facts(w, now)
    assert late.overdue == sum(1 for d in open_due if d < now.date()) >= 1
    assert late.oldest_open_age_seconds == (now - NOW).total_seconds()
    soon = read_facts(w, dt.datetime.combine(open_due[0] - dt.timedelta(days=3), dt.time(), tzinfo=dt.UTC))
    assert (soon.overdue, soon.due_soon) == (0, len(open_due))
    w.desk.close()
    w.state.close()


def test_a_parked_reply_is_counted_with_its_age(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = polled_world(tmp_path, monkeypatch)
    with w.state.session() as session:
        reply = session.scalars(sa.select(OutboxMessage)).first()
        reply.status = "parked"
        reply.created_at = NOW - dt.timedelta(days=2)
    f = read_facts(w)
    assert f.replies["parked"] == 1 and f.oldest_parked_reply_age_seconds == 2 * 86400
    w.desk.close()
    w.state.close()


def test_each_poll_refreshes_the_textfile_and_status_json_carries_the_same_facts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tomli_w

    from tests.world import config_dict

    w = make_world(tmp_path, monkeypatch)
    raw = config_dict(tmp_path) | {"monitoring": {"textfile": "metrics/erasure.prom"}}
    (tmp_path / "metrics").mkdir()
    (tmp_path / "erasure.toml").write_text(tomli_w.dumps(raw))
    from erasure.config import load_config

    config = load_config(tmp_path / "erasure.toml")
    w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00004\n"))
    poll_once(config)
    first = samples((tmp_path / "metrics" / "erasure.prom").read_text())
    assert first[("erasure_requests", (("state", "completed"), ("tenant", "acme")))] == 1
    w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00005\n"))
    w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00006\n"))
    poll_once(config)
    second = samples((tmp_path / "metrics" / "erasure.prom").read_text())
    assert second[("erasure_requests", (("state", "completed"), ("tenant", "acme")))] == 3
    assert [v for k, v in second.items() if k[0] == "erasure_last_poll_messages_fetched"] == [2]
    status = CliRunner().invoke(app, ["--config", str(tmp_path / "erasure.toml"), "status", "--json"],
                                env={KEY_ENV: "test-key"})
    data = json.loads(status.output)["metrics"]
    assert {(r["state"], r["tenant"]): r["count"] for r in data["requests"]} == {("completed", "acme"): 3}
    assert data["audit_head_seq"] == second[("erasure_audit_head_seq", ())]
    assert [p["last_poll_fetched"] for p in data["polls"]] == [2]
    w.desk.close()
    w.state.close()


def test_metrics_cli_prints_or_writes_the_textfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tomli_w

    from tests.world import config_dict

    w = polled_world(tmp_path, monkeypatch)
    (tmp_path / "erasure.toml").write_text(tomli_w.dumps(config_dict(tmp_path)))
    runner = CliRunner()
    printed = runner.invoke(app, ["--config", str(tmp_path / "erasure.toml"), "metrics"], env={KEY_ENV: "test-key"})
    assert printed.exit_code == 0 and "# TYPE erasure_requests gauge" in printed.output
    out = tmp_path / "erasure.prom"
    written = runner.invoke(app, ["--config", str(tmp_path / "erasure.toml"), "metrics", "--textfile", str(out)],
                            env={KEY_ENV: "test-key"})
    assert written.exit_code == 0 and written.output == ""
    assert samples(out.read_text())[("erasure_audit_head_seq", ())] == samples(printed.output)[("erasure_audit_head_seq", ())]
    w.desk.close()
    w.state.close()


def test_a_store_failing_erasures_shows_in_the_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_stores import _lock, make_two_store_world, two_store_config
    from erasure.config import config_from_dict

    urls = {n: f"sqlite:///{tmp_path / f'{n}.db'}" for n in ("eu-ingest", "analytics")}
    w, _stores = make_two_store_world(tmp_path, monkeypatch, urls)
    raw = two_store_config(urls)
    raw["stores"][1]["lock_timeout_seconds"] = 0
    w.desk.close()
    w.desk = Desk(config_from_dict(raw, base_dir=tmp_path), w.state, now=lambda: NOW)
    lock = _lock(tmp_path / "analytics.db")
    try:
        w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00006\n"))
        w.poll()
    finally:
        lock.close()
    got = samples(monitoring.prometheus_text(read_facts(w), w.desk.config))
    assert got[("erasure_store_failing_requests", (("store", "analytics"),))] == 1
    assert got[("erasure_store_failing_requests", (("store", "eu-ingest"),))] == 0
    assert got[("erasure_store_failing_since_timestamp_seconds", (("store", "analytics"),))] == NOW.timestamp()
    w.desk.close()
    w.state.close()


# ---------------------------------------------------------------- erasure check


def test_check_reaches_every_dependency_and_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = make_world(tmp_path, monkeypatch)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    checks = check_all(w.config)
    assert [(c.name, c.ok) for c in checks] == [("state database", True), ("mailbox", True),
                                                ("view store default", True), ("delivery", True)]
    assert all(c.seconds >= 0 for c in checks) and "schema" in checks[0].detail
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    w.desk.close()
    w.state.close()


def test_check_names_what_is_down_and_exits_75(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tomli_w

    from tests.world import config_dict

    monkeypatch.setenv(KEY_ENV, "test-key")
    (tmp_path / "Maildir").mkdir()
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "Maildir" / sub).mkdir()
    raw = config_dict(tmp_path)
    raw["delivery"] = {"kind": "smtp", "host": "127.0.0.1", "port": free_port(), "security": "none",
                       "from_address": "privacy@analytics.example", "timeout_seconds": 2}
    (tmp_path / "erasure.toml").write_text(tomli_w.dumps(raw))
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "erasure.toml"), "check", "--json"])
    assert result.exit_code == 75
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert not checks["state database"]["ok"] and "erasure init" in checks["state database"]["detail"]
    assert not (tmp_path / "state.db").exists()  # checking did not create it
    assert checks["mailbox"]["ok"]
    assert not checks["view store default"]["ok"] and "views.db" in checks["view store default"]["detail"]
    assert not checks["delivery"]["ok"] and "SMTP server 127.0.0.1" in checks["delivery"]["detail"]
    assert "down: state database, view store default, delivery" in result.stderr


def test_check_greets_a_real_smtp_server_without_sending(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         smtp_server_starttls: SmtpTestServer) -> None:
    w = make_world(tmp_path, monkeypatch)
    config = dataclasses.replace(w.config, delivery=smtp_server_starttls.settings())
    (delivery,) = [c for c in check_all(config) if c.name == "delivery"]
    assert delivery.ok and f"{smtp_server_starttls.port}" in delivery.detail
    assert smtp_server_starttls.received == []
    w.desk.close()
    w.state.close()


def test_check_logs_in_to_a_real_imap_mailbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dovecot) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ERASURE_TEST_IMAP_PASSWORD", PASSWORD)
    w = make_world(tmp_path, monkeypatch)
    user = dovecot.new_user()
    good = dataclasses.replace(w.config, mailbox=dovecot.settings(user, "starttls",
                                                                   password_env="ERASURE_TEST_IMAP_PASSWORD"))
    (mailbox,) = [c for c in check_all(good) if c.name == "mailbox"]
    assert mailbox.ok and user in mailbox.detail
    stopped = dataclasses.replace(good.mailbox, port=free_port())
    (down,) = [c for c in check_all(dataclasses.replace(good, mailbox=stopped)) if c.name == "mailbox"]
    assert not down.ok and "MailboxUnavailableError" in down.detail
    w.desk.close()
    w.state.close()


def test_monitoring_settings_default_to_no_textfile() -> None:
    assert MonitoringSettings().textfile is None
