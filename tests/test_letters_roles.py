"""Every letter speaks in the voice of `policy.role`, and promises only what the configuration does.

Processor (the default): the letter goes to the customer's privacy team, the
controller (CCPA: the business), about its viewers' data; the customer answers
its own data subject, so the letter never says "your data", never tells a
business it may complain to an authority (Art. 12(4)) and never says "we cannot
identify you" (Art. 11(2)). Controller: the letter goes to the data subject,
with those notices. Both: retention months from `policy.record_retention_months`,
the suppression sentence only with `policy.suppression`, never "new data", and
the text and HTML parts saying the same things.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import html.parser
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from erasure.config import config_from_dict
from erasure.models import ErasureRequest, OutboxMessage, Subject
from erasure.notify import TemplateRenderer, base_context
from tests.test_templates import CASE_IDS, CASES, KINDS, PACKAGED, REGULATIONS, ROLES, full_context, render, squash
from tests.world import config_dict, mail, make_world

RETENTION = 36  # not the default 24, so a hard-coded period shows
PROCESSOR_DUE = "9 December 2026"  # 10 days from our receipt (policy.processor_response_days)
CONTROLLERS_OWN = "20 December 2026"


def letter_context(kind: str, regulation: str, role: str, *, full: bool = False, **values: Any) -> dict[str, Any]:
    """A letter's context with RETENTION months; in the processor's voice, due by our own (shorter) date."""
    context = full_context(kind, regulation, role) if full else full_context(
        kind, regulation, role, controller_due_date="", suppression_on=False, recipients_notified=[], refused=[],
        **({"stores": []} if kind == "completed" else {}))
    context["retention_months"] = RETENTION
    if role == "processor":
        context["due_date"] = PROCESSOR_DUE
    context.update(values)
    return context


def both_parts(kind: str, context: dict[str, Any]) -> list[str]:
    """The text part and what a reader of the HTML part sees, whitespace collapsed."""
    out = render(kind, context)
    return [squash(out.text), squash(out.html_text)]


# ---------------------------------------------------------------- the voices, as a table

#: role -> (required, forbidden) in every letter of that voice, in the text and the HTML.
EVERY_LETTER: dict[str, tuple[list[str], list[str]]] = {
    "processor": (
        ["remain responsible for answering"],
        ["your data", "your personal data", "identify you", "Article 11(2)", "Art. 11(2)", "Article 12(4)",
         "Art. 12(4)", "Article 12(6)", "lodge a complaint", "supervisory authority", "judicial remedy",
         "California Privacy Protection Agency", "Attorney General", "right to"],
    ),
    "controller": (
        [],
        ["remain responsible for answering", "your viewers", "as your processor", "as your service provider",
         "your instructions", "your own deadline"],
    ),
}
#: In no letter of either voice: the contradictions and hard-coded promises the legal review found.
NEVER = ["new data", "records were deleted", "record was deleted", "24 months", "keeping the deleted data deleted",
         "deleted data deleted"]

#: (kind, role or None for both, regulation or None for both) -> phrases that letter must say.
REQUIRED: list[tuple[str, str | None, str | None, list[str]]] = [
    ("acknowledgement", "processor", None, ["your viewers' data", f"by {PROCESSOR_DUE} at the latest"]),
    ("acknowledgement", "processor", "gdpr", ["as your processor (Article 28(3)(e) GDPR)", "Article 12(3) GDPR"]),
    ("acknowledgement", "processor", "ccpa", ["as your service provider", "§ 7021(a)", "§ 7021(b)"]),
    ("acknowledgement", "controller", "gdpr", ["Article 12(3) GDPR", "within one month", "29 December 2026"]),
    ("acknowledgement", "controller", "ccpa", ["§ 7021", "45 calendar days", "13 January 2027"]),
    ("completed", None, None, ["is being removed, if any can be identified", "twelve thousand and three (12,003)",
                               f"{RETENTION} months"]),
    ("completed", "processor", None, ["Your viewers' data is being removed", "carried out your instructions"]),
    ("completed", "controller", None, ["Your data is being removed"]),
    ("completed", "controller", "gdpr", ["Article 5(2) GDPR"]),
    ("completed", None, "ccpa", ["§ 7101"]),
    ("no_data_found", None, None, [f"{RETENTION} months", "Viewer ID: 3f2b9c1e"]),
    ("no_data_found", "processor", None, ["no data of your viewers", "nothing for us to erase"]),
    ("no_data_found", "controller", "gdpr", ["Article 11(2) GDPR", "not in a position to identify you",
                                             "Article 12(4) GDPR", "lodge a complaint", "judicial remedy",
                                             "the Data Protection Commission (Ireland)"]),
    ("no_data_found", "controller", "ccpa", ["no personal information", "nothing for us to delete"]),
    ("needs_information", "processor", None, ["keeps running while we wait"]),
    ("needs_information", "controller", "gdpr", ["Articles 11(2) and 12(6) GDPR"]),
    ("rejected", None, None, ["The sender is not authorised for tenant acme.", f"{RETENTION} months"]),
    ("rejected", "processor", None, ["We will not carry out your erasure request", "we will not erase the data it names",
                                     "The legal basis:", "we will look at the request again"]),
    ("rejected", "controller", "gdpr", ["Article 12(4) GDPR", "lodge a complaint", "judicial remedy",
                                        "the Data Protection Commission (Ireland)", "The legal basis:"]),
    ("rejected", "controller", "ccpa", ["The basis for the denial:", "California Privacy Protection Agency",
                                        "California Attorney General"]),
    ("extended", None, None, ["28 February 2027", "80,000 viewer ids"]),
    ("extended", "processor", "gdpr", ["you may extend it by up to two further months"]),
    ("extended", "processor", "ccpa", ["you may extend it by up to 45 further calendar days"]),
    ("extended", "controller", "gdpr", ["Article 12(3) GDPR allows us to extend"]),
    ("extended", "controller", "ccpa", ["§ 7021(b) allows us to take up to 45 additional calendar days"]),
]


def required(kind: str, regulation: str, role: str) -> list[str]:
    phrases = list(EVERY_LETTER[role][0])
    for k, o, r, more in REQUIRED:
        if k == kind and o in (None, role) and r in (None, regulation):
            phrases += more
    return phrases


def forbidden(role: str) -> list[str]:
    return EVERY_LETTER[role][1] + NEVER


def check_voice(kind: str, regulation: str, role: str, parts: list[str]) -> None:
    for part, name in zip(parts, ("text", "HTML")):
        plain = part.replace("’", "'")
        for phrase in required(kind, regulation, role):
            assert phrase in plain, f"{kind}/{regulation}/{role} {name} lacks {phrase!r}"
        for phrase in forbidden(role):
            assert phrase.lower() not in plain.lower(), f"{kind}/{regulation}/{role} {name} says {phrase!r}"


def test_the_table_covers_every_kind_in_both_voices() -> None:
    for kind in KINDS:
        for role in ROLES:
            assert any(k == kind and o in (None, role) for k, o, _, _ in REQUIRED), (kind, role)


@pytest.mark.parametrize(("kind", "regulation", "role", "full"), CASES, ids=CASE_IDS)
def test_each_letter_speaks_in_its_roles_voice(kind: str, regulation: str, role: str, full: bool) -> None:
    check_voice(kind, regulation, role, both_parts(kind, letter_context(kind, regulation, role, full=full)))


def test_the_forbidden_phrases_are_not_vacuous() -> None:
    """The controller's letters do say what the processor's must not, and the other way round."""
    controller = " ".join(" ".join(both_parts(k, letter_context(k, "gdpr", "controller"))) for k in KINDS)
    processor = " ".join(" ".join(both_parts(k, letter_context(k, "gdpr", "processor"))) for k in KINDS)
    for phrase in ("your data", "identify you", "Article 11(2)", "Article 12(4)", "lodge a complaint"):
        assert phrase.lower() in controller.lower(), phrase
    for phrase in ("remain responsible for answering", "your viewers", "your own deadline"):
        assert phrase.lower() in processor.lower(), phrase


# ---------------------------------------------------------------- deadlines in the processor's voice


@pytest.mark.parametrize("regulation", REGULATIONS)
@pytest.mark.parametrize("kind", ["acknowledgement", "needs_information", "extended"])
def test_the_controllers_own_date_is_named_when_known(kind: str, regulation: str) -> None:
    known = both_parts(kind, letter_context(kind, regulation, "processor", controller_due_date=CONTROLLERS_OWN))
    unknown = both_parts(kind, letter_context(kind, regulation, "processor", controller_due_date=""))
    as_controller = both_parts(kind, letter_context(kind, regulation, "controller", controller_due_date=CONTROLLERS_OWN))
    for part in known:
        assert CONTROLLERS_OWN in part
    for part in unknown + as_controller:  # a controller's own date is already its due date
        assert CONTROLLERS_OWN not in part


@pytest.mark.parametrize("regulation", REGULATIONS)
def test_the_acknowledgement_gives_our_date_and_the_controllers_rule(regulation: str) -> None:
    rule = ("one month from the day the request reached you" if regulation == "gdpr"
            else "45 calendar days from the day the request reached you")
    for context in (letter_context("acknowledgement", regulation, "processor", controller_due_date=CONTROLLERS_OWN),
                    letter_context("acknowledgement", regulation, "processor", controller_due_date="")):
        for part in both_parts("acknowledgement", context):
            assert f"by {PROCESSOR_DUE} at the latest" in part
            assert rule in part
            assert "two further months" not in part and "45 further days" not in part  # the controller's to give


# ---------------------------------------------------------------- completed and no_data_found: what else happened


@pytest.mark.parametrize("regulation", REGULATIONS)
@pytest.mark.parametrize("role", ROLES)
def test_recipients_told_of_the_erasure_are_named_in_completed(role: str, regulation: str) -> None:
    told = both_parts("completed", letter_context("completed", regulation, role,
                                                  recipients_notified=["Example CDN Ltd", "Example Ads GmbH"]))
    for part in told:
        assert "We have told the recipients to whom this data was disclosed about the erasure" in part
        assert "Example CDN Ltd, Example Ads GmbH." in part
        assert ("(Article 19 GDPR)" in part) == (role == "controller" and regulation == "gdpr")
    for part in both_parts("completed", letter_context("completed", regulation, role, recipients_notified=[])):
        assert "We have told" not in part


REFUSED = [
    {"id": "vie…05", "basis": "Kept for the defence of legal claims.", "reason": "A dispute about this account is open."},
    {"id": "cus…81", "basis": "Kept by law.", "reason": ""},
    {"id": "abc…99", "basis": "", "reason": "Held by order of a court."},
]


@pytest.mark.parametrize("regulation", REGULATIONS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", ["completed", "no_data_found"])
def test_a_partial_refusal_names_each_id_kept_and_why(kind: str, role: str, regulation: str) -> None:
    parts = both_parts(kind, letter_context(kind, regulation, role, refused=REFUSED))
    complaint = "Article 12(4) GDPR" if regulation == "gdpr" else "California Privacy Protection Agency"
    for part in parts:
        assert "We did not erase the data of these ids, for the reason given with each:" in part
        assert "vie…05: Kept for the defence of legal claims. A dispute about this account is open." in part
        assert "cus…81: Kept by law." in part
        assert "abc…99: Held by order of a court." in part
        assert (complaint in part) == (role == "controller")  # a refusal, in part, to a data subject
    check_voice(kind, regulation, role, parts)
    for part in both_parts(kind, letter_context(kind, regulation, role, refused=[])):
        assert "We did not erase" not in part


@pytest.mark.parametrize("regulation", REGULATIONS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("basis", "reasons"), [("Kept by law.", ""), ("", "A dispute is open."),
                                                ("Kept by law.", "A dispute is open."), ("", "")])
def test_a_refusal_shows_the_basis_and_the_reasons_it_has(basis: str, reasons: str, role: str, regulation: str) -> None:
    for part in both_parts("rejected", letter_context("rejected", regulation, role, basis=basis, reasons=reasons)):
        assert ("Kept by law." in part) == bool(basis)
        assert ("A dispute is open." in part) == bool(reasons)
        assert ("Our reasons:" in part) == bool(reasons)
        assert ("The legal basis:" in part or "The basis for the denial:" in part) == bool(basis)
        assert ("remain responsible for answering" in part) == (role == "processor")


# ---------------------------------------------------------------- what the configuration promises


@pytest.mark.parametrize("regulation", REGULATIONS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", ["completed", "no_data_found"])
def test_views_that_come_back_are_deleted_only_with_suppression_on(kind: str, role: str, regulation: str) -> None:
    on = both_parts(kind, letter_context(kind, regulation, role, suppression_on=True))
    off = both_parts(kind, letter_context(kind, regulation, role, suppression_on=False))
    for part in on:
        assert f"for as long as we keep the record of this request ({RETENTION} months)" in part
        assert "delete the views recorded under them later as well" in part
        assert "delete the views recorded later under these viewer ids" in part or \
            "deleting the views recorded later under these viewer ids" in part  # what the record is used for
        assert "not erased by it" not in part
    for part in off:
        assert "Views recorded under these viewer ids after today are not erased by it" in part
        assert "recorded later" not in part and "hashed form only, for as long" not in part
    with_refusal = both_parts(kind, letter_context(kind, regulation, role, suppression_on=True, refused=REFUSED))
    for part in with_refusal:
        assert "We keep these viewer ids (except those listed above)" in part


@pytest.mark.parametrize("regulation", REGULATIONS)
@pytest.mark.parametrize("role", ROLES)
def test_a_refused_request_is_not_said_to_be_suppressed(role: str, regulation: str) -> None:
    """The suppression list holds the ids of carried-out requests only (suppression.ERASED_RESPONSES)."""
    for part in both_parts("rejected", letter_context("rejected", regulation, role, suppression_on=True)):
        assert "recorded later" not in part


@pytest.mark.parametrize("months", [12, 36, 120])
@pytest.mark.parametrize("regulation", REGULATIONS)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", ["completed", "no_data_found", "rejected"])
def test_the_record_is_kept_for_the_configured_months(kind: str, role: str, regulation: str, months: int) -> None:
    for part in both_parts(kind, letter_context(kind, regulation, role, retention_months=months)):
        assert f"for {months} months" in part
        assert "24 months" not in part


# ---------------------------------------------------------------- the two parts say the same things


class _Blocks(html.parser.HTMLParser):
    """The visible text of an HTML letter's content, one entry per block (paragraph, list item, cell, heading)."""

    BLOCKS = ("p", "li", "td", "h1", "h2", "pre", "div", "table", "ul", "ol", "tr")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = [""]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCKS:
            self.blocks.append("")
        elif tag == "br":
            self.blocks[-1] += " "

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BLOCKS:
            self.blocks.append("")

    def handle_data(self, data: str) -> None:
        self.blocks[-1] += data


_SENTENCE_END = re.compile(r"(?<=[.:;])\s+")
_LIST_ITEM = re.compile(r"\n(?=- |[1-9]\. [A-Z])")  # not a wrapped "2027. If"


def _sentences(blocks: list[str]) -> list[str]:
    out: list[str] = []
    for block in blocks:
        flat = squash(block).replace("’", "'").replace("“", '"').replace("”", '"')
        out += [s.rstrip(":") for s in _SENTENCE_END.split(flat) if s.strip()]
    return out


def text_sentences(text: str) -> list[str]:
    """The text part's sentences after the greeting, list markers dropped."""
    body = text.split("\n\n", 1)[1]  # after "Hello,"
    blocks = [item for paragraph in body.split("\n\n") for item in _LIST_ITEM.split(paragraph)]
    return _sentences([re.sub(r"^(- |[1-9]\. (?=[A-Z]))", "", block) for block in blocks])


def html_sentences(document: str) -> list[str]:
    """The HTML part's sentences after its heading (the title, reference line and heading have no text twin)."""
    parser = _Blocks()
    parser.feed(document.split("</h1>", 1)[1])
    parser.close()
    return _sentences(parser.blocks)


@pytest.mark.parametrize(("kind", "regulation", "role", "full"), CASES, ids=CASE_IDS)
def test_the_text_and_html_parts_say_the_same_things_in_the_same_order(kind: str, regulation: str, role: str,
                                                                        full: bool) -> None:
    out = render(kind, letter_context(kind, regulation, role, full=full))
    assert text_sentences(out.text) == html_sentences(out.html)


def test_the_shared_wording_is_escaped_once_in_every_html_letter() -> None:
    """`_wording.txt` is plain text: its macros' output must be escaped where an HTML letter shows it.

    A macro called from an autoescaping template comes back marked safe, values
    and all, so each call in an .html template goes through ``forceescape``
    (which escapes exactly once). The hostile-value test in test_templates.py
    checks the result; this one names the line that forgot.
    """
    for path in sorted(PACKAGED.glob("*.html")):
        for call in re.findall(r"\{\{\s*w\.[^}]*\}\}", path.read_text(encoding="utf-8")):
            assert re.search(r"\|\s*forceescape\s*\}\}$", call), f"{path.name}: {call} is not escaped"


# ---------------------------------------------------------------- base_context: the contract with the workflow


def _request(controller_due_on: dt.date | None) -> ErasureRequest:
    return ErasureRequest(
        reference="ER-2026-000007", regulation="gdpr", tenant="acme", subject_line="Erasure",
        received_at=dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.timezone.utc), due_on=dt.date(2026, 12, 9),
        extended_to=None, controller_due_on=controller_due_on,
        subjects=[Subject(position=0, viewer_id="viewer-1", viewer_hmac="0" * 64, key_version=1)],
    )


#: What the workflow passes today for each kind (Desk._reply(..., **extra)); the rest comes from base_context.
WORKFLOW_EXTRAS: dict[str, dict[str, Any]] = {
    "acknowledgement": {},
    "completed": {"counts": {"views": 3}, "total_rows": 3, "total_rows_words": "three"},
    "no_data_found": {},
    "needs_information": {"missing": "Your message did not name a viewer id."},
    "rejected": {"reasons": "A dispute is open."},
    "extended": {"reasons": "Many ids.", "new_due_date": "9 February 2027"},
}


@pytest.mark.parametrize("suppression", [False, True])
@pytest.mark.parametrize("role", ROLES)
def test_base_context_carries_the_policy_the_letters_describe(tmp_path: Path, role: str, suppression: bool) -> None:
    config = config_from_dict(config_dict(tmp_path, role=role, record_retention_months=RETENTION,
                                          suppression=suppression), base_dir=tmp_path)
    context = base_context(config, _request(dt.date(2026, 12, 20)))
    assert context["role"] == role
    assert context["retention_months"] == RETENTION
    assert context["suppression_on"] is suppression
    assert context["controller_due_date"] == "20 December 2026"
    assert context["recipients_notified"] == [] and context["refused"] == [] and context["basis"] == ""
    assert base_context(config, _request(None))["controller_due_date"] == ""


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_letter_renders_from_base_context_and_todays_workflow_values(tmp_path: Path, kind: str, role: str) -> None:
    """The new values have defaults: a step that passes none of them still gets a complete letter."""
    config = config_from_dict(config_dict(tmp_path, role=role, record_retention_months=RETENTION), base_dir=tmp_path)
    subject, text, html_part = TemplateRenderer().render(kind, base_context(config, _request(None)) | WORKFLOW_EXTRAS[kind])
    assert "ER-2026-000007" in subject
    assert ("remain responsible for answering" in squash(text)) == (role == "processor")


# ---------------------------------------------------------------- the real pipeline, both voices


def _letters(world: Any) -> dict[str, tuple[str, str]]:
    """Each queued letter's (text, visible HTML), by kind, read back from the outbox bytes."""
    out: dict[str, tuple[str, str]] = {}
    with world.state.session() as session:
        for row in session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)):
            message = email.message_from_bytes(row.raw, policy=email.policy.default)
            text, html_part = (p.get_content() for p in message.walk() if p.get_content_maintype() == "text")
            visible = html.unescape(re.sub(r"<[^>]+>", " ", html_part))
            out[row.kind] = (squash(text), squash(visible))
    return out


@pytest.mark.parametrize("role", ROLES)
def test_the_workflows_letters_speak_in_the_configured_voice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             role: str) -> None:
    world = make_world(tmp_path, monkeypatch, role=role, record_retention_months=RETENTION, auto_approve=False)
    try:
        desk = world.desk
        kw = {"tenant": "acme", "requester": "dpo@acme.example", "controller_received_on": dt.date(2026, 10, 30)}
        done = desk.add_manual(viewer_ids=["viewer-00005"], **kw)
        nothing = desk.add_manual(viewer_ids=["nobody-here-1"], **kw)
        refused = desk.add_manual(viewer_ids=["viewer-00006"], **kw)
        later = desk.add_manual(viewer_ids=["viewer-00007"], **kw)
        desk.approve(done.reference)
        desk.approve(nothing.reference)
        desk.reject(refused.reference, reason="A dispute about this account is open.")
        desk.extend(later.reference, reason="The account is being migrated.")
        world.deliver(mail("dpo@acme.example", "Please erase our viewer's data.\n"))
        world.poll()
        letters = _letters(world)
    finally:
        world.desk.close()
        world.state.close()
    assert set(letters) == set(KINDS)
    for kind, parts in letters.items():
        for part in parts:
            plain = part.replace("’", "'")
            for phrase in EVERY_LETTER[role][0]:
                assert phrase in plain, (kind, phrase)
            for phrase in forbidden(role):
                assert phrase.lower() not in plain.lower(), (kind, phrase)
    for part in letters["completed"] + letters["no_data_found"] + letters["rejected"]:
        assert f"{RETENTION} months" in part
    for part in letters["acknowledgement"]:
        # The customer received it on 30 October: its own date is 30 November. We received it on
        # 2 November: ours is ten days later (processor), or the controller's date (controller).
        assert "30 November 2026" in part
        assert ("by 12 November 2026 at the latest" in part) == (role == "processor")
