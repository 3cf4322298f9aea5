"""Legal holds (issue 14): nothing a hold covers is erased; removing the hold lets the request go on.

The end-to-end tests run with the state database and the view store on real
SQLite, PostgreSQL and MariaDB (the ``db_world`` of tests/test_intake_hostile.py).
"""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import sqlalchemy as sa
import tomli_w
from typer.testing import CliRunner

from erasure import audit
from erasure.cli import app
from erasure.config import config_from_dict
from erasure.errors import (
    ConfigError,
    HoldNotFoundError,
    InvalidTransitionError,
    RequestHeldError,
    StoreUnavailableError,
    UsageError,
)
from erasure.holds import SubjectKey, covers, parse_hold_ref
from erasure.models import AuditEvent, ErasureRequest, LegalHold, OutboxMessage
from erasure.status import status
from erasure.workflow import Desk
from tests.test_intake_hostile import db_world  # noqa: F401 - every state database, as a fixture
from tests.world import KEY_ENV, NOW, World, config_dict, count_views, mail, make_world, shown_events

ACME = "dpo@acme.example"
GLOBEX = "privacy@globex.example"
KEY1, KEY2 = b"key-one", b"key-two"


# ---------------------------------------------------------------- matching (pure)


@dataclasses.dataclass(frozen=True)
class Hold:
    tenant: str
    viewer_hmac: str | None = None
    key_version: int | None = None


def viewer_hold(tenant: str, viewer_id: str, key: bytes = KEY1, version: int = 1) -> Hold:
    return Hold(tenant, audit.viewer_hmac(key, tenant, viewer_id), version)


def subject(tenant: str, viewer_id: str | None, key: bytes = KEY1, version: int = 1, *, raw: str | None = None) -> SubjectKey:
    """A subject hashed under ``key``; ``viewer_id`` None: a closed request's (the raw id dropped)."""
    return SubjectKey(viewer_id, audit.viewer_hmac(key, tenant, raw or viewer_id or ""), version)


COVERS = [
    # what the hold is,                       request tenant, its subjects,                               keys,              covered?
    ("tenant hold, same tenant",   Hold("acme"), "acme", [subject("acme", "v-1")], {1: KEY1}, True),
    ("tenant hold, no subjects",   Hold("acme"), "acme", [], {1: KEY1}, True),
    ("tenant hold, other tenant",  Hold("acme"), "globex", [subject("globex", "v-1")], {1: KEY1}, False),
    ("no tenant yet",              Hold("acme"), None, [subject("", "v-1")], {1: KEY1}, False),
    ("viewer hold, that viewer",   viewer_hold("acme", "v-1"), "acme", [subject("acme", "v-2"), subject("acme", "v-1")], {1: KEY1}, True),
    ("viewer hold, other viewer",  viewer_hold("acme", "v-1"), "acme", [subject("acme", "v-2")], {1: KEY1}, False),
    ("near miss: case",            viewer_hold("acme", "v-1"), "acme", [subject("acme", "V-1")], {1: KEY1}, False),
    ("near miss: space",           viewer_hold("acme", "v-1"), "acme", [subject("acme", "v-1 ")], {1: KEY1}, False),
    ("same raw id, other tenant",  viewer_hold("globex", "v-1"), "acme", [subject("acme", "v-1")], {1: KEY1}, False),
    ("other tenant's HMAC in the tenant's hold",
     Hold("acme", audit.viewer_hmac(KEY1, "globex", "v-1"), 1), "acme", [subject("acme", "v-1")], {1: KEY1}, False),
    ("rotated: hold v1, subject v2, v1 key known",
     viewer_hold("acme", "v-1"), "acme", [subject("acme", "v-1", KEY2, 2)], {1: KEY1, 2: KEY2}, True),
    ("rotated: hold v2, subject v1, v2 key known",
     viewer_hold("acme", "v-1", KEY2, 2), "acme", [subject("acme", "v-1")], {1: KEY1, 2: KEY2}, True),
    ("rotated: other viewer",
     viewer_hold("acme", "v-1"), "acme", [subject("acme", "v-9", KEY2, 2)], {1: KEY1, 2: KEY2}, False),
    ("rotated: hold's key not available",
     viewer_hold("acme", "v-1"), "acme", [subject("acme", "v-1", KEY2, 2)], {2: KEY2}, None),
    ("rotated: raw id already dropped",
     viewer_hold("acme", "v-1"), "acme", [subject("acme", None, KEY2, 2, raw="v-1")], {1: KEY1, 2: KEY2}, None),
    ("a match wins over an unknown",
     viewer_hold("acme", "v-1"), "acme", [subject("acme", None, KEY2, 2, raw="x"), subject("acme", "v-1")], {}, True),
]


@pytest.mark.parametrize(("hold", "tenant", "subjects", "keys", "expected"), [c[1:] for c in COVERS],
                         ids=[c[0] for c in COVERS])
def test_which_requests_a_hold_covers(hold, tenant, subjects, keys, expected):
    assert covers(hold, tenant, subjects, keys) is expected


@pytest.mark.parametrize(("text", "expected"), [
    ("LH-3", 3), ("lh-3", 3), ("3", 3), (" LH-12 ", 12),
    ("LH-", None), ("H-3", None), ("LH-3a", None), ("LH--3", None), ("", None), ("٣", None), ("LH-" + "9" * 13, None),
])
def test_hold_ids_as_officers_type_them(text, expected):
    assert parse_hold_ref(text) == expected


# ---------------------------------------------------------------- worlds


def store_views(w: World, env: str, viewer: str) -> int:
    url = w.config.store.url if "sqlite" not in w.config.store.url else f"sqlite:///{w.root / 'views.db'}"
    return count_views(url, env, viewer)


def requests(w: World) -> list[ErasureRequest]:
    with w.state.session() as session:
        return list(session.scalars(sa.select(ErasureRequest).order_by(ErasureRequest.id)))


def only(w: World) -> ErasureRequest:
    (r,) = requests(w)
    return r


def reply_kinds(w: World, r: ErasureRequest) -> list[str]:
    with w.state.session() as session:
        return list(session.scalars(sa.select(OutboxMessage.kind).where(OutboxMessage.request_id == r.id)
                                    .order_by(OutboxMessage.id)))


def events(w: World, name: str) -> list[AuditEvent]:
    return shown_events(w, name)


def request_mail(w: World, *viewers: str, sender: str = ACME) -> None:
    w.deliver(mail(sender, "Please erase:\n" + "".join(f"Viewer ID: {v}\n" for v in viewers)))
    w.poll()


def with_config(w: World, data: dict) -> World:
    """The same state and store under another config (e.g. after a key rotation)."""
    config = config_from_dict(data, base_dir=w.root)
    return dataclasses.replace(w, config=config, desk=Desk(config, w.state, now=lambda: NOW))


# ---------------------------------------------------------------- end to end, on every database


def test_a_hold_keeps_the_views_and_removing_it_erases_them(db_world: World):
    w = db_world
    hold = w.desk.add_hold(tenant="acme", reason="Litigation hold, case 24-cv-1234", actor="counsel")
    request_mail(w, "viewer-00001")
    r = only(w)
    assert (r.status, r.reason_code, r.held_from) == ("awaiting_approval", "legal_hold", "received")
    assert hold.ref in r.reason and "Litigation hold, case 24-cv-1234" in r.reason
    assert store_views(w, "env_acme_prod", "viewer-00001") + store_views(w, "env_acme_dev", "viewer-00001") == 6
    assert reply_kinds(w, r) == ["acknowledgement"]  # receipt and due date, as for any open request; no word of a hold
    (held,) = events(w, "held")
    assert held.request_ref == r.reference and json.loads(held.data)["holds"] == [hold.ref]

    w.poll()  # polling again changes nothing while the hold is active
    assert only(w).status == "awaiting_approval"

    removal = w.desk.remove_hold(hold.ref, reason="Case settled", actor="counsel")
    assert [o.status for o in removal.released] == ["completed"]
    r = only(w)
    assert (r.status, r.reason_code, r.held_from, r.rows_erased) == ("completed", "hold_released", None, 24)
    assert store_views(w, "env_acme_prod", "viewer-00001") + store_views(w, "env_acme_dev", "viewer-00001") == 0
    assert store_views(w, "env_globex", "viewer-00001") == 3
    assert reply_kinds(w, r) == ["acknowledgement", "completed"]
    (released,) = events(w, "released")
    assert released.actor == "counsel" and "Case settled" in released.reason
    with w.state.session() as session:
        assert audit.verify(session).ok


def test_a_hold_stops_an_erasure_that_failed_for_now_and_removing_it_resumes_it(
        db_world: World, monkeypatch: pytest.MonkeyPatch):
    """`erasing` but not erased yet (the store was unreachable): the next run finds the hold first."""
    w = db_world
    monkeypatch.setattr(w.desk.stores["default"], "erase_many",
                        lambda targets: [StoreUnavailableError("the store is down") for _ in targets])
    request_mail(w, "viewer-00002")
    assert only(w).status == "erasing"
    monkeypatch.undo()
    monkeypatch.setenv(KEY_ENV, "test-key")
    hold = w.desk.add_hold(tenant="acme", viewer_id="viewer-00002", reason="Regulator's preservation request")
    w.poll()
    r = only(w)
    assert (r.status, r.reason_code, r.held_from) == ("awaiting_approval", "legal_hold", "erasing")
    assert store_views(w, "env_acme_prod", "viewer-00002") == 3
    match_count = r.match_count

    removal = w.desk.remove_hold(hold.ref, reason="Investigation closed")
    r = only(w)
    assert [o.status for o in removal.released] == ["completed"]
    assert (r.status, r.rows_erased, r.match_count) == ("completed", match_count, match_count)
    assert [e.event for e in events(w, "released")] == ["released"]
    assert store_views(w, "env_acme_prod", "viewer-00002") == 0
    with w.state.session() as session:  # resumed straight into erasing: not classified a second time
        assert session.scalar(sa.select(sa.func.count()).where(AuditEvent.event == "verified")) == 1


def test_a_viewer_hold_covers_only_requests_naming_that_viewer(db_world: World):
    w = db_world
    w.desk.add_hold(tenant="acme", viewer_id="viewer-00003", reason="Subpoena")
    request_mail(w, "viewer-00004")
    request_mail(w, "viewer-00005", "viewer-00003")  # one held viewer holds the whole request
    first, second = requests(w)
    assert first.status == "completed" and store_views(w, "env_acme_prod", "viewer-00004") == 0
    assert (second.status, second.reason_code) == ("awaiting_approval", "legal_hold")
    assert store_views(w, "env_acme_prod", "viewer-00005") == 3


def test_a_hold_on_another_tenants_viewer_with_the_same_id_does_not_block(db_world: World):
    w = db_world
    w.desk.add_hold(tenant="globex", viewer_id="viewer-00001", reason="Globex litigation")
    w.desk.add_hold(tenant="globex", reason="Globex litigation, everything")
    request_mail(w, "viewer-00001")
    assert only(w).status == "completed"
    assert store_views(w, "env_acme_prod", "viewer-00001") == 0
    assert store_views(w, "env_globex", "viewer-00001") == 3


def test_approve_is_refused_while_held_naming_the_hold(db_world: World):
    w = db_world
    w.desk.add_manual(tenant="acme", viewer_ids=["viewer-00006"], actor="alice")  # erased: no hold yet
    hold = w.desk.add_hold(tenant="acme", reason="Litigation hold")
    held = w.desk.add_manual(tenant="acme", viewer_ids=["viewer-00007"], actor="alice")
    assert (held.status, held.reason_code) == ("awaiting_approval", "legal_hold")
    for attempt in (lambda: w.desk.approve(held.reference, actor="bob"),
                    lambda: w.desk.preview_approval(held.reference)):
        with pytest.raises(RequestHeldError, match=rf"held by legal hold {hold.ref} .*Litigation hold.*"
                                                   rf"remove it first with `erasure holds remove {hold.ref}"):
            attempt()
    assert w.desk.find(held.reference).summary.status == "awaiting_approval"
    assert store_views(w, "env_acme_prod", "viewer-00007") == 3
    assert not events(w, "approved")


def test_a_review_case_approved_for_a_held_tenant_is_refused(db_world: World):
    w = db_world
    request_mail(w, "viewer-00008", sender="someone@unknown.example")
    r = only(w)
    assert r.status == "needs_review"
    w.desk.add_hold(tenant="globex", reason="Globex litigation")
    with pytest.raises(RequestHeldError):
        w.desk.approve(r.reference, actor="bob", tenant="globex")
    assert only(w).tenant is None  # the approval's tenant change was rolled back with it
    w.desk.approve(r.reference, actor="bob", tenant="acme")
    assert only(w).status == "completed"


# ---------------------------------------------------------------- several holds, release, poll


def test_a_request_held_by_two_holds_waits_for_both(world: World):
    a = world.desk.add_hold(tenant="acme", reason="Case A")
    b = world.desk.add_hold(tenant="acme", viewer_id="viewer-00001", reason="Case B")
    request_mail(world, "viewer-00001")
    assert a.ref in only(world).reason and b.ref in only(world).reason
    removal = world.desk.remove_hold(a.ref, reason="A settled")
    assert removal.released == () and removal.still_held == (only(world).reference,)
    r = only(world)
    assert r.status == "awaiting_approval" and a.ref not in r.reason and "Case B" in r.reason
    world.desk.remove_hold(b.ref, reason="B settled")
    assert only(world).status == "completed"


def test_a_released_request_goes_through_the_threshold_again(tmp_path, monkeypatch):
    w = make_world(tmp_path, monkeypatch, auto_approve_max_views=1)
    try:
        hold = w.desk.add_hold(tenant="acme", reason="Case")
        request_mail(w, "viewer-00001")
        removal = w.desk.remove_hold(hold.ref, reason="Ended")
        assert removal.needs_attention and [o.status for o in removal.released] == ["awaiting_approval"]
        r = only(w)
        assert r.reason_code == "hold_released" and r.match_count == 24
        assert w.desk.approve(r.reference, actor="alice").status == "completed"
    finally:
        w.desk.close()
        w.state.close()


def test_removing_a_hold_while_the_store_is_down_leaves_the_request_for_the_next_poll(
        world: World, monkeypatch: pytest.MonkeyPatch):
    hold = world.desk.add_hold(tenant="acme", reason="Case")
    request_mail(world, "viewer-00001")
    monkeypatch.setattr(world.desk.stores, "count", lambda target: (_ for _ in ()).throw(StoreUnavailableError("down")))
    removal = world.desk.remove_hold(hold.ref, reason="Ended")
    assert removal.needs_attention and "the next `erasure poll` retries it" in removal.problems[0]
    assert only(world).status == "received"
    monkeypatch.undo()
    monkeypatch.setenv(KEY_ENV, "test-key")
    world.poll()
    assert only(world).status == "completed"


def test_a_hold_is_added_and_removed_once_with_its_events(world: World):
    hold = world.desk.add_hold(tenant="acme", viewer_id="viewer-00001", reason="Keep viewer-00001 for case 7",
                               actor="counsel")
    added, = events(world, "hold_added")
    data = json.loads(added.data)
    assert (added.tenant, added.actor, data["hold"], data["scope"]) == ("acme", "counsel", hold.ref, "viewer")
    assert data["viewer_hmac"] == audit.viewer_hmac(b"test-key", "acme", "viewer-00001") and data["key_version"] == 1
    assert "viewer-00001" not in added.reason and "viewer-00001" not in hold.reason  # masked in the reason too
    with world.state.session() as session:
        row = session.get(LegalHold, hold.id)
        assert "viewer-00001" not in json.dumps([row.tenant, row.viewer_hmac, row.reason])
    world.desk.remove_hold(hold.ref, reason="Released by counsel", actor="counsel")
    removed, = events(world, "hold_removed")
    assert json.loads(removed.data)["hold"] == hold.ref and removed.reason == "Released by counsel"
    with pytest.raises(InvalidTransitionError, match=rf"{hold.ref} was already removed on 2026-11-02 by counsel"):
        world.desk.remove_hold(hold.ref, reason="again")
    assert [h.ref for h in world.desk.list_holds()] == []
    (listed,) = world.desk.list_holds(include_released=True)
    assert (listed.active, listed.released_by, listed.release_reason) == (False, "counsel", "Released by counsel")


@pytest.mark.parametrize(("call", "error", "message"), [
    (dict(tenant="initech", reason="x"), ConfigError, "no tenant named 'initech' in \\[\\[tenants\\]\\] \\(known: acme, globex\\)"),
    (dict(tenant="acme", reason="  "), UsageError, "a legal hold needs --reason"),
    (dict(tenant="acme", reason="x", viewer_id="a b"), UsageError, "--viewer-id: .*exactly as the customer's records"),
    (dict(tenant="acme", reason="x", viewer_id="  "), UsageError, "--viewer-id: the viewer id is empty"),
])
def test_a_hold_that_cannot_be_added_says_why(world: World, call, error, message):
    with pytest.raises(error, match=message):
        world.desk.add_hold(**call)
    assert world.desk.list_holds(include_released=True) == []


@pytest.mark.parametrize(("ref", "reason", "error", "message"), [
    ("LH-99", "ended", HoldNotFoundError, "no legal hold 'LH-99'; `erasure holds list --all`"),
    ("acme", "ended", HoldNotFoundError, "no legal hold 'acme'"),
    ("LH-1", "", UsageError, "removing a legal hold needs --reason"),
])
def test_a_hold_that_cannot_be_removed_says_why(world: World, ref, reason, error, message):
    world.desk.add_hold(tenant="acme", reason="Case")
    with pytest.raises(error, match=message):
        world.desk.remove_hold(ref, reason=reason)
    assert len(world.desk.list_holds()) == 1


# ---------------------------------------------------------------- key rotation


def rotated(w: World, *, retired_env: str) -> dict:
    data = config_dict(w.root)
    data["audit"] = {"hmac_key_env": "ERASURE_TEST_AUDIT_KEY_V2", "key_version": 2,
                     "retired_keys": [{"version": 1, "env": retired_env}]}
    return data


def test_a_hold_made_before_a_key_rotation_still_covers_its_viewer(world: World, monkeypatch: pytest.MonkeyPatch):
    hold = world.desk.add_hold(tenant="acme", viewer_id="viewer-00001", reason="Case")  # key version 1
    monkeypatch.setenv("ERASURE_TEST_AUDIT_KEY_V2", "the-new-key")
    w = with_config(world, rotated(world, retired_env=KEY_ENV))  # version 1's key is still available
    request_mail(w, "viewer-00002")
    request_mail(w, "viewer-00001")
    first, second = requests(w)
    assert first.status == "completed"
    assert (second.status, second.reason_code) == ("awaiting_approval", "legal_hold") and hold.ref in second.reason
    assert w.desk.list_holds()[0].holding == (second.reference,)
    w.desk.remove_hold(hold.ref, reason="Ended")
    assert requests(w)[1].status == "completed"


def test_a_hold_whose_key_is_gone_holds_what_it_may_cover_until_the_key_is_back(
        world: World, monkeypatch: pytest.MonkeyPatch):
    world.desk.add_hold(tenant="acme", viewer_id="viewer-00001", reason="Case")  # key version 1
    monkeypatch.setenv("ERASURE_TEST_AUDIT_KEY_V2", "the-new-key")
    w = with_config(world, rotated(world, retired_env="ERASURE_TEST_AUDIT_KEY_V1_UNSET"))
    request_mail(w, "viewer-00002")  # another viewer, but the hold cannot be compared without its key
    r = only(w)
    assert (r.status, r.reason_code) == ("awaiting_approval", "legal_hold")
    assert "made under audit key version 1, which is not available (list it in audit.retired_keys)" in r.reason
    assert store_views(w, "env_acme_prod", "viewer-00002") == 3
    monkeypatch.setenv("ERASURE_TEST_AUDIT_KEY_V1_UNSET", "test-key")  # the retired key is configured again
    w.poll()  # the next poll compares, finds another viewer, and lets the request go on
    r = only(w)
    assert (r.status, r.reason_code) == ("completed", "hold_released")
    assert store_views(w, "env_acme_prod", "viewer-00002") == 0


# ---------------------------------------------------------------- the officer's screens


def test_status_and_requests_show_name_the_holds(world: World):
    tenant_hold = world.desk.add_hold(tenant="acme", reason="Case A")
    viewer_hold = world.desk.add_hold(tenant="globex", viewer_id="viewer-00001", reason="Case G")
    request_mail(world, "viewer-00001")
    request_mail(world, "viewer-00001", sender=GLOBEX)
    request_mail(world, "viewer-00002", sender=GLOBEX)
    acme, globex, other = requests(world)
    assert other.status == "completed"
    with world.state.session() as session:
        report = status(session, today=NOW.date(), config=world.config, now=NOW)
    assert [(h.ref, h.holding) for h in report.legal_holds] == [
        (tenant_hold.ref, (acme.reference,)), (viewer_hold.ref, (globex.reference,))]
    text = report.text()
    assert "legal holds: 2" in text
    assert f"{tenant_hold.ref}  every request of tenant acme  holding 1 request(s) ({acme.reference}): Case A" in text
    assert f"{viewer_hold.ref}  viewer hmac:" in text
    assert report.to_json()["legal_holds"][1]["holding"] == [globex.reference]
    shown = world.desk.find(globex.reference).to_json()
    assert shown["holds"] == [{"id": viewer_hold.ref, "scope": viewer_hold.scope, "reason": "Case G"}]
    assert world.desk.find(other.reference).to_json()["holds"] == []


def test_poll_dry_run_says_a_request_would_be_held(world: World):
    world.desk.add_hold(tenant="acme", reason="Case")
    world.deliver(mail(ACME, "Viewer ID: viewer-00001\n"))
    result = world.poll(dry_run=True)
    (o,) = result.outcomes
    assert (o.status, o.reason_code) == ("awaiting_approval", "legal_hold")
    assert requests(world) == []


# ---------------------------------------------------------------- the CLI


def cli(w: World, *args: str, data: dict | None = None):
    toml = w.root / "erasure.toml"
    toml.write_text(tomli_w.dumps(data or config_dict(w.root)))
    return CliRunner().invoke(app, ["--config", str(toml), *args], env={KEY_ENV: "test-key"})


def test_cli_add_list_remove(world: World):
    result = cli(world, "holds", "add", "--tenant", "acme", "--viewer-id", "viewer-00001", "--reason", "Case 7",
                 "--actor", "counsel")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("LH-1: legal hold on viewer hmac:") and "holding 0 open request(s)" in result.output
    assert "viewer-00001" not in result.output
    request_mail(world, "viewer-00001")
    ref = only(world).reference

    result = cli(world, "holds", "list")
    assert result.exit_code == 0 and "LH-1" in result.output and "Case 7" in result.output and "counsel" in result.output
    (listed,) = json.loads(cli(world, "holds", "list", "--json").output)
    assert (listed["id"], listed["scope"], listed["active"], listed["holding"]) == ("LH-1", "viewer", True, [ref])

    shown = cli(world, "requests", "show", ref)
    assert "reason:     legal_hold: Held by legal hold LH-1" in shown.output
    assert "held:       LH-1 on viewer hmac:" in shown.output

    refused = cli(world, "requests", "approve", ref)
    assert refused.exit_code == 2 and "remove it first with `erasure holds remove LH-1" in refused.output

    result = cli(world, "holds", "remove", "lh-1", "--reason", "Case closed")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["LH-1 removed; 1 request(s) released, 0 still held by other holds",
                                          f"  {ref}: completed (24 rows erased)"]
    assert reply_kinds(world, only(world)) == ["acknowledgement", "completed"]
    assert cli(world, "holds", "list").output.strip() == "no active legal holds"
    assert re.search(r"LH-1 .* removed \d{4}-\d\d-\d\d by \S+ +Case 7", cli(world, "holds", "list", "--all").output)


@pytest.mark.parametrize(("args", "message"), [
    (("holds", "add", "--tenant", "initech", "--reason", "x"), "error: no tenant named 'initech' in [[tenants]]"),
    (("holds", "add", "--tenant", "acme", "--reason", ""), "error: a legal hold needs --reason"),
    (("holds", "remove", "LH-7", "--reason", "x"), "error: no legal hold 'LH-7'; `erasure holds list --all`"),
    (("holds", "remove", "LH-7", "--reason", " "), "error: removing a legal hold needs --reason"),
])
def test_cli_errors_name_the_fix_and_exit_2(world: World, args, message):
    result = cli(world, *args)
    assert result.exit_code == 2
    assert message in result.output


def test_cli_remove_twice_says_it_was_already_removed(world: World):
    assert cli(world, "holds", "add", "--tenant", "acme", "--reason", "Case").exit_code == 0
    assert cli(world, "holds", "remove", "LH-1", "--reason", "Ended").exit_code == 0
    again = cli(world, "holds", "remove", "LH-1", "--reason", "Ended")
    assert again.exit_code == 2 and "LH-1 was already removed" in again.output


def test_cli_status_lists_the_active_holds(world: World):
    cli(world, "holds", "add", "--tenant", "globex", "--reason", "Case G")
    out = cli(world, "status", "--json")
    assert [h["id"] for h in json.loads(out.output)["legal_holds"]] == ["LH-1"]


# ---------------------------------------------------------------- the suppression sweep


def test_the_suppression_sweep_leaves_what_a_hold_covers(tmp_path, monkeypatch):
    from tests.test_suppression import add_views, erase_by_mail, run_sweep

    w = make_world(tmp_path, monkeypatch, suppression=True)
    try:
        for sender, viewer in ((ACME, "viewer-00001"), (ACME, "viewer-00002"), (GLOBEX, "viewer-00001")):
            erase_by_mail(w, sender, viewer)
        for env, viewer in (("env_acme_prod", "viewer-00001"), ("env_acme_prod", "viewer-00002"),
                            ("env_globex", "viewer-00001")):
            add_views(w, env, viewer)  # the SDK sent more views under the erased ids
        viewer_hold = w.desk.add_hold(tenant="acme", viewer_id="viewer-00001", reason="Case A")
        tenant_hold = w.desk.add_hold(tenant="globex", reason="Case G")
        result = run_sweep(w)
        assert w.views("env_acme_prod", "viewer-00001") == 1  # held
        assert w.views("env_acme_prod", "viewer-00002") == 0  # not held: swept
        assert w.views("env_globex", "viewer-00001") == 1  # the whole tenant is held
        acme, globex = result.tenants["acme"], result.tenants["globex"]
        assert (acme.held, acme.ids_held, acme.ids_matched) == ((viewer_hold.ref,), 1, 1)
        assert (globex.held, globex.total) == ((tenant_hold.ref,), 0)
        (event,) = events(w, "suppression_sweep")
        assert json.loads(event.data)["tenants"]["acme"]["held_by"] == [viewer_hold.ref]
    finally:
        w.desk.close()
        w.state.close()


def test_a_review_case_recorded_before_a_rotation_and_approved_after_it_is_still_held(
        world: World, monkeypatch: pytest.MonkeyPatch):
    """Approving with --tenant hashes the ids again, under the current key and its version."""
    request_mail(world, "viewer-00001", sender="someone@unknown.example")  # key version 1, no tenant yet
    hold = world.desk.add_hold(tenant="acme", viewer_id="viewer-00001", reason="Case")  # key version 1
    monkeypatch.setenv("ERASURE_TEST_AUDIT_KEY_V2", "the-new-key")
    w = with_config(world, rotated(world, retired_env=KEY_ENV))
    with pytest.raises(RequestHeldError, match=hold.ref):
        w.desk.approve(only(w).reference, actor="bob", tenant="acme")
    with w.state.session() as session:  # refused: nothing changed, the subjects included
        assert [s.key_version for s in session.get(ErasureRequest, only(w).id).subjects] == [1]
