"""The per-recipient reply cap counts an address in all its spellings as one recipient."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from erasure.delivery import recipient_key
from erasure.models import OutboxMessage
from tests.world import mail, make_world

# (spelling, the key it counts under)
SAME_PERSON = [
    ("dpo@acme.example", "dpo@acme.example"),
    ("DPO@acme.example", "dpo@acme.example"),
    ("dpo@ACME.EXAMPLE", "dpo@acme.example"),
    ("Dpo@Acme.Example", "dpo@acme.example"),
    ("dpo@acme.example.", "dpo@acme.example"),
    (" dpo@acme.example ", "dpo@acme.example"),
    ("<dpo@acme.example>", "dpo@acme.example"),
    ("dpo+gdpr@acme.example", "dpo@acme.example"),
    ("DPO+Ticket-4711@ACME.example", "dpo@acme.example"),
    ("dpo+a+b@acme.example", "dpo@acme.example"),
    ('"dpo"@acme.example', "dpo@acme.example"),
    ('"DPO"@acme.example', "dpo@acme.example"),
    ("\uff24\uff30\uff2f@acme.example", "dpo@acme.example"),  # fullwidth DPO (NFKC)
    ("dpo@\uff41cme.example", "dpo@acme.example"),  # fullwidth a in the domain
    ("dpo@bücher.example", "dpo@bücher.example"),
    ("dpo@BÜCHER.example", "dpo@bücher.example"),
    ("dpo@xn--bcher-kva.example", "dpo@bücher.example"),  # the same domain as an IDNA A-label
    ("DPO@XN--BCHER-KVA.EXAMPLE", "dpo@bücher.example"),
    ("e\u0301lise@acme.example", "élise@acme.example"),  # combining accent -> composed (NFKC)
    ("ÉLISE@acme.example", "élise@acme.example"),
    ("STRASSE@acme.example", "strasse@acme.example"),
    ("straße@acme.example", "strasse@acme.example"),  # case folding, not just lower()
]

DIFFERENT_PEOPLE = [
    ("dpo@acme.example", "dpo@acme.example.org"),
    ("dpo@acme.example", "dpo@acme-example.com"),
    ("dpo@acme.example", "dp0@acme.example"),
    ("dpo@acme.example", "dpo.team@acme.example"),
    ("dpo@acme.example", "dpo-gdpr@acme.example"),  # "-" is not taken as a tag separator
    ("dpo@acme.example", "dpo@sub.acme.example"),
    ("+tag@acme.example", "@acme.example"),  # a local part that is only a tag stays as written
    ("dpo@xn--bcher-kva.example", "dpo@bucher.example"),
]


@pytest.mark.parametrize(("spelling", "key"), SAME_PERSON)
def test_spellings_of_one_address_share_a_key(spelling, key):
    assert recipient_key(spelling) == key


@pytest.mark.parametrize(("a", "b"), DIFFERENT_PEOPLE)
def test_different_addresses_keep_different_keys(a, b):
    assert recipient_key(a) != recipient_key(b)


def test_an_invalid_a_label_is_counted_as_written():
    assert recipient_key("dpo@XN--ZZ.example") == "dpo@xn--zz.example"


address_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(address_text)
def test_the_key_never_raises_and_fits_the_column(text):
    key = recipient_key(text)
    assert isinstance(key, str) and len(key) <= 320


@given(st.from_regex(r"[A-Za-z0-9._%-]{1,20}(\+[A-Za-z0-9]{0,8})?@[A-Za-z0-9-]{1,20}\.[A-Za-z]{2,6}", fullmatch=True))
def test_the_key_is_stable_under_case_and_its_own_form(address):
    key = recipient_key(address)
    assert recipient_key(address.upper()) == key == recipient_key(address.lower())
    assert recipient_key(key) == key


def outbox(w):
    with w.state.session() as session:
        return session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()


def test_the_daily_cap_counts_every_spelling_of_one_address(tmp_path, monkeypatch):
    w = make_world(tmp_path, monkeypatch)
    w.desk.config = dataclasses.replace(
        w.config, delivery=dataclasses.replace(w.config.delivery, max_per_recipient_per_day=3))
    spellings = ["dpo@acme.example", "DPO@acme.example", "dpo@ACME.example", "dpo+gdpr@acme.example",
                 "Dpo@Acme.Example", "privacy@acme.example"]
    for i, sender in enumerate(spellings, start=1):
        w.deliver(mail(sender, f"Viewer ID: viewer-0000{i}\n"))
        with w.source() as source:
            w.desk.poll(source)
    replies = outbox(w)
    assert len({m.recipient for m in replies}) >= 4  # replies go to the address as written
    assert [m.status for m in replies] == [
        "queued", "queued", "queued",
        "digest", "digest",  # the 4th and 5th reply to one person in 24 hours wait for the run's digest letter
        "queued",  # privacy@: someone else
    ]
    assert {m.recipient_key for m in replies} == {"dpo@acme.example", "privacy@acme.example"}
    assert all("max_per_recipient_per_day" in m.last_error for m in outbox(w) if m.status == "digest")
    w.desk.close()
    w.state.close()


def test_the_migration_gives_existing_replies_their_key_and_creates_the_audit_lock(tmp_path):
    from alembic import command

    from erasure.state import (
        _alembic_config,
        current_revision,
        head_revision,
        make_engine,
        upgrade,
    )

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.exec_driver_sql(
            "INSERT INTO requests (id, channel, status, planned, kind, regulation, reply_allowed, subject_line, "
            "received_at, due_on, created_at, updated_at) VALUES (1, 'email', 'completed', 'erase', 'erasure', "
            "'gdpr', 1, '', '2026-01-01 00:00:00', '2026-02-01', '2026-01-01 00:00:00', '2026-01-01 00:00:00')")
        for i, rcpt in enumerate(["DPO@Acme.Example", "dpo+x@acme.example", "privacy@globex.example"], start=1):
            conn.exec_driver_sql(
                "INSERT INTO outbox (id, request_id, kind, message_id, recipient, raw, status, attempts, created_at) "
                f"VALUES ({i}, 1, 'completed', '<m{i}@x>', '{rcpt}', x'00', 'sent', 1, '2026-01-01 00:00:00')")
    assert upgrade(engine) == head_revision() == current_revision(engine)
    with engine.connect() as conn:
        keys = conn.exec_driver_sql("SELECT recipient_key FROM outbox ORDER BY id").scalars().all()
        lock = conn.exec_driver_sql("SELECT id FROM audit_lock").scalars().all()
    engine.dispose()
    assert keys == ["dpo@acme.example", "dpo@acme.example", "privacy@globex.example"]
    assert lock == [1]


@pytest.mark.parametrize(("name", "key"), [
    ("uppercase_tenant_address.eml", "privacy@globex.example"),
    ("tagged_mixed_case_sender.eml", "dpo@acme.example"),
])
def test_corpus_senders_count_under_their_plain_address(name, key):
    from pathlib import Path

    from erasure.parse import parse_message

    message = parse_message((Path(__file__).parent / "emails" / name).read_bytes())
    assert message.from_address != key  # written differently ...
    assert recipient_key(message.from_address) == key  # ... counted as one
