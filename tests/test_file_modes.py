"""Files holding personal data are created 0600 (folders 0700) whatever the umask, and never loosened."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from erasure.cli import app
from erasure.demo import KEY_ENV, run_demo
from erasure.files import (
    create_private_file,
    make_private_dirs,
    open_private,
    write_private,
)
from erasure.state import open_state

runner = CliRunner()
UMASKS = [0o000, 0o022, 0o002, 0o277]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=UMASKS, ids=lambda m: f"umask{m:03o}")
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)  # the usual default, under which files come out 0644
    yield
    os.umask(old)


def test_open_private_creates_0600_in_new_0700_folders(tmp_path, umask):
    target = tmp_path / "a" / "b" / "export.jsonl"
    make_private_dirs(target.parent)
    with open_private(target) as out:
        out.write("x\n")
    assert mode(target) == 0o600
    assert mode(tmp_path / "a") == mode(tmp_path / "a" / "b") == 0o700
    assert target.read_text() == "x\n"


@pytest.mark.parametrize("helper", ["write_private", "create_private_file", "open_private_binary"])
def test_every_helper_creates_0600(tmp_path, umask, helper):
    target = tmp_path / "f"
    if helper == "write_private":
        write_private(target, b"data")
    elif helper == "create_private_file":
        assert create_private_file(target) is True
        assert create_private_file(target) is False
    else:
        with open_private(target, "wb") as out:
            out.write(b"data")
    assert mode(target) == 0o600


@pytest.mark.parametrize("existing", [0o640, 0o600, 0o644, 0o400 | 0o200])
def test_an_existing_file_keeps_its_mode_and_is_overwritten(tmp_path, existing, loose_umask):
    target = tmp_path / "report.html"
    target.write_text("old content that is longer")
    os.chmod(target, existing)
    write_private(target, "new")
    assert mode(target) == existing
    assert target.read_text() == "new"


def test_an_existing_folder_keeps_its_mode(tmp_path, loose_umask):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    os.chmod(shared, 0o750)
    make_private_dirs(shared / "new")
    write_private(shared / "new" / "file", "x")
    assert mode(shared) == 0o750
    assert mode(shared / "new") == 0o700
    assert make_private_dirs(shared) == shared and mode(shared) == 0o750


def test_open_private_does_not_invent_folders(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_private(tmp_path / "missing" / "f")
    with pytest.raises(FileNotFoundError):
        create_private_file(tmp_path / "missing" / "f")
    assert not (tmp_path / "missing").exists()


def test_open_private_refuses_read_modes(tmp_path):
    with pytest.raises(ValueError):
        open_private(tmp_path / "f", "r")


def test_the_sqlite_state_database_and_its_wal_and_shm_are_private(tmp_path, umask):
    state = open_state("sqlite:///state.db", base_dir=tmp_path)
    try:
        with state.engine.connect() as conn:  # hold the WAL open while we look
            conn.execute(sa.text("SELECT 1"))
            files = sorted(tmp_path.glob("state.db*"))
            names = {p.name for p in files}
            assert {"state.db", "state.db-wal", "state.db-shm"} <= names, names
            assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        state.close()


def test_an_existing_state_database_keeps_its_mode(tmp_path, loose_umask):
    db = tmp_path / "state.db"
    open_state("sqlite:///state.db", base_dir=tmp_path).close()
    os.chmod(db, 0o640)
    open_state("sqlite:///state.db", base_dir=tmp_path).close()
    assert mode(db) == 0o640


def _all_modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): mode(p) for p in [root, *root.rglob("*")]}


def test_every_demo_output_is_private(tmp_path, loose_umask, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    result = run_demo(tmp_path / "demo")
    got = _all_modes(result.directory)
    assert any(name.endswith(".eml") for name in got), got  # replies were written
    assert any("Processed" in name for name in got), got  # mail was moved
    want = {name: (0o700 if (result.directory / name).is_dir() else 0o600) for name in got}
    assert got == want


@pytest.fixture
def demo_dir(tmp_path, loose_umask):
    d = tmp_path / "demo"
    assert runner.invoke(app, ["demo", "--dir", str(d)]).exit_code == 0
    return d


def cli(demo_dir, *args):
    return runner.invoke(app, ["--config", str(demo_dir / "erasure.toml"), *map(str, args)],
                         env={KEY_ENV: "demo-only-audit-key-not-secret"})


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_audit_export_file_is_private(demo_dir, tmp_path, fmt):
    out = tmp_path / f"audit.{fmt}"
    result = cli(demo_dir, "audit", "export", "--format", fmt, "-o", out)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0
    assert mode(out) == 0o600


@pytest.mark.parametrize("where", ["missing-folder/audit.jsonl", "a-file/audit.jsonl"])
def test_audit_export_to_an_unwritable_place_is_exit_2(demo_dir, tmp_path, where):
    (tmp_path / "a-file").write_text("")
    result = cli(demo_dir, "audit", "export", "-o", tmp_path / where)
    assert result.exit_code == 2 and "--output" in result.output, result.output
    assert not (tmp_path / "missing-folder").exists()


def test_report_html_file_is_private(demo_dir, tmp_path):
    out = tmp_path / "report.html"
    result = cli(demo_dir, "report", "--html", out)
    assert result.exit_code == 0, result.output
    assert "<html" in out.read_text().lower()
    assert mode(out) == 0o600


def test_directory_transport_writes_private_replies(tmp_path, loose_umask):
    from email.message import EmailMessage

    from erasure.delivery import DirectoryTransport

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = "a@b.example", "c@d.example", "s", "<x@b.example>"
    msg.set_content("hello")
    path = Path(DirectoryTransport(tmp_path / "new" / "replies").send(msg))
    assert mode(path) == 0o600
    assert mode(tmp_path / "new") == mode(tmp_path / "new" / "replies") == 0o700


def test_the_poll_lock_is_private(demo_dir):
    from erasure.runner import LOCK_NAME

    result = cli(demo_dir, "poll")
    assert result.exit_code in (0, 1), result.output
    assert mode(demo_dir / LOCK_NAME) == 0o600
