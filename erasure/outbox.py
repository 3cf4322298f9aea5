"""The outbox as the officer reads and handles it: `outbox list` and `outbox retry`.

Sending itself is notify.deliver's job; this module lists replies with their
delivery state and lets an officer put parked or deferred ones back in the
queue, recorded in the audit trail under their name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from erasure.errors import UsageError
from erasure.models import OUTBOX_STATES, OutboxMessage
from erasure.notify import requeue
from erasure.state import State


@dataclass(frozen=True)
class OutboxEntry:
    """One reply and where its delivery stands; ``claimed_until`` only while a deliverer holds it."""

    id: int
    request: str | None  # the request's reference
    kind: str
    to: str
    status: str
    attempts: int
    message_id: str | None
    last_error: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    claimed_by: str | None
    claimed_until: dt.datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "request": self.request, "kind": self.kind, "to": self.to, "status": self.status,
            "attempts": self.attempts, "message_id": self.message_id, "last_error": self.last_error,
            "created_at": self.created_at.isoformat(), "sent_at": self.sent_at.isoformat() if self.sent_at else None,
            "claimed_by": self.claimed_by,
            "claimed_until": self.claimed_until.isoformat() if self.claimed_until else None,
        }


def list_outbox(state: State, *, status: str | None = None) -> list[OutboxEntry]:
    """Every reply, oldest first; a claim is shown only on a reply still queued (a sent one's is history)."""
    if status is not None and status not in OUTBOX_STATES:
        raise UsageError(f"--status {status!r} is not an outbox state; use one of {', '.join(OUTBOX_STATES)}")
    with state.session() as session:
        stmt = select(OutboxMessage).order_by(OutboxMessage.id)
        if status:
            stmt = stmt.where(OutboxMessage.status == status)
        return [
            OutboxEntry(
                id=m.id, request=m.request.reference, kind=m.kind, to=m.recipient, status=m.status,
                attempts=m.attempts, message_id=m.message_id, last_error=m.last_error, created_at=m.created_at,
                sent_at=m.sent_at, claimed_by=m.claimed_by,
                claimed_until=m.claimed_until if m.claimed_until and m.status == "queued" else None,
            )
            for m in session.scalars(stmt)
        ]


def retry_outbox(state: State, ids: Sequence[int] | None = None, *, actor: str) -> int:
    """`outbox retry`: parked or deferred replies become due now, each a ``reply_released`` event
    naming ``actor``; returns how many."""
    return requeue(state, ids, actor=actor)
