"""Problems (why a person must look) and the text helpers every reader shares."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """Why a request cannot go ahead unattended: a stable code and a sentence for the officer."""

    code: str
    text: str


class Collector:
    """Problems gathered while reading, de-duplicated in order."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, code: str, text: str) -> None:
        if all(p.code != code for p in self.problems):
            self.problems.append(Problem(code, text))


def safe_name(name: str) -> str:
    cleaned = "".join(c for c in name if c.isprintable())[:60]
    return cleaned or "(unnamed)"


CONTROL_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def single_line(text: str, limit: int) -> str:
    """Control and format characters removed, whitespace collapsed: safe to show and to echo."""
    kept = []
    for ch in text:
        if ch.isspace():
            kept.append(" ")
        elif unicodedata.category(ch) not in CONTROL_CATEGORIES:
            kept.append(ch)
    return re.sub(r" +", " ", "".join(kept)).strip()[:limit]
