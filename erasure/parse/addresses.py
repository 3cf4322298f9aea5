"""Who sent the mail: a strict From grammar, and the envelope return path."""

from __future__ import annotations

import re
from email.message import Message
from typing import Any

from erasure.parse.headers import raw_values, unfold
from erasure.parse.problems import Collector, Problem, single_line

# "alice@example.org(<bob@example.com>" as bob). We accept only a bare
# addr-spec or "display name <addr-spec>", dot-atom local part, ASCII LDH
# domain with at least one dot, and no comments anywhere.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})+"
_ADDR_SPEC = rf"(?P<addr>{_LOCAL}@{_DOMAIN})"
_QUOTED_NAME = r'"(?:[^"\\\r\n]|\\[^\r\n])*"'
_NAME_WORD = r"[^\"<>()\[\]\\,;:@\s]+"  # atoms, encoded words, UTF-8
_PLAIN_NAME = rf"{_NAME_WORD}(?:[ \t]+{_NAME_WORD})*"  # unambiguous, so matching stays linear
_DISPLAY = rf"(?:{_QUOTED_NAME}|{_PLAIN_NAME})"
_STRICT_FROM = re.compile(rf"\s*(?:{_ADDR_SPEC}|(?:{_DISPLAY}\s*)?<{_ADDR_SPEC.replace('addr', 'addr2')}>)\s*")


def strict_address(value: str) -> str | None:
    """The one addr-spec in a From-style value, or None unless the value is unambiguous."""
    m = _STRICT_FROM.fullmatch(unfold(value))
    if m is None:
        return None
    addr = m.group("addr") or m.group("addr2")
    if len(addr) > 254:
        return None
    local, domain = addr.rsplit("@", 1)
    if len(local) > 64:
        return None
    return f"{local}@{domain.lower()}"


def from_address_of(msg: Message, wire_count: int, out: Collector) -> tuple[str | None, Problem | None]:
    raws = raw_values(msg, "From")
    count = max(wire_count, len(raws))
    if count == 0:
        return None, Problem("from_missing", "the message has no From header")
    if count > 1:
        return None, Problem("from_multiple", f"the message has {count} From headers; the sender is ambiguous")
    if not raws:  # present on the wire but not read (oversized, or past the header limit)
        return None, Problem("from_unreadable", "the From header could not be read")
    ours = strict_address(raws[0])
    if ours is None:
        why = "the From header is not exactly one plain address (comments, groups, several addresses or bad syntax)"
        return None, Problem("from_invalid", why)
    # Belt and braces: the stdlib must read the same single address without complaint.
    try:
        header: Any = msg["From"]
        addresses = header.addresses
        defects = header.defects
    except Exception:
        return None, Problem("from_invalid", "the From header could not be parsed")
    if defects or len(addresses) != 1 or addresses[0].addr_spec.lower() != ours.lower():
        return None, Problem("from_invalid", "the From header does not parse to exactly one unambiguous address")
    return ours, None


def return_path_of(msg: Message) -> str | None:
    raws = raw_values(msg, "Return-Path")
    if not raws:
        return None
    values = [unfold(v) for v in raws]
    if any(re.fullmatch(r"<\s*>", v) for v in values):
        return ""
    v = values[-1]
    m = re.fullmatch(r"<([^<>\s]*)>", v)
    return single_line(m.group(1) if m else v, 320)
