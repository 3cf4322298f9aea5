"""Mail sent by a machine: recognised so that it is never answered and never acted on."""

from __future__ import annotations

import re
from email.message import Message

from erasure.parse.headers import raw_values, unfold
from erasure.parse.problems import Problem, single_line

#: Headers whose presence (any value, or one of the listed values) marks mail from an
#: auto-responder. Header names compare case-insensitively, values lower-cased.
AUTOMATIC_HEADERS: dict[str, frozenset[str] | None] = {
    "X-Autoreply": None,              # many MTAs' vacation programs
    "X-Autorespond": None,
    "X-Apple-Action": frozenset({"vacation"}),  # iCloud Mail's vacation responder
}

#: Precedence values: RFC 3834 section 3.1.8 mentions bulk/junk/list; auto_reply is
#: what several autoresponders (and Exchange's OOF to the Internet) write.
PRECEDENCE = {"bulk": "bulk_mail", "junk": "bulk_mail", "list": "bulk_mail", "auto_reply": "auto_submitted"}

#: Subjects as auto-responders write them, per language: the phrase at the very start,
#: then a colon (French puts a space or no-break space before it). Outlook writes
#: "Automatic reply: <subject>" in the recipient's language; Lotus Notes "AUTO: ...".
#: A human subject about the topic ("Re: automatic reply question", "Automatic reply
#: settings") has no colon straight after the phrase, or does not start with it, and
#: stays human. A forwarded auto-reply ("Fwd: Automatic reply: ...") was forwarded by
#: a person, so it is read like any other mail.
AUTO_REPLY_SUBJECTS: tuple[str, ...] = (
    "Automatic reply", "Auto reply", "Auto-reply", "Autoreply", "Auto response", "Autoresponse",
    "Auto-response", "Out of Office", "Out of the Office", "Out of Office AutoReply", "AUTO",  # en, Lotus
    "Réponse automatique",                               # fr
    "Automatische Antwort", "Abwesenheitsnotiz",         # de
    "Respuesta automática",                              # es
    "Risposta automatica",                               # it
    "Automatisch antwoord",                              # nl
    "Resposta automática",                               # pt
    "Autosvar", "Automatiskt svar",                      # sv
    "Automatyczna odpowiedź",                            # pl
)
# Not listed: bare "absent"/"away" phrases ("Afwezig", "Fuori sede"), which people
# also type as subjects; automatic mail is recorded and closed unread, so a subject
# rule must not catch a person.
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:" + "|".join(re.escape(p).replace(r"\ ", r"[\s-]") for p in AUTO_REPLY_SUBJECTS) + r")[ \t\u00a0\u202f]*:",
    re.IGNORECASE,
)

# X-Auto-Response-Suppress is deliberately NOT a marker of automatic mail. It is
# a request from the sender to the recipient's auto-responders ("do not send me
# an OOF / a delivery report", MS-OXCMAIL 2.2.3.2.20), not a statement that the
# message itself is automatic. Outlook's own auto-replies carry it (so that two
# OOFs do not answer each other), and so do Exchange system mail and ticketing
# systems (Zendesk, Jira, ServiceNow), including a tenant's genuine requests sent
# from its helpdesk: ignoring it as automatic would silently close those. So it
# is honoured for what it asks, and no more: such a message is read, never
# answered automatically, and goes to a person (``auto_response_suppressed``),
# who decides whether it is an auto-reply or a request to approve.
_SUPPRESSES_ANSWERS = {"all", "oof", "autoreply"}  # DR, NDR, RN, NRN only concern receipts and bounces


def auto_response_suppressed(msg: Message) -> Problem | None:
    """The Problem for a message whose sender asks for no automatic answer, or None."""
    for value in raw_values(msg, "X-Auto-Response-Suppress"):
        tokens = {t.strip().lower() for t in unfold(value).split(",")}
        if tokens & _SUPPRESSES_ANSWERS:
            return Problem("auto_response_suppressed",
                           f"the sender asks for no automatic answer (X-Auto-Response-Suppress: "
                           f"{single_line(unfold(value), 60)}); it may be an auto-reply or a helpdesk's request")
    return None


# Only the RFC 5321 system mailboxes. "noreply@" is deliberately not here: a
# tenant's ticketing system may send genuine requests from such an address.
_SYSTEM_SENDER = re.compile(r"(?<![\w.+-])(mailer-daemon|postmaster)(?=@|[\s>)\"]|$)", re.IGNORECASE)


def automatic_reason(msg: Message, return_path: str | None, subject: str = "") -> Problem | None:
    """Why this is mail from a machine (never answer it, never act on it), or None."""
    for value in raw_values(msg, "Auto-Submitted"):
        token = re.split(r"[;(\s]", unfold(value).lower(), maxsplit=1)[0]
        if token != "no":
            return Problem("auto_submitted", f"Auto-Submitted: {single_line(unfold(value), 60)}")
    for name, values in AUTOMATIC_HEADERS.items():
        for value in raw_values(msg, name):
            if values is None or unfold(value).strip().lower() in values:
                return Problem("auto_submitted", f"the message carries an {name} header")
    for value in raw_values(msg, "Precedence"):
        token = unfold(value).strip().lower()
        if token in PRECEDENCE:
            return Problem(PRECEDENCE[token], f"Precedence: {token}")
    if _AUTO_SUBJECT.match(subject):
        return Problem("auto_reply_subject", "the subject is that of an automatic reply (out of office, vacation)")
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
