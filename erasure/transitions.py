"""The request state machine as data: which step may leave which state, and where it goes.

    received -> needs_review | awaiting_approval | erasing -> completed
    received -> ignored (automatic mail)        any open state -> rejected
    needs_review -> received (the ids we asked for arrived in a reply)
    received | needs_review | awaiting_approval -> cancelled (by an officer)
    received | erasing -> awaiting_approval (a legal hold covers it) -> received | erasing (released)

``TRANSITIONS`` is the whole machine; :func:`move` is the one place a
request's status changes. It checks the step against the table, sets the
status (and ``updated_at``, and ``closed_at`` for a closing step), drops the
raw viewer ids of a request that closes, and appends the step's audit event,
all inside the caller's transaction. ``workflow.Desk`` decides *when* a step
is taken; this module decides *whether* it may be.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from erasure import audit
from erasure.errors import InvalidTransitionError
from erasure.models import ErasureRequest
from erasure.vocabulary import RequestStatus

S = RequestStatus


@dataclass(frozen=True)
class Transition:
    """One step: the states it may start from, the state it ends in, and the event that records it.

    ``to`` is None for a step that keeps the status (an extension). ``closes``
    marks a step into a closed state: the request's raw viewer ids go, and its
    ``response`` is set. ``allowed`` finishes the sentence "ER-... is <state>; "
    when the step is refused, so the officer learns what would have been allowed.
    """

    sources: frozenset[RequestStatus]
    to: RequestStatus | None
    event: str
    allowed: str
    closes: bool = False


_NOT_YET_ERASING = frozenset({S.RECEIVED, S.NEEDS_REVIEW, S.AWAITING_APPROVAL})

TRANSITIONS: dict[str, Transition] = {
    # Classification of a new request (automatic).
    "ignore": Transition(frozenset({S.RECEIVED}), S.IGNORED, "ignored",
                         "only received requests can be ignored", closes=True),
    "review": Transition(frozenset({S.RECEIVED}), S.NEEDS_REVIEW, "needs_review",
                         "only received requests can be sent to review"),
    "hold": Transition(frozenset({S.RECEIVED}), S.AWAITING_APPROVAL, "awaiting_approval",
                       "only received requests can be held for approval"),
    "start_erasing": Transition(frozenset({S.RECEIVED}), S.ERASING, "erasing",
                                "only received requests can go straight to erasing"),
    # The customer answered our `needs_information` letter with the ids: classified anew.
    "information_received": Transition(frozenset({S.NEEDS_REVIEW}), S.RECEIVED, "information_received",
                                       "only requests in review can receive the information asked for"),
    # A legal hold (erasure.holds) stops a request wherever its erasure would start; removing
    # the hold sends it back where it stopped: classified again, or its erasure resumed.
    "legal_hold": Transition(frozenset({S.RECEIVED, S.ERASING}), S.AWAITING_APPROVAL, "held",
                             "only received or erasing requests can be stopped by a legal hold"),
    "release": Transition(frozenset({S.AWAITING_APPROVAL}), S.RECEIVED, "released",
                          "only requests held for a legal hold can be released"),
    "resume_erasing": Transition(frozenset({S.AWAITING_APPROVAL}), S.ERASING, "released",
                                 "only requests held for a legal hold can be released"),
    # An officer's approval (its `approved` event is written before this step's `erasing`).
    "approve": Transition(frozenset({S.AWAITING_APPROVAL, S.NEEDS_REVIEW}), S.ERASING, "erasing",
                          "only requests awaiting approval or in review can be approved"),
    # The erasure's verdict.
    "not_verified": Transition(frozenset({S.ERASING}), S.NEEDS_REVIEW, "needs_review",
                               "only erasing requests can fail verification"),
    "complete": Transition(frozenset({S.ERASING}), S.COMPLETED, "completed",
                           "only erasing requests can be completed", closes=True),
    # An officer's other decisions.
    "reject": Transition(frozenset(S.OPEN), S.REJECTED, "rejected",
                         "only open requests can be rejected", closes=True),
    "cancel": Transition(_NOT_YET_ERASING, S.CANCELLED, "cancelled",
                         "only requests not yet erasing can be cancelled", closes=True),
    "extend": Transition(frozenset(S.OPEN), None, "extended", "only open requests can be extended"),
}


def check(request: ErasureRequest, step: str) -> Transition:
    """The step's rule, or InvalidTransitionError naming the request, its state and what is allowed."""
    rule = TRANSITIONS[step]
    if request.status not in rule.sources:
        already = "already " if request.status in S.CLOSED else ""
        raise InvalidTransitionError(f"{request.reference or request.id} is {already}{request.status}; {rule.allowed}")
    return rule


def move(
    session: Session,
    request: ErasureRequest,
    step: str,
    *,
    now: dt.datetime,
    actor: str = audit.SYSTEM,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
    response: str | None = None,
) -> None:
    """Take ``step`` on ``request`` and record it: the only assignment of a request's status.

    ``response`` is what a closing step answered (``completed``,
    ``no_data_found``, ...); it defaults to the new status. A closed request
    keeps only the HMACs of its viewer ids.
    """
    rule = check(request, step)
    if rule.to is not None:
        request.status = rule.to
    request.updated_at = now
    if rule.closes:
        request.response = response or rule.to
        request.closed_at = now
        for subject in request.subjects:
            subject.viewer_id = None
    audit.record(session, rule.event, actor=actor, request=request, reason=reason, data=data, now=now)
