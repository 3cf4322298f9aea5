"""The packaged reply templates: every kind renders, says what the law asks, and treats requester text as data.

The environment here is built the way notify.py's renderer builds it (the
contract the templates are written against): a ChoiceLoader with the
configured folder first, StrictUndefined, autoescape for .html only, and the
first line of ``<kind>.txt`` is the Subject.
"""

from __future__ import annotations

import dataclasses
import functools
import html.parser
import re
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import pytest

from erasure.config import ControllerSettings

PACKAGED = Path(__file__).resolve().parent.parent / "templates"
KINDS = ("acknowledgement", "completed", "no_data_found", "needs_information", "rejected", "extended")
REGULATIONS = ("gdpr", "ccpa")
ROLES = ("processor", "controller")

COMMON = {
    "reference", "regulation", "regulation_name", "received_date", "due_date", "tenant",
    "viewer_id_count", "controller", "original_subject",
    "role", "retention_months", "suppression_on", "controller_due_date",
}
PER_KIND = {
    "acknowledgement": set(),
    "completed": {"counts", "total_rows", "total_rows_words", "recipients_notified", "refused", "stores"},
    "no_data_found": {"refused"},
    "needs_information": {"missing"},
    "rejected": {"reasons", "basis"},
    "extended": {"reasons", "new_due_date"},
}


def environment(override: Path | None = None, *, trim: bool = False) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(override)] if override else []
    loaders.append(jinja2.FileSystemLoader(PACKAGED))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        keep_trailing_newline=True,
        trim_blocks=trim,
        lstrip_blocks=trim,
    )


@dataclasses.dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str

    @property
    def html_text(self) -> str:
        """What a reader of the HTML part sees (tags dropped, entities decoded, spaces collapsed)."""
        return " ".join(_visible_text(self.html).split())


@functools.cache
def _packaged_environment() -> jinja2.Environment:
    return environment()


def render(kind: str, context: dict[str, Any], env: jinja2.Environment | None = None) -> Rendered:
    env = env or _packaged_environment()
    text = env.get_template(f"{kind}.txt").render(context)
    first, _, rest = text.partition("\n")
    assert first.startswith("Subject: "), f"{kind}.txt must start with a Subject: line"
    assert rest.startswith("\n"), f"{kind}.txt needs a blank line after the Subject"
    return Rendered(first.removeprefix("Subject: "), rest[1:], env.get_template(f"{kind}.html").render(context))


SAMPLE_BASIS = {
    "gdpr": "Article 17(3)(e) GDPR: the data is needed for the defence of legal claims.",
    "ccpa": "Cal. Civ. Code § 1798.105(d): the information is needed for the defence of legal claims.",
}
#: Every optional value filled in, so each branch of every letter is rendered too.
FULL = {
    "controller_due_date": "20 December 2026",
    "suppression_on": True,
    "recipients_notified": ["Example CDN Ltd", "Example Ads GmbH"],
    "refused": [{"id": "vie…05", "basis": "Kept for the defence of legal claims.", "reason": "A dispute about this account is open."},
                {"id": "cus…81", "basis": "", "reason": "Held by order of a court."}],
    "basis": "Kept for the defence of legal claims.",
    "stores": [{"store": "eu-ingest", "description": "EU ingest, Frankfurt", "counts": {"views": 12_000, "view_events": 2},
                "total": 12_002},
               {"store": "analytics", "description": "", "counts": {"views": 1}, "total": 1}],
}


def full_context(kind: str, regulation: str, role: str, **overrides: Any) -> dict[str, Any]:
    """``sample_context`` with every optional value given, in ``role``'s voice (only the values ``kind`` takes)."""
    context = sample_context(kind, regulation, role=role)
    context.update({k: v for k, v in FULL.items() if k in context})
    context.update(overrides)
    return context


def sample_context(kind: str, regulation: str, **overrides: Any) -> dict[str, Any]:
    """A letter's context as ``notify.base_context`` and the workflow build it (processor role, the default)."""
    context: dict[str, Any] = {
        "reference": "ER-2026-000042",
        "regulation": regulation,
        "regulation_name": regulation.upper(),
        "received_date": "29 November 2026",
        "due_date": "29 December 2026" if regulation == "gdpr" else "13 January 2027",
        "tenant": "acme",
        "viewer_id_count": 3,
        "controller": ControllerSettings(
            name="Example Video Analytics",
            contact="privacy@example.com",
            supervisory_authority="the Data Protection Commission (Ireland)",
        ),
        "original_subject": "Please delete my viewing data",
        "role": "processor",
        "retention_months": 24,
        "suppression_on": False,
        "controller_due_date": "",
    }
    context.update(
        {
            "completed": {"counts": {"views": 12_000, "view_events": 3}, "total_rows": 12_003, "total_rows_words": "twelve thousand and three",
                          "recipients_notified": [], "refused": [], "stores": []},
            "no_data_found": {"refused": []},
            "needs_information": {"missing": "No viewer id was found in your message."},
            "rejected": {"reasons": "The sender is not authorised for tenant acme.\nPlease write from your registered address.",
                         "basis": SAMPLE_BASIS[regulation]},
            "extended": {"reasons": "Your request names 80,000 viewer ids across several environments.", "new_due_date": "28 February 2027"},
        }.get(kind, {})
    )
    context.update(overrides)
    return context


class _TextAndTags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("p", "br", "li", "tr", "td", "h1", "h2", "pre", "div", "title"):
            self.text.append(" ")  # block boundaries separate words, as a mail reader shows them

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(document: str) -> _TextAndTags:
    parser = _TextAndTags()
    parser.feed(document)
    parser.close()
    return parser


def _visible_text(document: str) -> str:
    return "".join(_parse(document).text)


def squash(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- every kind renders


#: Every letter in both voices, with the optional values empty and given.
CASES = [(kind, regulation, role, full) for kind in KINDS for regulation in REGULATIONS for role in ROLES
         for full in (False, True)]
CASE_IDS = [f"{k}-{r}-{o}-{'full' if f else 'plain'}" for k, r, o, f in CASES]


def case_context(kind: str, regulation: str, role: str, full: bool) -> dict[str, Any]:
    return full_context(kind, regulation, role) if full else sample_context(kind, regulation, role=role)


@pytest.mark.parametrize(("kind", "regulation", "role", "full"), CASES, ids=CASE_IDS)
def test_every_kind_renders_for_both_regulations(kind: str, regulation: str, role: str, full: bool) -> None:
    out = render(kind, case_context(kind, regulation, role, full))

    assert "ER-2026-000042" in out.subject
    assert "\n" not in out.subject and len(out.subject) < 120
    for part in (out.text, out.html_text):
        assert "ER-2026-000042" in part
        assert "Example Video Analytics" in part
        assert "privacy@example.com" in part
        if regulation == "gdpr":
            assert "CCPA" not in part and "Cal. Code Regs." not in part
        else:
            assert "GDPR" not in part and "Article" not in part


@pytest.mark.parametrize(("kind", "regulation", "role", "full"), CASES, ids=CASE_IDS)
def test_output_does_not_depend_on_the_renderers_whitespace_settings(kind: str, regulation: str, role: str, full: bool) -> None:
    context = case_context(kind, regulation, role, full)
    plain = render(kind, context, environment(trim=False))
    trimmed = render(kind, context, environment(trim=True))
    assert plain == trimmed


@pytest.mark.parametrize(("kind", "regulation", "role", "full"), CASES, ids=CASE_IDS)
def test_text_part_has_no_stray_blank_lines_or_template_leftovers(kind: str, regulation: str, role: str, full: bool) -> None:
    text = render(kind, case_context(kind, regulation, role, full)).text
    assert "\n\n\n" not in text
    assert not text.startswith("\n")
    assert not re.search(r"\{[{%#]|[}%#]\}", text)
    assert all(len(line) <= 120 for line in text.splitlines())


# ---------------------------------------------------------------- what each reply says

#: The data-subject letters (controller role); tests/test_letters_roles.py holds both voices side by side.
KEY_FACTS: dict[tuple[str, str], list[str]] = {
    ("acknowledgement", "gdpr"): ["29 November 2026", "29 December 2026", "Article 12(3) GDPR", "within one month", "two further months", "3 viewer ids"],
    ("acknowledgement", "ccpa"): ["29 November 2026", "13 January 2027", "§ 7021", "45 calendar days", "45 further days", "3 viewer ids"],
    ("completed", "gdpr"): ["is being removed, if any can be identified", "twelve thousand and three (12,003)", "views: 12,000", "view_events: 3", "24 months", "Article 5(2) GDPR"],
    ("completed", "ccpa"): ["is being removed, if any can be identified", "twelve thousand and three (12,003)", "views: 12,000", "view_events: 3", "24 months", "§ 7101"],
    ("no_data_found", "gdpr"): ["cannot identify", "Article 11(2) GDPR", "not in a position to identify you", "Viewer ID: 3f2b9c1e",
                                "Article 12(4) GDPR", "lodge a complaint", "24 months"],
    ("no_data_found", "ccpa"): ["no personal information", "nothing for us to delete", "Viewer ID: 3f2b9c1e"],
    ("needs_information", "gdpr"): ["No viewer id was found in your message.", "Viewer ID: 3f2b9c1e-8d4a-4c6b-9e2f-0a1b2c3d4e5f", "Viewer IDs:", "viewer_id", "matched exactly", "Article"],
    ("needs_information", "ccpa"): ["No viewer id was found in your message.", "Viewer ID: 3f2b9c1e-8d4a-4c6b-9e2f-0a1b2c3d4e5f", "Viewer IDs:", "viewer_id", "matched exactly"],
    ("rejected", "gdpr"): [
        "The sender is not authorised for tenant acme.",
        "Article 17(3)(e) GDPR: the data is needed for the defence of legal claims.",
        "Article 12(4) GDPR",
        "lodge a complaint",
        "the Data Protection Commission (Ireland)",
        "judicial remedy",
    ],
    ("rejected", "ccpa"): ["The sender is not authorised for tenant acme.", "basis for the denial", "§ 1798.105(d)",
                           "California Privacy Protection Agency"],
    ("extended", "gdpr"): ["80,000 viewer ids", "28 February 2027", "Article 12(3) GDPR", "two further months"],
    ("extended", "ccpa"): ["80,000 viewer ids", "28 February 2027", "§ 7021(b)", "45 additional calendar days"],
}


@pytest.mark.parametrize(("kind", "regulation"), sorted(KEY_FACTS))
def test_each_reply_states_its_key_facts_in_both_parts(kind: str, regulation: str) -> None:
    out = render(kind, sample_context(kind, regulation, role="controller"))
    html_table_as_text = re.sub(r"(\w+) ([\d,]+)\b", r"\1: \2", out.html_text)  # the HTML shows counts as a table
    for fact in KEY_FACTS[(kind, regulation)]:
        assert fact in squash(out.text), f"{kind}/{regulation} text lacks {fact!r}"
        assert fact in out.html_text or fact in html_table_as_text, f"{kind}/{regulation} HTML lacks {fact!r}"


def test_completed_lists_every_table_with_its_count() -> None:
    counts = {"views": 7, "view_events": 1_234_567, "view_errors": 0}
    out = render("completed", sample_context("completed", "gdpr", counts=counts, total_rows=1_234_574, total_rows_words="x"))
    assert "- view_errors: 0\n- view_events: 1,234,567\n- views: 7\n\n" in out.text
    rows = [squash(m) for m in re.findall(r"<tr>(.*?)</tr>", out.html, flags=re.S)]
    assert len(rows) == 3


def test_singular_wording_for_one_id_and_one_record() -> None:
    out = render("completed", sample_context("completed", "gdpr", viewer_id_count=1, counts={"views": 1}, total_rows=1, total_rows_words="one"))
    assert "1 viewer id named" in squash(out.text)
    assert "one (1) record in our analytics database" in squash(out.text)
    assert "1 viewer id named" in out.html_text


def test_the_subject_line_never_carries_requester_text() -> None:
    for kind in KINDS:
        for regulation in REGULATIONS:
            out = render(kind, sample_context(kind, regulation, original_subject="UNIQUE-REQUESTER-TEXT"))
            assert "UNIQUE-REQUESTER-TEXT" not in out.subject


# ---------------------------------------------------------------- requester text is data

HOSTILE = '<script>alert("x")</script> {{ 7*7 }} {% if true %}IF{% endif %} &amp; </p><img src=x onerror=alert(1)>'


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("regulation", REGULATIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_hostile_values_are_escaped_in_html_and_never_evaluated(kind: str, regulation: str, role: str) -> None:
    context = full_context(kind, regulation, role, original_subject=HOSTILE, tenant=HOSTILE)
    for key in ("reasons", "missing", "basis"):
        if key in context:
            context[key] = HOSTILE
    if "refused" in context:
        context["refused"] = [{"id": HOSTILE, "basis": HOSTILE, "reason": HOSTILE}]
    if "recipients_notified" in context:
        context["recipients_notified"] = [HOSTILE]
    if "stores" in context:
        context["stores"] = [{"store": HOSTILE, "description": HOSTILE, "counts": {HOSTILE: 1}, "total": 1}] * 2
    out = render(kind, context)

    tags = {tag for tag, _ in _parse(out.html).tags}
    assert "script" not in tags and "img" not in tags
    assert "<script>" not in out.html
    assert "&lt;script&gt;" in out.html
    for part in (out.text, out.html_text):
        assert "{{ 7*7 }}" in part and "49" not in part
        assert "{% if true %}IF{% endif %}" in part
    assert HOSTILE in out.text  # the text part shows it exactly as written


def test_acknowledgement_quotes_the_original_subject_as_written() -> None:
    out = render("acknowledgement", sample_context("acknowledgement", "gdpr", original_subject="Löschung <bitte> {{ x }}"))
    assert 'Your message was titled: "Löschung <bitte> {{ x }}"' in out.text
    assert "Löschung &lt;bitte&gt; {{ x }}" in out.html
    no_subject = render("acknowledgement", sample_context("acknowledgement", "gdpr", original_subject=""))
    assert "was titled" not in no_subject.text and "was titled" not in no_subject.html_text


# ---------------------------------------------------------------- StrictUndefined and the variable contract


def _variables(kind: str) -> set[str]:
    env = environment()
    found: set[str] = set()
    for suffix in ("txt", "html"):
        source = (PACKAGED / f"{kind}.{suffix}").read_text(encoding="utf-8")
        found |= jinja2.meta.find_undeclared_variables(env.parse(source))
    return found


@pytest.mark.parametrize("kind", KINDS)
def test_templates_use_only_the_documented_context(kind: str) -> None:
    assert _variables(kind) <= COMMON | PER_KIND[kind] | {"loop"}
    assert PER_KIND[kind] <= _variables(kind)  # every kind-specific fact is actually shown


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_variable_is_an_error_not_a_blank(kind: str) -> None:
    for name in sorted(_variables(kind) - {"loop", "regulation"}):
        with pytest.raises(jinja2.UndefinedError):
            for regulation in REGULATIONS:
                for role in ROLES:
                    context = full_context(kind, regulation, role)
                    del context[name]
                    render(kind, context)


def test_a_missing_attribute_is_an_error_not_a_blank() -> None:
    class Controller:
        name = "Example Video Analytics"
        contact = "privacy@example.com"  # no supervisory_authority

    with pytest.raises(jinja2.UndefinedError, match="supervisory_authority"):
        render("rejected", sample_context("rejected", "gdpr", role="controller", controller=Controller()))


# ---------------------------------------------------------------- HTML shape and overriding


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", KINDS)
def test_html_is_a_small_complete_document_with_inline_styles_only(kind: str, role: str) -> None:
    out = render(kind, full_context(kind, "gdpr", role))
    parsed = _parse(out.html)
    tags = [tag for tag, _ in parsed.tags]

    assert out.html.startswith("<!DOCTYPE html>")
    assert tags[:2] == ["html", "head"] and "body" in tags and "title" in tags
    assert dict(parsed.tags[0][1]).get("lang") == "en"
    assert not {"style", "link", "script", "img", "iframe"} & set(tags)
    assert any("style" in attrs for _, attrs in parsed.tags)
    assert "ER-2026-000042" in "".join(parsed.text)


def test_a_configured_folder_overrides_templates_one_by_one(tmp_path: Path) -> None:
    (tmp_path / "acknowledgement.txt").write_text(
        "Subject: Got it: {{ reference }}\n\nThanks, we will answer by {{ due_date }}.\n", encoding="utf-8"
    )
    env = environment(tmp_path)

    ack = render("acknowledgement", sample_context("acknowledgement", "gdpr"), env)
    assert ack.subject == "Got it: ER-2026-000042"
    assert ack.text == "Thanks, we will answer by 29 December 2026.\n"
    assert "What happens next" in ack.html_text  # the HTML part still comes from the package
    completed = render("completed", sample_context("completed", "gdpr"), env)
    assert "being removed" in completed.text
