"""Safe to point at a real mailbox (issue 11): no message, however hostile its
headers, stops `poll`, and no request is ever reported as "no data found" after
its rows were deleted.

The workflow tests here run with the state database (and, for the crash tests,
the view store too) on real SQLite, PostgreSQL and MariaDB, through the same
per-test databases as the store tests (``store_url``), plus a MariaDB database
created with a latin1 default character set.
"""

from __future__ import annotations

import email.policy
import secrets
import tomllib
from collections.abc import Iterator
from email.parser import BytesParser
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from erasure import audit
from erasure.config import config_from_dict
from erasure.models import (
    AuditEvent,
    ErasureRequest,
    MailboxMessage,
    OutboxMessage,
    Subject,
)
from erasure.notify import UnsafeReplyError, check_rendered, header_block
from erasure.parse import parse_message
from erasure.parse.headers import (
    MAX_MESSAGE_ID_CHARS,
    message_id_of,
    storable,
    valid_message_id,
)
from erasure.state import open_state
from erasure.status import status
from erasure.verify import Decision
from erasure.viewschema import create_demo_schema, fill_synthetic_views
from erasure.workflow import Desk
from tests.services import MYSQL_URL, missing_service
from tests.test_poll_imap import imap_world  # noqa: F401 - the Dovecot-backed world, as a fixture
from tests.world import NOW, TENANTS, World, config_dict, mail

EMAILS = Path(__file__).parent / "emails"
EXPECTED = tomllib.loads((EMAILS / "expected.toml").read_text(encoding="utf-8"))

# ---------------------------------------------------------------- worlds on every state database


def make_db_world(root: Path, monkeypatch: pytest.MonkeyPatch, state_url: str, store_url: str,
                  **policy: object) -> World:
    """The tests/world.py world, with the state database (and view store) on the given URLs."""
    from tests.world import KEY_ENV

    monkeypatch.setenv(KEY_ENV, "test-key")
    for sub in ("new", "cur", "tmp"):
        (root / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(store_url)
    create_demo_schema(engine)
    fill_synthetic_views(engine, TENANTS, viewer_ids_per_env=10, views_per_viewer=3, seed=1, now=NOW, max_age_days=60)
    engine.dispose()
    raw = config_dict(root, **policy)
    raw["state"]["url"] = state_url
    raw["store"]["url"] = store_url
    config = config_from_dict(raw, base_dir=root)
    state = open_state(config.state.url, base_dir=root)
    return World(root, config, state, Desk(config, state, now=lambda: NOW))


def _state_url(store_backend: str, store_url: str, tmp_path: Path) -> str:
    """SQLite: a file of its own (the config refuses the view store's file); servers: the same database."""
    return f"sqlite:///{tmp_path / 'state.db'}" if store_backend == "sqlite" else store_url


@pytest.fixture
def db_world(store_backend: str, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    w = make_db_world(tmp_path, monkeypatch, _state_url(store_backend, store_url, tmp_path), store_url)
    yield w
    w.desk.close()
    w.state.close()


@pytest.fixture
def latin1_url() -> Iterator[str]:
    """A MariaDB database created with a latin1 default character set (an old server's default)."""
    admin = sa.create_engine(MYSQL_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        missing_service(f"MariaDB not reachable: {type(exc).__name__}")
    name = f"erasure_latin1_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET latin1 COLLATE latin1_swedish_ci")
    try:
        yield make_url(MYSQL_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()


def rows(w: World, model):  # type: ignore[no-untyped-def]
    with w.state.session() as session:
        return session.scalars(sa.select(model).order_by(sa.text("1"))).all()


def requests_by_id(w: World) -> list[ErasureRequest]:
    with w.state.session() as session:
        return list(session.scalars(sa.select(ErasureRequest).order_by(ErasureRequest.id)))


def left_in_intake(w: World) -> list[Path]:
    return sorted((w.maildir / "new").iterdir()) + sorted((w.maildir / "cur").iterdir())


def chain_ok(w: World) -> bool:
    with w.state.session() as session:
        return audit.verify(session).ok


def status_text(w: World) -> str:
    with w.state.session() as session:
        return status(session, today=NOW.date(), config=w.config, now=NOW).text()


# ---------------------------------------------------------------- the msg-id validator (pure)

VALID_IDS = ["<a@b>", "<req-1.x@acme.example>", "<CAF=x+y_z@mail.example>", "<a@[192.0.2.1]>", "<!#$%&'*+/=^_`{|}~-@x>"]
INVALID_IDS = [
    "a@b", "<a@b", "a@b>", "<>", "<@b>", "<a@>", "<a@b@c>", "<a..b@c>", "<.a@b>", "<a.@b>", "<a@b.>",
    "<café@x>", "<a@b\udcc3>", "<a\x00@b>", "<a\r@b>", "<a\n@b>", "<a\r\n@b>", "<a b@c>", "<a\t@b>",
    "<\"q\"@b>", "<a@b> ", "<<a@b>>", "<a@b<c@d>>", "<=?utf-8?q?a=0D=0A?=@x>", "<a=?@x>",
    "<a@[1.2\\.3]>", "<" + "a" * (MAX_MESSAGE_ID_CHARS - 3) + "@b>", "<a@b\x7f>", "<a@b\u2028>",
]


@pytest.mark.parametrize("value", VALID_IDS)
def test_well_formed_msg_ids_are_kept(value: str) -> None:
    assert valid_message_id(value) == value
    assert message_id_of(f"  {value} (comment)") == value


@pytest.mark.parametrize("value", INVALID_IDS)
def test_every_near_miss_msg_id_is_refused(value: str) -> None:
    assert valid_message_id(value) is None


def test_message_id_of_takes_only_a_whole_valid_id() -> None:
    assert message_id_of("<café@x>") is None
    assert message_id_of("<a@b<c@d>>") == "<c@d>"  # the inner id is whole and valid; the rest is ignored
    assert message_id_of("=?utf-8?q?=3Ca=40b=3E?=") is None  # an encoded word is not an id


@given(st.text(max_size=300), st.integers(min_value=1, max_value=300), st.booleans())
def test_storable_text_fits_every_database(value: str, limit: int, multiline: bool) -> None:
    out = storable(value, limit, multiline=multiline)
    assert out is not None and len(out) <= limit
    out.encode("utf-8")  # no lone surrogates
    allowed = {"\n", "\r", "\t"} if multiline else set()
    assert not any((ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F) and c not in allowed for c in out)
    assert storable(out, limit, multiline=multiline) == out  # idempotent: the guard may run twice


@given(st.binary(max_size=400))
def test_parsed_ids_and_subject_are_always_storable(header: bytes) -> None:
    raw = (b"From: a@b.example\r\nMessage-ID: " + header + b"\r\nIn-Reply-To: " + header
           + b"\r\nReferences: " + header + b"\r\nSubject: " + header + b"\r\n\r\nbody\r\n")
    parsed = parse_message(raw)
    for ref in parsed.references:
        assert valid_message_id(ref) == ref
    assert parsed.message_id is None or valid_message_id(parsed.message_id) == parsed.message_id
    assert storable(parsed.subject) == parsed.subject


@pytest.mark.parametrize("name", sorted(n for n, row in EXPECTED.items() if "references_count" in row))
def test_hostile_corpus_ids(name: str) -> None:
    row = EXPECTED[name]
    parsed = parse_message((EMAILS / name).read_bytes())
    assert parsed.message_id == row.get("message_id")
    assert len(parsed.references) == row["references_count"]
    assert all(valid_message_id(r) == r for r in parsed.references)


# ---------------------------------------------------------------- poison messages on every state database

HOSTILE = {
    "8bit-message-id": mail("dpo@acme.example", "Viewer ID: viewer-00001\n", message_id="<café@acme.example>"),
    "8bit-in-reply-to": mail("dpo@acme.example", "Viewer ID: viewer-00002\n",
                             headers={"In-Reply-To": "<café@x>", "References": "<ok@x> <naïve@x>"}),
    "nul-message-id": mail("dpo@acme.example", "Viewer ID: viewer-00003\n", message_id="<a\x00b@acme.example>",
                           headers={"In-Reply-To": "<\x00@x>"}),
    "nul-in-subject": mail("dpo@acme.example", "Viewer ID: viewer-00004\n", subject="=?utf-8?q?a=00b?= \x00c"),
    "emoji-subject": mail("dpo@acme.example", "Viewer ID: viewer-00005\n", subject="Löschung 😀 bitte"),
    "unknown-sender-8bit": mail("x@unknown.example", "Viewer ID: viewer-00006\n", authenticated=False,
                                message_id="<💣@unknown.example>", subject="💣"),
    "encoded-crlf-id": mail("dpo@acme.example", "Viewer ID: viewer-00007\n",
                            message_id="<=?utf-8?q?a=0D=0ABcc:_v@evil.example?=@acme.example>",
                            headers={"References": "<=?utf-8?q?b=0AX-Evil:_1?=@x> <fine@acme.example>"}),
    "8bit-from-name": mail("dpo@acme.example", "Viewer ID: viewer-00008\n",
                           headers={"From": "Zoë 😀 XFF <dpo@acme.example>"}).replace(b"XFF", b"\xff\xfe"),
    "huge-ids": mail("dpo@acme.example", "Viewer ID: viewer-00009\n", message_id="<" + "x" * 2000 + "@acme.example>",
                     headers={"References": " ".join(f"<r{i}@acme.example>" for i in range(500))}),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_header_is_recorded_once_and_never_stops_the_poll(db_world: World, name: str) -> None:
    db_world.deliver(HOSTILE[name])
    db_world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00010\n"))  # the next message still goes through
    result = db_world.poll()
    assert result.fetched == 2 and result.quarantined == 0, result.problems
    assert left_in_intake(db_world) == []
    first, second = requests_by_id(db_world)
    assert second.status == "completed"
    assert first.status in ("completed", "needs_review")
    assert first.message_id is None or valid_message_id(first.message_id) == first.message_id
    for ref in (first.thread_refs or "").split():
        assert valid_message_id(ref) == ref
    assert storable(first.subject_line) == first.subject_line
    assert len(rows(db_world, MailboxMessage)) == 2
    assert chain_ok(db_world)
    for reply in rows(db_world, OutboxMessage):  # every reply we send has only our own header fields
        names = [n for n, _ in header_block(reply.raw)]
        assert names[:5] == ["From", "To", "Subject", "Date", "Message-ID"]
        assert not {"Bcc", "X-Evil", "Cc"} & set(names)


def test_an_emoji_subject_is_stored_exactly(db_world: World) -> None:
    db_world.deliver(HOSTILE["emoji-subject"])
    db_world.poll()
    (r,) = requests_by_id(db_world)
    assert r.subject_line == "Löschung 😀 bitte"


def test_a_latin1_mariadb_state_database_stores_emoji_and_8bit_headers(
        latin1_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = make_db_world(tmp_path, monkeypatch, latin1_url, f"sqlite:///{tmp_path / 'views.db'}")
    try:
        with w.state.engine.connect() as conn:
            collations = dict(conn.execute(sa.text(
                "SELECT table_name, table_collation FROM information_schema.tables WHERE table_schema = DATABASE() "
                "AND table_name <> 'alembic_version'")).all())
        assert set(collations.values()) == {"utf8mb4_bin"}, collations
        for name in ("emoji-subject", "unknown-sender-8bit", "8bit-from-name", "nul-in-subject"):
            w.deliver(HOSTILE[name])
        result = w.poll()
        assert result.fetched == 4 and result.quarantined == 0, result.problems
        subjects = {r.subject_line for r in requests_by_id(w)}
        assert "Löschung 😀 bitte" in subjects and "💣" in subjects
        assert left_in_intake(w) == [] and chain_ok(w)
    finally:
        w.desk.close()
        w.state.close()


# ---------------------------------------------------------------- quarantine


def _poison_trigger(backend: str, table: str, needle: str | None) -> list[str]:
    """SQL making every INSERT into ``table`` fail (whose subject holds ``needle``): a DB error we do not foresee."""
    condition = None
    if needle is not None:
        condition = {"sqlite": f"instr(NEW.subject_line, '{needle}') > 0",
                     "postgres": f"position('{needle}' in NEW.subject_line) > 0",
                     "mysql": f"LOCATE('{needle}', NEW.subject_line) > 0"}[backend]
    if backend == "sqlite":
        when = f" WHEN {condition}" if condition else ""
        return [f"CREATE TRIGGER poison_{table} BEFORE INSERT ON {table}{when} BEGIN SELECT RAISE(ABORT, 'poison'); END"]
    if backend == "postgres":
        test = condition or "TRUE"
        return [
            (f"CREATE FUNCTION poison_{table}() RETURNS trigger AS $$ BEGIN IF {test} THEN "
             f"RAISE EXCEPTION 'poison' USING ERRCODE = '23514'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"),
            f"CREATE TRIGGER poison_{table} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION poison_{table}()",
        ]
    test = condition or "TRUE"
    return [(f"CREATE TRIGGER poison_{table} BEFORE INSERT ON {table} FOR EACH ROW BEGIN IF {test} THEN "
             f"SIGNAL SQLSTATE '23000' SET MYSQL_ERRNO = 1062, MESSAGE_TEXT = 'poison'; END IF; END")]


def _install(w: World, statements: list[str]) -> None:
    with w.state.engine.begin() as conn:
        for sql in statements:
            conn.exec_driver_sql(sql)


def test_a_message_that_cannot_be_recorded_is_quarantined_and_the_poll_goes_on(db_world: World, store_backend: str) -> None:
    _install(db_world, _poison_trigger(store_backend, "requests", "POISON"))
    db_world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00001\n", subject="POISON pill"), "1.test")
    db_world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00002\n"), "2.test")
    result = db_world.poll()
    assert result.quarantined == 1 and result.fetched == 2
    assert result.needs_attention and any("could not be recorded" in p for p in result.problems)
    quarantined, fine = requests_by_id(db_world)
    assert (quarantined.status, quarantined.reason_code) == ("needs_review", "record_failed")
    assert "IntegrityError" in (quarantined.reason or "")
    assert quarantined.subject_line == "" and quarantined.requester is None and not quarantined.reply_allowed
    assert fine.status == "completed"
    assert left_in_intake(db_world) == []
    assert len(list((db_world.maildir / ".Review" / "cur").iterdir())) == 1
    ledger = {m.message_key: m for m in rows(db_world, MailboxMessage)}
    assert ledger["1.test"].request_id == quarantined.id and ledger["1.test"].destination == "review"
    assert chain_ok(db_world)
    text = status_text(db_world)
    assert "last poll problem" in text and "could not be recorded" in text
    assert "the last poll of" in text
    again = db_world.poll()  # taken once: the quarantined message is not read again
    assert again.fetched == 0 and len(requests_by_id(db_world)) == 2


def test_when_even_the_minimal_record_fails_the_message_goes_to_review_unrecorded(
        db_world: World, store_backend: str) -> None:
    _install(db_world, _poison_trigger(store_backend, "mailbox_messages", None))
    db_world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00001\n"), "1.test")
    db_world.deliver(mail("x@unknown.example", "Viewer ID: viewer-00002\n"), "2.test")
    result = db_world.poll()  # no traceback
    assert result.quarantined == 2 and result.needs_attention
    assert sum("moved to the review folder unrecorded" in p for p in result.problems) == 2
    assert left_in_intake(db_world) == []
    assert len(list((db_world.maildir / ".Review" / "cur").iterdir())) == 2
    assert requests_by_id(db_world) == [] and chain_ok(db_world)
    assert "moved to the review folder unrecorded" in status_text(db_world)


def test_cli_poll_exits_1_when_a_message_was_quarantined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tomli_w
    from typer.testing import CliRunner

    from erasure.cli import app

    w = make_db_world(tmp_path, monkeypatch, f"sqlite:///{tmp_path / 'state.db'}", f"sqlite:///{tmp_path / 'views.db'}")
    _install(w, _poison_trigger("sqlite", "requests", "POISON"))
    w.state.close()
    w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00001\n", subject="POISON"))
    (tmp_path / "erasure.toml").write_bytes(tomli_w.dumps(config_dict(tmp_path)).encode())
    out = CliRunner().invoke(app, ["--config", str(tmp_path / "erasure.toml"), "poll"])
    assert out.exit_code == 1, out.output
    assert "quarantined" in out.output and "Traceback" not in out.output
    assert left_in_intake(w) == []


# ---------------------------------------------------------------- property: every message exactly once

HEADER_BYTES = st.binary(max_size=120)


def _hostile_message(n: int, values: dict[str, bytes]) -> bytes:
    head = b"".join(name.encode() + b": " + value + b"\r\n" for name, value in values.items())
    return (b"Return-Path: <dpo@acme.example>\r\nAuthentication-Results: mx.test.example; dmarc=pass header.from=acme.example\r\n"
            + head + b"To: privacy@analytics.example\r\n\r\nViewer ID: viewer-0000" + str(n % 9 + 1).encode()
            + b"\r\nnonce " + secrets.token_hex(8).encode() + b"\r\n")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.fixed_dictionaries({
    "Message-ID": HEADER_BYTES, "In-Reply-To": HEADER_BYTES, "References": HEADER_BYTES,
    "Subject": HEADER_BYTES, "From": st.one_of(st.just(b"dpo@acme.example"), HEADER_BYTES),
}), min_size=1, max_size=3))
def test_poll_records_every_message_exactly_once_and_never_raises(db_world: World, messages: list[dict[str, bytes]]) -> None:
    before = len(rows(db_world, MailboxMessage))
    names = []
    for i, values in enumerate(messages):
        names.append(db_world.deliver(_hostile_message(i, values)).name)
    result = db_world.poll()
    ledger = rows(db_world, MailboxMessage)
    assert len(ledger) == before + len(messages)
    recorded = [m for m in ledger if m.message_key in names]
    assert sorted(m.message_key for m in recorded) == sorted(names)  # each once
    assert all(m.request_id is not None for m in recorded), result.problems
    assert result.quarantined == 0, result.problems
    assert left_in_intake(db_world) == []
    assert chain_ok(db_world)


def test_the_whole_corpus_is_recorded_once_on_every_state_database(db_world: World) -> None:
    names = sorted(p.name for p in EMAILS.glob("*.eml"))
    for name in names:
        db_world.deliver((EMAILS / name).read_bytes(), name)
    result = db_world.poll()
    assert result.quarantined == 0, result.problems
    keys = [m.message_key for m in rows(db_world, MailboxMessage)]
    assert sorted(keys) == names
    assert left_in_intake(db_world) == [] and chain_ok(db_world)


# ---------------------------------------------------------------- stored-id amplification


def test_no_request_stores_more_ids_than_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = make_db_world(tmp_path, monkeypatch, f"sqlite:///{tmp_path / 'state.db'}", f"sqlite:///{tmp_path / 'views.db'}",
                      max_viewer_ids=5)
    try:
        ids = "".join(f"Viewer ID: flood-{i}\n" for i in range(40))
        w.deliver(mail("x@unknown.example", ids, authenticated=False))
        w.deliver(mail("dpo@acme.example", ids))
        w.poll()
        stranger, tenant = requests_by_id(w)
        with w.state.session() as session:
            for r in (stranger, tenant):
                assert session.scalar(sa.select(sa.func.count()).select_from(Subject).where(Subject.request_id == r.id)) <= 5
        assert tenant.status == "needs_review" and tenant.reason_code == "too_many_viewer_ids"
        assert stranger.status == "needs_review"
    finally:
        w.desk.close()
        w.state.close()


def test_the_workflow_caps_ids_whatever_the_parser_returns(world: World) -> None:
    cap = world.config.policy.max_viewer_ids
    many = tuple(f"v-{i}" for i in range(cap + 25))
    decision = Decision(outcome="erase", reason_code="ok", reason="ok", tenant="acme", regulation="gdpr",
                        viewer_ids=many, reply_to="dpo@acme.example")
    with world.state.session() as session:
        r = world.desk._new_request(session, channel="email", decision=decision, kind="erasure",
                                    received_at=NOW, requester="dpo@acme.example")
        assert len(r.subjects) == cap
        assert (r.planned, r.reason_code) == ("review", "too_many_viewer_ids")
        event = session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "received")).one()
        assert '"viewer_ids_not_stored":25' in event.data


# ---------------------------------------------------------------- match_count on every path into `erasing`


def _crash_after_store_commit(w: World, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The next `_store_erased` (the state transaction after the store's commit) dies; returns its results."""
    seen: list[object] = []

    def crash(request_id: int, store: str, result: object) -> None:
        seen.append(result)
        raise RuntimeError("the process died after the store committed")

    monkeypatch.setattr(w.desk, "_store_erased", crash)
    return seen


def _resume(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    from tests.world import KEY_ENV

    monkeypatch.setenv(KEY_ENV, "test-key")
    w.poll()


def _store_rows(w: World, viewer: str) -> int:
    engine = sa.create_engine(w.config.store.url if "sqlite" not in w.config.store.url else
                              f"sqlite:///{w.root / 'views.db'}")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT COUNT(*) FROM views WHERE viewer_id = :v"), {"v": viewer}).scalar_one()
    finally:
        engine.dispose()


def _assert_completed_with_rows(w: World, rows_expected: int) -> None:
    (r,) = [r for r in requests_by_id(w) if r.status != "needs_review" or r.reason_code != "record_failed"]
    assert (r.status, r.response) == ("completed", "completed")
    assert r.rows_erased == rows_expected and r.match_count == rows_expected
    with w.state.session() as session:
        kinds = list(session.scalars(sa.select(OutboxMessage.kind).where(OutboxMessage.request_id == r.id)))
    assert "no_data_found" not in kinds
    assert kinds.count("completed") == (1 if r.reply_allowed else 0)
    assert chain_ok(w)


def test_crash_after_commit_on_the_automatic_path(db_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    db_world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00001\n"))
    seen = _crash_after_store_commit(db_world, monkeypatch)
    with pytest.raises(RuntimeError):
        db_world.poll()
    assert seen and _store_rows(db_world, "viewer-00001") == 3  # acme's 6 views are gone, globex's stay
    _resume(db_world, monkeypatch)
    _assert_completed_with_rows(db_world, 24)


def test_crash_after_commit_when_a_review_case_is_approved(db_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    db_world.deliver(mail("someone@unknown.example", "Viewer ID: viewer-00002\n"))
    db_world.poll()
    (r,) = requests_by_id(db_world)
    assert r.status == "needs_review" and r.match_count is None
    _crash_after_store_commit(db_world, monkeypatch)
    with pytest.raises(RuntimeError):
        db_world.desk.approve(r.reference, actor="alice", tenant="globex")
    assert _store_rows(db_world, "viewer-00002") == 6
    _resume(db_world, monkeypatch)
    _assert_completed_with_rows(db_world, 12)  # 3 globex views, 3 events each


def test_crash_after_commit_when_a_held_erasure_is_approved(store_backend: str, store_url: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    w = make_db_world(tmp_path, monkeypatch, _state_url(store_backend, store_url, tmp_path), store_url,
                      auto_approve_max_views=1)
    try:
        w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00003\n"))
        w.poll()
        (r,) = requests_by_id(w)
        assert r.status == "awaiting_approval"
        _crash_after_store_commit(w, monkeypatch)
        with pytest.raises(RuntimeError):
            w.desk.approve(r.reference, actor="alice")
        _resume(w, monkeypatch)
        _assert_completed_with_rows(w, 24)
    finally:
        w.desk.close()
        w.state.close()


def test_crash_after_commit_on_manual_intake(db_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _crash_after_store_commit(db_world, monkeypatch)
    with pytest.raises(RuntimeError):
        db_world.desk.add_manual(tenant="acme", viewer_ids=["viewer-00004"], requester="dpo@acme.example", actor="bob")
    _resume(db_world, monkeypatch)
    _assert_completed_with_rows(db_world, 24)


def test_an_erasure_finished_by_a_concurrent_poll_keeps_the_real_count(db_world: World) -> None:
    db_world.deliver(mail("someone@unknown.example", "Viewer ID: viewer-00005\n"))
    db_world.poll()
    (r,) = requests_by_id(db_world)
    # The officer's approve reaches `erasing` and its store transaction commits...
    with db_world.state.session() as session:
        request = db_world.desk._get(session, r.reference)
        db_world.desk._prepare_approval(request, "acme")
        db_world.desk._start_erasing(session, request, db_world.desk.stores.count(db_world.desk._target(request)))
        target = db_world.desk._target(request)
    officers = db_world.desk.stores["default"].erase(target)
    assert officers.total == 24
    db_world.poll()  # ...while a poll finds the request erasing, erases nothing more and completes it first
    db_world.desk._store_erased(r.id, "default", officers)  # then the officer's run records what it deleted
    _assert_completed_with_rows(db_world, 24)
    with db_world.state.session() as session:
        erased = [e for e in session.scalars(sa.select(AuditEvent).where(AuditEvent.event == "erased"))]
    assert len(erased) == 2 and '"after_completion":true' in erased[1].data and '"total":24' in erased[1].data


# ---------------------------------------------------------------- header injection in our replies

HOSTILE_IDS = {
    "encoded-crlf-in-id": "<=?utf-8?q?a=0D=0AX-Evil:_1?=@x>",
    "encoded-crlf-word": "=?utf-8?q?=3Ca=40b=3E=0D=0A=0D=0Aevil_body?=",
    "encoded-word-after-id": "<a@x> =?utf-8?q?=0D=0AX-Evil:_1?=",
    "bare-cr": "<a\r@x>",
    "bare-lf": "<a\nX-Evil: 1@x>",
    "crlf": "<a@x>\r\nX-Evil: 1",
    "nul": "<a\x00@x>",
    "8bit": "<café@x>",
    "surrogate": "<a\udcc3@x>",
    "nested": "<a@b>>X-Evil: 1<",
    "nested-2": "<<a@b>@c>",
    "1000-chars": "<" + "a" * 995 + "@x>",
    "many-refs": " ".join(f"<r{i}@acme.example>" for i in range(300)),
}


@pytest.mark.parametrize("name", list(HOSTILE_IDS))
def test_reply_headers_are_only_our_own_whatever_was_stored(world: World, name: str) -> None:
    """Even a stored value that bypassed intake's validation (an old row) cannot reach a header we send."""
    from erasure.notify import ReplySpec, queue_reply

    hostile = HOSTILE_IDS[name]
    world.deliver(mail("dpo@acme.example", "Please delete our user's data.\n"))  # -> review, asks for information
    world.poll()
    (r,) = requests_by_id(world)
    with world.state.session() as session:
        session.execute(sa.update(ErasureRequest).where(ErasureRequest.id == r.id).values(
            message_id=hostile, thread_refs=hostile + " <good@acme.example>"))
    with world.state.session() as session:
        request = session.get(ErasureRequest, r.id)
        row = queue_reply(session, world.config, request, ReplySpec("acknowledgement"), world.desk.renderer, now=NOW)
        raw = row.raw
    head, _, _ = raw.partition(b"\r\n\r\n")
    assert b"\n" not in head.replace(b"\r\n", b"")
    assert b"\r" not in head.replace(b"\r\n", b"")
    fields = header_block(raw)
    assert [n for n, _ in fields] == ["From", "To", "Subject", "Date", "Message-ID", *(
        ["In-Reply-To"] if dict(fields).get("In-Reply-To") else []), "References", "Auto-Submitted",
        "X-Erasure-Reference", "MIME-Version", "Content-Type"]
    values = dict(fields)
    if "In-Reply-To" in values:
        assert valid_message_id(values["In-Reply-To"]) == values["In-Reply-To"]
    refs = values["References"].split()
    assert refs[-1] == "<good@acme.example>" and len(refs) <= 20
    assert all(valid_message_id(x) == x for x in refs)
    assert b"X-Evil" not in raw and b"evil body" not in raw
    parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert "X-Evil" not in parsed and parsed.get_body(("plain",)).get_content().strip()


@pytest.mark.parametrize(("where", "insert"), [
    ("header", b"X-Evil: 1\r\n"), ("bare-lf", b"X-Evil: 1\n"), ("bare-cr", b"Bcc: victim@evil.example\r"),
])
def test_rendered_bytes_that_differ_from_what_was_built_are_refused(world: World, where: str, insert: bytes) -> None:
    from erasure.notify import ReplySpec, _build, message_id_for, thread_headers

    world.deliver(mail("dpo@acme.example", "Please delete our user's data.\n", message_id="<q@acme.example>"))
    world.poll()
    with world.state.session() as session:
        request = session.scalars(sa.select(ErasureRequest)).one()
        msg, text, html = _build(world.config, request, ReplySpec("acknowledgement"), world.desk.renderer,
                                 message_id=message_id_for(request, "acknowledgement", 9, "privacy@analytics.example"),
                                 now=NOW)
        raw = msg.as_bytes(policy=email.policy.SMTP)
        threading = thread_headers(request)
    check_rendered(raw, msg, text, html, threading)  # the genuine bytes pass
    at = raw.index(b"Auto-Submitted:")
    with pytest.raises(UnsafeReplyError):
        check_rendered(raw[:at] + insert + raw[at:], msg, text, html, threading)
    with pytest.raises(UnsafeReplyError, match="body"):
        check_rendered(raw.replace(b"reference", b"rEference", 1), msg, text, html, threading)


def test_hostile_corpus_replies_carry_only_validated_thread_ids(db_world: World) -> None:
    names = [n for n, row in EXPECTED.items() if "references_count" in row and row["outcome"] == "erase"]
    for name in names:  # as stamped by this world's MX, so they authenticate and are answered
        raw = (EMAILS / name).read_bytes().replace(b"Authentication-Results: mx.privacy.example",
                                                    b"Authentication-Results: mx.test.example")
        db_world.deliver(raw, name)
    result = db_world.poll()
    assert result.quarantined == 0
    replies = rows(db_world, OutboxMessage)
    assert len(replies) == len(names)  # each answered once: no data found (hx-* ids match no views)
    for reply in replies:
        values = dict(header_block(reply.raw))
        for name in ("In-Reply-To", "References"):
            for ref in values.get(name, "").split():
                assert valid_message_id(ref) == ref
        assert not {"Bcc", "X-Evil"} & set(values)


@pytest.mark.parametrize("length", [80, 120, MAX_MESSAGE_ID_CHARS])
def test_long_valid_ids_thread_verbatim(world: World, length: int) -> None:
    """Real ids are often longer than 78 characters; the stored reply carries them as written, never encoded."""
    long_id = "<" + "a" * (length - len("<@acme.example>")) + "@acme.example>"
    assert valid_message_id(long_id) == long_id
    world.deliver(mail("dpo@acme.example", "Please delete our user's data.\n", message_id=long_id,
                       headers={"References": " ".join([long_id.replace("<a", "<b")] * 1 + [f"<r{i}@x.example>" for i in range(30)])}))
    world.poll()
    (reply,) = rows(world, OutboxMessage)
    values = dict(header_block(reply.raw))
    assert values["In-Reply-To"] == long_id
    refs = values["References"].split()
    assert long_id in refs and len(refs) == 20 and "=?" not in values["References"]
    assert all(len(line) <= 998 for line in reply.raw.split(b"\r\n"))


# ---------------------------------------------------------------- a real mailbox (Dovecot over IMAP)


def test_hostile_and_unrecordable_mail_over_imap_never_blocks_the_folder(imap_world) -> None:  # noqa: F811
    """The poison messages of issue 11 in a real IMAP folder: each filed once, the folder emptied, the next run clean."""
    from erasure.runner import poll_once
    from tests.test_poll_imap import folder

    w = imap_world
    _install(w, _poison_trigger("sqlite", "requests", "POISON"))
    hostile = [HOSTILE[n] for n in ("8bit-message-id", "encoded-crlf-id", "emoji-subject", "unknown-sender-8bit")]
    w.dovecot.deliver(w.user, [*hostile, mail("dpo@acme.example", "Viewer ID: viewer-00009\n", subject="POISON")],
                      folder="Requests")
    result = poll_once(w.config)
    assert result.fetched == 5 and result.quarantined == 1 and result.needs_attention
    assert folder(w, "Requests") == []
    assert len(folder(w, "Review")) == 2  # the unknown sender and the quarantined one
    assert len(requests_by_id(w)) == 5 and chain_ok(w)
    again = poll_once(w.config)
    assert again.fetched == 0 and again.quarantined == 0


def test_the_state_guard_stores_any_text_on_every_database(db_world: World) -> None:
    """Whatever path a value takes, the columns' guard makes it storable, and lookups compare the same way."""
    hostile = "k\x00ey\udcc3\r\n😀" + "x" * 400
    with db_world.state.session() as session:
        request = ErasureRequest(
            channel="email", status="received", planned="review", kind="other", regulation="gdpr",
            requester=hostile, reply_allowed=False, subject_line=hostile, message_id=hostile, thread_refs=hostile,
            reason=hostile, received_at=NOW, due_on=NOW.date(), created_at=NOW, updated_at=NOW,
        )
        session.add(request)
        session.flush()
        session.add(MailboxMessage(source="maildir", message_key=hostile, message_id=hostile, body_sha256=None,
                                   size=1, request_id=request.id, destination="review", moved=False, created_at=NOW))
    with db_world.state.session() as session:
        stored = session.scalars(sa.select(ErasureRequest)).one()
        assert stored.subject_line == storable(hostile, 255)
        assert stored.subject_line.startswith("key\ufffd  😀")
        assert stored.reason == storable(hostile, multiline=True) and "\x00" not in stored.reason
        found = session.scalars(sa.select(MailboxMessage).where(MailboxMessage.message_key == hostile)).one()
        assert found.request_id == stored.id
