"""When to reply: the whole policy in one place, as pure functions.

Who may be answered at all is decided earlier, by ``verify.decide``: a request
from unauthenticated, unknown-tenant or automatic mail has ``reply_allowed``
false, and ``notify.queue_reply`` sends such a request nothing, whatever this
module says. Here is only *which* reply follows *which* step.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from erasure.models import RequestStatus

AcknowledgeMode = Literal["unless_done", "always", "never"]

#: Review reasons where the requester is asked, by template, for what is missing.
ASK_FOR_INFORMATION = frozenset({
    "no_viewer_id", "viewer_id_undecodable", "viewer_id_control_chars", "viewer_id_too_long", "viewer_id_ambiguous",
    "attachment_unreadable", "attachment_undecodable", "attachment_ambiguous", "attachment_no_viewer_id_column",
    "viewer_id_list_unclear", "viewer_id_label_unclear", "viewer_id_trailing_punctuation", "attachment_header_unclear",
    "viewer_id_unlabelled", "viewer_id_in_sentence", "viewer_id_unlikely_shape", "viewer_id_bare_uuid",
    "attachment_encoding_unclear", "viewer_id_number_mangled", "attachment_formula",
    "attachment_hidden_cells", "attachment_several_sheets", "attachment_outlook_message",
    "received_on_unreadable", "received_on_conflict", "received_on_future",
})

#: What a letter tells the customer's privacy team about each reason code, in
#: words written for them: ``verify.REASONS`` is written for the officer ("a person
#: must look", "the requester should be asked") and never reaches a letter. Every
#: reason code has an entry (a test checks); ``None`` means the reason is never
#: told to a customer: no letter goes (unknown or unauthenticated senders,
#: automatic mail), or saying why would teach a forger what we look for
#: (hidden text, echoes of our letters), or it is our own internal failure.
CUSTOMER_TEXTS: dict[str, str | None] = {
    # no letter is sent for these at all (verify.decide: reply_to is None)
    "automatic_mail": None,
    "own_address": None,
    "bad_from": None,
    "unknown_sender": None,
    "ambiguous_tenant": None,
    "unauthenticated": None,
    "unparseable": None,
    "from_missing": None,
    "from_multiple": None,
    "from_invalid": None,
    "from_unreadable": None,
    "auto_submitted": None,
    "bulk_mail": None,
    "auto_reply_subject": None,
    "mailing_list": None,
    "null_return_path": None,
    "delivery_report": None,
    "system_sender": None,
    "echoes_our_reply": None,  # a helpdesk echoing our letter: answering it starts a loop
    "auto_response_suppressed": None,  # the sender asked for no automatic answer
    "maybe_automatic": None,  # one marker of automatic mail: never answered automatically
    "feedback_report": None,
    "notification_service": None,
    "forwards_our_letter": None,  # a person reads it and answers by hand
    # why the data-free letter to a direct requester was not sent (verify.direct_reply): never told
    "direct_reply_automatic": None,
    "direct_reply_our_address": None,
    "direct_reply_controller": None,
    "direct_reply_unauthenticated": None,
    "direct_reply_domain_mismatch": None,
    "direct_reply_thread": None,
    "direct_reply_recent": None,
    # ours, not the customer's: the officer answers in person
    "manual": None,
    "ok": None,
    "record_failed": None,
    "erasure_not_verified": None,
    "parse_budget_exceeded": None,
    # A legal hold is never told by the tool (no letter is sent because of one); should an officer's
    # letter ever quote the code, it says only that the request is still being handled.
    "legal_hold": "Your request is still being handled; we will write to you again when it is complete.",
    "hold_released": None,
    # telling the sender would teach a forger what we check
    "hidden_text": None,
    "html_too_complex": None,
    "alternatives_disagree": None,
    "cross_tenant_hint": None,
    "header_too_long": None,
    "too_many_headers": None,
    "mime_too_deep": None,
    "too_many_parts": None,
    "part_header_too_long": None,
    "too_many_part_headers": None,
    "too_many_header_parameters": None,
    # what the customer can put right
    "reply_to_our_reply": "Your reply did not name a viewer id, so we could not tell which data it is about.",
    "message_too_large": "Your message was too large for us to read. Please send the viewer ids again in a smaller message, for example as a CSV file.",
    "access_request": "Your message asks for access to or a copy of data rather than for its erasure; our privacy team will answer it separately.",
    "not_erasure": "We could not tell from your message that it asks us to erase data. If it does, please say so and name the viewer ids concerned.",
    "also_access_request": "Your message asks both for erasure and for access to or a copy of data; our privacy team will answer the access part separately.",
    "ambiguous_wording": "Part of your message says that something should not be deleted, so we could not tell exactly what you want us to erase.",
    "regulation_ambiguous": "Your message names both the GDPR and the CCPA. Please tell us which law the request is made under.",
    "no_viewer_id": "We could not find a viewer id in your message.",
    "viewer_id_undecodable": "A viewer id in your message contains characters that did not come through readably.",
    "viewer_id_control_chars": "A viewer id in your message contains invisible or control characters, so we cannot be sure what the id is.",
    "viewer_id_too_long": "A viewer id in your message is longer than any id we record, so it is probably not a viewer id.",
    "viewer_id_ambiguous": "A viewer id in your message contains a space, comma or semicolon, so we cannot tell whether it is one id or several.",
    "too_many_viewer_ids": "Your request names more viewer ids than we can handle in one request. Please split it into several requests.",
    "viewer_id_list_unclear": ("We could not read the list of viewer ids in your message: a line in it is not an id (a sentence, "
                               "a name or a greeting), or no id follows the 'Viewer IDs:' line."),
    "viewer_id_unlabelled": ("A line in your message looks like a viewer id but is not under a 'Viewer ID:' label or in the "
                             "list of ids, so we could not tell whether it is one."),
    "received_on_unreadable": ("We could not read the date on which you received the request from your viewer. Please "
                               "give it on a line of its own as 'Received on: YYYY-MM-DD'."),
    "received_on_conflict": ("Your message gives more than one date on which you received the request. Please give "
                             "the one date on a line of its own as 'Received on: YYYY-MM-DD'."),
    "received_on_future": ("The date you give for receiving the request from your viewer is later than the day your "
                           "message reached us. Please check it and send it again as 'Received on: YYYY-MM-DD'."),
    "viewer_id_in_sentence": ("A viewer id in your message follows its label in the middle of a sentence. Please put "
                              "each id on a line of its own, after a 'Viewer ID:' label."),
    "viewer_id_unlikely_shape": ("A viewer id in your message looks like a date, a telephone number or a ticket number, "
                                 "so we could not be sure it is a viewer id. Please check it and send it again on a "
                                 "'Viewer ID:' line."),
    "viewer_id_bare_uuid": ("Your message contains an identifier on a line of its own, without a 'Viewer ID:' label "
                            "or a sentence introducing a list of viewer ids, so we could not tell what it identifies."),
    "viewer_id_label_unclear": ("A line in your message starts like a 'Viewer ID:' label but has no colon after it "
                                "(for example viewer-id-123), so we could not tell where the id begins."),
    "viewer_id_trailing_punctuation": ("A viewer id in your message ends with a full stop, colon, question mark or exclamation "
                                       "mark, so we could not tell whether the mark is part of the id."),
    "viewer_id_reserved_example": ("Your message names one of the example ids printed in our letters. Please send the viewer "
                                   "ids from your own records instead."),
    "body_too_large": "Your message was too large for us to read. Please send the viewer ids again in a smaller message, for example as a CSV file.",
    "text_too_long": "Your message was too long for us to read automatically. Please send the request again as a short message, with a long list of viewer ids as a CSV file attached.",
    "forwarded_message": ("Your message contains a forwarded message inside another forwarded message. We read a "
                          "forwarded request one level deep only; please forward the original request itself, or name "
                          "the viewer ids in your own message."),
    "attachment_outlook_message": ("Your message has an Outlook item (.msg file) attached, which we cannot read. Please "
                                   "forward the request to us inline (Forward) or as an attached .eml message, or name "
                                   "the viewer ids in your own message."),
    "charset_refused": ("Your message or a file attached to it uses a character encoding we do not read. Please send it "
                        "again saved as UTF-8."),
    "attachment_unreadable": ("We could not read a file attached to your message. We read CSV files, Excel workbooks (.xlsx) "
                              "and plain-text files; older Excel files (.xls), OpenDocument and Numbers files, PDFs and "
                              "pictures we cannot read."),
    "attachment_too_large": "A file attached to your message is larger than we accept. Please split it into smaller files.",
    "attachment_undecodable": ("We could not read the text of a file attached to your message. Please save it as "
                               "\"CSV UTF-8\" and send it again."),
    "attachment_encoding_unclear": ("We could not tell for certain which character encoding a file attached to your message "
                                    "uses, and the viewer ids in it would read differently depending on it. Please save the "
                                    "file as \"CSV UTF-8\" and send it again."),
    "attachment_ambiguous": "A file attached to your message has more than one viewer_id column, so we could not tell which to use.",
    "attachment_no_viewer_id_column": ("A file attached to your message has several columns, but none is headed "
                                       "\"viewer_id\", so we could not tell which column holds the viewer ids."),
    "attachment_header_unclear": ("The first line of a file attached to your message looks like a column heading, but "
                                  "not \"viewer_id\", so we could not tell whether it is a heading or an id."),
    "viewer_id_number_mangled": ("A viewer id in your spreadsheet is stored as a number that Excel may have changed (for "
                                 "example shown as 1.23E+15, rounded after 15 digits, or turned into a date). Please format "
                                 "the viewer_id column as Text, paste the ids again from your own records and send the file again."),
    "attachment_hidden_cells": ("Some rows or columns of your spreadsheet are hidden (for example by a filter), and they "
                                "hold viewer ids, so we could not tell whether those viewers are meant. Please send only "
                                "the ids to erase, with nothing hidden."),
    "attachment_several_sheets": ("Your workbook has data on more than one sheet. Please send the viewer ids on a single "
                                  "sheet, with a \"viewer_id\" column."),
    "attachment_formula": ("A cell in the viewer_id column of your spreadsheet holds a formula rather than the id itself. "
                           "Please paste the ids as values and send the file again."),
}

_CUSTOMER_FALLBACK = "We could not read the viewer ids in your message with enough certainty to act on them."


def customer_text(reason_code: str | None) -> str:
    """The sentence a letter gives the customer for a reason code: never the officer's wording.

    A code with no customer text (one never told, or one added without an entry,
    which a test forbids) gets a general sentence rather than reviewer wording.
    """
    return CUSTOMER_TEXTS.get(reason_code or "") or _CUSTOMER_FALLBACK

#: The reply each step sends; steps not listed (verified, erasing, awaiting_approval,
#: approved, ignored, cancelled) send none of their own.
_STEP_REPLIES = {
    "completed": "completed",
    "no_data_found": "no_data_found",
    "rejected": "rejected",
    "extended": "extended",
}


def reply_after(step: str, *, reason_code: str | None = None) -> str | None:
    """The reply kind a step sends, or None."""
    if step == "needs_review":
        return "needs_information" if reason_code in ASK_FOR_INFORMATION else None
    return _STEP_REPLIES.get(step)


def direct_reply_due(last_sent: dt.datetime | None, now: dt.datetime, window_days: int) -> bool:
    """Whether a direct requester may get the data-free letter again: never within the window.

    ``last_sent`` is when the letter was last queued to this address in any
    spelling (``delivery.recipient_key``). Once per window, because a viewer
    who writes twice learns nothing new from a second copy, and a forged
    sender must not be able to make us write to a victim over and over.
    """
    return last_sent is None or now - last_sent >= dt.timedelta(days=window_days)


def acknowledgement_due(mode: AcknowledgeMode, *, at_intake: bool, status: str, replies_so_far: int) -> bool:
    """Whether to send an acknowledgement now.

    ``unless_done`` (the default): once the run that recorded the request ends,
    if it is still open and nothing has been said yet. A request completed in
    the same run gets only its answer; one held for approval or review learns
    that it was received and when it is due (CCPA: within 10 business days).
    ``always``: every request, when it is recorded. ``never``: no acknowledgements.
    """
    if mode == "never":
        return False
    if mode == "always":
        return at_intake
    return not at_intake and status in RequestStatus.OPEN and replies_so_far == 0
