"""Digest letters: the reply cap stops storms, not customers.

``delivery.max_per_recipient_per_day`` exists so that nothing can make the
tool write to one address without end. An authenticated customer's privacy
team that sends a hundred requests in a day is not a storm, though, and
parking its replies until an officer releases them would leave it waiting.
So a reply over the cap to an authenticated tenant contact is *held for the
digest* (outbox state ``digest``) instead of parked, and once per run every
such reply to one recipient goes out in one letter: a list of each reference
and its outcome, with each letter attached as it was written (``message/rfc822``),
so nothing a letter says is lost. The held replies become ``combined``.
Individual letters resume when the recipient's last 24 hours fall under the
cap again.

Everyone else keeps the strict cap: an officer-typed ``--requester``, and (as
before) nobody unauthenticated or unknown is answered at all.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure import audit
from erasure.config import Config
from erasure.models import OutboxMessage, OutboxState
from erasure.notify import WIRE_POLICY, TemplateRenderer, UnsafeReplyError, header_block

#: The outbox kind of the combined letter.
DIGEST = "digest"

#: What each letter kind says, in the digest's list (the attached letter says it in full).
OUTCOMES: dict[str, str] = {
    "acknowledgement": "received; we are working on it",
    "completed": "completed: the data is being removed",
    "no_data_found": "completed: no data could be identified for the ids given",
    "needs_information": "we need more information: see the attached letter and reply to it",
    "rejected": "not carried out: see the attached letter for the basis and reasons",
    "extended": "we need more time: see the attached letter for the new date",
}


def outcome(kind: str) -> str:
    return OUTCOMES.get(kind, kind.replace("_", " "))


def combine(session: Session, config: Config, renderer: TemplateRenderer, *, now: dt.datetime) -> list[OutboxMessage]:
    """Turn every reply held for the digest into one queued digest letter per recipient; returns the letters.

    In the caller's transaction: the held replies become ``combined`` in the
    same commit that queues their digest, so a crash leaves either the held
    replies or the digest, never both and never neither.
    """
    held = session.scalars(
        select(OutboxMessage).where(OutboxMessage.status == OutboxState.DIGEST)
        .order_by(OutboxMessage.id).with_for_update()
    ).all()
    groups: dict[str, list[OutboxMessage]] = {}
    for row in held:
        groups.setdefault(row.recipient_key or row.recipient, []).append(row)
    return [_queue_digest(session, config, renderer, rows, now=now) for rows in groups.values()]


def _queue_digest(session: Session, config: Config, renderer: TemplateRenderer, rows: Sequence[OutboxMessage], *,
                  now: dt.datetime) -> OutboxMessage:
    first = rows[0]
    domain = config.delivery.from_address.rpartition("@")[2] or "localhost"
    message_id = f"<{DIGEST}.{first.id}.{len(rows)}@{domain}>"
    items = [{"reference": r.request.reference, "kind": r.kind, "outcome": outcome(r.kind)} for r in rows]
    context: dict[str, Any] = {
        "reference": f"{len(rows)} requests", "count": len(rows), "items": items, "controller": config.controller,
        "limit": config.delivery.max_per_recipient_per_day, "role": config.policy.role,
    }
    subject, text, html = renderer.render(DIGEST, context)
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = config.delivery.from_address
    msg["To"] = first.recipient
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(now)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    for row in rows:
        # Each letter as it was written and checked when it was queued.
        letter = email.message_from_bytes(row.raw, policy=email.policy.SMTP)
        msg.add_attachment(letter, filename=f"{row.request.reference}-{row.kind}.eml")
    raw = msg.as_bytes(policy=WIRE_POLICY)
    if [name for name, _ in header_block(raw)] != list(msg.keys()):
        raise UnsafeReplyError("the rendered digest's header fields are not the ones we set")
    digest = OutboxMessage(
        request=first.request, kind=DIGEST, message_id=message_id, recipient=first.recipient,
        recipient_key=first.recipient_key, raw=raw, status=OutboxState.QUEUED, attempts=0, created_at=now,
    )
    session.add(digest)
    session.flush()
    for row in rows:
        row.status = OutboxState.COMBINED
        row.receipt = f"combined into {message_id}"
        audit.record(session, "reply_combined", request=row.request, now=now,
                     data={"kind": row.kind, "message_id": row.message_id, "digest": message_id})
    return digest
