"""Refusals: codes with their legal basis, partial decisions per viewer id, and the letters and trail they make."""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import tomli_w
from typer.testing import CliRunner

import erasure.workflow
from erasure import audit
from erasure.cli import app
from erasure.errors import InvalidTransitionError, UsageError
from erasure.models import AuditEvent, ErasureRequest, OutboxMessage, Subject
from erasure.refusals import OTHER, REFUSALS, codes_for, letter_basis, refusal_for
from erasure.suppression import suppression_list
from tests.test_intake_hostile import _state_url, make_db_world
from tests.world import KEY_ENV, World, config_dict, count_views, mail, make_world, shown_events

ACME = "dpo@acme.example"


# ---------------------------------------------------------------- the codes table


def test_every_code_states_a_citation_and_a_basis_for_each_of_its_regulations():
    for refusal in REFUSALS.values():
        assert refusal.regulations, refusal.code
        for law in refusal.regulations:
            basis = refusal.basis(law)
            assert basis.citation.strip() and len(basis.text) > 40, (refusal.code, law)
            assert "<" not in basis.text and basis.text.endswith("."), (refusal.code, law)
            assert refusal.letter_text(law) == f"{basis.text} ({basis.citation})"


def test_the_codes_cover_article_17_3_and_the_post_cpra_exceptions_one_each():
    gdpr = [c for c in REFUSALS if c.startswith("gdpr-")]
    ccpa = [c for c in REFUSALS if c.startswith("ccpa-")]
    assert gdpr == [f"gdpr-17-3-{p}" for p in "abcde"]
    assert ccpa == [f"ccpa-105-d-{n}" for n in range(1, 9)]  # eight paragraphs since the CPRA
    assert [REFUSALS[c].citation("gdpr") for c in gdpr] == [f"Art. 17(3)({p}) GDPR" for p in "abcde"]
    assert [REFUSALS[c].citation("ccpa") for c in ccpa] == [f"Cal. Civ. Code § 1798.105(d)({n})" for n in range(1, 9)]
    assert all(REFUSALS[c].regulations == ("gdpr",) for c in gdpr)
    assert all(REFUSALS[c].regulations == ("ccpa",) for c in ccpa)
    for code in ("manifestly-unfounded", "identity-not-verified", OTHER):
        assert REFUSALS[code].regulations == ("gdpr", "ccpa")
    assert "12(5)" in REFUSALS["manifestly-unfounded"].citation("gdpr")
    assert "1798.145(h)(3)" in REFUSALS["manifestly-unfounded"].citation("ccpa")
    assert "12(6)" in REFUSALS["identity-not-verified"].citation("gdpr")
    assert "11(2)" in REFUSALS["identity-not-verified"].citation("gdpr")
    assert "7062" in REFUSALS["identity-not-verified"].citation("ccpa")
    assert "7063" in REFUSALS["identity-not-verified"].citation("ccpa")


def test_codes_for_a_regulation_are_those_it_can_use():
    assert {r.code for r in codes_for("gdpr")} == set(REFUSALS) - {c for c in REFUSALS if c.startswith("ccpa-")}
    assert {r.code for r in codes_for("ccpa")} == set(REFUSALS) - {c for c in REFUSALS if c.startswith("gdpr-")}
    assert len(codes_for(None)) == len(REFUSALS)


@pytest.mark.parametrize(("code", "regulation", "reason", "words"), [
    ("ccpa-105-d-8", "gdpr", None, "is a CCPA ground, but this request is made under the GDPR"),
    ("gdpr-17-3-b", "ccpa", "x", "is a GDPR ground, but this request is made under the CCPA"),
    ("gdpr-17-3-f", "gdpr", None, "is not a refusal code"),
    ("gdpr-17-3", "gdpr", None, "did you mean 'gdpr-17-3-"),
    ("GDPR-17-3-B", "gdpr", None, "is not a refusal code"),  # codes are exact, like ids
    ("manifestly_unfounded", "ccpa", None, "did you mean 'manifestly-unfounded'"),
    (OTHER, "gdpr", None, "--code other needs --reason"),
    (OTHER, "ccpa", "   ", "--code other needs --reason"),
    (None, "gdpr", None, "needs --code CODE or --reason TEXT"),
    (None, "gdpr", " \n", "needs --code CODE or --reason TEXT"),
])
def test_a_code_that_does_not_fit_is_a_usage_error_naming_the_ones_that_do(code, regulation, reason, words):
    with pytest.raises(UsageError, match=re.escape(words)):
        refusal_for(code, regulation, reason=reason)


@pytest.mark.parametrize(("code", "regulation", "reason", "expected"), [
    ("gdpr-17-3-e", "gdpr", None, "gdpr-17-3-e"),
    ("ccpa-105-d-2", "ccpa", "fraud investigation", "ccpa-105-d-2"),
    ("identity-not-verified", "ccpa", None, "identity-not-verified"),
    (None, "gdpr", "the sender is not the customer", OTHER),  # a reason alone is the `other` ground
    (OTHER, "ccpa", "the sender is not the customer", OTHER),
])
def test_a_code_that_fits(code, regulation, reason, expected):
    assert refusal_for(code, regulation, reason=reason).code == expected


def test_letter_basis_states_each_ground_once_in_table_order():
    text = letter_basis(["gdpr-17-3-e", None, "gdpr-17-3-b", "gdpr-17-3-e", "unknown"], "gdpr")
    assert text.split("\n\n") == [REFUSALS["gdpr-17-3-b"].letter_text("gdpr"),
                                  REFUSALS["gdpr-17-3-e"].letter_text("gdpr")]


# ---------------------------------------------------------------- a world where letters are watched


@pytest.fixture
def letters(monkeypatch) -> list[tuple[str, dict]]:
    """Every reply the desk queues, with the extra context it passes to the template."""
    seen: list[tuple[str, dict]] = []
    real = erasure.workflow.queue_reply

    def spy(session, config, request, spec, renderer, *, now):
        seen.append((spec.kind, dict(spec.extra)))
        return real(session, config, request, spec, renderer, now=now)

    monkeypatch.setattr(erasure.workflow, "queue_reply", spy)
    return seen


@pytest.fixture
def held(tmp_path, monkeypatch) -> Iterator[World]:
    """Every erasure waits for an officer (policy.auto_approve = false)."""
    w = make_world(tmp_path, monkeypatch, auto_approve=False)
    yield w
    w.desk.close()
    w.state.close()


def one_request(w: World) -> ErasureRequest:
    with w.state.session() as session:
        (r,) = session.scalars(sa.select(ErasureRequest)).all()
        session.expunge(r)
        return r


def subjects(w: World) -> list[tuple[str | None, str | None, str | None]]:
    with w.state.session() as session:
        return [(s.viewer_id, s.refusal_code, s.refusal_reason)
                for s in session.scalars(sa.select(Subject).order_by(Subject.position))]


def events(w: World, name: str) -> list[AuditEvent]:
    return shown_events(w, name)


def letter_text(w: World, kind: str) -> str:
    """The plain-text part of the queued letter of this kind, decoded."""
    with w.state.session() as session:
        raw = session.scalar(sa.select(OutboxMessage.raw).where(OutboxMessage.kind == kind))
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return " ".join(message.get_body(("plain",)).get_content().split())


def request_three(w: World, sender: str = ACME) -> ErasureRequest:
    w.deliver(mail(sender, "Please erase:\nViewer ID: viewer-00001\nViewer ID: viewer-00002\nViewer ID: viewer-00003\n"))
    w.poll()
    return one_request(w)


# ---------------------------------------------------------------- partial decisions (embedded)


def test_refusing_some_ids_keeps_the_request_open_for_the_rest(held, letters):
    r = request_three(held)
    assert r.status == "awaiting_approval"
    outcome = held.desk.reject(r.reference, code="gdpr-17-3-e", viewer_ids=["viewer-00002"],
                               reason="Needed as evidence in a pending claim.", actor="alice")
    assert outcome.status == "awaiting_approval"
    assert outcome.notes == (f"refused 1 of the 3 viewer ids; the other 2 go ahead: approve them with "
                             f"`erasure requests approve {r.reference}`. The final letter lists the refused ids",)
    assert subjects(held) == [("viewer-00001", None, None),
                              ("viewer-00002", "gdpr-17-3-e", "Needed as evidence in a pending claim."),
                              ("viewer-00003", None, None)]
    assert [k for k, _ in letters] == ["acknowledgement"]  # nothing is said until the request is answered


def test_the_last_ids_refused_make_it_a_full_rejection_with_every_ground(held, letters):
    r = request_three(held)
    held.desk.reject(r.reference, code="gdpr-17-3-e", viewer_ids=["viewer-00002"], actor="alice")
    outcome = held.desk.reject(r.reference, code="gdpr-17-3-b", viewer_ids=["viewer-00003", "viewer-00001"],
                               reason="Kept for the tax audit.", actor="alice")
    assert outcome.status == "rejected" and outcome.letter_sent is True and outcome.notes == ()
    kind, extra = letters[-1]
    assert kind == "rejected"
    assert extra["basis"] == "\n\n".join([REFUSALS["gdpr-17-3-b"].letter_text("gdpr"),
                                          REFUSALS["gdpr-17-3-e"].letter_text("gdpr")])
    assert extra["reasons"] == "Kept for the tax audit."
    assert [d["id"] for d in extra["refused"]] == ["vi********01", "vi********02", "vi********03"]
    with held.state.session() as session:
        stored = session.get(ErasureRequest, r.id)
        assert (stored.refusal_code, stored.response) == ("gdpr-17-3-b", "rejected")
    assert [json.loads(e.data)["count"] for e in events(held, "refused")] == [1, 2]
    assert json.loads(events(held, "rejected")[0].data) == {"code": "gdpr-17-3-b"}
    assert held.views("env_acme_prod", "viewer-00001") == 3  # nothing erased


def test_a_full_rejection_by_code_alone_still_gives_the_template_its_reasons(held, letters):
    r = request_three(held)
    outcome = held.desk.reject(r.reference, code="manifestly-unfounded", actor="alice")
    assert outcome.status == "rejected"
    kind, extra = letters[-1]
    basis = REFUSALS["manifestly-unfounded"].letter_text("gdpr")
    assert kind == "rejected" and extra["basis"] == basis and extra["reasons"] == basis
    (event,) = events(held, "refused")
    assert json.loads(event.data)["partial"] is False and json.loads(event.data)["count"] == 3
    text = letter_text(held, "rejected")
    assert "manifestly unfounded" in text and "Our reasons" not in text  # the basis, said once
    first_words = basis.split()[:6]
    assert " ".join(text.split()).count(" ".join(first_words)) == 1


def test_a_reason_alone_is_a_rejection_as_before_under_the_other_code(held, letters):
    r = request_three(held)
    held.desk.reject(r.reference, reason="The customer withdrew it by telephone.", actor="alice")
    kind, extra = letters[-1]
    assert (kind, extra["reasons"]) == ("rejected", "The customer withdrew it by telephone.")
    assert extra["basis"] == ""  # the officer's words stand on their own; no citation a processor may not give
    assert one_request(held).refusal_code == OTHER
    assert "12(4)" not in letter_text(held, "rejected")  # the world is a processor's


@pytest.mark.parametrize(("ids", "words"), [
    (["viewer-00009"], "'viewer-00009': not among the ids"),
    (["VIEWER-00001"], "not among the ids"),  # exact, case included
    (["viewer-00001 "], "not among the ids"),  # and spaces
    (["viewer-0000"], "not among the ids"),  # never a prefix
])
def test_only_ids_the_request_names_can_be_refused(held, ids, words):
    r = request_three(held)
    with pytest.raises(InvalidTransitionError, match=re.escape(words)):
        held.desk.reject(r.reference, code="gdpr-17-3-e", viewer_ids=ids, actor="alice")
    assert all(code is None for _, code, _ in subjects(held))


def test_an_id_is_refused_once(held):
    r = request_three(held)
    held.desk.reject(r.reference, code="gdpr-17-3-e", viewer_ids=["viewer-00002"], actor="alice")
    with pytest.raises(InvalidTransitionError, match="already refused"):
        held.desk.reject(r.reference, code="gdpr-17-3-b", viewer_ids=["viewer-00002"], actor="alice")


def test_a_code_of_the_other_regulation_changes_nothing(held):
    r = request_three(held)
    with pytest.raises(UsageError, match="is a CCPA ground"):
        held.desk.reject(r.reference, code="ccpa-105-d-1", viewer_ids=["viewer-00002"], actor="alice")
    assert one_request(held).status == "awaiting_approval" and not events(held, "refused")


def test_refused_ids_are_not_suppressed(tmp_path, monkeypatch):
    w = make_world(tmp_path, monkeypatch, auto_approve=False, suppression=True)
    try:
        r = request_three(w)
        w.desk.reject(r.reference, code="gdpr-17-3-e", viewer_ids=["viewer-00002"], actor="alice")
        w.desk.approve(r.reference, actor="alice")
        listed = suppression_list(w.state, ["acme"])["acme"]
        key = w.config.audit_key()
        assert (1, audit.viewer_hmac(key, "acme", "viewer-00001")) in listed
        assert (1, audit.viewer_hmac(key, "acme", "viewer-00002")) not in listed
    finally:
        w.desk.close()
        w.state.close()


# ---------------------------------------------------------------- no letter can go

def test_rejecting_a_request_we_may_not_answer_tells_the_officer_to_write_another_way(world, letters):
    world.deliver(mail("someone@unknown.example", "Viewer ID: viewer-00001\n"))
    world.poll()
    r = one_request(world)
    assert r.status == "needs_review" and not r.reply_allowed
    outcome = world.desk.reject(r.reference, code="identity-not-verified", actor="alice")
    assert outcome.status == "rejected" and outcome.letter_sent is False
    (note,) = outcome.notes
    assert note.startswith("no letter was sent") and "tell the requester" in note
    assert outcome.to_json()["letter_sent"] is False and outcome.to_json()["notes"] == [note]
    assert world.replies() == []


# ---------------------------------------------------------------- the CLI


def cli(w: World, *args: str):
    path = w.root / "erasure.toml"
    if not path.exists():
        path.write_text(tomli_w.dumps(config_dict(w.root, auto_approve=False)))
    return CliRunner().invoke(app, ["--config", str(path), *[str(a) for a in args]], env={KEY_ENV: "test-key"})


@pytest.mark.parametrize(("args", "code", "words"), [
    ([], 2, "needs --code CODE or --reason TEXT"),
    (["--code", "other"], 2, "--code other needs --reason"),
    (["--code", "ccpa-105-d-3"], 2, "is a CCPA ground, but this request is made under the GDPR"),
    (["--code", "gdpr-17-3-z"], 2, "is not a refusal code"),
    (["--code", "gdpr-17-3-e", "--viewer-id", "viewer-00009"], 2, "not among the ids"),
    (["--code", "gdpr-17-3-e", "--viewer-id", "viewer-00002"], 1, "refused 1 of the 3 viewer ids"),
    (["--code", "gdpr-17-3-e"], 0, "rejected"),
    (["--reason", "The customer withdrew it."], 0, "rejected"),
    (["--code", "other", "--reason", "The customer withdrew it."], 0, "rejected"),
])
def test_cli_reject(held, args, code, words):
    r = request_three(held)
    result = cli(held, "requests", "reject", r.reference, "--actor", "alice", *args)
    assert result.exit_code == code, result.output
    assert words in result.output
    assert "Traceback" not in result.output


def test_cli_reject_json_and_show_give_the_per_id_decisions(held):
    r = request_three(held)
    result = cli(held, "requests", "reject", r.reference, "--code", "gdpr-17-3-e", "--viewer-id", "viewer-00002",
                 "--reason", "Evidence.", "--json")
    assert result.exit_code == 1, result.output  # awaiting approval still
    data = json.loads(result.output)
    assert data["status"] == "awaiting_approval" and data["letter_sent"] is None
    shown = json.loads(cli(held, "requests", "show", r.reference, "--json").output)
    assert shown["refused"] == [{"subject": "vi********02", "code": "gdpr-17-3-e", "citation": "Art. 17(3)(e) GDPR",
                                 "reason": "Evidence."}]
    assert shown["refusal_code"] is None
    text = cli(held, "requests", "show", r.reference).output
    assert "refused:    vi********02: gdpr-17-3-e (Art. 17(3)(e) GDPR): Evidence." in text
    assert "viewer-00002" not in text + result.output


def test_cli_reject_of_an_unanswerable_request_prints_the_notice(world):
    world.deliver(mail("someone@unknown.example", "Viewer ID: viewer-00001\n"))
    world.poll()
    r = one_request(world)
    result = cli(world, "requests", "reject", r.reference, "--code", "identity-not-verified")
    assert result.exit_code == 0, result.output
    assert "note: no letter was sent" in result.output and "another way" in result.output
    data = json.loads(cli(world, "requests", "show", r.reference, "--json").output)
    assert data["refusal_code"] == "identity-not-verified"


def test_cli_codes_lists_each_code_with_its_citation(world):
    result = cli(world, "requests", "codes")
    assert result.exit_code == 0
    for code, refusal in REFUSALS.items():
        assert f"{code}  ({refusal.title})" in result.output
    ccpa = cli(world, "requests", "codes", "--regulation", "ccpa", "--json")
    assert [r["code"] for r in json.loads(ccpa.output)] == [r.code for r in codes_for("ccpa")]
    assert "gdpr-17-3-a" not in cli(world, "requests", "codes", "--regulation", "ccpa").output
    assert cli(world, "requests", "codes", "--regulation", "lgpd").exit_code == 2


def test_reject_help_lists_the_codes():
    result = CliRunner().invoke(app, ["requests", "reject", "--help"], terminal_width=400)
    flat = " ".join(result.output.split())
    for code in REFUSALS:
        assert code in flat


# ---------------------------------------------------------------- end to end on every database


def test_a_partial_refusal_end_to_end(store_backend: str, store_url: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, letters):
    w = make_db_world(tmp_path, monkeypatch, _state_url(store_backend, store_url, tmp_path), store_url,
                      auto_approve=False)
    try:
        r = request_three(w)
        assert r.status == "awaiting_approval"
        w.desk.reject(r.reference, code="gdpr-17-3-e", viewer_ids=["viewer-00002"],
                      reason="Needed as evidence in a pending claim.", actor="alice")
        outcome = w.desk.approve(r.reference, actor="alice")
        assert outcome.status == "completed" and outcome.rows_erased == 2 * 6 * 4  # two viewers, 6 views, 3 events
        for env in ("env_acme_prod", "env_acme_dev"):
            assert count_views(store_url, env, "viewer-00002") == 3  # the refused id's views stay
            assert count_views(store_url, env, "viewer-00001") == 0
            assert count_views(store_url, env, "viewer-00003") == 0
        assert count_views(store_url, "env_globex", "viewer-00001") == 3
        kind, extra = letters[-1]
        assert kind == "completed"
        assert extra["refused"] == [{"id": "vi********02", "basis": REFUSALS["gdpr-17-3-e"].letter_text("gdpr"),
                                     "reason": "Needed as evidence in a pending claim."}]
        (event,) = events(w, "refused")
        data = json.loads(event.data)
        assert (data["code"], data["count"], data["partial"]) == ("gdpr-17-3-e", 1, True)
        assert data["viewer_hmacs"] == [audit.viewer_hmac(w.config.audit_key(), "acme", "viewer-00002")]
        assert event.actor == "alice" and event.reason == "Needed as evidence in a pending claim."
        with w.state.session() as session:
            dump = " ".join(f"{e.reason} {e.data}" for e in session.scalars(sa.select(AuditEvent)))
        assert "viewer-00002" not in dump
        shown = w.desk.find(r.reference).to_json()
        assert [(d["subject"], d["code"]) for d in shown["refused"]] == [("hmac:" + data["viewer_hmacs"][0][:12],
                                                                         "gdpr-17-3-e")]  # closed: raw ids gone
    finally:
        w.desk.close()
        w.state.close()


def test_audit_find_says_a_refused_id_was_kept(held):
    r = request_three(held)
    held.desk.reject(r.reference, code="gdpr-17-3-e", viewer_ids=["viewer-00002"], actor="alice")
    held.desk.approve(r.reference, actor="alice")
    kept = cli(held, "audit", "find", "--tenant", "acme", "--viewer-id", "viewer-00002")
    assert "was refused (gdpr-17-3-e): its views were kept" in kept.output
    erased = json.loads(cli(held, "audit", "find", "--tenant", "acme", "--viewer-id", "viewer-00001", "--json").output)
    assert [(f["status"], f["refused"]) for f in erased] == [("completed", None)]


def test_a_partial_refusal_of_a_request_we_may_not_answer_says_no_letter_will_go(world):
    world.deliver(mail("someone@unknown.example", "Viewer ID: viewer-00001\nViewer ID: viewer-00002\n"))
    world.poll()
    r = one_request(world)
    outcome = world.desk.reject(r.reference, code="gdpr-17-3-e", viewer_ids=["viewer-00001"], actor="alice")
    assert outcome.status == "needs_review" and outcome.letter_sent is None
    assert outcome.notes[1].startswith(f"no letter will be sent for {r.reference}")
