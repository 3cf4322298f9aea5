"""The sender's own words: quoted replies, forwarded blocks and signatures are cut off."""

from __future__ import annotations

import re

_QUOTE_START = re.compile(
    r"^\s*(?:-{2,}\s*Original Message\s*-{2,}|_{10,}|-{2,}\s*Forwarded message\s*-{2,}|Begin forwarded message:"
    r"|-{2,}\s*Weitergeleitete Nachricht\s*-{2,})\s*$",
    re.IGNORECASE,
)
_ON_WROTE = re.compile(
    r"^\s*(?:On\b.{0,300}\bwrote|Am\b.{0,300}\bschrieb\b.{0,200}|Le\b.{0,300}\ba\s+[ée]crit\s*)\s*:\s*$",
    re.IGNORECASE,
)
_HEADER_BLOCK_FROM = re.compile(r"^\s*\*?(?:From|Von|De)\s*:\*?\s+\S", re.IGNORECASE)
_HEADER_BLOCK_NEXT = re.compile(r"^\s*\*?(?:Sent|Date|Gesendet|Datum|Envoy[ée])\s*:", re.IGNORECASE)
_SIGNATURE = re.compile(r"^-- ?$")


def unquoted(text: str) -> str:
    """The sender's own words: stop at a quoted reply, forwarded block or signature; drop '>' lines."""
    kept: list[str] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for i, line in enumerate(lines):
        if _SIGNATURE.match(line) or _QUOTE_START.match(line) or _ON_WROTE.match(line):
            break
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        # "On Mon, 1 Jan 2024 at 10:00, Alice <a@x>\nwrote:" (wrapped by the mail client)
        if re.match(r"^\s*On\b", line, re.IGNORECASE) and re.fullmatch(r"\s*(?:.{0,200}\s)?wrote:\s*", nxt, re.IGNORECASE):
            break
        # Outlook quotes without a separator line: "From: ...", then "Sent: ..." (or Date:).
        if _HEADER_BLOCK_FROM.match(line) and _HEADER_BLOCK_NEXT.match(nxt):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept)
