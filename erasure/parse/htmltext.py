"""HTML bodies -> the text a person sees, and whether anything was hidden from them.

Two requirements shape this module:

* Linear time on every input. The standard library's ``html.parser`` rescans
  unterminated tags (``"<a" * 50000`` took 9 s), and full HTML5 tree builders
  (lexbor, html5lib) are quadratic on deep nesting because the specification's
  "element in scope" checks walk the stack of open elements. So the tokenizer
  here is our own: one forward pass that follows the HTML5 tokenizer on the
  points that decide what is text (tags end at the first ``>`` outside quoted
  attribute values, an unterminated tag or comment swallows the rest of the
  input, comments end at ``-->``/``--!>``, script/style/textarea/title are raw
  text), and every lookup in the stack of open elements is O(1) through index
  tables. The stack is capped in depth.
* Read only what a person sees. An id a person cannot see must not be erased,
  and text hidden in a request is itself suspicious, so hidden text is left out
  AND reported (``HtmlReading.hidden``) for review. Hidden means: ``display:none``,
  ``visibility:hidden``, a font too small to read, ``opacity:0``, a zero-sized
  box with ``overflow:hidden``, pushed off screen, clipped, ``mso-hide:all``, the
  ``hidden`` attribute, closed ``<details>``/``<dialog>``, ``<template>``, SVG,
  ``<select>``, ``<noscript>``/``<iframe>`` fallback text, and text whose colour
  is (nearly) that of its background. ``aria-hidden`` is NOT hidden: it hides
  from screen readers only, a sighted person sees the text, so it is read.
  A style sheet (``<style>``) that hides anything also counts, since we do not
  match its selectors. Where our simplified tree could differ from a browser's
  on a hiding element (it is closed implicitly or by a misnested end tag) we
  cannot be sure what is visible, and say so the same way.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache

import tinycss2  # type: ignore[import-untyped]
import tinycss2.color4  # type: ignore[import-untyped]

MAX_DEPTH = 256  # open elements; real mail nests a few dozen levels
MAX_STYLE_CHARS = 4096  # one style attribute; longer ones are not parsed (the element counts as hidden)
MAX_CSS_CHARS = 200_000  # all CSS parsed for one body: tinycss2 costs ~2 us a character at worst
MIN_CONTRAST = 1.5  # WCAG contrast ratio below which text is taken as invisible (#ddd on white is 1.35)
MIN_FONT_PX = 3.0
OFFSCREEN_PX = -500.0


@dataclass(frozen=True)
class HtmlReading:
    """What a person sees of an HTML body, and what was hidden from them."""

    text: str
    hidden: tuple[str, ...]  # why text was hidden (one entry per kind), empty when nothing was
    too_complex: bool  # nested or styled beyond our limits: a person must look


# ---------------------------------------------------------------- tag tables

_VOID = frozenset(
    ["area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img", "input", "keygen", "link", "meta", "param", "source", "track", "wbr"]
)
_RAW_SILENT = frozenset({"script", "style", "title"})  # code and metadata: never shown, never suspicious
_RAW_HIDDEN = frozenset({"noscript", "noembed", "noframes", "iframe", "xmp"})  # fallback text some clients hide
_RAW = _RAW_SILENT | _RAW_HIDDEN | {"textarea"}
_NOT_RENDERED = {"template": "<template>", "svg": "SVG", "math": "MathML", "select": "<select>", "datalist": "<datalist>"}
_PARAGRAPH = frozenset(["p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "listing", "table", "ul", "ol", "dl"])  # a blank line
_BLOCK = frozenset(
    ["address", "article", "aside", "center", "dd", "details", "dialog", "dir", "div", "dl", "dt", "ul", "ol", "fieldset", "figcaption", "figure", "footer", "form", "header", "hgroup", "hr", "li", "main", "menu", "nav", "section", "summary", "tr", "caption", "legend", "option"]
) | _PARAGRAPH
_CELL = frozenset({"td", "th"})
_LISTS = frozenset({"ul", "ol", "dl"})
_CLOSES_P = frozenset(
    ["address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div", "dl", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "main", "menu", "nav", "ol", "p", "pre", "listing", "section", "summary", "ul", "li", "dd", "dt", "plaintext"]
)  # not "table": in quirks mode (most mail has no doctype) a table does not close a paragraph
_FORMATTING = frozenset(["a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u"])
_SCOPE = frozenset(["applet", "caption", "html", "table", "td", "th", "marquee", "object", "template"])
_TABLE_PARTS = frozenset(["td", "th", "tr", "tbody", "thead", "tfoot", "caption", "colgroup"])
_IN_TABLE_SCOPE = _TABLE_PARTS | {"table"}
_HEADINGS = frozenset(["h1", "h2", "h3", "h4", "h5", "h6"])
_PRE = frozenset({"pre", "listing", "textarea", "plaintext"})
_IMPLIES = _CLOSES_P | _CELL | _HEADINGS | {"tr", "tbody", "thead", "tfoot", "option", "optgroup", "a", "nobr", "button"}
# The HTML standard's "special" elements: an unknown end tag does not close past them.
_SPECIAL = frozenset(
    ["address", "applet", "area", "article", "aside", "base", "basefont", "bgsound", "blockquote", "body", "br", "button", "caption", "center", "col", "colgroup", "dd", "details", "dialog", "dir", "div", "dl", "dt", "embed", "fieldset", "figcaption", "figure", "footer", "form", "frame", "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "head", "header", "hgroup", "hr", "html", "iframe", "img", "input", "keygen", "li", "link", "listing", "main", "marquee", "menu", "meta", "nav", "noembed", "noframes", "noscript", "object", "ol", "p", "param", "plaintext", "pre", "script", "search", "section", "select", "source", "style", "summary", "table", "tbody", "td", "template", "textarea", "tfoot", "th", "thead", "title", "tr", "track", "ul", "wbr", "xmp", "svg", "math"]
)
# End tags that close their element whenever it is in scope (the rest follow "any other end tag").
_SCOPED_END = frozenset(
    ["address", "article", "aside", "blockquote", "button", "center", "details", "dialog", "dir", "div", "dl", "fieldset", "figcaption", "figure", "footer", "header", "hgroup", "listing", "main", "menu", "nav", "ol", "pre", "search", "section", "summary", "ul", "form", "p", "li", "dd", "dt", "applet", "marquee", "object", "template", "table", "tbody", "thead", "tfoot", "tr", "td", "th", "caption", "colgroup", "select", "textarea", "script", "style", "title", "noscript", "iframe", "noembed", "noframes", "xmp", "svg", "math"]
)
_IGNORED_TAGS = frozenset({"html", "head", "body"})  # never pushed: the root stands for them

_WS = "\t\n\f\r "
_TAG_OPEN = re.compile(r"<(/?)([A-Za-z][^\t\n\f\r />]*)")
_ATTR_GAP = re.compile(r"[\t\n\f\r /]*")
_ATTR_NAME = re.compile(r"=?[^\t\n\f\r />=]*")
_ATTR_EQ = re.compile(r"[\t\n\f\r ]*=[\t\n\f\r ]*")
_UNQUOTED = re.compile(r"[^\t\n\f\r >]*")
_COMMENT_END = re.compile(r"--!?>")
_TAGS = re.compile(r"<[^>]*>|\[if[^\]]*\]>?|<?!?\[endif\]|<!-*")
_CONDITIONAL_TEXT = re.compile(r"[^\t\n\f\r \xa0]")
_SPACES = re.compile(r"[\t\n\f\r ]+")
_LINE_SPACES = re.compile(r"[ \t\xa0]+")


# ---------------------------------------------------------------- colours and the look of an element

_WHITE = 1.0  # colours are kept as their relative luminance: contrast needs nothing else
_BLACK = 0.0


def _luminance(red: float, green: float, blue: float) -> float:
    def lin(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(red) + 0.7152 * lin(green) + 0.0722 * lin(blue)


def contrast(a: float, b: float) -> float:
    """WCAG 2 contrast ratio of two luminances, 1 (same colour) .. 21 (black on white)."""
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


class _Look:
    """How an element's text is drawn, as far as it decides whether a person can see it."""

    __slots__ = ("alpha", "background", "case", "color", "font_px", "gone", "invisible", "opacity", "pre", "quote", "why")

    def __init__(self, gone: str | None, invisible: bool, font_px: float | None, color: float, alpha: float,
                 background: float | None, opacity: float, quote: bool, pre: bool, case: str = "") -> None:
        self.gone = gone  # not overridable by descendants (display:none, clipping, ...)
        self.invisible = invisible  # visibility:hidden, which a descendant may undo
        self.font_px = font_px  # None: a size we cannot compute (vw, calc...), taken as readable
        self.color, self.alpha, self.background, self.opacity = color, alpha, background, opacity
        self.quote, self.pre = quote, pre
        self.case = case  # text-transform: what a person sees is "VIEWER-1", not "viewer-1"
        self.why = self._why()

    def _why(self) -> str | None:
        if self.gone:
            return self.gone
        if self.invisible:
            return "visibility:hidden"
        if self.opacity < 0.1:
            return "opacity:0"
        if self.font_px is not None and self.font_px < MIN_FONT_PX:
            return "font-size:0"
        if self.alpha < 0.2 or contrast(self.color, _WHITE if self.background is None else self.background) < MIN_CONTRAST:
            return "text coloured like its background"
        if self.background is None:
            return "text over a background image"
        return None

    def child(self, **changes: object) -> _Look:
        """This look with some properties changed (the same object when nothing changes)."""
        if all(getattr(self, name) == value for name, value in changes.items()):
            return self
        values = {name: getattr(self, name) for name in self.__slots__ if name != "why"}
        values.update(changes)
        return _Look(**values)  # type: ignore[arg-type]


_ROOT = _Look(None, False, 16.0, _BLACK, 1.0, _WHITE, 1.0, False, False)
_CASES = {"uppercase": str.upper, "lowercase": str.lower}


def _color(value: str | object) -> tuple[float, float] | None:
    """A CSS or legacy (``bgcolor="white"``, ``color="fff"``) colour as (luminance, alpha); None when unknown."""
    if isinstance(value, str):
        value = value.strip()
        if re.fullmatch(r"[0-9a-fA-F]{3}|[0-9a-fA-F]{6}", value):
            value = "#" + value
    try:
        parsed = tinycss2.color4.parse_color(value)
        if parsed is None or isinstance(parsed, str):  # currentcolor: the inherited colour
            return None
        space, coords = parsed.space, tuple(c or 0.0 for c in parsed.coordinates)
        if space in ("hsl", "hwb"):
            space, coords = "srgb", tuple(parsed.to("srgb").coordinates)
        if space == "srgb":
            luminance = _luminance(*(min(1.0, max(0.0, c)) for c in coords))
        elif space in ("lab", "lch"):
            luminance = ((coords[0] + 16) / 116) ** 3
        elif space in ("oklab", "oklch"):
            luminance = coords[0] ** 3
        elif space.startswith("xyz"):
            luminance = coords[1]
        else:
            return None
        return min(1.0, max(0.0, luminance)), float(parsed.alpha)
    except Exception:  # noqa: BLE001  a colour we cannot read is no colour; reading mail never raises
        return None


def _first_color(tokens: list[object]) -> tuple[float, float] | None:
    for token in _values(tokens):
        if getattr(token, "type", "") == "function" and token.lower_name.endswith("gradient"):  # type: ignore[attr-defined]
            found = _first_color(token.arguments)  # type: ignore[attr-defined]
        else:
            found = _color(token)
        if found is not None:
            return found
    return None


def _has_image(tokens: list[object]) -> bool:
    return any(getattr(t, "type", "") == "url" or getattr(t, "type", "") == "function" and t.lower_name in ("url", "image-set")  # type: ignore[attr-defined]
               for t in tokens)


_LENGTH_PX = {"px": 1.0, "pt": 4 / 3, "pc": 16.0, "in": 96.0, "cm": 96 / 2.54, "mm": 96 / 25.4, "q": 96 / 101.6}


def _px(token: object, font_px: float | None) -> float | None:
    """A length in CSS pixels; None when it cannot be known (viewport units, calc(), keywords)."""
    kind = getattr(token, "type", "")
    if kind == "number":
        return float(token.value)  # type: ignore[attr-defined]
    if kind == "percentage":
        return None if font_px is None else font_px * float(token.value) / 100  # type: ignore[attr-defined]
    if kind == "dimension":
        unit = token.lower_unit  # type: ignore[attr-defined]
        value = float(token.value)  # type: ignore[attr-defined]
        if unit in _LENGTH_PX:
            return value * _LENGTH_PX[unit]
        if unit in ("em", "ex", "ch", "rem"):
            base = 16.0 if unit == "rem" else font_px
            return None if base is None else value * base * (1.0 if unit in ("em", "rem") else 0.5)
        if value == 0:
            return 0.0
    return None


def _values(tokens: list[object]) -> list[object]:
    return [t for t in tokens if getattr(t, "type", "") not in ("whitespace", "comment")]


def _ident(tokens: list[object]) -> str:
    vals = _values(tokens)
    return vals[0].lower_value if len(vals) == 1 and getattr(vals[0], "type", "") == "ident" else ""  # type: ignore[attr-defined]


def _number(tokens: list[object]) -> float | None:
    vals = _values(tokens)
    if len(vals) == 1 and getattr(vals[0], "type", "") in ("number", "percentage"):
        v = float(vals[0].value)  # type: ignore[attr-defined]
        return v / 100 if vals[0].type == "percentage" else v  # type: ignore[attr-defined]
    return None


_RELEVANT = frozenset(
    ["display", "visibility", "opacity", "font-size", "font", "color", "-webkit-text-fill-color", "background-color", "background", "max-height", "height", "max-width", "width", "line-height", "overflow", "overflow-x", "overflow-y", "text-indent", "position", "left", "top", "margin-left", "margin-top", "clip", "clip-path", "transform", "mso-hide", "zoom", "content-visibility",
     "filter", "right", "bottom", "unicode-bidi", "text-transform", "letter-spacing", "background-image"]
)


@lru_cache(maxsize=4096)
def _declarations(style: str) -> tuple[tuple[str, tuple[object, ...]], ...]:
    """The relevant declarations that win (the last one, unless an earlier one is !important)."""
    won: dict[str, tuple[tuple[object, ...], bool]] = {}
    for node in tinycss2.parse_blocks_contents(style, skip_comments=True, skip_whitespace=True):
        if getattr(node, "type", "") != "declaration" or node.lower_name not in _RELEVANT:  # type: ignore[union-attr]
            continue
        important = bool(node.important)  # type: ignore[union-attr]
        previous = won.get(node.lower_name)  # type: ignore[union-attr]
        if previous is None or important or not previous[1]:
            won[node.lower_name] = (tuple(node.value), important)  # type: ignore[union-attr]
    return tuple((name, value) for name, (value, _) in won.items())


def _hides(props: dict[str, list[object]], font_px: float | None) -> str | None:
    """Declarations that hide an element whatever its descendants say."""
    if _ident(props.get("display", [])) == "none":
        return "display:none"
    if _ident(props.get("content-visibility", [])) == "hidden":
        return "content-visibility:hidden"
    if _ident(props.get("mso-hide", [])) == "all":
        return "mso-hide:all"
    zoom = _number(props.get("zoom", []))
    if zoom is not None and zoom < 0.1:
        return "zoom:0"
    overflow = {_ident(props.get(p, [])) for p in ("overflow", "overflow-x", "overflow-y")}
    if overflow & {"hidden", "clip"}:
        for prop in ("max-height", "height", "max-width", "width", "line-height"):
            vals = _values(props.get(prop, []))
            px = _px(vals[0], font_px) if len(vals) == 1 else None
            if px is not None and px < MIN_FONT_PX:
                return f"{prop}:0 with overflow:hidden"
    if _ident(props.get("unicode-bidi", [])) in ("bidi-override", "isolate-override"):
        return "unicode-bidi:bidi-override (text shown in another order)"
    if _values(props.get("filter", [])) and _ident(props["filter"]) != "none":
        return "filter"
    spacing = _values(props.get("letter-spacing", []))
    if len(spacing) == 1:
        px = _px(spacing[0], font_px)
        if px is not None and font_px is not None and px <= -0.3 * font_px:
            return "letters overlapping (negative letter-spacing)"
    for prop in ("text-indent", "left", "top", "right", "bottom", "margin-left", "margin-top"):
        vals = _values(props.get(prop, []))
        if len(vals) == 1:
            px = _px(vals[0], font_px)
            if px is not None and px <= OFFSCREEN_PX:
                return f"{prop} off screen"
    if _values(props.get("clip", [])) and _ident(props["clip"]) != "auto":
        return "clip"
    if _values(props.get("clip-path", [])) and _ident(props["clip-path"]) != "none":
        return "clip-path"
    for token in _values(props.get("transform", [])):
        name = getattr(token, "lower_name", "") if getattr(token, "type", "") == "function" else ""
        args = [a for a in _values(token.arguments) if getattr(a, "type", "") != "literal"] if name else []  # type: ignore[attr-defined]
        if name.startswith(("matrix", "perspective")):
            return f"transform:{name}"
        if name.startswith("scale") and any(getattr(a, "type", "") == "number" and abs(float(a.value)) < 0.1 for a in args):  # type: ignore[attr-defined]
            return "transform:scale(0)"
        if name.startswith("translate") and any((_px(a, font_px) or 0) <= OFFSCREEN_PX for a in args):
            return "transform:translate off screen"
    return None


def _font_px(props: dict[str, list[object]], parent_px: float | None) -> float | None | bool:
    """The computed font size; False when the declarations do not set one."""
    if "font-size" in props:
        vals = _values(props["font-size"])
        if len(vals) == 1 and getattr(vals[0], "type", "") == "ident":
            return parent_px  # keywords (small, x-small...) are all readable
        return _px(vals[0], parent_px) if len(vals) == 1 else None
    if "font" in props:  # the shorthand: "font: 0/0 a" is the classic way to hide text
        for token in _values(props["font"]):  # "font: bold 0/0 a"; a bare number is a weight, except 0
            kind = getattr(token, "type", "")
            if kind in ("dimension", "percentage") or kind == "number" and float(token.value) == 0:  # type: ignore[attr-defined]
                return _px(token, parent_px)
        return parent_px
    return False


# ---------------------------------------------------------------- the reader


class _Reader:
    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.trailing = 0  # newlines at the end of pieces
        self.pending = 0  # newlines wanted before the next text
        self.started = False
        self.hidden: dict[str, None] = {}
        self.too_complex = False
        self.css_budget = MAX_CSS_CHARS
        self.styles_read: set[str] = set()
        # the stack of open elements: tag, look and attributes (to reopen misnested formatting)
        self.stack: list[tuple[str, _Look, dict[str, str]]] = [("#root", _ROOT, {})]
        self.positions: dict[str, list[int]] = {}
        self.scopes: list[int] = [0]  # indexes of scope boundaries (the root is one)
        self.table_scopes: list[int] = [0]  # indexes of table-scope boundaries (table, template)
        self.specials: list[int] = [0]  # indexes of the HTML standard's "special" elements (the root is one)
        # hiding style-sheet rules by the key they need: "#id", ".class", a tag or "*"
        self.sheet_rules: dict[str, list[tuple[str | None, frozenset[str], str | None, str]]] = {}
        # styled formatting elements closed out of order, which a browser opens again before the next text
        self.reopen: list[tuple[str, dict[str, str]]] = []
        self.all_hidden: str | None = None  # a late <body> hid everything
        self.looks: dict[tuple[_Look, str, tuple[tuple[str, str], ...]], _Look] = {}  # the same element in the same place looks the same

    # ---- output

    def text(self, data: str, raw: bool = False) -> None:
        if not data:
            return
        if self.reopen:
            self.reconstruct()
        look = self.stack[-1][1]
        if not raw:
            data = html.unescape(data) if "&" in data else data
        why = look.why or self.all_hidden
        if why is not None:
            if data.strip(_WS + "\xa0"):
                self.hidden.setdefault(why)
            return
        if look.pre:
            lines = data.split("\n")
            for i, line in enumerate(lines):
                if i:
                    self.newline()
                self._put(line, look)
            return
        if look.case in _CASES:
            data = _CASES[look.case](data)
        elif look.case == "capitalize" and data.strip(_WS):
            # Browsers differ on where a word starts ("abc-def"): the case a person sees is not certain.
            self.hidden.setdefault("text-transform:capitalize (letters shown in another case)")
        data = _SPACES.sub(" ", data)
        if data == " " and (self.trailing or self.pending or not self.started):
            return  # white space between blocks is not a line of its own
        self._put(data, look)

    def _put(self, data: str, look: _Look) -> None:
        if self.started and self.pending > self.trailing:
            self.pieces.append("\n" * (self.pending - self.trailing))
            self.trailing = self.pending
        self.pending = 0
        if look.quote and (self.trailing or not self.started):
            self.pieces.append("> ")
        if data:
            self.pieces.append(data)
            self.trailing = 0
            self.started = True

    def newline(self) -> None:
        self.pieces.append("\n")
        self.trailing += 1
        self.started = True

    def block_break(self, tag: str, closing: bool = False) -> None:
        if tag in _LISTS and not closing:
            self.pending = min(max(self.pending, 1), 1)  # a list keeps to the label above it, as the reader means it
        else:
            self.pending = max(self.pending, 2 if tag in _PARAGRAPH else 1)

    # ---- the stack of open elements

    def in_scope(self, tag: str, extra: frozenset[str] = frozenset()) -> int | None:
        """Index of the innermost open ``tag`` if no scope boundary (or ``extra`` element) lies above it.

        Cells, rows and row groups are looked up in "table scope", whose only
        boundaries are tables (and templates), as the standard does.
        """
        found = self.positions.get(tag)
        if not found:
            return None
        index = found[-1]
        if index < (self.table_scopes if tag in _IN_TABLE_SCOPE else self.scopes)[-1]:
            return None
        for other in extra:
            others = self.positions.get(other)
            if others and others[-1] > index:
                return None
        return index

    def push(self, tag: str, look: _Look, attrs: dict[str, str]) -> None:
        if len(self.stack) >= MAX_DEPTH:
            self.too_complex = True
            return
        index = len(self.stack)
        self.stack.append((tag, look, attrs))
        self.positions.setdefault(tag, []).append(index)
        if tag in _SCOPE:
            self.scopes.append(index)
        if tag in ("table", "template"):
            self.table_scopes.append(index)
        if tag in _SPECIAL:
            self.specials.append(index)

    def pop_to(self, index: int, regular_end: bool) -> None:
        """Close the element at ``index`` and everything opened inside it.

        A browser may keep (or rebuild) an element we close here: misnested
        formatting elements are reconstructed, and its implied-end rules are
        richer than ours. Where such an element hides text or changes its
        look, we cannot be sure what follows looks like, so it counts as hidden.
        """
        while len(self.stack) > index:
            tag, look, attrs = self.stack.pop()
            self.positions[tag].pop()
            if self.scopes[-1] == len(self.stack):
                self.scopes.pop()
            if self.table_scopes[-1] == len(self.stack):
                self.table_scopes.pop()
            if self.specials[-1] == len(self.stack):
                self.specials.pop()
            if regular_end and len(self.stack) == index:
                continue
            if look.why is not None and self.stack[-1][1].why is None:
                self.hidden.setdefault("a hiding element closed out of order")
            if tag in _FORMATTING and attrs:  # attributes are what could hide text; a bare <b> changes nothing we track
                # The browser's "reconstruct the active formatting elements": it opens
                # them again before the next text (a copy, with the same attributes).
                if sum(1 for entry in self.reopen if entry == (tag, attrs)) >= 3:
                    continue  # the "Noah's Ark" clause: at most three alike
                if len(self.reopen) >= 16:
                    self.too_complex = True
                else:
                    self.reopen.insert(0, (tag, attrs))

    def reconstruct(self) -> None:
        reopen, self.reopen = self.reopen, []
        for tag, attrs in reopen:
            self.push(tag, self.look_for(tag, attrs), attrs)

    def current(self) -> str:
        return self.stack[-1][0]

    # ---- elements

    def look_for(self, tag: str, attrs: dict[str, str], parent: _Look | None = None) -> _Look:
        parent = self.stack[-1][1] if parent is None else parent
        key = (parent, tag, tuple(attrs.items()))
        look = self.looks.get(key)
        if look is None:
            if len(self.looks) > 4096:
                self.looks.clear()
            look = self.looks[key] = self._look_for(parent, tag, attrs)
        return look

    def _look_for(self, parent: _Look, tag: str, attrs: dict[str, str]) -> _Look:
        changes: dict[str, object] = {}
        gone = _NOT_RENDERED.get(tag)
        if tag in _RAW_HIDDEN:
            gone = f"<{tag}> fallback text"
        elif tag in ("details", "dialog") and "open" not in attrs:
            gone = f"closed <{tag}>"
        props: dict[str, list[object]] = {}
        style = attrs.get("style")
        if style:
            if len(style) > MAX_STYLE_CHARS or style not in self.styles_read and len(style) > self.css_budget:
                self.too_complex = True
                gone = gone or "a style too long to read"
            else:
                if style not in self.styles_read:  # mail repeats a few styles thousands of times: pay once
                    self.styles_read.add(style)
                    self.css_budget -= len(style)
                props = {name: list(value) for name, value in _declarations(style)}
        if "hidden" in attrs and _ident(props.get("display", [])) in ("", "none"):
            gone = gone or "the hidden attribute"
        gone = gone or _hides(props, parent.font_px)
        if self.sheet_rules and not gone:
            gone = self.sheet_hides(tag, attrs)
        if gone and not parent.gone:
            changes["gone"] = gone
        if "visibility" in props:
            value = _ident(props["visibility"])
            if value in ("hidden", "collapse", "visible"):
                changes["invisible"] = value != "visible"
        opacity = _number(props.get("opacity", []))
        if opacity is not None:
            changes["opacity"] = parent.opacity * max(0.0, min(1.0, opacity))
        size = _font_px(props, parent.font_px)
        if size is not False:
            changes["font_px"] = size
        color = None
        if tag in ("font", "basefont") and "color" in attrs:
            color = _color(attrs["color"])
        for prop in ("color", "-webkit-text-fill-color"):
            if prop in props:
                color = _first_color(props[prop]) or color
        if color is not None:
            changes["color"], changes["alpha"] = color
        background = _first_color(props.get("background-color", []) or props.get("background", []))
        if background is None and "bgcolor" in attrs:
            background = _color(attrs["bgcolor"])
        if background is not None and background[1] > 0.05:
            luminance, a = background
            changes["background"] = None if parent.background is None else luminance * a + parent.background * (1 - a)
        elif _has_image(props.get("background-image", [])) or _has_image(props.get("background", [])) or "background" in attrs:
            changes["background"] = None  # an image behind the text: what a person sees cannot be told
        if "text-transform" in props:
            changes["case"] = _ident(props["text-transform"])
        if tag == "blockquote" or tag == "div" and re.search(r"\b(?:gmail_quote|moz-cite-prefix)\b", attrs.get("class", "")):
            changes["quote"] = True
        if tag in _PRE:
            changes["pre"] = True
        if tag == "bdo" and not gone and not parent.gone:
            changes["gone"] = "<bdo> (text shown in another order)"
        return parent.child(**changes) if changes else parent

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if tag in _IGNORED_TAGS:
            # The root stands for <html>/<body>; their colours apply to everything,
            # but only when they come before any text (a later <body> would
            # recolour text already read).
            if attrs and tag == "body" and "text" in attrs:
                attrs = {**attrs, "color": attrs["text"]}
            if attrs and tag in ("html", "body"):
                look = self.look_for("font" if "color" in attrs else tag, attrs, self.stack[0][1])
                if look is not self.stack[0][1]:
                    if self.started or len(self.stack) > 1:
                        # Browsers give a late <body>'s attributes to the one body: they
                        # apply to the text before it too, which we cannot re-read.
                        self.hidden.setdefault("a <body> that changes how text looks after text was read")
                        if look.why is not None:
                            self.pieces, self.trailing, self.started = [], 0, False
                            self.all_hidden = look.why
                    self.stack[0] = ("#root", look, {})
            return
        if tag in _TABLE_PARTS and not self.positions.get("table"):
            return  # a cell or row outside any table is ignored by browsers

        if tag == "frameset":  # a frameset page shows frames, not its text (and we cannot tell when it takes effect)
            self.all_hidden = "<frameset>"
            self.hidden.setdefault("<frameset>")
            return
        if tag in ("svg", "math", "select"):
            # Foreign content has its own parsing rules (CDATA, no raw-text elements,
            # elements that break out of it), and what a <select> may hold is being
            # redefined by browsers: we follow neither, so either counts as hiding.
            self.hidden.setdefault(_NOT_RENDERED[tag])
        self._implied_ends(tag)
        if self.reopen and tag not in _BLOCK and tag not in _CELL and tag not in _TABLE_PARTS:
            self.reconstruct()
        if tag in _BLOCK:
            self.block_break(tag)
        elif tag in _CELL and self.started and not self.trailing:
            self.pieces.append(" ")
        if tag == "br":
            self.newline()
        if tag in _VOID:
            return
        look = self.look_for(tag, attrs) if (attrs or self.sheet_rules or tag == "bdo" or tag in _NOT_RENDERED or tag in _RAW_HIDDEN or tag in _PRE
                                              or tag in ("details", "dialog", "blockquote")) else self.stack[-1][1]
        self.push(tag, look, attrs)

    def _implied_ends(self, tag: str) -> None:
        """The end tags a browser implies before this start tag (the common cases; see pop_to)."""
        if tag not in _IMPLIES:
            return
        if tag in _CLOSES_P:
            index = self.in_scope("p", frozenset({"button"}))
            if index is not None:
                self.pop_to(index, False)
        found: list[int | None] = []
        if tag == "li":
            found = [self.in_scope("li", frozenset({"ul", "ol"}))]
        elif tag in ("dd", "dt"):
            found = [self.in_scope("dd", frozenset({"dl"})), self.in_scope("dt", frozenset({"dl"}))]
        elif tag in _CELL:
            found = [self.in_scope("td"), self.in_scope("th")]
        elif tag == "tr":
            found = [self.in_scope("tr")]
        elif tag in ("tbody", "thead", "tfoot"):
            found = [self.in_scope(t) for t in ("tbody", "thead", "tfoot")]
        elif tag in _HEADINGS or tag in ("option", "optgroup"):
            if self.current() in (_HEADINGS if tag in _HEADINGS else {"option"}):
                found = [len(self.stack) - 1]
        elif tag in ("a", "nobr", "button"):
            found = [self.in_scope(tag)]
        indexes = [i for i in found if i is not None and i > 0]
        if indexes:
            self.pop_to(min(indexes) if tag == "tr" else max(indexes), False)

    def end(self, tag: str) -> None:
        if tag in _IGNORED_TAGS:
            return
        if tag == "br":  # </br> is read as <br>
            self.newline()
            return
        if tag == "p" and self.in_scope("p", frozenset({"button"})) is None:
            self.block_break(tag)  # a stray </p> makes an empty paragraph
            return
        if tag in _FORMATTING and self.reopen:
            for i, (waiting, _) in enumerate(self.reopen):
                if waiting == tag and self.in_scope(tag) is None:
                    del self.reopen[i]  # closed before it was opened again
                    return
        if tag == "form" and self.current() != "form":
            return  # a browser takes the form out of the stack but leaves what is open inside it open, and inside it
        if tag in _HEADINGS:  # </h2> closes an open <h1>: any heading ends any heading
            found = [i for i in (self.in_scope(h) for h in _HEADINGS) if i is not None]
            index: int | None = max(found) if found else None
        elif tag in _SCOPED_END or tag in _FORMATTING:
            index = self.in_scope(tag)
        else:
            # "Any other end tag": it closes its element only if no special element
            # (div, p, li, table...) is open inside it; otherwise a browser ignores it.
            open_ = self.positions.get(tag)
            index = open_[-1] if open_ and open_[-1] > self.specials[-1] else None
        if index is None or index == 0:
            return  # an end tag without an open element is ignored
        # The adoption agency: a browser moves the block opened inside the formatting
        # element out of it and goes on inside that block. Where anything in that
        # range changes how text looks, we cannot follow it.
        if tag in _FORMATTING and self.specials[-1] > index and any(
                look.why is not None or look is not self.stack[i - 1][1]
                for i, (_, look, _) in enumerate(self.stack[index:], start=index)):
            self.hidden.setdefault("a hiding element closed out of order")
        self.pop_to(index, True)
        if tag in _BLOCK:
            self.block_break(tag, closing=True)

    def style_sheet(self, css: str) -> None:
        """A <style> element: what its hiding rules select is hidden, and the sheet itself is reported.

        Selectors are matched loosely, by the last compound only (``.a .x``
        hides every ``.x``; pseudo-classes and attributes are ignored), so we
        may hide more than a browser, never less. Text read before the sheet
        cannot be taken back; the report sends the request to a person anyway.
        """
        if len(css) > self.css_budget:
            self.too_complex = True
            return
        self.css_budget -= len(css)
        self.looks.clear()  # new rules: looks computed so far may be wrong from here on
        for why, selector in _sheet_hides(css):
            self.hidden.setdefault(f"a style sheet that hides text ({why})")
            for compound in selector.split(","):
                tag, classes, ident = _compound(compound)
                if tag in (None, "html", "body") and not classes and not ident:
                    self.all_hidden = f"a style sheet ({why})"  # the whole page, even what came before the sheet
                    self.pieces, self.trailing, self.started = [], 0, False
                key = ("#" + ident) if ident else ("." + min(classes)) if classes else (tag or "*")
                self.sheet_rules.setdefault(key, []).append((tag, classes, ident, why))

    def sheet_hides(self, tag: str, attrs: dict[str, str]) -> str | None:
        classes = frozenset(attrs.get("class", "").split()[:32]) if "class" in attrs else frozenset()
        ident = attrs.get("id", "")
        keys = ["*", tag, *("." + c for c in classes)] + (["#" + ident] if ident else [])
        for key in keys:
            for rule_tag, rule_classes, rule_id, why in self.sheet_rules.get(key, ()):
                if (rule_tag in (None, tag)) and rule_classes <= classes and rule_id in (None, ident):
                    return f"a style sheet ({why})"
        return None


_COMPOUND_NOISE = re.compile(r"::?[\w-]+(?:\([^)]*\))?|\[[^\]]*\]")
_LAST_COMPOUND = re.compile(r"([^\s>+~]*)\s*$")


def _compound(selector: str) -> tuple[str | None, frozenset[str], str | None]:
    """The last compound of a selector as (tag, classes, id); None/empty where it does not say."""
    m = _LAST_COMPOUND.search(_COMPOUND_NOISE.sub("", selector.strip()))
    last = m.group(1) if m else ""
    tag = re.match(r"[A-Za-z][\w-]*", last)
    return (
        tag.group().lower() if tag else None,
        frozenset(re.findall(r"\.([\w-]+)", last)),
        next(iter(re.findall(r"#([\w-]+)", last)), None),
    )


def _sheet_hides(css: str) -> list[tuple[str, str]]:
    """(why, selector) for every rule in a style sheet that hides what it selects."""
    rules = list(tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True))
    found: list[tuple[str, str]] = []
    seen = 0
    while rules and seen < 10_000:
        rule = rules.pop()
        seen += 1
        kind = getattr(rule, "type", "")
        if kind == "at-rule" and rule.content is not None:  # type: ignore[union-attr]
            rules.extend(tinycss2.parse_blocks_contents(rule.content, skip_comments=True, skip_whitespace=True))  # type: ignore[union-attr]
            continue
        if kind != "qualified-rule":
            continue
        props = {name: list(value) for name, value in _declarations(tinycss2.serialize(rule.content))}  # type: ignore[union-attr]
        why = _hides(props, 16.0)
        if why is None:
            size = _font_px(props, 16.0)
            color = _first_color(props["color"]) if "color" in props else None
            background = _first_color(props.get("background-color", []) or props.get("background", []))
            opacity = _number(props.get("opacity", []))
            why = _ROOT.child(
                invisible=_ident(props.get("visibility", [])) in ("hidden", "collapse"),
                font_px=16.0 if size is False else size,
                opacity=1.0 if opacity is None else opacity,
                color=color[0] if color else _BLACK, alpha=color[1] if color else 1.0,
                background=background[0] if background and background[1] > 0.05 else _WHITE,
            ).why
        if why is not None:
            found.append((why, tinycss2.serialize(rule.prelude)))  # type: ignore[union-attr]
    return found


def _end_of_tag(markup: str, pos: int, attrs: dict[str, str] | None) -> int:
    """Read attributes from ``pos`` to the closing '>' (into ``attrs`` when given); -1 at end of input."""
    n = len(markup)
    while True:
        pos = _ATTR_GAP.match(markup, pos).end()  # type: ignore[union-attr]
        if pos >= n:
            return -1
        if markup[pos] == ">":
            return pos + 1
        m = _ATTR_NAME.match(markup, pos)
        assert m is not None
        name = m.group().lower()
        pos = m.end()
        value = ""
        eq = _ATTR_EQ.match(markup, pos)
        if eq:
            pos = eq.end()
            if pos >= n:
                return -1
            quote = markup[pos]
            if quote in "\"'":
                close = markup.find(quote, pos + 1)
                if close < 0:
                    return -1
                value, pos = markup[pos + 1 : close], close + 1
            else:
                u = _UNQUOTED.match(markup, pos)
                assert u is not None
                value, pos = u.group(), u.end()
        if attrs is not None and name not in attrs:  # the first of repeated attributes wins, as in browsers
            attrs[name] = html.unescape(value) if "&" in value else value


def read_html(markup: str) -> HtmlReading:
    """What a person sees of an HTML body, in linear time; hidden text is reported, not read."""
    # NUL is U+FFFD in names and values, as browsers read it ("</sty\0le>" ends nothing); in
    # text a browser drops it, but an id that held one goes to review rather than read as another
    markup = markup.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    reader = _Reader()
    n = len(markup)
    pos = 0
    text_from = 0  # text not yet handed to the reader runs from here (a '<' that opens nothing is text)
    while True:
        lt = markup.find("<", pos)
        if lt < 0:
            reader.text(markup[text_from:])
            break
        pos = lt
        m = _TAG_OPEN.match(markup, pos)
        if m is None and not markup.startswith(("<!", "<?", "</"), pos):
            pos += 1
            continue
        reader.text(markup[text_from:pos])
        text_from = -1  # set again below wherever reading goes on
        if m is not None:
            closing, tag = m.group(1), m.group(2).lower()
            attrs: dict[str, str] | None = None if closing else {}
            end = m.end() + 1 if markup.startswith(">", m.end()) else _end_of_tag(markup, m.end(), attrs)
            if end < 0:
                break  # a tag cut off by the end of the input is dropped, with everything after it
            pos = text_from = end
            if closing:
                reader.end(tag)
                continue
            assert attrs is not None
            reader.start(tag, attrs)
            if tag == "plaintext":
                reader.text(markup[pos:], raw=True)
                break
            if tag in _RAW:
                close = re.compile(r"</" + re.escape(tag) + r"[\t\n\f\r />]", re.IGNORECASE).search(markup, pos)
                body = markup[pos : close.start() if close else n]
                if tag == "style":
                    reader.style_sheet(body)
                elif tag == "script" and body.strip(_WS):
                    reader.hidden.setdefault("a <script>, which mail clients neither run nor show")
                elif tag not in _RAW_SILENT:
                    reader.text(body, raw=tag != "textarea")
                if close is None:
                    break
                end = _end_of_tag(markup, close.end() - 1, None)
                if end < 0:
                    break
                reader.end(tag)
                pos = text_from = end
            continue
        if markup.startswith("<!--", pos):
            if markup.startswith(">", pos + 4):
                pos = text_from = pos + 5
                continue
            if markup.startswith("->", pos + 4):
                pos = text_from = pos + 6
                continue
            close = _COMMENT_END.search(markup, pos + 4)
            if close is None:
                break  # an unterminated comment runs to the end
            if markup.startswith("[if", pos + 4) and _CONDITIONAL_TEXT.search(_TAGS.sub("", markup[pos + 4 : close.start()])):
                # <!--[if mso]>...<![endif]--> is shown by Outlook and hidden by everyone else
                reader.hidden.setdefault("an Outlook conditional comment with text in it")
            pos = text_from = close.end()
            continue
        if markup.startswith("</>", pos):
            pos = text_from = pos + 3
            continue
        if pos + 2 >= n and markup.startswith("</", pos):
            reader.text(markup[pos:])
            break
        close_at = markup.find(">", pos + 2)  # doctype, <![CDATA[ outside SVG, <?...>, </ 1>: a bogus comment
        if close_at < 0:
            break
        pos = text_from = close_at + 1
    lines = [_LINE_SPACES.sub(" ", line).strip() for line in "".join(reader.pieces).split("\n")]
    return HtmlReading("\n".join(lines), tuple(reader.hidden), reader.too_complex)


def html_to_text(markup: str) -> str:
    """HTML body -> the plain text a person sees, good enough to find the documented id lines in it."""
    return read_html(markup).text
