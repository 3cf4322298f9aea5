"""The tool's closed vocabularies: request states, outbox states and regulations.

Each is a ``StrEnum``, so a member equals its string: what is stored in the
state database, written into the audit chain or printed as JSON is the same
text as before these names existed. Code names a state by its member instead
of repeating the literal, so a typo is an AttributeError, not a silent miss.
"""

from __future__ import annotations

import enum
from typing import ClassVar


class RequestStatus(enum.StrEnum):
    """The request states (DESIGN.md), plus ``ignored`` for automatic mail and
    ``cancelled`` for requests withdrawn before erasure began.

    ``OPEN``, ``CLOSED`` and ``ALL`` are tuples of members (not members), set below.
    """

    RECEIVED = "received"
    NEEDS_REVIEW = "needs_review"
    AWAITING_APPROVAL = "awaiting_approval"
    ERASING = "erasing"
    COMPLETED = "completed"
    REJECTED = "rejected"
    IGNORED = "ignored"
    CANCELLED = "cancelled"

    OPEN: ClassVar[tuple[RequestStatus, ...]]
    CLOSED: ClassVar[tuple[RequestStatus, ...]]
    ALL: ClassVar[tuple[RequestStatus, ...]]


RequestStatus.OPEN = (RequestStatus.RECEIVED, RequestStatus.NEEDS_REVIEW, RequestStatus.AWAITING_APPROVAL,
                      RequestStatus.ERASING)
RequestStatus.CLOSED = (RequestStatus.COMPLETED, RequestStatus.REJECTED, RequestStatus.IGNORED,
                        RequestStatus.CANCELLED)
RequestStatus.ALL = RequestStatus.OPEN + RequestStatus.CLOSED


class OutboxState(enum.StrEnum):
    """Where a reply stands: waiting to be sent (or retried), handed over, held for a person, or
    held for (then sent inside) the run's digest letter."""

    QUEUED = "queued"
    SENT = "sent"
    PARKED = "parked"
    # Over delivery.max_per_recipient_per_day to an authenticated tenant contact: waits for the run's
    # digest letter (erasure.digest), then is COMBINED into it (sent inside it, attached).
    DIGEST = "digest"
    COMBINED = "combined"


OUTBOX_STATES: tuple[OutboxState, ...] = tuple(OutboxState)


class Regulation(enum.StrEnum):
    """The regulations whose deadlines and wording the tool knows."""

    GDPR = "gdpr"
    CCPA = "ccpa"


class Channel(enum.StrEnum):
    """How a request reached us, as ``requests.channel`` stores it.

    Mail read from the mailbox is ``email``. A request an officer enters is
    ``manual:<how>`` (``ManualChannel``), so polled mail stays apart from a mail
    that reached someone's own inbox and was typed in; ``manual`` alone is a
    row entered before the channel was recorded. At most 16 characters (the column).
    """

    EMAIL = "email"
    MANUAL = "manual"


class ManualChannel(enum.StrEnum):
    """How a request entered by an officer (`requests add --channel`) reached us."""

    LETTER = "letter"
    PHONE = "phone"
    FORM = "form"
    EMAIL = "email"

    @property
    def stored(self) -> str:
        """The ``requests.channel`` value: ``manual:letter`` etc."""
        return f"{Channel.MANUAL}:{self.value}"
