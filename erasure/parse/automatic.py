"""Mail sent by a machine: recognised so that it is never answered and never acted on."""

from __future__ import annotations

import re
from email.message import Message

from erasure.parse.headers import raw_values, unfold
from erasure.parse.problems import Problem, single_line

# Only the RFC 5321 system mailboxes. "noreply@" is deliberately not here: a
# tenant's ticketing system may send genuine requests from such an address.
_SYSTEM_SENDER = re.compile(r"(?<![\w.+-])(mailer-daemon|postmaster)(?=@|[\s>)\"]|$)", re.IGNORECASE)


def automatic_reason(msg: Message, return_path: str | None) -> Problem | None:
    """Why this is mail from a machine (never answer it, never act on it), or None."""
    for value in raw_values(msg, "Auto-Submitted"):
        token = re.split(r"[;(\s]", unfold(value).lower(), maxsplit=1)[0]
        if token != "no":
            return Problem("auto_submitted", f"Auto-Submitted: {single_line(unfold(value), 60)}")
    for name in ("X-Autoreply", "X-Autorespond"):
        if raw_values(msg, name):
            return Problem("auto_submitted", f"the message carries an {name} header")
    for value in raw_values(msg, "Precedence"):
        token = unfold(value).lower()
        if token in ("bulk", "junk", "list"):
            return Problem("bulk_mail", f"Precedence: {token}")
    if raw_values(msg, "List-Id"):
        return Problem("mailing_list", "the message came through a mailing list (List-Id)")
    if return_path == "":
        return Problem("null_return_path", "the message has a null return path (<>), as bounces do")
    try:
        content_type = msg.get_content_type()
    except Exception:
        content_type = ""
    if content_type == "multipart/report":
        return Problem("delivery_report", "the message is a delivery or disposition report (multipart/report)")
    # Read leniently on purpose: bounces often have From headers the strict
    # grammar refuses ("MAILER-DAEMON@host (Mail Delivery System)", or no domain).
    for value in raw_values(msg, "From"):
        m = _SYSTEM_SENDER.search(unfold(value))
        if m:
            return Problem("system_sender", f"the sender is {m.group(1)}, a mail system address")
    return None
