"""When to reply: the whole policy in one place, as pure functions.

Who may be answered at all is decided earlier, by ``verify.decide``: a request
from unauthenticated, unknown-tenant or automatic mail has ``reply_allowed``
false, and ``notify.queue_reply`` sends such a request nothing, whatever this
module says. Here is only *which* reply follows *which* step.
"""

from __future__ import annotations

from typing import Literal

from erasure.models import RequestStatus

AcknowledgeMode = Literal["unless_done", "always", "never"]

#: Review reasons where the requester is asked, by template, for what is missing.
ASK_FOR_INFORMATION = frozenset({
    "no_viewer_id", "viewer_id_undecodable", "viewer_id_control_chars", "viewer_id_too_long", "viewer_id_ambiguous",
    "attachment_unreadable", "attachment_undecodable", "attachment_ambiguous", "attachment_no_viewer_id_column",
    "viewer_id_list_unclear", "viewer_id_label_unclear", "viewer_id_trailing_punctuation", "attachment_header_unclear",
    "viewer_id_unlabelled", "viewer_id_in_sentence", "viewer_id_unlikely_shape", "viewer_id_bare_uuid",
})

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
