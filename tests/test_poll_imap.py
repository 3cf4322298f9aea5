"""`erasure poll` end to end over IMAP against a private Dovecot: nothing lost, nothing taken twice."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
import tomli_w
import tomllib
from typer.testing import CliRunner

from erasure import audit
from erasure.cli import app
from erasure.config import config_from_dict
from erasure.imap import ImapSource
from erasure.models import ErasureRequest
from erasure.runner import poll_once
from erasure.workflow import Desk
from tests.dovecot_server import PASSWORD
from tests.services import free_port
from tests.world import KEY_ENV, config_dict, mail, make_world

PASSWORD_ENV = "ERASURE_TEST_IMAP_PASSWORD"


@pytest.fixture
def imap_world(tmp_path, monkeypatch, dovecot):
    """The test world, reading a fresh Dovecot user's folder `Requests` over STARTTLS."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    w = make_world(tmp_path, monkeypatch)
    user = dovecot.new_user()
    settings = dovecot.settings(user, "starttls", folder="Requests")
    w.config = dataclasses.replace(w.config, mailbox=settings)
    w.desk = Desk(w.config, w.state)
    w.user = user
    w.dovecot = dovecot
    with dovecot.client(user) as c:
        c.create_folder("Requests")
    yield w
    w.desk.close()
    w.state.close()


def folder(w, name):
    with w.dovecot.client(w.user) as c:
        if not c.folder_exists(name):
            return []
        c.select_folder(name, readonly=True)
        return c.search("ALL")


def requests(w):
    with w.state.session() as session:
        return session.scalars(sa.select(ErasureRequest).order_by(ErasureRequest.id)).all()


def test_poll_takes_new_mail_once_and_files_it(imap_world):
    w = imap_world
    w.dovecot.deliver(w.user, [mail("dpo@acme.example", "Viewer ID: viewer-00001\n"),
                               mail("someone@unknown.example", "Viewer ID: viewer-00002\n")], folder="Requests")
    result = poll_once(w.config)
    assert result.fetched == 2
    assert sorted(o.status for o in result.outcomes) == ["completed", "needs_review"]
    assert folder(w, "Requests") == []
    assert len(folder(w, "Processed")) == 1 and len(folder(w, "Review")) == 1
    again = poll_once(w.config)
    assert again.fetched == 0 and len(requests(w)) == 2


def test_a_crash_before_the_move_does_not_create_a_second_request(imap_world):
    w = imap_world
    w.dovecot.deliver(w.user, [mail("dpo@acme.example", "Viewer ID: viewer-00003\n")], folder="Requests")
    with ImapSource(w.config.mailbox, PASSWORD) as source:
        (incoming,) = list(source.fetch(source.pending()))
        w.desk.intake(source.name, incoming)  # committed; the process dies before moving
    result = poll_once(w.config)
    assert (result.fetched, result.duplicates) == (0, 1)
    assert len(requests(w)) == 1 and requests(w)[0].status == "completed"
    assert folder(w, "Requests") == [] and len(folder(w, "Processed")) == 1


def test_a_recreated_folder_does_not_reprocess_old_mail(imap_world):
    w = imap_world
    raw = mail("dpo@acme.example", "Viewer ID: viewer-00004\n")
    w.dovecot.deliver(w.user, [raw], folder="Requests")
    poll_once(w.config)
    with w.dovecot.client(w.user) as c:  # someone deletes and recreates the folder, restoring old mail
        c.delete_folder("Requests")
        c.create_folder("Requests")
    w.dovecot.deliver(w.user, [raw], folder="Requests")
    result = poll_once(w.config)
    assert result.duplicates == 1 and len(requests(w)) == 1
    with w.state.session() as session:
        events = [e.event for e in audit.iter_events(session)]
    assert "mailbox_uidvalidity_changed" in events
    assert folder(w, "Requests") == []


def test_oversized_mail_goes_to_review_unread(imap_world):
    w = imap_world
    config = dataclasses.replace(w.config, mailbox=dataclasses.replace(w.config.mailbox, max_message_bytes=2000))
    w.dovecot.deliver(w.user, [mail("dpo@acme.example", "Viewer ID: viewer-00005\n" + "x" * 5000)], folder="Requests")
    result = poll_once(config)
    (outcome,) = result.outcomes
    assert (outcome.status, outcome.reason_code) == ("needs_review", "message_too_large")
    assert len(folder(w, "Review")) == 1


def test_cli_poll_over_imap_and_exit_codes(imap_world, tmp_path, monkeypatch):
    w = imap_world
    data = config_dict(tmp_path)
    m = w.config.mailbox
    data["mailbox"] = {"kind": "imap", "host": m.host, "port": m.port, "security": m.security, "ca_file": m.ca_file,
                       "username": m.username, "password_env": PASSWORD_ENV, "folder": "Requests"}
    data["mailbox"] = {k: v for k, v in data["mailbox"].items() if v is not None}
    path = tmp_path / "erasure.toml"
    path.write_text(tomli_w.dumps(data))
    assert config_from_dict(tomllib.loads(path.read_text()), base_dir=tmp_path).mailbox.kind == "imap"
    runner = CliRunner()
    w.dovecot.deliver(w.user, [mail("dpo@acme.example", "Viewer ID: viewer-00006\n")], folder="Requests")
    ok = runner.invoke(app, ["--config", str(path), "poll"], env={KEY_ENV: "test-key", PASSWORD_ENV: PASSWORD})
    assert ok.exit_code == 0, ok.output
    assert "1 new message(s)" in ok.output and "1 completed" in ok.output
    w.dovecot.deliver(w.user, [mail("someone@unknown.example", "Viewer ID: viewer-00007\n")], folder="Requests")
    review = runner.invoke(app, ["--config", str(path), "poll"], env={KEY_ENV: "test-key", PASSWORD_ENV: PASSWORD})
    assert review.exit_code == 1, review.output  # something needs a person
    refused = runner.invoke(app, ["--config", str(path), "poll"], env={KEY_ENV: "test-key", PASSWORD_ENV: "not-it"})
    assert refused.exit_code == 2, refused.output  # wrong credentials: fix the config, retrying cannot help
    assert "refused the login" in refused.output and PASSWORD_ENV in refused.output
    path.write_text(path.read_text().replace(f"port = {m.port}", f"port = {free_port()}"))
    down = runner.invoke(app, ["--config", str(path), "poll"], env={KEY_ENV: "test-key", PASSWORD_ENV: PASSWORD})
    assert down.exit_code == 75, down.output


def test_watch_processes_mail_as_it_arrives(imap_world):
    import threading
    import time

    from erasure.runner import watch_forever

    w = imap_world
    stop = threading.Event()
    passes = []
    thread = threading.Thread(
        target=watch_forever, args=(w.config,),
        kwargs={"report": passes.append, "idle_seconds": 1.0, "stop": stop.is_set}, daemon=True,
    )
    thread.start()
    try:
        w.dovecot.deliver(w.user, [mail("dpo@acme.example", "Viewer ID: viewer-00008\n")], folder="Requests")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(o.status == "completed" for p in passes for o in p.outcomes):
            time.sleep(0.05)  # polling the watcher's reports, not waiting for a server
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert any(o.status == "completed" for p in passes for o in p.outcomes)
    assert folder(w, "Requests") == []


def test_a_crash_after_fetching_takes_the_message_once_on_the_next_run(imap_world):
    w = imap_world
    w.dovecot.deliver(w.user, [mail("dpo@acme.example", "Viewer ID: viewer-00009\n")], folder="Requests")
    with ImapSource(w.config.mailbox, PASSWORD) as source:
        assert len(list(source.fetch(source.pending()))) == 1  # fetched, then the process dies: nothing recorded
    assert requests(w) == []
    result = poll_once(w.config)
    assert result.fetched == 1 and [r.status for r in requests(w)] == ["completed"]


def test_a_crash_after_the_move_but_before_it_was_noted_is_harmless(imap_world):
    w = imap_world
    w.dovecot.deliver(w.user, [mail("dpo@acme.example", "Viewer ID: viewer-00010\n")], folder="Requests")
    with ImapSource(w.config.mailbox, PASSWORD) as source:
        (incoming,) = list(source.fetch(source.pending()))
        _, destination, _ = w.desk.intake(source.name, incoming)
        source.move(incoming.ref, destination)  # moved; the process dies before noting it
    result = poll_once(w.config)
    assert (result.fetched, result.duplicates) == (0, 0)
    assert [r.status for r in requests(w)] == ["completed"]  # the recorded request still went forward
    assert len(folder(w, "Processed")) == 1


def test_watch_backs_off_while_the_mailbox_is_unreachable(imap_world):
    from erasure.runner import watch_forever

    w = imap_world
    config = dataclasses.replace(w.config, mailbox=dataclasses.replace(w.config.mailbox, port=free_port()))
    waits: list[float] = []
    watch_forever(config, report=lambda result: None, idle_seconds=1.0,
                  stop=lambda: len(waits) >= 4, sleep=waits.append)
    assert len(waits) == 4
    assert waits[1] > waits[0] and waits[2] > waits[1] and waits[3] > waits[2]  # doubling, jittered
