"""Real-world automatic mail (tests/emails_automatic/): never answered, never acted on.

The messages are bounces, auto-replies, complaint reports and list notices
collected by others (see that folder's README for origin and licence). The
worst case is assumed: every sender is a known tenant and authentication is
off, so nothing but the recognition of automatic mail stands between such a
message and an answer (a mail loop) or an erasure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from erasure.config import Config, config_from_dict
from erasure.models import ErasureRequest, MailboxMessage, OutboxMessage
from erasure.parse import parse_message
from erasure.verify import decide, tenants_for
from tests.world import World, config_dict, mail, make_world

CORPUS = Path(__file__).parent / "emails_automatic"
AUTOMATIC = sorted((CORPUS / "sisimai").glob("*.eml")) + sorted((CORPUS / "flufl").glob("*.txt"))
#: Real messages that are not ignored, on purpose (README: "sent to a person").
NOT_IGNORED = {
    # A Japanese carrier's error notice from no-reply@, no report structure, no
    # phrase we read: only its returned message says "machine". A person decides,
    # and nothing is sent to it.
    "lhost-kddi-01.eml": ("review", "not_erasure", False),
    # A person forwarding a bounce inline ("Fwd: Returned mail: ..."): a person's
    # mail, read and acknowledged like any other.
    "lhost-sendmail-14.eml": ("review", "not_erasure", True),
    # flufl.bounce's own false-positive guard: a hotel's reply, written by a person.
    "groupwise_03.txt": ("review", "not_erasure", True),
    # "RE: ...: non remis" from an ordinary address: a bounce-like auto-reply that
    # only flufl.bounce recognises; alone that is doubt, so a person decides.
    "simple_20.txt": ("review", "not_erasure", False),
}


def _domains(paths: list[Path]) -> list[str]:
    found = set()
    for path in paths:
        address = parse_message(path.read_bytes()).from_address
        if address is not None:
            found.add(address.rpartition("@")[2].lower())
    return sorted(found)


ALL = [*AUTOMATIC, *(CORPUS / "review" / name for name in NOT_IGNORED)]
DOMAINS = _domains(ALL)


def everyone_is_a_tenant(base: dict) -> dict:
    """The corpus's every From domain belongs to one tenant, and From is trusted as written."""
    base["tenants"] = [{"name": "acme", "senders": [f"@{d}" for d in DOMAINS], "environments": ["env_acme_prod"]}]
    base["policy"] = {**base["policy"], "require_authentication": False}
    return base


def corpus_config(tmp_path: Path) -> Config:
    return config_from_dict(everyone_is_a_tenant(config_dict(tmp_path)), base_dir=tmp_path)


def test_the_corpus_is_large_and_documented() -> None:
    assert len(AUTOMATIC) >= 200
    assert (CORPUS / "README.md").is_file()
    assert (CORPUS / "sisimai" / "LICENSE").is_file() and (CORPUS / "flufl" / "LICENSE").is_file()
    assert sum(p.stat().st_size for p in CORPUS.rglob("*")) < 5 * 1024 * 1024
    assert all((CORPUS / "review" / name).is_file() for name in NOT_IGNORED)


@pytest.mark.parametrize("path", AUTOMATIC, ids=[p.name for p in AUTOMATIC])
def test_every_real_automatic_message_is_ignored_even_from_a_tenant(path: Path, tmp_path: Path) -> None:
    message = parse_message(path.read_bytes())
    config = corpus_config(tmp_path)
    if message.from_address is not None:  # the worst case really is set up
        assert [t.name for t in tenants_for(message.from_address, config.tenants)] == ["acme"]
    decision = decide(message, config)
    assert message.automatic is not None, path.name
    assert (decision.outcome, decision.reason_code, decision.reply_to) == ("ignore", "automatic_mail", None)


@pytest.mark.parametrize("name", sorted(NOT_IGNORED))
def test_the_few_not_recognised_go_to_a_person(name: str, tmp_path: Path) -> None:
    message = parse_message((CORPUS / "review" / name).read_bytes())
    decision = decide(message, corpus_config(tmp_path))
    outcome, reason_code, answered = NOT_IGNORED[name]
    assert (decision.outcome, decision.reason_code) == (outcome, reason_code)
    assert (decision.reply_to is not None) is answered
    assert ("maybe_automatic" in {p.code for p in decision.problems}) is not answered


@pytest.fixture
def corpus_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import tests.world as world_module

    monkeypatch.setattr(world_module, "config_dict", lambda tmp, **policy: everyone_is_a_tenant(config_dict(tmp, **policy)))
    w = make_world(tmp_path, monkeypatch)
    yield w
    w.desk.close()
    w.state.close()


def test_a_real_maildir_poll_records_each_once_and_answers_none(corpus_world: World) -> None:
    """Through the whole pipeline: one record per message, no crash, not one letter."""
    for i, path in enumerate(AUTOMATIC):
        corpus_world.deliver(path.read_bytes(), name=f"{i:04d}.{path.parent.name}.{path.stem}")
    result = corpus_world.poll()
    assert (result.fetched, result.duplicates, result.quarantined, result.problems) == (len(AUTOMATIC), 0, 0, [])
    assert corpus_world.replies() == []
    with corpus_world.state.session() as session:
        requests = session.scalars(sa.select(ErasureRequest)).all()
        assert len(requests) == len(AUTOMATIC)
        assert {(r.status, r.reason_code, r.reply_allowed) for r in requests} == {("ignored", "automatic_mail", False)}
        assert session.scalar(sa.select(sa.func.count()).select_from(MailboxMessage)) == len(AUTOMATIC)
        assert session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0
    assert not list((corpus_world.maildir / "new").iterdir())
    # A second poll finds nothing new: each message was taken exactly once.
    again = corpus_world.poll()
    assert (again.fetched, again.outcomes) == (0, [])


def test_the_tenant_really_is_every_sender(corpus_world: World) -> None:
    """Guard for the test above: a person's request from a corpus domain would be erased and answered."""
    domain = DOMAINS[0]
    corpus_world.deliver(mail(f"dpo@{domain}", "Please erase.\nViewer ID: viewer-00001\n", authenticated=False))
    corpus_world.poll()
    with corpus_world.state.session() as session:
        (request,) = session.scalars(sa.select(ErasureRequest)).all()
        assert (request.tenant, request.status, request.reason_code) == ("acme", "completed", "ok")
    assert len(corpus_world.replies()) == 1
