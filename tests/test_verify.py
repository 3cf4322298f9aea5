"""decide(): who may have data erased, in which order the rules apply, and whom we answer."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

import erasure.parse
import erasure.verify
from erasure.config import Config, config_from_dict
from erasure.parse import ParsedMessage, Problem, parse_message
from erasure.verify import REASONS, authentication, decide, sender_matches

TRUSTED = "mx.privacy.example"
PASS = f"{TRUSTED}; dkim=pass header.d=acme.example; spf=pass smtp.mailfrom=acme.example; dmarc=pass header.from=acme.example"


def config(**policy: Any) -> Config:
    return config_from_dict(
        {
            "tenants": [
                {"name": "acme", "senders": ["@acme.example", "dpo@acme-group.example"], "environments": ["env_acme_prod"]},
                {"name": "globex", "senders": ["privacy@globex.example"], "environments": ["env_globex_prod", "env_globex_eu"]},
            ],
            "policy": {"trusted_authserv_ids": [TRUSTED], "time_zone": "UTC", **policy},
            "delivery": {"from_address": "privacy@privacy.example"},
        }
    )


BASE = parse_message(
    b"From: Alice <privacy@acme.example>\nSubject: GDPR erasure request\nMessage-ID: <m@acme.example>\n\n"
    b"Please erase.\nViewer ID: v-1\n"
)


def message(**changes: Any) -> ParsedMessage:
    """A clean, authenticated erasure request for acme, with the given fields changed."""
    changes.setdefault("auth_results", (PASS,))
    return dataclasses.replace(BASE, **changes)


def test_clean_request_is_erased_and_answered_to_from() -> None:
    decision = decide(message(), config())
    assert (decision.outcome, decision.reason_code) == ("erase", "ok")
    assert decision.tenant == "acme"
    assert decision.viewer_ids == ("v-1",)
    assert decision.reply_to == "privacy@acme.example"
    assert decision.regulation == "gdpr"
    assert decision.authenticated


# ---------------------------------------------------------------- order of the rules


def test_automatic_mail_is_ignored_even_unauthenticated_and_unknown() -> None:
    auto = Problem("auto_submitted", "Auto-Submitted: auto-replied")
    decision = decide(message(automatic=auto, from_address="x@unknown.example", auth_results=()), config())
    assert (decision.outcome, decision.reason_code, decision.reply_to) == ("ignore", "automatic_mail", None)
    assert auto in decision.problems
    assert decision.viewer_ids == ()


def test_automatic_mail_is_ignored_even_with_a_bad_from() -> None:
    decision = decide(message(automatic=Problem("bulk_mail", "Precedence: bulk"), from_address=None,
                              from_problem=Problem("from_multiple", "two")), config())
    assert decision.outcome == "ignore"


@pytest.mark.parametrize("address", ["privacy@privacy.example", "Privacy@PRIVACY.example"])
def test_mail_from_our_own_address_is_ignored(address: str) -> None:
    decision = decide(message(from_address=address), config())
    assert (decision.outcome, decision.reason_code, decision.reply_to) == ("ignore", "own_address", None)


def test_bad_from_goes_to_review_unanswered() -> None:
    problem = Problem("from_invalid", "not one plain address")
    decision = decide(message(from_address=None, from_problem=problem), config())
    assert (decision.outcome, decision.reason_code, decision.reply_to, decision.tenant) == ("review", "bad_from", None, None)
    assert problem in decision.problems
    assert "not one plain address" in decision.reason


def test_unknown_sender_goes_to_review_unanswered() -> None:
    decision = decide(message(from_address="someone@random.example"), config())
    assert (decision.outcome, decision.reason_code, decision.reply_to, decision.tenant) == ("review", "unknown_sender", None, None)


def test_unauthenticated_sender_goes_to_review_unanswered() -> None:
    decision = decide(message(auth_results=()), config())
    assert (decision.outcome, decision.reason_code, decision.reply_to) == ("review", "unauthenticated", None)
    assert decision.tenant == "acme"  # shown to the officer; nothing is done with it


def test_without_required_authentication_from_is_trusted_as_written() -> None:
    decision = decide(message(auth_results=()), config(require_authentication=False))
    assert (decision.outcome, decision.reply_to, decision.authenticated) == ("erase", "privacy@acme.example", False)


def test_unauthenticated_beats_not_erasure() -> None:
    decision = decide(message(auth_results=(), kind="access"), config())
    assert decision.reason_code == "unauthenticated"


@pytest.mark.parametrize("kind, code", [("access", "access_request"), ("other", "not_erasure")])
def test_requests_that_are_not_erasure_go_to_review_and_may_be_answered(kind: str, code: str) -> None:
    decision = decide(message(kind=kind), config())
    assert (decision.outcome, decision.reason_code, decision.reply_to) == ("review", code, "privacy@acme.example")


def test_parser_problems_go_to_review_with_the_first_one_as_reason() -> None:
    problems = (Problem("viewer_id_control_chars", "zero-width"), Problem("attachment_too_large", "big"))
    decision = decide(message(problems=problems), config())
    assert (decision.outcome, decision.reason_code) == ("review", "viewer_id_control_chars")
    assert decision.problems == problems
    assert decision.reply_to == "privacy@acme.example"


def test_problems_beat_missing_ids() -> None:
    decision = decide(message(viewer_ids=(), problems=(Problem("attachment_too_large", "big"),)), config())
    assert decision.reason_code == "attachment_too_large"


def test_no_viewer_id_goes_to_review_and_may_be_asked_for_one() -> None:
    decision = decide(message(viewer_ids=()), config())
    assert (decision.outcome, decision.reason_code, decision.reply_to) == ("review", "no_viewer_id", "privacy@acme.example")


@pytest.mark.parametrize("ids, limits, code", [
    ("Viewer ID: v-1\nViewer ID: v-2\nViewer ID: v-3\n", {"max_viewer_ids": 2}, "too_many_viewer_ids"),
    ("Viewer ID: abcdef\n", {"max_viewer_id_length": 5}, "viewer_id_too_long"),
    ("Viewer ID: v-1\nViewer ID: v-2\n", {"max_viewer_ids": 2}, "ok"),
    ("Viewer ID: abcde\n", {"max_viewer_id_length": 5}, "ok"),
])
def test_the_parser_applies_the_viewer_id_limits_and_decide_sends_them_to_review(ids: str, limits: dict[str, int],
                                                                                 code: str) -> None:
    # The limits are checked once, by the parser (the workflow passes it the policy's limits); decide only reads its problems.
    parsed = parse_message(
        b"From: Alice <privacy@acme.example>\nSubject: GDPR erasure request\nMessage-ID: <m@acme.example>\n"
        b"Authentication-Results: " + PASS.encode() + b"\n\nPlease erase these viewer ids:\n" + ids.encode(), **limits
    )
    assert decide(parsed, config(**limits)).reason_code == code


@pytest.mark.parametrize("named, default, expected", [(None, "gdpr", "gdpr"), (None, "ccpa", "ccpa"), ("ccpa", "gdpr", "ccpa"), ("gdpr", "ccpa", "gdpr")])
def test_regulation_defaults_from_policy(named: str | None, default: str, expected: str) -> None:
    assert decide(message(regulation=named), config(default_regulation=default)).regulation == expected


def test_reply_to_header_never_picks_tenant_or_recipient() -> None:
    raw = (
        b"From: someone@random.example\nReply-To: privacy@acme.example\nSubject: erase\n"
        b"Authentication-Results: " + PASS.encode() + b"\n\nPlease erase.\nViewer ID: v-1\n"
    )
    decision = decide(parse_message(raw), config())
    assert (decision.reason_code, decision.tenant, decision.reply_to) == ("unknown_sender", None, None)
    raw = (
        b"From: privacy@acme.example\nReply-To: attacker@evil.example\nSubject: erase\n"
        b"Authentication-Results: " + PASS.encode() + b"\n\nPlease erase.\nViewer ID: v-1\n"
    )
    assert decide(parse_message(raw), config()).reply_to == "privacy@acme.example"


# ---------------------------------------------------------------- sender matching


@pytest.mark.parametrize(
    "entry, address, matches",
    [
        ("@acme.example", "privacy@acme.example", True),
        ("@acme.example", "Privacy@ACME.EXAMPLE", True),
        ("@acme.example", "privacy@evil-acme.example", False),
        ("@acme.example", "privacy@acme.example.evil", False),
        ("@acme.example", "privacy@mail.acme.example", False),  # subdomains are listed on their own
        ("@acme.example", "privacy@xacme.example", False),
        ("privacy@acme.example", "privacy@acme.example", True),
        ("privacy@acme.example", "PRIVACY@acme.example", True),
        ("privacy@acme.example", "privacy2@acme.example", False),
        ("privacy@acme.example", "xprivacy@acme.example", False),
        ("privacy@acme.example", "privacy@acme.example.evil", False),
    ],
)
def test_sender_matching_is_exact(entry: str, address: str, matches: bool) -> None:
    assert sender_matches(entry, address) is matches


def test_a_sender_two_tenants_list_is_ambiguous() -> None:
    cfg = config_from_dict(
        {
            "tenants": [
                {"name": "a", "senders": ["@acme.example"], "environments": ["e1"]},
                {"name": "b", "senders": ["privacy@acme.example"], "environments": ["e2"]},
            ],
            "policy": {"trusted_authserv_ids": [TRUSTED], "time_zone": "UTC"},
        }
    )
    decision = decide(message(), cfg)
    assert (decision.outcome, decision.reason_code, decision.tenant, decision.reply_to) == ("review", "ambiguous_tenant", None, None)


def test_full_address_sender_picks_its_tenant() -> None:
    pass_group = PASS.replace("acme.example", "acme-group.example")
    decision = decide(message(from_address="dpo@acme-group.example", auth_results=(pass_group,)), config())
    assert (decision.outcome, decision.tenant) == ("erase", "acme")
    other = decide(message(from_address="someone@acme-group.example", auth_results=(pass_group,)), config())
    assert other.reason_code == "unknown_sender"


# ---------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    "results, ok",
    [
        ((PASS,), True),
        ((f"{TRUSTED}; dmarc=pass header.from=acme.example",), True),
        (("MX.Privacy.Example; dmarc=pass header.from=ACME.example",), True),
        ((f"{TRUSTED} (postfix); dmarc=pass (p=reject) header.from=acme.example",), True),
        ((f"{TRUSTED}; dkim=pass header.d=acme.example",), True),
        ((f"{TRUSTED}; dkim=pass header.d=acme.example; dmarc=none header.from=acme.example",), True),
        ((f"{TRUSTED}; spf=pass smtp.mailfrom=acme.example",), False),  # SPF alone is not DMARC
        ((f"{TRUSTED}; dkim=pass header.d=evil.example",), False),
        ((f"{TRUSTED}; dkim=pass header.d=mail.acme.example",), False),  # child domain signing for parent
        ((f"{TRUSTED}; dkim=pass header.d=example",), False),  # a bare TLD aligns with nothing
        ((f"{TRUSTED}; dmarc=pass header.from=evil.example",), False),
        ((f"{TRUSTED}; dmarc=fail header.from=acme.example; dkim=pass header.d=acme.example",), False),
        ((f"{TRUSTED}; dmarc=none header.from=acme.example",), False),
        (("mx.attacker.example; dmarc=pass header.from=acme.example",), False),
        (("mx.privacy.example.evil; dmarc=pass header.from=acme.example",), False),
        ((f"{TRUSTED}; dmarc=fail header.from=acme.example", f"{TRUSTED}; dmarc=pass header.from=acme.example"), False),
        ((f"{TRUSTED}; dmarc=none header.from=acme.example", f"{TRUSTED}; dmarc=pass header.from=acme.example"), False),
        ((f"{TRUSTED}; dkim=fail header.d=acme.example", f"{TRUSTED}; dkim=pass header.d=acme.example"), False),
        ((f"{TRUSTED}; ;;; dmarc=pass (((",), False),
        ((), False),
    ],
)
def test_authentication(results: tuple[str, ...], ok: bool) -> None:
    authenticated, why = authentication(message(auth_results=results), (TRUSTED,))
    assert authenticated is ok, why
    assert why


def test_subdomain_sender_is_aligned_with_parent_dkim_signature() -> None:
    m = message(from_address="privacy@mail.acme.example", auth_results=(f"{TRUSTED}; dkim=pass header.d=acme.example",))
    assert authentication(m, (TRUSTED,))[0]


def test_no_trusted_ids_configured_means_nothing_authenticates() -> None:
    assert authentication(message(), ())[0] is False


# ---------------------------------------------------------------- cross-tenant hints


@pytest.mark.parametrize(
    "text, hint",
    [
        ("Please erase this viewer from env_globex_prod.", True),
        ("Our partner Globex asked us to forward this.", True),
        ("They wrote from privacy@globex.example.", True),
        ("Please erase this viewer from env_acme_prod.", False),
        ("Please erase; our brand globexcorp is unrelated.", False),
        ("Please erase.", False),
    ],
)
def test_cross_tenant_hint(text: str, hint: bool) -> None:
    decision = decide(message(body_text=text), config())
    assert (decision.reason_code == "cross_tenant_hint") is hint


# ---------------------------------------------------------------- the reason registry


def _codes_in_source(module: object) -> set[str]:
    path = Path(module.__file__)  # type: ignore[attr-defined]
    files = sorted(path.parent.glob("*.py")) if path.name == "__init__.py" else [path]
    source = "\n".join(f.read_text(encoding="utf-8") for f in files)
    found = set(re.findall(r'Problem\(\s*"([a-z_]+)"', source))
    found |= set(re.findall(r'out\.add\(\s*"([a-z_]+)"', source))
    found |= set(re.findall(r'result\(\s*"(?:erase|review|ignore)",\s*"([a-z_]+)"', source))
    return found


def test_every_reason_code_used_has_text() -> None:
    used = _codes_in_source(erasure.parse) | _codes_in_source(erasure.verify)
    assert len(used) > 30  # the scan really found the codes
    assert used - set(REASONS) == set()


def test_reason_codes_are_stable_snake_case_with_sentences() -> None:
    for code, text in REASONS.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", code)
        assert text.endswith(".") and len(text) > 10


def test_every_decision_reason_starts_with_registry_text() -> None:
    for m in (message(), message(kind="access"), message(auth_results=()), message(viewer_ids=())):
        decision = decide(m, config())
        assert decision.reason.startswith(REASONS[decision.reason_code])
