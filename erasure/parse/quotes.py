"""The sender's own words: quoted replies, forwarded blocks and signatures are cut off,
and our own letters coming back are recognised.

A reply quoting an old request must not restart it, and a helpdesk that
echoes our letter must not erase the example "viewers" printed in it. Mail
clients mark quotes differently in every language, so the markers are data
tables below (one row per language), not code branches: add a language by
adding rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from erasure.parse.htmltext import html_to_text
from erasure.parse.languages import REPLY_ATTRIBUTIONS

# ---------------------------------------------------------------- language data

#: Separator lines ("-----Original Message-----", Gmail's "---------- Forwarded message ---------").
SEPARATOR_PHRASES: tuple[str, ...] = (
    "Original Message", "Forwarded message",                           # en
    "Ursprüngliche Nachricht", "Weitergeleitete Nachricht",            # de
    "Message d'origine", "Message transféré", "Message original",     # fr
    "Mensaje original", "Mensaje reenviado",                           # es
    "Messaggio originale", "Messaggio inoltrato",                      # it
    "Oorspronkelijk bericht", "Doorgestuurd bericht",                  # nl
    "Mensagem original", "Mensagem encaminhada",                       # pt
    "Ursprungligt meddelande", "Vidarebefordrat meddelande",           # sv
    "Wiadomość oryginalna", "Oryginalna wiadomość", "Przekazana wiadomość",  # pl
    "Oprindelig meddelelse", "Videresendt meddelelse",                 # da
    "Alkuperäinen viesti", "Välitetty viesti",                         # fi
    "Původní zpráva", "Přeposlaná zpráva",                             # cs
)

#: Whole lines that start a forwarded or quoted block without dashes.
START_LINES: tuple[str, ...] = (
    "Begin forwarded message:",          # Apple Mail, en
    "Anfang der weitergeleiteten Nachricht:",  # Apple Mail, de
    "Début du message réexpédié :",      # Apple Mail, fr
    "Inicio del mensaje reenviado:",     # Apple Mail, es
    "Inizio messaggio inoltrato:",       # Apple Mail, it
    "Begin doorgestuurd bericht:",       # Apple Mail, nl
    "Início da mensagem reencaminhada:",  # Apple Mail, pt
    "Początek przekazywanej wiadomości:",  # Apple Mail, pl
    "Vidarebefordrat mejl:",             # Apple Mail, sv
    "Start på videresendt besked:",      # Apple Mail, da
    "Välitetty viesti alkaa:",           # Apple Mail, fi
    "Začátek přeposlané zprávy:",        # Apple Mail, cs
)

#: "On <date>, <person> wrote:" in every language (the rows live in parse/languages.py):
#: (opening, verb, whether the sender's name may follow the verb, as in "Op ... schreef
#: Alice <a@x>:"). An empty opening: the line starts with the date or the name.
ON_WROTE: tuple[tuple[str, str, bool], ...] = tuple(dict.fromkeys(row for rows in REPLY_ATTRIBUTIONS.values() for row in rows))

#: Outlook's quoted header block: a From line directly followed by a Sent/Date line.
HEADER_FROM: tuple[str, ...] = ("From", "Von", "De", "Da", "Van", "Från", "Od", "Fra", "Lähettäjä")
HEADER_NEXT: tuple[str, ...] = (
    "Sent", "Date",                     # en
    "Gesendet", "Datum",                # de, nl, sv
    "Envoyé", "Date d'envoi",           # fr
    "Enviado", "Enviada", "Fecha",      # es, pt
    "Inviato", "Data",                  # it, pl, pt
    "Verzonden",                        # nl
    "Skickat",                          # sv
    "Wysłano",                          # pl
    "Sendt",                            # da, no
    "Lähetetty", "Päivämäärä",          # fi
    "Odesláno",                         # cs
)

# ---------------------------------------------------------------- patterns built from the tables

_SP = r"[ \t\u00a0\u202f]"  # French puts a (no-break) space before the colon


def _alternatives(words: tuple[str, ...]) -> str:
    return "|".join(re.escape(w).replace("'", "['\u2019]").replace(r"\ ", f"{_SP}+") for w in words)


_QUOTE_START = re.compile(
    rf"^\s*(?:-{{2,}}{_SP}*(?:{_alternatives(SEPARATOR_PHRASES)}){_SP}*-{{2,}}|_{{10,}}|"
    rf"(?:{_alternatives(tuple(s.rstrip(' :') for s in START_LINES))}){_SP}*:)\s*$",
    re.IGNORECASE,
)


def _on_wrote(opening: str, verb: str, name_after: bool, *, wrapped: bool) -> str:
    tail = r"(?:\s.{0,200}?)?" if name_after else ""
    if wrapped:
        head = r"(?:.{0,200}\s)?"
    elif opening:
        head = rf"{opening}\b.{{0,300}}\b"
    else:  # no opening word: the line holds a date (a digit) and the verb after a space, or starts with the verb
        head = r"(?=.{0,500}\d)(?:.{0,300}\s)?"
    return rf"{head}{verb}{tail}{_SP}*:"


def _unopened(name_after: bool) -> list[tuple[str, str, bool]]:
    """The rows without an opening word, as one row per kind of tail: one scan of the line, not one per verb."""
    verbs = "|".join(dict.fromkeys(v for o, v, after in ON_WROTE if not o and after == name_after))
    return [("", f"(?:{verbs})", name_after)] if verbs else []


_ON_WROTE = re.compile(
    r"^\s*(?:" + "|".join(_on_wrote(*row, wrapped=False) for row in
                          [*(r for r in ON_WROTE if r[0]), *_unopened(True), *_unopened(False)]) + r")\s*$",
    re.IGNORECASE,
)


def _on_wrote_line(line: str) -> bool:
    """An attribution line ("On ..., Alice wrote:")? Only a line ending in a colon is scanned at all."""
    return line.rstrip().endswith(":") and _ON_WROTE.match(line) is not None


_ON_OPENING = re.compile(r"^\s*(?:" + "|".join(dict.fromkeys(o for o, _, _ in ON_WROTE if o)) + r")\b", re.IGNORECASE)
_WROTE_CLOSING = re.compile(
    r"\s*(?:" + "|".join(_on_wrote(*row, wrapped=True) for row in ON_WROTE) + r")\s*", re.IGNORECASE
)
# "Op ... schreef Bob Example\n<bob@x>:": the verb on the first line, the name wrapped onto the next.
_ON_VERB_LINE = re.compile(
    r"^\s*(?:" + "|".join(rf"{o}\b.{{0,300}}\b{v}\b" for o, v, after in ON_WROTE if after and o) + r")", re.IGNORECASE
)
_NAME_AND_COLON = re.compile(rf"[^:]{{1,200}}{_SP}*:\s*")
_HEADER_BLOCK_FROM = re.compile(rf"^\s*\*?(?:{_alternatives(HEADER_FROM)}){_SP}*:\*?{_SP}*\S", re.IGNORECASE)
_HEADER_BLOCK_NEXT = re.compile(rf"^\s*\*?(?:{_alternatives(HEADER_NEXT)}){_SP}*:", re.IGNORECASE)
_SIGNATURE = re.compile(r"^-- ?$")


def _may_mark(line: str) -> bool:
    """Can this line start a quote, a forward or a signature at all? Every such marker has a colon,
    a run of dashes or of underscores (or is the signature's "--"): a cheap test, so that the
    many-language patterns run only on lines that could match (a body of a million plain lines
    costs one scan, not a dozen regular expressions a line)."""
    return ":" in line or "--" in line or "__" in line


def _line_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each line, without copying the text or building a list of lines."""
    start = 0
    while True:
        end = text.find("\n", start)
        if end < 0:
            yield start, len(text)
            return
        yield start, end
        start = end + 1


def unquoted(text: str) -> str:
    """The sender's own words: stop at a quoted reply, forwarded block or signature; drop '>' lines.

    Works on spans of the text: a body of a million lines costs about one copy
    of the text, not a million line objects.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept: list[list[int]] = []  # merged spans of kept lines
    spans = _line_spans(text)
    span = next(spans, None)
    while span is not None:
        nxt = next(spans, None)
        line = text[span[0] : span[1]]
        following = text[nxt[0] : nxt[1]] if nxt is not None else ""
        if _may_mark(line) and (_SIGNATURE.match(line) or _QUOTE_START.match(line) or _on_wrote_line(line)):
            break
        # "On Mon, 1 Jan 2024 at 10:00, Alice <a@x>\nwrote:" (wrapped by the mail client)
        if ":" in following and _ON_OPENING.match(line) and (
            _WROTE_CLOSING.fullmatch(following) or (_ON_VERB_LINE.match(line) and _NAME_AND_COLON.fullmatch(following))
        ):
            break
        # Outlook quotes without a separator line: "From: ...", then "Sent: ..." (or Date:).
        if ":" in line and _HEADER_BLOCK_FROM.match(line) and _HEADER_BLOCK_NEXT.match(following):
            break
        if not line.lstrip().startswith(">"):
            if kept and kept[-1][1] + 1 == span[0]:
                kept[-1][1] = span[1]
            else:
                kept.append([span[0], span[1]])
        span = nxt
    return "\n".join(text[a:b] for a, b in kept)


# ---------------------------------------------------------------- forwarded requests

#: Separator phrases that only a forward uses (a reply never says "forwarded").
FORWARD_PHRASES: tuple[str, ...] = (
    "Forwarded message", "Weitergeleitete Nachricht", "Message transféré", "Mensaje reenviado",
    "Messaggio inoltrato", "Doorgestuurd bericht", "Mensagem encaminhada", "Vidarebefordrat meddelande",
    "Przekazana wiadomość", "Videresendt meddelelse", "Välitetty viesti", "Přeposlaná zpráva",
)

#: Subject prefixes that mark a forward, per language ("FW:" in English Outlook, "WG:" in
#: German, "TR:" in French, "RV:" in Spanish, "I:" in Italian, "Doorst:" in Dutch, ...).
FORWARD_PREFIXES: tuple[str, ...] = (
    "FW", "FWD", "WG", "TR", "RV", "RE-ENV", "I", "INOLTRA", "DOORST", "ENC", "VB", "VS", "PD", "PRZEKAŻ",
    "VL", "PŘ", "FS",
)
#: Subject prefixes that mark a reply; the first prefix of a subject decides ("RE: FW: ..." is a reply).
REPLY_PREFIXES: tuple[str, ...] = ("RE", "AW", "SV", "VS", "R", "RIF", "ANTW", "ODP", "VÁ", "ATB", "RES", "REF")

_FORWARD_START = re.compile(
    rf"^\s*(?:-{{2,}}{_SP}*(?:{_alternatives(FORWARD_PHRASES)}){_SP}*-{{2,}}|"
    rf"(?:{_alternatives(tuple(s.rstrip(' :') for s in START_LINES))}){_SP}*:)\s*$",
    re.IGNORECASE,
)
_SUBJECT_PREFIX = re.compile(rf"^\s*\[?([^\W\d_]+(?:-[^\W\d_]+)?)\]?{_SP}*:")
_HEADER_LINE = re.compile(rf"^\s*\*?[^\W\d_][\w' .-]{{0,30}}\*?{_SP}*:\*?(?:{_SP}|$)")


def _subject_says_forward(subject: str) -> bool:
    m = _SUBJECT_PREFIX.match(subject)
    if m is None:
        return False
    prefix = m.group(1).upper()
    return prefix in FORWARD_PREFIXES and prefix not in REPLY_PREFIXES


@dataclass(frozen=True)
class Forwarded:
    """A forwarded message inside a mail: its own words, and its sender as its header block gives it."""

    text: str
    sender: str | None  # the addr-spec of the forwarded From line, when there is exactly one


def forwarded_text(text: str, subject: str) -> str | None:
    """The forwarded message's own words, when this mail forwards one; else None."""
    found = forwarded_message(text, subject)
    return None if found is None else found.text


def forwarded_message(text: str, subject: str) -> Forwarded | None:
    """The forwarded message in a mail, when it forwards one; else None.

    A processor's requests usually arrive as forwards: the customer's privacy
    team forwards its viewer's request. A forward is recognised only where it
    cannot be a reply: by a separator only forwards use ("Forwarded message",
    "Begin forwarded message:", in each language), or by a forward prefix
    opening the subject ("FW:", "WG:", "TR:", ...) together with Outlook's
    "Original Message" separator or quoted header block. The forwarded
    message's header lines (From:, Sent:, To:, Subject:, in any language) are
    skipped, and its own quotes and signature are cut as ours are, so a forward
    reads one level deep: the request itself, not the thread below it.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    by_subject = _subject_says_forward(subject)
    spans = _line_spans(text)
    span = next(spans, None)
    start: int | None = None
    while span is not None:
        nxt = next(spans, None)
        line = text[span[0] : span[1]]
        if not _may_mark(line):
            span = nxt
            continue
        following = text[nxt[0] : nxt[1]] if nxt is not None else ""
        if _FORWARD_START.match(line):
            start = span[1] + 1
            break
        if _SIGNATURE.match(line) or _QUOTE_START.match(line) or _on_wrote_line(line):
            if by_subject and _QUOTE_START.match(line):
                start = span[1] + 1
            break
        if _HEADER_BLOCK_FROM.match(line) and _HEADER_BLOCK_NEXT.match(following):
            if by_subject:
                start = span[0]  # the header block belongs to the forwarded message
            break
        span = nxt
    if start is None or start > len(text):
        return None
    # The forwarded message's header block, when it has one: a From line (in any
    # language), then "Name: value" lines, up to the first line that is neither.
    lines = text[start:].split("\n", 60)
    first = 0
    while first < len(lines) - 1 and not lines[first].strip():
        first += 1
    end = first
    sender = None
    for i in range(first, len(lines) - 1):  # the From line may follow Subject/Date (Thunderbird)
        if not _HEADER_LINE.match(lines[i]):
            break
        if _HEADER_BLOCK_FROM.match(lines[i]):
            sender = _sender(lines[i])
    if _HEADER_LINE.match(lines[first]) and any(_HEADER_BLOCK_FROM.match(line) for line in lines[first:first + 12]):
        end = first
        while end < len(lines) - 1 and _HEADER_LINE.match(lines[end]):
            end += 1
    return Forwarded(unquoted("\n".join(lines[end:])), sender)


_ANGLE_ADDRESS = re.compile(r"<([^<>\s@]+@[^<>\s@]+)>|(?<![^\s:])([^<>\s@:]+@[^<>\s@]+)")


def _sender(line: str) -> str | None:
    """The one address on a quoted From line, lower-cased; None unless there is exactly one."""
    value = line.split(":", 1)[1] if ":" in line else ""
    found = [a or b for a, b in _ANGLE_ADDRESS.findall(value)]
    return found[0].strip(".,;").lower() if len(found) == 1 else None


# ---------------------------------------------------------------- our own letters coming back

#: Words in a row shared with one of our letters that count as one match, and how
#: many distinct matches make an echo. A customer citing "Article 17 of the General
#: Data Protection Regulation (GDPR)" shares at most a few runs; a helpdesk echoing
#: a letter shares dozens.
ECHO_RUN_WORDS = 8
ECHO_MIN_RUNS = 8
ECHO_READ_CHARS = 256 * 1024  # an echo sits near the top; the rest is not scanned
_TEMPLATE_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_WORD = re.compile(r"[^\W_]+")


def packaged_template_dir() -> Path:
    """Our packaged letters: inside the wheel, or ``templates/`` in a source checkout.

    The same lookup as ``notify.packaged_templates``; repeated here so that the
    parser does not import the mail-sending side.
    """
    inside = Path(__file__).resolve().parent.parent / "templates"
    return inside if inside.is_dir() else Path(__file__).resolve().parent.parent.parent / "templates"


def _runs(words: list[str]) -> set[str]:
    return {" ".join(words[i : i + ECHO_RUN_WORDS]) for i in range(len(words) - ECHO_RUN_WORDS + 1)}


@lru_cache(maxsize=1)
def our_letter_runs() -> frozenset[str]:
    """Every run of ECHO_RUN_WORDS words of fixed text in our packaged letters (read once).

    The templates are static package data, so reading them keeps the parser a
    pure function of its input. Text around template fields is split there, so
    no run spans a value that differs from letter to letter.
    """
    runs: set[str] = set()
    folder = packaged_template_dir()
    for path in sorted(folder.glob("*.txt")) + sorted(folder.glob("*.html")):
        try:
            source = path.read_text(encoding="utf-8")
        except OSError:
            continue
        for piece in _TEMPLATE_TAG.split(source):
            text = html_to_text(piece) if path.suffix == ".html" else piece
            runs |= _runs(_WORD.findall(text.lower()))
    return frozenset(runs)


def echoes_our_letters(text: str) -> bool:
    """True when the text repeats enough of one of our letters to be an echo of it."""
    ours = our_letter_runs()
    if not ours:
        return False
    words = _WORD.findall(text[:ECHO_READ_CHARS].lower())
    hits: set[str] = set()
    for i in range(len(words) - ECHO_RUN_WORDS + 1):
        run = " ".join(words[i : i + ECHO_RUN_WORDS])
        if run in ours:
            hits.add(run)
            if len(hits) >= ECHO_MIN_RUNS:
                return True
    return False
