"""Every message in tests/emails/ against the one table of expected outcomes.

The table (tests/emails/expected.toml) is the behaviour we promise on real,
messy and hostile mail; adding a case is adding a file and a table entry.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from erasure.config import Config, config_from_dict
from erasure.parse import parse_message
from erasure.verify import REASONS, decide

EMAILS = Path(__file__).parent / "emails"
EXPECTED: dict[str, dict[str, Any]] = tomllib.loads((EMAILS / "expected.toml").read_text(encoding="utf-8"))
CORPUS_MAX_ATTACHMENT_BYTES = 64 * 1024  # small, so one modest file can exceed it


def corpus_config() -> Config:
    return config_from_dict(
        {
            "tenants": [
                {"name": "acme", "senders": ["@acme.example", "dpo@acme-group.example"], "environments": ["env_acme_prod"]},
                {"name": "globex", "senders": ["privacy@globex.example"], "environments": ["env_globex_prod"]},
            ],
            "policy": {"trusted_authserv_ids": ["mx.privacy.example"], "require_authentication": True,
                       "time_zone": "UTC"},
            "delivery": {"from_address": "privacy@privacy.example"},
        }
    )


def test_every_email_has_exactly_one_expected_outcome() -> None:
    files = {p.name for p in EMAILS.glob("*.eml")}
    assert files == set(EXPECTED), f"unlisted: {sorted(files - set(EXPECTED))}, missing files: {sorted(set(EXPECTED) - files)}"
    assert len(files) >= 40


def test_the_corpus_covers_every_outcome() -> None:
    assert {row["outcome"] for row in EXPECTED.values()} == {"erase", "review", "ignore"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_email_outcome(name: str) -> None:
    row = EXPECTED[name]
    config = corpus_config()
    message = parse_message((EMAILS / name).read_bytes(), max_attachment_bytes=CORPUS_MAX_ATTACHMENT_BYTES,
                            own_addresses=(config.delivery.from_address,))
    decision = decide(message, config)

    assert (decision.outcome, decision.reason_code) == (row["outcome"], row["reason_code"]), row["note"]
    assert decision.tenant == row.get("tenant")
    assert decision.reply_to == row.get("reply_to")
    assert decision.regulation == row.get("regulation", "gdpr")
    assert list(decision.viewer_ids) == row.get("viewer_ids", [])
    assert decision.reason.startswith(REASONS[decision.reason_code])
    if "subject" in row:
        assert message.subject == row["subject"]
    if "from_address" in row:
        assert message.from_address == row["from_address"]
    if "automatic" in row:
        assert message.automatic is not None and message.automatic.code == row["automatic"]
    for code in row.get("problems", []):
        assert code in {p.code for p in decision.problems}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_nothing_doubtful_is_erased_or_answered_unauthenticated(name: str) -> None:
    """Invariants over the whole corpus, whatever the table says."""
    config = corpus_config()
    message = parse_message((EMAILS / name).read_bytes(), max_attachment_bytes=CORPUS_MAX_ATTACHMENT_BYTES,
                            own_addresses=(config.delivery.from_address,))
    decision = decide(message, config)
    if decision.outcome == "erase":
        assert message.problems == () and message.automatic is None and decision.authenticated
        assert decision.viewer_ids and decision.tenant
    if decision.outcome == "ignore" or decision.reason_code in {"bad_from", "unknown_sender", "unauthenticated"}:
        assert decision.reply_to is None
    if decision.reply_to is not None:
        assert decision.reply_to == message.from_address
