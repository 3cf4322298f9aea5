"""Replies at volume: the cap stops storms, not customers.

An authenticated tenant contact over `delivery.max_per_recipient_per_day` gets the
rest of a run's replies in one digest letter; an officer-typed address keeps the
strict cap (parked); `poll` reports what it parked and exits 1.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from erasure.models import ErasureRequest, OutboxMessage
from erasure.workflow import Desk
from tests.smtp_server import SmtpTestServer
from tests.world import NOW, World, mail, make_world

CAP = 20


def outbox(w: World) -> list[OutboxMessage]:
    with w.state.session() as session:
        rows = session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()
        for r in rows:
            r.request  # noqa: B018 (loaded while the session is open)
        return list(rows)


def requests(w: World) -> list[ErasureRequest]:
    with w.state.session() as session:
        return list(session.scalars(sa.select(ErasureRequest).order_by(ErasureRequest.id)))


def eml(w: World, message_id: str) -> email.message.EmailMessage:
    path = w.root / "replies" / (message_id.strip("<>") + ".eml")
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[return-value]


def test_a_customers_113_request_day_is_answered_in_full_and_nothing_is_parked(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    w = make_world(tmp_path, monkeypatch)
    for i in range(1, 114):
        w.deliver(mail("dpo@acme.example", f"Please erase the data of\nViewer ID: viewer-{i:05d}\n"))
    result = w.poll()
    assert result.fetched == 113 and result.parked == 0 and not result.needs_attention
    rows = outbox(w)
    letters = [r for r in rows if r.kind != "digest"]
    (digest,) = [r for r in rows if r.kind == "digest"]
    assert Counter(r.status for r in letters) == {"sent": CAP, "combined": 113 - CAP}
    assert digest.status == "sent" and digest.recipient == "dpo@acme.example"
    # Every request answered exactly once: by its own letter, or inside the digest.
    assert sorted(r.request.reference for r in letters) == sorted(r.reference for r in requests(w))
    combined = {r.message_id: r for r in letters if r.status == "combined"}
    sent = eml(w, digest.message_id)
    attached = [part.get_content() for part in sent.iter_attachments()]
    assert [a["Message-ID"] for a in attached] == list(combined)  # each letter attached as written
    body = sent.get_body(("plain",)).get_content()
    for row in combined.values():
        assert row.request.reference in body and row.receipt == f"combined into {digest.message_id}"
    assert "Replies to 93 of your erasure requests" in str(sent["Subject"])
    assert sent["Auto-Submitted"] == "auto-replied" and sent["In-Reply-To"] is None
    w.desk.close()
    w.state.close()


def test_individual_letters_resume_the_next_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = make_world(tmp_path, monkeypatch)
    for i in range(1, CAP + 3):
        w.deliver(mail("dpo@acme.example", f"Viewer ID: viewer-{i:05d}\n"))
    w.poll()
    assert Counter(r.status for r in outbox(w) if r.kind != "digest") == {"sent": CAP, "combined": 2}
    assert sum(r.kind == "digest" for r in outbox(w)) == 1
    w.desk.close()
    w.desk = Desk(w.config, w.state, now=lambda: NOW + dt.timedelta(days=1, hours=1))
    w.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00001\n"))
    w.poll()
    newest = outbox(w)[-1]
    assert newest.kind != "digest" and newest.status == "sent"
    w.desk.close()
    w.state.close()


def test_two_customers_over_the_cap_get_a_digest_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = make_world(tmp_path, monkeypatch)
    config = dataclasses.replace(w.config, delivery=dataclasses.replace(w.config.delivery, max_per_recipient_per_day=2))
    w.desk.close()
    w.config, w.desk = config, Desk(config, w.state, now=lambda: NOW)
    for sender in ("dpo@acme.example", "privacy@globex.example"):
        for i in range(1, 5):
            w.deliver(mail(sender, f"Viewer ID: viewer-{i:05d}\n"))
    w.poll()
    digests = [r for r in outbox(w) if r.kind == "digest"]
    assert sorted(d.recipient for d in digests) == ["dpo@acme.example", "privacy@globex.example"]
    assert all(len(list(eml(w, d.message_id).iter_attachments())) == 2 for d in digests)
    w.desk.close()
    w.state.close()


def test_an_officer_typed_requester_keeps_the_strict_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = make_world(tmp_path, monkeypatch)
    for i in range(1, CAP + 3):
        w.desk.add_manual(tenant="acme", viewer_ids=[f"viewer-{i:05d}"], requester="someone@phoned.example", actor="bob")
    statuses = Counter(r.status for r in outbox(w))
    assert statuses["parked"] == 2 and statuses["digest"] == 0 and "combined" not in statuses
    w.desk.close()
    w.state.close()


def test_poll_reports_what_it_parked_and_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  smtp_server: SmtpTestServer) -> None:
    from typer.testing import CliRunner

    import tomli_w

    from erasure.cli import app
    from tests.world import KEY_ENV, config_dict

    make_world(tmp_path, monkeypatch)  # the views, the Maildir and the key
    raw = config_dict(tmp_path)
    raw["delivery"] = {k: v for k, v in dataclasses.asdict(smtp_server.settings(
        from_address="privacy@analytics.example")).items() if v is not None}
    (tmp_path / "erasure.toml").write_text(tomli_w.dumps(raw))
    (tmp_path / "Maildir" / "new" / "1.eml").write_bytes(mail("dpo@acme.example", "Viewer ID: viewer-00001\n"))
    smtp_server.handler.answer_next("550 5.1.1 no such mailbox", at="RCPT")
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "erasure.toml"), "poll"], env={KEY_ENV: "test-key"})
    assert result.exit_code == 1, result.output
    assert "1 parked" in result.output
