"""Downstream recipients and sub-processors are told of every completed erasure (GDPR Art. 19, 28(4);
CCPA 11 CCR 7022(b)-(c)): one notice each, through the outbox, naming only the reference and the counts."""

from __future__ import annotations

import email
import email.policy
import json

import pytest
import sqlalchemy as sa

from erasure import transitions
from erasure.config import config_from_dict
from erasure.errors import ConfigError
from erasure.mailbox import MaildirSource
from erasure.models import AuditEvent, ErasureRequest, OutboxMessage
from erasure.notify import RECIPIENT_NOTICE, notice_message_id
from erasure.runner import deliver_outbox
from erasure.state import open_state
from erasure.viewschema import create_demo_schema, fill_synthetic_views
from erasure.workflow import Desk
from tests.world import KEY_ENV, NOW, TENANTS, config_dict, mail, zoned

RECIPIENTS = [
    {"name": "Example CDN Ltd", "address": "privacy@cdn.example"},
    {"name": "Warehouse Inc", "address": "dpo@warehouse.example"},
]


@pytest.fixture
def state_url(store_backend, store_url, tmp_path):
    """The state database on each backend (SQLite: a file of its own, beside the view store)."""
    return f"sqlite:///{tmp_path / 'state.db'}" if store_backend == "sqlite" else store_url


def open_desk(tmp_path, state_url=None, recipients=RECIPIENTS, **policy):
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
    views = tmp_path / "views.db"
    if not views.exists():
        engine = sa.create_engine(f"sqlite:///{views}")
        create_demo_schema(engine)
        fill_synthetic_views(engine, TENANTS, viewer_ids_per_env=10, views_per_viewer=3, seed=1, now=NOW,
                             max_age_days=60)
        engine.dispose()
    raw = config_dict(tmp_path, **policy)
    raw["tenants"][0]["recipients"] = recipients
    if state_url:
        raw["state"]["url"] = state_url
    config = config_from_dict(raw, base_dir=tmp_path)
    return Desk(config, open_state(config.state.url, base_dir=tmp_path), now=lambda: NOW)


@pytest.fixture
def desk(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "test-key")
    d = open_desk(tmp_path)
    yield d
    d.close()
    d.state.close()


def poll(desk, tmp_path, *messages):
    for i, raw in enumerate(messages):
        (tmp_path / "Maildir" / "new" / f"{i}.test").write_bytes(raw)
    with MaildirSource(tmp_path / "Maildir") as source:
        return desk.poll(source)


def outbox(desk, kind=None):
    with desk.state.session() as session:
        stmt = sa.select(OutboxMessage).order_by(OutboxMessage.id)
        rows = session.scalars(stmt if kind is None else stmt.where(OutboxMessage.kind == kind)).all()
        return [(r.kind, r.recipient, r.message_id, bytes(r.raw)) for r in rows]


def events(desk, name):
    """Event data as people read it: the recipients (addresses) are kept beside the chain (erasure.personal)."""
    from erasure import audit

    with desk.state.session() as session:
        out = []
        for e in session.scalars(sa.select(AuditEvent).where(AuditEvent.event == name)):
            _reason, data = audit.shown(session, e)
            out.append({k: json.loads(v) if k == "recipients" and isinstance(v, str) else v for k, v in data.items()})
        return out


def parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def spy_completed_context(monkeypatch):
    """The extra values each `completed` reply was queued with (the template's side belongs to the letter)."""
    seen = []
    original = Desk._reply

    def spy(self, session, request, kind, **extra):
        if kind == "completed":
            seen.append(extra)
        return original(self, session, request, kind, **extra)

    monkeypatch.setattr(Desk, "_reply", spy)
    return seen


# ---------------------------------------------------------------- a real completion, on every state backend


def test_a_completion_tells_each_recipient_once_through_the_outbox(tmp_path, monkeypatch, state_url):
    monkeypatch.setenv(KEY_ENV, "test-key")
    seen = spy_completed_context(monkeypatch)
    desk = open_desk(tmp_path, state_url)
    try:
        result = poll(desk, tmp_path, mail("dpo@acme.example", "Viewer ID: viewer-00006\n"))
        (outcome,) = result.outcomes
        assert outcome.status == "completed" and outcome.rows_erased == 24
        rows = outbox(desk)
        assert [(k, to) for k, to, _, _ in rows] == [
            (RECIPIENT_NOTICE, "privacy@cdn.example"),
            (RECIPIENT_NOTICE, "dpo@warehouse.example"),
            ("completed", "dpo@acme.example"),
        ]
        assert seen[0]["recipients_notified"] == ["Example CDN Ltd", "Warehouse Inc"]
        (notified,) = events(desk, "recipients_notified")
        assert [(r["name"], r["address"]) for r in notified["recipients"]] == [
            ("Example CDN Ltd", "privacy@cdn.example"), ("Warehouse Inc", "dpo@warehouse.example")]
        assert [r["message_id"] for r in notified["recipients"]] == [m for _, _, m, _ in rows[:2]]
        report = deliver_outbox(desk.config, desk.state)
        assert report.sent == 3
        sent = sorted((tmp_path / "replies").glob("*.eml"))
        assert len(sent) == 3
    finally:
        desk.close()
        desk.state.close()


def test_the_notice_names_the_reference_and_counts_and_nothing_of_the_requester(desk, tmp_path):
    poll(desk, tmp_path, mail("dpo@acme.example", "Viewer ID: viewer-00006\n", subject="Erase viewer-00006 please",
                              message_id="<thread-1@acme.example>"))
    with desk.state.session() as session:
        request = session.scalar(sa.select(ErasureRequest))
        reference = request.reference
    for _, to, message_id, raw in outbox(desk, RECIPIENT_NOTICE):
        msg = parsed(raw)
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert msg["To"] == to and msg["From"] == "privacy@analytics.example"
        assert msg["Message-ID"] == message_id
        # A letter of its own, not a reply: it does not thread into the requester's conversation.
        assert msg["In-Reply-To"] is None and msg["References"] is None
        assert not msg["Subject"].startswith("Re:") and reference in msg["Subject"]
        assert msg["Auto-Submitted"] == "auto-generated"
        for part in (text, html):
            assert reference in part
            assert "24" in part and "twenty-four" in part
            assert "views" in part and "view_events" in part
            assert "Article" in part and "19" in part
        for secret in (b"viewer-00006", b"dpo@acme.example", b"acme", b"thread-1", b"Erase viewer"):
            assert secret not in raw.lower(), secret


def test_a_ccpa_notice_cites_the_service_provider_rule(desk, tmp_path):
    poll(desk, tmp_path, mail("dpo@acme.example", "Under the CCPA please delete\nViewer ID: viewer-00006\n"))
    for _, _, _, raw in outbox(desk, RECIPIENT_NOTICE):
        text = parsed(raw).get_body(("plain",)).get_content()
        assert "7022(b) and (c)" in text and "GDPR" not in text


def test_no_data_found_tells_no_recipient(desk, tmp_path, monkeypatch):
    seen = spy_completed_context(monkeypatch)
    result = poll(desk, tmp_path, mail("dpo@acme.example", "Viewer ID: viewer-99999\n"))
    assert [o.status for o in result.outcomes] == ["completed"]
    assert [k for k, *_ in outbox(desk)] == ["no_data_found"]
    assert events(desk, "recipients_notified") == [] and seen == []


def test_a_tenant_without_recipients_gets_an_empty_list_in_its_letter(desk, tmp_path, monkeypatch):
    seen = spy_completed_context(monkeypatch)
    poll(desk, tmp_path, mail("privacy@globex.example", "Viewer ID: viewer-00001\n"))
    assert [k for k, *_ in outbox(desk)] == ["completed"]
    ((context,),) = [seen]
    assert {k: v for k, v in context.items() if k != "stores"} == {
        "counts": {"views": 3, "view_events": 9}, "total_rows": 12, "total_rows_words": "twelve",
        "recipients_notified": [], "refused": []}
    assert [(s["store"], s["total"]) for s in context["stores"]] == [("default", 12)]
    assert events(desk, "recipients_notified") == []


def test_recipients_are_told_even_when_the_requester_gets_no_letter(desk):
    outcome = desk.add_manual(tenant="acme", viewer_ids=["viewer-00006"], actor="officer")
    assert outcome.status == "completed"
    assert [(k, to) for k, to, *_ in outbox(desk)] == [(RECIPIENT_NOTICE, "privacy@cdn.example"),
                                                       (RECIPIENT_NOTICE, "dpo@warehouse.example")]


# ---------------------------------------------------------------- crash and resume


def test_a_crash_inside_the_completion_queues_each_notice_once_on_resume(desk, tmp_path, monkeypatch):
    real_move = transitions.move
    crashes = iter([True])

    def crash_once(session, request, step, **kw):
        if step == "complete" and next(crashes, False):
            raise RuntimeError("the process died")
        return real_move(session, request, step, **kw)

    monkeypatch.setattr(transitions, "move", crash_once)
    (tmp_path / "Maildir" / "new" / "1.test").write_bytes(mail("dpo@acme.example", "Viewer ID: viewer-00006\n"))
    with MaildirSource(tmp_path / "Maildir") as source:
        (incoming,) = list(source.fetch(source.pending()))
        request_id, _, _ = desk.intake(source.name, incoming)
    with pytest.raises(RuntimeError):
        desk.advance(request_id)
    assert outbox(desk) == []  # rolled back with the completion
    assert desk.advance(request_id).status == "completed"  # resumed: the store finds nothing left
    notices = outbox(desk, RECIPIENT_NOTICE)
    assert [to for _, to, *_ in notices] == ["privacy@cdn.example", "dpo@warehouse.example"]
    text = parsed(notices[0][3]).get_body(("plain",)).get_content()
    assert "counted before erasing: 24" in text
    assert len(events(desk, "recipients_notified")) == 1


def test_queueing_the_notices_again_adds_none(desk, tmp_path):
    poll(desk, tmp_path, mail("dpo@acme.example", "Viewer ID: viewer-00006\n"))
    before = outbox(desk, RECIPIENT_NOTICE)
    with desk.state.session() as session:
        request = session.scalar(sa.select(ErasureRequest))
        told = desk._notify_recipients(session, request, {"views": 6, "view_events": 18})
    assert told == ["Example CDN Ltd", "Warehouse Inc"]
    assert outbox(desk, RECIPIENT_NOTICE) == before


def test_the_notice_id_is_fixed_by_request_and_recipient_not_by_position_or_case():
    class Request:
        reference = "ER-2026-000007"

    a = notice_message_id(Request(), "Example CDN Ltd", "privacy@analytics.example")  # type: ignore[arg-type]
    assert a == notice_message_id(Request(), " example cdn ltd", "privacy@analytics.example")  # type: ignore[arg-type]
    assert a != notice_message_id(Request(), "Warehouse Inc", "privacy@analytics.example")  # type: ignore[arg-type]
    assert a.startswith("<ER-2026-000007.recipient_notice.") and a.endswith("@analytics.example>")


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(("recipients", "words"), [
    ([{"name": "CDN", "address": "cdn.example"}], "tenants[0].recipients[0].address = 'cdn.example' is not one plain address"),
    ([{"name": "CDN", "address": "CDN <privacy@cdn.example>"}], "is not one plain address"),
    ([{"name": "CDN", "address": "a@cdn.example, b@cdn.example"}], "is not one plain address"),
    ([{"name": "", "address": "privacy@cdn.example"}], "tenants[0].recipients[0].name = '' is empty"),
    ([{"name": "CDN", "address": "a@cdn.example"}, {"name": "cdn", "address": "b@cdn.example"}],
     "tenants[0].recipients[1].name = 'cdn' is configured twice (also tenants[0].recipients[0])"),
    ([{"name": "Us", "address": "Privacy@Analytics.example"}], "recipients[0].address is delivery.from_address"),
    ([{"name": "CDN"}], "tenants[0].recipients[0].address is required"),
    ([{"name": "CDN", "adress": "privacy@cdn.example"}], "did you mean 'address'?"),
])
def test_a_wrong_recipient_is_a_config_error_naming_the_key(tmp_path, recipients, words):
    raw = config_dict(tmp_path)
    raw["tenants"][0]["recipients"] = recipients
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw, base_dir=tmp_path)
    assert words in str(err.value)


def test_recipients_are_read_per_tenant(tmp_path):
    raw = zoned({"tenants": [{"name": "acme", "senders": ["@acme.example"], "environments": ["e"],
                              "recipients": RECIPIENTS}], "policy": {"require_authentication": False}})
    config = config_from_dict(raw)
    assert [(r.name, r.address) for r in config.tenant("acme").recipients] == [
        ("Example CDN Ltd", "privacy@cdn.example"), ("Warehouse Inc", "dpo@warehouse.example")]


def test_notices_are_not_held_by_the_per_recipient_cap(tmp_path, monkeypatch):
    import dataclasses

    monkeypatch.setenv(KEY_ENV, "test-key")
    desk = open_desk(tmp_path)
    desk.config = dataclasses.replace(desk.config, delivery=dataclasses.replace(desk.config.delivery,
                                                                                max_per_recipient_per_day=1))
    try:
        for viewer in ("viewer-00006", "viewer-00007", "viewer-00008"):
            desk.add_manual(tenant="acme", viewer_ids=[viewer], actor="officer")
        with desk.state.session() as session:
            states = session.scalars(sa.select(OutboxMessage.status).where(OutboxMessage.kind == RECIPIENT_NOTICE)).all()
        assert states == ["queued"] * 6
    finally:
        desk.close()
        desk.state.close()
