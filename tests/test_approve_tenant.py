"""`requests approve --tenant`: moving a verified request to another tenant needs --override-tenant and a
reason, is audited, and its letters go to the new tenant's own contact, never the other tenant's requester."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json

import pytest
import sqlalchemy as sa
import tomli_w
from typer.testing import CliRunner

from erasure import audit
from erasure.cli import app
from erasure.config import ConfigError, Tenant, config_from_dict
from erasure.errors import InvalidTransitionError, TenantOverrideRequiredError
from erasure.models import AuditEvent, ErasureRequest, OutboxMessage
from tests.world import KEY_ENV, config_dict, mail, make_world

runner = CliRunner()
ACME_SENDER = "dpo@acme.example"  # acme lists only "@acme.example": no exact address of its own
GLOBEX_SENDER = "privacy@globex.example"


@pytest.fixture
def w(tmp_path, monkeypatch):
    world = make_world(tmp_path, monkeypatch, auto_approve=False)  # every verified request waits for approval
    yield world
    world.desk.close()
    world.state.close()


def held(w, sender: str, viewer: str = "viewer-00003") -> ErasureRequest:
    w.deliver(mail(sender, f"Viewer ID: {viewer}\n"))
    w.poll()
    with w.state.session() as session:
        return session.scalars(sa.select(ErasureRequest).order_by(ErasureRequest.id.desc())).first()


def replies(w, reference: str) -> list[OutboxMessage]:
    with w.state.session() as session:
        return session.scalars(
            sa.select(OutboxMessage).join(ErasureRequest).where(ErasureRequest.reference == reference)
            .order_by(OutboxMessage.id)
        ).all()


def events(w, reference: str, name: str) -> list[AuditEvent]:
    with w.state.session() as session:
        return session.scalars(sa.select(AuditEvent).where(AuditEvent.request_ref == reference,
                                                           AuditEvent.event == name)).all()


# sender, --tenant, --override-tenant, --reason -> error class and words (None: it is approved)
REFUSED = [
    (ACME_SENDER, "globex", False, None, TenantOverrideRequiredError, "--override-tenant"),
    (ACME_SENDER, "globex", False, "the viewer is globex's", TenantOverrideRequiredError, "--override-tenant"),
    (ACME_SENDER, "globex", True, None, TenantOverrideRequiredError, "--reason"),
    (ACME_SENDER, "globex", True, "   ", TenantOverrideRequiredError, "--reason"),
    (GLOBEX_SENDER, "acme", False, None, TenantOverrideRequiredError, "--override-tenant"),
    (ACME_SENDER, None, True, "why", InvalidTransitionError, "--override-tenant needs --tenant"),
    (ACME_SENDER, "nosuch", True, "why", ConfigError, "no tenant named 'nosuch'"),
]


@pytest.mark.parametrize(("sender", "tenant", "override", "reason", "error", "words"), REFUSED)
@pytest.mark.parametrize("dry_run", [False, True])
def test_refused_approvals_change_nothing(w, sender, tenant, override, reason, error, words, dry_run):
    r = held(w, sender)
    before = (w.views("env_acme_prod"), w.views("env_globex"))
    call = w.desk.preview_approval if dry_run else w.desk.approve
    with pytest.raises(error, match=words.replace("+", r"\+")):
        call(r.reference, tenant=tenant, override_tenant=override, reason=reason)
    after = held_again(w, r.reference)
    assert (after.status, after.tenant, after.requester) == ("awaiting_approval", r.tenant, r.requester)
    assert (w.views("env_acme_prod"), w.views("env_globex")) == before
    assert events(w, r.reference, "tenant_overridden") == []


def held_again(w, reference):
    with w.state.session() as session:
        return session.scalars(sa.select(ErasureRequest).where(ErasureRequest.reference == reference)).one()


# sender, --tenant, erased in, letter to (None: no letter after approval)
APPROVED = [
    (ACME_SENDER, None, False, "acme", ACME_SENDER),  # its own tenant: as before
    (ACME_SENDER, "acme", False, "acme", ACME_SENDER),  # naming the same tenant is no override
    (ACME_SENDER, "globex", True, "globex", "privacy@globex.example"),  # globex's first exact sender
    (GLOBEX_SENDER, "acme", True, "acme", None),  # acme lists only a domain: no letter, and the officer is told
    ("someone@unknown.example", "globex", False, "globex", None),  # no tenant yet: --tenant alone, as before
]


@pytest.mark.parametrize(("sender", "tenant", "override", "erased_in", "letter_to"), APPROVED)
def test_approvals_erase_in_the_named_tenant_and_write_to_its_contact(w, sender, tenant, override, erased_in,
                                                                      letter_to):
    r = held(w, sender)
    first_replies = [m.message_id for m in replies(w, r.reference)]
    outcome = w.desk.approve(r.reference, actor="alice", tenant=tenant, override_tenant=override,
                             reason="The viewer id is one of globex's; acme forwarded it by mistake." if override else None)
    assert (outcome.status, outcome.tenant) == ("completed", erased_in)
    other = "env_globex" if erased_in == "acme" else "env_acme_prod"
    mine = "env_acme_prod" if erased_in == "acme" else "env_globex"
    assert w.views(mine, "viewer-00003") == 0
    assert w.views(other, "viewer-00003") == 3
    new = [m for m in replies(w, r.reference) if m.message_id not in first_replies]
    if letter_to is None:
        assert new == []
    else:
        assert [(m.kind, m.recipient) for m in new] == [("completed", letter_to)]
    if override:
        assert sender not in {m.recipient for m in new}
        (ev,) = events(w, r.reference, "tenant_overridden")
        with w.state.session() as session:
            reason, data = audit.shown(session, ev)
        assert data == {"from_tenant": r.tenant, "to_tenant": erased_in, "actor": "alice", "letters_to": letter_to,
                        "reason": "The viewer id is one of globex's; acme forwarded it by mistake."}
        assert (ev.actor, ev.tenant) == ("alice", erased_in)
        assert reason.startswith("The viewer id")
        assert any(("no letter" if letter_to is None else letter_to) in n for n in outcome.notes)
    else:
        assert events(w, r.reference, "tenant_overridden") == [] and outcome.notes == ()


def test_the_letter_to_the_new_tenant_does_not_thread_into_the_other_tenants_mail(w):
    r = held(w, ACME_SENDER)
    w.desk.approve(r.reference, actor="alice", tenant="globex", override_tenant=True, reason="globex's viewer")
    (letter,) = [m for m in replies(w, r.reference) if m.kind == "completed"]
    msg = email.message_from_bytes(letter.raw, policy=email.policy.default)
    assert msg["To"] == "privacy@globex.example"
    assert msg["In-Reply-To"] is None and msg["References"] is None
    assert "acme.example" not in letter.raw.decode("utf-8", "replace")
    assert not str(msg["Subject"]).startswith("Re:")


def test_a_configured_contact_wins_over_the_senders(tmp_path, monkeypatch):
    w = make_world(tmp_path, monkeypatch, auto_approve=False)
    tenants = tuple(dataclasses.replace(t, contact="gdpr-desk@acme.example") if t.name == "acme" else t
                    for t in w.config.tenants)
    w.desk.config = dataclasses.replace(w.config, tenants=tenants)
    r = held(w, GLOBEX_SENDER)
    outcome = w.desk.approve(r.reference, actor="alice", tenant="acme", override_tenant=True, reason="acme's viewer")
    assert outcome.status == "completed"
    assert [m.recipient for m in replies(w, r.reference) if m.kind == "completed"] == ["gdpr-desk@acme.example"]
    w.desk.close()
    w.state.close()


@pytest.mark.parametrize(("tenant", "address"), [
    (Tenant(name="a", senders=("@a.example",), environments=("e",)), None),
    (Tenant(name="a", senders=("@a.example", "dpo@a.example", "x@a.example"), environments=("e",)), "dpo@a.example"),
    (Tenant(name="a", senders=("dpo@a.example",), environments=("e",), contact="desk@a.example"), "desk@a.example"),
    (Tenant(name="a", senders=(), environments=("e",)), None),
])
def test_a_tenants_reply_address_comes_from_config_only(tenant, address):
    assert tenant.reply_address == address


@pytest.mark.parametrize("contact", ["@acme.example", "acme", "A <a@acme.example>", "a@acme.example, b@acme.example",
                                     "a b@acme.example", "a@localhost"])
def test_a_contact_must_be_one_plain_address(tmp_path, contact):
    raw = config_dict(tmp_path)
    raw["tenants"][0]["contact"] = contact
    with pytest.raises(ConfigError, match=r"tenants\[0\].contact"):
        config_from_dict(raw, base_dir=tmp_path)


# ---------------------------------------------------------------- the CLI

def cli(w, *args):
    path = w.root / "erasure.toml"
    if not path.exists():
        path.write_text(tomli_w.dumps(config_dict(w.root, auto_approve=False)))
    return runner.invoke(app, ["--config", str(path), *args], env={KEY_ENV: "test-key"})


# args after the reference -> exit code, words in the output
CLI_CASES = [
    (["--tenant", "globex"], 2, "--override-tenant"),
    (["--tenant", "globex", "--dry-run"], 2, "--override-tenant"),
    (["--tenant", "globex", "--override-tenant"], 2, "--reason"),
    (["--tenant", "globex", "--override-tenant", "--dry-run"], 2, "--reason"),
    (["--override-tenant", "--reason", "x"], 2, "needs --tenant"),
    (["--tenant", "globex", "--override-tenant", "--reason", "globex's viewer", "--dry-run"], 0,
     "letters go to privacy@globex.example"),
    (["--tenant", "globex", "--override-tenant", "--reason", "globex's viewer"], 0,
     "letters go to privacy@globex.example"),
    (["--tenant", "acme"], 0, "completed"),
    ([], 0, "completed"),
]


@pytest.mark.parametrize(("args", "code", "words"), CLI_CASES)
def test_cli_approve_for_another_tenant(w, args, code, words):
    r = held(w, ACME_SENDER)
    result = cli(w, "requests", "approve", r.reference, "--actor", "alice", *args)
    assert result.exit_code == code, result.output
    assert words in result.output
    after = held_again(w, r.reference)
    changed = code == 0 and "--dry-run" not in args
    assert after.status == ("completed" if changed else "awaiting_approval")
    assert after.tenant == ("globex" if changed and "globex" in args else "acme")


def test_cli_says_when_no_letter_will_be_sent(w):
    r = held(w, GLOBEX_SENDER)
    result = cli(w, "requests", "approve", r.reference, "--tenant", "acme", "--override-tenant", "--reason", "acme's")
    assert result.exit_code == 0, result.output
    assert "no letter will be sent" in result.output and "contact" in result.output
