"""Policy: may we act on this parsed email, for which tenant, and may we answer it?

Pure over a ``ParsedMessage`` and the ``Config``. The tenant is chosen by the
authenticated From address only: never by Reply-To, the display name, the
envelope sender or anything the body says. The order of the checks is part of
the contract, because each earlier rule protects the later ones:

1. automatic mail (auto-replies, bounces, lists, mail from ourselves) -> ignore,
   even when unauthenticated: answering it is how mail loops start;
2. a message that could not be read within the parse budget -> review, never
   answered (nothing of it, not even From, was read);
   a missing, repeated or ambiguous From -> review, never answered;
3. a sender no tenant lists -> review, never answered with a letter about the
   request (a direct requester, often a viewer, may get the one data-free
   letter that sends them to the service they used: ``direct_reply``);
4. not authenticated (when required) -> review, never answered;
5. not an erasure request (access, other) -> review;
6. anything doubtful the parser found, or a hint at another tenant -> review;
7. no viewer id -> review (the workflow may ask the requester for one);
8. otherwise -> erase.

Sender matching: a full address matches that address (case-insensitive); an
``@domain`` entry matches exactly that domain, never a subdomain and never a
suffix (``@acme.example`` matches neither ``evil-acme.example`` nor
``mail.acme.example``). Subdomains must be listed on their own.

Authentication: only ``Authentication-Results`` headers whose authserv-id is
in ``policy.trusted_authserv_ids`` count. The sender is authenticated when one
of them reports ``dmarc=pass`` for the From domain, or (when DMARC gives no
verdict: no result or ``none``) ``dkim=pass`` with a signing domain aligned
with it (equal, or a parent of the From domain), and no trusted header
contradicts that result. Your MX must remove incoming headers carrying its
own authserv-id (RFC 8601 section 5); the "no conflicting result" rule is a
second line of defence, not a replacement.

``reply_to`` is the From address only from rule 5 on (known tenant, and
authenticated or authentication switched off); before that it is None and
nothing may be sent. Review decisions still carry the ids that were found,
for the officer to see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import authres
import authres.dmarc

from erasure.config import Config, Tenant
from erasure.parse import ParsedMessage, Problem

Outcome = Literal["erase", "review", "ignore"]

# Every reason code a Decision can carry -> the default text `requests show` prints.
# Problem codes from the parse package are listed too; a test checks none is missing.
REASONS: dict[str, str] = {
    # Set by the workflow rather than by decide():
    "manual": "Entered by an officer from a letter, a phone call or a web form.",
    "message_too_large": "The message is larger than mailbox.max_message_bytes and was not read.",
    "reply_to_our_reply": "A reply to one of our own messages, naming no viewer id; a person reads it.",
    "erasure_not_verified": "Rows still matched after deleting, so the deletion was rolled back; a person must check.",
    "record_failed": "The message could not be recorded as it was; it was filed for review with a minimal record.",
    "ok": "The sender is authenticated for the tenant and the request names viewer ids to erase.",
    "legal_hold": "A legal hold covers the request (see `erasure holds list`); nothing is erased until the hold is removed.",
    "hold_released": "A legal hold covered the request and was removed; the request went on.",
    # decide()
    "automatic_mail": "Automatic mail (auto-reply, bounce, mailing list or bulk mail): recorded, never answered or acted on.",
    "own_address": "The message comes from our own reply address: recorded and ignored so that no mail loop can start.",
    "bad_from": "The From header is missing, repeated or not exactly one plain address, so the sender cannot be identified.",
    "unknown_sender": "No tenant lists the sender's address or domain; the request is not answered until a person checks it.",
    "ambiguous_tenant": "More than one tenant lists the sender's address or domain; fix [[tenants]].senders so exactly one does.",
    "unauthenticated": "The sender's address is not authenticated (no DMARC pass or aligned DKIM pass from a trusted authserv-id).",
    "access_request": "The message asks for access to or a copy of data, not erasure; a person answers it.",
    "not_erasure": "The message does not ask for erasure in words we recognise; a person must read it.",
    "cross_tenant_hint": "The message mentions another tenant; a person must check which tenant's data is meant.",
    "no_viewer_id": "No viewer id was found in the documented formats; the requester should be asked for one.",
    # the parse package problems
    "unparseable": "The message could not be read.",
    "from_missing": "The message has no From header.",
    "from_multiple": "The message has more than one From header.",
    "from_invalid": "The From header is not exactly one plain address.",
    "from_unreadable": "The From header could not be read.",
    "header_too_long": "A header was too long to read safely.",
    "too_many_headers": "The message has too many header fields to read safely.",
    "mime_too_deep": "The MIME structure is nested too deeply to read.",
    "too_many_parts": "The message has too many MIME parts to read.",
    "part_header_too_long": "A MIME part's header is too long to read safely; the part was not read.",
    "too_many_part_headers": "A MIME part has too many header fields to read safely; the part was not read.",
    "too_many_header_parameters": "A header has too many parameters or RFC 2231 segments to read safely; it was not read.",
    "parse_budget_exceeded": "Reading the message took more time or memory than policy.parse_timeout_seconds / policy.parse_memory_mb allow; it was not read.",
    "attachment_unreadable": "An attachment could not be read (not CSV, .xlsx or plain text, or invalid CSV).",
    "attachment_too_large": "An attachment is larger than the configured limit.",
    "attachment_undecodable": "An attachment is neither UTF-8 nor UTF-16.",
    "attachment_ambiguous": "A CSV attachment has more than one viewer_id column.",
    "attachment_no_viewer_id_column": "A CSV attachment has several columns but none called viewer_id.",
    "forwarded_message": ("The message contains an attached message that is not read: one forwarded inside a forwarded "
                          "message (forwards are read one level deep), or a report's copy of the message it reports on."),
    "attachment_outlook_message": ("An attachment is an Outlook item (.msg), which is not read (only a GPL library reads "
                                   "the format); the requester should be asked to forward inline or as an .eml file."),
    "body_too_large": "A body part is larger than the configured limit.",
    "text_too_long": "The message's text is too long for its wording to be read in full; a person must read it.",
    "viewer_id_undecodable": "A viewer id contains bytes that could not be decoded.",
    "viewer_id_control_chars": "A viewer id contains control or invisible characters.",
    "viewer_id_too_long": "A viewer id is longer than the configured limit.",
    "viewer_id_ambiguous": "A viewer id contains a space, comma or semicolon: it may be several ids.",
    "too_many_viewer_ids": "The request names more viewer ids than the configured limit.",
    "viewer_id_list_unclear": "A list of viewer ids is unclear: a line in it is not an id (a sentence, a name or a sign-off), or no id follows its label.",
    "viewer_id_unlabelled": "A line that looks like a viewer id follows labelled ids or a list without a label of its own.",
    "viewer_id_label_unclear": "A line starts like a viewer id label but is not one (e.g. viewer-id-123 on its own line).",
    "viewer_id_trailing_punctuation": "A viewer id in the text ends in sentence punctuation, which may belong to the id or to the sentence.",
    "viewer_id_reserved_example": "A viewer id is one of the examples printed in our own letters, so the message echoes them.",
    "attachment_header_unclear": "The first line of a one-column attachment looks like a heading but is not viewer_id.",
    "attachment_encoding_unclear": "An attachment declares no charset and is not UTF-8; its encoding could not be told with certainty (the viewer ids would read differently in the likely encodings, or the guess is not one we read).",
    "viewer_id_number_mangled": "A viewer id in an attachment is a number as Excel shows or stores it (scientific notation, over 15 digits, a fraction, a date or a formatted number): Excel may have changed the id.",
    "attachment_formula": "A cell in a spreadsheet's viewer_id column is a formula; formulas are never evaluated, so the id it shows is not known.",
    "attachment_hidden_cells": "A spreadsheet has ids in hidden rows or columns, or on a hidden sheet (a filtered list keeps its hidden rows); the sender may not have meant them.",
    "attachment_several_sheets": "A workbook has data on more than one sheet; only the first is read, so ids on the others may be missed.",
    "auto_response_suppressed": "The sender asked for no automatic answer (X-Auto-Response-Suppress): an auto-reply, or a request from a helpdesk; a person decides.",
    "forwards_our_letter": "The message forwards one of our own letters; the ids in it are not a new request, so a person reads it.",
    "maybe_automatic": "The message has one marker of automatic mail (a mail system sender, a delivery-report subject, List-Unsubscribe) but not the rest; a person decides.",
    "echoes_our_reply": "The message repeats the text of one of our own letters (e.g. a helpdesk's automatic acknowledgement).",
    "ambiguous_wording": "The text says not to delete something; a person must read it.",
    "also_access_request": "The request also asks for access to or a copy of data.",
    "regulation_ambiguous": "The request names both GDPR and CCPA.",
    # ids in prose, in every language (branch i13-lang)
    "viewer_id_in_sentence": "A viewer id follows its label inside a sentence rather than on a line of its own.",
    "viewer_id_unlikely_shape": "A viewer id in the text has the shape of a date, a phone number or a ticket number.",
    "viewer_id_bare_uuid": "A UUID stands alone on a line, without a viewer id label or a sentence introducing a list.",
    # reading bodies (branch parse-html)
    "hidden_text": "The HTML hides text from the reader (display:none, tiny or invisible text...); hidden text is not read, and hiding it is suspicious.",
    "alternatives_disagree": "The plain-text and HTML versions of the message name different viewer ids.",
    "html_too_complex": "The HTML is nested or styled beyond what is read safely.",
    "charset_refused": "A body part or attachment declares a charset that can disguise characters (UTF-7, HZ, ISO-2022...) or that we do not read; ask for UTF-8.",
    # automatic-mail details (ParsedMessage.automatic)
    "auto_submitted": "The message is marked as automatically submitted.",
    "bulk_mail": "The message is marked as bulk, junk or list mail.",
    "auto_reply_subject": "The subject is that of an automatic reply (out of office, vacation).",
    "mailing_list": "The message came through a mailing list.",
    "null_return_path": "The message has a null return path, as bounces do.",
    "delivery_report": "The message is a delivery or disposition report.",
    "system_sender": "The message comes from a mail system address (MAILER-DAEMON, postmaster) and reads as a delivery report.",
    "feedback_report": "The message is a complaint (feedback) report from a mail provider.",
    "notification_service": "The message is a notification from a mail service (Amazon SES/SNS).",
    # the controller's receipt date (branch i14-deadlines)
    "received_on_unreadable": "A 'Received on:' line does not give one date as YYYY-MM-DD or DD.MM.YYYY; the controller's deadline is unknown.",
    "received_on_conflict": "The message names different dates on which the controller received the request.",
    "received_on_future": "The controller's receipt date is after the day the request reached us.",
    # the one data-free letter to a sender no tenant lists (branch i14-direct): why it was not sent
    "direct_reply_automatic": "The data-free letter to a direct requester was not sent: the message is, or may be, automatic mail.",
    "direct_reply_our_address": "The data-free letter to a direct requester was not sent: the sender is one of our own addresses or domain.",
    "direct_reply_controller": "The data-free letter to a direct requester does not apply in policy.role = \"controller\": a person answers.",
    "direct_reply_unauthenticated": "The data-free letter to a direct requester was not sent: the sender's own domain does not pass DMARC (from a trusted authserv-id).",
    "direct_reply_domain_mismatch": "The data-free letter to a direct requester was not sent: DMARC passed for a domain other than the From domain.",
    "direct_reply_thread": "The data-free letter to a direct requester was not sent: the message answers one of our own letters.",
    "direct_reply_recent": "The data-free letter to a direct requester was not sent: this address had it within policy.direct_reply_window_days.",
}


@dataclass(frozen=True)
class Decision:
    """What to do with one email, why, and whom (if anyone) we may answer."""

    outcome: Outcome
    reason_code: str
    reason: str
    tenant: str | None
    regulation: Literal["gdpr", "ccpa"]
    viewer_ids: tuple[str, ...]
    reply_to: str | None
    # Added beyond the workflow contract:
    problems: tuple[Problem, ...] = ()  # every problem found, first one is the reason when it is one
    authenticated: bool = False


# ---------------------------------------------------------------- senders


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[1].lower()


def sender_matches(entry: str, address: str) -> bool:
    """Does one ``senders`` entry allow this address? Exact address, or exact domain for "@domain"."""
    entry = entry.strip().lower()
    address = address.lower()
    if entry.startswith("@"):
        return _domain(address) == entry[1:]
    return address == entry


def tenants_for(address: str, tenants: tuple[Tenant, ...]) -> list[Tenant]:
    """Every tenant whose senders allow the address (more than one is a configuration error)."""
    return [t for t in tenants if any(sender_matches(s, address) for s in t.senders)]


# ---------------------------------------------------------------- authentication

_AUTHRES = authres.FeatureContext(authres.dmarc)


def _authserv_id(value: str) -> str:
    """The authserv-id token of a raw header value, read without the full parser."""
    head = re.sub(r"\([^()]*\)", " ", value.split(";", 1)[0]).strip()
    return head.split()[0].lower() if head.split() else ""


def _aligned(signing_domain: str, from_domain: str) -> bool:
    d = signing_domain.strip().lower().rstrip(".")
    return "." in d and (from_domain == d or from_domain.endswith("." + d))


#: One result of a trusted Authentication-Results header: (method, result, {(ptype, property): value}).
AuthResult = tuple[str, str, dict[tuple[str, str], str]]


def _trusted_results(message: ParsedMessage, trusted: tuple[str, ...]) -> tuple[list[AuthResult], str | None]:
    """Every result in a header from a trusted authserv-id, lower-cased; and why there are none to go by.

    The second value is None when at least one trusted header was read, else
    the reason (none present, or one that could not be parsed: then nothing
    counts, as a forged header might have been meant to confuse the parser).
    """
    trusted_ids = {t.strip().lower() for t in trusted}
    results: list[AuthResult] = []
    seen_trusted = False
    for value in message.auth_results:
        if _authserv_id(value) not in trusted_ids:
            continue  # anyone can write an Authentication-Results header
        seen_trusted = True
        try:
            header = _AUTHRES.parse_value(value)
        except Exception:
            return [], "a trusted Authentication-Results header could not be parsed"
        if header.authserv_id not in trusted_ids:
            continue
        for result in header.results:
            props = {(p.type.lower(), p.name.lower()): str(p.value).lower() for p in getattr(result, "properties", ())}
            results.append((str(getattr(result, "method", "")).lower(), str(getattr(result, "result", "")).lower(), props))
    if not seen_trusted:
        return [], "no Authentication-Results header from a trusted authserv-id"
    return results, None


def dmarc_pass_domains(message: ParsedMessage, trusted: tuple[str, ...]) -> set[str]:
    """The domains (header.from) for which a trusted header reports dmarc=pass: the From domain, or a mismatch."""
    results, _ = _trusted_results(message, trusted)
    return {props.get(("header", "from"), "") for method, outcome, props in results
            if method == "dmarc" and outcome == "pass"}


def authentication(message: ParsedMessage, trusted: tuple[str, ...]) -> tuple[bool, str]:
    """(authenticated?, why): DMARC pass or aligned DKIM pass, from trusted authserv-ids only.

    Conflicting trusted results (one header says dmarc=pass, another fail or
    none; an aligned dkim=pass next to an aligned dkim=fail) count as not
    authenticated: a forged header carrying our authserv-id that slipped past
    the MX must not outvote the MX's own verdict.
    """
    if message.from_address is None:
        return False, "there is no usable From address"
    from_domain = _domain(message.from_address)
    results, problem = _trusted_results(message, trusted)
    if problem is not None:
        return False, problem
    dmarc: set[str] = set()
    dkim: set[str] = set()
    for method, outcome, props in results:
        if method == "dmarc" and props.get(("header", "from"), "") == from_domain:
            dmarc.add(outcome)
        elif method == "dkim" and _aligned(props.get(("header", "d"), ""), from_domain):
            dkim.add(outcome)
    if len(dmarc) > 1:
        return False, f"trusted Authentication-Results headers disagree (dmarc={', '.join(sorted(dmarc))})"
    if dmarc == {"pass"}:
        return True, f"dmarc=pass for {from_domain}"
    if dmarc and dmarc != {"none"}:
        return False, f"a trusted Authentication-Results header reports dmarc={next(iter(dmarc))} for {from_domain}"
    if dkim == {"pass"}:
        return True, f"aligned dkim=pass for {from_domain}"
    if "pass" in dkim:
        return False, f"trusted Authentication-Results headers disagree (dkim={', '.join(sorted(dkim))})"
    return False, f"no DMARC pass or aligned DKIM pass for {from_domain}"


# ---------------------------------------------------------------- decision


def _mentions(text: str, needle: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(needle)}(?![\w-])", text, re.IGNORECASE) is not None


def cross_tenant_hint(message: ParsedMessage, tenant: Tenant, tenants: tuple[Tenant, ...]) -> str | None:
    """Another tenant's name, domain or environment id in the request text, if any."""
    text = message.subject + "\n" + message.body_text
    own = {tenant.name.lower()} | {s.lstrip("@").split("@")[-1].lower() for s in tenant.senders}
    for other in tenants:
        if other.name == tenant.name:
            continue
        needles = {other.name, *other.environments, *(s.lstrip("@").split("@")[-1] for s in other.senders)}
        for needle in sorted(needles):
            if len(needle) >= 3 and needle.lower() not in own and _mentions(text, needle):
                return f"the request mentions {needle!r}, which belongs to tenant {other.name!r}"
    return None


#: Problems after which nothing is sent automatically, even to an authenticated
#: tenant: the message echoes our own letter (a helpdesk's auto-acknowledgement,
#: which would acknowledge our acknowledgement), or its sender asked for no
#: automatic answer. A person reads it and answers, or approves, by hand.
NEVER_ANSWERED = frozenset({"echoes_our_reply", "auto_response_suppressed", "maybe_automatic"})


def decide(message: ParsedMessage, config: Config) -> Decision:
    """The one decision for one email; see the module docstring for the order of the rules."""
    policy = config.policy
    regulation = message.regulation or policy.default_regulation
    problems = message.problems

    def result(outcome: Outcome, code: str, detail: str | None = None, *, tenant: str | None = None,
               reply_to: str | None = None, authenticated: bool = False, ids: tuple[str, ...] | None = None) -> Decision:
        text = REASONS[code] if detail is None else f"{REASONS[code]} ({detail})"
        if ids is None:  # ids are shown to the officer in review; automatic mail names none
            ids = () if outcome == "ignore" else message.viewer_ids
        return Decision(outcome, code, text, tenant, regulation, ids, reply_to, problems, authenticated)

    own = config.delivery.from_address.strip().lower()
    if message.automatic is not None:
        problems = (message.automatic, *problems)
        return result("ignore", "automatic_mail", message.automatic.text)
    if message.from_address is not None and message.from_address.lower() == own:
        return result("ignore", "own_address", message.from_address)
    unread = next((p for p in problems if p.code == "parse_budget_exceeded"), None)
    if unread is not None:  # nothing was read, not even From: say why rather than "bad From"
        return result("review", "parse_budget_exceeded", unread.text)

    if message.from_address is None:
        from_problem = message.from_problem or Problem("from_missing", REASONS["from_missing"])
        problems = (from_problem, *problems)
        return result("review", "bad_from", from_problem.text)
    address = message.from_address

    matches = tenants_for(address, config.tenants)
    if not matches:
        return result("review", "unknown_sender", address)
    if len(matches) > 1:
        return result("review", "ambiguous_tenant", ", ".join(t.name for t in matches))
    tenant = matches[0]

    authenticated, why = authentication(message, policy.trusted_authserv_ids)
    if not authenticated and policy.require_authentication:
        return result("review", "unauthenticated", why, tenant=tenant.name)

    def answerable(outcome: Outcome, code: str, detail: str | None = None) -> Decision:
        # From here on the sender is known and authenticated (or the operator switched
        # authentication off and trusts From as written), so the workflow may answer,
        # unless what was read says a machine would be answering a machine.
        machine = any(p.code in NEVER_ANSWERED for p in problems)
        return result(outcome, code, detail, tenant=tenant.name, reply_to=None if machine else address,
                      authenticated=authenticated)

    if own in message.forwarded_from:
        # The customer forwarded one of our own letters back (or an old request quoted in
        # one): its ids were dealt with before and are not a new request.
        return answerable("review", "forwards_our_letter")
    if message.kind == "access":
        return answerable("review", "access_request")
    if message.kind != "erasure":
        return answerable("review", "not_erasure")

    # The viewer-id limits were applied by the parser (the workflow passes it the policy's),
    # and the workflow caps what it stores (Desk._capped): they are problems by now.
    if problems:
        first = problems[0]
        return answerable("review", first.code if first.code in REASONS else "unparseable", first.text)

    hint = cross_tenant_hint(message, tenant, config.tenants)
    if hint is not None:
        return answerable("review", "cross_tenant_hint", hint)
    if not message.viewer_ids:
        return answerable("review", "no_viewer_id")
    return answerable("erase", "ok", why if authenticated else "authentication not required")


# ---------------------------------------------------------------- direct requesters


@dataclass(frozen=True)
class DirectReply:
    """May a sender no tenant lists get the one data-free letter (``templates/direct_request``)?

    ``to`` is the From address as written when the letter may go, else None;
    ``code`` is ``"direct_reply_allowed"`` or the ``REASONS`` code saying why not.
    """

    to: str | None
    code: str

    @property
    def allowed(self) -> bool:
        return self.to is not None


def direct_reply(message: ParsedMessage, config: Config) -> DirectReply | None:
    """The verdict on the data-free letter for mail from a sender no tenant lists; None for anyone else.

    Such a sender is usually a viewer writing to us directly. As a processor
    we cannot identify anyone from an email address, and must not say whether
    we hold anything about them, so the only answer is one fixed letter
    sending them to the service they used. It goes only when all of these
    hold, checked in this order (the first that fails is the code):
    the mail is not automatic and nothing read says a machine would answer a
    machine (``NEVER_ANSWERED``); the role is ``processor`` (a controller's
    own users are answered by a person); the sender is not our own reply
    address or its domain; every trusted dmarc=pass is for the From domain
    itself; and the From domain passes DMARC there (by the rules of
    :func:`authentication`, whatever ``policy.require_authentication`` says,
    and not on aligned DKIM alone). The workflow adds the rest: not a reply
    to our letter, and not already sent within ``policy.direct_reply_window_days``.
    """
    address = message.from_address
    if address is None or tenants_for(address, config.tenants):
        return None
    if any(p.code == "parse_budget_exceeded" for p in message.problems):
        return None

    def withheld(code: str) -> DirectReply:
        return DirectReply(None, code)

    if message.automatic is not None or any(p.code in NEVER_ANSWERED for p in message.problems):
        return withheld("direct_reply_automatic")
    if config.policy.role == "controller":
        return withheld("direct_reply_controller")
    own = config.delivery.from_address.strip().lower()
    from_domain = _domain(address)
    if address.lower() == own or from_domain == own.rpartition("@")[2]:
        return withheld("direct_reply_our_address")
    passed = dmarc_pass_domains(message, config.policy.trusted_authserv_ids)
    if passed - {from_domain}:
        return withheld("direct_reply_domain_mismatch")
    authenticated, _why = authentication(message, config.policy.trusted_authserv_ids)
    if not authenticated or from_domain not in passed:
        return withheld("direct_reply_unauthenticated")
    return DirectReply(address, "direct_reply_allowed")
