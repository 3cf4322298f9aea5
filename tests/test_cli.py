"""The CLI contract: commands, output, exit codes (0 done, 1 attention, 2 usage, 75 try later)."""

from __future__ import annotations

import csv
import json
import re

import filelock
import pytest
from typer.testing import CliRunner

from erasure.cli import app
from erasure.demo import KEY_ENV
from tests.services import free_port

runner = CliRunner()


def run(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    result = run("demo", "--dir", d)
    assert result.exit_code == 0, result.output
    return d


def cli(demo_dir, *args):
    return run("--config", demo_dir / "erasure.toml", *args, env={KEY_ENV: "demo-only-audit-key-not-secret"})


def test_demo_prints_what_happened_to_each_request(demo_dir):
    out = run("demo", "--dir", demo_dir).output  # a re-run over the same folder starts afresh
    for state in ("completed", "needs_review", "ignored"):
        assert re.search(rf"\b{state}\b", out), out
    assert "no data found" in out
    assert "chain intact" in out
    assert len(list((demo_dir / "replies").glob("*.eml"))) >= 3


def test_demo_refuses_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    result = run("demo", "--dir", tmp_path)
    assert result.exit_code == 2
    assert "was not made by `erasure demo`" in result.output
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_requests_list_json_is_the_register(demo_dir):
    result = cli(demo_dir, "requests", "list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert len(rows) == 6
    assert {r["status"] for r in rows} == {"completed", "needs_review", "ignored"}
    assert set(rows[0]) >= {"reference", "status", "tenant", "regulation", "received_at", "due", "days_left", "overdue"}


def test_requests_list_filters_by_status(demo_dir):
    result = cli(demo_dir, "requests", "list", "--status", "needs_review")
    assert result.exit_code == 0
    assert result.output.count("needs_review") == 2
    assert "completed" not in result.output


def test_unknown_status_is_a_usage_error(demo_dir):
    result = cli(demo_dir, "requests", "list", "--status", "done")
    assert result.exit_code == 2
    assert "not a state" in result.output


def test_requests_show_masks_subjects_and_lists_events(demo_dir):
    rows = json.loads(cli(demo_dir, "requests", "list", "--json").output)
    review = next(r for r in rows if r["status"] == "needs_review" and r["reason_code"] != "no_viewer_id")
    out = cli(demo_dir, "requests", "show", review["reference"]).output
    assert "events:" in out and "received" in out
    assert "viewer-00001" not in out and "vi" in out
    data = json.loads(cli(demo_dir, "requests", "show", review["reference"], "--json").output)
    assert data["subjects"] and all("*" in s for s in data["subjects"])


def test_closed_requests_show_only_hmacs(demo_dir):
    rows = json.loads(cli(demo_dir, "requests", "list", "--json", "--status", "completed").output)
    data = json.loads(cli(demo_dir, "requests", "show", rows[0]["reference"], "--json").output)
    assert all(s.startswith("hmac:") for s in data["subjects"])


def test_unknown_request_is_a_usage_error(demo_dir):
    result = cli(demo_dir, "requests", "show", "ER-1999-000001")
    assert result.exit_code == 2
    assert "no request 'ER-1999-000001'" in result.output


def test_audit_verify_head_export_and_find(demo_dir, tmp_path):
    verify = cli(demo_dir, "audit", "verify")
    assert verify.exit_code == 0 and "intact" in verify.output
    head = cli(demo_dir, "audit", "head").output.strip()
    assert re.fullmatch(r"\d+:[0-9a-f]{64}", head)
    assert cli(demo_dir, "audit", "verify", "--expect-head", head).exit_code == 0
    out = tmp_path / "audit.csv"
    assert cli(demo_dir, "audit", "export", "--format", "csv", "-o", out).exit_code == 0
    rows = list(csv.DictReader(out.open()))
    assert rows[-1]["hash"] == head.split(":")[1]
    found = cli(demo_dir, "audit", "find", "--tenant", "acme", "--viewer-id", "viewer-00001")
    assert found.exit_code == 0 and "completed" in found.output
    none = cli(demo_dir, "audit", "find", "--tenant", "globex", "--viewer-id", "viewer-00001")
    assert "no request named this viewer id" in none.output
    (hit,) = json.loads(cli(demo_dir, "audit", "find", "--tenant", "acme", "--viewer-id", "viewer-00003", "--json").output)
    assert hit["status"] == "completed" and hit["rows_erased"] > 0


def test_a_missing_config_is_a_usage_error(tmp_path):
    result = run("--config", tmp_path / "none.toml", "requests", "list")
    assert result.exit_code == 2
    assert "not found; pass --config PATH" in result.output


def test_an_unreachable_state_database_is_a_temporary_failure(tmp_path):
    port = free_port()  # nothing listens there
    (tmp_path / "erasure.toml").write_text(
        f'[state]\nurl = "postgresql+psycopg://postgres@127.0.0.1:{port}/x?connect_timeout=2"\n'
        '[policy]\ntime_zone = "UTC"\n'
    )
    result = run("--config", tmp_path / "erasure.toml", "requests", "list")
    assert result.exit_code == 75, result.output
    assert "try again later" in result.output


def test_an_overlapping_poll_exits_at_once(demo_dir):
    from erasure.runner import LOCK_NAME

    with filelock.FileLock(str(demo_dir / LOCK_NAME), timeout=0):
        result = cli(demo_dir, "poll")
    assert result.exit_code == 0
    assert "another `erasure poll` is running" in result.output


def test_poll_with_nothing_new_exits_zero(demo_dir):
    result = cli(demo_dir, "poll")
    assert result.exit_code == 0, result.output
    assert "0 new message(s)" in result.output


def test_requests_list_due_within_keeps_open_requests_due_soon(demo_dir):
    soon = json.loads(cli(demo_dir, "requests", "list", "--json", "--due-within", "40").output)
    assert {r["status"] for r in soon} == {"needs_review"} and len(soon) == 2
    assert json.loads(cli(demo_dir, "requests", "list", "--json", "--due-within", "5").output) == []


def test_log_json_writes_one_object_per_line_without_viewer_ids(demo_dir):
    result = run("--log-json", "--config", demo_dir / "erasure.toml", "poll",
                 env={KEY_ENV: "demo-only-audit-key-not-secret"})
    assert result.exit_code == 0, result.output
    lines = [l for l in result.stderr.splitlines() if l.startswith("{")]
    assert lines, result.stderr
    entries = [json.loads(l) for l in lines]
    assert all(set(e) >= {"time", "level", "logger", "message"} for e in entries)
    assert any("poll:" in e["message"] for e in entries)
    assert "viewer-0" not in result.stderr


def test_retention_purge_counts_then_deletes_and_records_it(tmp_path):
    d = tmp_path / "demo"
    assert run("demo", "--dir", d).exit_code == 0  # synthetic views reach 120 days back
    dry = cli(d, "retention", "purge", "--dry-run")
    assert dry.exit_code == 0, dry.output
    # The demo's two stores keep views for their own periods: 30 days (EU ingest) and 100 (analytics).
    would = [int(n) for n in re.findall(r"would delete (\d+) from views", dry.output)]
    assert len(would) == 2 and sum(would) > 0
    real = cli(d, "retention", "purge")
    assert [int(n) for n in re.findall(r"deleted (\d+) from views", real.output)] == would
    assert re.findall(r"deleted (\d+) from views", cli(d, "retention", "purge").output) == ["0", "0"]
    events = cli(d, "audit", "export", "--format", "jsonl").output.splitlines()
    purges = [json.loads(json.loads(e)["data"]) for e in events if json.loads(e)["event"] == "retention_purge"]
    assert [(p["store"], p["days"]) for p in purges] == [("eu-ingest", 30), ("analytics", 100)] * 2


def test_init_checks_the_view_store_against_the_config(tmp_path):
    d = tmp_path / "demo"
    assert run("demo", "--dir", d).exit_code == 0
    ok = cli(d, "init")
    assert ok.exit_code == 0, ok.output
    assert "state database ready" in ok.output and "2 table(s) checked" in ok.output
    config = d / "erasure.toml"
    config.write_text(config.read_text().replace('viewer_column = "viewer_id"', 'viewer_column = "viewer"'))
    bad = cli(d, "init")
    assert bad.exit_code == 2
    assert "viewer" in bad.output and "store.tables[0].viewer_column" in bad.output


def test_init_wants_the_role_stated_while_other_commands_use_the_default(tmp_path):
    d = tmp_path / "demo"
    assert run("demo", "--dir", d).exit_code == 0
    config = d / "erasure.toml"
    assert 'role = "processor"' in config.read_text()
    config.write_text(config.read_text().replace('role = "processor"\n', ""))
    bad = cli(d, "init")
    assert bad.exit_code == 2, bad.output
    assert "policy.role is not set" in bad.output and 'role = "processor"' in bad.output
    assert "Traceback" not in bad.output
    assert cli(d, "requests", "list").exit_code in (0, 1)  # the default role serves everything else
    config.write_text(config.read_text().replace("[policy]\n", '[policy]\nrole = "controller"\n'))
    assert cli(d, "init").exit_code == 0


def test_add_and_approve_dry_runs_count_and_change_nothing(tmp_path):
    d = tmp_path / "demo"
    assert run("demo", "--dir", d).exit_code == 0
    before = cli(d, "requests", "list", "--json").output
    add = cli(d, "requests", "add", "--tenant", "acme", "--viewer-id", "viewer-00010", "--dry-run")
    assert add.exit_code == 0, add.output
    assert "would erase 64 row(s) in 2 stores" in add.output
    assert "eu-ingest: 32 row(s): 8 from views, 24 from view_events" in add.output  # two acme environments
    assert "analytics: 32 row(s): 8 from views, 24 from view_events" in add.output
    review = next(r for r in json.loads(before) if r["reason_code"] == "unknown_sender")
    approve = cli(d, "requests", "approve", review["reference"], "--tenant", "globex", "--dry-run")
    assert approve.exit_code == 0, approve.output
    assert "would erase 32 row(s) in 2 stores" in approve.output and "eu-ingest: 16 row(s)" in approve.output
    no_tenant = cli(d, "requests", "approve", review["reference"], "--dry-run")
    assert no_tenant.exit_code == 2 and "approve it with --tenant" in no_tenant.output
    assert cli(d, "requests", "list", "--json").output == before
    assert cli(d, "audit", "verify").exit_code == 0


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("audit", "verify", "--expect-head", "garbage"), "SEQ:HASH"),
        (("audit", "verify", "--expect-head", "12:" + "a" * 63), "SEQ:HASH"),
        (("outbox", "list", "--status", "nonsense"), "queued, sent, parked"),
        (("requests", "list", "--status", "done"), "needs_review"),
        (("audit", "export", "--format", "xml"), "csv or jsonl"),
        (("audit", "export", "--since", "yesterday"), "2026-01-31"),
        (("requests", "add", "--tenant", "acme", "--viewer-id", "v-1", "--regulation", "lgpd"), "gdpr, ccpa"),
    ],
)
def test_an_invalid_option_value_is_a_usage_error_naming_the_valid_ones(demo_dir, args, names):
    result = cli(demo_dir, *args)
    assert result.exit_code == 2, result.output
    assert names in result.output


def test_every_error_class_carries_its_exit_code():
    from erasure import errors

    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.ErasureError)]
    assert len(classes) > 10
    for cls in classes:
        code = errors.exit_code_for(cls("x"))
        if issubclass(cls, errors.TemporaryError):
            assert code == 75, cls
        elif issubclass(cls, errors.ConfigError):
            assert code == 2, cls
        else:
            assert code in (1, 2), cls
    assert errors.exit_code_for(errors.MailboxLoginError("x")) == 2
    assert errors.exit_code_for(errors.StoreUnavailableError("x")) == 75
    # Rows left after deleting need a person (1), not a config fix (2) like the rest of StoreError;
    # a refused reply needs the officer (1); an unusable mail server is retried by cron (75).
    assert errors.exit_code_for(errors.StoreVerificationError("x")) == 1
    assert errors.exit_code_for(errors.DeliveryPermanentError("x")) == 1
    assert errors.exit_code_for(errors.DeliveryTemporaryError("x")) == 1
    assert errors.exit_code_for(errors.DeliveryUnavailableError("x")) == 75


def test_the_desk_handle_closes_the_state_database_and_the_view_store(demo_dir, monkeypatch):
    from erasure.config import load_config
    from erasure.state import State
    from erasure.store import ViewStore
    from erasure.workflow import Desk

    monkeypatch.setenv(KEY_ENV, "demo-only-audit-key-not-secret")
    closed = []
    monkeypatch.setattr(State, "close", lambda self: closed.append("state"))
    monkeypatch.setattr(ViewStore, "close", lambda self: closed.append("store"))
    config = load_config(demo_dir / "erasure.toml")
    with Desk.open(config) as desk:
        reference = desk.find("1").summary.reference
        assert desk.find(reference).summary.reference == reference
    assert closed == ["state"]  # the view store was never needed, so never opened
    with pytest.raises(RuntimeError), Desk.open(config) as desk:
        assert desk.stores["eu-ingest"] is desk.stores["eu-ingest"]  # opened on first use, once
        raise RuntimeError("a command that fails half-way")
    assert closed == ["state", "store", "state"]


IMAP_PASSWORD_ENV = "ERASURE_TEST_IMAP_PASSWORD"


@pytest.fixture
def imap_setup(tmp_path, monkeypatch, dovecot):
    """A config folder with a view store, naming a fresh Dovecot user over TLS whose CA file is
    given relative to the config file's folder (as an installation keeps it next to its config)."""
    import shutil

    from tests.world import config_dict, make_world

    w = make_world(tmp_path, monkeypatch)
    w.desk.close()
    w.state.close()
    user = dovecot.new_user()
    with dovecot.client(user) as c:
        c.create_folder("Requests")
    (tmp_path / "certs").mkdir()
    shutil.copy(dovecot.ca_file, tmp_path / "certs" / "imap-ca.pem")
    data = config_dict(tmp_path)
    data["mailbox"] = {"kind": "imap", "host": "127.0.0.1", "port": dovecot.tls_port, "security": "tls",
                       "ca_file": "certs/imap-ca.pem", "username": user, "password_env": IMAP_PASSWORD_ENV,
                       "folder": "Requests", "timeout_seconds": 10}
    return tmp_path, data, user, dovecot


def init_with(setup, env=None, **mailbox):
    import tomli_w

    from tests.dovecot_server import PASSWORD
    from tests.world import KEY_ENV as WORLD_KEY_ENV

    d, data, _, _ = setup
    data = {**data, "mailbox": {**data["mailbox"], **mailbox}}
    data["mailbox"] = {k: v for k, v in data["mailbox"].items() if v is not None}
    (d / "erasure.toml").write_text(tomli_w.dumps(data))
    return run("--config", d / "erasure.toml", "init",
               env={WORLD_KEY_ENV: "test-key", IMAP_PASSWORD_ENV: PASSWORD, **(env or {})})


def test_init_logs_in_to_an_imap_mailbox_and_readies_its_folders(imap_setup):
    # Before, mailbox.ca_file was read relative to the working directory, not the config file's folder.
    _, _, user, dovecot = imap_setup
    ok = init_with(imap_setup)
    assert ok.exit_code == 0, ok.output
    assert f"mailbox: imap://{user}@127.0.0.1:{dovecot.tls_port}/Requests ready" in ok.output
    with dovecot.client(user) as c:
        assert c.folder_exists("Processed") and c.folder_exists("Review")
    assert init_with(imap_setup).exit_code == 0  # safe to run again


@pytest.mark.parametrize("mailbox, env, code, words", [
    ({"folder": "Nowhere"}, {}, 2, "cannot open intake folder 'Nowhere'"),
    ({"processed_folder": "Requests"}, {}, 2, "also a destination folder"),
    ({"review_folder": "Requests"}, {}, 2, "also a destination folder"),
    ({}, {IMAP_PASSWORD_ENV: "not-the-password"}, 2, "refused the login"),
    ({"ca_file": None}, {}, 2, "could not be verified"),
    ({"ca_file": "certs/missing.pem"}, {}, 2, "mailbox.ca_file"),
    ({"port": free_port()}, {}, 75, "connection refused"),
])
def test_init_names_what_is_wrong_with_the_mailbox(imap_setup, mailbox, env, code, words):
    result = init_with(imap_setup, env, **mailbox)
    assert result.exit_code == code, result.output
    assert words in result.output


def test_watch_ends_at_once_on_a_refusal_that_waiting_cannot_fix(imap_setup, monkeypatch):
    # (Formerly imap.reconnecting's promise; watch_forever is where the retrying happens.)
    from erasure.config import config_from_dict
    from erasure.errors import MailboxLoginError
    from erasure.runner import watch_forever

    d, data, _, _ = imap_setup
    monkeypatch.setenv(IMAP_PASSWORD_ENV, "not-the-password")
    waits: list[float] = []
    with pytest.raises(MailboxLoginError, match="refused the login"):
        watch_forever(config_from_dict(data, base_dir=d), report=lambda result: None, idle_seconds=1.0,
                      stop=lambda: len(waits) >= 3, sleep=waits.append)
    assert waits == []
