"""What the request asks for (erasure, access) and under which law, from its words, in any language we read.

The words are data (``erasure/parse/languages.py``, one table per language);
this module applies them the same way for every language, on folded text
(case, accents, typographic spaces and apostrophes ignored):

* an **erasure word** of any language makes the request an erasure request,
  unless the words right around it are about the mail itself ("delete this
  e-mail", "löschen Sie diese Nachricht"): confidentiality footers must not
  turn a question about a viewer into an erasure;
* a **negation** or an **exception** ("except", "außer", "sauf", "keep") of any language within ``NEGATION_WINDOW`` words before or
  after an erasure word (in the same paragraph) sends the request to a person
  (``ambiguous_wording``). The window is deliberately wide and the negations
  of every language are looked for around every erasure word: German and
  Dutch put "nicht"/"niet" at the end of the clause ("Bitte löschen Sie die
  Daten nicht"), and a Norwegian "ikke" next to a Swedish "ta bort" must stop
  us too. The same holds for a negation or exception in the words *before*
  a viewer-id label ("…all viewers of the account, except the following
  viewer IDs:"), since the list after it may name the viewers to keep.
  Reading a harmless "no" as a negation costs a person a minute;
  missing a real one erases what the customer asked us to keep;
* a **negated erasure word** ("nemažte", "Nichtlöschung") or a **withdrawal**
  ("hat ihren Antrag zurückgezogen", "a retiré sa demande") anywhere in the
  text sends an erasure request to a person too (``ambiguous_wording``): a
  follow-up that cancels a request often names the erasure only in its subject;
* an **access word** (a copy of the data, "Auskunft", "droit d'accès", ...)
  makes an access request, answered by a person; beside erasure words it adds
  ``also_access_request``;
* the **law** is GDPR when a GDPR name of any language appears (GDPR, DSGVO,
  RGPD, AVG, RODO, 2016/679, ...), CCPA when CCPA/CPRA/California does, and a
  person chooses when both do.
"""

from __future__ import annotations

import bisect
import re
from typing import Literal

from erasure.parse.languages import CCPA_NAMES, LANGUAGES, fold, words_pattern
from erasure.parse.problems import Collector

Kind = Literal["erasure", "access", "other"]

#: How many words before or after an erasure word a negation is looked for.
NEGATION_WINDOW = 12

_LANGS = tuple(LANGUAGES.values())
_ERASURE = words_pattern(tuple(w for lang in _LANGS for w in lang.erasure))
_NEGATION = words_pattern(tuple(w for lang in _LANGS for w in (*lang.negation, *lang.exceptions)), strict=True)
_NEGATED_ERASURE = words_pattern(tuple(w for lang in _LANGS for w in lang.negated_erasure), strict=True)
_WITHDRAWAL = words_pattern(tuple(w for lang in _LANGS for w in lang.withdrawal))
_ACCESS = words_pattern(tuple(w for lang in _LANGS for w in lang.access))
_GDPR = words_pattern(tuple(dict.fromkeys(w for lang in _LANGS for w in lang.gdpr_names)))
_CCPA = words_pattern(CCPA_NAMES)
# A viewer-id label introducing ids: "except the following viewer IDs:" must stop the list as
# "except" beside "delete" does, however long the sentence between them.
_LABEL = words_pattern(tuple(dict.fromkeys(w for lang in _LANGS for w in (*lang.plural_labels, *lang.labels))))
_MAIL_NOUN = words_pattern(tuple(dict.fromkeys(w for lang in _LANGS for w in lang.mail_nouns)))

# English, as issue 11 shipped it: "do not ... delete" anywhere in the text, whatever the distance rule says.
_NEGATED_EN = re.compile(r"\b(?:do\s+not|don'?t|never|not|no\s+need\s+to|stop)\s+(?:\w+\s+){0,2}(?:eras|delet|remov)\w*")

_TOKEN = re.compile(r"[\w']+")
_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")
# Far enough to hold NEGATION_WINDOW words of any realistic length; further is never "near".
_MAX_GAP_CHARS = 40 * NEGATION_WINDOW
# "...delete this e-mail", "supprimer ce message": the rest of the sentence, up to 80 characters.
_AFTER_SPAN = 80
_SENTENCE_END = re.compile(r"[.!?\n]")


def _about_the_mail(folded: str, m: re.Match[str]) -> bool:
    """The erasure word is about the mail: a mail noun follows in the sentence, or stands at most two words before."""
    after = folded[m.end(): m.end() + _AFTER_SPAN]
    end = _SENTENCE_END.search(after)
    if end is not None:
        after = after[: end.start()]
    if _MAIL_NOUN.search(after):
        return True
    before = _TOKEN.findall(folded[max(0, m.start() - 60): m.start()])[-3:]  # "diese E-Mail bitte löschen"
    return any(_MAIL_NOUN.fullmatch(t) for t in before)


def _near(folded: str, a: int, b: int) -> bool:
    """At most NEGATION_WINDOW words between positions a <= b, and no blank line."""
    if b - a > _MAX_GAP_CHARS:
        return False
    gap = folded[a:b]
    return _BLANK_LINE.search(gap) is None and len(_TOKEN.findall(gap)) <= NEGATION_WINDOW


def _negated(folded: str, erasure: list[re.Match[str]]) -> bool:
    """A negation or exception near an erasure word (before or after), or before a viewer-id label."""
    negations = [(m.start(), m.end()) for m in _NEGATION.finditer(folded)]
    if not negations:
        return False
    starts = [s for s, _ in negations]
    for m in erasure:
        i = bisect.bisect_left(starts, m.start())
        if i > 0 and _near(folded, negations[i - 1][1], m.start()):
            return True
        if i < len(negations) and _near(folded, m.end(), negations[i][0]):
            return True
    for m in _LABEL.finditer(folded):
        i = bisect.bisect_left(starts, m.start())
        if i > 0 and _near(folded, negations[i - 1][1], m.start()):
            return True
    return False


def kind_of(words: str, out: Collector) -> Kind:
    folded = fold(words)
    erasure = [m for m in _ERASURE.finditer(folded) if not _about_the_mail(folded, m)]
    access = _ACCESS.search(folded) is not None
    if erasure and (_NEGATED_EN.search(folded) or _NEGATED_ERASURE.search(folded) or _negated(folded, erasure)):
        out.add("ambiguous_wording", "the text says not to delete something; a person must read it")
    elif erasure and _WITHDRAWAL.search(folded):
        out.add("ambiguous_wording", "the text withdraws or cancels a request; a person must read it")
    if erasure and access:
        out.add("also_access_request", "the request also asks for access to or a copy of data, which is answered by a person")
    if erasure:
        return "erasure"
    return "access" if access else "other"


def regulation_of(words: str, out: Collector) -> Literal["gdpr", "ccpa"] | None:
    folded = fold(words)
    gdpr = _GDPR.search(folded) is not None
    ccpa = _CCPA.search(folded) is not None
    if gdpr and ccpa:
        out.add("regulation_ambiguous", "the request names both GDPR and CCPA; a person must choose which deadlines apply")
        return None
    return "gdpr" if gdpr else "ccpa" if ccpa else None
