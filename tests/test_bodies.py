"""How bodies are read: HTML in linear time, only what a person sees, alternatives that agree, safe charsets.

Each class of problem has a table of hostile inputs and near misses, and a
hypothesis property where one can be stated.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erasure.parse import parse_message
from erasure.parse.htmltext import read_html
from erasure.parse.mime import ALLOWED_CHARSETS, allowed_charset, ids_disagree
from erasure.verify import REASONS


def mail(body: str | bytes, content_type: str = "text/html; charset=utf-8", headers: str = "") -> bytes:
    head = (
        "From: Alice <privacy@acme.example>\nTo: privacy@privacy.example\nSubject: GDPR erasure request\n"
        f"Message-ID: <m1@acme.example>\nMIME-Version: 1.0\nContent-Type: {content_type}\n{headers}"
    )
    return head.encode() + b"\n" + (body.encode() if isinstance(body, str) else body)


def codes(raw: bytes) -> set[str]:
    return {p.code for p in parse_message(raw).problems}


# ---------------------------------------------------------------- 1. linear time

PATHOLOGICAL = {
    "unterminated tags": "<a",
    "unterminated tags with a space": "<a ",
    "unterminated comment": "<!--",
    "CDATA openers": "<![CDATA[",
    "character reference openers": "&#",
    "hex references": "&#x9",
    "deeply nested divs": "<div>",
    "deeply nested lists": "<li><ul>",
    "deeply nested tables": "<table><tr><td>",
    "nested formatting": "<b>",
    "misnested formatting": "<a><b></a>x",
    "hiding formatting closed by paragraphs": "<p><font color=white>x</p>",
    "unterminated script": "<script>",
    "unterminated quoted attribute": '<a title="',
    "implied paragraphs": "<p>",
    "stray end tags": "</x>",
    "lone angle brackets": "<",
    "styled spans": '<span style="color:red;font-size:0">x</span>',
    "style sheets": "<style>.a{display:block}</style>",
    "hidden spans never closed": '<span style="display:none">x',
    "body colour changes": "<body bgcolor=red>x",
}


#: A guard against blow-ups, not a speed target (those live in benchmarks/): a quadratic reader
#: takes minutes on 1 MB; a linear one takes about a second on these 2-core machines.
BLOW_UP_SECONDS = 2.0


def cpu(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


@pytest.mark.parametrize("unit", list(PATHOLOGICAL.values()), ids=list(PATHOLOGICAL))
def test_html_reading_is_linear_on_pathological_input(unit: str) -> None:
    half = unit * (512 * 1024 // len(unit))
    full = half + half
    # The fastest of three samples: the machine is shared, and what is pinned is the cost of
    # the algorithm, which the least-disturbed run shows best.
    t_half = t_full = float("inf")
    for _attempt in range(3):
        t_half, t_full = min(t_half, cpu(lambda: read_html(half))), min(t_full, cpu(lambda: read_html(full)))
        if t_full < BLOW_UP_SECONDS and t_full <= 3 * t_half + 0.05:
            break
    assert t_full < BLOW_UP_SECONDS, f"{t_full:.2f} s for 1 MB"
    assert t_full <= 3 * t_half + 0.05, f"doubling the input took {t_full / max(t_half, 1e-6):.1f}x the time"


def test_one_huge_attribute_and_one_huge_text_are_linear() -> None:
    for markup in ("<p title='" + "x" * 1_000_000 + "'>hi", "<p>" + "viewer " * 150_000, "<p style='" + "(" * 1_000_000 + "'>x"):
        assert cpu(lambda markup=markup: read_html(markup)) < 1.0


def test_a_megabyte_of_distinct_styles_is_bounded_and_reported() -> None:
    markup = "".join(f'<span style="color:#{i % 4096:03x};margin:{i}px">x</span>' for i in range(25_000))
    assert len(markup) > 1_000_000
    assert cpu(lambda: read_html(markup)) < 1.0
    assert read_html(markup).too_complex


def test_the_reported_case_through_the_whole_parser() -> None:
    raw = mail("<p>Please erase.</p><p>Viewer ID: a-1</p>" + "<a" * 50_000)
    assert cpu(lambda: parse_message(raw)) < 1.0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["<", ">", "a", "/", "=", '"', "'", "!", "-", "&", "#", ";", "x", " ", "\n", "div", "style",
                                 "script", "p", "font", "color=white", "display:none", "<!--", "-->", "]]>", "\0", "\r"]),
                min_size=1, max_size=12))
def test_any_repeated_fragment_reads_in_linear_time_and_never_raises(parts: list[str]) -> None:
    unit = "".join(parts)
    markup = unit * (256 * 1024 // len(unit) + 1)
    assert cpu(lambda: read_html(markup)) < 0.6


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="<&", blacklist_categories=("Cs",)), max_size=200))
def test_text_without_markup_reads_as_itself(text: str) -> None:
    expected = [" ".join(line.replace("\xa0", " ").split(" ")).strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    got = read_html(text).text
    assert " ".join(got.split()) == " ".join(" ".join(expected).replace("\0", "\ufffd").split())


@pytest.mark.parametrize(
    "markup, lines",
    [
        ("<div>Viewer IDs:</div>\n  <div>a-1</div>\n  <div>a-2</div>\n", ["Viewer IDs:", "a-1", "a-2"]),
        ("<p>Viewer IDs:</p>\n<ul>\n <li>a-1</li>\n <li>a-2</li>\n</ul>", ["Viewer IDs:", "a-1", "a-2"]),
        ("<p>Viewer ID:\n a-1</p>", ["Viewer ID: a-1"]),  # a line break in the source is a space on screen
        ("<pre>Viewer IDs:\na-1\na-2</pre>", ["Viewer IDs:", "a-1", "a-2"]),
        ("Viewer ID: a-1<br>Viewer ID: a-2", ["Viewer ID: a-1", "Viewer ID: a-2"]),
        ("<table><tr><td>Viewer ID:</td><td>a-1</td></tr></table>", ["Viewer ID: a-1"]),
        ("<p>one</p><p>two</p>", ["one", "", "two"]),
        ("<ul><li>a-1</li></ul>Thanks, Alice", ["a-1", "", "Thanks, Alice"]),  # a list ends with a gap
    ],
)
def test_layout_becomes_lines_as_a_reader_sees_them(markup: str, lines: list[str]) -> None:
    assert read_html(markup).text.split("\n") == lines


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_read_html_never_raises(markup: str) -> None:
    reading = read_html(markup)
    assert isinstance(reading.text, str) and isinstance(reading.hidden, tuple)


# ---------------------------------------------------------------- 2. hidden text

HIDING = {
    "display:none": '<div style="display:none">{}</div>',
    "display:none !important over a later block": '<div style="display:none !important; display:block">{}</div>',
    "CSS escape in the property": '<div style="d\\69splay: none">{}</div>',
    "entity in the style": '<div style="display&#58;none">{}</div>',
    "visibility:hidden": '<span style="visibility:hidden">{}</span>',
    "font-size:0": '<span style="font-size:0">{}</span>',
    "font-size:0px": '<span style="font-size:0px">{}</span>',
    "font-size:1px": '<span style="font-size:1px">{}</span>',
    "font shorthand 0/0": '<span style="font:0/0 a">{}</span>',
    "font-size 0 inherited through em": '<div style="font-size:0"><span style="font-size:2em">{}</span></div>',
    "max-height:0 + overflow:hidden": '<div style="max-height:0;overflow:hidden">{}</div>',
    "width:0;height:0;overflow:hidden": '<div style="width:0;height:0;overflow:hidden">{}</div>',
    "line-height:0 + overflow:hidden": '<div style="line-height:0;overflow:hidden">{}</div>',
    "opacity:0": '<div style="opacity:0">{}</div>',
    "opacity multiplies": '<div style="opacity:0.2"><span style="opacity:0.3">{}</span></div>',
    "mso-hide:all": '<span style="mso-hide:all">{}</span>',
    "off screen": '<div style="position:absolute;left:-9999px">{}</div>',
    "text-indent off screen": '<div style="text-indent:-10000px">{}</div>',
    "clip": '<div style="position:absolute;clip:rect(0 0 0 0)">{}</div>',
    "transform scale(0)": '<div style="transform:scale(0)">{}</div>',
    "hidden attribute": "<div hidden>{}</div>",
    "closed details": "<details><summary>More</summary>{}</details>",
    "template": "<template>{}</template>",
    "noscript": "<noscript>{}</noscript>",
    "svg": "<svg><text>{}</text></svg>",
    "white on white": '<span style="color:#fff">{}</span>',
    "white on bgcolor white": '<table bgcolor="white"><tr><td><font color="white">{}</font></td></tr></table>',
    "named colour": '<span style="color:white">{}</span>',
    "nearly white": '<span style="color:#fefefe">{}</span>',
    "rgb on background": '<div style="background:#123456"><span style="color:rgb(18,52,86)">{}</span></div>',
    "black on black": '<div style="background-color:black;color:#000001">{}</div>',
    "transparent": '<span style="color:transparent">{}</span>',
    "webkit fill": '<span style="-webkit-text-fill-color:#fff">{}</span>',
    "body colours": '<body bgcolor="#000000" text="#000000">{}</body>',
    "style sheet": "<style>.x{{display:none}}</style><span class=x>{}</span>",
    "style sheet in a media query": "<style>@media screen{{.x{{font-size:0}}}}</style><span class=x>{}</span>",
    "hiding formatting reopened by the browser": "<p><font color=white>x</p><p>{}</p>",
    "hiding div across a table": '<div style="display:none"><table><tr><td></div>{}</td></tr></table>',
    "CSS colour 4 syntax": '<span style="color:rgb(255 255 255)">{}</span>',
    "oklch white": '<span style="color:oklch(1 0 0)">{}</span>',
    "hsl white": '<span style="color:hsl(0 0% 100%)">{}</span>',
    "black on a black gradient": '<div style="background:linear-gradient(#000,#000)"><span style="color:#000">{}</span></div>',
    "over a background image": '<div style="background-image:url(cid:white.png)">{}</div>',
    "filter": '<span style="filter:opacity(0)">{}</span>',
    "translated off screen": '<span style="transform:translateX(-9999px)">{}</span>',
    "matrix": '<span style="transform:matrix(0,0,0,0,0,0)">{}</span>',
    "1px box, overflow hidden": '<div style="width:1px;height:1px;overflow:hidden">{}</div>',
    "overlapping letters": '<span style="letter-spacing:-1em">{}</span>',
    "bidi override": '<span style="unicode-bidi:bidi-override;direction:rtl">{}</span>',
    "bdo": '<bdo dir="rtl">{}</bdo>',
    "style sheet on body": "<style>body{{font-size:0}}</style>{}",
    "Outlook-only conditional comment": "<!--[if mso]><p>{}</p><![endif]-->",
    "script": "<script>var id = '{}';</script>",
}

VISIBLE = {
    "plain": "<div>{}</div>",
    "display:block": '<div style="display:block">{}</div>',
    "later declaration wins": '<div style="display:none; display:block">{}</div>',
    "visibility undone by a child": '<div style="visibility:hidden"><span style="visibility:visible">{}</span></div>',
    "font-size reset by a child": '<div style="font-size:0"><span style="font-size:14px">{}</span></div>',
    "small but readable": '<span style="font-size:9px">{}</span>',
    "grey signature": '<span style="color:#888">{}</span>',
    "white on dark": '<div style="background:#0a0a0a"><span style="color:#fff">{}</span></div>',
    "max-height:0 without overflow hidden": '<div style="max-height:0">{}</div>',
    "opacity 0.9": '<div style="opacity:0.9">{}</div>',
    "aria-hidden (sighted people see it)": '<div aria-hidden="true">{}</div>',
    "open details": "<details open><summary>More</summary>{}</details>",
    "hidden attribute overridden": '<div hidden style="display:block">{}</div>',
    "Outlook style sheet": '<style><!-- p.MsoNormal {{margin:0cm;font-size:11.0pt;color:windowtext}} --></style><p class=MsoNormal>{}</p>',
    "OWA hidden style element": '<style type="text/css" style="display:none;">P {{margin-top:0;}}</style><div>{}</div>',
    "text in head": "<html><head><title>Request</title></head><body><p>{}</p></body></html>",
    "Outlook conditional XML": '<!--[if gte mso 9]><xml><o:shapedefaults v:ext="edit" spidmax="1026" /></xml><![endif]--><p>{}</p>',
    "everyone-but-Outlook block": "<!--[if !mso]><!--><p>{}</p><!--<![endif]-->",
    "rotated a little": '<span style="transform:rotate(2deg)">{}</span>',
    "white on a dark gradient": '<div style="background:linear-gradient(#000,#333)"><span style="color:#fff">{}</span></div>',
    "right-to-left paragraph": '<p dir="rtl" style="direction:rtl">{}</p>',
}


@pytest.mark.parametrize(
    "markup, shown",
    [
        ('<p style="text-transform:uppercase">Viewer ID: abc-1</p>', "VIEWER ID: ABC-1"),
        ('<p style="text-transform:lowercase">Viewer ID: ABC-1</p>', "viewer id: abc-1"),
        ('<p style="text-transform:none">Viewer ID: AbC-1</p>', "Viewer ID: AbC-1"),
    ],
)
def test_text_is_read_in_the_case_a_person_sees(markup: str, shown: str) -> None:
    assert read_html(markup).text == shown


def test_capitalized_text_is_reported_since_browsers_disagree_on_words() -> None:
    assert read_html('<p style="text-transform:capitalize">Viewer ID: abc-def</p>').hidden


@pytest.mark.parametrize("template", list(HIDING.values()), ids=list(HIDING))
def test_hidden_text_is_not_read_and_is_reported(template: str) -> None:
    reading = read_html("<p>Please erase.</p>" + template.format("Viewer ID: secret-7"))
    assert "secret-7" not in reading.text
    assert reading.hidden


@pytest.mark.parametrize("template", list(VISIBLE.values()), ids=list(VISIBLE))
def test_visible_text_is_read_and_not_reported(template: str) -> None:
    reading = read_html("<p>Please erase.</p>" + template.format("Viewer ID: shown-7"))
    assert "Viewer ID: shown-7" in reading.text.splitlines()
    assert reading.hidden == ()


WRAPPERS = ["<b>{}</b>", "<p>{}</p>", "<span>{}</span>", "<table><tr><td>{}</td></tr></table>", "<div><i>{}</i></div>",
            "<font face=Arial>{}</font>", "<ul><li>{}</li></ul>", "<blockquote>{}</blockquote>", "<a href='x'>{}</a>"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(HIDING.values())), st.lists(st.sampled_from(WRAPPERS), max_size=4),
       st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}", fullmatch=True))
def test_hidden_stays_hidden_inside_any_wrapping(template: str, wrappers: list[str], viewer: str) -> None:
    inner = template.format(f"Viewer ID: zz{viewer}")
    for wrapper in wrappers:
        inner = wrapper.format(inner)
    reading = read_html("<p>Please erase.</p>" + inner + "<p>Thanks</p>")
    assert f"zz{viewer}" not in reading.text
    assert reading.hidden


# Tag soup against a browser-grade tree builder (lexbor): whatever the soup, text a
# browser puts under a hidden element must never be read without a report, and text
# it shows must not silently disappear. Our tree is simplified (no insertion modes,
# no adoption agency), so where it cannot follow, it must say so.
SOUP = ["<div>", "</div>", "<p>", "</p>", "<b>", "</b>", "<font>", "</font>", "<table>", "</table>", "<tr>", "<td>", "</td>",
        "<li>", "<ul>", "</ul>", "<span>", "</span>", "<a href=x>", "</a>", "<i>", "</i>", "<template>", "</template>", "<h1>",
        "</h1>", "<h2>", "</h3>", "<dd>", "<dt>", "<dl>", "<br>", "</br>", "<caption>", "<tbody>", "<th>", "<option>", "<nobr>",
        "<button>", "</button>", "<em>", "</em>", "<blockquote>", "</blockquote>", "<section>", "</section>", "<select>",
        "</select>", "<svg>", "</svg>", "<script>", "</script>", "<textarea>", "</textarea>", "<title>", "</title>", "<style>",
        "</style>", "<noscript>", "</noscript>", "<!-- c -->", "<!-->", "<!--->", "<!-- x --!>", "<!--", "-->", "<xmp>", "</xmp>",
        "<details>", "</details>", "<details open>", "<object>", "</object>", "<marquee>", "</marquee>", "<form>", "</form>",
        "<math>", "<div/>", "<a title='>'>", "<image>", "<![CDATA[", "]]>", "<?x>", "</ x>", "<", "&lt;", "<p", '"', "'",
        "<frameset>", "<col>", "</tr>", "<iframe>", "</iframe>", "<pre>", "</pre>", "<dialog open>", "<body>", "</body>", " "]
SOUP_HIDERS = ["<div hidden>", "<span hidden>", "<b hidden>", "<font hidden>", "<p hidden>", "<td hidden>", "<table hidden>",
               "<tr hidden>", "<li hidden>", "<a hidden href=y>", "<i hidden>", "<ul hidden>", "<body hidden>", "<caption hidden>",
               "<object hidden>", "<marquee hidden>", "<h1 hidden>", "<form hidden>", '<div style="display:none">']
NOT_SHOWN = {"template", "script", "style", "noscript", "select", "svg", "math", "title", "iframe", "xmp", "details", "dialog"}


def browser_shows(markup: str) -> dict[str, bool]:
    from selectolax.lexbor import LexborHTMLParser

    shown: dict[str, bool] = {}
    for node in LexborHTMLParser(markup).root.traverse(include_text=True):
        if node.tag != "-text":
            continue
        hidden, parent = False, node.parent
        while parent is not None:
            attrs = parent.attributes or {}
            if (parent.tag in NOT_SHOWN and not (parent.tag in ("details", "dialog") and "open" in attrs)
                    or "hidden" in attrs or "display:none" in (attrs.get("style") or "")):
                hidden = True
            parent = parent.parent
        for word in (node.text_content or "").split():
            shown[word] = shown.get(word, False) or not hidden
    return shown


def never_read_silently(markup: str) -> None:
    shown = browser_shows(markup)
    reading = read_html(markup)
    read = set(reading.text.split())
    for mark in sorted({w for w in markup.replace("<", " ").replace(">", " ").split() if w.startswith("MK")}):
        if mark in read and not shown.get(mark, False):
            assert reading.hidden, f"{mark} is hidden by a browser but was read without a report"
        if shown.get(mark, False) and mark not in read:
            assert reading.hidden or reading.too_complex, f"{mark} is shown by a browser but was lost without a report"


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(SOUP), st.sampled_from(SOUP_HIDERS), st.just("MARK")), min_size=1, max_size=24))
def test_never_reads_silently_what_a_browser_hides(parts: list[str]) -> None:
    marks = 0
    for i, part in enumerate(parts):
        if part == "MARK":
            parts[i], marks = f" MK{marks} ", marks + 1
    never_read_silently("".join(parts))


@pytest.mark.parametrize(
    "markup",
    [  # soups that once fooled the reader
        "<span hidden></table><blockquote></span> MK0 <option>",  # </span> may not close past a special element
        "<font><em></div><caption><i hidden><tbody><li hidden></i> MK0  MK1 ",  # the adoption agency keeps the <li>
        "<a href=x> MK0 <font hidden><button><i hidden></button></font> MK1 ",  # a closed <i> is reopened
        " MK0 <ul hidden><i hidden></td><tr></ul> MK1 ",
        "<form hidden><!-- MK0 <!--></h1><span hidden></form><b></table> MK1 <pre> MK2 ",  # </form> leaves its insides open
        "<object hidden><details open><!---><table hidden><td></object> MK2  MK3 &lt;",  # no </object> out of a table cell
        "<frameset> MK0 </font></font>",
        " MK0 <object hidden><td hidden><p hidden><select></object> MK1  MK2 <marquee hidden>",
        "<select hidden></h3><math></blockquote><select hidden> MK0  MK1 <dl><dialog><select hidden><p hidden></select>",
        "<i> MK0 <math><style></textarea><!-- x --!> MK1  MK2 <caption hidden><nobr></p><i></marquee><td hidden> MK3 </tr>",
    ],
)
def test_soups_that_once_fooled_the_reader(markup: str) -> None:
    never_read_silently(markup)


def test_a_nul_ends_no_raw_text_element() -> None:
    """Browsers read NUL in a tag name as U+FFFD, so "</sty\\0le>" does not end the style sheet."""
    for markup in ("<style>p{}</sty\0le>Viewer ID: x-1</style>", "<script>1</scr\0ipt>Viewer ID: x-1</script>"):
        assert "x-1" not in read_html(markup).text


@pytest.mark.parametrize("name", ["display:none", "white on white", "font-size:0", "style sheet"])
def test_a_request_with_hidden_text_goes_to_review_without_the_hidden_id(name: str) -> None:
    html = "<p>Please erase (GDPR).</p><p>Viewer ID: seen-1</p>" + HIDING[name].format("Viewer ID: unseen-2")
    message = parse_message(mail(html))
    assert "hidden_text" in {p.code for p in message.problems}
    assert "unseen-2" not in message.viewer_ids


def test_a_long_thread_repeating_its_styles_is_not_too_complex() -> None:
    paragraph = '<p class=MsoNormal style="margin:0cm;font-size:11.0pt;font-family:Calibri,sans-serif;color:#1F497D">line {}</p>'
    reading = read_html("".join(paragraph.format(i) for i in range(20_000)))
    assert not reading.too_complex and not reading.hidden


def test_the_html_is_too_deep_to_read() -> None:
    message = parse_message(mail("<p>Please erase.</p>" + "<div>" * 1000 + "Viewer ID: d-1"))
    assert "html_too_complex" in {p.code for p in message.problems}


def test_new_problem_codes_have_reasons() -> None:
    for code in ("hidden_text", "alternatives_disagree", "charset_refused", "html_too_complex"):
        assert REASONS[code]


# ---------------------------------------------------------------- alternatives

PLAIN_AND_HTML = 'multipart/alternative; boundary="b"'


def alternative(plain: str, html: str) -> bytes:
    return mail(
        f"--b\nContent-Type: text/plain; charset=utf-8\n\n{plain}\n--b\nContent-Type: text/html; charset=utf-8\n\n{html}\n--b--\n",
        PLAIN_AND_HTML,
    )


@pytest.mark.parametrize(
    "plain, html, disagree",
    [
        ("Viewer ID: a-1", "<p>Viewer ID: a-1</p>", False),
        ("Viewer ID: a-1", "<p>Viewer ID: a-2</p>", True),
        ("Viewer ID: a-1", "<p>Viewer ID: a-1</p><p>Viewer ID: a-2</p>", True),
        ("Viewer ID: a-1\nViewer ID: a-2", "<p>Viewer ID: a-2</p><p>Viewer ID: a-1</p>", False),  # order does not matter
        ("Viewer IDs:\n- a-1\n- a-2", "<div>Viewer IDs:</div><ul><li>a-1</li><li>a-2</li></ul>", False),
        ("Viewer IDs:\na-1\na-2\n\nThanks", ("<p class=MsoNormal>Viewer IDs:</p><p class=MsoNormal>a-1</p><p class=MsoNormal>a-2</p>"
         "<p class=MsoNormal>&nbsp;</p><p class=MsoNormal>Thanks</p>"), False),  # Outlook: a paragraph a line
        ("Viewer ID: a-1", '<p>Viewer ID: a-1</p><p style="display:none">Viewer ID: a-2</p>', False),  # hidden is not read
        ("Viewer ID: a-1", "<p>Viewer ID: a&#45;2</p>", True),
        ("Viewer ID: a-1\n\n> Viewer ID: old", "<p>Viewer ID: a-1</p><blockquote>Viewer ID: older</blockquote>", False),
        ("Please erase.", "<p>Please erase.</p>", False),
        ("Please erase.", "<p>Please erase.</p><p>Viewer ID: a-9</p>", True),
    ],
)
def test_ids_disagree(plain: str, html: str, disagree: bool) -> None:
    assert ids_disagree(plain, read_html(html).text) is disagree
    assert ids_disagree(read_html(html).text, plain) is disagree


def test_alternatives_naming_different_ids_go_to_review() -> None:
    message = parse_message(alternative("Please erase.\nViewer ID: plain-1\n", "<p>Please erase.</p><p>Viewer ID: html-1</p>"))
    assert "alternatives_disagree" in {p.code for p in message.problems}
    assert message.viewer_ids == ("plain-1",)


def test_alternatives_that_agree_raise_nothing() -> None:
    message = parse_message(alternative("Please erase.\nViewer ID: same-1\n", "<p>Please erase.</p><p>Viewer ID: <b>same-1</b></p>"))
    assert message.problems == () and message.viewer_ids == ("same-1",)


def test_plain_text_inside_related_and_mixed_wrappers_is_still_preferred() -> None:
    body = (
        "--outer\nContent-Type: multipart/related; boundary=rel\n\n"
        "--rel\nContent-Type: text/html\n\n<p>Please erase.</p><p>Viewer ID: r-1</p><img src=cid:logo>\n"
        "--rel\nContent-Type: image/png\nContent-ID: <logo>\n\niVBOR\n--rel--\n"
        "--outer\nContent-Type: multipart/mixed; boundary=mix\n\n"
        "--mix\nContent-Type: text/plain\n\nPlease erase.\nViewer ID: r-1\n"
        "--mix\nContent-Type: text/csv\nContent-Disposition: attachment; filename=ids.csv\n\nviewer_id\nr-2\n--mix--\n"
        "--outer--\n"
    )
    message = parse_message(mail(body, 'multipart/alternative; boundary="outer"'))
    assert message.viewer_ids == ("r-1", "r-2")  # the plain branch with its file was read
    assert message.problems == ()


def test_plain_and_related_html_alternatives_are_compared() -> None:
    body = (
        "--outer\nContent-Type: text/plain\n\nPlease erase.\nViewer ID: p-1\n"
        "--outer\nContent-Type: multipart/related; boundary=rel\n\n"
        "--rel\nContent-Type: text/html\n\n<p>Please erase.</p><p>Viewer ID: p-2</p>\n"
        "--rel\nContent-Type: image/png\n\niVBOR\n--rel--\n--outer--\n"
    )
    message = parse_message(mail(body, 'multipart/alternative; boundary="outer"'))
    assert message.viewer_ids == ("p-1",)
    assert "alternatives_disagree" in {p.code for p in message.problems}


# ---------------------------------------------------------------- 3. charsets

ALLOWED = ["utf-8", "UTF-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1", "iso-8859-2", "iso-8859-15", "windows-1250",
           "windows-1252", "cp1252", "windows-1258", "koi8-r", "koi8-u", "shift_jis", "cp932", "windows-31j", "euc-jp",
           "gb2312", "gbk", "gb18030", "big5", "big5-hkscs", "euc-kr", "ks_c_5601-1987", "cp949", "windows-874", "tis-620",
           "utf-16", "utf-16le", "utf-16be", "utf-32", "utf-32le", "utf-32be"]
REFUSED = ["utf-7", "UTF-7", "unicode-1-1-utf-7", "utf-7-imap", "hz-gb-2312", "hz", "iso-2022-jp", "iso-2022-jp-2",
           "iso-2022-kr", "iso-2022-cn", "unicode-escape", "raw-unicode-escape", "unicode_internal", "punycode", "idna",
           "base64", "rot13", "zlib", "hex", "undefined", "utf-8-sig", "shift_jis_2004", "x-no-such-charset", "cp037",
           "palmos", "mac-roman", "cp850", "", "utf-16-ex"]


@pytest.mark.parametrize("name", ALLOWED)
def test_allowed_charsets(name: str) -> None:
    assert allowed_charset(name) in ALLOWED_CHARSETS


@pytest.mark.parametrize("name", REFUSED)
def test_refused_charsets(name: str) -> None:
    assert allowed_charset(name) is None


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(ALLOWED_CHARSETS)), st.binary(max_size=64).map(lambda b: bytes(c & 0x7F for c in b)))
def test_in_every_allowed_charset_ascii_reads_as_itself(codec: str, data: bytes) -> None:
    """The property that makes a charset safe: an id typed in ASCII cannot turn into another id."""
    text = data.decode("ascii")
    if codec.startswith(("utf-16", "utf-32")):
        assert text.encode(codec).decode(codec) == text  # not ASCII-compatible, but no shifting state either
    else:
        assert data.decode(codec) == text


@pytest.mark.parametrize(
    "codec, smuggled",
    [("utf-7", b"viewer+AC0-00002"), ("hz", b"viewer~{!!~}-00002"), ("iso2022_jp", b"viewer\x1b(J\\-00002"),
     ("unicode-escape", b"viewer\\x2d00002"), ("raw-unicode-escape", b"viewer\\u002d00002"), ("shift_jis_2004", b"viewer\\00002")],
)
def test_each_refused_family_really_smuggles(codec: str, smuggled: bytes) -> None:
    """Why they are refused: these ASCII bytes decode to something other than themselves."""
    assert smuggled.decode(codec) != smuggled.decode("ascii")
    assert allowed_charset(codec) is None


@pytest.mark.parametrize("charset", REFUSED[:12])
def test_a_refused_charset_in_a_csv_is_not_read(charset: str) -> None:
    body = (
        "--b\nContent-Type: text/plain; charset=utf-8\n\nPlease erase the viewers in the file.\n"
        f'--b\nContent-Type: text/csv; charset="{charset}"\nContent-Disposition: attachment; filename=ids.csv\n\n'
        "viewer_id\nviewer+AC0-00002\n--b--\n"
    )
    message = parse_message(mail(body, 'multipart/mixed; boundary="b"'))
    assert "charset_refused" in {p.code for p in message.problems}
    assert message.viewer_ids == ()


@pytest.mark.parametrize("charset", ["utf-7", "hz-gb-2312", "iso-2022-jp", "x-made-up", "unicode-escape"])
def test_a_refused_charset_in_a_body_is_read_as_ascii_only(charset: str) -> None:
    message = parse_message(mail(b"Please erase.\nViewer ID: viewer+AC0-00002\n", f"text/plain; charset={charset}"))
    assert "charset_refused" in {p.code for p in message.problems}
    assert "viewer-00002" not in message.viewer_ids
    assert message.kind == "erasure"


@pytest.mark.parametrize("charset", ["utf-8", "iso-8859-1", "windows-1252", "koi8-r", "shift_jis", "gb18030", "euc-kr"])
def test_allowed_charsets_read_bodies_and_csvs(charset: str) -> None:
    body = (
        "--b\nContent-Type: text/plain; charset=" + charset + "\n\nPlease erase.\nViewer ID: body-1\n"
        "--b\nContent-Type: text/csv; charset=" + charset + "\nContent-Disposition: attachment; filename=ids.csv\n\n"
        "viewer_id\ncsv-1\n--b--\n"
    )
    message = parse_message(mail(body, 'multipart/mixed; boundary="b"'))
    assert message.viewer_ids == ("body-1", "csv-1") and message.problems == ()


@pytest.mark.parametrize(
    "charset, data",
    [
        ("utf-16", codecs.BOM_UTF16_LE + "viewer_id\nu16-1\n".encode("utf-16-le")),
        ("utf-16", "viewer_id\nu16-1\n".encode("utf-16-be")),  # no BOM: big-endian (RFC 2781)
        ("utf-16le", "viewer_id\nu16-1\n".encode("utf-16-le")),
        ("utf-32", codecs.BOM_UTF32_LE + "viewer_id\nu16-1\n".encode("utf-32-le")),  # not mistaken for UTF-16's BOM
        ("utf-32be", "viewer_id\nu16-1\n".encode("utf-32-be")),
    ],
)
def test_utf16_and_utf32_csvs_with_and_without_bom(charset: str, data: bytes) -> None:
    import base64

    body = (
        b"--b\nContent-Type: text/plain\n\nPlease erase the viewers in the file.\n"
        b"--b\nContent-Type: text/csv; charset=" + charset.encode() + b"\nContent-Transfer-Encoding: base64\n"
        b"Content-Disposition: attachment; filename=ids.csv\n\n" + base64.encodebytes(data) + b"--b--\n"
    )
    message = parse_message(mail(body, 'multipart/mixed; boundary="b"'))
    assert message.viewer_ids == ("u16-1",) and message.problems == ()


def test_a_refused_charset_beats_a_byte_order_mark() -> None:
    raw = mail(codecs.BOM_UTF8 + b"Please erase.\nViewer ID: bom-1\n", "text/plain; charset=utf-7")
    assert "charset_refused" in codes(raw)
