"""What the request asks for (erasure, access) and under which law, from its words."""

from __future__ import annotations

import re
from typing import Literal

from erasure.parse.problems import Collector

Kind = Literal["erasure", "access", "other"]


_ERASURE_WORDS = re.compile(
    r"\b(?:eras(?:e|ed|ure|ing)|delet(?:e|ed|ion|ing)|remov(?:e|al|ing)|forget|forgotten|"
    r"right to delete|article\s*17|art\.?\s*17|1798\.105|l[öo]sch\w*|supprim\w*|suppression)\b",
    re.IGNORECASE,
)
_ACCESS_WORDS = re.compile(
    r"\b(?:access\s+request|access\s+to\s+(?:[\w'\u2019]+\s+){0,3}data|right\s+(?:of|to)\s+access|subject\s+access|"
    r"(?:data\s+)?export\s+(?:of\s+)?(?:\w+\s+){0,2}data|data\s+export|copy\s+of|portab\w*|right\s+to\s+know|dsar|"
    r"article\s*(?:15|20)|art\.?\s*(?:15|20)|1798\.(?:100|110|115)|auskunft)\b",
    re.IGNORECASE,
)
_NEGATED = re.compile(
    r"\b(?:do\s+not|don'?t|never|not|no\s+need\s+to|stop)\s+(?:\w+\s+){0,2}(?:eras|delet|remov)\w*",
    re.IGNORECASE,
)
_GDPR = re.compile(r"\b(?:u\.?k\.?\s+)?(?:gdpr|dsgvo|rgpd)\b", re.IGNORECASE)
_CCPA = re.compile(r"\b(?:ccpa|cpra|california|cal\.?\s*civ\.?|1798\.\d+)\b", re.IGNORECASE)


# "...please notify the sender and delete this e-mail": confidentiality
# footers must not turn a question about a viewer into an erasure.
_ABOUT_THE_MAIL = re.compile(r"[^.!?\n]{0,80}?\b(?:e-?mails?|messages?|communications?|transmissions?|copies)\b", re.IGNORECASE)


def _asks_for_erasure(words: str) -> bool:
    return any(not _ABOUT_THE_MAIL.match(words, m.end()) for m in _ERASURE_WORDS.finditer(words))


def kind_of(words: str, out: Collector) -> Kind:
    erasure = _asks_for_erasure(words)
    access = _ACCESS_WORDS.search(words) is not None
    if erasure and _NEGATED.search(words):
        out.add("ambiguous_wording", "the text says not to delete something; a person must read it")
    if erasure and access:
        out.add("also_access_request", "the request also asks for access to or a copy of data, which is answered by a person")
    if erasure:
        return "erasure"
    return "access" if access else "other"


def regulation_of(words: str, out: Collector) -> Literal["gdpr", "ccpa"] | None:
    gdpr = _GDPR.search(words) is not None
    ccpa = _CCPA.search(words) is not None
    if gdpr and ccpa:
        out.add("regulation_ambiguous", "the request names both GDPR and CCPA; a person must choose which deadlines apply")
        return None
    return "gdpr" if gdpr else "ccpa" if ccpa else None
